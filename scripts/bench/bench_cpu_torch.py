#!/usr/bin/python3
"""The PyTorch twin of scripts/bench/bench_cpu.lua (run both through scripts/bench/bench_cpu.sh).

    /usr/bin/python3 scripts/bench/bench_cpu_torch.py --model unet --base 32 --size 256 --batch 4 [options]
    /usr/bin/python3 scripts/bench/bench_cpu_torch.py --tiled 1024 --base 32 [--tile 256 --overlap 0.25 --batch 4]
    /usr/bin/python3 scripts/bench/bench_cpu_torch.py --gemm 2048

The networks are built here layer for layer as lua/semseg/models/common.lua builds them (the defaults
of sg.models: batch norm, nearest up-sampling, no head BN, logits out):
  DoubleConv  = [3x3 conv (bias) -> BN -> ReLU] x 2
  ResBlock    = conv3x3-BN-ReLU-conv3x3-BN + (1x1 conv-BN shortcut), added, ReLU
  AttentionGate(c, cd): g = ReLU(BN(1x1 conv_c(d))); theta = 2x2 stride-2 conv_c(x);
                phi = 3x3 stride-1 pad-1 transposed conv_c(1x1 conv_c(g)); a = sigmoid(1x1 conv_1(ReLU(theta + phi)));
                out = BN(1x1 conv_c(up2_nearest(a) * x))
  skeleton    = enc1..encD (filters base * 2^(level-1)), 2x2 max-pool between, bottleneck; decoder D..1:
                [gate the skip], cat([up2_nearest(x), skip]) -> block; 1x1 head.
Steps, timing, FLOP counting and the RESULT line follow bench_cpu.lua exactly; the tiled prediction
repeats sg.predict.tiled's logic (reflect padding by half the overlap, evenly spread tiles, Gaussian
importance map with sigma = tile / 8, sigmoid, weighted blend).
"""
import argparse
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- the networks
class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout)
        self.shortcut, self.shortcut_bn = nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut_bn(self.shortcut(x)))


class AttentionGate(nn.Module):
    def __init__(self, c, cd):
        super().__init__()
        self.gate_conv, self.gate_bn = nn.Conv2d(cd, c, 1), nn.BatchNorm2d(c)
        self.theta = nn.Conv2d(c, c, 2, stride=2)
        self.phi = nn.Conv2d(c, c, 1)
        self.phi_up = nn.ConvTranspose2d(c, c, 3, stride=1, padding=1)
        self.psi = nn.Conv2d(c, 1, 1)
        self.proj, self.proj_bn = nn.Conv2d(c, c, 1), nn.BatchNorm2d(c)

    def forward(self, x, d):
        g = F.relu(self.gate_bn(self.gate_conv(d)))
        theta = self.theta(x)
        phi = self.phi_up(self.phi(g), output_size=theta.shape[2:])
        a = torch.sigmoid(self.psi(F.relu(theta + phi)))
        a = F.interpolate(a, scale_factor=2, mode="nearest")
        return self.proj_bn(self.proj(x * a))


class Net(nn.Module):
    def __init__(self, block, attention, in_channels=1, classes=1, base=32, depth=4):
        super().__init__()
        self.depth, self.attention = depth, attention
        filters = [base << level for level in range(depth + 1)]
        cin = in_channels
        self.enc = nn.ModuleList()
        for level in range(depth):
            self.enc.append(block(cin, filters[level]))
            cin = filters[level]
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = block(cin, filters[depth])
        cd = filters[depth]
        self.att, self.dec = nn.ModuleList(), nn.ModuleList()  # index 0 is decoder level depth
        for level in range(depth - 1, -1, -1):
            c = filters[level]
            if attention:
                self.att.append(AttentionGate(c, cd))
            self.dec.append(block(cd + c, c))  # nearest up-sampling keeps cd channels
            cd = c
        self.head = nn.Conv2d(filters[0], classes, 1)

    def forward(self, x):
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for i in range(self.depth):
            skip = skips[self.depth - 1 - i]
            if self.attention:
                skip = self.att[i](skip, x)
            x = self.dec[i](torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skip], 1))
        return self.head(x)


MODELS = {
    "unet": (DoubleConv, False),
    "attention_unet": (DoubleConv, True),
    "attention_residual_unet": (ResBlock, True),
}


