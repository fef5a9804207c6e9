#!/usr/bin/env python3
"""The PyTorch twin of scripts/bench/bench_gpu.lua (run both through scripts/bench/bench_gpu.sh).

    python3 scripts/bench/bench_gpu_torch.py --size 512 --batch 8 [--variant eager|compile] [options]
    python3 scripts/bench/bench_gpu_torch.py --gemm 8192
    python3 scripts/bench/bench_gpu_torch.py --probe          (prints the device and exits 0/1)

The network (bench_cpu_torch.Net with DoubleConv, no attention) is built layer for layer as lua/semseg/models/common.lua builds sg.models.unet with its
defaults (batch norm, nearest up-sampling, no head BN, logits out):
  DoubleConv = [3x3 conv (bias) -> BN -> ReLU] x 2;  enc1..encD (filters base * 2^(level-1)), 2x2 max-pool
  between, bottleneck; decoder D..1: cat([up2_nearest(x), skip]) -> DoubleConv; 1x1 head to 2 classes.
Variants: eager = bf16 autocast + channels_last (the usual recipe); compile = the same through
torch.compile (a failure to compile is reported as a skipped row, not an error). cudnn.benchmark on.
Steps, timing (steps between two torch.cuda.synchronize() calls, after warm-up), FLOP counting (2 * MACs of
every convolution, 3x for training) and the RESULT line follow bench_gpu.lua; peak memory is
torch.cuda.max_memory_allocated(), reset before each phase. Options: --base 64 --depth 4 --warmup 5
--steps 20 --mode both|train|infer --amp bf16|none --device cuda (cpu: a dry run on tiny sizes).
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F


# the network and the FLOP count are the CPU benchmark's twin: one definition of the torch U-Net family
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cpu_torch import DoubleConv, Net, conv_flops  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--base", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--mode", default="both", choices=["both", "train", "infer"])
    ap.add_argument("--amp", default="bf16", choices=["bf16", "fp16", "none"])
    ap.add_argument("--variant", default="eager", choices=["eager", "compile"])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--gemm", type=int)
    ap.add_argument("--probe", action="store_true")
    o = ap.parse_args()
    fields = []

    def put(k, v):
        v = ("%.6g" % v) if isinstance(v, float) else str(v)
        fields.append("%s=%s" % (k, "~".join(v.split())))  # one token per value; bench_gpu.sh decodes ~

    def finish():
        print("RESULT framework=torch variant=%s " % o.variant + " ".join(fields), flush=True)

    gpu = o.device == "cuda"
    if o.probe:
        if torch.cuda.is_available():
            print("%s (torch %s, CUDA %s)" % (torch.cuda.get_device_name(0), torch.__version__, torch.version.cuda))
            return 0
        print("no CUDA device (torch %s)" % torch.__version__)
        return 1
    row = "gemm%d" % o.gemm if o.gemm else "unet%d_%d_b%d" % (o.base, o.size, o.batch)
    put("row", row)
    if gpu and not torch.cuda.is_available():
        print("torch: no CUDA device")
        put("error", "no CUDA device")
        finish()
        return 0
    dev = torch.device(o.device)
    if gpu:
        torch.backends.cudnn.benchmark = True
        put("device_name", torch.cuda.get_device_name(0))
        put("torch", torch.__version__)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[o.amp]

    def sync():
        if gpu:
            torch.cuda.synchronize()

    def timed(n, fn):
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return (time.perf_counter() - t0) / n

    def reset_peak():
        if gpu:
            torch.cuda.reset_peak_memory_stats()

    def peak_bytes():
        return torch.cuda.max_memory_allocated() if gpu else 0

    if o.gemm:
        n = o.gemm
        torch.manual_seed(1)
        a = torch.randn(n, n, device=dev).to(torch.bfloat16)
        b = torch.randn(n, n, device=dev).to(torch.bfloat16)
        for _ in range(3):
            c = a @ b  # warm-up (kept until the timing, then freed)
        reps = max(5, o.steps)
        dt = timed(reps, lambda: a @ b)
        tf = 2 * n ** 3 / dt / 1e12
        print("torch matmul %dx%d bf16: %.3f ms, %.1f TFLOP/s (mean of %d)" % (n, n, dt * 1e3, tf, reps))
        put("gemm_tflops", tf)
        finish()
        del c
        return 0

    B, S = o.batch, o.size
    torch.manual_seed(1)
    model = Net(DoubleConv, False, 1, 2, o.base, o.depth).to(dev)
    torch.manual_seed(3)
    x = torch.randn(B, 1, S, S, device=dev)
    target = torch.randint(0, 2, (B, S, S), device=dev)
    put("params", sum(p.numel() for p in model.parameters()))
    fwd_flops = conv_flops(model, x)
    put("fwd_gflop", fwd_flops / 1e9)
    if gpu:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    net = model
    if o.variant == "compile":
        if not hasattr(torch, "compile"):
            print("torch %s has no torch.compile: skipped" % torch.__version__)
            put("skipped", "no torch.compile in torch " + torch.__version__)
            finish()
            return 0
        net = torch.compile(model)

    def forward(inp):
        if amp_dtype is None:
            return net(inp)
        with torch.autocast(device_type=dev.type, dtype=amp_dtype):
            return net(inp)

    def guarded(what, fn):
        try:
            fn()
            return True
        except Exception as e:  # a failing compile is a skipped row, anything else an error
            msg = ("%s: %s" % (type(e).__name__, e)).splitlines()[0][:160]
            print("torch %s %s failed: %s" % (o.variant, what, msg), file=sys.stderr)
            put("skipped" if o.variant == "compile" else "error", what + ":" + msg)
            finish()
            return False

    if o.mode in ("both", "infer"):
        def infer_phase():
            model.eval()

            def step():
                with torch.no_grad():
                    y = forward(x)
                    assert y.shape[0] == B

            for _ in range(o.warmup):
                step()
            reset_peak()
            dt = timed(o.steps, step)
            peak = peak_bytes()
            model.train()
            print("torch %s unet base %d %dx%d batch %d  inference: %.2f ms/step, %.1f img/s, %.1f TFLOP/s, "
                  "peak %.2f GiB" % (o.variant, o.base, S, S, B, dt * 1e3, B / dt, fwd_flops / dt / 1e12,
                                     peak / 2 ** 30))
            put("infer_s", dt)
            put("infer_ips", B / dt)
            put("infer_tflops", fwd_flops / dt / 1e12)
            put("peak_infer_bytes", peak)

        if not guarded("inference", infer_phase):
            return 0

    if o.mode in ("both", "train"):
        def train_phase():
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            loss = [None]
            scaler = torch.cuda.amp.GradScaler() if amp_dtype is torch.float16 and gpu else None

            def step():
                opt.zero_grad(set_to_none=True)
                y = forward(x)
                lo = F.cross_entropy(y.float(), target)
                if scaler:
                    scaler.scale(lo).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    lo.backward()
                    opt.step()
                loss[0] = lo

            for _ in range(o.warmup):
                step()
            first = loss[0].item()
            reset_peak()
            dt = timed(o.steps, step)
            peak = peak_bytes()
            last = loss[0].item()
            print("torch %s unet base %d %dx%d batch %d  training:  %.2f ms/step, %.1f img/s, %.1f TFLOP/s, "
                  "peak %.2f GiB (loss %.4f -> %.4f)" % (o.variant, o.base, S, S, B, dt * 1e3, B / dt,
                                                         3 * fwd_flops / dt / 1e12, peak / 2 ** 30, first, last))
            put("train_s", dt)
            put("train_ips", B / dt)
            put("train_tflops", 3 * fwd_flops / dt / 1e12)
            put("peak_train_bytes", peak)
            put("loss", last)

        if not guarded("training", train_phase):
            return 0
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
