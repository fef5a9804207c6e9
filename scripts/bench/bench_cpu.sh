#!/bin/sh
# semseg against PyTorch on the CPU, side by side (issue 7).
#
#   scripts/bench/bench_cpu.sh [--threads 2] [--quick] [--repeat 1] [--rows "unet 32 256 4 1 3, tiled unet 32 1024 4 1 3"] [--out results.txt]
#
# For every row (same architecture, input size, batch, f32 and thread count in both) it runs
# build/semseg run scripts/bench/bench_cpu.lua and /usr/bin/python3 scripts/bench/bench_cpu_torch.py one after
# the other, each in a fresh process (so the peak resident memory is per row), the order alternating
# from row to row; then it prints one table: images/s for a training step (forward, BCE with logits,
# backward, Adam) and an inference step (eval, no grad), their ratio, achieved conv GFLOP/s as a
# fraction of the 2048x2048 sgemm rate measured at the start of the same run, and peak RSS.
# The tiled row predicts a 1024x1024 image in 256x256 tiles with overlap 0.25 (megapixels/s).
# --quick runs a small subset (about a minute); --rows gives your own, comma-separated, each
# "model base size batch warmup steps" or "tiled model base image_size batch warmup steps".
# --repeat N runs the whole list N times (the semseg/torch order flipped each round) and reports each
# row's median rates and largest peak memory: a shared machine's noise moves single runs by 30 %.
# The raw "RESULT" lines are kept in --out.
# Needs `make` first. OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are set to --threads for both.
set -eu
cd "$(dirname "$0")/../.."

THREADS=2
QUICK=0
REPEAT=1
MYROWS=""
OUTFILE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --rows) MYROWS="$2"; shift 2 ;;
    --out) OUTFILE="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench_cpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x build/semseg ] || { echo "bench_cpu.sh: build/semseg is missing; run make first" >&2; exit 2; }
PY=/usr/bin/python3
"$PY" -c "import torch" 2>/dev/null || { echo "bench_cpu.sh: $PY cannot import torch" >&2; exit 2; }
export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS"
[ -n "$OUTFILE" ] || OUTFILE=$(mktemp /tmp/bench_cpu.XXXXXX)
: > "$OUTFILE"

# rows: model base size batch warmup steps  (tiled: "tiled model base image_size batch warmup steps")
if [ "$QUICK" = 1 ]; then
  ROWS="unet 16 128 4 2 5
unet 32 128 4 2 5
unet 16 256 1 2 5
attention_unet 16 128 4 1 3
tiled unet 16 512 4 1 3"
else
  ROWS="unet 16 128 4 3 12
unet 16 128 1 3 12
unet 32 128 4 2 8
unet 32 128 1 3 12
unet 64 128 4 1 4
unet 64 128 1 2 5
unet 16 256 4 2 8
unet 16 256 1 3 12
unet 32 256 4 1 4
unet 32 256 1 2 5
unet 64 256 4 1 3
unet 64 256 1 1 3
attention_unet 32 256 4 1 3
attention_residual_unet 32 256 4 1 3
tiled unet 32 1024 4 1 3"
fi
[ -z "$MYROWS" ] || ROWS=$(echo "$MYROWS" | tr ',' '\n' | sed 's/^ *//')

run_semseg() { build/semseg run scripts/bench/bench_cpu.lua --threads "$THREADS" "$@" | tee -a "$OUTFILE" | grep -v '^RESULT' || true; }
run_torch() { "$PY" scripts/bench/bench_cpu_torch.py --threads "$THREADS" "$@" | tee -a "$OUTFILE" | grep -v '^RESULT' || true; }

