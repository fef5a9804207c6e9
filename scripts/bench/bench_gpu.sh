#!/bin/sh
# semseg against PyTorch on an NVIDIA GPU, side by side.
#
#   bash scripts/bench/bench_gpu.sh [--quick] [--rows "512:8,256:32"] [--warmup 5] [--steps 20] [--amp bf16|fp16|none]
#                             [--compile | --no-compile] [--gemm 8192] [--out results.txt]
#   bash scripts/bench/bench_gpu.sh --bundle DIR [--cuda-libs]    (on the build machine, see below)
#
# Model: sg.models.unet base 64, depth 4, 1 input channel, 2 classes (scripts/bench/bench_gpu.lua) and its
# PyTorch twin built layer for layer in scripts/bench/bench_gpu_torch.py, both in bf16 autocast with f32 weights.
# Rows "size:batch" (default 512x512 batch 8 and 256x256 batch 32). For each row it runs, each in a fresh
# process: semseg, PyTorch eager (autocast + channels_last) and PyTorch torch.compile (a compile failure
# is a skipped cell). A training step is forward, cross-entropy, backward, Adam; inference is eval +
# no-grad. Steps are timed between two synchronisations after the warm-up. The table gives images/s for
# training and inference, the ratio semseg/torch, peak GPU memory (sg.cuda.memory_stats().peak_allocated
# vs torch.cuda.max_memory_allocated()) and achieved TFLOP/s (conv FLOPs, x3 for training) as a
# percentage of the bf16 matmul rate of the same card measured in the same run (torch.matmul 8192^2;
# semseg's own sg.matmul is shown beside it). --quick: fewer steps and no torch.compile (a few minutes).
# Without a usable GPU it prints "no CUDA device: skipped" and exits 0.
#
# The GPU machine needs python3 with torch (CUDA build); Lua, libpng etc. are not needed there if the
# binary comes with its libraries. On the build machine (after make):
#     bash scripts/bench/bench_gpu.sh --bundle build/gpu_libs            # copies the non-system shared libraries
#     bash scripts/bench/bench_gpu.sh --bundle build/gpu_libs --cuda-libs   # ... and cuDNN/cuBLAS too (~1 GB)
# then copy the repository with build/semseg and build/gpu_libs to the GPU machine and run
#     bash scripts/bench/bench_gpu.sh
# It puts build/gpu_libs (or $SEMSEG_LIBS) and the lib folders of the nvidia-cudnn-* / nvidia-cublas-*
# wheels that torch installs on LD_LIBRARY_PATH. semseg links libcudnn.so.9 and the cuBLAS of the CUDA it
# was built with (libcublas.so.13 for CUDA 13): when the wheels carry another major version, bundle with
# --cuda-libs. The CUDA runtime is linked statically and needs a driver new enough for that CUDA.
# Environment: PYTHON (default python3), SEMSEG_BIN (default build/semseg); BENCH_GPU_DRY_RUN=1 runs the
# whole pipeline on the cpu with a tiny network (base 8, depth 2, 32x32 and 64x64), to test the script.
set -eu
cd "$(dirname "$0")/../.."

QUICK=0
ROWS=""
WARMUP=""
STEPS=""
AMP=bf16
COMPILE=""
GEMM=8192
OUTFILE=""
BUNDLE=""
CUDA_LIBS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --rows) ROWS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --amp) AMP="$2"; shift 2 ;;
    --compile) COMPILE=1; shift ;;
    --no-compile) COMPILE=0; shift ;;
    --gemm) GEMM="$2"; shift 2 ;;
    --out) OUTFILE="$2"; shift 2 ;;
    --bundle) BUNDLE="$2"; shift 2 ;;
    --cuda-libs) CUDA_LIBS=1; shift ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "bench_gpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
BIN=${SEMSEG_BIN:-build/semseg}
PY=${PYTHON:-python3}

# ---------------------------------------------------------------- --bundle: gather the binary's libraries
if [ -n "$BUNDLE" ]; then
  [ -x "$BIN" ] || { echo "bench_gpu.sh: $BIN is missing; run make first" >&2; exit 2; }
  mkdir -p "$BUNDLE"
  n=0
  for lib in $(ldd "$BIN" | awk '/=>/ && $3 ~ /^\// {print $3}'); do
    base=$(basename "$lib")
    case "$base" in
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libgcc_s.so*|libstdc++.so*) continue ;;
      libcudnn*|libcublas*) [ "$CUDA_LIBS" = 1 ] || continue ;;
    esac
    cp -L "$lib" "$BUNDLE/$base"
    n=$((n + 1))
  done
  if [ "$CUDA_LIBS" = 1 ]; then # cuDNN 9 loads its engine libraries at run time
    cudnn=$(ldd "$BIN" | awk '/libcudnn.so/ {print $3}')
    [ -z "$cudnn" ] || for extra in "$(dirname "$cudnn")"/libcudnn_*.so.9; do
      [ -e "$extra" ] && cp -L "$extra" "$BUNDLE/" && n=$((n + 1))
    done
  fi
  echo "bench_gpu.sh: $n libraries copied to $BUNDLE ($(du -sh "$BUNDLE" | cut -f1)); on the GPU machine: bash scripts/bench/bench_gpu.sh"
  exit 0
