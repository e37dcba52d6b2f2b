//! SMTP reply tables as data: every `tests/it/dialogs/*.dialog` file is a
//! script of `C:` lines (what the client sends, CRLF added) and `S:` lines
//! (what the next reply must start with; `S=` what it must be exactly; a
//! multi-line reply is joined by spaces, as tests/peers/dialog.py prints it). Each file runs twice: in
//! process against the session wired as `serve` wires it (no socket), and
//! through Python's smtplib against the real daemon. Lines starting `#` are
//! comments; `smtp: KEY = VALUE` adds a line to the `[smtp]` section.
//!
//! Placeholders: `{alias}` is the address Bob writes to (Alice's alias),
//! `{partner}` Bob's real address, `{revoked}` an alias of a revoked
//! conversation, `{NUL}` a NUL byte and `{LF}` a bare line feed.

use std::path::{Path, PathBuf};

use anonrelay::in_process::InProcess;

use crate::common;
use common::{dialog, Daemon, DaemonOptions, ALIAS_DOMAIN};

const ALICE: (&str, &str) = ("u-dialog-alice", "alice.dialog@a-mail.example");
const BOB: (&str, &str) = ("u-dialog-bob", "bob.dialog@b-mail.example");
const CAROL: (&str, &str) = ("u-dialog-carol", "carol.dialog@c-mail.example");

/// One dialog file, read.
struct Script {
    name: String,
    smtp_lines: Vec<String>,
    /// The greeting, then one expected reply per group of client lines.
    expected: Vec<Expected>,
    /// Client lines, grouped by the reply that follows them.
    groups: Vec<Vec<String>>,
}

struct Expected {
    text: String,
    /// `S=`: the whole reply; `S:` its start.
    exact: bool,
}

/// The values placeholders stand for in one run.
struct Names {
    alias: String,
    revoked: String,
}

fn scripts() -> Vec<Script> {
    let dir = common::repo().join("tests/it/dialogs");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/it/dialogs")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "dialog"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 5,
        "dialog files missing in {}",
        dir.display()
    );
    paths.iter().map(|path| read_script(path)).collect()
}

fn read_script(path: &Path) -> Script {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).expect("dialog file");
    let mut script = Script {
        name: name.clone(),
        smtp_lines: Vec::new(),
        expected: Vec::new(),
        groups: Vec::new(),
    };
    let mut pending: Vec<String> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let at = || format!("{name}:{}", number + 1);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(setting) = line.strip_prefix("smtp: ") {
            script.smtp_lines.push(setting.to_owned());
        } else if let Some(command) = line.strip_prefix("C: ") {
            pending.push(command.to_owned());
        } else if let Some((reply, exact)) = line
            .strip_prefix("S: ")
            .map(|reply| (reply, false))
            .or_else(|| line.strip_prefix("S= ").map(|reply| (reply, true)))
        {
            if script.expected.is_empty() {
                assert!(pending.is_empty(), "{}: the greeting comes first", at());
            } else {
                assert!(!pending.is_empty(), "{}: a reply to nothing", at());
                script.groups.push(std::mem::take(&mut pending));
            }
            script.expected.push(Expected {
                text: reply.to_owned(),
                exact,
            });
        } else {
            panic!("{}: not a C:, S:, S=, smtp: or # line: {line:?}", at());
        }
    }
    assert!(pending.is_empty(), "{name}: client lines without a reply");
    script
}

/// The bytes a group of client lines stands for.
fn group_bytes(group: &[String], names: &Names) -> Vec<u8> {
    let mut out = Vec::new();
    for line in group {
        let line = line
            .replace("{alias}", &names.alias)
            .replace("{partner}", BOB.1)
            .replace("{revoked}", &names.revoked);
        for (index, piece) in line.split("{NUL}").enumerate() {
            if index > 0 {
                out.push(0);
            }
            out.extend_from_slice(piece.replace("{LF}", "\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Server output as one line per reply, continuation lines joined by spaces.
fn replies(output: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(output);
    let mut replies = Vec::new();
    let mut current = String::new();
    for line in text.split("\r\n").filter(|line| !line.is_empty()) {
        let (code, rest) = line.split_at(line.len().min(3));
        let (last, text) = match rest.as_bytes().first() {
            Some(b'-') => (false, &rest[1..]),
            Some(_) => (true, &rest[1..]),
            None => (true, ""),
        };
        if current.is_empty() {
            current = format!("{code} {text}");
        } else {
            current.push(' ');
            current.push_str(text);
        }
        if last {
            replies.push(std::mem::take(&mut current));
        }
    }
    replies
}

fn check(script: &Script, got: &[String], how: &str) {
    let shown = got.join("\n");
    assert_eq!(
        got.len(),
        script.expected.len(),
        "{} ({how}): {} replies expected, got:\n{shown}",
        script.name,
        script.expected.len()
    );
    for (index, (reply, expected)) in got.iter().zip(&script.expected).enumerate() {
        let matches = if expected.exact {
            *reply == expected.text
        } else {
            reply.starts_with(expected.text.as_str())
        };
        assert!(
            matches,
            "{} ({how}): reply {index} is {reply:?}, expected {} {:?}; all replies:\n{shown}",
            script.name,
            if expected.exact {
                "exactly"
            } else {
                "to start with"
            },
            expected.text
        );
    }
}

fn in_process_config(smtp_lines: &[String]) -> String {
    format!(
        "[smtp]\nlisten = \"127.0.0.1:0\"\nhostname = \"mx.relay.test\"\n\
         alias_domain = \"{ALIAS_DOMAIN}\"\nmax_message_bytes = 1048576\n{}\n\n\
         [upstream]\nurl = \"outbox:unused\"\n\n[store]\npath = \"unused.db\"\n",
        smtp_lines.join("\n")
    )
}

#[test]
fn every_dialog_in_process() {
    for script in scripts() {
        let relay = InProcess::new(&in_process_config(&script.smtp_lines))
            .unwrap_or_else(|err| panic!("{}: {err:#}", script.name));
        let live = relay.conversation(ALICE, BOB);
        let gone = relay.conversation(ALICE, CAROL);
        relay.revoke(&gone.id);
        let names = Names {
            alias: format!("{}@{ALIAS_DOMAIN}", live.alias_a),
            revoked: format!("{}@{ALIAS_DOMAIN}", gone.alias_a),
        };
        let input: Vec<u8> = script
            .groups
            .iter()
            .flat_map(|group| group_bytes(group, &names))
            .collect();
        let output = relay.talk(&input);
        check(&script, &replies(&output), "in process");
    }
}

/// TEXT for dialog.py's `RAW:`: Python escapes for what is not plain.
fn python_escaped(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(byte as char),
            other => out.push_str(&format!("\\x{other:02x}")),
        }
    }
    out
}

#[test]
fn every_dialog_through_smtplib() {
    for script in scripts() {
        let mut options = DaemonOptions::outbox();
        options.extra_smtp = script.smtp_lines.join("\n");
        let daemon = Daemon::start(options);
        let live = daemon.conversation(ALICE, BOB);
        let gone = daemon.conversation(ALICE, CAROL);
        let revoked = daemon.cli(&["conversation", "revoke", &gone.id]);
        assert!(revoked.status.success(), "{revoked:?}");
        let names = Names {
            alias: live.alias_a.clone(),
            revoked: gone.alias_a.clone(),
        };
        let commands: Vec<String> = script
            .groups
            .iter()
            .map(|group| format!("RAW:{}", python_escaped(&group_bytes(group, &names))))
            .collect();
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        let got = dialog(&daemon.server(), &commands);
        check(&script, &got, "smtplib against the daemon");
    }
}
