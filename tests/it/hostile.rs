//! Hostile clients: SMTP smuggling, open-relay probes, every limit with its
//! documented reply, pipelining and the STARTTLS injection. These dialogs
//! need exact bytes, so they are written with a raw socket.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const BOB: &str = "bob@b-mail.example";

struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    fn connect(daemon: &Daemon) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", daemon.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let mut client = Self {
            stream,
            pending: Vec::new(),
        };
        let greeting = client.reply();
        assert!(greeting.starts_with("220"), "{greeting}");
        client
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// The next complete reply (its last line), or "EOF".
    fn reply(&mut self) -> String {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..end + 2).collect();
                let line = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
                if line.len() < 4 || line.as_bytes()[3] == b' ' {
                    return line;
                }
                continue;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return "EOF".into(),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    fn start_transaction(&mut self, alias: &str) {
        self.start_transaction_from(BOB, alias);
    }

    fn start_transaction_from(&mut self, sender: &str, alias: &str) {
        for (line, code) in [
            ("EHLO client.example".to_owned(), "250"),
            (format!("MAIL FROM:<{sender}>"), "250"),
            (format!("RCPT TO:<{alias}>"), "250"),
            ("DATA".to_owned(), "354"),
        ] {
            let reply = self.command(&line);
            assert!(reply.starts_with(code), "{line}: {reply}");
        }
    }
}

fn setup(extra_limits: &str) -> (Daemon, Conversation) {
    let mut options = DaemonOptions::outbox();
    options.extra_smtp = format!("[smtp.limits]\n{extra_limits}");
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(("alice", "alice@a-mail.example"), ("bob", BOB));
    (daemon, conv)
}

#[test]
fn smuggled_end_of_data_variants_never_split_a_message() {
    // A real upstream (aiosmtpd over STARTTLS), so what mail-send writes
    // (its dot-stuffing, its line endings) is what gets checked.
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let mut options = upstream.daemon_options(base.path());
    options.extra_smtp = "[smtp.limits]\nmax_errors = 1000".into();
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(("alice", "alice@a-mail.example"), ("bob", BOB));
    // Only the NUL variants hold no bare CR or LF: they do not end the data
    // either, and are refused for the NUL (an upstream that strips NULs
    // would read `CRLF NUL . CRLF` as the end).
    let variants: [(&[u8], &str); 11] = [
        (b"\n.\n", "550 5.5.2"),
        (b"\n.\r\n", "550 5.5.2"),
        (b"\r.\n", "550 5.5.2"),
        (b"\r.\r", "550 5.5.2"),
        (b"\r.\r\n", "550 5.5.2"),
        (b"\r\n.\n", "550 5.5.2"),
        (b"\r\n.\r", "550 5.5.2"),
        (b"\r\n.\r\r\n", "550 5.5.2"),
        (b"\r\r\n.\r\r\n", "550 5.5.2"),
        (b"\r\n\x00.\r\n", "550 5.6.0"),
        (b"\r\n.\x00\r\n", "550 5.6.0"),
    ];
    for (index, (variant, expected)) in variants.iter().enumerate() {
        let mut client = Client::connect(&daemon);
        client.start_transaction(&conv.alias_a);
        // Client-side dot-stuffed lines: a lone dot and a leading dot.
        let mut payload =
            format!("Subject: variant {index}\r\n\r\nfirst message\r\n..\r\n..leading dot")
                .into_bytes();
        payload.extend_from_slice(variant);
        payload.extend_from_slice(
            format!("MAIL FROM:<{BOB}>\r\nRCPT TO:<{}>\r\nDATA\r\nSubject: SMUGGLED\r\n\r\nsmuggled body\r\n.\r\n", conv.alias_a)
                .as_bytes(),
        );
        client.send(&payload);
        let reply = client.reply();
        assert!(reply.starts_with(expected), "variant {variant:?}: {reply}");
        let after = client.command("NOOP");
        assert!(
            after.starts_with("250"),
            "variant {variant:?}: the session must be in command state: {after}"
        );
        client.command("QUIT");
    }
    // One clean message after them: it must be the only one that arrives.
    let mut client = Client::connect(&daemon);
    client.start_transaction(&conv.alias_a);
    client.send(b"Subject: clean\r\n\r\nfirst message\r\n..\r\n..leading dot\r\n.\r\n");
    let reply = client.reply();
    assert!(reply.starts_with("250"), "the clean message: {reply}");
    client.command("QUIT");
    let delivered = wait_captured(&upstream.dir, 1);
    std::thread::sleep(Duration::from_millis(300));
    let delivered_late = wait_captured(&upstream.dir, 1);
    assert_eq!(
        (delivered.len(), delivered_late.len()),
        (1, 1),
        "only the clean message arrives"
    );
    let (_, message) = &delivered[0];
    anonrelay::rewrite::check_line_endings(message).expect("no stray CR or LF forwarded");
    assert!(!header_block(message).contains("SMUGGLED"));
    let text = String::from_utf8_lossy(message);
    assert!(!text.contains("smuggled body"), "{text:?}");
    // mail-send stuffed the dots again: the upstream un-stuffed them back
    // to what the sender meant, and did not end the data early.
    assert!(
        text.contains("first message\r\n.\r\n.leading dot"),
        "dot lines changed on the way: {text:?}"
    );
}

