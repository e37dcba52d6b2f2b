#!/usr/bin/python3
"""Prune 1,000,000 metadata rows while SMTP clients keep sending.

    bench/prune_under_load.py [--rows 1000000] [--clients 4]

Builds the release binary, starts `anonrelay serve` (outbox upstream) in a
temporary directory, fills message_log with rows older than the retention,
keeps several smtplib clients sending through the relay, runs
`anonrelay prune` (what the systemd timer runs) and reports how long the
prune took and the SMTP reply latencies seen before and during it. Every
reply is timed from the moment its command was sent (EHLO, MAIL, RCPT,
DATA, end of data, QUIT), so a stall behind the database would show up.
"""
import argparse
import json
import os
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "anonrelay")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Load:
    def __init__(self, port, alias, clients):
        self.port, self.alias, self.clients = port, alias, clients
        self.samples = []  # (wall time, latency seconds)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sent = 0

    def timed(self, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        elapsed = time.perf_counter() - start
        with self.lock:
            self.samples.append((time.time(), elapsed))
        return result

    def client(self):
        while not self.stop.is_set():
            smtp = smtplib.SMTP()
            self.timed(smtp.connect, "127.0.0.1", self.port)
            self.timed(smtp.ehlo, "bench.example")
            code, _ = self.timed(smtp.docmd, "MAIL FROM:<bob@b-mail.example>")
            code, _ = self.timed(smtp.docmd, "RCPT TO:<%s>" % self.alias)
            code, _ = self.timed(smtp.docmd, "DATA")
            smtp.send(b"Subject: bench\r\n\r\n" + b"x" * 4000 + b"\r\n.\r\n")
            code, _ = self.timed(smtp.getreply)
            if code != 250:
                raise SystemExit("unexpected reply %d" % code)
            with self.lock:
                self.sent += 1
            self.timed(smtp.quit)

    def start(self):
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(self.clients)]
        for t in self.threads:
            t.start()

    def window(self, start, end):
        with self.lock:
            return [lat for (at, lat) in self.samples if start <= at <= end]


def summary(latencies):
    latencies = sorted(latencies)
    if not latencies:
        return "no samples"
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return "%d replies, p50 %.2f ms, p99 %.2f ms, worst %.2f ms" % (len(latencies), p(0.5), p(0.99), latencies[-1] * 1000)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="anonrelay-bench-")
    port = free_port()
    config = os.path.join(work, "relay.toml")
    with open(config, "w") as f:
        f.write('[smtp]\nlisten = "127.0.0.1:%d"\nhostname = "mx.relay.test"\nalias_domain = "relay.test"\n'
                '[upstream]\nurl = "outbox:outbox"\n[store]\npath = "relay.db"\n'
                '[retention]\ndays = 90\ninterval_secs = 86400\n[verify]\nmode = "off"\n' % port)
    out = subprocess.run([BIN, "conversation", "create", "--config", config, "--a-user", "alice",
                          "--a-email", "alice@a-mail.example", "--b-user", "bob", "--b-email", "bob@b-mail.example"],
                         check=True, capture_output=True, text=True)
    alias = json.loads(out.stdout)["alias_a"]

    db = sqlite3.connect(os.path.join(work, "relay.db"))
    old = int(time.time()) - 100 * 86400
    start = time.perf_counter()
    db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
               "INSERT INTO message_log (sent_at, sender_id, recipient_id, alias, subject) "
               "SELECT ? + (i % 86400), 'bob', 'alice', 'someali', 'old subject number ' || i FROM n",
               (args.rows, old))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print("inserted %d old rows in %.1f s" % (args.rows, time.perf_counter() - start))

    # Keep serve's own pass from running the prune we want to time: it runs
    # at start, so start serve first, let it finish, then add the rows? No:
    # serve prunes at start, which would erase them; so serve starts with a
    # retention it cannot reach, and the timed prune uses the real one.
    with open(config) as f:
        text = f.read()
    serve_config = os.path.join(work, "serve.toml")
    with open(serve_config, "w") as f:
        f.write(text.replace("days = 90", "days = 3650"))
    serve = subprocess.Popen([BIN, "serve", "--config", serve_config], stderr=open(os.path.join(work, "serve.log"), "w"))
    try:
        for _ in range(100):
            try:
                smtplib.SMTP("127.0.0.1", port).quit()
                break
            except OSError:
                time.sleep(0.05)
        load = Load(port, alias, args.clients)
        load.start()
        time.sleep(3)
        before_start = time.time()
        time.sleep(3)
        prune_start = time.time()
        t0 = time.perf_counter()
        out = subprocess.run([BIN, "prune", "--config", config], check=True, capture_output=True, text=True)
        prune_secs = time.perf_counter() - t0
        prune_end = time.time()
        time.sleep(1)
        load.stop.set()
        for t in load.threads:
            t.join(timeout=30)
        print("prune: %s (%.2f s)" % (out.stdout.strip(), prune_secs))
        print("messages relayed during the run: %d with %d clients" % (load.sent, args.clients))
        print("SMTP replies before the prune (3 s): %s" % summary(load.window(before_start, prune_start)))
        print("SMTP replies during the prune:       %s" % summary(load.window(prune_start, prune_end)))
    finally:
        serve.terminate()
        serve.wait()


if __name__ == "__main__":
    sys.exit(main())
