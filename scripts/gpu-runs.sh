#!/usr/bin/env bash
# The runs made on a lent GPU machine, in one pass: train the two models of this project
# (Exemplar-CNN and the small DCGAN, each for a fixed wall-clock budget, stopped with Ctrl-C,
# which checkpoints), export them to pretrained/, time a training step per architecture, and
# probe CIFAR-10 on the GPU. Everything lands in $OUT_DIR (results rows, weights, samples, log).
#
# Needs: $BUNDLE/cifar10-jpeg.tar.gz, $BUNDLE/tiny.tar.gz (Tiny-ImageNet images, <wnid>/<image>),
# $BUNDLE/weights/<folder>/ (released DCGAN files). Budgets in seconds: EXEMPLAR_S, DCGAN_S;
# LIMIT (images per split) shrinks the probes for a smoke test on a CPU.
set -uo pipefail
: "${BUNDLE:?}" "${OUT_DIR:?}"
EXEMPLAR_S=${EXEMPLAR_S:-100} DCGAN_S=${DCGAN_S:-80} DEADLINE_S=${DEADLINE_S:-540}
LIMIT=${LIMIT:+--limit $LIMIT}
WORK=${WORK:-/tmp/bench-gpu}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export BENCH_DATA_DIR=$WORK/data BENCH_CACHE_DIR=$WORK/cache BENCH_WEIGHTS_DIR=$BUNDLE/weights
BENCH="python -m benchmark.cli"
left() { echo $((DEADLINE_S - SECONDS)); }
step() {  # step SECONDS command...: runs it if the deadline allows, at most SECONDS
  local limit=$1; shift
  if [ "$(left)" -lt 20 ]; then echo "== skipped (deadline): $*"; return; fi
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  echo "== $(date +%T) [${SECONDS}s] $*"
  timeout -s INT -k 10 "$limit" "$@" 2>&1 | tee -a "$OUT_DIR/full.log" | tr '\r' '\n' | grep -v '%|'
  echo "== rc=${PIPESTATUS[0]} [${SECONDS}s]"
}
mkdir -p "$WORK/data/cifar10" "$WORK/tiny" "$OUT_DIR"
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
tar xzf "$BUNDLE/cifar10-jpeg.tar.gz" -C "$WORK/data/cifar10"
tar xzf "$BUNDLE/tiny.tar.gz" -C "$WORK/tiny"
rows=(--results "$OUT_DIR/runs.csv")

step "$EXEMPLAR_S" $BENCH train exemplar-cnn --data "$WORK/tiny" --net 64c5-64c5-128f --classes 8000 \
  --steps 1000000 --checkpoint-every 1000 --out "$WORK/runs/exemplar"
step "$DCGAN_S" $BENCH train dcgan --data "folder:$WORK/tiny" --arch small --epochs 1000 --out "$WORK/runs/dcgan"
step 30 $BENCH pretrained export "$WORK/runs/exemplar" --name exemplar-cnn-small \
  --title "Exemplar-CNN 64c5-64c5-128f trained by this project on Tiny-ImageNet patches (8,000 classes)"
step 30 $BENCH pretrained export "$WORK/runs/dcgan" --name dcgan-tinyimagenet-small \
  --title "DCGAN (small architecture) trained by this project on Tiny-ImageNet at 32x32; its discriminator"
step 60 $BENCH train throughput --steps "${THROUGHPUT_STEPS:-30}" --out "$OUT_DIR/train-throughput.csv"
for spec in dcgan-imagenet:layers=1-4 dcgan-random:layers=1-4 kmeans:k=4000 exemplar-cnn-small \
            exemplar-cnn:weights=random dcgan-tinyimagenet-small dcgan-random:arch=small dcgan-random; do
  step 120 $BENCH run cifar10 --features "$spec" $LIMIT "${rows[@]}"
done

cp pretrained/manifest.toml "$OUT_DIR/"
tar cf "$OUT_DIR/trained.tar" pretrained/exemplar-cnn-small pretrained/dcgan-tinyimagenet-small \
  -C "$WORK/runs" dcgan/samples exemplar/config.json dcgan/config.json 2>&1
echo "== done [${SECONDS}s]"
