#!/usr/bin/env bash
# Installs the Debian packages named (name or name:arch) that are not installed yet; enables
# a foreign architecture first where a name asks for one. Used by setup.sh and cross-test.sh.
# Usage: tools/install-packages.sh pkg [pkg:arch ...]
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
for p in "${missing[@]}"; do
  if [[ $p == *:* ]]; then
    arch=${p##*:}
    dpkg --print-foreign-architectures | grep -qx "$arch" || $sudo_cmd dpkg --add-architecture "$arch"
  fi
done
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
