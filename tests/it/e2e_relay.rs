//! End to end through real peers: swaks and Python's smtplib send, anonrelay
//! forwards over STARTTLS + AUTH to an aiosmtpd upstream, or to Postfix's
//! smtp-sink for fault injection.

use crate::common;

use common::*;

const ALICE: (&str, &str) = ("alice", "alice.real@a-mail.example");
const BOB: (&str, &str) = ("bob", "bob.real@b-mail.example");
const BODY_MARKER: &str = "BODYMARKER-7f3a9c-never-stored";

fn local(alias: &str) -> &str {
    alias.split('@').next().unwrap_or(alias)
}

#[test]
fn round_trip_both_directions_threaded_over_starttls_and_auth() {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let daemon = Daemon::start(upstream.daemon_options(base.path()));
    let conv = daemon.conversation(ALICE, BOB);

    // Bob writes to Alice's alias from his real mailbox.
    let (ok, transcript) = swaks(&[
        "--server",
        &daemon.server(),
        "--ehlo",
        "bobs-laptop.b-mail.example",
        "--from",
        BOB.1,
        "--to",
        &conv.alias_a,
        "--header",
        "From: Bob Real <bob.real@b-mail.example>",
        "--header",
        "Subject: hello alice",
        "--header",
        "Message-Id: <b-original-1@mail.b-mail.example>",
        "--header",
        "Reply-To: bob.private@b-mail.example",
        "--body",
        &format!("Hi Alice, {BODY_MARKER}"),
    ]);
    assert!(ok, "swaks failed:\n{transcript}");
    assert_eq!(
        reply_codes(&transcript).last().map(String::as_str),
        Some("221")
    );
    let first = wait_captured(&upstream.dir, 1);
    let (envelope, message) = &first[0];
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([ALICE.1]));
    let mail_from = envelope["mail_from"].as_str().unwrap();
    assert!(
        mail_from.starts_with("bounce+") && mail_from.ends_with("@relay.test"),
        "{mail_from}"
    );
    assert_eq!(
        envelope["auth_user"], UPSTREAM_USER,
        "relay must authenticate upstream"
    );
    assert_eq!(envelope["tls"], true, "relay must use STARTTLS upstream");
    assert_eq!(
        header(message, "From").unwrap(),
        format!("<{}>", conv.alias_b)
    );
    assert_eq!(
        header(message, "To").unwrap(),
        format!("<{}>", conv.alias_a)
    );
    let headers = header_block(message);
    // Whole secrets only: a fragment as short as "bob" turns up by chance
    // in the base32 of the alias and Message-ID tokens.
    for secret in [
        "bob.real",
        "Bob Real",
        "bob.private",
        "b-mail.example",
        "bobs-laptop",
        "127.0.0.1",
        "Reply-To",
        "X-Mailer",
        "swaks",
    ] {
        assert!(
            !contains_ci(headers.as_bytes(), secret),
            "{secret} leaked to Alice:\n{headers}"
        );
    }
    assert!(
        contains_ci(message, BODY_MARKER),
        "body must arrive unchanged"
    );
    let token_id = header(message, "Message-ID").unwrap();
    assert!(token_id.ends_with("@relay.test>"), "{token_id}");

    // Alice replies to Bob's alias; her client threads on the token.
    let (ok, transcript) = swaks(&[
        "--server",
        &daemon.server(),
        "--from",
        ALICE.1,
        "--to",
        &conv.alias_b,
        "--header",
        "From: Alice Real <alice.real@a-mail.example>",
        "--header",
        "Subject: Re: hello alice",
        "--header",
        "Message-Id: <a-reply-1@mail.a-mail.example>",
        "--header",
        &format!("In-Reply-To: {token_id}"),
        "--header",
        &format!("References: {token_id}"),
        "--body",
        "Hi Bob",
    ]);
    assert!(ok, "swaks failed:\n{transcript}");
    let both = wait_captured(&upstream.dir, 2);
    let (envelope, reply) = &both[1];
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([BOB.1]));
    assert_eq!(
        header(reply, "From").unwrap(),
        format!("<{}>", conv.alias_a)
    );
    assert_eq!(header(reply, "To").unwrap(), format!("<{}>", conv.alias_b));
    // Bob's client sees its own original id again: the thread holds.
    assert_eq!(
        header(reply, "In-Reply-To").unwrap(),
        "<b-original-1@mail.b-mail.example>"
    );
    assert_eq!(
        header(reply, "References").unwrap(),
        "<b-original-1@mail.b-mail.example>"
    );
    let headers = header_block(reply);
    for secret in ["alice.real", "Alice Real", "a-mail.example"] {
        assert!(
            !contains_ci(headers.as_bytes(), secret),
            "{secret} leaked to Bob:\n{headers}"
        );
    }

    // The metadata log: one row per forwarded message, five fields.
    let rows = daemon.log_rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0][2..],
        ["bob", "alice", local(&conv.alias_a), "hello alice"]
    );
    assert_eq!(
        rows[1][2..],
        ["alice", "bob", local(&conv.alias_b), "Re: hello alice"]
    );

    assert_database_holds_only_metadata(&daemon);
    assert_database_files_hold_none_of(
        &daemon,
        &[
            "b-original-1@mail.b-mail.example",
            "a-reply-1@mail.a-mail.example",
            "127.0.0.1",
            "bobs-laptop.b-mail.example",
            BODY_MARKER,
        ],
    );
    assert_body_in_no_file(&daemon);
}

