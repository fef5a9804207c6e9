# semseg: one binary (build/semseg), the same engine as a Lua module (build/lua/semseg/core.so) and, when
# the CUDA toolkit with cuDNN and cuBLAS is found, the CUDA backend as a module (build/semseg_cuda.so) that
# the engine loads on first use of the GPU.
CC      ?= cc
comma   := ,
OPT     ?= -O2
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BUILD   ?= build

# The Debian packages, by pkg-config name and package name. Nothing is compiled while one is missing:
# a half-configured build would link a binary without its fast paths and say nothing.
PC_PKGS  := lua5.4:liblua5.4-dev libpng:libpng-dev libtiff-4:libtiff-dev openblas:libopenblas-dev libedit:libedit-dev
DEB_PKGS := liblua5.4-dev lua5.4 libpng-dev libtiff-dev libopenblas-dev libdnnl-dev libedit-dev pkg-config
NO_CHECK := $(filter deps clean,$(MAKECMDGOALS))
# oneDNN fast paths: on unless DNNL=0 (then said in `semseg --version`)
DNNL    ?= 1
ifeq ($(NO_CHECK),)
MISSING := $(if $(shell command -v pkg-config),,pkg-config) $(foreach p,$(PC_PKGS),$(if $(shell pkg-config --exists \
             $(word 1,$(subst :, ,$(p))) 2>/dev/null && echo y),,$(word 2,$(subst :, ,$(p)))))
MISSING := $(strip $(MISSING) $(if $(filter 1,$(DNNL)),$(if $(wildcard /usr/include/oneapi/dnnl/dnnl.h),,libdnnl-dev)))
ifneq ($(MISSING),)
$(error missing Debian packages: $(MISSING). Run `make deps` (as root) first; `make DNNL=0` builds without oneDNN)
endif
endif

PC_NAMES := $(foreach p,$(PC_PKGS),$(word 1,$(subst :, ,$(p))))
CFLAGS  += -std=gnu11 $(OPT) -g -fPIC -pthread $(WARN) $(if $(NO_CHECK),,$(shell pkg-config --cflags $(PC_NAMES))) \
           $(EXTRA_CFLAGS)
# Lua is linked statically into the program (one binary); the Lua module leaves it to the host interpreter
LUA_A   := $(if $(NO_CHECK),,$(shell pkg-config --variable=libdir lua5.4))/liblua5.4.a
LDLIBS  := $(if $(NO_CHECK),,$(shell pkg-config --libs libpng libtiff-4 openblas libedit)) -lm -ldl -pthread
ifeq ($(DNNL),1)
CFLAGS  += -DSG_HAVE_DNNL
LDLIBS  += -ldnnl
endif
# OpenMP threads for the large elementwise kernels (oneDNN in Debian uses OpenMP too); OPENMP=0 builds without
OPENMP  ?= 1
ifeq ($(OPENMP),1)
CFLAGS  += -fopenmp
endif

# CUDA backend (engine/backend_cuda glue + kernels/*.cu, linked into semseg_cuda.so) when nvcc and cuDNN
# are found; CUDA=0 builds none. CUDA_HOME, CUDNN_HOME and CUBLAS_HOME may be overridden; cuDNN/cuBLAS
# installed as Python wheels (nvidia-cudnn-cu*, nvidia-cublas-cu*) are found too.
CUDA_HOME   ?= $(firstword $(wildcard /usr/local/cuda /usr/lib/cuda /opt/cuda))
NVCC        ?= $(CUDA_HOME)/bin/nvcc
WHEEL_DIR    = $(shell python3 -c "import nvidia.$(1), os; print(os.path.dirname(nvidia.$(1).__file__))" 2>/dev/null)
CUDNN_HOME  ?= $(or $(if $(wildcard $(CUDA_HOME)/include/cudnn.h),$(CUDA_HOME)),\
                    $(if $(wildcard /usr/include/cudnn.h),/usr),$(call WHEEL_DIR,cudnn))
CUBLAS_HOME ?= $(or $(if $(wildcard $(CUDA_HOME)/include/cublas_v2.h),$(CUDA_HOME)),$(call WHEEL_DIR,cublas))
CUDA        ?= $(if $(and $(wildcard $(NVCC)),$(wildcard $(CUDNN_HOME)/include/cudnn.h),\
                         $(wildcard $(CUBLAS_HOME)/include/cublas_v2.h)),1,0)
