//! The upstream side against real servers: pooled connections are reused,
//! implicit TLS (smtps://) with the password from the environment, an
//! upstream that stops answering gives 451 after the configured timeout,
//! one deadline covers a whole attempt, and a slow answer to the final dot
//! is waited for instead of answered 451 (which made senders retry a
//! message the upstream delivered anyway).

use crate::common;

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

const ALICE: (&str, &str) = ("alice", "alice@a-mail.example");
const BOB: (&str, &str) = ("bob", "bob@b-mail.example");

fn send(daemon: &Daemon, alias: &str, subject: &str) -> (bool, String) {
    swaks_message(&daemon.server(), BOB.1, alias, subject, "hello")
}

#[test]
fn messages_share_one_pooled_upstream_connection() {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let daemon = Daemon::start(upstream.daemon_options(base.path()));
    let conv = daemon.conversation(ALICE, BOB);
    for n in 0..3 {
        let (ok, transcript) = send(&daemon, &conv.alias_a, &format!("pooled {n}"));
        assert!(ok, "{transcript}");
    }
    let delivered = wait_captured(&upstream.dir, 3);
    let connections: Vec<&serde_json::Value> = delivered
        .iter()
        .map(|(envelope, _)| &envelope["connection"])
        .collect();
    assert!(connections[0].is_u64(), "{connections:?}");
    assert!(
        connections.iter().all(|c| *c == connections[0]),
        "three messages, one TLS+AUTH connection: {connections:?}"
    );
    assert!(delivered.iter().all(|(e, _)| e["tls"] == true));
}

#[test]
fn implicit_tls_with_the_password_from_the_environment() {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &["--implicit-tls"]);
    let mut options = DaemonOptions::upstream(&format!(
        "smtps://{UPSTREAM_USER}@localhost:{}",
        upstream.port
    ));
    options.extra_upstream = format!(
        "password_env = \"RELAY_TEST_UPSTREAM_PASSWORD\"\nca_file = \"{}\"",
        upstream.certs.join("ca.pem").display()
    );
    let mut daemon = Daemon::configure(options);
    daemon.env.push((
        "RELAY_TEST_UPSTREAM_PASSWORD".into(),
        UPSTREAM_PASSWORD.into(),
    ));
    daemon.spawn();
    let conv = daemon.conversation(ALICE, BOB);
    let (ok, transcript) = send(&daemon, &conv.alias_a, "over smtps");
    assert!(ok, "{transcript}");
    let delivered = wait_captured(&upstream.dir, 1);
    let (envelope, message) = &delivered[0];
    assert_eq!(envelope["tls"], true);
    assert_eq!(envelope["auth_user"], UPSTREAM_USER);
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([ALICE.1]));
    assert!(contains_ci(message, "over smtps"));
}

#[test]
fn an_upstream_that_stops_answering_gives_451_and_logs_nothing() {
    let base = tempfile::tempdir().unwrap();
    let (mut sink, daemon) = with_slow_sink(base.path(), &[], 2);
    let conv = daemon.conversation(ALICE, BOB);
    // Replace the sink with a server that accepts and never says a word.
    sink.stop();
    let silent = TcpListener::bind(("127.0.0.1", sink.port)).expect("rebind the sink's port");
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        silent.set_nonblocking(false).expect("blocking listener");
        while let Ok((mut stream, _)) = silent.accept() {
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut sink = [0u8; 512];
            let _ = stream.read(&mut sink);
            held.push(stream);
            if held.len() >= 4 {
                break;
            }
        }
    });
    let (_, transcript) = send(&daemon, &conv.alias_a, "into the void");
    assert!(transcript.contains("<** 451 4.3.0"), "{transcript}");
    assert!(daemon.log_rows().is_empty());
    drop(holder);
}

/// A daemon whose upstream is smtp-sink with `faults`, `timeout_secs` set
/// (the test config's 10 replaced).
fn with_slow_sink(base: &std::path::Path, faults: &[&str], timeout_secs: u32) -> (Sink, Daemon) {
    let sink = Sink::start(base, faults);
    let mut daemon = Daemon::configure(DaemonOptions::upstream(&format!(
        "smtp://127.0.0.1:{}",
        sink.port
    )));
    let config = std::fs::read_to_string(&daemon.config).unwrap();
    assert!(config.contains("timeout_secs = 10"));
    std::fs::write(
        &daemon.config,
        config.replace(
            "timeout_secs = 10",
            &format!("timeout_secs = {timeout_secs}"),
        ),
    )
    .unwrap();
    daemon.spawn();
    (sink, daemon)
}

#[test]
fn a_slow_answer_to_the_final_dot_is_waited_for_and_delivered_once() {
    let base = tempfile::tempdir().unwrap();
    // The dot answered after 6 s, with timeout_secs = 3.
    let (sink, daemon) = with_slow_sink(base.path(), &["-W", ".:6"], 3);
    let conv = daemon.conversation(ALICE, BOB);
    let started = Instant::now();
    let (ok, transcript) = send(&daemon, &conv.alias_a, "slow upstream");
    assert!(ok, "the sender is told 250, not 451:\n{transcript}");
    assert!(started.elapsed() >= Duration::from_secs(6));
    let dumps = eventually("one dump", || {
        let dumps = sink.dumps();
        (!dumps.is_empty()).then_some(dumps)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!((dumps.len(), sink.dumps().len()), (1, 1));
    assert_eq!(daemon.log_rows().len(), 1);
}

#[test]
fn one_deadline_covers_every_step_before_the_dot() {
    let base = tempfile::tempdir().unwrap();
    // Greeting, EHLO and MAIL each answered just within timeout_secs (4 s):
    // timed one by one they add up to 9 s and more; the attempt's one
    // deadline ends it at 4 s.
    let (mut sink, daemon) = with_slow_sink(base.path(), &[], 4);
    let conv = daemon.conversation(ALICE, BOB);
    // Slow from now on; the connection the daemon pooled at startup is
    // gone with the old sink, so the attempt opens a new one.
    sink.restart(&["-W", "connect:3", "-W", "ehlo:3", "-W", "mail:3"]);
    let started = Instant::now();
    let (_, transcript) = send(&daemon, &conv.alias_a, "slow steps");
    let took = started.elapsed();
    assert!(transcript.contains("<** 451 4.3.0"), "{transcript}");
    assert!(took < Duration::from_secs(8), "451 after {took:?}");
    assert!(daemon.log_rows().is_empty(), "the reserved row was removed");
    assert!(sink.dumps().is_empty());
}
