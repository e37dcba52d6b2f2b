//! Retention and erasure: exactly the rows older than the retention go (by
//! `anonrelay prune` and by serve's timer, on a fixed test clock); erased
//! subjects and addresses leave no bytes in the database, WAL or SHM files;
//! logs carry no IP, real address or subject; SIGTERM and SIGHUP behave.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;

const DAY: i64 = 86_400;
const NOW: i64 = 1_800_000_000;

fn insert_rows(daemon: &Daemon, rows: &[(i64, &str)]) {
    let conn = rusqlite::Connection::open(daemon.db_path()).unwrap();
    for (age_days, subject) in rows {
        conn.execute(
            "INSERT INTO message_log (sent_at, sender_id, recipient_id, alias, subject) VALUES (?1, 'bob', 'alice', 'someali', ?2)",
            rusqlite::params![NOW - age_days * DAY, subject],
        )
        .unwrap();
    }
}

fn subjects(daemon: &Daemon) -> Vec<String> {
    daemon
        .log_rows()
        .into_iter()
        .map(|row| row[5].clone())
        .collect()
}

fn files_contain(daemon: &Daemon, needle: &str) -> Vec<String> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut path = daemon.db_path().into_os_string();
            path.push(suffix);
            let bytes = std::fs::read(&path).ok()?;
            contains_ci(&bytes, needle).then(|| path.to_string_lossy().into_owned())
        })
        .collect()
}

fn test_clock(daemon: &mut Daemon) {
    daemon
        .env
        .push(("ANONRELAY_TEST_NOW".into(), NOW.to_string()));
}

#[test]
fn prune_erases_exactly_the_rows_older_than_90_days() {
    let mut daemon = Daemon::configure(DaemonOptions::outbox());
    test_clock(&mut daemon);
    daemon.conversation(
        ("alice", "alice@a-mail.example"),
        ("bob", "bob@b-mail.example"),
    );
    insert_rows(
        &daemon,
        &[
            (89, "subject-89-days"),
            (90, "subject-90-days"),
            (91, "subject-91-days"),
        ],
    );

    let dry = daemon.cli(&["prune", "--dry-run"]);
    assert!(dry.status.success());
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("would erase 1 "),
        "{dry:?}"
    );
    assert_eq!(subjects(&daemon).len(), 3);

    let pruned = daemon.cli(&["prune"]);
    assert!(pruned.status.success());
    assert!(
        String::from_utf8_lossy(&pruned.stdout).contains("erased 1 "),
        "{pruned:?}"
    );
    assert_eq!(subjects(&daemon), ["subject-89-days", "subject-90-days"]);
    assert!(
        files_contain(&daemon, "subject-91-days").is_empty(),
        "erased subject still readable"
    );
    assert!(
        !files_contain(&daemon, "subject-89-days").is_empty(),
        "the check must be able to fail"
    );
}

#[test]
fn serve_prunes_at_start_on_its_timer() {
    let mut daemon = Daemon::configure(DaemonOptions::outbox());
    test_clock(&mut daemon);
    daemon.conversation(
        ("alice", "alice@a-mail.example"),
        ("bob", "bob@b-mail.example"),
    );
    insert_rows(
        &daemon,
        &[
            (89, "serve-89"),
            (90, "serve-90"),
            (91, "serve-91"),
            (400, "serve-400"),
        ],
    );
    daemon.spawn();
    eventually("serve's retention pass", || {
        daemon.log().contains("retention pass done").then_some(())
    });
    assert!(daemon.log().contains("erased=2"), "{}", daemon.log());
    assert_eq!(subjects(&daemon), ["serve-89", "serve-90"]);
    for gone in ["serve-91", "serve-400"] {
        assert!(
            files_contain(&daemon, gone).is_empty(),
            "{gone} still readable"
        );
    }
}

#[test]
fn deleted_users_leave_no_address_in_the_files() {
    let daemon = Daemon::start(DaemonOptions::outbox());
    let conv = daemon.conversation(
        ("alice", "alice-erase-me@a-mail.example"),
        ("bob", "bob@b-mail.example"),
    );
    let (ok, transcript) = swaks(&[
        "--server",
        &daemon.server(),
        "--from",
        "bob@b-mail.example",
        "--to",
        &conv.alias_a,
        "--body",
        "x",
    ]);
    assert!(ok, "{transcript}");
    assert!(!files_contain(&daemon, "alice-erase-me@a-mail.example").is_empty());
    let deleted = daemon.cli(&["user", "delete", "alice"]);
    assert!(deleted.status.success());
    assert!(
        files_contain(&daemon, "alice-erase-me@a-mail.example").is_empty(),
        "erased address still readable"
    );
    assert_eq!(daemon.log_rows().len(), 1, "the log row stays, anonymised");
}

