#!/usr/bin/env bash
# Installs what perftop needs from Debian, only what is missing, so `make setup` stays cheap to repeat.
# BCC is not on PyPI: its Python bindings come from python3-bpfcc, hence the system packages.
set -euo pipefail

arch=$(dpkg --print-architecture)
release=$(uname -r)
# golang-go brings `go tool pprof`, the reader the pprof export tests open their files with.
wanted=(python3-bpfcc python3-venv python3-pip linux-perf bpftool tmux gcc make golang-go)

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done

# npm fetches speedscope's schema for the export tests; the image usually has it already.
command -v npm >/dev/null 2>&1 || missing+=(npm)

# Kernel headers: the exact ones when the archive has them, else the distro's generic package
# (perftop merges its -common and -<arch> trees itself when /lib/modules/$release/build is absent).
headers_present() {
  [ -e "/lib/modules/$release/build" ] && return 0
  compgen -G "/usr/src/linux-headers-*-$arch" >/dev/null
}

updated=0
apt_update() {
  if [ "$updated" = 0 ]; then
    apt-get update -qq
    updated=1
  fi
}

if ! headers_present; then
  apt_update
  if apt-cache show "linux-headers-$release" >/dev/null 2>&1; then
    missing+=("linux-headers-$release")
  else
    missing+=("linux-headers-$arch")
  fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "perftop setup: needs root to install: ${missing[*]}" >&2
    exit 1
  fi
  apt_update
  echo "perftop setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
