#!/usr/bin/env bash
# Logistic regression and kNN rows beside the SVM's (issue 23): every encoder with an SVM full
# row on the shared CIFAR-10 JPEG copy, and the few protocol for the encoders with SVM few rows.
# Features are cached after the first probe, so each later probe is a fit only. Needs
# $BENCH_DATA_DIR/cifar10 (the JPEG copy, unpacked) and the released weights in $BENCH_WEIGHTS_DIR.
set -euo pipefail
: "${BENCH_DATA_DIR:?set BENCH_DATA_DIR to the folder holding cifar10/}"
: "${BENCH_WEIGHTS_DIR:?set BENCH_WEIGHTS_DIR to ../shared/pretrained/dcgan_code}"
step() { echo "== $(date +%H:%M:%S) $*" >&2; "$@"; }

for spec in pixels dcgan-imagenet:layers=1-4 dcgan-random:layers=1-4 exemplar-cnn-small exemplar-cnn:weights=random \
            dcgan-tinyimagenet-small dcgan-random:arch=small; do
  for probe in logreg knn; do
    step bench run cifar10 --features "$spec" --probe "$probe"
  done
done
for spec in pixels dcgan-imagenet:layers=1-4 dcgan-random:layers=1-4 exemplar-cnn-small; do
  for probe in logreg knn; do
    step bench run cifar10 --features "$spec" --probe "$probe" --protocol few --per-class 400 --draws 10
  done
done
for spec in kmeans dcgan-random dcgan-tinyimagenet exemplar-cnn-tinyimagenet \
            exemplar-cnn:net=64c5-128c5-256c5-512f,weights=random kmeans:k=4000; do
  for probe in logreg knn; do
    step bench run cifar10 --features "$spec" --probe "$probe"
  done
done
for probe in logreg knn; do
  step bench run cifar10 --features kmeans --probe "$probe" --protocol few --per-class 400 --draws 10
done
