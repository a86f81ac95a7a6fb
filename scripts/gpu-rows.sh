#!/usr/bin/env bash
# The GPU rows of results/runs.csv again, with the certified probe (issue 21), and the headline
# timed on the GPU: cold (extraction + probe) and with its features cached (probe only). Each
# command's wall time goes to $OUT_DIR/gpu-rows.log; the rows carry extract_s, fit_s and gap.
#
# Data: $DATA holds cifar10-jpeg.tar.gz and dcgan_code/ (the released weights' .npy files and
# MANIFEST.tsv), or set CIFAR_DIR and BENCH_WEIGHTS_DIR. DEADLINE_S bounds the whole script;
# PROBES lists the probes each row is fitted with.
set -uo pipefail
: "${OUT_DIR:?set OUT_DIR to the folder the results go to}"
DEADLINE_S=${DEADLINE_S:-200} PROBES=${PROBES:-svm} PYTHON=${PYTHON:-python3}
WORK=${WORK:-/tmp/bench-gpu}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} BENCH_CACHE_DIR=$WORK/cache
export BENCH_WEIGHTS_DIR=${BENCH_WEIGHTS_DIR:-${DATA:-.}/dcgan_code}
mkdir -p "$OUT_DIR" "$WORK"
LOG=$OUT_DIR/gpu-rows.log
CIFAR_DIR=${CIFAR_DIR:-$WORK/data/cifar10}
if [ ! -d "$CIFAR_DIR/test" ]; then
  mkdir -p "$CIFAR_DIR" && tar xzf "${DATA:?set DATA or CIFAR_DIR}/cifar10-jpeg.tar.gz" -C "$CIFAR_DIR" || exit 1
fi
export BENCH_DATA_DIR=$(dirname "$CIFAR_DIR")
timed() {  # timed LABEL command...: run it within the deadline and log its wall time
  local label=$1; shift
  local left=$((DEADLINE_S - SECONDS))
  if [ "$left" -lt 15 ]; then echo "== skipped (deadline): $label" | tee -a "$LOG"; return 1; fi
  local start=$SECONDS
  timeout -s INT -k 15 "$left" "$@" 2>&1 | tr '\r' '\n' | grep --line-buffered -v '%|' | tee -a "$LOG"
  echo "== $label: rc=${PIPESTATUS[0]} wall=$((SECONDS - start)) s" | tee -a "$LOG"
}
$PYTHON -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" | tee -a "$LOG"
run=($PYTHON -m benchmark.cli run cifar10 --results "$OUT_DIR/runs.csv")
# The headline: images decoded first (pixels), so the cold figure is extraction + probe
timed "pixels (decodes the images)" "${run[@]}" --features pixels
timed "headline, cold cache (extraction + probe)" "${run[@]}" --features dcgan-imagenet:layers=1-4
timed "headline, features cached (probe only)" "${run[@]}" --features dcgan-imagenet:layers=1-4
for probe in $PROBES; do
  for spec in dcgan-imagenet:layers=1-4 dcgan-random:layers=1-4 exemplar-cnn:weights=random dcgan-tinyimagenet-small \
              dcgan-random:arch=small dcgan-random kmeans:k=4000; do
    [ "$probe" = svm ] && [ "$spec" = dcgan-imagenet:layers=1-4 ] && continue  # the headline rows above
    timed "$spec ($probe)" "${run[@]}" --features "$spec" $([ "$probe" = svm ] || echo --probe "$probe")
  done
done
echo "== done [${SECONDS}s]" | tee -a "$LOG"
