#!/usr/bin/env bash
# Stage the data of scripts/gpu-runs.sh for the device tool, whose calls carry at most 64 MiB:
# .gpu/a holds the first part of the Tiny-ImageNet archive, .gpu/b the rest and the CIFAR-10
# copy. Both folders are git-ignored locally (.git/info/exclude). On the device, a first call
# carries .gpu/a (and does nothing else); the second, while the machine is still warm (it keeps
# ignored files between calls), carries .gpu/b and runs the script:
#   run(command="true", carry=[".gpu/a"], timeout_s=60)
#   run(command="DATA=.gpu/all OUT_DIR=$OUT bash -c 'mkdir -p .gpu/all && ln -sf $PWD/.gpu/a/* $PWD/.gpu/b/* .gpu/all/ && scripts/gpu-runs.sh'",
#       carry=[".gpu/b"], timeout_s=600)
set -euo pipefail
SHARED=${SHARED:-../shared}
cd "$(git rev-parse --show-toplevel)"
grep -qx '/.gpu/' .git/info/exclude || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/a .gpu/b
split -b 38m "$SHARED/data/tinyimagenet-64px-50k.tar.gz" .gpu/tiny.tar.gz.part-
mv .gpu/tiny.tar.gz.part-aa .gpu/a/ && mv .gpu/tiny.tar.gz.part-* .gpu/b/
cp "$SHARED/data/cifar10-jpeg.tar.gz" .gpu/b/
du -sh .gpu/a .gpu/b
