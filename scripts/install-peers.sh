#!/usr/bin/env bash
# Installs the real peers the integration tests drive, from Debian 12's
# packages (see tests/peers/README.md):
#   swaks             SMTP client (inbound submissions, STARTTLS, pipelining)
#   libnet-ssleay-perl, libio-socket-ssl-perl
#                     swaks's TLS (only "recommended" by swaks, and we
#                     install without recommends)
#   postfix           only for smtp-sink / smtp-source (plaintext upstream sink)
#   python3-aiosmtpd  tests/peers/upstream.py, in Debian's /usr/bin/python3
#   openssl           tests/peers/make-cert.sh; S/MIME blobs made at test time
#                     (tests/it/signed_mail.rs, rewrite::cms) and fixtures/make-signed.sh
#   gnupg             gpg, for fixtures/make-signed.sh (PGP/MIME, clear-signed
#                     text, an attached public key)
#   sqlite3           inspecting the relay's database by hand
#   curl              the hook / admin HTTP API tests
#   systemd           systemd-analyze, for the unit-file tests
#   python3-dkim      dkimpy: an independent DKIM verifier for our signatures,
#                     and the partner's signer in the inbound-verification tests
#   python3-prometheus-client
#                     the Prometheus project's parser, for /metrics
#   procps            `kill`, which the tests call to signal the daemon
#                     (SIGHUP, SIGTERM); not in every minimal image
#   chromium          headless, the mail reader that must fetch nothing
#                     (tests/it/remote_content.rs, tests/peers/html_fetches.py)
# Idempotent: installs only what is missing (apt-get update only then), and
# prints what it installed. Needs root, or sudo.
set -euo pipefail

packages=(swaks libnet-ssleay-perl libio-socket-ssl-perl postfix python3-aiosmtpd python3-dkim python3-prometheus-client openssl gnupg sqlite3 curl systemd procps chromium)

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# What the tests rely on beyond the package being there.
verify_peers() {
    [[ "$(swaks --support 2>&1)" == *"=== TLS supported"* ]] ||
        { echo "install-peers: swaks has no STARTTLS support (libnet-ssleay-perl)" >&2; exit 1; }
    /usr/bin/python3 -c 'import aiosmtpd' ||
        { echo "install-peers: /usr/bin/python3 cannot import aiosmtpd" >&2; exit 1; }
    /usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' ||
        { echo "install-peers: /usr/bin/python3 cannot import prometheus_client" >&2; exit 1; }
    /usr/bin/python3 -c 'import dkim, nacl' ||
        { echo "install-peers: /usr/bin/python3 cannot import dkim (dkimpy) and nacl" >&2; exit 1; }
    chromium --version >/dev/null ||
        { echo "install-peers: chromium is installed but \`chromium --version\` fails" >&2; exit 1; }
}

missing=()
for package in "${packages[@]}"; do
    installed "$package" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    verify_peers
    echo "install-peers: all present: ${packages[*]}"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "install-peers: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "install-peers: installing: ${missing[*]}"
# No debconf questions; Postfix gets "No configuration", so it installs no
# main.cf and starts no system MTA on port 25 (the tests only use smtp-sink).
echo "postfix postfix/main_mailer_type select No configuration" |
    "${sudo[@]}" debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
# Waits for another apt/dpkg run instead of failing on its lock.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
"${apt[@]}" update -qq
"${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"

failed=()
for package in "${missing[@]}"; do
    if installed "$package"; then
        echo "install-peers: installed $package $(dpkg-query -W -f='${Version}' "$package")"
    else
        failed+=("$package")
    fi
done
if [ ${#failed[@]} -ne 0 ]; then
    echo "install-peers: still missing: ${failed[*]}" >&2
    exit 1
fi
verify_peers
echo "install-peers: done"
