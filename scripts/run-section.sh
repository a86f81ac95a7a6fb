#!/usr/bin/env bash
# Run the commands of the named sections of scripts/runs.txt, in order: scripts/run-section.sh cpu lossless
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: scripts/run-section.sh SECTION... (sections: $(grep -o '^# == [a-z0-9-]*' scripts/runs.txt | cut -c6- | tr '\n' ' '))" >&2; exit 2; }
for section in "$@"; do
  grep -q "^# == $section:" scripts/runs.txt || { echo "no section $section in scripts/runs.txt" >&2; exit 2; }
  awk -v s="$section" '/^# == /{on = index($0, "# == " s ":") == 1; next} on && /^bench /' scripts/runs.txt |
  while IFS= read -r line; do
    echo "== $(date +%H:%M:%S) $line" >&2
    bash -c "$line" </dev/null
  done
done
