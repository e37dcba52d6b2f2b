//! The upstream side against real servers: pooled connections are reused,
//! implicit TLS (smtps://) with the password from the environment, and an
//! upstream that stops answering gives 451 after the configured timeout.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

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
    let mut sink = Sink::start(base.path(), &[]);
    let mut daemon = Daemon::configure(DaemonOptions::upstream(&format!(
        "smtp://127.0.0.1:{}",
        sink.port
    )));
    let config = std::fs::read_to_string(&daemon.config).unwrap();
    assert!(config.contains("timeout_secs = 10"));
    std::fs::write(
        &daemon.config,
        config.replace("timeout_secs = 10", "timeout_secs = 2"),
    )
    .unwrap();
    daemon.spawn();
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
