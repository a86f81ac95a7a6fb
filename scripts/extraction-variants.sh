#!/usr/bin/env bash
# The headline's feature extraction, measured against its accuracy: precision of the
# convolutions (float32, bfloat16) and the batchnorm estimate (layer by layer over all
# training images, one pass, or a seeded sample). Each variant is extracted from a cold
# cache and probed with the full protocol; rows go to results/extraction-variants.csv,
# which `bench leaderboard` tabulates. Run on a quiet machine: extract_s is a timing.
set -euo pipefail
: "${BENCH_DATA_DIR:?set BENCH_DATA_DIR to the folder holding cifar10/}"
: "${BENCH_WEIGHTS_DIR:?set BENCH_WEIGHTS_DIR to ../shared/pretrained/dcgan_code}"
out=${OUT:-results/extraction-variants.csv}
cache=$(mktemp -d)  # cold: every variant extracts from scratch (decoded images are shared)
trap 'rm -rf "$cache"' EXIT
base=dcgan-imagenet:layers=1-4
variants=${VARIANTS:-precision=float32,bn_images=all precision=bfloat16,bn_images=all precision=bfloat16,bn=onepass,bn_images=all precision=bfloat16,bn_images=10000}
for options in $variants; do  # bn_images spelled out: its default was all until this table chose 10000
  echo "== $(date +%H:%M:%S) $base,$options" >&2
  bench run cifar10 --features "$base,$options" --cache-dir "$cache" --results "$out"
  find "$cache/features" -name '*.h5' -delete  # keep the disk small; the next variant is cold anyway
done
