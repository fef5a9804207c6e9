# CUDA emulation build (build.sh): rewrites the kernel launches of a .cu file,
#   f<T, V><<<grid, block, smem, stream>>>(args)  ->  emu::L(grid, block, smem, stream).run([=]() { f<T, V>(args); })
# so the file compiles as host C++ against include/cuda_runtime.h. Prints the result. Used on the .cu
# file and on the .cuh headers next to it (which may launch kernels too).
import sys
src = open(sys.argv[1]).read()
out, i = [], 0
while True:
    j = src.find('<<<', i)
    if j < 0:
        out.append(src[i:]); break
    # callee: identifier with optional template arguments, scanning backwards
    k = j
    if src[k-1] == '>':
        depth, k = 0, k - 1
        while True:
            c = src[k]
            if c == '>': depth += 1
            elif c == '<':
                depth -= 1
                if depth == 0: break
            k -= 1
    while k > 0 and (src[k-1].isalnum() or src[k-1] in '_:'): k -= 1
    callee = src[k:j]
    e = src.find('>>>', j)
    cfg = src[j+3:e]
    p = e + 3
    while src[p].isspace(): p += 1
    assert src[p] == '(', src[e:e+40]
    depth, q = 0, p
    while True:
        c = src[q]
        if c == '(': depth += 1
        elif c == ')':
            depth -= 1
            if depth == 0: break
        q += 1
    args = src[p+1:q]
    out.append(src[i:k])
    out.append('emu::L(%s).run([=]() { %s(%s); })' % (cfg, callee, args))
    i = q + 1
text = ''.join(out)
hdr = '#include "cuda_runtime.h"\n#ifndef EMU_L_DEFINED\n#define EMU_L_DEFINED\nnamespace emu { struct L { dim3 g, b; L(dim3 g_, dim3 b_, size_t = 0, cudaStream_t = nullptr) : g(g_), b(b_) {} void run(std::function<void()> f) { launch(g, b, f); } }; }\n#endif\n'
sys.stdout.write(hdr + '#line 1 "%s"\n' % sys.argv[1] + text)
