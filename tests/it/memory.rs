//! Memory under load: bursts of concurrent messages (at the size limit, 5 MB
//! against the default budget, embedded header floods) are each answered
//! 250 or 452 4.3.1 and the daemon's peak RSS stays within the buffer budget
//! plus a stated constant; idle connections and hostile bounces stay small.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;

/// How long a burst's client waits for a reply: a bound on a hang, not a
/// speed test. The last of fifty 5 MB messages rewritten by a debug build
/// on a loaded 2-core machine waited over 120 s for its 250 (a fresh-clone
/// run beside a compile, 2026-11-30).
const REPLY_WAIT: Duration = Duration::from_secs(600);

fn last_reply<R: std::io::Read>(reader: &mut BufReader<R>) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return "EOF".into(),
            Ok(_) => {}
            Err(err) => return format!("read failed: {err}"),
        }
        if line.len() < 4 || line.as_bytes()[3] == b' ' {
            return line.trim_end().to_owned();
        }
    }
}

/// A connection to the daemon from `source` (any 127.0.0.0/8 address is
/// this machine), so that each test client is a client of its own.
fn connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)).into(),
        Duration::from_secs(60),
    )?;
    Ok(socket.into())
}

/// The address of the `index`th distinct client: 127.0.1.1, 127.0.1.2, …
fn client_address(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1 + (index / 250) as u8, 1 + (index % 250) as u8)
}

/// Connects and walks a session up to the `354` of DATA; errors are text
/// (the reply or the I/O error) for the test's report.
fn open_session_at_data(
    port: u16,
    alias: &str,
    source: Ipv4Addr,
) -> Result<(TcpStream, BufReader<TcpStream>), String> {
    let stream = connect_from(source, port).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(REPLY_WAIT))
        .and_then(|()| stream.set_write_timeout(Some(REPLY_WAIT)))
        .map_err(|e| format!("socket options: {e}"))?;
    let mut writer = stream.try_clone().map_err(|e| format!("clone: {e}"))?;
    let mut reader = BufReader::new(stream);
    let greeting = last_reply(&mut reader);
    if !greeting.starts_with("220") {
        return Err(format!("greeting: {greeting}"));
    }
    writer
        .write_all(
            format!(
                "EHLO c.example\r\nMAIL FROM:<bob@b-mail.example>\r\nRCPT TO:<{alias}>\r\nDATA\r\n"
            )
            .as_bytes(),
        )
        .map_err(|e| format!("commands: {e}"))?;
    let mut last = String::new();
    for _ in 0..4 {
        last = last_reply(&mut reader);
    }
    if !last.starts_with("354") {
        return Err(format!("DATA answered {last}"));
    }
    Ok((writer, reader))
}

/// What a burst of concurrent messages got and cost.
struct Burst {
    accepted: usize,
    deferred: usize,
    /// Replies other than 250 and 452 4.3.1 (refusals and failures).
    others: Vec<String>,
    baseline_kib: u64,
    peak_kib: u64,
}

/// `clients` connections walk to DATA, wait for each other, then all send
/// `message` at once; every reply after the dot is collected.
/// Where a burst's connections come from.
#[derive(Clone, Copy)]
enum From {
    /// All from 127.0.0.1: together they have one client's share of the
    /// budget.
    OneAddress,
    /// Each from an address of its own: the whole budget is theirs.
    AddressEach,
}

fn burst(daemon: &Daemon, alias: &str, from: From, clients: usize, message: Vec<u8>) -> Burst {
    let baseline_kib = daemon.peak_rss_kib();
    let message = Arc::new(message);
    let barrier = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|index| {
            let source = match from {
                From::OneAddress => Ipv4Addr::LOCALHOST,
                From::AddressEach => client_address(index),
            };
            let (message, barrier, alias, port) = (
                Arc::clone(&message),
                Arc::clone(&barrier),
                alias.to_owned(),
                daemon.port,
            );
            std::thread::spawn(move || {
                // Every thread reaches the barrier exactly once, even when its
                // setup failed: a thread that bailed out early would leave the
                // others waiting forever.
                let session = open_session_at_data(port, &alias, source);
                barrier.wait();
                let (mut writer, mut reader) = match session {
                    Ok(session) => session,
                    Err(why) => return why,
                };
                if let Err(err) = writer
                    .write_all(&message)
                    .and_then(|()| writer.write_all(b".\r\n"))
                {
                    return format!("sending the body failed: {err}");
                }
                let reply = last_reply(&mut reader);
                let _ = writer.write_all(b"QUIT\r\n");
                reply
            })
        })
        .collect();
    let replies: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    Burst {
        accepted: replies.iter().filter(|r| r.starts_with("250")).count(),
        deferred: replies
            .iter()
            .filter(|r| r.starts_with("452 4.3.1"))
            .count(),
        others: replies
            .into_iter()
            .filter(|r| !r.starts_with("250") && !r.starts_with("452 4.3.1"))
            .collect(),
        baseline_kib,
        peak_kib: daemon.peak_rss_kib(),
    }
}