/// A full SMTP session (plain and refused), hook calls and a delivery: the
/// daemon's log output names no IP, no real address and no subject.
#[test]
fn logs_carry_no_ip_address_or_subject() {
    let base = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::outbox();
    let hook = Hook::configure(base.path(), &mut options);
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(
        ("alice", "alice.logtest@a-mail.example"),
        ("bob", "bob.logtest@b-mail.example"),
    );
    // Each send with the reply it must get: forwarded, a stranger writing
    // to the alias, and relaying to a foreign domain.
    for (from, to, expected) in [
        (
            "bob.logtest@b-mail.example",
            conv.alias_a.as_str(),
            "<-  250 2.0.0 Message accepted",
        ),
        (
            "mallory.logtest@evil.example",
            conv.alias_a.as_str(),
            "<** 550 5.7.1",
        ),
        (
            "bob.logtest@b-mail.example",
            "victim.logtest@elsewhere.example",
            "<** 554 5.7.1",
        ),
    ] {
        let (ok, transcript) = swaks(&[
            "--server",
            &daemon.server(),
            "--ehlo",
            "bobs-laptop.b-mail.example",
            "--from",
            from,
            "--to",
            to,
            "--header",
            "Subject: secret-subject-logtest",
            "--body",
            "x",
        ]);
        assert!(
            transcript.contains(expected),
            "{from} to {to}: expected `{expected}`:\n{transcript}"
        );
        assert_eq!(ok, expected.starts_with("<-  250"), "{transcript}");
    }
    let message = serde_json::json!({
        "conversation_id": conv.id, "from_user": "alice", "subject": "hook-subject-logtest", "text": "hi"
    });
    let (status, sent) = hook.authed("POST", "/v1/messages", Some(&message.to_string()));
    assert_eq!(status, 200, "{sent}");
    let log = daemon.log();
    assert!(
        log.contains("message forwarded"),
        "the log must be captured at all:\n{log}"
    );
    for secret in [
        "127.0.0.1",
        "logtest@",
        "a-mail.example",
        "b-mail.example",
        "evil.example",
        "elsewhere.example",
        "bobs-laptop",
        "secret-subject",
        "hook-subject",
    ] {
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
    }
}

#[test]
fn sigterm_answers_idle_sessions_421_and_finishes_a_message_in_flight() {
    let mut daemon = Daemon::start(DaemonOptions::outbox());
    let conv = daemon.conversation(
        ("alice", "alice@a-mail.example"),
        ("bob", "bob@b-mail.example"),
    );
    let connect = || {
        let mut stream = TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        read_reply(&mut stream);
        stream
    };
    let mut idle = connect();
    let mut busy = connect();
    for line in [
        "EHLO c.example",
        "MAIL FROM:<bob@b-mail.example>",
        &format!("RCPT TO:<{}>", conv.alias_a),
        "DATA",
    ] {
        busy.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        read_reply(&mut busy);
    }
    busy.write_all(b"Subject: in flight\r\n\r\nfirst half\r\n")
        .unwrap();
    daemon.signal("TERM");
    assert!(
        read_reply(&mut idle).starts_with("421 4.3.2"),
        "idle session must be told 421"
    );
    busy.write_all(b"second half\r\n.\r\n").unwrap();
    assert!(
        read_reply(&mut busy).starts_with("250"),
        "the message in flight must be finished"
    );
    assert!(read_reply(&mut busy).starts_with("421 4.3.2"));
    let delivered = wait_captured(&daemon.outbox(), 1);
    assert!(contains_ci(&delivered[0].1, "second half"));
    let guard = daemon.guard.as_mut().unwrap();
    let status = eventually("daemon exit", || guard.child.try_wait().ok().flatten());
    assert!(status.success(), "{status}");
    daemon.stop();
}

fn read_reply(stream: &mut TcpStream) -> String {
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(1) => {
                reply.push(byte[0]);
                let text = String::from_utf8_lossy(&reply);
                if let Some(last) = text
                    .strip_suffix("\r\n")
                    .and_then(|t| t.rsplit("\r\n").next())
                {
                    if last.len() >= 4 && last.as_bytes()[3] == b' ' {
                        return last.to_owned();
                    }
                }
            }
            _ => return String::from_utf8_lossy(&reply).into_owned(),
        }
    }
}
