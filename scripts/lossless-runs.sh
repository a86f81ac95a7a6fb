#!/usr/bin/env bash
# The JPEG penalty (issue 22): every encoder on the original, lossless CIFAR-10 pixels
# (cifar10-lossless) and on the JPEG copy cut to the same 1,000 test images (cifar10-test1k),
# same training images, validation split and draws. Needs $BENCH_DATA_DIR holding cifar10/ (the
# JPEG copy, unpacked) and cifar10-lossless/ (a link to ../shared/data/cifar10-lossless is
# enough), and the released weights in $BENCH_WEIGHTS_DIR. Cheap encoders first, k-means last.
set -euo pipefail
: "${BENCH_DATA_DIR:?set BENCH_DATA_DIR to the folder holding cifar10/ and cifar10-lossless/}"
: "${BENCH_WEIGHTS_DIR:?set BENCH_WEIGHTS_DIR to ../shared/pretrained/dcgan_code}"
step() { echo "== $(date +%H:%M:%S) $*" >&2; "$@"; }

for spec in pixels dcgan-imagenet:layers=1-4 dcgan-random:layers=1-4 dcgan-tinyimagenet-small exemplar-cnn-small \
            exemplar-cnn:weights=random; do
  for data in cifar10-lossless cifar10-test1k; do
    step bench run "$data" --features "$spec"
  done
done
for spec in dcgan-imagenet:layers=1-4 dcgan-random:layers=1-4 dcgan-tinyimagenet-small; do
  for data in cifar10-lossless cifar10-test1k; do
    step bench run "$data" --features "$spec" --protocol few --per-class 400 --draws 10
  done
done
for spec in kmeans kmeans:k=4000; do
  for data in cifar10-lossless cifar10-test1k; do
    step bench run "$data" --features "$spec"
    step bench run "$data" --features "$spec" --protocol few --per-class 400 --draws 10
  done
done
