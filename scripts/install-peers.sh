#!/usr/bin/env bash
# Installs the real peers the tests drive, from Debian's packages. Idempotent:
# installs only what is missing. Needs root (or sudo) on a fresh machine.
set -euo pipefail
packages=(swaks postfix python3-aiosmtpd openssl sqlite3 curl systemd)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-peers: all present (${packages[*]})"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-peers: need root to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "install-peers: installing ${missing[*]}"
# Postfix must not ask questions or start a system MTA on port 25.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-peers: done"