fi

# ---------------------------------------------------------------- libraries and the device
LIBS=${SEMSEG_LIBS:-build/gpu_libs}
LDP=""
[ -d "$LIBS" ] && LDP="$(cd "$LIBS" && pwd)"
HAVE_TORCH=0
if "$PY" -c "import torch" 2>/dev/null; then
  HAVE_TORCH=1
  # the cuDNN / cuBLAS wheels that come with torch
  WHEELS=$("$PY" - <<'EOF' 2>/dev/null || true
import importlib, os
out = []
for name in ("nvidia.cudnn", "nvidia.cublas", "nvidia.cuda_runtime"):
    try:
        m = importlib.import_module(name)
    except Exception:
        continue
    for p in list(getattr(m, "__path__", [])) + [os.path.dirname(getattr(m, "__file__", "") or "")]:
        d = os.path.join(p, "lib")
        if p and os.path.isdir(d) and d not in out:
            out.append(d)
print(":".join(out))
EOF
)
  [ -z "$WHEELS" ] || LDP="${LDP:+$LDP:}$WHEELS"
fi
[ -z "$LDP" ] || export LD_LIBRARY_PATH="$LDP${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

TORCH_GPU=0
if [ "$HAVE_TORCH" = 1 ] && "$PY" scripts/bench/bench_gpu_torch.py --probe >/dev/null 2>&1; then TORCH_GPU=1; fi
SEMSEG_GPU=0
SEMSEG_WHY=""
if [ ! -x "$BIN" ]; then
  SEMSEG_WHY="$BIN is missing (build it with make, or set SEMSEG_BIN)"