#[test]
fn end_of_data_split_across_reads_is_still_one_message() {
    let (daemon, conv) = setup("");
    let terminator = b"\r\n.\r\n";
    for split in 1..terminator.len() {
        let mut client = Client::connect(&daemon);
        client.start_transaction(&conv.alias_a);
        client.send(format!("Subject: split {split}\r\n\r\nbody").as_bytes());
        client.send(&terminator[..split]);
        // A pause so the halves arrive in separate reads (nothing is timed).
        std::thread::sleep(Duration::from_millis(50));
        client.send(&terminator[split..]);
        let reply = client.reply();
        assert!(reply.starts_with("250"), "split at {split}: {reply}");
    }
    assert_eq!(captured(&daemon.outbox()).len(), terminator.len() - 1);
}

/// The relay probes of nmap's smtp-open-relay script, with this relay's
/// domain and IP. None may be accepted.
#[test]
fn open_relay_probes_are_refused() {
    let (daemon, _conv) = setup("");
    let domain = ALIAS_DOMAIN;
    let ip = "[127.0.0.1]";
    let target = "relaytest@nmap.scanme.org";
    let (user, host) = target.split_once('@').unwrap();
    let probes: Vec<(String, String)> = vec![
        ("<>".into(), format!("<{target}>")),
        (format!("<antispam@{domain}>"), format!("<{target}>")),
        (format!("<antispam@{ip}>"), format!("<{target}>")),
        (
            format!("<antispam@{domain}>"),
            format!("<{user}%{host}@{domain}>"),
        ),
        (
            format!("<antispam@{domain}>"),
            format!("<{user}%{host}@{ip}>"),
        ),
        (format!("<antispam@{domain}>"), format!("<\"{target}\">")),
        (
            format!("<antispam@{domain}>"),
            format!("<\"{user}%{host}\">"),
        ),
        (
            format!("<antispam@{domain}>"),
            format!("<{target}@{domain}>"),
        ),
        (
            format!("<antispam@{domain}>"),
            format!("<\"{target}\"@{domain}>"),
        ),
        (format!("<antispam@{domain}>"), format!("<{target}@{ip}>")),
        (
            format!("<antispam@{domain}>"),
            format!("<@{domain}:{target}>"),
        ),
        (format!("<antispam@{domain}>"), format!("<@{ip}:{target}>")),
        (format!("<antispam@{domain}>"), format!("<{host}!{user}>")),
        (
            format!("<antispam@{domain}>"),
            format!("<{host}!{user}@{domain}>"),
        ),
        (
            format!("<antispam@{domain}>"),
            format!("<{host}!{user}@{ip}>"),
        ),
        (format!("<antispam@{domain}>"), format!("<{user}@{ip}>")),
    ];
    assert_eq!(probes.len(), 16);
    for (from, to) in probes {
        let mut client = Client::connect(&daemon);
        client.command("EHLO nmap.scanme.org");
        let mail = client.command(&format!("MAIL FROM:{from}"));
        if mail.starts_with('5') {
            // An IP-literal sender is refused already; the probe ends here.
            assert!(mail.starts_with("501 5.1.7"), "MAIL FROM:{from} got {mail}");
            continue;
        }
        let reply = client.command(&format!("RCPT TO:{to}"));
        assert!(
            reply.starts_with("554 5.7.1"),
            "MAIL FROM:{from} RCPT TO:{to} got {reply}"
        );
    }
    assert!(captured(&daemon.outbox()).is_empty());
}

