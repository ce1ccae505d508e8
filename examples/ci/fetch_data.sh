#!/usr/bin/env bash
# The data hook of examples/ci/factuality.yml: put each dataset folder the gated tasks read into $1
# ($HARNESS_DATA: vqa_rad/, iu_xray/, slake/, ...). The synthetic tasks (synth_*) need no data.
#
# This version copies from $FACTUALITY_DATA_SOURCE, a folder holding the same sub-folders (a mounted volume,
# a checkout of a private data repository, a cache restored by an earlier step). Replace the copy with your
# own transfer; keep the contract: exit non-zero, with one line saying what is missing, when a folder is absent.
set -euo pipefail
target="${1:?usage: fetch_data.sh TARGET_DIR}"
folders="${FACTUALITY_DATA_FOLDERS:-vqa_rad iu_xray}"
mkdir -p "$target"
for folder in $folders; do
  if [ -d "$target/$folder" ]; then
    continue                                  # already there (a cache, or a self-hosted runner)
  fi
  if [ -z "${FACTUALITY_DATA_SOURCE:-}" ] || [ ! -d "$FACTUALITY_DATA_SOURCE/$folder" ]; then
    echo "fetch_data.sh: no '$folder' in \$FACTUALITY_DATA_SOURCE ('${FACTUALITY_DATA_SOURCE:-unset}')" >&2
    exit 1
  fi
  cp -R "$FACTUALITY_DATA_SOURCE/$folder" "$target/$folder"
  echo "fetched $folder"
done