/// A daemon whose limits let `clients` connections from loopback send at
/// once, with `max_message` and `budget` as configured.
fn daemon_for_burst(clients: usize, max_message: usize, budget: usize) -> (Daemon, String) {
    let mut options = DaemonOptions::outbox();
    options.max_message_bytes = max_message;
    options.extra_smtp = format!(
        "[smtp.limits]\nmax_connections = {c}\nmax_connections_per_client = {c}\n\
         max_buffered_bytes = {budget}\n\
         max_messages_per_client_per_minute = 10000\nmax_messages_per_alias_per_hour = 10000",
        c = clients + 100
    );
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(
        ("alice", "alice@a-mail.example"),
        ("bob", "bob@b-mail.example"),
    );
    (daemon, conv.alias_a)
}

/// A plain message of exactly `size` bytes (with its lines of 1000 bytes).
fn message_of(size: usize, subject: &str) -> Vec<u8> {
    let mut message = format!("Subject: {subject}\r\n\r\n").into_bytes();
    let line = format!("{}\r\n", "m".repeat(998));
    while message.len() + line.len() <= size {
        message.extend_from_slice(line.as_bytes());
    }
    message
}

/// No client got anything but 250 or 452 4.3.1.
fn assert_every_client_answered(burst: &Burst) {
    assert!(
        burst.others.is_empty(),
        "every client gets 250 or 452; the others got {:?}",
        burst.others
    );
}

fn assert_within_budget(what: &str, burst: &Burst, clients: usize, budget: usize) {
    println!(
        "{what}: {} accepted, {} told 452 4.3.1, {} other replies; \
         peak RSS {} MiB (baseline {} MiB, budget {} MiB, budget + constant {} MiB)",
        burst.accepted,
        burst.deferred,
        burst.others.len(),
        burst.peak_kib / 1024,
        burst.baseline_kib / 1024,
        budget / 1024 / 1024,
        (budget as u64 / 1024 + OUTSIDE_THE_BUDGET_KIB) / 1024,
    );
    assert_eq!(
        burst.accepted + burst.deferred + burst.others.len(),
        clients
    );
    assert!(burst.accepted >= 1, "nothing accepted: {:?}", burst.others);
    let ceiling_kib = budget as u64 / 1024 + OUTSIDE_THE_BUDGET_KIB;
    assert!(
        burst.peak_kib < ceiling_kib,
        "peak RSS {} KiB over the budget + constant, {ceiling_kib} KiB",
        burst.peak_kib
    );
}

#[test]
fn five_hundred_clients_at_the_size_limit_stay_within_the_budget() {
    const CLIENTS: usize = 500;
    const MAX_MESSAGE: usize = 1024 * 1024;
    const BUDGET: usize = 64 * 1024 * 1024;
    let (daemon, alias) = daemon_for_burst(CLIENTS, MAX_MESSAGE, BUDGET);
    let burst = burst(
        &daemon,
        &alias,
        From::OneAddress,
        CLIENTS,
        message_of(MAX_MESSAGE, "at the limit"),
    );
    assert_every_client_answered(&burst);
    assert_within_budget("500 clients x 1 MiB", &burst, CLIENTS, BUDGET);
}

/// Issue 12, item 8: 300 messages of 5 MB at once against the default
/// budget of 512 MiB (888 MiB RSS before the rewrite's copies were budgeted).
#[test]
fn three_hundred_five_megabyte_messages_stay_within_the_default_budget() {
    const CLIENTS: usize = 300;
    const MAX_MESSAGE: usize = 5 * 1024 * 1024;
    const BUDGET: usize = 512 * 1024 * 1024;
    let (daemon, alias) = daemon_for_burst(CLIENTS, MAX_MESSAGE, BUDGET);
    let burst = burst(
        &daemon,
        &alias,
        From::AddressEach,
        CLIENTS,
        message_of(MAX_MESSAGE, "five megabytes"),
    );
    assert_every_client_answered(&burst);
    assert_within_budget("300 clients x 5 MiB", &burst, CLIENTS, BUDGET);
}

