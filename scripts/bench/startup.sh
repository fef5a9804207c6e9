#!/usr/bin/env bash
# Start-up cost of the program: `semseg -e ''` from the CUDA-enabled build (build/, with build/semseg_cuda.so
# beside it) against a CPU-only build (build/nocuda, made here with CUDA=0 when missing): median wall time and
# peak RSS (/usr/bin/time -v) of 10 runs each, interleaved.
#   bash scripts/bench/startup.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-10}
[ -x build/semseg ] || make -j"$(nproc)" >/dev/null
[ -x build/nocuda/semseg ] || make -j"$(nproc)" BUILD=build/nocuda CUDA=0 build/nocuda/semseg >/dev/null
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package time)"; exit 1; }
# wall time from bash's clock around the run (time -v rounds to 10 ms), RSS from time -v
one() {
  local t0=$EPOCHREALTIME rss
  rss=$(/usr/bin/time -v "$1" -e '' 2>&1 | awk -F': ' '/Maximum resident/ {print $2}')
  local t1=$EPOCHREALTIME
  echo "$rss $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
: >/tmp/startup_cuda; : >/tmp/startup_cpu
for i in $(seq "$runs"); do one build/semseg >>/tmp/startup_cuda; one build/nocuda/semseg >>/tmp/startup_cpu; done
printf "%-28s %12s %12s\n" build "RSS (MB)" "wall (ms)"
for b in cuda cpu; do
  rss=$(cut -d' ' -f1 /tmp/startup_$b | median); wall=$(cut -d' ' -f2 /tmp/startup_$b | median)
  name=$([ $b = cuda ] && echo "CUDA-enabled (build/)" || echo "CUDA=0 (build/nocuda)")
  awk -v n="$name" -v r="$rss" -v w="$wall" 'BEGIN {printf "%-28s %12.1f %12.1f\n", n, r / 1024, w * 1000}'
done
echo "cuda backend present: $(build/semseg -e 'io.write(tostring(sg.cuda.is_built()))')"