elif ! "$BIN" -e 'print(1)' >/dev/null 2>&1; then
  missing=$(ldd "$BIN" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')
  SEMSEG_WHY="$BIN does not start${missing:+: missing libraries: $missing(see --bundle in the header)}"
elif "$BIN" -e 'os.exit(sg.cuda.is_available() and 0 or 1)' >/dev/null 2>&1; then
  SEMSEG_GPU=1
else
  SEMSEG_WHY="semseg sees no GPU: $("$BIN" -e 'print(sg.cuda.why_unavailable())' 2>&1 | head -1)"
fi
DRY=""
if [ "${BENCH_GPU_DRY_RUN:-0}" = 1 ]; then
  echo "bench_gpu.sh: dry run on the cpu (BENCH_GPU_DRY_RUN=1): tiny network, the numbers mean nothing"
  TORCH_GPU=$HAVE_TORCH
  [ -x "$BIN" ] && SEMSEG_GPU=1
  DRY="--device cpu --base 8 --depth 2"
  GEMM=256
  [ -n "$ROWS" ] || ROWS="32:2,64:2"
fi
if [ "$TORCH_GPU" = 0 ] && [ "$SEMSEG_GPU" = 0 ]; then
  echo "no CUDA device: skipped${SEMSEG_WHY:+ ($SEMSEG_WHY)}"
  exit 0
fi
[ "$SEMSEG_GPU" = 1 ] || echo "bench_gpu.sh: the semseg cells stay empty: $SEMSEG_WHY" >&2
[ "$TORCH_GPU" = 1 ] || echo "bench_gpu.sh: the PyTorch cells stay empty: no torch with CUDA under $PY" >&2

if [ "$QUICK" = 1 ]; then
  : "${WARMUP:=2}" "${STEPS:=5}" "${COMPILE:=0}"
else
  : "${WARMUP:=5}" "${STEPS:=20}" "${COMPILE:=1}"
fi
[ -n "$ROWS" ] || ROWS="512:8,256:32"
[ -n "$OUTFILE" ] || OUTFILE=$(mktemp /tmp/bench_gpu.XXXXXX)
: > "$OUTFILE"

run_semseg() {
  [ "$SEMSEG_GPU" = 1 ] || return 0
  # shellcheck disable=SC2086
  "$BIN" run scripts/bench/bench_gpu.lua --amp "$AMP" $DRY "$@" 2>&1 | tee -a "$OUTFILE" | grep -v '^RESULT' || true
}
run_torch() {
  [ "$TORCH_GPU" = 1 ] || return 0
  # shellcheck disable=SC2086
  "$PY" scripts/bench/bench_gpu_torch.py --amp "$AMP" $DRY "$@" 2>&1 | tee -a "$OUTFILE" | grep -v '^RESULT' || true
}

start=$(date +%s)
if [ "$SEMSEG_GPU" = 1 ]; then echo "semseg: $("$BIN" -e 'print(sg.backends())' 2>&1 | head -1)"; fi
run_torch --gemm "$GEMM"
run_semseg --gemm "$GEMM"
k=0
for row in $(echo "$ROWS" | tr ',' ' '); do
  k=$((k + 1))
  size=${row%%:*}
  batch=${row#*:}
  set -- --size "$size" --batch "$batch" --warmup "$WARMUP" --steps "$STEPS"
  if [ $((k % 2)) = 1 ]; then run_semseg "$@"; run_torch "$@"; else run_torch "$@"; run_semseg "$@"; fi
  if [ "$COMPILE" = 1 ]; then run_torch "$@" --variant compile; fi
done
echo "wall time $(( $(date +%s) - start )) s; raw results in $OUTFILE"
echo

"$PY" - "$OUTFILE" "$AMP" "$COMPILE" <<'EOF'
import re
import sys
path, amp, compiled = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
res, order, gemm, names, gemm_n = {}, [], {}, {}, "?"
for line in open(path):
    if not line.startswith("RESULT "):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    kv = {k: v.replace("~", " ") for k, v in kv.items()}
    who = kv["framework"] if kv["framework"] == "semseg" else "torch_" + kv.get("variant", "eager")
    if "device_name" in kv:
        names[kv["framework"]] = kv["device_name"]
    if kv["row"].startswith("gemm"):
        gemm_n = kv["row"][4:]
        if "gemm_tflops" in kv:
            gemm[kv["framework"]] = float(kv["gemm_tflops"])
        continue
    if kv["row"] not in res:
        res[kv["row"]] = {}
        order.append(kv["row"])
    res[kv["row"]][who] = kv

peak = gemm.get("torch") or gemm.get("semseg")
print("# semseg vs PyTorch: U-Net base 64, depth 4, 1 -> 2 classes, %s autocast, Adam, cross-entropy" % amp)
print()
print("device: %s" % (names.get("torch") or names.get("semseg") or "?") +
      ("  (semseg: %s)" % names["semseg"] if "semseg" in names else ""))
print("bf16 matmul %sx%s: torch %s TFLOP/s, semseg %s TFLOP/s; %% = achieved conv TFLOP/s / %s" % (
    gemm_n, gemm_n, "%.0f" % gemm["torch"] if "torch" in gemm else "-", "%.0f" % gemm["semseg"] if "semseg" in gemm else "-",
    "torch's matmul rate" if "torch" in gemm else "semseg's matmul rate" if peak else "(no matmul rate)"))
print()
cols = [("semseg", "semseg"), ("torch_eager", "eager")] + ([("torch_compile", "compile")] if compiled else [])
hdr = "| input | batch | step | " + " | ".join("%s img/s" % c[1] for c in cols)
hdr += " | " + " | ".join("semseg/%s" % c[1] for c in cols[1:])
hdr += " | " + " | ".join("%s TFLOP/s" % c[1] for c in cols)
hdr += " | " + " | ".join("%s peak GiB" % c[1] for c in cols) + " |"
print(hdr)
ncol = hdr.count("|") - 1
print("|" + "|".join(["---"] * 3 + ["---:"] * (ncol - 3)) + "|")


def cell_of(kv, rate):
    if kv is None:
        return None, "-"
    if rate in kv:
        return float(kv[rate]), None
    why = kv.get("error") or kv.get("skipped")
    if why:
        return None, ("skipped" if "skipped" in kv else "error") + ": " + why[:60]
    return None, "-"


for r in order:
    d = res[r]
    mt = re.match(r"unet\d+_(\d+)_b(\d+)$", r)
    size, batch = mt.groups() if mt else (r, "?")
    for step, rate, tf, pk in (("train", "train_ips", "train_tflops", "peak_train_bytes"),
                               ("infer", "infer_ips", "infer_tflops", "peak_infer_bytes")):
        vals = [cell_of(d.get(c[0]), rate) for c in cols]
        cells = ["%.1f" % v if v is not None else why for v, why in vals]
        ratios = []
        for v, _ in vals[1:]:
            ratios.append("%.2f" % (vals[0][0] / v) if vals[0][0] is not None and v else "-")
        tfl, pks = [], []
        for c in cols:
            kv = d.get(c[0]) or {}
            if tf in kv:
                t = float(kv[tf])
                tfl.append("%.1f (%.0f%%)" % (t, 100 * t / peak) if peak else "%.1f" % t)
            else:
                tfl.append("-")
            pks.append("%.2f" % (float(kv[pk]) / 2 ** 30) if pk in kv else "-")
        print("| %sx%s | %s | %s | %s | %s | %s | %s |" % (size, size, batch, step, " | ".join(cells), " | ".join(ratios),
                                                      " | ".join(tfl), " | ".join(pks)))
print()
print("img/s: images per second (higher is better); semseg/x above 1 means semseg is faster. Peak GiB: the")
print("allocator's peak of tensor memory during that phase (inference, then training with Adam state).")
EOF
