//! The HTTP hook over real HTTP with curl, against the running daemon and a
//! real aiosmtpd upstream (STARTTLS + AUTH).

use crate::common;

use std::process::Command;

use common::*;

const ALICE_EMAIL: &str = "alice.real@a-mail.example";
const BOB_EMAIL: &str = "bob.real@b-mail.example";

fn conversation_body() -> String {
    serde_json::json!({
        "a": {"user_id": "alice", "email": ALICE_EMAIL, "display_name": "Night Owl"},
        "b": {"user_id": "bob", "email": BOB_EMAIL}
    })
    .to_string()
}

#[test]
fn front_end_conversation_end_to_end_then_user_deletion() {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let mut options = upstream.daemon_options(base.path());
    let hook = Hook::configure(base.path(), &mut options);
    let daemon = Daemon::start(options);

    // Create, then the same pair again.
    let (status, created) = hook.authed("POST", "/v1/conversations", Some(&conversation_body()));
    assert_eq!(status, 201, "{created}");
    let (status, again) = hook.authed("POST", "/v1/conversations", Some(&conversation_body()));
    assert_eq!(status, 200);
    assert_eq!(again, created);
    let id = created["conversation_id"].as_str().unwrap().to_owned();
    let alias_a = created["alias_a"].as_str().unwrap().to_owned();
    let alias_b = created["alias_b"].as_str().unwrap().to_owned();

    // Alice writes through the front-end.
    let message = serde_json::json!({
        "conversation_id": id, "from_user": "alice",
        "subject": "Hello from the site", "text": "Hi Bob,\nnice to meet you.", "html": "<p>Hi Bob</p>"
    });
    let (status, sent) = hook.authed("POST", "/v1/messages", Some(&message.to_string()));
    assert_eq!(status, 200, "{sent}");
    let first = wait_captured(&upstream.dir, 1);
    let (envelope, mail) = &first[0];
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([BOB_EMAIL]));
    assert_eq!(envelope["auth_user"], UPSTREAM_USER);
    assert_eq!(
        header(mail, "From").unwrap(),
        format!("\"Night Owl\" <{alias_a}>")
    );
    assert!(!contains_ci(mail, ALICE_EMAIL) && !contains_ci(mail, "a-mail.example"));

    // Bob replies over SMTP to Alice's alias; Alice receives it from Bob's alias.
    let (ok, transcript) = swaks_message(
        &daemon.server(),
        BOB_EMAIL,
        &alias_a,
        "Re: Hello from the site",
        "Hi Alice",
    );
    assert!(ok, "{transcript}");
    let both = wait_captured(&upstream.dir, 2);
    let (envelope, reply) = &both[1];
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([ALICE_EMAIL]));
    assert_eq!(header(reply, "From").unwrap(), format!("<{alias_b}>"));
    assert!(!contains_ci(header_block(reply).as_bytes(), BOB_EMAIL));

    // Export before deletion holds her address, conversation and log rows,
    // with Bob only as the alias she knows: never his user id or address.
    let (status, export) = hook.authed("GET", "/v1/users/alice/export", None);
    assert_eq!(status, 200);
    assert_eq!(export["email"], ALICE_EMAIL);
    let bob_alias = alias_b.split('@').next().unwrap();
    assert_eq!(export["conversations"][0]["partner_alias"], bob_alias);
    let log = export["message_log"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    for (row, direction, subject) in [
        (&log[0], "sent", "Hello from the site"),
        (&log[1], "received", "Re: Hello from the site"),
    ] {
        assert_eq!(row["direction"], direction, "{export}");
        assert_eq!(row["partner_alias"], bob_alias, "{export}");
        assert_eq!(row["subject"], subject, "{export}");
    }
    let text = export.to_string();
    for bobs in [
        "\"bob\"",
        BOB_EMAIL,
        "b-mail.example",
        "partner_id",
        "sender_id",
    ] {
        assert!(!text.contains(bobs), "{bobs} in Alice's export: {text}");
    }

    // Metrics: valid Prometheus text with no personal data.
    let (status, metrics) = hook.call("GET", "/metrics", None, Some(&hook.token));
    assert_eq!(status, 200);
    let samples = parse_prometheus_text(&metrics);
    assert_eq!(
        samples
            .get("anonrelay_messages_forwarded_total")
            .and_then(serde_json::Value::as_f64),
        Some(2.0),
        "{metrics}"
    );
    for personal in [
        ALICE_EMAIL,
        BOB_EMAIL,
        "alice",
        "bob",
        &alias_a,
        &alias_b,
        &id,
        "Hello",
    ] {
        assert!(!metrics.contains(personal), "{personal} in /metrics");
    }

    // Deleting Alice: her aliases stop, her address is gone, log rows stay anonymised.
    let (status, _) = hook.authed("DELETE", "/v1/users/alice", None);
    assert_eq!(status, 204);
    let replies = dialog(
        &daemon.server(),
        &[
            "EHLO c.example",
            &format!("MAIL FROM:<{BOB_EMAIL}>"),
            &format!("RCPT TO:<{alias_a}>"),
            "RSET",
            &format!("MAIL FROM:<{ALICE_EMAIL}>"),
            &format!("RCPT TO:<{alias_b}>"),
        ],
    );
    assert!(replies[3].starts_with("550 5.1.1"), "{replies:?}");
    assert!(replies[6].starts_with("550 5.1.1"), "{replies:?}");
    let rows = daemon.log_rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0][2], "NULL",
        "alice was the sender of the first row: {rows:?}"
    );
    assert_eq!(
        rows[1][3], "NULL",
        "alice was the recipient of the second row: {rows:?}"
    );
    let (status, _) = hook.authed("GET", "/v1/users/alice/export", None);
    assert_eq!(status, 404);
    let (status, _) = hook.authed("DELETE", "/v1/users/alice", None);
    assert_eq!(status, 404);
    // The address is not in the database file, its WAL or SHM.
    for suffix in ["", "-wal", "-shm"] {
        let mut path = daemon.db_path().into_os_string();
        path.push(suffix);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !contains_ci(&bytes, ALICE_EMAIL),
                "address survives in {path:?}"
            );
        }
    }
}

