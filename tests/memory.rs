//! 500 clients each send a message at the size limit at the same time: the
//! daemon answers every one (250 or 452 4.3.1) and its peak RSS stays
//! bounded by the buffer budget, not by 500 × the size limit.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;

const CLIENTS: usize = 500;
const MAX_MESSAGE: usize = 1024 * 1024;
const BUDGET: usize = 64 * 1024 * 1024;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM")
}

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

/// Connects and walks a session up to the `354` of DATA; errors are text
/// (the reply or the I/O error) for the test's report.
fn open_session_at_data(
    port: u16,
    alias: &str,
) -> Result<(TcpStream, BufReader<TcpStream>), String> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(60))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(120))))
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

#[test]
fn five_hundred_clients_at_the_size_limit_stay_within_the_budget() {
    let mut options = DaemonOptions::outbox();
    options.max_message_bytes = MAX_MESSAGE;
    options.extra_smtp = format!(
        "[smtp.limits]\nmax_connections = 600\nmax_connections_per_client = 600\nmax_buffered_bytes = {BUDGET}\n\
         max_messages_per_client_per_minute = 1000\nmax_messages_per_alias_per_hour = 1000"
    );
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(
        ("alice", "alice@a-mail.example"),
        ("bob", "bob@b-mail.example"),
    );
    let pid = daemon.guard.as_ref().unwrap().child.id();
    let baseline = peak_rss_kib(pid);

    // A message exactly at the limit: header + lines of 1000 bytes.
    let mut message = b"Subject: at the limit\r\n\r\n".to_vec();
    let line = format!("{}\r\n", "m".repeat(998));
    while message.len() + line.len() <= MAX_MESSAGE {
        message.extend_from_slice(line.as_bytes());
    }
    let message = Arc::new(message);
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (message, barrier, alias, port) = (
                Arc::clone(&message),
                Arc::clone(&barrier),
                conv.alias_a.clone(),
                daemon.port,
            );
            std::thread::spawn(move || {
                // Every thread reaches the barrier exactly once, even when its
                // setup failed: a thread that bailed out early would leave the
                // others waiting forever.
                let session = open_session_at_data(port, &alias);
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
                if !reply.starts_with('2') && !reply.starts_with('4') {
                    return format!("after the body: {reply}");
                }
                let _ = writer.write_all(b"QUIT\r\n");
                reply
            })
        })
        .collect();
    let replies: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    let accepted = replies.iter().filter(|r| r.starts_with("250")).count();
    let deferred = replies
        .iter()
        .filter(|r| r.starts_with("452 4.3.1"))
        .count();
    let peak = peak_rss_kib(pid);
    println!(
        "{CLIENTS} clients x {MAX_MESSAGE} bytes: {accepted} accepted, {deferred} told 452 4.3.1; \
         peak RSS {} MiB (baseline {} MiB, budget {} MiB)",
        peak / 1024,
        baseline / 1024,
        BUDGET / 1024 / 1024
    );
    assert_eq!(
        accepted + deferred,
        CLIENTS,
        "every client gets 250 or 452; the others got {:?}",
        replies
            .iter()
            .filter(|r| !r.starts_with("250") && !r.starts_with("452 4.3.1"))
            .collect::<Vec<_>>()
    );
    assert!(accepted >= 1);
    // Budget + per-session buffers + runtime: far below 500 x 1 MiB.
    let ceiling_kib = (BUDGET / 1024) as u64 + 128 * 1024;
    assert!(
        peak < ceiling_kib,
        "peak RSS {peak} KiB over {ceiling_kib} KiB"
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
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
    let pid = daemon.guard.as_ref().unwrap().child.id();
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
    let rss = rss_kib(pid);
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
    let pid = daemon.guard.as_ref().unwrap().child.id();
    let baseline = peak_rss_kib(pid);

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
    let peak = peak_rss_kib(pid);
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