/// Issue 12, item 8: a message/rfc822 part whose header block is 1.4
/// million `To:` lines. The inner header block is parsed within the same
/// bounds as the outer one: nine at once stay within the budget (they
/// reached 3.3 GB RSS when the inner block was read whole).
#[test]
fn nine_embedded_header_floods_at_once_stay_within_the_budget() {
    const CLIENTS: usize = 9;
    const MAX_MESSAGE: usize = 26 * 1024 * 1024;
    const BUDGET: usize = 512 * 1024 * 1024;
    let mut message = b"From: <bob@b-mail.example>\r\nSubject: embedded\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: <c@c.example>\r\n"
        .to_vec();
    let mut lines = 0;
    while message.len() < 25 * 1024 * 1024 + 512 * 1024 {
        message.extend_from_slice(format!("To: s{lines}@x.ex\r\n").as_bytes());
        lines += 1;
    }
    message.extend_from_slice(b"Subject: inner\r\n\r\ninner body\r\n--b--\r\n");
    assert!(lines > 1_300_000, "{lines} lines");
    let (daemon, alias) = daemon_for_burst(CLIENTS, MAX_MESSAGE, BUDGET);
    let burst = burst(&daemon, &alias, From::AddressEach, CLIENTS, message);
    assert_within_budget(
        &format!("9 clients x 25.5 MB, {lines} embedded To: lines"),
        &burst,
        CLIENTS,
        BUDGET,
    );
    // Accepted or deferred; a refusal would be one of the documented ones.
    for other in &burst.others {
        assert!(other.starts_with("554 5.6.0"), "{other}");
    }
}

#[test]
fn five_thousand_idle_connections_fit_in_64_mib() {
    const IDLE: usize = 5000;
    let mut options = DaemonOptions::outbox();
    options.extra_smtp = format!(
        "[smtp.limits]\nmax_connections = {}\nmax_connections_per_client = {}\n\
         idle_timeout_secs = 600",
        IDLE + 10,
        IDLE + 10
    );
    let daemon = Daemon::start(options);
    let mut connections = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let stream = TcpStream::connect(("127.0.0.1", daemon.port)).expect("connect");
        connections.push(stream);
    }
    // Every session is live: each has sent its greeting.
    for stream in &connections {
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        assert!(last_reply(&mut reader).starts_with("220"));
    }
    let rss = daemon.rss_kib();
    println!(
        "{IDLE} idle SMTP connections: daemon RSS {} MiB",
        rss / 1024
    );
    assert!(
        rss < 64 * 1024,
        "RSS {rss} KiB with {IDLE} idle connections"
    );
}

/// A "bounce" at the size limit made of millions of empty MIME parts, sent
/// to a valid VERP address: the DSN reader looks at its first 256 KiB only,
/// so the daemon's peak memory grows by a few copies of the message, not by
/// the parser's many times its size (half a gigabyte before the limit).
#[test]
fn a_hostile_bounce_report_is_read_within_bounded_memory() {
    const SIZE: usize = 20 * 1024 * 1024;
    let mut options = DaemonOptions::outbox();
    options.max_message_bytes = SIZE + 1024 * 1024;
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(
        ("alice", "alice@a-mail.example"),
        ("bob", "bob@b-mail.example"),
    );
    swaks_send(&daemon, "bob@b-mail.example", &conv.alias_a);
    let forwarded = wait_captured(&daemon.outbox(), 1);
    let verp = forwarded[0].0["mail_from"]
        .as_str()
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    assert!(verp.starts_with("bounce+"), "{verp}");
    let baseline = daemon.peak_rss_kib();

    let mut report = b"From: MAILER-DAEMON@mx.example\r\nContent-Type: multipart/report; \
report-type=delivery-status; boundary=b\r\n\r\n"
        .to_vec();
    while report.len() < SIZE {
        report.extend_from_slice(b"--b\r\n\r\n");
    }
    report.extend_from_slice(b"--b--\r\n.\r\n");
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], daemon.port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(30)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    assert!(last_reply(&mut reader).starts_with("220"));
    writer
        .write_all(
            format!("EHLO mx.example\r\nMAIL FROM:<>\r\nRCPT TO:<{verp}>\r\nDATA\r\n").as_bytes(),
        )
        .unwrap();
    let replies: Vec<String> = (0..4).map(|_| last_reply(&mut reader)).collect();
    assert!(replies[3].starts_with("354"), "{replies:?}");
    writer.write_all(&report).unwrap();
    let reply = last_reply(&mut reader);
    assert!(reply.starts_with("250"), "no report, dropped: {reply}");
    let peak = daemon.peak_rss_kib();
    println!(
        "hostile {} MiB bounce: peak RSS {} MiB (baseline {} MiB)",
        SIZE / 1024 / 1024,
        peak / 1024,
        baseline / 1024
    );
    // The message is held once and the DSN reader's share is small.
    assert!(
        peak < baseline + 4 * (SIZE as u64 / 1024),
        "peak RSS {peak} KiB from a baseline of {baseline} KiB"
    );
}