#[test]
fn command_line_length_and_error_limits() {
    let (daemon, _conv) = setup("max_line_length = 600\nmax_errors = 3");
    let mut client = Client::connect(&daemon);
    let long = format!("NOOP {}", "x".repeat(700));
    assert!(client.command(&long).starts_with("500 5.5.2"));
    assert!(
        client.command("NOOP").starts_with("250"),
        "the session goes on after a long line"
    );
    assert!(client.command("BOGUS").starts_with("500 5.5.1"));
    // The third error is answered, then the session is closed with 421.
    assert!(client.command("BOGUS").starts_with("500 5.5.1"));
    let last = client.reply();
    assert!(last.starts_with("421 4.7.0"), "{last}");
    assert_eq!(client.reply(), "EOF");
}

#[test]
fn recipients_split_by_452_do_not_count_as_errors() {
    // An MTA pipelining many recipients gets one 250 and a 452 4.5.3 for
    // each of the rest; that must not trip the error limit before DATA.
    let (daemon, conv) = setup("max_errors = 3");
    let mut client = Client::connect(&daemon);
    assert!(client.command("EHLO mta.example").starts_with("250"));
    let mut batch = String::from("MAIL FROM:<bob@b-mail.example>\r\n");
    batch.push_str(&format!("RCPT TO:<{}>\r\n", conv.alias_a));
    for i in 0..11 {
        batch.push_str(&format!("RCPT TO:<other{i:03}someone@{ALIAS_DOMAIN}>\r\n"));
    }
    batch.push_str("DATA\r\n");
    client.send(batch.as_bytes());
    assert!(client.reply().starts_with("250"), "MAIL");
    assert!(client.reply().starts_with("250"), "first RCPT");
    for _ in 0..11 {
        let reply = client.reply();
        assert!(reply.starts_with("452 4.5.3"), "{reply}");
    }
    assert!(client.reply().starts_with("354"));
    client.send(b"From: bob@b-mail.example\r\nSubject: many\r\n\r\nhi\r\n.\r\n");
    let reply = client.reply();
    assert!(reply.starts_with("250"), "{reply}");
}

#[test]
fn transactions_per_connection_are_limited() {
    let (daemon, _conv) = setup("max_transactions_per_connection = 2");
    let mut client = Client::connect(&daemon);
    client.command("EHLO c.example");
    for _ in 0..2 {
        assert!(client
            .command(&format!("MAIL FROM:<{BOB}>"))
            .starts_with("250"));
        client.command("RSET");
    }
    assert!(client
        .command(&format!("MAIL FROM:<{BOB}>"))
        .starts_with("421 4.7.0"));
    assert_eq!(client.reply(), "EOF");
}

#[test]
fn connection_limits_total_and_per_client() {
    let (daemon, _conv) = setup("max_connections = 3\nmax_connections_per_client = 2");
    let _a = Client::connect(&daemon);
    let _b = Client::connect(&daemon);
    let mut third = TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    let mut text = String::new();
    third.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("421 4.7.0"), "{text}");

    let (daemon, _conv) = setup("max_connections = 2\nmax_connections_per_client = 5");
    let _a = Client::connect(&daemon);
    let _b = Client::connect(&daemon);
    let mut third = TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    let mut text = String::new();
    third.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("421 4.7.0 Too many connections"), "{text}");
}