/// Promises 3 and 6, byte for byte: the database and its WAL and
/// shared-memory files, read while the daemon runs, hold no Message-ID,
/// no IP address, no EHLO name and no body.
fn assert_database_files_hold_none_of(daemon: &Daemon, secrets: &[&str]) {
    let db = daemon.db_path();
    let mut files = vec![db.clone()];
    for suffix in ["-wal", "-shm"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        files.push(name.into());
    }
    let mut read = 0;
    for file in &files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        read += 1;
        for secret in secrets {
            assert!(
                !contains_ci(&bytes, secret),
                "`{secret}` stored in {}",
                file.display()
            );
        }
    }
    assert!(
        read >= 2,
        "the database and its WAL must be read: {files:?}"
    );
}

/// Promise 3: the schema is exactly users, conversations, aliases and the
/// five-field log; nothing like an IP, body, Message-ID or size is stored.
fn assert_database_holds_only_metadata(daemon: &Daemon) {
    let conn = rusqlite::Connection::open(daemon.db_path()).unwrap();
    let columns = |table: &str| -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap();
        stmt.query_map([], |row| row.get::<_, String>(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["aliases", "conversations", "message_log", "users"]);
    assert_eq!(
        columns("message_log"),
        [
            "id",
            "sent_at",
            "sender_id",
            "recipient_id",
            "alias",
            "subject"
        ]
    );
    assert_eq!(columns("users"), ["id", "email"]);
}

/// Promise 2: no byte of a body in any file the daemon wrote (database,
/// WAL, secret, its log).
fn assert_body_in_no_file(daemon: &Daemon) {
    let mut stack = vec![daemon.dir.path().to_owned()];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.starts_with(daemon.outbox()) || !path.starts_with(daemon.dir.path()) {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !contains_ci(&bytes, BODY_MARKER),
                "message body found in {}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "expected the database, its secret and the log to be checked"
    );
}

#[test]
fn upstream_faults_from_smtp_sink_map_to_the_right_replies_and_log_nothing() {
    let base = tempfile::tempdir().unwrap();
    let mut sink = Sink::start(base.path(), &["-r", "."]);
    let daemon = Daemon::start(DaemonOptions::upstream(&format!(
        "smtp://127.0.0.1:{}",
        sink.port
    )));
    let conv = daemon.conversation(ALICE, BOB);
    let send = || {
        swaks_message(
            &daemon.server(),
            BOB.1,
            &conv.alias_a,
            "fault test",
            "retry me",
        )
    };

    // smtp-sink's own reply to a fault at end of data is `450 4.3.0 Error:
    // command failed` (-r) or `500 5.3.0 Error: command failed` (-f); none
    // of it may reach the client, which hears only the relay's own words.
    let upstream_words_hidden = |transcript: &str, upstream_code: &str| {
        for upstream_text in [upstream_code, "Error: command failed"] {
            assert!(
                !transcript.contains(upstream_text),
                "the upstream's `{upstream_text}` reached the client:\n{transcript}"
            );
        }
    };

    // 4xx at end of data: the client is told to retry.
    let (_, transcript) = send();
    assert!(transcript.contains("<** 451 4.3.0"), "{transcript}");
    upstream_words_hidden(&transcript, "450 4.3.0");
    assert!(daemon.log_rows().is_empty());

    // 5xx at end of data: a generic permanent failure.
    sink.restart(&["-f", "."]);
    let (_, transcript) = send();
    assert!(transcript.contains("<** 550 5.0.0"), "{transcript}");
    upstream_words_hidden(&transcript, "500 5.3.0");
    assert!(daemon.log_rows().is_empty());

    // Disconnect without a reply: temporary.
    sink.restart(&["-q", "."]);
    let (_, transcript) = send();
    assert!(transcript.contains("<** 451 4.3.0"), "{transcript}");
    assert!(daemon.log_rows().is_empty());

    // The upstream recovers; the client's retry is delivered exactly once.
    for dump in std::fs::read_dir(&sink.dir).unwrap().flatten() {
        std::fs::remove_file(dump.path()).unwrap();
    }
    sink.restart(&[]);
    let (ok, transcript) = send();
    assert!(ok, "{transcript}");
    assert_eq!(daemon.log_rows().len(), 1);
    let dumps = eventually("one dump from smtp-sink", || {
        let dumps = sink.dumps();
        (!dumps.is_empty()).then_some(dumps)
    });
    assert_eq!(dumps.len(), 1);
    assert!(contains_ci(&dumps[0], "retry me"));
    assert!(
        contains_ci(&dumps[0], ALICE.1),
        "envelope recipient is Alice's real address"
    );
}

/// The reply table itself is data: tests/it/dialogs/01-design-table.dialog,
/// run in process and through smtplib (`dialogs.rs`). Here: swaks, another
/// real client, meets the same replies for whole messages.
#[test]
fn real_clients_meet_the_design_table() {
    let daemon = Daemon::start(DaemonOptions::outbox());
    let conv = daemon.conversation(ALICE, BOB);
    let server = daemon.server();
    let mail_bob = format!("MAIL FROM:<{}>", BOB.1);
    let rcpt_a = format!("RCPT TO:<{}>", conv.alias_a);

    // A stranger writing to the alias: refused after DATA, nothing forwarded.
    let (_, transcript) = swaks(&[
        "--server",
        &server,
        "--from",
        "mallory@evil.example",
        "--to",
        &conv.alias_a,
        "--body",
        "spoof",
    ]);
    assert!(transcript.contains("<** 550 5.7.1"), "{transcript}");

    // A message over the size limit, counted on the bytes received.
    let big = "x".repeat(1000);
    let body: String = std::iter::repeat_n(big.as_str(), 1100)
        .collect::<Vec<_>>()
        .join("\r\n");
    let body_file = daemon.dir.path().join("big-body.txt");
    std::fs::write(&body_file, body).unwrap();
    let body_arg = format!("@{}", body_file.display());
    let (_, transcript) = swaks(&[
        "--server",
        &server,
        "--from",
        BOB.1,
        "--to",
        &conv.alias_a,
        "--body",
        &body_arg,
    ]);
    assert!(transcript.contains("<** 552 5.3.4"), "{transcript}");

    // Revoked: both aliases answer like unknown ones.
    let out = daemon.cli(&["conversation", "revoke", &conv.id]);
    assert!(out.status.success());
    let replies = dialog(&server, &["EHLO c.example", &mail_bob, &rcpt_a]);
    assert!(replies[3].starts_with("550 5.1.1"), "{replies:?}");
    assert!(
        captured(&daemon.outbox()).is_empty(),
        "nothing may have been forwarded"
    );
    assert!(daemon.log_rows().is_empty());
}

#[test]
fn a_pooled_connection_closed_by_the_upstream_is_replaced_transparently() {
    let base = tempfile::tempdir().unwrap();
    // smtp-sink drops a connection idle for more than three seconds (long
    // enough that a loaded machine does not trip it inside a transaction).
    let sink = Sink::start(base.path(), &["-t", "3"]);
    let daemon = Daemon::start(DaemonOptions::upstream(&format!(
        "smtp://127.0.0.1:{}",
        sink.port
    )));
    let conv = daemon.conversation(ALICE, BOB);
    let send = |body: &str| {
        swaks(&[
            "--server",
            &daemon.server(),
            "--from",
            BOB.1,
            "--to",
            &conv.alias_a,
            "--body",
            body,
        ])
    };
    let (ok, transcript) = send("first");
    assert!(ok, "{transcript}");
    // Let the pooled connection go stale (this waits for the sink's timeout;
    // nothing here measures our speed).
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let (ok, transcript) = send("second");
    assert!(
        ok,
        "the stale pooled connection must be replaced:\n{transcript}"
    );
    assert_eq!(daemon.log_rows().len(), 2);
    let dumps = eventually("two dumps", || {
        let dumps = sink.dumps();
        (dumps.len() == 2).then_some(dumps)
    });
    assert!(dumps.iter().any(|d| contains_ci(d, "second")));
}

#[test]
fn auto_replies_are_forwarded_by_default_or_dropped_when_configured() {
    let vacation = repo().join("fixtures/auto-reply-vacation.eml");
    let sender = "bob.real@sender-mail.example";
    for (setting, forwarded) in [("", true), ("auto_replies = \"drop\"", false)] {
        let mut options = DaemonOptions::outbox();
        options.extra_smtp = setting.to_owned();
        let daemon = Daemon::start(options);
        let conv = daemon.conversation(ALICE, ("bob", sender));
        let replies = dialog(
            &daemon.server(),
            &[
                "EHLO bobs-laptop.example",
                &format!("MAIL FROM:<{sender}>"),
                &format!("RCPT TO:<{}>", conv.alias_a),
                "DATA",
                &format!("BODY:@{}", vacation.display()),
                "QUIT",
            ],
        );
        assert!(replies[5].starts_with("250"), "{setting}: {replies:?}");
        let out = captured(&daemon.outbox());
        assert_eq!(out.len(), usize::from(forwarded), "{setting}");
        if let Some((envelope, message)) = out.first() {
            assert_eq!(envelope["rcpt_to"], ALICE.1);
            assert_eq!(
                header(message, "Auto-Submitted").as_deref(),
                Some("auto-replied")
            );
            assert!(header(message, "Disposition-Notification-To").is_none());
            assert!(!contains_ci(message, sender));
        }
        assert_eq!(daemon.log_rows().len(), usize::from(forwarded));
    }
}
