#!/usr/bin/env bash
# Stage the data of scripts/gpu-rows.sh and scripts/gpu-runs.sh for the device tool, whose calls
# carry at most 64 MiB: .gpu/a holds the CIFAR-10 copy, the released DCGAN weights (.npy files
# and MANIFEST.tsv) and the first part of the Tiny-ImageNet archive, .gpu/b the rest of it. Both
# folders are git-ignored locally (.git/info/exclude). A carried folder does not survive a call
# that carries another, but /tmp on a warm machine does: the first call parks .gpu/b there, the
# second (within the machine's warm period) carries .gpu/a and runs both scripts:
#   run(command="mkdir -p /tmp/parts && cp .gpu/b/* /tmp/parts/", carry=[".gpu/b"], timeout_s=60)
#   run(command="mkdir -p /tmp/all && ln -sf $PWD/.gpu/a/* /tmp/parts/* /tmp/all/ && DATA=/tmp/all OUT_DIR=$OUT \
#       DEADLINE_S=150 scripts/gpu-rows.sh && DATA=/tmp/all OUT_DIR=$OUT DEADLINE_S=420 scripts/gpu-runs.sh",
#       carry=[".gpu/a"], timeout_s=600)
set -euo pipefail
SHARED=${SHARED:-../shared}
cd "$(git rev-parse --show-toplevel)"
grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/a .gpu/b
split -b 30m "$SHARED/data/tinyimagenet-64px-50k.tar.gz" .gpu/tiny.tar.gz.part-
mv .gpu/tiny.tar.gz.part-aa .gpu/a/ && mv .gpu/tiny.tar.gz.part-* .gpu/b/
cp "$SHARED/data/cifar10-jpeg.tar.gz" .gpu/a/
mkdir -p .gpu/a/dcgan_code/imagenet_gan_pretrain_128f_relu_lrelu_7l_3x3_256z
cp "$SHARED"/pretrained/dcgan_code/MANIFEST.tsv .gpu/a/dcgan_code/
cp "$SHARED"/pretrained/dcgan_code/imagenet_gan_pretrain_128f_relu_lrelu_7l_3x3_256z/*discrim*.npy \
  .gpu/a/dcgan_code/imagenet_gan_pretrain_128f_relu_lrelu_7l_3x3_256z/
du -sh .gpu/a .gpu/b
