//! Admin commands: conversation create/revoke, user export/delete, log --user,
//! and the development hook token.

use crate::common;

use common::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn admin_commands_for_privacy_requests() {
    let daemon = Daemon::start(DaemonOptions::outbox());
    let conv = daemon.conversation(
        ("alice", "Alice@A-Mail.example"),
        ("bob", "bob@b-mail.example"),
    );
    // Idempotent, in either order.
    let again = daemon.conversation(
        ("bob", "bob@b-mail.example"),
        ("alice", "alice@a-mail.example"),
    );
    assert_eq!(
        (again.alias_a.as_str(), again.alias_b.as_str()),
        (conv.alias_b.as_str(), conv.alias_a.as_str())
    );

    let (ok, transcript) = swaks_message(
        &daemon.server(),
        "bob@b-mail.example",
        &conv.alias_a,
        "legal test",
        "x",
    );
    assert!(ok, "{transcript}");

    let log = daemon.cli(&["log", "--user", "alice"]);
    assert!(log.status.success());
    let rows: serde_json::Value = serde_json::from_str(&stdout(&log)).unwrap();
    assert_eq!(rows[0]["subject"], "legal test");
    assert_eq!(rows[0]["sender_id"], "bob");
    assert_eq!(rows[0]["recipient_id"], "alice");

    let export = daemon.cli(&["user", "export", "alice"]);
    assert!(export.status.success());
    let text = stdout(&export);
    let export: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["email"], "alice@a-mail.example");
    assert_eq!(
        export["conversations"][0]["conversation_id"],
        conv.id.as_str()
    );
    // Bob appears only as the alias Alice knows, never by id or address.
    let bob_alias = conv.alias_b.split('@').next().unwrap();
    assert_eq!(export["conversations"][0]["partner_alias"], bob_alias);
    assert_eq!(export["message_log"][0]["direction"], "received");
    assert_eq!(export["message_log"][0]["partner_alias"], bob_alias);
    assert_eq!(export["message_log"][0]["subject"], "legal test");
    for bobs in ["\"bob\"", "b-mail.example", "partner_id", "sender_id"] {
        assert!(!text.contains(bobs), "{bobs} in Alice's export: {text}");
    }

    let deleted = daemon.cli(&["user", "delete", "alice"]);
    assert!(deleted.status.success());
    let export = daemon.cli(&["user", "export", "alice"]);
    assert!(!export.status.success());
    assert!(String::from_utf8_lossy(&export.stderr).contains("no user with id alice"));
    let log = daemon.cli(&["log", "--user", "bob"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&log)).unwrap();
    assert_eq!(rows[0]["recipient_id"], serde_json::Value::Null);
    let bad = daemon.cli(&["log", "--user", "a b"]);
    assert!(!bad.status.success());
    let revoke = daemon.cli(&["conversation", "revoke", "no-such"]);
    assert!(!revoke.status.success());
    let bad_email = daemon.cli(&[
        "conversation",
        "create",
        "--a-user",
        "x",
        "--a-email",
        "not-an-address",
        "--b-user",
        "y",
        "--b-email",
        "y@y.example",
    ]);
    assert!(!bad_email.status.success());
    assert!(String::from_utf8_lossy(&bad_email.stderr).contains("--a-email"));
}

#[test]
fn development_hook_token_is_created_private_and_its_path_logged() {
    use std::os::unix::fs::PermissionsExt;
    let mut options = DaemonOptions::outbox();
    options.extra_sections =
        "[hook]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"dev-token\"\ncreate_token = true\n"
            .to_owned();
    let daemon = Daemon::start(options);
    let token_file = daemon.dir.path().join("dev-token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::read_to_string(&token_file).unwrap().trim().len() >= 32);
    assert!(daemon.log().contains("dev-token"), "{}", daemon.log());
}

/// The OpenAPI description lists exactly the routes the code serves.
#[test]
fn openapi_matches_the_routes() {
    let api = std::fs::read_to_string(repo().join("src/hook/api.rs")).unwrap();
    let spec = std::fs::read_to_string(repo().join("docs/hook-openapi.yaml")).unwrap();
    let code_routes: Vec<&str> = api
        .match_indices(".route(\"")
        .map(|(i, m)| {
            let rest = &api[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    let spec_routes: Vec<&str> = spec
        .lines()
        .filter(|l| l.starts_with("  /") && l.ends_with(':'))
        .map(|l| l.trim().trim_end_matches(':'))
        .collect();
    assert!(code_routes.len() >= 7);
    let mut a = code_routes.clone();
    let mut b = spec_routes.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

/// Issue 11, item 5: the metadata log keeps the subject as forwarded, so
/// neither the recipient's export nor a legal disclosure shows the sender's
/// address that the forwarded copy hid.
#[test]
fn the_log_export_and_disclosure_show_the_subject_as_forwarded() {
    let daemon = Daemon::start(DaemonOptions::outbox());
    let conv = daemon.conversation(
        ("alice", "alice@a-mail.example"),
        ("bob", "bob.real@b-mail.example"),
    );
    let (ok, transcript) = swaks_message(
        &daemon.server(),
        "bob.real@b-mail.example",
        &conv.alias_a,
        "Re: write to Bob.Real@B-Mail.example directly",
        "x",
    );
    assert!(ok, "{transcript}");
    let bob_alias = conv.alias_b.as_str();
    let forwarded = format!("Re: write to {bob_alias} directly");

    let log = daemon.cli(&["log", "--user", "alice"]);
    assert!(log.status.success());
    let rows: serde_json::Value = serde_json::from_str(&stdout(&log)).unwrap();
    assert_eq!(rows[0]["subject"], forwarded.as_str(), "{rows}");

    let export = daemon.cli(&["user", "export", "alice"]);
    assert!(export.status.success());
    let text = stdout(&export);
    let export: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["message_log"][0]["subject"], forwarded.as_str());
    assert!(
        !text.to_lowercase().contains("b-mail.example"),
        "Bob's address in Alice's export: {text}"
    );
}
