#!/bin/bash
# CUDA emulation build: semseg with the CUDA backend where "device memory" is
# host memory and kernels/*.cu run on the CPU (the threads of a block as
# fibers that switch at __syncthreads and warp shuffles, blocks one after
# another). For checking kernels and their host glue on machines without a
# GPU: index arithmetic, bounds, barrier use (a __syncthreads or a shuffle not
# reached by every thread concerned aborts), dtype handling and the results
# against the CPU. It proves nothing about races, the memory model, speed, or
# CUDA's own math library (the host's libm runs instead).
#
# cuBLAS and cuDNN are emulated by plain host loops (stubs.c):
# cublasGemmStridedBatchedEx, and cuDNN's legacy convolution API (forward,
# backward data, backward filter; NCHW, groups, stride, padding, dilation;
# the algorithm queries, Find*AlgorithmEx and workspace sizes), with the real
# libraries' argument checks, so glue bugs show as clean errors. Their
# numerics are not cuDNN's/cuBLAS's (no TF32, no tensor-core rounding).
# Device memory is limited to 8 GiB like a small GPU.
#
#   tests/cuda_emu/build.sh [-asan]        builds build/cuda_emu/semseg (or build/cuda_emu_asan)
#   LUA_PATH="./?.lua;;" build/cuda_emu/semseg run tests/run.lua cuda_
#   make emu-test                            the build and the CUDA tests (with and without a device)
#
# -asan adds AddressSanitizer to the engine, the kernels and the emulated
# runtime; run with ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1.
# Device blocks come from the engine's caching allocator (carved from larger
# segments), so ASan sees overruns of a segment, not of one tensor.
# EMU_NO_DEVICE=1 makes the emulated driver report no device (the tests for
# machines without a GPU).
set -e
cd "$(dirname "$0")/../.."
HERE=tests/cuda_emu
OUT=build/cuda_emu
extra=()
if [ "$1" = "-asan" ]; then
  OUT=build/cuda_emu_asan
  export EMU_CXXFLAGS="-fsanitize=address -fno-omit-frame-pointer"
  extra=(OPT="-O1 -fno-omit-frame-pointer" EXTRA_CFLAGS="-fsanitize=address")
fi
CUDA=$PWD/$OUT/cuda
mkdir -p "$CUDA/bin" "$CUDA/include" "$CUDA/lib64"
# Incremental: the copies keep their sources' times (the objects' dependency files name them), the
# runtime and the libraries are rebuilt only when their sources changed, and a rebuilt runtime (linked
# statically) forces a relink; a changed nvcc stand-in or transform recompiles the kernels.
newer() { local t=$1; shift; [ ! -e "$t" ] && return 0; for f in "$@"; do [ "$f" -nt "$t" ] && return 0; done; return 1; }
cp -p $HERE/include/*.h "$CUDA/include/"
if newer "$CUDA/bin/transform.py" $HERE/transform.py || newer "$CUDA/bin/nvcc" $HERE/nvcc; then
  rm -rf "$OUT/obj/kernels"
fi
cp -p $HERE/nvcc $HERE/transform.py "$CUDA/bin/"
if newer "$CUDA/lib64/libcudart_static.a" $HERE/emu_rt.cpp $HERE/include/*.h $HERE/build.sh; then
  g++ -std=c++17 -O2 -g -fPIC -Wall -Wextra $EMU_CXXFLAGS -I"$CUDA/include" -c $HERE/emu_rt.cpp -o "$CUDA/lib64/emu_rt.o"
  rm -f "$CUDA/lib64/libcudart_static.a" "$OUT/semseg" "$OUT/lua/semseg/core.so"
  ar rcs "$CUDA/lib64/libcudart_static.a" "$CUDA/lib64/emu_rt.o"
fi
if newer "$CUDA/lib64/libcudnn.so.9" $HERE/stubs.c $HERE/include/*.h $HERE/build.sh; then
  gcc -O3 -Wall -Wextra -fPIC -shared -I"$CUDA/include" $HERE/stubs.c -o "$CUDA/lib64/libcudnn.so.9"
  cp "$CUDA/lib64/libcudnn.so.9" "$CUDA/lib64/libcublas.so"
fi
# a make that called us (make emu-test from make CUDA=0 test ...) must not pass its variables down
unset MAKEFLAGS MFLAGS MAKELEVEL
make CUDA=1 CUDA_HOME="$CUDA" CUDNN_HOME="$CUDA" CUBLAS_HOME="$CUDA" NVCC="$CUDA/bin/nvcc" BUILD="$OUT" \
  "${extra[@]}" -j"$(nproc)" all
echo "built $OUT/semseg (CUDA emulated on the host)"
