#!/usr/bin/env bash
# Installs what `npm run bench` needs from Debian's packages: the proxies it
# compares against (nginx, HAProxy), the load clients (wrk, h2load from
# nghttp2-client) and the compiler and headers that build the LD_PRELOAD
# library giving wrk a client certificate (gcc, libssl-dev).
#
# Idempotent and non-interactive: packages already installed are not touched.
# It never starts or enables a system service: the bench runs nginx and
# HAProxy itself, with generated configs on high loopback ports. Debian's
# postinst scripts start services through invoke-rc.d, which asks
# /usr/sbin/policy-rc.d; while installing we put one there that says no
# (exit 101), unless the machine already has its own.
set -euo pipefail

packages=(nginx haproxy wrk nghttp2-client gcc libc6-dev libssl-dev openssl procps)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-bench: run as root (it installs Debian packages): sudo $0" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup-bench: all present (${packages[*]})"
  exit 0
fi

policy=/usr/sbin/policy-rc.d
placed_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# placed by portcullis scripts/setup-bench.sh while installing\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  placed_policy=1
fi
cleanup() { if [ "$placed_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

echo "setup-bench: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Debian's packages enable their units; on a machine with systemd, make sure
# nothing listens on 80 or the HAProxy default config's ports behind our back.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now nginx haproxy >/dev/null 2>&1 || true
fi

echo "setup-bench: done: $(nginx -v 2>&1); $(haproxy -v | head -n1); $(wrk -v 2>&1 | head -n1); $(h2load --version | head -n1)"
