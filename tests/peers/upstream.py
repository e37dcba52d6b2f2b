#!/usr/bin/python3
"""A real upstream submission server for anonrelay's tests, on aiosmtpd.

Offers STARTTLS (required before AUTH and MAIL when a certificate is given)
and AUTH PLAIN/LOGIN for one user. Each accepted message is written to
DIR/NNNN.json (envelope) and then DIR/NNNN.eml (exact bytes), atomically.
Prints "READY <port>" once listening. Fault flags make it answer the end of
DATA with a chosen code for the first N messages.
"""
import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, SMTP


class Handler:
    def __init__(self, args):
        self.dir = args.dir
        self.fail_data = args.fail_data
        self.fail_count = args.fail_count
        self.seen = 0
        self.stored = 0
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # Counted per connection (EHLO again after STARTTLS is the same one).
        if not getattr(session, "counted", False):
            session.counted = True
            self.connections += 1
            session.connection_number = self.connections
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.fail_data and (self.fail_count == 0 or self.seen <= self.fail_count):
            return "%d %s" % (self.fail_data, "4.0.0 injected fault" if self.fail_data < 500 else "5.0.0 injected fault")
        self.stored += 1
        name = os.path.join(self.dir, "%04d" % self.stored)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_user": session.auth_data if isinstance(session.auth_data, str) else None,
            "tls": session.ssl is not None,
            "ehlo": session.host_name,
            "connection": getattr(session, "connection_number", 0),
        }
        write_atomic(name + ".json", json.dumps(meta).encode())
        write_atomic(name + ".eml", envelope.original_content)
        return "250 2.0.0 OK stored"


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)
    return authenticate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--auth", help="USER:PASS")
    parser.add_argument("--require-auth", action="store_true")
    parser.add_argument("--fail-data", type=int, default=0, help="reply code for the end of DATA")
    parser.add_argument("--fail-count", type=int, default=0, help="only the first N messages fail (0: all)")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    smtp_kwargs = {
        "decode_data": False,
        "tls_context": tls_context,
        "require_starttls": tls_context is not None,
        "auth_require_tls": tls_context is not None,
        "auth_required": args.require_auth,
        "hostname": "upstream.test",
    }
    if args.auth:
        user, password = args.auth.split(":", 1)
        smtp_kwargs["authenticator"] = authenticator_for(user, password)

    controller = Controller(Handler(args), hostname="127.0.0.1", port=args.port,
                            server_kwargs=smtp_kwargs)
    controller.start()
    print("READY %d" % args.port, flush=True)

    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
