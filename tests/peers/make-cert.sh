#!/usr/bin/env bash
# Throwaway PKI for tests: DIR/ca.pem (a CA) and DIR/cert.pem + DIR/key.pem
# (a leaf for localhost and 127.0.0.1 signed by it). rustls refuses a
# self-signed leaf, so the leaf is a real CA-issued certificate.
set -euo pipefail
dir=${1:?usage: make-cert.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -s cert.pem ] && [ -s key.pem ] && [ -s ca.pem ] && exit 0
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=anonrelay test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout key.pem -out leaf.csr 2>/dev/null
cat > leaf.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
    -extfile leaf.ext -out cert.pem 2>/dev/null
rm -f leaf.csr leaf.ext ca.srl
openssl verify -CAfile ca.pem cert.pem >/dev/null