#[test]
fn message_rates_per_client_and_per_alias() {
    let (daemon, conv) = setup("max_messages_per_client_per_minute = 2\nmax_errors = 100");
    let mut client = Client::connect(&daemon);
    client.command("EHLO c.example");
    for _ in 0..2 {
        assert!(client
            .command(&format!("MAIL FROM:<{BOB}>"))
            .starts_with("250"));
        client.command("RSET");
    }
    assert!(client
        .command(&format!("MAIL FROM:<{BOB}>"))
        .starts_with("450 4.7.1"));

    let (daemon, conv2) = setup("max_messages_per_alias_per_hour = 2\nmax_errors = 100");
    let _ = conv;
    let mut client = Client::connect(&daemon);
    client.command("EHLO c.example");
    // A stranger's transactions (RCPT then RSET, or a refused sender) do
    // not use up the partner's allowance.
    for _ in 0..5 {
        client.command("MAIL FROM:<stranger@elsewhere.example>");
        let reply = client.command(&format!("RCPT TO:<{}>", conv2.alias_a));
        assert!(reply.starts_with("250"), "{reply}");
        client.command("RSET");
    }
    client.start_transaction_from("stranger@elsewhere.example", &conv2.alias_a);
    client.send(b"From: <stranger@elsewhere.example>\r\nSubject: s\r\n\r\nx\r\n.\r\n");
    let reply = client.reply();
    assert!(reply.starts_with("550 5.7.1"), "{reply}");
    // The partner's accepted messages do.
    for round in 0..3 {
        assert!(client
            .command(&format!("MAIL FROM:<{BOB}>"))
            .starts_with("250"));
        let reply = client.command(&format!("RCPT TO:<{}>", conv2.alias_a));
        if round < 2 {
            assert!(reply.starts_with("250"), "round {round}: {reply}");
            client.command("DATA");
            client.send(b"Subject: counted\r\n\r\nhi\r\n.\r\n");
            let end = client.reply();
            assert!(end.starts_with("250"), "round {round}: {end}");
        } else {
            assert!(reply.starts_with("450 4.7.1"), "round {round}: {reply}");
            client.command("RSET");
        }
    }
    // The other alias of the conversation has its own allowance.
    client.command(&format!("MAIL FROM:<{BOB}>"));
    assert!(client
        .command(&format!("RCPT TO:<{}>", conv2.alias_b))
        .starts_with("250"));
}

#[test]
fn failed_recipients_slow_alias_guessing() {
    let (daemon, conv) = setup("max_failed_rcpts_per_client_per_hour = 3\nmax_errors = 100");
    let mut client = Client::connect(&daemon);
    client.command("EHLO c.example");
    client.command(&format!("MAIL FROM:<{BOB}>"));
    for guess in [
        "aaaaaaaaaaaaaaaaaaaa",
        "bbbbbbbbbbbbbbbbbbbb",
        "cccccccccccccccccccc",
    ] {
        assert!(client
            .command(&format!("RCPT TO:<{guess}@{ALIAS_DOMAIN}>"))
            .starts_with("550 5.1.1"));
    }
    // Now every answer waits, a right guess's as a wrong one's: guessing
    // is slowed, and the client (a provider's shared IP) still delivers.
    for (to, expected) in [
        (conv.alias_a.clone(), "250"),
        (format!("dddddddddddddddddddd@{ALIAS_DOMAIN}"), "550 5.1.1"),
    ] {
        let started = Instant::now();
        let reply = client.command(&format!("RCPT TO:<{to}>"));
        assert!(reply.starts_with(expected), "{reply}");
        assert!(
            started.elapsed() >= Duration::from_secs(5),
            "{to} answered at once"
        );
        client.command("RSET");
        client.command(&format!("MAIL FROM:<{BOB}>"));
    }
    // A new connection from the same client is slowed too.
    let mut again = Client::connect(&daemon);
    again.command("EHLO c.example");
    again.command(&format!("MAIL FROM:<{BOB}>"));
    let started = Instant::now();
    assert!(again
        .command(&format!("RCPT TO:<{}>", conv.alias_a))
        .starts_with("250"));
    assert!(started.elapsed() >= Duration::from_secs(5));
}

#[test]
fn header_block_limit() {
    let (daemon, conv) = setup("max_header_bytes = 2048");
    let mut client = Client::connect(&daemon);
    client.start_transaction(&conv.alias_a);
    client.send(
        format!(
            "Subject: x\r\nX-Filler: {}\r\n\r\nbody\r\n.\r\n",
            "y".repeat(3000)
        )
        .as_bytes(),
    );
    assert!(client.reply().starts_with("552 5.3.4"));
}

