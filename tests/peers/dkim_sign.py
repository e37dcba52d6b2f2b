#!/usr/bin/python3
"""An independent DKIM signer for anonrelay's inbound-verification tests:
Python's dkimpy (Debian's python3-dkim) signs a message as the partner's
mail provider would.

    /usr/bin/python3 dkim_sign.py --key KEY.pem --selector SEL --domain DOMAIN IN OUT

KEY.pem is an RSA private key (PKCS#1 PEM, e.g. `openssl genrsa -traditional`).
Signs From, To, Subject, Date and Message-ID with relaxed/relaxed
canonicalization and writes the message with its DKIM-Signature prepended.
"""
import argparse
import sys

import dkim


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--selector", required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("input")
    parser.add_argument("output")
    args = parser.parse_args()
    with open(args.key, "rb") as f:
        key = f.read()
    with open(args.input, "rb") as f:
        message = f.read()
    signature = dkim.sign(
        message,
        args.selector.encode(),
        args.domain.encode(),
        key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        linesep=b"\r\n",
    )
    if not signature:
        sys.exit("dkimpy produced no signature")
    with open(args.output, "wb") as f:
        f.write(signature + message)


if __name__ == "__main__":
    main()
