#!/usr/bin/env bash
# The build notices its own configuration (run by .ci/run; about 3 minutes on 2 cores):
#  1. without the Debian packages (pkg-config finds nothing) make names the missing ones, points to
#     `make deps` and compiles nothing;
#  2. `make CUDA=0 DNNL=0` followed by `make` in a build folder ends with the same program, byte for byte,
#     as a clean `make` in that folder.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/cfgcheck
rm -rf "$out"
mkdir -p "$out"
fail() { echo "build_config: FAIL: $*"; exit 1; }

if PKG_CONFIG_LIBDIR=/nonexistent PKG_CONFIG_PATH= make --no-print-directory BUILD="$out/nodeps" >"$out/nodeps.log" 2>&1
then fail "make succeeded without the packages"; fi
grep -q "missing Debian packages: .*liblua5.4-dev" "$out/nodeps.log" || fail "no list of missing packages: $(cat "$out/nodeps.log")"
grep -q "make deps" "$out/nodeps.log" || fail "the message does not point to make deps"
[ -z "$(find "$out/nodeps" -name '*.o' 2>/dev/null)" ] || fail "objects were compiled before the check"
echo "build_config: without the packages make stops first: $(grep -o 'missing Debian packages: .*' "$out/nodeps.log")"

# both in the same folder, so that even the debug information (which names it) must agree
make --no-print-directory -j"$(nproc)" BUILD="$out/b" "$out/b/semseg" >"$out/clean.log" 2>&1 || fail "clean build"
cp "$out/b/semseg" "$out/clean-semseg"
rm -rf "$out/b"
make --no-print-directory -j"$(nproc)" BUILD="$out/b" CUDA=0 DNNL=0 "$out/b/semseg" >"$out/switch0.log" 2>&1 \
  || fail "CUDA=0 DNNL=0 build"
"$out/b/semseg" --version | grep -q "oneDNN" && fail "the DNNL=0 build reports oneDNN"
make --no-print-directory -j"$(nproc)" BUILD="$out/b" "$out/b/semseg" >"$out/switch1.log" 2>&1 || fail "rebuild"
grep -q "engine/core/tensor.c" "$out/switch1.log" || fail "changing the configuration rebuilt nothing"
cmp -s "$out/clean-semseg" "$out/b/semseg" || fail "make CUDA=0 DNNL=0 && make differs from a clean make"
"$out/b/semseg" --version | grep -q "oneDNN" || fail "the rebuilt program lacks oneDNN"
echo "build_config: make CUDA=0 DNNL=0 && make gives the clean build's program, byte for byte"
rm -rf "$out"
echo "build_config: 2 passed, 0 failed"
