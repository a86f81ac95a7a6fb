#!/usr/bin/env bash
# The runs behind results/ and BENCHMARKS.md, most important first. Needs the shared CIFAR-10
# copy unpacked under $BENCH_DATA_DIR/cifar10 and the released weights in $BENCH_WEIGHTS_DIR.
# Each step appends rows to results/; features are cached, so a rerun skips extraction.
# `scripts/timings.py` adds the pixels and headline rows with their old-vs-new timings;
# `scripts/gpu-runs.sh` (on a lent GPU) the models this project trains.
set -euo pipefail
: "${BENCH_DATA_DIR:?set BENCH_DATA_DIR to the folder holding cifar10/}"
: "${BENCH_WEIGHTS_DIR:?set BENCH_WEIGHTS_DIR to ../shared/pretrained/dcgan_code}"
step() { echo "== $(date +%H:%M:%S) $*" >&2; "$@"; }

# full protocol: every row of the leaderboard, probed by the certified solver
step bench run cifar10 --features pixels
step bench run cifar10 --features dcgan-imagenet:layers=1-4                    # raw features: DCGAN's default
step bench run cifar10 --features dcgan-imagenet:layers=1-4 --scale standard   # for comparison
step bench run cifar10 --features kmeans
step bench run cifar10 --features dcgan-random:layers=1-4
step bench run cifar10 --features dcgan-random:arch=small
step bench run cifar10 --features dcgan-tinyimagenet-small
step bench run cifar10 --features exemplar-cnn-small
step bench run cifar10 --features exemplar-cnn:net=64c5-64c5-128f,weights=random
# few labels: 400 per class, 10 draws, the same draws for every encoder
for spec in pixels dcgan-imagenet:layers=1-4 kmeans dcgan-random:layers=1-4 exemplar-cnn-small; do
  step bench run cifar10 --features "$spec" --protocol few --per-class 400 --draws 10
done
step bench run cifar10 --features dcgan-random
step bench run cifar10 --features kmeans:k=4000
step bench run cifar10 --features dcgan-imagenet:layers=1-4 --per-layer
# the probe's solvers on raw DCGAN and on standardised k-means features (liblinear capped)
step bench solvers cifar10 --features dcgan-imagenet:layers=1-4 --rows 10000 --timeout 600
step bench solvers cifar10 --features kmeans --rows 10000 --timeout 600
step bench compare dcgan-imagenet:layers=1-4 pixels --dataset cifar10 --protocol few \
  | tee results/compare-dcgan-imagenet-vs-pixels.txt
step bench compare dcgan-imagenet:layers=1-4 dcgan-random:layers=1-4 --dataset cifar10 --protocol few \
  | tee results/compare-dcgan-imagenet-vs-random.txt
for n in 25 100; do
  for spec in pixels dcgan-imagenet:layers=1-4 kmeans; do
    step bench run cifar10 --features "$spec" --protocol few --per-class "$n" --draws 10
  done
done
step bench train throughput
step bench leaderboard
