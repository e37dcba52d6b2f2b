//! SMTP reply tables as data: every `tests/it/dialogs/*.dialog` file is a
//! script of `C:` lines (what the client sends, CRLF added) and `S:` lines
//! (what the next reply must start with; `S=` what it must be exactly; a
//! multi-line reply is joined by spaces, as tests/peers/dialog.py prints it).
//! Several `S` lines after one group of `C:` lines are that many replies to
//! it (an error, then the 421 that closes). A last line `closed` says the
//! server has closed the connection by then: one more command gets nothing. Each file runs twice: in
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
    /// The greeting's reply.
    greeting: Expected,
    /// Client lines and the replies they get, in order.
    groups: Vec<Group>,
    /// `closed`: the server has closed the connection after the last group.
    closed: bool,
}

struct Group {
    commands: Vec<String>,
    replies: Vec<Expected>,
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
    let mut smtp_lines = Vec::new();
    let mut greeting = None;
    let mut groups: Vec<Group> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut closed = false;
    for (number, line) in text.lines().enumerate() {
        let at = || format!("{name}:{}", number + 1);
        assert!(!closed, "{}: nothing may follow `closed`", at());
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "closed" {
            assert!(pending.is_empty(), "{}: client lines without a reply", at());
            closed = true;
        } else if let Some(setting) = line.strip_prefix("smtp: ") {
            smtp_lines.push(setting.to_owned());
        } else if let Some(command) = line.strip_prefix("C: ") {
            pending.push(command.to_owned());
        } else if let Some(reply) = expected_reply(line, &at()) {
            if greeting.is_none() {
                assert!(pending.is_empty(), "{}: the greeting comes first", at());
                greeting = Some(reply);
            } else if pending.is_empty() {
                let group = groups.last_mut();
                let group = group.unwrap_or_else(|| panic!("{}: a reply to nothing", at()));
                group.replies.push(reply);
            } else {
                groups.push(Group {
                    commands: std::mem::take(&mut pending),
                    replies: vec![reply],
                });
            }
        } else {
            panic!(
                "{}: not a C:, S:, S=, smtp:, closed or # line: {line:?}",
                at()
            );
        }
    }
    assert!(pending.is_empty(), "{name}: client lines without a reply");
    Script {
        greeting: greeting.unwrap_or_else(|| panic!("{name}: no greeting")),
        name,
        smtp_lines,
        groups,
        closed,
    }
}

/// An `S:` or `S=` line: a reply code first, always.
fn expected_reply(line: &str, at: &str) -> Option<Expected> {
    let (text, exact) = line
        .strip_prefix("S: ")
        .map(|text| (text, false))
        .or_else(|| line.strip_prefix("S= ").map(|text| (text, true)))?;
    let code = text.get(..3).unwrap_or_default();
    assert!(
        code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()),
        "{at}: an expected reply starts with its three-digit code: {line:?}"
    );
    Some(Expected {
        text: text.to_owned(),
        exact,
    })
}

impl Script {
    /// Every expected reply in order, the greeting first.
    fn expected(&self) -> Vec<&Expected> {
        std::iter::once(&self.greeting)
            .chain(self.groups.iter().flat_map(|group| &group.replies))
            .collect()
    }
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
    check_list(&script.name, got, &script.expected(), how);
}

fn check_list(name: &str, got: &[String], expected: &[&Expected], how: &str) {
    let shown = got.join("\n");
    assert_eq!(
        got.len(),
        expected.len(),
        "{name} ({how}): {} replies expected, got:\n{shown}",
        expected.len()
    );
    for (index, (reply, expected)) in got.iter().zip(expected).enumerate() {
        let matches = if expected.exact {
            *reply == expected.text
        } else {
            reply.starts_with(expected.text.as_str())
        };
        assert!(
            matches,
            "{name} ({how}): reply {index} is {reply:?}, expected {} {:?}; all replies:\n{shown}",
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
        let mut turns: Vec<Vec<u8>> = script
            .groups
            .iter()
            .map(|group| group_bytes(&group.commands, &names))
            .collect();
        if script.closed {
            // Read only if the session is still open.
            turns.push(b"NOOP\r\n".to_vec());
        }
        let answers: Vec<Vec<String>> = relay
            .talk_in_turns(turns)
            .iter()
            .map(|output| replies(output))
            .collect();
        check_turns(&script, &answers);
    }
}

/// In process each group's replies are known apart: a reply that comes
/// early or late (an unasked 421) is a failure, not credited to the next
/// command.
fn check_turns(script: &Script, answers: &[Vec<String>]) {
    let all = answers
        .iter()
        .enumerate()
        .map(|(turn, replies)| format!("turn {turn}: {replies:?}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        answers.len(),
        script.groups.len() + 1,
        "{} (in process): the session read {} turns for {} groups{}:\n{all}",
        script.name,
        answers.len().saturating_sub(1),
        script.groups.len(),
        if script.closed {
            " (it should have closed)"
        } else {
            ""
        }
    );
    let expected = std::iter::once(std::slice::from_ref(&script.greeting))
        .chain(script.groups.iter().map(|group| group.replies.as_slice()));
    for (turn, (got, expected)) in answers.iter().zip(expected).enumerate() {
        let name = format!("{} turn {turn}", script.name);
        check_list(
            &name,
            got,
            &expected.iter().collect::<Vec<_>>(),
            "in process",
        );
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
        let mut commands = Vec::new();
        for group in &script.groups {
            let bytes = group_bytes(&group.commands, &names);
            commands.push(format!("RAW:{}", python_escaped(&bytes)));
            commands.extend(group.replies.iter().skip(1).map(|_| "READ".to_owned()));
        }
        if script.closed {
            commands.push("NOOP".to_owned());
        }
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        let mut got = dialog(&daemon.server(), &commands);
        if script.closed {
            // dialog.py's last line when the server has hung up.
            assert_eq!(
                got.pop().as_deref(),
                Some("DISCONNECTED"),
                "{}: the server did not close",
                script.name
            );
        }
        check(&script, &got, "smtplib against the daemon");
    }
}