#[test]
fn slow_clients_are_cut_off() {
    // Per-read timeouts of 3 s (a loaded machine's stall between two
    // commands stays under them) and a session cap well above them.
    const SESSION_CAP: Duration = Duration::from_secs(8);
    let (daemon, conv) = setup(&format!(
        "command_timeout_secs = 3\ndata_timeout_secs = 3\nsession_timeout_secs = {}",
        SESSION_CAP.as_secs()
    ));
    // Idle at the command prompt.
    let mut idle = Client::connect(&daemon);
    assert!(idle.reply().starts_with("421 4.4.2"));
    // Stalled inside DATA.
    let mut stalled = Client::connect(&daemon);
    stalled.start_transaction(&conv.alias_a);
    stalled.send(b"Subject: slow\r\n");
    assert!(stalled.reply().starts_with("421 4.4.2"));
    // A trickle that beats every per-read timeout (a command every 0.5 s,
    // far under 3 s) for up to 20 s still hits the session cap.
    let started = Instant::now();
    let mut trickle = Client::connect(&daemon);
    let mut last = String::new();
    for _ in 0..40 {
        last = trickle.command("NOOP");
        if !last.starts_with("250") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(last.starts_with("421 4.4.2") || last == "EOF", "{last}");
    // Cut off by the cap, not by a per-read timeout: not before the cap.
    assert!(
        started.elapsed() >= SESSION_CAP,
        "the trickle was cut off after {:?}, before the session cap",
        started.elapsed()
    );
    assert!(captured(&daemon.outbox()).is_empty());
}

/// A client that pipelines commands but never reads a reply: once our
/// replies fill the socket buffers, the write times out like a read would
/// and the connection is dropped, instead of holding its slot for ever.
#[test]
fn a_client_that_never_reads_is_cut_off() {
    let (daemon, _conv) = setup("command_timeout_secs = 1\nsession_timeout_secs = 600");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    // Far beyond the daemon's timeout: a write that blocks this long means
    // the daemon kept the connection open without reading.
    stream
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let noops = "NOOP\r\n".repeat(10_000);
    let mut sent = 0usize;
    let outcome = loop {
        if let Err(err) = stream.write_all(noops.as_bytes()) {
            break err;
        }
        sent += noops.len();
        assert!(
            sent < 512 * 1024 * 1024,
            "512 MiB of commands went in without the connection ending"
        );
    };
    assert!(
        matches!(
            outcome.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "the daemon should have dropped the connection, got {outcome} after {sent} bytes"
    );
}

/// RFC 5321 4.1.1.11: parameters of extensions we do not announce get 555;
/// the ones we announce (SIZE, BODY=7BIT/8BITMIME, SMTPUTF8) are taken.
#[test]
fn parameters_we_did_not_announce_are_refused() {
    let (daemon, conv) = setup("max_errors = 100");
    let mut client = Client::connect(&daemon);
    assert!(client.command("EHLO client.example").starts_with("250"));
    let reply = client.command("DATA");
    assert_eq!(reply, "503 5.5.1 Need MAIL before DATA");
    for refused in [
        "BODY=BINARYMIME",
        "REQUIRETLS",
        "RET=HDRS",
        "ENVID=QQ314159",
        "AUTH=<>",
        "MT-PRIORITY=3",
    ] {
        let reply = client.command(&format!("MAIL FROM:<{BOB}> {refused}"));
        assert!(reply.starts_with("555 5.5.4"), "{refused}: {reply}");
    }
    let reply = client.command(&format!(
        "MAIL FROM:<{BOB}> SIZE=1000 BODY=8BITMIME SMTPUTF8"
    ));
    assert!(reply.starts_with("250"), "{reply}");
    for refused in ["NOTIFY=NEVER", "ORCPT=rfc822;x@example.org"] {
        let reply = client.command(&format!("RCPT TO:<{}> {refused}", conv.alias_a));
        assert!(reply.starts_with("555 5.5.4"), "{refused}: {reply}");
    }
    let reply = client.command(&format!("RCPT TO:<{}>", conv.alias_a));
    assert!(reply.starts_with("250"), "{reply}");
}

#[test]
fn buffered_bytes_across_sessions_are_capped() {
    let mut options = DaemonOptions::outbox();
    options.max_message_bytes = 1024 * 1024;
    // Room for one message at the limit while it is rebuilt and forwarded
    // (5.375 x 1 MiB + 410 KiB, the least config accepts), not for one
    // more message being received beside it.
    options.extra_smtp = "[smtp.limits]\nmax_buffered_bytes = 6291456".into();
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(("alice", "alice@a-mail.example"), ("bob", BOB));
    let chunk = format!("{}\r\n", "z".repeat(998));
    let body = |kib: usize| chunk.repeat(kib);
    let mut first = Client::connect(&daemon);
    first.start_transaction(&conv.alias_a);
    first.send(b"Subject: first\r\n\r\n");
    first.send(body(1000).as_bytes());
    let mut second = Client::connect(&daemon);
    second.start_transaction(&conv.alias_a);
    second.send(b"Subject: second\r\n\r\n");
    second.send(body(1000).as_bytes());
    second.send(b".\r\n");
    assert!(
        second.reply().starts_with("452 4.3.1"),
        "the shared budget is held by the first message"
    );
    first.send(b".\r\n");
    assert!(first.reply().starts_with("250"));
    // Once the first message is gone, the budget is free again.
    let mut third = Client::connect(&daemon);
    third.start_transaction(&conv.alias_a);
    third.send(b"Subject: third\r\n\r\n");
    third.send(body(1000).as_bytes());
    third.send(b".\r\n");
    assert!(third.reply().starts_with("250"));
}

#[test]
fn pipelined_commands_and_early_body_are_answered_in_order() {
    let (daemon, conv) = setup("");
    let mut client = Client::connect(&daemon);
    client.send(
        format!(
            "EHLO c.example\r\nMAIL FROM:<{BOB}>\r\nRCPT TO:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\nSubject: pipelined\r\n\r\n..dot\r\n.\r\nNOOP\r\nQUIT\r\n",
            conv.alias_a, conv.alias_b
        )
        .as_bytes(),
    );
    let replies: Vec<String> = (0..7).map(|_| client.reply()).collect();
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        ["250", "250", "250", "452", "354", "250", "250"],
        "{replies:?}"
    );
    assert!(client.reply().starts_with("221"));
    let delivered = wait_captured(&daemon.outbox(), 1);
    assert!(String::from_utf8_lossy(&delivered[0].1).contains("\r\n\r\n.dot\r\n"));
}

#[test]
fn commands_injected_after_starttls_are_discarded() {
    let base = tempfile::tempdir().unwrap();
    let certs = make_certs(&base.path().join("certs"));
    let mut options = DaemonOptions::outbox();
    options.extra_smtp = starttls_config(&certs);
    let daemon = Daemon::start(options);
    require_python_ssl();
    // One packet: STARTTLS and a NOOP that must never be executed, then a
    // real handshake (Python's ssl) and EHLO inside TLS: the first reply
    // there must be EHLO's, not the injected NOOP's.
    let out = std::process::Command::new(PYTHON)
        .arg(repo().join("tests/peers/starttls_injection.py"))
        .args(["127.0.0.1", &daemon.port.to_string()])
        .arg(certs.join("ca.pem"))
        .output()
        .expect("run starttls_injection.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("250-mx.relay.test"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("EHLO-FIRST"), "{stdout}");
}

fn require_python_ssl() {
    require(PYTHON, "python3");
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", "import ssl"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "Python's ssl module is missing: `apt-get install python3`"
    );
}

#[test]
fn an_idle_connection_is_closed_sooner_than_one_inside_a_transaction() {
    let (daemon, _conv) = setup("idle_timeout_secs = 2\ncommand_timeout_secs = 300");
    let mut idle = Client::connect(&daemon);
    idle.command("EHLO c.example");
    let mut busy = Client::connect(&daemon);
    busy.command("EHLO c.example");
    assert!(busy
        .command(&format!("MAIL FROM:<{BOB}>"))
        .starts_with("250"));
    let started = Instant::now();
    assert!(
        idle.reply().starts_with("421 4.4.2"),
        "the idle one is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    // The one inside a transaction has the full command timeout.
    assert!(busy.command("NOOP").starts_with("250"));
}

#[test]
fn commands_that_send_nothing_have_a_budget_between_messages() {
    let (daemon, conv) = setup("max_errors = 1000");
    let mut client = Client::connect(&daemon);
    client.command("EHLO c.example");
    for _ in 0..20 {
        assert!(client.command("NOOP").starts_with("250"));
    }
    // A message resets the budget, as Postfix's RSET before each reuse needs.
    client.start_transaction(&conv.alias_a);
    client.send(b"Subject: x\r\n\r\nhi\r\n.\r\n");
    assert!(client.reply().starts_with("250"));
    for _ in 0..20 {
        assert!(client.command("RSET").starts_with("250"));
    }
    assert!(client.command("NOOP").starts_with("421 4.7.0"));
    assert_eq!(client.reply(), "EOF");
}

/// Python: `holders` connections from each of `ips` stream `bytes` of DATA
/// to `alias` and hold (no final dot); then one message from the partner,
/// from its own address; prints the partner's reply to its final dot.
const STRANGERS_THEN_PARTNER: &str = r#"
import socket, sys, time
port, alias, partner = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ips, holders, size = sys.argv[4].split(","), int(sys.argv[5]), int(sys.argv[6])
def dialog(src, sender):
    """A session from `src` up to DATA's 354; the socket and a reply reader."""
    s = socket.create_connection(("127.0.0.1", port), source_address=(src, 0), timeout=60)
    f = s.makefile("rb")
    def reply():
        while True:
            line = f.readline()
            if len(line) < 4 or line[3:4] != b"-":
                return line.decode().strip()
    reply()
    for cmd in ["EHLO x.example", "MAIL FROM:<%s>" % sender, "RCPT TO:<%s>" % alias, "DATA"]:
        s.sendall(cmd.encode() + b"\r\n"); reply()
    return s, reply
held = []
for ip in ips:
    for _ in range(holders):
        s, _ = dialog(ip, "stranger@elsewhere.example")
        s.sendall(b"Subject: slow\r\n\r\n" + b"x" * 998 + b"\r\n")
        held.append(s)
chunk = (b"y" * 998 + b"\r\n") * 64
for _ in range(size // len(chunk) + 1):
    for s in held:
        s.sendall(chunk)
time.sleep(0.5)
s, reply = dialog("127.0.0.9", partner)
s.sendall(b"Subject: from the partner\r\n\r\nhello\r\n.\r\n")
print(reply(), flush=True)
"#;

#[test]
fn strangers_cannot_hold_the_buffer_budget_the_partner_needs() {
    // 4 MiB in all; a client's share is a quarter (1 MiB), or what one
    // message at the 64 KiB limit needs if that is more.
    let mut options = DaemonOptions::outbox();
    options.max_message_bytes = 64 * 1024;
    options.extra_smtp = "[smtp.limits]\nmax_buffered_bytes = 4194304\n\
                          max_connections_per_client = 50\nmax_errors = 100"
        .into();
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(("alice", "alice@a-mail.example"), ("bob", BOB));
    // Two addresses, 40 connections each, 62 KiB each: 2.5 MiB per
    // address if nothing stopped them, all of the 4 MiB in all.
    let out = std::process::Command::new("python3")
        .args(["-c", STRANGERS_THEN_PARTNER])
        .arg(daemon.port.to_string())
        .arg(&conv.alias_a)
        .arg(BOB)
        .arg("127.0.0.2,127.0.0.3")
        .arg("40")
        .arg((62 * 1024).to_string())
        .output()
        .expect("run python3");
    let reply = String::from_utf8_lossy(&out.stdout);
    let peak = daemon.peak_rss_kib();
    println!(
        "80 strangers' connections + the partner, 4 MiB budget: partner answered {}; peak RSS {} MiB",
        reply.trim(),
        peak / 1024
    );
    assert!(
        reply.starts_with("250"),
        "the partner's message: {reply}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        peak < 4 * 1024 + OUTSIDE_THE_BUDGET_KIB,
        "peak RSS {peak} KiB over the 4 MiB budget + constant"
    );
}

#[test]
fn a_trickled_message_has_a_deadline_for_the_whole_data_phase() {
    let (daemon, conv) = setup("max_data_secs = 2\ndata_timeout_secs = 180");
    let mut client = Client::connect(&daemon);
    client.start_transaction(&conv.alias_a);
    client.send(b"Subject: slow\r\n\r\n");
    let started = Instant::now();
    // A line every half second: each chunk well within data_timeout_secs.
    let mut reply = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        if client.stream.write_all(b"x\r\n").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        client
            .stream
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let mut chunk = [0u8; 256];
        if let Ok(n) = client.stream.read(&mut chunk) {
            reply = String::from_utf8_lossy(&chunk[..n]).into_owned();
            break;
        }
    }
    assert!(reply.starts_with("421 4.4.2"), "{reply:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
}