start=$(date +%s)
run_semseg --gemm 2048
run_torch --gemm 2048
case "$REPEAT" in ''|*[!0-9]*|0) echo "bench_cpu.sh: --repeat needs a positive integer, got '$REPEAT'" >&2; exit 2 ;; esac
round=0
while [ "$round" -lt "$REPEAT" ]; do
round=$((round + 1))
[ "$REPEAT" = 1 ] || echo "--- round $round of $REPEAT"
k=$round
echo "$ROWS" | while read -r a b c d e f g; do
  k=$((k + 1))
  if [ "$a" = tiled ]; then
    set -- --tiled "$d" --model "$b" --base "$c" --batch "$e" --warmup "$f" --steps "$g"
  else
    set -- --model "$a" --base "$b" --size "$c" --batch "$d" --warmup "$e" --steps "$f"
  fi
  if [ $((k % 2)) = 0 ]; then run_semseg "$@"; run_torch "$@"; else run_torch "$@"; run_semseg "$@"; fi
done
done
echo "wall time $(( $(date +%s) - start )) s; raw results in $OUTFILE"
echo

"$PY" - "$OUTFILE" "$THREADS" "$REPEAT" <<'EOF'
import sys, statistics
rows, order, gemm = {}, [], {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    if kv["row"].startswith("gemm"):
        gemm.setdefault(kv["framework"], []).append(float(kv["gemm_gflops"]))
        continue
    if kv["row"] not in rows:
        rows[kv["row"]] = {}
        order.append(kv["row"])
    rows[kv["row"]].setdefault(kv["framework"], []).append(kv)
# one record per row and framework: median rates and GFLOP/s, largest peak memory over the rounds
def merge(runs):
    out = dict(runs[0])
    for key in out:
        if key.endswith("_mb"):
            out[key] = str(max(float(r[key]) for r in runs if key in r))
        elif key.endswith(("_ips", "_gflops", "_mpxs")):
            out[key] = str(statistics.median(float(r[key]) for r in runs if key in r))
    return out
rows = {r: {fw: merge(runs) for fw, runs in by.items()} for r, by in rows.items()}
gemm = {fw: statistics.median(v) for fw, v in gemm.items()}
peak = gemm.get("semseg") or max(gemm.values())
print("f32, %s threads, %s round(s) (median rates, largest peak); sgemm 2048x2048: semseg (OpenBLAS) %.0f GFLOP/s, "
      "torch %.0f GFLOP/s; %% = conv GFLOP/s / %.0f" % (sys.argv[2], sys.argv[3], gemm.get("semseg", 0),
                                                        gemm.get("torch", 0), peak))
print()
hdr = ("| row | step | semseg | torch | semseg/torch | semseg conv GFLOP/s | torch conv GFLOP/s "
       "| semseg peak MB | torch peak MB |")
print(hdr)
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
def name(r):
    if r.startswith("tiled_"):
        return r
    m, size, b = r.rsplit("_", 2)
    return "%s %sx%s %s" % (m, size, size, b)
for r in order:
    s, t = rows[r].get("semseg"), rows[r].get("torch")
    if not s or not t:
        print("| %s | missing result (%s) | | | | | | | |" % (r, "semseg" if not s else "torch"))
        continue
    steps = [("tiled", "tiled_mpxs", "tiled_gflops", "peak_infer_mb", "MPx/s")] if "tiled_mpxs" in s else [
        ("train", "train_ips", "train_gflops", "peak_train_mb", "img/s"),
        ("infer", "infer_ips", "infer_gflops", "peak_infer_mb", "img/s")]
    for step, rate, gf, pk, unit in steps:
        if rate not in s or rate not in t:
            continue
        sr, tr = float(s[rate]), float(t[rate])
        sg_, tg = float(s[gf]), float(t[gf])
        print("| %s | %s | %.2f %s | %.2f %s | %.2f | %.0f (%.0f%%) | %.0f (%.0f%%) | %.0f | %.0f |" % (
            name(r), step, sr, unit, tr, unit, sr / tr, sg_, 100 * sg_ / peak, tg, 100 * tg / peak,
            float(s[pk]), float(t[pk])))
print()
print("peak MB = process VmHWM / ru_maxrss for that row (infer: after the inference steps; train: after both);"
      " process baseline before the model: semseg %.0f MB, torch %.0f MB (after import torch)." % (
          float(next(iter(rows.values()))["semseg"]["base_mb"]), float(next(iter(rows.values()))["torch"]["base_mb"])))
EOF
