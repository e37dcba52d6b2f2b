#!/usr/bin/python3
"""A scripted SMTP client on Python's smtplib, for reply-code tests.

    dialog.py --server HOST:PORT [--starttls --cafile CA] CMD [CMD ...]

Prints the greeting and then one line "CODE text" per reply (multi-line
replies joined with spaces). Each CMD is a raw command line ("EHLO x",
"MAIL FROM:<a@b>", "DATA", ...) or one of:
  BODY:@FILE  / BODY:TEXT  message bytes after a 354: dot-stuffed after each
                           CRLF (bare CR/LF are sent as they are), then CRLF.CRLF
  RAW:@FILE   / RAW:TEXT   bytes sent exactly as given (\\r, \\n escapes in TEXT)
                           then the next reply is read
  STARTTLS                 upgrades the connection (verifying with --cafile)
A closed connection prints "DISCONNECTED" and ends the dialog.
"""
import argparse
import smtplib
import ssl
import sys


def payload(spec):
    if spec.startswith("@"):
        with open(spec[1:], "rb") as f:
            return f.read()
    return spec.encode("utf-8").decode("unicode_escape").encode("latin-1")


def stuff(data):
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n") and data:
        data += b"\r\n"
    return data + b".\r\n"


def show(code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    print("%d %s" % (code, " ".join(text.splitlines())), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--cafile")
    parser.add_argument("commands", nargs="*")
    args = parser.parse_args()
    host, port = args.server.rsplit(":", 1)
    smtp = smtplib.SMTP()
    smtp.command_encoding = "utf-8"  # SMTPUTF8 addresses
    code, text = smtp.connect(host, int(port))
    show(code, text)
    try:
        for command in args.commands:
            if command.startswith("BODY:"):
                smtp.send(stuff(payload(command[5:])))
                show(*smtp.getreply())
            elif command.startswith("RAW:"):
                smtp.send(payload(command[4:]))
                show(*smtp.getreply())
            elif command.upper() == "STARTTLS":
                context = ssl.create_default_context(cafile=args.cafile)
                code, text = smtp.docmd("STARTTLS")
                show(code, text)
                if code == 220:
                    smtp.sock = context.wrap_socket(smtp.sock, server_hostname=host if host != "127.0.0.1" else "localhost")
                    smtp.file = None
            else:
                show(*smtp.docmd(command))
    except smtplib.SMTPServerDisconnected:
        print("DISCONNECTED", flush=True)
    try:
        smtp.close()
    except Exception:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