# ---------------------------------------------------------------- helpers
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def conv_flops(model, x):
    """2 * MACs of every convolution in one eval forward pass of x (any device)"""
    total = [0]

    def conv_hook(m, inp, out):
        w = m.weight.shape  # [cout, cin/groups, kh, kw]
        total[0] += 2 * out.numel() * w[1] * w[2] * w[3]

    def convt_hook(m, inp, out):
        w = m.weight.shape  # [cin, cout/groups, kh, kw]
        total[0] += 2 * inp[0].numel() * w[1] * w[2] * w[3]

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.ConvTranspose2d):
            hooks.append(m.register_forward_hook(convt_hook))
        elif isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
    model.eval()
    with torch.no_grad():
        model(x)
    model.train()
    for h in hooks:
        h.remove()
    return total[0]


def timed(n, fn):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return sum(ts) / len(ts), ts[(len(ts) - 1) // 2], ts[0]


# ---------------------------------------------------------------- tiled prediction, as sg.predict.tiled
def reflect_pad(x, l, r, t, b):
    while l + r + t + b > 0:
        h, w = x.shape[-2], x.shape[-1]
        cap_w, cap_h = w - 1, h - 1
        if (cap_w < 1 and l + r > 0) or (cap_h < 1 and t + b > 0):
            return F.pad(x.unsqueeze(0), (l, r, t, b), mode="replicate")[0]
        pl, pr, pt, pb = min(l, cap_w), min(r, cap_w), min(t, cap_h), min(b, cap_h)
        x = F.pad(x.unsqueeze(0), (pl, pr, pt, pb), mode="reflect")[0]
        l, r, t, b = l - pl, r - pr, t - pt, b - pb
    return x


def positions(n, t, s):
    if n <= t:
        return [0]
    k = math.ceil((n - t) / s) + 1
    return [math.floor(i * (n - t) / (k - 1) + 0.5) for i in range(k)]


def gaussian(th, tw):
    def line(n):
        sigma, c = n / 8, (n - 1) / 2
        return torch.tensor([math.exp(-0.5 * ((i - c) / sigma) ** 2) for i in range(n)], dtype=torch.float64)

    g = line(th).reshape(th, 1) * line(tw).reshape(1, tw)
    return (g / g.max()).float()


def predict_tiled(model, image, tile=256, overlap=0.25, batch=4):
    """image C x H x W -> K x H x W sigmoid probabilities; returns (probs, number of tiles)"""
    th = tw = tile
    H, W = image.shape[1], image.shape[2]
    sh, sw = max(1, math.floor(th * (1 - overlap))), max(1, math.floor(tw * (1 - overlap)))
    mh, mw = (th - sh) // 2, (tw - sw) // 2
    PH, PW = max(H + 2 * mh, th), max(W + 2 * mw, tw)
    top, left = (PH - H) // 2, (PW - W) // 2
    bottom, right = PH - H - top, PW - W - left
    boxes = [(y, x) for y in positions(PH, th, sh) for x in positions(PW, tw, sw)]
    g = gaussian(th, tw)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        img = reflect_pad(image, left, right, top, bottom)
        acc = wsum = None
        for b0 in range(0, len(boxes), batch):
            bx = boxes[b0:b0 + batch]
            xb = torch.stack([img[:, y:y + th, x:x + tw] for y, x in bx])
            p = torch.sigmoid(model(xb))
            if acc is None:
                acc, wsum = torch.zeros(p.shape[1], PH, PW), torch.zeros(PH, PW)
            for i, (y, x) in enumerate(bx):
                acc[:, y:y + th, x:x + tw] += p[i] * g
                wsum[y:y + th, x:x + tw] += g
        out = acc[:, top:top + H, left:left + W] / wsum[top:top + H, left:left + W]
    model.train(was_training)
    return out.contiguous(), len(boxes)


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="unet", choices=sorted(MODELS))
    ap.add_argument("--base", type=int, default=32)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--mode", default="both", choices=["both", "train", "infer"])
    ap.add_argument("--tiled", type=int)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=float, default=0.25)
    ap.add_argument("--gemm", type=int)
    o = ap.parse_args()
    torch.set_num_threads(o.threads)
    fields = []

    def put(k, v):
        fields.append("%s=%s" % (k, ("%.6g" % v) if isinstance(v, float) else v))

    def finish():
        put("threads", torch.get_num_threads())
        print("RESULT framework=torch " + " ".join(fields), flush=True)

    if o.gemm:
        n = o.gemm
        torch.manual_seed(1)
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        reps = max(3, o.steps)
        best = min(timed(1, lambda: torch.mm(a, b))[0] for _ in range(reps))
        gf = 2 * n ** 3 / best / 1e9
        print("torch.mm %dx%d f32: %.1f ms, %.1f GFLOP/s (best of %d)" % (n, n, best * 1e3, gf, reps))
        put("row", "gemm%d" % n)
        put("gemm_gflops", gf)
        finish()
        return

    torch.manual_seed(1)
    base_mb = peak_mb()
    block, attention = MODELS[o.model]
    model = Net(block, attention, 1, 1, o.base, o.depth)

    if o.tiled:
        S = o.tiled
        torch.manual_seed(2)
        image = torch.rand(1, S, S)
        gflop_tile = conv_flops(model, torch.zeros(1, 1, o.tile, o.tile))
        res = {}

        def run():
            p, res["tiles"] = predict_tiled(model, image, o.tile, o.overlap, o.batch)
            assert p.shape[1] == S and p.shape[2] == S

        for _ in range(o.warmup):
            run()
        mean, med, best = timed(o.steps, run)
        mpx = S * S / 1e6
        print("torch  tiled %s base %d: %dx%d image, tile %d, overlap %.2f, batch %d: %d tiles, %.3f s (median %.3f), "
              "%.3f MPx/s, peak RSS %.0f MB" % (o.model, o.base, S, S, o.tile, o.overlap, o.batch, res["tiles"], mean,
                                                med, mpx / mean, peak_mb()))
        put("row", "tiled_%s%d_%d" % (o.model, o.base, S))
        put("tiles", res["tiles"])
        put("tiled_s", mean)
        put("tiled_mpxs", mpx / mean)
        put("tiled_min_s", best)
        put("tiled_gflops", res["tiles"] * gflop_tile / 1e9 / mean)
        put("peak_infer_mb", peak_mb())
        put("base_mb", base_mb)
        finish()
        return

    B, S = o.batch, o.size
    torch.manual_seed(3)
    x = torch.randn(B, 1, S, S)
    target = (torch.rand(B, 1, S, S) > 0.5).float()
    fwd_flops = conv_flops(model, torch.zeros(B, 1, S, S))
    put("row", "%s%d_%d_b%d" % (o.model, o.base, S, B))
    put("params", sum(p.numel() for p in model.parameters()))
    put("fwd_gflop", fwd_flops / 1e9)

    if o.mode in ("both", "infer"):
        model.eval()

        def istep():
            with torch.no_grad():
                y = model(x)
                assert y.shape[0] == B

        for _ in range(o.warmup):
            istep()
        mean, med, best = timed(o.steps, istep)
        model.train()
        peak = peak_mb()
        print("torch  %s base %d %dx%d batch %d  inference: %.1f ms/step (median %.1f), %.2f img/s, "
              "%.1f conv GFLOP/s, peak RSS %.0f MB" % (o.model, o.base, S, S, B, mean * 1e3, med * 1e3, B / mean,
                                                       fwd_flops / mean / 1e9, peak))
        put("infer_s", mean)
        put("infer_min_s", best)
        put("infer_ips", B / mean)
        put("infer_gflops", fwd_flops / mean / 1e9)
        put("peak_infer_mb", peak)

    if o.mode in ("both", "train"):
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        last = [0.0]

        def tstep():
            opt.zero_grad(set_to_none=True)
            y = model(x)
            loss = F.binary_cross_entropy_with_logits(y, target)
            loss.backward()
            opt.step()
            last[0] = loss.item()

        for _ in range(o.warmup):
            tstep()
        mean, med, best = timed(o.steps, tstep)
        peak = peak_mb()
        print("torch  %s base %d %dx%d batch %d  training:  %.1f ms/step (median %.1f), %.2f img/s, "
              "%.1f conv GFLOP/s, peak RSS %.0f MB (loss %.4f)" % (o.model, o.base, S, S, B, mean * 1e3, med * 1e3,
                                                                   B / mean, 3 * fwd_flops / mean / 1e9, peak, last[0]))
        put("train_s", mean)
        put("train_min_s", best)
        put("train_ips", B / mean)
        put("train_gflops", 3 * fwd_flops / mean / 1e9)
        put("peak_train_mb", peak)
    put("base_mb", base_mb)
    finish()


if __name__ == "__main__":
    main()
