#!/usr/bin/python3
"""An independent DKIM verifier for anonrelay's tests: Python's dkimpy
(Debian's python3-dkim), with DNS answered from the command line.

    /usr/bin/python3 dkim_verify.py --record NAME=TXT [--record ...] FILE [FILE ...]

NAME is the DNS name the verifier asks for (e.g.
"anonrelay._domainkey.relay.test", without the trailing dot) and TXT the
record's value as published ("v=DKIM1; k=ed25519; p=..."). Any other name
answers nothing, as an absent record would; no real DNS is ever queried.

Prints one line per FILE: "PASS FILE" or "FAIL FILE reason", and exits 0
only if every FILE passed. A message with no DKIM-Signature fails.
"""
import argparse
import logging
import sys

import dkim


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", action="append", default=[])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    records = {}
    for item in args.record:
        name, _, value = item.partition("=")
        records[name.lower().rstrip(".")] = value.encode()

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        return records.get(name.lower().rstrip("."))

    failed = 0
    for path in args.files:
        with open(path, "rb") as f:
            message = f.read()
        reason = ""
        try:
            # dkimpy logs why a signature fails; keep the reason for the line.
            log = logging.getLogger("dkim_verify")
            handler = _Collect()
            log.addHandler(handler)
            log.setLevel(logging.DEBUG)
            ok = dkim.verify(message, logger=log, dnsfunc=dnsfunc)
            log.removeHandler(handler)
            reason = handler.last
        except Exception as err:  # a malformed signature raises
            ok = False
            reason = f"{type(err).__name__}: {err}"
        if b"DKIM-Signature:" not in message.split(b"\r\n\r\n", 1)[0]:
            ok, reason = False, "no DKIM-Signature header"
        if ok:
            print(f"PASS {path}")
        else:
            failed += 1
            print(f"FAIL {path} {reason}")
    sys.exit(1 if failed else 0)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.last = ""

    def emit(self, record):
        self.last = record.getMessage()


if __name__ == "__main__":
    main()
