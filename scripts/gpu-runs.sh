#!/usr/bin/env bash
# The baselines at their published architectures, trained, exported and probed in one pass on
# a lent GPU (issue 17): Exemplar-CNN 64c5-128c5-256c5-512f on surrogate classes drawn from
# all 50,500 Tiny-ImageNet images, and the paper's imagenet32 DCGAN on all of them at 32x32,
# each for a fixed wall-clock budget (stopped with Ctrl-C, which checkpoints); then both are
# exported to pretrained/, probed on CIFAR-10 (full and few, beside their random-weights
# controls) and the training step is timed. Every step appends to $OUT_DIR as it finishes,
# so a run cut off at any point leaves the results and weights made so far.
#
# Data: $DATA holds tiny.tar.gz.part-* (the shared Tiny-ImageNet archive split in parts; see
# scripts/gpu-bundle.sh, which stages it within the device's 64 MiB transfer limit) and
# cifar10-jpeg.tar.gz, or set TINY_DIR and CIFAR_DIR to unpacked copies. Budgets in seconds:
# EXEMPLAR_S, DCGAN_S, DEADLINE_S for the whole script. For a test on a CPU: small budgets,
# LIMIT (images per CIFAR split), FEW (few-protocol options), EXEMPLAR_NET=64c5-64c5-128f,
# DCGAN_ARCH=small, CLASSES.
set -uo pipefail
: "${OUT_DIR:?set OUT_DIR to the folder the results and weights go to}"
EXEMPLAR_S=${EXEMPLAR_S:-180} DCGAN_S=${DCGAN_S:-150} DEADLINE_S=${DEADLINE_S:-560}
EXEMPLAR_NET=${EXEMPLAR_NET:-64c5-128c5-256c5-512f} DCGAN_ARCH=${DCGAN_ARCH:-imagenet32} CLASSES=${CLASSES:-8000}
LIMIT=${LIMIT:+--limit $LIMIT} FEW=${FEW:---per-class 400 --draws 10}
WORK=${WORK:-/tmp/bench-gpu}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} BENCH_CACHE_DIR=$WORK/cache
BENCH="${PYTHON:-python3} -m benchmark.cli"
mkdir -p "$OUT_DIR" "$WORK"
LOG=$OUT_DIR/gpu-runs.log
left() { echo $((DEADLINE_S - SECONDS)); }
step() {  # step SECONDS command...: run it if the deadline allows, for at most SECONDS (Ctrl-C at the end)
  local limit=$1; shift
  if [ "$(left)" -lt 15 ]; then echo "== skipped (deadline): $*" | tee -a "$LOG"; return 1; fi
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  echo "== $(date +%T) [${SECONDS}s] $*" | tee -a "$LOG"
  timeout -s INT -k 15 "$limit" "$@" 2>&1 | tr '\r' '\n' | grep --line-buffered -v '%|' | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  echo "== rc=$rc [${SECONDS}s]" | tee -a "$LOG"
  return "$rc"
}
pack() {  # the exported models, in parts small enough to come back from the device (16 MiB a file)
  tar czf "$WORK/trained.tar.gz" pretrained/manifest.toml pyproject.toml $(ls -d pretrained/*-tinyimagenet 2>/dev/null) \
    -C "$WORK/runs" $(cd "$WORK/runs" 2>/dev/null && ls -d dcgan/samples.png exemplar/config.json dcgan/config.json 2>/dev/null)
  rm -f "$OUT_DIR"/trained.tar.gz.part-*
  split -b 15m "$WORK/trained.tar.gz" "$OUT_DIR/trained.tar.gz.part-"
}

${PYTHON:-python3} -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" | tee -a "$LOG"
TINY_DIR=${TINY_DIR:-$WORK/tiny} CIFAR_DIR=${CIFAR_DIR:-$WORK/data/cifar10}
if [ ! -d "$TINY_DIR/train" ]; then
  mkdir -p "$TINY_DIR" && cat "${DATA:?set DATA or TINY_DIR}"/tiny.tar.gz.part-* | tar xz -C "$TINY_DIR" || exit 1
fi
if [ ! -d "$CIFAR_DIR/test" ]; then
  mkdir -p "$CIFAR_DIR" && tar xzf "$DATA/cifar10-jpeg.tar.gz" -C "$CIFAR_DIR" || exit 1
fi
export BENCH_DATA_DIR=$(dirname "$CIFAR_DIR")
echo "Tiny-ImageNet: $(find "$TINY_DIR/train" -name '*.JPEG' | wc -l) images" | tee -a "$LOG"
rows=(--results "$OUT_DIR/runs.csv")

# 1. Exemplar-CNN: the paper's network, surrogate classes drawn from every image of the folder
step "$EXEMPLAR_S" $BENCH train exemplar-cnn --data "folder:$TINY_DIR/train" --net "$EXEMPLAR_NET" \
  --classes "$CLASSES" --steps 10000000 --checkpoint-every 500 --out "$WORK/runs/exemplar"
step 60 $BENCH pretrained export "$WORK/runs/exemplar" --name exemplar-cnn-tinyimagenet --half \
  --title "Exemplar-CNN $EXEMPLAR_NET trained by this project on $CLASSES surrogate classes from all 50,500 Tiny-ImageNet images (weights in float16)" \
  && pack
# 2. DCGAN: the paper's ImageNet discriminator and recipe, every image at 32x32
step "$DCGAN_S" $BENCH train dcgan --data "folder:$TINY_DIR/train" --arch "$DCGAN_ARCH" --epochs 1000 \
  --out "$WORK/runs/dcgan"
step 60 $BENCH pretrained export "$WORK/runs/dcgan" --name dcgan-tinyimagenet \
  --title "DCGAN ($DCGAN_ARCH, the paper's architecture and recipe) trained by this project on all 50,500 Tiny-ImageNet images at 32x32; its discriminator" \
  && pack
cp "$WORK/runs/dcgan/samples.png" "$OUT_DIR/dcgan-tinyimagenet-samples.png" 2>/dev/null \
  || echo "== no sample grid: the DCGAN run ended before its first epoch" | tee -a "$LOG"
# 3. CIFAR-10 probes on the GPU: the trained models and their random-weights controls, full and few
for spec in exemplar-cnn-tinyimagenet "exemplar-cnn:net=$EXEMPLAR_NET,weights=random" dcgan-tinyimagenet \
            "dcgan-random:arch=$DCGAN_ARCH"; do
  step 90 $BENCH run cifar10 --features "$spec" $LIMIT "${rows[@]}"
  step 90 $BENCH run cifar10 --features "$spec" --protocol few $FEW $LIMIT "${rows[@]}"
done
# 4. The trainer against a plain PyTorch loop, on this GPU
step 60 $BENCH train throughput --steps "${THROUGHPUT_STEPS:-30}" --out "$OUT_DIR/train-throughput.csv"
echo "== done [${SECONDS}s]" | tee -a "$LOG"