# H100/H200 (sm_90) and A100 (sm_80) machine code, plus PTX for newer cards
CUDA_ARCH   ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
               -gencode arch=compute_90,code=compute_90
CUDA_LIBDIRS = $(sort $(wildcard $(CUDA_HOME)/lib64 $(CUDNN_HOME)/lib $(CUDNN_HOME)/lib64 $(CUBLAS_HOME)/lib \
                                 $(CUBLAS_HOME)/lib64))
CUDA_CFLAGS := -DSG_HAVE_CUDA -I$(CUDA_HOME)/include -I$(CUDNN_HOME)/include -I$(CUBLAS_HOME)/include
NVFLAGS     := -O3 -std=c++17 $(CUDA_ARCH) -Xcompiler -fPIC,-Wall,-Wextra -DSG_HAVE_CUDA -Iengine
# the runtime is linked statically into the module; cuBLAS and cuDNN are found through its rpath
CUDA_LDLIBS := $(addprefix -L,$(CUDA_LIBDIRS)) $(addprefix -Wl$(comma)-rpath$(comma),$(CUDA_LIBDIRS)) \
               -l:libcudnn.so.9 -lcublas -lcudart_static -lrt -lstdc++

ENGINE_SRC := $(shell find engine -name '*.c' ! -name main.c ! -name repl.c ! -path 'engine/backend_cuda/*' | sort)
CUDA_SRC   := $(sort $(wildcard engine/backend_cuda/*.c))
KERNEL_SRC := $(sort $(wildcard kernels/*.cu))
LUA_SRC    := $(shell find lua -name '*.lua' | sort)
OBJ        := $(patsubst %.c,$(BUILD)/obj/%.o,$(ENGINE_SRC)) $(BUILD)/obj/embedded_lua.o
CUDA_OBJ   := $(patsubst %.c,$(BUILD)/obj/%.o,$(CUDA_SRC)) $(patsubst %.cu,$(BUILD)/obj/%.o,$(KERNEL_SRC))
CLI_OBJ    := $(BUILD)/obj/engine/main.o $(BUILD)/obj/engine/repl.o

# Every object depends on the configuration it was compiled with (flags, libraries found): a change
# (make DNNL=0, then make; make before and after make deps) rebuilds what it affects and nothing else.
CONFIG      := $(CC) $(CFLAGS) | $(LDLIBS) | $(LUA_A)
CUDA_CONFIG := $(NVCC) $(NVFLAGS) | $(CUDA_CFLAGS) | $(CUDA_LDLIBS)
ifeq ($(NO_CHECK),)
$(shell mkdir -p $(BUILD))
ifneq ($(CONFIG),$(file < $(BUILD)/config.stamp))
$(file > $(BUILD)/config.stamp,$(CONFIG))
endif
ifneq ($(CUDA_CONFIG),$(file < $(BUILD)/cuda_config.stamp))
$(file > $(BUILD)/cuda_config.stamp,$(CUDA_CONFIG))
endif
endif

.PHONY: all deps test asan clean bench bundle emu-test
ifeq ($(CUDA),1)
all: $(BUILD)/semseg $(BUILD)/lua/semseg/core.so $(BUILD)/semseg_cuda.so
else
# a module left from an earlier CUDA build would be loaded by this one: a CPU-only build has none
all: $(BUILD)/semseg $(BUILD)/lua/semseg/core.so
	@rm -f $(BUILD)/semseg_cuda.so
endif

deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	else echo "all Debian packages present"; fi

$(BUILD)/obj/%.o: %.c $(BUILD)/config.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# the cpu backend's hand-written kernels want the loop vectorizer (-O2 leaves loops with a remainder scalar) and
# sqrt without errno (which keeps it out of vector code); neither changes any result
$(BUILD)/obj/engine/backend_cpu/%.o: CFLAGS += -O3 -fno-math-errno

# the CUDA backend's host glue sees the toolkit's headers; nothing else in the engine does
$(BUILD)/obj/engine/backend_cuda/%.o: engine/backend_cuda/%.c $(BUILD)/config.stamp $(BUILD)/cuda_config.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CUDA_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cu $(BUILD)/cuda_config.stamp
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@

# The Lua half of the library is compiled into the binary so it runs from anywhere.
$(BUILD)/embedded_lua.c: $(LUA_SRC) engine/lua/embed.lua
	@mkdir -p $(BUILD)
	lua5.4 engine/lua/embed.lua $@ $(LUA_SRC)
$(BUILD)/obj/embedded_lua.o: $(BUILD)/embedded_lua.c $(BUILD)/config.stamp
	$(CC) $(CFLAGS) -c $< -o $@

# -rdynamic: the CUDA module resolves the engine's symbols against the program
$(BUILD)/semseg: $(OBJ) $(CLI_OBJ)
	$(CC) $(CFLAGS) -rdynamic -o $@ $^ $(LUA_A) $(LDLIBS)

$(BUILD)/lua/semseg/core.so: $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $^ $(LDLIBS)

# The CUDA backend: its own objects and the CUDA libraries; the engine's symbols come from the program
# (or core.so) that loads it
$(BUILD)/semseg_cuda.so: $(CUDA_OBJ)
	$(CC) $(CFLAGS) -shared -o $@ $^ $(CUDA_LDLIBS)

# the pseudo-terminal driver of tests/test_repl.lua
$(BUILD)/pty_run: tests/pty_run.c
	$(CC) $(CFLAGS) -o $@ $< -lutil

# make test also checks the CUDA backend under the host emulation (emu-test, about 2 minutes on 2 cores)
# where that builds: x86-64 with g++ and python3; EMU=0 leaves it out
EMU ?= $(if $(and $(filter x86_64,$(shell uname -m)),$(shell command -v g++),$(shell command -v python3)),1,0)
test: all $(BUILD)/pty_run
	LUA_PATH="./?.lua;;" $(BUILD)/semseg run tests/run.lua
ifeq ($(EMU),1)
	@$(MAKE) --no-print-directory emu-test
endif

# The CUDA backend checked without a GPU: kernels and glue built against the host emulation in
# tests/cuda_emu (build/cuda_emu), then the CUDA tests with an emulated device and without one
emu-test:
	bash tests/cuda_emu/build.sh
	LUA_PATH="./?.lua;;" build/cuda_emu/semseg run tests/run.lua cuda_
	LUA_PATH="./?.lua;;" build/cuda_emu/semseg run tests/run.lua ops/
	@for p in cuda_ ops/; do out=$$(EMU_NO_DEVICE=1 LUA_PATH="./?.lua;;" build/cuda_emu/semseg run tests/run.lua $$p); \
	  rc=$$?; echo "without a device ($$p):"; echo "$$out" | grep -v '^SKIP .*(no CUDA device'; [ $$rc = 0 ] || exit $$rc; done

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -fno-omit-frame-pointer" \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:protect_shadow_gap=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  LUA_PATH="./?.lua;;" build/asan/semseg run tests/run.lua

# build/bundle: the binary plus every shared library it needs except cuDNN, cuBLAS and the driver, and
# the dynamic loader, behind a launcher (scripts/bundle_launcher.sh): copy the folder to a GPU machine that
# lacks Lua/libpng/libtiff/OpenBLAS and run build/bundle/semseg there. Without oneDNN (40 MB; the GPU does
# the heavy work there), so the folder stays near 45 MB.
bundle:
	$(MAKE) BUILD=build/gpu DNNL=0 CUDA=$(CUDA) build/gpu/semseg $(if $(filter 1,$(CUDA)),build/gpu/semseg_cuda.so)
	rm -rf build/bundle && mkdir -p build/bundle/lib
	cp build/gpu/semseg build/bundle/semseg.bin
	$(if $(filter 1,$(CUDA)),cp build/gpu/semseg_cuda.so build/bundle/)
	ldd build/gpu/semseg $(if $(filter 1,$(CUDA)),build/gpu/semseg_cuda.so) | awk '$$2 == "=>" && $$3 ~ /^\// {print $$3}' \
	  | grep -v -E 'libcudnn|libcublas|libcuda\.' | sort -u | xargs -I{} cp -L {} build/bundle/lib/
	cp -L $$(ldd build/gpu/semseg | awk '/ld-linux/ {print $$1}') build/bundle/lib/ld-linux-x86-64.so.2
	cp scripts/bundle_launcher.sh build/bundle/semseg
	@du -sh build/bundle

# The CPU micro-benchmarks of the README (oneDNN or own kernels against the engine's loops, about 30 s);
# scripts/bench/bench_cpu.sh and bench_gpu.sh compare with PyTorch; past figures: scripts/bench/HISTORY.md
bench: all
	@for b in conv pool_norm eltwise group_norm; do echo "== scripts/bench/bench_$$b.lua"; \
	  LUA_PATH="./?.lua;;" $(BUILD)/semseg run scripts/bench/bench_$$b.lua || exit 1; done

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
