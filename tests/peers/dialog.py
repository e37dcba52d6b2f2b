#!/usr/bin/python3
"""A scripted SMTP client on Python's smtplib, for reply-code tests.

    /usr/bin/python3 dialog.py --server HOST:PORT [--starttls] [--cafile CA]
        [--no-verify] [--tls-name NAME] [--raw] [--timeout SECS] CMD [CMD ...]

Prints the server greeting ("220 ...") and then exactly one line per CMD:
"CODE text", with a multi-line reply joined by spaces onto one line.
Each CMD is a command line sent like smtplib's docmd() does, plus CRLF ("EHLO x",
"MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "RSET", "NOOP", "QUIT", ...;
UTF-8 allowed; unlike docmd() an embedded CR or LF is sent as given) or one of:

  BODY:@FILE | BODY:TEXT  the message, sent as smtplib's SMTP.data() sends
        bytes: a "." at the start of any line is doubled (re (?m)^\\.), CRLF
        added if missing, then ".\\r\\n"; bare CR / LF are NOT rewritten.
        Prints the reply to the end of data. Normally follows "DATA"; if the
        DATA reply was not 354 the body is not sent and the line printed is
        "SKIPPED body: DATA answered CODE".
        With --raw, BODY: behaves like RAW: (for hostile-input tests).
  RAW:@FILE  | RAW:TEXT   the bytes exactly as given (no dot-stuffing, no
        terminator added), then one reply is read and printed.
  READ      sends nothing and reads one more reply (a server that answers
        one command twice, e.g. an error and then 421).
  STARTTLS  sends STARTTLS; on 220 upgrades the connection (verifying against
        --cafile, server name --tls-name, by default "localhost" for a loopback
        IP, else the host). The client must send EHLO again afterwards.

TEXT may use Python escapes (\\r, \\n, \\t, \\x00) and UTF-8.
--starttls runs "EHLO dialog.test" and STARTTLS before the CMDs (their two
replies are printed after the greeting), so the CMDs run inside TLS.

The dialog ends early with one final line when the server closes the
connection ("DISCONNECTED"), does not answer within --timeout ("TIMEOUT"),
or the TLS handshake fails ("TLS-FAILED reason"). The exit status is 0 in
all those cases (the dialog is the result); it is non-zero only when the
connection cannot be made or the arguments are wrong.
"""
import argparse
import ipaddress
import re
import smtplib
import socket
import ssl
import sys


class Ended(Exception):
    """The dialog is over; the argument is the last line to print."""


def payload(spec):
    if spec.startswith("@"):
        with open(spec[1:], "rb") as f:
            return f.read()
    return spec.encode("utf-8").decode("unicode_escape").encode("latin-1")


def data_stuffing(data):
    """Exactly what smtplib.SMTP.data() sends for a bytes message."""
    quoted = re.sub(rb"(?m)^\.", b"..", data)
    if quoted[-2:] != b"\r\n":
        quoted += b"\r\n"
    return quoted + b".\r\n"


def show(code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    print(("%d %s" % (code, " ".join(text.splitlines()))).rstrip(), flush=True)


def tls_name(host, override):
    if override:
        return override
    try:
        if ipaddress.ip_address(host).is_loopback:
            return "localhost"
    except ValueError:
        pass
    return host


class Dialog:
    def __init__(self, args, host):
        self.args = args
        self.host = host
        self.smtp = smtplib.SMTP(timeout=args.timeout)
        self.smtp.command_encoding = "utf-8"  # SMTPUTF8 addresses
        self.last_code = None

    def reply(self):
        try:
            code, text = self.smtp.getreply()
        except smtplib.SMTPServerDisconnected as e:
            raise Ended("TIMEOUT" if "timed out" in str(e) else "DISCONNECTED")
        self.last_code = code
        return code, text

    def send(self, data):
        try:
            self.smtp.send(data)
        except smtplib.SMTPServerDisconnected:
            raise Ended("DISCONNECTED")

    def command(self, line):
        self.send(line.encode("utf-8") + b"\r\n")
        show(*self.reply())

    def starttls(self):
        self.command("STARTTLS")
        if self.last_code != 220:
            return
        if self.args.no_verify:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=self.args.cafile)
        try:
            self.smtp.sock = context.wrap_socket(
                self.smtp.sock, server_hostname=tls_name(self.host, self.args.tls_name))
        except (ssl.SSLError, OSError) as e:
            raise Ended("TLS-FAILED %s" % " ".join(str(e).split()))
        self.smtp.file = None  # smtplib re-makes its reader over the TLS socket

    def run(self, commands):
        if self.args.starttls:
            self.command("EHLO dialog.test")
            self.starttls()
        for command in commands:
            if command.startswith("BODY:") and not self.args.raw:
                if self.last_code != 354:
                    print("SKIPPED body: DATA answered %s" % self.last_code, flush=True)
                    continue
                self.send(data_stuffing(payload(command[5:])))
                show(*self.reply())
            elif command.startswith("BODY:") or command.startswith("RAW:"):
                self.send(payload(command.split(":", 1)[1]))
                show(*self.reply())
            elif command == "READ":
                show(*self.reply())
            elif command.upper() == "STARTTLS":
                self.starttls()
            else:
                self.command(command)


def main():
    parser = argparse.ArgumentParser(
        description="Scripted SMTP dialog on smtplib; see the module docstring.")
    parser.add_argument("--server", required=True, metavar="HOST:PORT")
    parser.add_argument("--starttls", action="store_true",
                        help="EHLO + STARTTLS before the commands")
    parser.add_argument("--cafile", help="CA to verify the server's certificate")
    parser.add_argument("--no-verify", action="store_true", help="do not verify the certificate")
    parser.add_argument("--tls-name", help="server name to verify (default localhost for 127.0.0.1)")
    parser.add_argument("--raw", action="store_true",
                        help="BODY: bytes are sent as-is (no dot-stuffing, no terminator)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for each reply (default 30)")
    parser.add_argument("commands", nargs="*", metavar="CMD")
    args = parser.parse_args()
    host, port = args.server.rsplit(":", 1)
    host = host.strip("[]")

    dialog = Dialog(args, host)
    try:
        try:
            code, text = dialog.smtp.connect(host, int(port))
        except smtplib.SMTPServerDisconnected as e:
            # Connected, but no greeting.
            raise Ended("TIMEOUT" if "timed out" in str(e) else "DISCONNECTED")
        except OSError as e:
            print("dialog.py: cannot connect to %s: %s" % (args.server, e), file=sys.stderr)
            return 2
        show(code, text)
        dialog.run(args.commands)
    except Ended as end:
        print(end.args[0], flush=True)
    try:
        dialog.smtp.close()
    except Exception:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
