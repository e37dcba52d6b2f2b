//! Startup and configuration: bad input is refused with an error naming the
//! key or path, and the daemon never runs half-configured. Also inbound
//! STARTTLS and pipelining with swaks.

use crate::common;

use std::process::Command;

use common::*;

/// `serve` that must refuse to start: a run past the deadline fails the test.
fn serve(daemon: &Daemon) -> (bool, String) {
    let out = daemon.cli(&["serve"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_config(daemon: &Daemon) -> (bool, String) {
    let out = daemon.cli(&["check-config"]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn bad_configs_are_refused_naming_the_key_or_path() {
    let ok = Daemon::configure(DaemonOptions::outbox());
    let (success, out) = check_config(&ok);
    assert!(success, "{out}");
    assert!(out.contains("configuration OK"));
    // A check writes nothing: the outbox is made by `serve`.
    assert!(
        !ok.outbox().exists(),
        "check-config created {}",
        ok.outbox().display()
    );

    let daemon = Daemon::configure(DaemonOptions::outbox());
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (text.replace("[smtp]", "[smtp"), "relay.toml"),
        (text.replace("alias_domain = \"relay.test\"", "alias_domain = \"not a domain\""), "alias_domain"),
        (text.replace("[upstream]", "[upstream]\nsurprise = 1"), "surprise"),
        (text.replace("[smtp]", "[smtp]\npostmaster = \"ops at example\""), "smtp.postmaster"),
        (text.replace("url = \"outbox:outbox\"", "url = \"smtp://smtp.example.net:25\""), "upstream.url"),
        (text.replace("url = \"outbox:outbox\"", "url = \"ftp://x\""), "upstream.url"),
        (
            text.replace("max_message_bytes = 1048576", "max_message_bytes = 1048576\ntls_cert = \"missing.pem\"\ntls_key = \"missing-key.pem\""),
            "missing.pem",
        ),
        (
            text.replace("max_message_bytes = 1048576", "max_message_bytes = 1048576\ntls_cert = \"only-cert.pem\""),
            "smtp.tls_key",
        ),
        (
            text.replace("url = \"outbox:outbox\"", "url = \"smtp+starttls://user@localhost:1\""),
            "upstream.password_file",
        ),
        (format!("{text}\n[hook]\nlisten = \"0.0.0.0:8025\"\ntoken_file = \"t\"\n"), "hook.listen"),
        (format!("{text}\n[smtp.limits]\nsession_timeout_secs = 0\n"), "smtp.limits.session_timeout_secs"),
        (format!("{text}\n[smtp.limits]\ndata_timeout_secs = 0\n"), "smtp.limits.data_timeout_secs"),
        // Twice the message limit would overflow: refused, not a panic.
        (
            text.replace("max_message_bytes = 1048576", "max_message_bytes = 9223372036854775807"),
            "smtp.limits.max_buffered_bytes",
        ),
    ];
    for (config, expected) in cases {
        std::fs::write(&daemon.config, &config).unwrap();
        let (success, err) = serve(&daemon);
        assert!(!success, "started with a bad config:\n{config}");
        assert!(
            err.contains(expected),
            "error for `{expected}` does not name it: {err}"
        );
        let (success, err) = check_config(&daemon);
        assert!(!success && err.contains(expected), "check-config: {err}");
    }
    let missing = daemon.dir.path().join("nope.toml");
    let mut command = Command::new(env!("CARGO_BIN_EXE_anonrelay"));
    command.args(["serve", "--config"]).arg(&missing);
    let out = output_within_deadline(command, "anonrelay serve with a missing config");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}

#[test]
fn unreachable_upstream_at_start_is_refused() {
    let port = free_port();
    let daemon = Daemon::configure(DaemonOptions::upstream(&format!("smtp://127.0.0.1:{port}")));
    let (success, err) = serve(&daemon);
    assert!(!success);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("not usable at start"),
        "{err}"
    );
}

#[test]
fn inbound_starttls_and_pipelining_with_swaks() {
    let base = tempfile::tempdir().unwrap();
    let certs = make_certs(&base.path().join("inbound-certs"));
    let mut options = DaemonOptions::outbox();
    options.extra_smtp = starttls_config(&certs);
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(
        ("alice", "alice@a-mail.example"),
        ("bob", "bob@b-mail.example"),
    );
    let (ok, transcript) = swaks(&[
        "--server",
        &daemon.server(),
        "--tls",
        "--tls-verify",
        "--tls-ca-path",
        &certs.join("ca.pem").display().to_string(),
        "--tls-sni",
        "localhost",
        "--pipeline",
        "--from",
        "bob@b-mail.example",
        "--to",
        &conv.alias_a,
        "--body",
        "over TLS",
    ]);
    assert!(ok, "{transcript}");
    // The server's side, not swaks's own `-> STARTTLS`: EHLO announces it,
    // and the command is answered 220 before the handshake.
    let lines: Vec<&str> = transcript.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| *l == "<-  250-STARTTLS" || *l == "<-  250 STARTTLS"),
        "EHLO did not announce STARTTLS:\n{transcript}"
    );
    let asked = lines
        .iter()
        .position(|l| *l == " -> STARTTLS")
        .unwrap_or_else(|| panic!("swaks sent no STARTTLS:\n{transcript}"));
    assert!(
        lines
            .get(asked + 1)
            .is_some_and(|l| l.starts_with("<-  220 ")),
        "STARTTLS was not answered 220:\n{transcript}"
    );
    assert!(transcript.contains("TLS started"), "{transcript}");
    let delivered = wait_captured(&daemon.outbox(), 1);
    assert!(contains_ci(&delivered[0].1, "over TLS"));
}

#[test]
fn sighup_reloads_the_tls_certificate() {
    let base = tempfile::tempdir().unwrap();
    let (old, new) = (
        make_certs(&base.path().join("old")),
        make_certs(&base.path().join("new")),
    );
    let live = base.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    let install = |from: &std::path::Path| {
        for file in ["cert.pem", "key.pem"] {
            std::fs::copy(from.join(file), live.join(file)).unwrap();
        }
    };
    install(&old);
    let mut options = DaemonOptions::outbox();
    options.extra_smtp = starttls_config(&live);
    let daemon = Daemon::start(options);
    let tls_with = |ca: &std::path::Path| {
        swaks(&[
            "--server",
            &daemon.server(),
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
            &ca.join("ca.pem").display().to_string(),
            "--tls-sni",
            "localhost",
            "--quit-after",
            "TLS",
        ])
        .0
    };
    assert!(tls_with(&old));
    assert!(
        !tls_with(&new),
        "the new CA must not verify the old certificate"
    );
    install(&new);
    daemon.signal("HUP");
    eventually("certificate reload", || {
        daemon
            .log()
            .contains("TLS certificate reloaded")
            .then_some(())
    });
    assert!(tls_with(&new), "after SIGHUP the new certificate is served");
    assert!(!tls_with(&old));
}
