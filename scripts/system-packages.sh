#!/usr/bin/env bash
# Installs the Debian packages the harness needs, only when missing: Java (METEOR through pycocoevalcap)
# Chromium (the leaderboard's browser tests) and a C++ compiler (DeepSpeed's CPU accelerator compiles one op). Without root or apt it says what is missing and goes on.
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v c++ >/dev/null 2>&1 || need+=(g++)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages (install them to run every test): ${need[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
