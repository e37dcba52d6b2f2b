#!/usr/bin/python3
"""A real upstream submission server for anonrelay's tests, on aiosmtpd.

    /usr/bin/python3 upstream.py --port P --dir DIR
        [--tls-cert CERT --tls-key KEY] [--auth USER:PASS] [--require-auth]
        [--fail-data CODE [--fail-count N]]
        [--fail-rcpt CODE [--fail-rcpt-match TEXT]]
        [--data-size-limit BYTES] [--hostname NAME] [--implicit-tls]

Listens on 127.0.0.1:P. With a certificate it offers STARTTLS and requires
it before AUTH and MAIL (530 otherwise), or with --implicit-tls speaks TLS
from the first byte (smtps, port 465 style) and offers no STARTTLS; with --auth it offers AUTH PLAIN and
LOGIN for that one user only; with --require-auth MAIL needs AUTH (530).
SMTPUTF8 and 8BITMIME are advertised.

Each accepted message is written as DIR/NNNN.json (envelope, see below) and
then DIR/NNNN.eml (the message bytes exactly as received after DATA, with
dot-unstuffing undone and CRLF kept), each atomically (tmp file + rename),
so a reader that sees NNNN.eml sees both complete. NNNN counts stored
messages from 0001. The JSON holds:
    mail_from, rcpt_tos, mail_options, rcpt_options, auth_user (null without
    AUTH), tls (true after STARTTLS or on an implicit-TLS connection), ehlo (the last EHLO/HELO name),
    connection (1, 2, ... per TCP connection, STARTTLS does not start a new one)

Prints "READY <port>" (flushed) once listening and nothing on stdout after
that (tests may close the pipe). SIGTERM or SIGINT stop it with exit 0.

Faults:
  --fail-data CODE     answer the end of DATA with CODE (e.g. 451, 554);
  --fail-count N       ... for the first N messages only (default 0: all);
  --fail-rcpt CODE     answer RCPT TO with CODE (alias --fail-rcpt-code);
  --fail-rcpt-match S  ... only for recipients containing S (case-insensitive).
"""
import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
# With --implicit-tls every connection is TLS, which aiosmtpd cannot see.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
# aiosmtpd logs this on every successful AUTH; it is noise in test output.
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage()
    and "auth_require_tls == False" not in record.getMessage())

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import SMTP, AuthResult  # noqa: E402


def fault_text(code):
    # An enhanced status code of the right class (RFC 3463).
    return "%d %d.0.0 injected fault" % (code, code // 100)


class CountingSMTP(SMTP):
    """Numbers TCP connections: aiosmtpd makes a fresh Session after STARTTLS,
    and the Controller's own start-up probe connection must not count."""

    connections = 0

    def connection_made(self, transport):
        if self._original_transport is None:  # not the STARTTLS upgrade
            self.connection_number = None
        super().connection_made(transport)

    def number(self):
        # Allocated at the first EHLO/HELO (or DATA), so the probe is skipped.
        if self.connection_number is None:
            CountingSMTP.connections += 1
            self.connection_number = CountingSMTP.connections
        return self.connection_number


class Handler:
    def __init__(self, args):
        self.dir = args.dir
        self.fail_data = args.fail_data
        self.fail_count = args.fail_count
        self.fail_rcpt = args.fail_rcpt
        self.fail_rcpt_match = (args.fail_rcpt_match or "").lower()
        self.seen = 0
        self.stored = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        server.number()
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        server.number()
        session.host_name = hostname
        return "250 %s" % server.hostname

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.fail_rcpt and self.fail_rcpt_match in address.lower():
            return fault_text(self.fail_rcpt)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.fail_data and (self.fail_count == 0 or self.seen <= self.fail_count):
            return fault_text(self.fail_data)
        self.stored += 1
        name = os.path.join(self.dir, "%04d" % self.stored)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "auth_user": session.auth_data if isinstance(session.auth_data, str) else None,
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "ehlo": session.host_name,
            "connection": server.number(),
        }
        write_atomic(name + ".json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        write_atomic(name + ".eml", bytes(envelope.original_content))
        return "250 2.0.0 OK stored as %04d" % self.stored


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode("utf-8", "replace")
        secret = auth_data.password.decode("utf-8", "replace")
        ok = login == user and secret == password
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    return authenticate


class UpstreamController(Controller):
    def factory(self):
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--auth", help="USER:PASS, the only accepted credentials")
    parser.add_argument("--require-auth", action="store_true", help="MAIL needs AUTH first")
    parser.add_argument("--fail-data", type=int, default=0, metavar="CODE",
                        help="reply code for the end of DATA")
    parser.add_argument("--fail-count", type=int, default=0, metavar="N",
                        help="only the first N messages fail (0: all)")
    parser.add_argument("--fail-rcpt", "--fail-rcpt-code", type=int, default=0, metavar="CODE",
                        help="reply code for RCPT TO")
    parser.add_argument("--fail-rcpt-match", metavar="TEXT",
                        help="only recipients containing TEXT get --fail-rcpt")
    parser.add_argument("--data-size-limit", type=int, default=33554432, metavar="BYTES",
                        help="advertised SIZE; bigger messages get 552")
    parser.add_argument("--hostname", default="upstream.test", help="name in the banner")
    parser.add_argument("--implicit-tls", action="store_true",
                        help="TLS from the first byte (needs --tls-cert/--tls-key)")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.implicit_tls and not args.tls_cert:
        parser.error("--implicit-tls needs --tls-cert and --tls-key")
    os.makedirs(args.dir, exist_ok=True)

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    # With implicit TLS the whole connection is encrypted: no STARTTLS, and
    # aiosmtpd's auth_require_tls (which looks for a STARTTLS upgrade) is off.
    starttls_context = None if args.implicit_tls else tls_context
    smtp_kwargs = {
        "decode_data": False,
        "enable_SMTPUTF8": True,
        "data_size_limit": args.data_size_limit,
        "tls_context": starttls_context,
        "require_starttls": starttls_context is not None,
        "auth_require_tls": starttls_context is not None,
        "auth_required": args.require_auth,
        "hostname": args.hostname,
        "ident": "anonrelay-test-upstream",
    }
    if args.auth:
        user, password = args.auth.split(":", 1)
        smtp_kwargs["authenticator"] = authenticator_for(user, password)

    controller = UpstreamController(Handler(args), hostname="127.0.0.1", port=args.port,
                                    ready_timeout=30.0, server_kwargs=smtp_kwargs,
                                    ssl_context=tls_context if args.implicit_tls else None)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    controller.start()
    try:
        print("READY %d" % args.port, flush=True)
        loop.run_until_complete(stop.wait())
    finally:
        controller.stop()
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
