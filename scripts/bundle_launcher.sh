#!/bin/sh
# semseg from a bundle made by `make bundle`: the binary runs on its own C runtime and libraries (lib/), so
# it starts on a machine without Lua, libpng, libtiff, OpenBLAS or a matching glibc. cuDNN and cuBLAS come
# from that machine: SEMSEG_CUDA_LIBS (directories, colon-separated), pip wheels (nvidia-cudnn-cu*,
# nvidia-cublas-cu*), or the CUDA toolkit; the driver (libcuda.so.1) from the system.
here=$(dirname "$(readlink -f "$0")")
wheels=$(python3 -c "
import os
for m in ('cudnn', 'cublas'):
    try:
        mod = __import__('nvidia.' + m, fromlist=['x'])
        print(os.path.join(os.path.dirname(mod.__file__), 'lib'), end=':')
    except Exception:
        pass" 2>/dev/null)
path="$here/lib:${SEMSEG_CUDA_LIBS:+$SEMSEG_CUDA_LIBS:}${wheels}${CUDA_HOME:+$CUDA_HOME/lib64:}/usr/local/cuda/lib64"
path="$path:${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/lib/x86_64-linux-gnu:/usr/lib64:/lib/x86_64-linux-gnu"
# the CUDA backend module sits beside the launcher (the program itself sees only the loader as its path)
export SEMSEG_CUDA_MODULE="${SEMSEG_CUDA_MODULE:-$here/semseg_cuda.so}"
exec "$here/lib/ld-linux-x86-64.so.2" --library-path "$path" "$here/semseg.bin" "$@"
