//! The store failing under a running daemon: locked by another process, or
//! on a full file system. (A read-only one cannot be made under a running
//! writer: Linux refuses to remount a file system read-only while a file
//! on it is open for writing; SQLite's READONLY takes the same path.) Whatever the fault, no message
//! is forwarded without its metadata row; the sender gets `451 4.3.0` and
//! retries; `/healthz` says the store is failing and `/metrics` counts it;
//! the hook answers `503` with `Retry-After`. Every case ends with the
//! fault gone and a message delivered with its row.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const ALICE: &str = "alice@a-mail.example";
const BOB: &str = "bob@b-mail.example";

struct Setup {
    _base: tempfile::TempDir,
    sink: Sink,
    daemon: Daemon,
    hook: Hook,
    conv: Conversation,
}

/// A daemon with its hook, smtp-sink as the upstream and one conversation;
/// `before_store` runs on the store's directory before anything is in it.
fn setup(before_store: impl FnOnce(&std::path::Path)) -> Setup {
    let base = tempfile::tempdir().unwrap();
    let sink = Sink::start(base.path(), &[]);
    let mut options = DaemonOptions::upstream(&format!("smtp://127.0.0.1:{}", sink.port));
    let hook = Hook::configure(base.path(), &mut options);
    let mut daemon = Daemon::configure(options);
    let state = daemon.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    before_store(&state);
    let conv = daemon.conversation(("alice", ALICE), ("bob", BOB));
    daemon.spawn();
    Setup {
        _base: base,
        sink,
        daemon,
        hook,
        conv,
    }
}

impl Setup {
    /// One message from the partner; the reply code to its final dot (the
    /// last before QUIT's 221).
    fn send(&self, subject: &str) -> String {
        let (_, transcript) = swaks_message(
            &self.daemon.server(),
            BOB,
            &self.conv.alias_a,
            subject,
            "hello",
        );
        let codes = reply_codes(&transcript);
        match codes.as_slice() {
            [.., data, quit] if quit == "221" => data.clone(),
            _ => panic!("no reply to the message:\n{transcript}"),
        }
    }

    fn health(&self) -> (u16, serde_json::Value) {
        self.hook.authed("GET", "/healthz", None)
    }

    fn assert_store_failing(&self) {
        let (status, health) = self.health();
        assert_eq!(
            (status, health["store"].as_str()),
            (503, Some("failing")),
            "{health}"
        );
    }

    fn store_failures(&self, operation: &str) -> u64 {
        let (status, text) = self
            .hook
            .call("GET", "/metrics", None, Some(&self.hook.token));
        assert_eq!(status, 200);
        let wanted = format!("anonrelay_store_failures_total{{operation=\"{operation}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&wanted))
            .map_or(0, |n| n.trim().parse().expect("a count"))
    }

    /// Every fault ends the same way: gone, one message goes with its row.
    fn assert_recovered(&self, rows_before: usize) {
        let (status, health) = self.health();
        assert_eq!(status, 200, "{health}");
        assert_eq!(self.send("after the fault"), "250");
        assert_eq!(
            self.sink.dumps().len(),
            1,
            "exactly the message after the fault"
        );
        let rows = self.daemon.log_rows();
        assert_eq!(rows.len(), rows_before + 1, "{rows:?}");
        assert!(rows.last().unwrap().contains(&"after the fault".to_owned()));
    }
}

#[test]
fn a_store_locked_by_another_process_defers_mail_and_forwards_nothing() {
    let setup = setup(|_| {});
    let mut locker = hold_write_lock(&setup.daemon.db_path());
    let started = Instant::now();
    assert_eq!(setup.send("during the lock"), "451");
    let waited = started.elapsed();
    // Within the row's wait (10 s) and far within any sender's patience.
    assert!(waited < Duration::from_secs(20), "451 after {waited:?}");
    setup.assert_store_failing();
    assert!(setup.store_failures("reserve_row") >= 1);
    let (_, metrics) = setup
        .hook
        .call("GET", "/metrics", None, Some(&setup.hook.token));
    let wal: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("anonrelay_store_wal_bytes "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no WAL size in /metrics:\n{metrics}"));
    let on_disk = std::fs::metadata(setup.daemon.db_path().with_extension("db-wal"))
        .map_or(0, |meta| meta.len());
    assert_eq!(wal, on_disk);
    // The hook: a busy store is 503 with Retry-After, never 500.
    let (status, headers, body) = curl_with_headers(
        &setup.hook,
        "POST",
        "/v1/conversations",
        r#"{"a":{"user_id":"carol","email":"carol@c.example"},"b":{"user_id":"dave","email":"dave@d.example"}}"#,
    );
    assert_eq!(status, 503, "{body}");
    assert!(
        headers.to_ascii_lowercase().contains("retry-after: "),
        "{headers}"
    );
    assert!(body.contains("store_unavailable"), "{body}");
    locker.kill().unwrap();
    locker.wait().unwrap();
    assert!(
        setup.sink.dumps().is_empty(),
        "nothing forwarded during the lock"
    );
    setup.assert_recovered(0);
}

#[test]
fn a_full_file_system_defers_mail_and_forwards_nothing() {
    let setup = setup(|state| mount_tmpfs(state, "size=4m"));
    let state = setup.daemon.dir.path().join("state");
    let _unmount = Unmount(state.clone());
    fill(&state.join("filler"));
    assert_eq!(setup.send("on a full disk"), "451");
    setup.assert_store_failing();
    assert!(setup.store_failures("reserve_row") >= 1);
    assert!(
        setup.sink.dumps().is_empty(),
        "nothing forwarded on a full disk"
    );
    std::fs::remove_file(state.join("filler")).unwrap();
    setup.assert_recovered(0);
}

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small tmpfs for the store. Needs root (CI runs the suite as root);
/// anyone else gets a failure that says so, never a skip.
fn mount_tmpfs(dir: &std::path::Path, options: &str) {
    assert!(
        is_root(),
        "the full and read-only file system cases mount a tmpfs: run the suite as root (CI does)"
    );
    run(
        "mount",
        &["-t", "tmpfs", "-o", options, "tmpfs", path_str(dir)],
    );
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes until the file system is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        if file.write_all(&block).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
    // A last few bytes, so not even a partial block is free.
    while file.write_all(b"x").is_ok() {}
}

/// curl with the response headers: (status, headers, body).
fn curl_with_headers(hook: &Hook, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "60", "-D", "-", "-X", method])
        .args(["-H", &format!("Authorization: Bearer {}", hook.token)])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ])
        .arg(format!("http://127.0.0.1:{}{path}", hook.port()))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, headers.to_owned(), body.to_owned())
}