/// Parses the exposition with the Prometheus project's Python client, as a
/// scraper would; returns sample name (with labels) → value.
fn parse_prometheus_text(text: &str) -> serde_json::Map<String, serde_json::Value> {
    use std::io::Write;
    require(PYTHON, "python3");
    let mut child = Command::new(PYTHON)
        .arg(repo().join("tests/peers/parse_metrics.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run parse_metrics.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "python3-prometheus-client is missing: run scripts/test.sh, or `apt-get install python3-prometheus-client`"
    );
    assert!(
        out.status.success(),
        "not valid Prometheus text: {stderr}\n{text}"
    );
    let samples: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let samples = samples.as_object().cloned().unwrap_or_default();
    assert!(samples.len() >= 4, "too few samples:\n{text}");
    samples
}

#[test]
fn every_endpoint_answers_its_errors() {
    let base = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::outbox();
    let hook = Hook::configure(base.path(), &mut options);
    let daemon = Daemon::start(options);
    let _ = &daemon;

    // Authentication.
    let (status, body) = hook.call("GET", "/healthz", None, None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"error\""));
    let (status, _) = hook.call(
        "POST",
        "/v1/conversations",
        Some(&conversation_body()),
        Some("wrong-token-wrong-token"),
    );
    assert_eq!(status, 401);

    let (status, health) = hook.authed("GET", "/healthz", None);
    assert_eq!((status, health["store"].as_str()), (200, Some("ok")));

    // Bad JSON, invalid fields (named), unknown ids, oversized bodies.
    let (status, err) = hook.authed("POST", "/v1/conversations", Some("{not json"));
    assert_eq!((status, err["error"].as_str()), (400, Some("bad_json")));
    let cases = [
        (
            r#"{"a":{"user_id":"a","email":"bad"},"b":{"user_id":"b","email":"b@b.example"}}"#,
            "a.email",
        ),
        (
            r#"{"a":{"user_id":"a b","email":"a@a.example"},"b":{"user_id":"b","email":"b@b.example"}}"#,
            "a.user_id",
        ),
        (
            r#"{"a":{"user_id":"a","email":"a@a.example"},"b":{"user_id":"b","email":"b@b.example\r\nBcc: x@y.example"}}"#,
            "b.email",
        ),
        (
            r#"{"a":{"user_id":"a","email":"a@a.example","display_name":"x\r\nBcc: y"},"b":{"user_id":"b","email":"b@b.example"}}"#,
            "a.display_name",
        ),
        (
            r#"{"a":{"user_id":"a","email":"a@a.example"},"b":{"user_id":"a","email":"b@b.example"}}"#,
            "b.user_id",
        ),
        (r#"{"a":{"user_id":"a","email":"a@a.example"}}"#, "b"),
    ];
    for (body, field) in cases {
        let (status, err) = hook.authed("POST", "/v1/conversations", Some(body));
        assert_eq!(status, 422, "{body}: {err}");
        assert!(
            err["detail"].as_str().unwrap_or_default().contains(field),
            "{body}: {err}"
        );
    }
    let (status, created) = hook.authed("POST", "/v1/conversations", Some(&conversation_body()));
    assert_eq!(status, 201);
    let id = created["conversation_id"].as_str().unwrap();

    let message = |subject: &str, conversation: &str, user: &str| {
        serde_json::json!({"conversation_id": conversation, "from_user": user, "subject": subject, "text": "t"}).to_string()
    };
    let (status, err) = hook.authed(
        "POST",
        "/v1/messages",
        Some(&message("a\r\nBcc: x@y.example", id, "alice")),
    );
    assert_eq!(status, 422, "{err}");
    assert!(err["detail"].as_str().unwrap().starts_with("subject"));
    let (status, err) = hook.authed(
        "POST",
        "/v1/messages",
        Some(&message(&"s".repeat(1000), id, "alice")),
    );
    assert_eq!(status, 422, "{err}");
    let no_body = serde_json::json!({"conversation_id": id, "from_user": "alice", "subject": "s"})
        .to_string();
    let (status, err) = hook.authed("POST", "/v1/messages", Some(&no_body));
    assert_eq!(status, 422, "{err}");
    let (status, _) = hook.authed(
        "POST",
        "/v1/messages",
        Some(&message("s", "no-such-conversation", "alice")),
    );
    assert_eq!(status, 404);
    let (status, _) = hook.authed("POST", "/v1/messages", Some(&message("s", id, "mallory")));
    assert_eq!(status, 404);
    let (status, sent) = hook.authed("POST", "/v1/messages", Some(&message("fine", id, "alice")));
    assert_eq!(status, 200, "{sent}");

    let huge = serde_json::json!({"conversation_id": id, "from_user": "alice", "subject": "s", "text": "x".repeat(70_000)});
    let (status, err) = hook.authed("POST", "/v1/messages", Some(&huge.to_string()));
    assert_eq!(status, 413);
    assert_eq!(err["error"], "body_too_large", "errors are JSON: {err}");
    let (status, err) = hook.authed("GET", "/v1/conversations", None);
    assert_eq!(status, 405);
    assert_eq!(err["error"], "method_not_allowed", "errors are JSON: {err}");
    assert!(err["detail"].is_string(), "{err}");

    let (status, _) = hook.authed("DELETE", "/v1/conversations/no-such-id", None);
    assert_eq!(status, 404);
    let (status, _) = hook.authed("DELETE", &format!("/v1/conversations/{id}"), None);
    assert_eq!(status, 204);
    let (status, _) = hook.authed("DELETE", &format!("/v1/conversations/{id}"), None);
    assert_eq!(status, 404);
    let (status, _) = hook.authed(
        "POST",
        "/v1/messages",
        Some(&message("after revoke", id, "alice")),
    );
    assert_eq!(status, 404);
    let (status, _) = hook.authed("GET", "/v1/users/nobody/export", None);
    assert_eq!(status, 404);
    let (status, _) = hook.authed("DELETE", "/v1/users/nobody", None);
    assert_eq!(status, 404);
    let (status, _) = hook.authed("GET", "/v1/no/such/endpoint", None);
    assert_eq!(status, 404);
    // A user id that cannot be one is a field error, on every user endpoint.
    for (method, path) in [
        ("DELETE", "/v1/users/a%20b"),
        ("GET", "/v1/users/a%20b/export"),
    ] {
        let (status, err) = hook.authed(method, path, None);
        assert_eq!(status, 422, "{method} {path}: {err}");
    }

    // Every endpoint wants the token; every JSON endpoint refuses bad JSON.
    let endpoints = [
        ("POST", "/v1/conversations".to_owned()),
        ("DELETE", format!("/v1/conversations/{id}")),
        ("POST", "/v1/messages".to_owned()),
        ("DELETE", "/v1/users/alice".to_owned()),
        ("GET", "/v1/users/alice/export".to_owned()),
        ("GET", "/healthz".to_owned()),
        ("GET", "/metrics".to_owned()),
    ];
    for (method, path) in &endpoints {
        for token in [None, Some("wrong-token-wrong-token")] {
            let (status, body) = hook.call(method, path, Some("{}"), token);
            assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
        }
    }
    for path in ["/v1/conversations", "/v1/messages"] {
        for bad in ["{not json", "[1, 2]", "\"text\""] {
            let (status, err) = hook.authed("POST", path, Some(bad));
            assert_eq!(
                (status, err["error"].as_str()),
                (400, Some("bad_json")),
                "{path} {bad}"
            );
        }
    }
    // Nothing was deleted by the unauthenticated calls.
    let (status, _) = hook.authed("GET", "/v1/users/alice/export", None);
    assert_eq!(status, 200);
}

#[test]
fn composed_messages_report_upstream_faults_as_503_and_502() {
    let base = tempfile::tempdir().unwrap();
    let mut sink = Sink::start(base.path(), &[]);
    let mut options = DaemonOptions::upstream(&format!("smtp://127.0.0.1:{}", sink.port));
    let hook = Hook::configure(base.path(), &mut options);
    let daemon = Daemon::start(options);
    let (status, created) = hook.authed("POST", "/v1/conversations", Some(&conversation_body()));
    assert_eq!(status, 201, "{created}");
    let message = serde_json::json!({
        "conversation_id": created["conversation_id"], "from_user": "alice",
        "subject": "through a failing upstream", "text": "hello"
    })
    .to_string();

    // smtp-sink answers end of data with 4xx (-r .), then 5xx (-f .).
    for (fault, want, error) in [
        ("-r", 503, "upstream_unavailable"),
        ("-f", 502, "upstream_rejected"),
    ] {
        sink.restart(&[fault, "."]);
        let (status, err) = hook.authed("POST", "/v1/messages", Some(&message));
        assert_eq!(status, want, "{fault}: {err}");
        assert_eq!(err["error"].as_str(), Some(error), "{err}");
        let detail = err["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("smtp-sink") && !detail.contains("127.0.0.1"),
            "{detail}"
        );
    }
    assert!(
        daemon.log_rows().is_empty(),
        "nothing was delivered, so nothing is logged"
    );

    // Upstream gone: /healthz says so with 503; back: 200 and delivered.
    sink.stop();
    let (status, health) = hook.authed("GET", "/healthz", None);
    assert_eq!(
        (status, health["upstream"].as_str()),
        (503, Some("failing")),
        "{health}"
    );
    assert_eq!(health["store"].as_str(), Some("ok"));
    sink.restart(&[]);
    let (status, health) = hook.authed("GET", "/healthz", None);
    assert_eq!(status, 200, "{health}");
    let (status, sent) = hook.authed("POST", "/v1/messages", Some(&message));
    assert_eq!(status, 200, "{sent}");
    assert_eq!(daemon.log_rows().len(), 1);
}

#[test]
fn refuses_to_start_with_a_bad_token_file() {
    use std::os::unix::fs::PermissionsExt;
    let base = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::outbox();
    let _hook = Hook::configure(base.path(), &mut options);
    let token_file = base.path().join("hook-token");
    let daemon = Daemon::configure(options);
    // Each must be refused: a `serve` still running at the deadline fails.
    let serve = || daemon.cli(&["serve"]);
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = serve();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hook.token_file")
            && stderr.contains("mode 644")
            && stderr.contains("chmod 600"),
        "{stderr}"
    );
    std::fs::write(&token_file, "\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = serve();
    assert!(!out.status.success(), "started with an empty token file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty"));
    std::fs::remove_file(&token_file).unwrap();
    let out = serve();
    assert!(!out.status.success(), "started without its token file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("hook.token_file"));
}

/// Descriptors the process holds now (Linux).
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

#[test]
fn idle_hook_clients_cannot_hold_the_daemons_descriptors() {
    let base = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::outbox();
    let hook = Hook::configure(base.path(), &mut options);
    options.extra_sections += "max_connections = 8\n";
    let daemon = Daemon::start(options);
    let pid = daemon.guard.as_ref().unwrap().child.id();
    let before = open_descriptors(pid);
    // 24 connections that never send a byte: three hook's worth.
    let silent: Vec<std::net::TcpStream> = (0..24)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", hook.port())).expect("connect"))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let held = open_descriptors(pid);
    assert!(
        held <= before + 8 + 4,
        "the hook holds {} descriptors more than before ({before} → {held})",
        held - before
    );
    // SMTP is served meanwhile.
    let mut smtp = std::net::TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    smtp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut greeting = [0u8; 3];
    std::io::Read::read_exact(&mut smtp, &mut greeting).unwrap();
    assert_eq!(&greeting, b"220");
    // Silent clients are closed after the header-read timeout (10 s), so a
    // real request queued behind them (three rounds) is answered.
    let started = std::time::Instant::now();
    let (status, health) = hook.authed("GET", "/healthz", None);
    assert_eq!(status, 200, "{health}");
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(45),
        "answered after {waited:?}"
    );
    let mut first = &silent[0];
    first
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut byte = [0u8; 1];
    let closed = std::io::Read::read(&mut first, &mut byte);
    assert!(
        matches!(closed, Ok(0)) || closed.is_err(),
        "a silent client is closed: {closed:?}"
    );
}

#[test]
fn with_few_descriptors_the_hook_cannot_starve_smtp() {
    let base = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::outbox();
    let hook = Hook::configure(base.path(), &mut options);
    let daemon = Daemon::start(options);
    let pid = daemon.guard.as_ref().unwrap().child.id();
    // The red team's machine: 256 descriptors for the whole daemon.
    let out = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=256:256"])
        .output()
        .expect("run prlimit (Debian: util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 180 idle hook connections (the listen queue holds 128 more than the
    // hook serves; connects past that wait for SYN retries): the hook serves 64 at a time, the rest wait in the
    // kernel's queue and hold none of the daemon's descriptors.
    let _idle: Vec<std::net::TcpStream> = (0..180)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", hook.port())).expect("connect"))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        open_descriptors(pid) < 200,
        "{} descriptors",
        open_descriptors(pid)
    );
    for _ in 0..20 {
        let mut smtp = std::net::TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
        smtp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut greeting = [0u8; 3];
        std::io::Read::read_exact(&mut smtp, &mut greeting).expect("a greeting");
        assert_eq!(&greeting, b"220");
    }
}
