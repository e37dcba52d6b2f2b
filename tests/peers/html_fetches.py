#!/usr/bin/env python3
"""Opens HTML files in headless Chromium, the mail reader that must fetch
nothing, and reports every request it made.

    /usr/bin/python3 tests/peers/html_fetches.py [--budget MS] FILE...

A local HTTP server on 127.0.0.1 (random port) stands in for every host:
Chromium runs with --host-resolver-rules mapping every name to it, so a
tracker's host name arrives in the Host header. Each file is opened as a
file:// page in a fresh profile (--dump-dom, with a virtual time budget, so
timers such as a meta refresh fire). Prints one JSON array, one object per
file in order:

    {"file": FILE, "requests": [{"method", "host", "path"}...],
     "connections": N}

`connections` counts TCP connections accepted, with or without a request
(a <link rel=preconnect> opens one and sends nothing). Exits 2 when
Chromium is missing or fails.
"""

import argparse
import http.server
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

# 1x1 transparent GIF: every image request gets a real image, so that
# nothing is retried as broken.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c0000000001000100000202440100"
    "3b"
)

# Chromium's own services still run in headless mode despite the flags
# below (the component updater, sign-in checks). Left mapped to the counting
# server they would look like leaks; ~NOTFOUND fails them without any
# network. The test's tracker hosts are never under these domains.
BROWSER_OWN_DOMAINS = ["*.google.com", "*.googleapis.com", "*.gstatic.com", "*.gvt1.com"]

# Each run needs all of these on a closed network: without them Chromium
# calls Google's hosts (time, updates, metrics, safe browsing) by itself.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--disable-field-trial-config",
    "--metrics-recording-only",
    "--no-pings",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,"
    "OptimizationHintsFetching,MediaRouter,Translate,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater",
    "--dump-dom",
]


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0

    def take(self):
        with self.lock:
            taken = (self.requests, self.connections)
            self.requests, self.connections = [], 0
            return taken


def make_server(recorder):
    class Handler(http.server.BaseHTTPRequestHandler):
        def handle_any(self):
            with recorder.lock:
                recorder.requests.append(
                    {"method": self.command, "host": self.headers.get("Host", ""), "path": self.path}
                )
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(min(length, 1 << 20))
            if self.path.split("?")[0].endswith(".css"):
                body, kind = b"", "text/css"
            elif self.path.split("?")[0].endswith((".html", "/")):
                body, kind = b"<!DOCTYPE html><title>x</title>", "text/html"
            else:
                body, kind = PIXEL, "image/gif"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_HEAD = do_PUT = do_OPTIONS = handle_any

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def process_request(self, request, client_address):
            with recorder.lock:
                recorder.connections += 1
            super().process_request(request, client_address)

    return Server(("127.0.0.1", 0), Handler)


def fail(message):
    print(f"html_fetches: {message}", file=sys.stderr)
    sys.exit(2)


def open_in_chromium(path, port, budget_ms):
    rules = ", ".join([f"MAP {d} ~NOTFOUND" for d in BROWSER_OWN_DOMAINS] + [f"MAP * 127.0.0.1:{port}"])
    with tempfile.TemporaryDirectory(prefix="html-fetches-profile-") as profile:
        command = ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--host-resolver-rules={rules}", f"--virtual-time-budget={budget_ms}",
                   pathlib.Path(path).resolve().as_uri()]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
        try:
            _, stderr = child.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            fail(f"chromium did not finish {path} within 90 s")
        if child.returncode != 0:
            tail = stderr.decode(errors="replace")[-2000:]
            fail(f"chromium exited {child.returncode} on {path}:\n{tail}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=5000, help="virtual time budget, ms")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    recorder = Recorder()
    server = make_server(recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    results = []
    try:
        for path in args.files:
            recorder.take()
            open_in_chromium(path, port, args.budget)
            # Handlers of the last requests may still be writing their line.
            time.sleep(0.5)
            requests, connections = recorder.take()
            results.append({"file": path, "requests": requests, "connections": connections})
    except FileNotFoundError:
        fail("chromium is not installed (apt-get install chromium)")
    finally:
        server.shutdown()
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
