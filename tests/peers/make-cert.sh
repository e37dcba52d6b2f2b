#!/usr/bin/env bash
# Throwaway PKI for tests:
#   DIR/ca.pem      a CA certificate (basicConstraints CA:TRUE, keyCertSign)
#   DIR/cert.pem    a leaf for localhost and 127.0.0.1 signed by that CA
#                   (CA:FALSE, digitalSignature+keyEncipherment, serverAuth)
#   DIR/key.pem     the leaf's private key, PKCS#8 ("BEGIN PRIVATE KEY")
#   DIR/ca-key.pem  the CA's key (only needed to sign more leaves)
# rustls/webpki refuses a self-signed leaf used as its own trust anchor, so
# the leaf is issued by a real CA. Idempotent: a DIR that already holds all
# three files is left alone. Valid for 30 days from now.
set -euo pipefail
dir=${1:?usage: make-cert.sh DIR}
mkdir -p "$dir"
cd "$dir"
if [ -s cert.pem ] && [ -s key.pem ] && [ -s ca.pem ]; then
    exit 0
fi
tmp=$(mktemp -d ./.make-cert.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/ca.ext" <<'EXT'
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
EXT
cat >"$tmp/leaf.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EXT

# Keys: PKCS#8 PEM (what OpenSSL 3's genpkey writes).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/ca-key.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/key.pem" 2>/dev/null

# CA: self-signed through a CSR so only our extensions are applied
# (-not_before is not in OpenSSL 3.0, hence the x509 -req path for both).
openssl req -new -key "$tmp/ca-key.pem" -subj "/CN=anonrelay test CA" -out "$tmp/ca.csr"
openssl x509 -req -in "$tmp/ca.csr" -signkey "$tmp/ca-key.pem" -days 30 \
    -extfile "$tmp/ca.ext" -set_serial "0x$(openssl rand -hex 16)" -out "$tmp/ca.pem" 2>/dev/null

# Leaf, signed by the CA.
openssl req -new -key "$tmp/key.pem" -subj "/CN=localhost" -out "$tmp/leaf.csr"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" -days 30 \
    -extfile "$tmp/leaf.ext" -set_serial "0x$(openssl rand -hex 16)" -out "$tmp/cert.pem" 2>/dev/null

openssl verify -CAfile "$tmp/ca.pem" -purpose sslserver "$tmp/cert.pem" >/dev/null
# Publish the key first and cert.pem last: a reader that sees cert.pem sees all.
mv "$tmp/ca-key.pem" ca-key.pem
mv "$tmp/key.pem" key.pem
mv "$tmp/ca.pem" ca.pem
mv "$tmp/cert.pem" cert.pem
