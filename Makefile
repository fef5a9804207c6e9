# semseg: one binary (build/semseg) and the same engine as a Lua module (build/semseg/core.so).
CC      ?= cc
OPT     ?= -O2
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  += -std=gnu11 $(OPT) -g -fPIC -pthread $(WARN) -I/usr/include/lua5.4 \
           -I/usr/include/x86_64-linux-gnu/openblas-pthread $(EXTRA_CFLAGS)
LDLIBS  := -lopenblas -lpng -ltiff -ledit -lm -ldl -pthread
LUA_A   := /usr/lib/x86_64-linux-gnu/liblua5.4.a
# oneDNN convolution fast path when its header is installed (make DNNL=0 builds without it)
DNNL    ?= $(if $(wildcard /usr/include/oneapi/dnnl/dnnl.h),1,0)
ifeq ($(DNNL),1)
CFLAGS  += -DSG_HAVE_DNNL
LDLIBS  += -ldnnl
endif
# OpenMP threads for the large elementwise kernels (oneDNN in Debian uses OpenMP too); OPENMP=0 builds without
OPENMP  ?= 1
ifeq ($(OPENMP),1)
CFLAGS  += -fopenmp
endif
BUILD   ?= build

DEB_PKGS := liblua5.4-dev lua5.4 libpng-dev libtiff-dev libopenblas-dev libdnnl-dev libedit-dev pkg-config

ENGINE_SRC := $(shell find engine -name '*.c' ! -name main.c ! -name repl.c | sort)
LUA_SRC    := $(shell find lua -name '*.lua' | sort)
OBJ        := $(patsubst %.c,$(BUILD)/obj/%.o,$(ENGINE_SRC)) $(BUILD)/obj/embedded_lua.o
CLI_OBJ    := $(BUILD)/obj/engine/main.o $(BUILD)/obj/engine/repl.o

.PHONY: all deps test asan clean bench
all: $(BUILD)/semseg $(BUILD)/lua/semseg/core.so

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else echo "all Debian packages present"; fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The Lua half of the library is compiled into the binary so it runs from anywhere.
$(BUILD)/embedded_lua.c: $(LUA_SRC) engine/lua/embed.lua
	@mkdir -p $(BUILD)
	lua5.4 engine/lua/embed.lua $@ $(LUA_SRC)
$(BUILD)/obj/embedded_lua.o: $(BUILD)/embedded_lua.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/semseg: $(OBJ) $(CLI_OBJ)
	$(CC) $(CFLAGS) -rdynamic -o $@ $^ $(LUA_A) $(LDLIBS)

$(BUILD)/lua/semseg/core.so: $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $^ $(LDLIBS)

# the pseudo-terminal driver of tests/test_repl.lua
$(BUILD)/pty_run: tests/pty_run.c
	$(CC) $(CFLAGS) -o $@ $< -lutil

test: all $(BUILD)/pty_run
	LUA_PATH="./?.lua;;" $(BUILD)/semseg run tests/run.lua

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -fno-omit-frame-pointer" \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LUA_PATH="./?.lua;;" build/asan/semseg run tests/run.lua

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
