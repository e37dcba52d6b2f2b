//! Test harness: runs the real `anonrelay` binary and real third-party
//! peers (swaks, Python's smtplib, aiosmtpd, Postfix's smtp-sink) in a
//! throwaway directory. A missing peer fails the test with the command that
//! installs it; nothing is skipped.

#![allow(dead_code)]

pub mod mime_check;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ALIAS_DOMAIN: &str = "relay.test";
/// Debian's interpreter: the one python3-aiosmtpd installs into.
/// What the daemon may hold beyond `smtp.limits.max_buffered_bytes`: the
/// runtime, the store, TLS and DNS state and every session's line buffers.
/// BENCHMARKS.md ("Memory: the budget and the constant") states it from the
/// tests that check it.
pub const OUTSIDE_THE_BUDGET_KIB: u64 = 96 * 1024;

pub const PYTHON: &str = "/usr/bin/python3";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails (never skips) when a peer is missing, saying how to get it.
pub fn require(program: &str, package: &str) {
    let found = if program.starts_with('/') {
        Path::new(program).exists()
    } else {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        found,
        "real peer `{program}` is missing: run scripts/test.sh, or `apt-get install {package}`"
    );
}

pub fn require_aiosmtpd() {
    require(PYTHON, "python3");
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3-aiosmtpd is missing: run scripts/test.sh, or `apt-get install python3-aiosmtpd`"
    );
}

/// Runs openssl (a real peer for keys and certificates); fails the test
/// with its stderr unless it succeeds, and returns its stdout.
pub fn openssl<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    require("openssl", "openssl");
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not start listening on port {port}");
}

/// Polls until `check` returns Some, or fails after a generous deadline.
/// Deadlines here only bound a hang; no assertion depends on speed.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long a command that must exit by itself (a refused `serve`, a CLI
/// call) may run; only a bound on a hang, far above any real run.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `command` to its exit like `Command::output`, but one still running
/// after `EXIT_DEADLINE` (e.g. `serve` that accepted a config it should have
/// refused) is killed and fails the test instead of hanging it.
pub fn output_within_deadline(mut command: Command, what: &str) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    // Drained on their own threads, so a chatty child never blocks on a
    // full pipe while we wait for it.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + EXIT_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "{what} was still running after {EXIT_DEADLINE:?} and was killed; \
                 it should have exited by itself. Its stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// A child process killed when the test ends.
pub struct Guard {
    pub child: Child,
    pub name: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Conversation {
    pub id: String,
    /// Full addresses.
    pub alias_a: String,
    pub alias_b: String,
}

/// A running `anonrelay serve` with its own directory and config.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub config: PathBuf,
    pub guard: Option<Guard>,
    hook_port: Option<Arc<AtomicU16>>,
    /// Extra environment for `serve` and the CLI (e.g. the test clock).
    pub env: Vec<(String, String)>,
    /// `ANONRELAY_LOG` for `serve`: `debug` unless a test sets None, which
    /// runs the daemon at its default level, as in production.
    pub log_filter: Option<String>,
}

pub struct DaemonOptions {
    pub upstream_url: String,
    pub extra_upstream: String,
    pub extra_smtp: String,
    /// Whole extra sections, e.g. `[hook]`.
    pub extra_sections: String,
    pub max_message_bytes: usize,
    /// The whole `[verify]` section. Off by default: there is no DNS here;
    /// tests of the checks put their own with seeded records.
    pub verify_section: String,
    /// 0: the daemon picks a free port and the harness reads it back from
    /// the ready line. Only a test whose peers must know the port before the
    /// daemon can start (a circle) sets one.
    pub smtp_port: u16,
    /// Filled with the hook's port once the daemon is ready (`Hook`).
    pub hook_port: Option<Arc<AtomicU16>>,
}

impl DaemonOptions {
    pub fn outbox() -> Self {
        Self::upstream("outbox:outbox")
    }

    pub fn upstream(url: &str) -> Self {
        Self {
            upstream_url: url.to_owned(),
            extra_upstream: String::new(),
            extra_smtp: String::new(),
            extra_sections: String::new(),
            max_message_bytes: 1024 * 1024,
            verify_section: "[verify]\nmode = \"off\"".to_owned(),
            smtp_port: 0,
            hook_port: None,
        }
    }
}

/// The daemon's ready line, once it has been written whole (with its
/// newline): a read racing the write must not see half the ports.
fn ready_line(log: &str) -> Option<&str> {
    let start = log.find("anonrelay ready")?;
    let line_start = log[..start].rfind('\n').map_or(0, |at| at + 1);
    let end = start + log[start..].find('\n')?;
    Some(&log[line_start..end])
}

impl Daemon {
    /// Writes the config; call `start` once conversations are set up (or at once).
    pub fn configure(options: DaemonOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = options.smtp_port;
        let config = dir.path().join("relay.toml");
        let text = format!(
            r#"[smtp]
listen = "127.0.0.1:{port}"
hostname = "mx.relay.test"
alias_domain = "{ALIAS_DOMAIN}"
max_message_bytes = {max}
{extra_smtp}

[upstream]
url = "{url}"
timeout_secs = 10
{extra_upstream}

{extra_sections}

{verify_section}

[store]
path = "state/relay.db"
"#,
            max = options.max_message_bytes,
            extra_smtp = options.extra_smtp,
            url = options.upstream_url,
            extra_upstream = options.extra_upstream,
            extra_sections = options.extra_sections,
            verify_section = options.verify_section,
        );
        std::fs::write(&config, text).expect("write config");
        Self {
            dir,
            port,
            config,
            guard: None,
            hook_port: options.hook_port,
            env: Vec::new(),
            log_filter: Some("debug".to_owned()),
        }
    }

    pub fn start(options: DaemonOptions) -> Self {
        let mut daemon = Self::configure(options);
        daemon.spawn();
        daemon
    }

    pub fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_anonrelay"));
        match &self.log_filter {
            Some(filter) => command.env("ANONRELAY_LOG", filter),
            None => command.env_remove("ANONRELAY_LOG"),
        };
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn anonrelay");
        self.guard = Some(Guard {
            child,
            name: "anonrelay".into(),
        });
        // Ready once it says so: both listeners bound, hook token written.
        let deadline = Instant::now() + Duration::from_secs(30);
        while ready_line(&self.log()).is_none() {
            if let Some(guard) = self.guard.as_mut() {
                if let Ok(Some(status)) = guard.child.try_wait() {
                    panic!(
                        "anonrelay exited with {status} before listening:\n{}",
                        self.log()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "anonrelay did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.read_back_ports();
    }

    /// The ports the daemon bound, from its ready line. The config is then
    /// rewritten to them, so a restart listens where peers already point.
    fn read_back_ports(&mut self) {
        let log = self.log();
        let ready = ready_line(&log).expect("a ready line");
        let port_of = |field: &str| -> Option<u16> {
            let value = ready
                .split_whitespace()
                .find_map(|word| word.strip_prefix(field))?;
            value.rsplit_once(':')?.1.parse().ok()
        };
        self.port = port_of("listen=").unwrap_or_else(|| panic!("no listen= in {ready}"));
        let mut config = std::fs::read_to_string(&self.config).expect("config");
        config = config.replacen(
            "[smtp]\nlisten = \"127.0.0.1:0\"",
            &format!("[smtp]\nlisten = \"127.0.0.1:{}\"", self.port),
            1,
        );
        if let Some(slot) = &self.hook_port {
            let hook = port_of("hook_listen=").unwrap_or_else(|| panic!("no hook in {ready}"));
            slot.store(hook, Ordering::SeqCst);
            config = config.replacen(
                "[hook]\nlisten = \"127.0.0.1:0\"",
                &format!("[hook]\nlisten = \"127.0.0.1:{hook}\""),
                1,
            );
        }
        std::fs::write(&self.config, config).expect("rewrite config");
    }

    pub fn stop(&mut self) {
        self.guard = None;
    }

    /// Sends a signal to the running daemon.
    pub fn signal(&self, name: &str) {
        let guard = self.guard.as_ref().expect("daemon running");
        let status = Command::new("kill")
            .args([&format!("-{name}"), &guard.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn server(&self) -> String {
        assert_ne!(self.port, 0, "the port is known once the daemon is ready");
        format!("127.0.0.1:{}", self.port)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("state/relay.db")
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// The daemon's peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    /// The daemon's resident memory now (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let pid = self.guard.as_ref().expect("the daemon runs").child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
    }

    /// Runs an admin subcommand against this daemon's config.
    /// Bounded by `EXIT_DEADLINE`: `serve` run here must be refused.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_anonrelay"));
        command
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        output_within_deadline(command, &format!("anonrelay {}", args.join(" ")))
    }

    pub fn conversation(&self, a: (&str, &str), b: (&str, &str)) -> Conversation {
        let out = self.cli(&[
            "conversation",
            "create",
            "--a-user",
            a.0,
            "--a-email",
            a.1,
            "--b-user",
            b.0,
            "--b-email",
            b.1,
        ]);
        assert!(
            out.status.success(),
            "conversation create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("JSON from conversation create");
        Conversation {
            id: json["conversation_id"]
                .as_str()
                .expect("conversation_id")
                .to_owned(),
            alias_a: json["alias_a"].as_str().expect("alias_a").to_owned(),
            alias_b: json["alias_b"].as_str().expect("alias_b").to_owned(),
        }
    }

    /// Every row of message_log as strings, read straight from the file.
    pub fn log_rows(&self) -> Vec<Vec<String>> {
        let conn = rusqlite::Connection::open(self.db_path()).expect("open db");
        let mut stmt = conn
            .prepare("SELECT * FROM message_log ORDER BY id")
            .expect("query log");
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |row| {
                (0..columns)
                    .map(|i| {
                        let value: rusqlite::types::Value = row.get(i)?;
                        Ok(match value {
                            rusqlite::types::Value::Null => "NULL".to_owned(),
                            rusqlite::types::Value::Integer(i) => i.to_string(),
                            rusqlite::types::Value::Text(t) => t,
                            other => format!("{other:?}"),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("rows");
        rows.collect::<Result<_, _>>().expect("row")
    }
}

/// Runs swaks; returns (exit ok, transcript).
/// One plain message from `from` to `to` through swaks; fails the test
/// unless swaks reports success. Returns the transcript.
pub fn swaks_send(daemon: &Daemon, from: &str, to: &str) -> String {
    let (ok, transcript) = swaks(&["--server", &daemon.server(), "--from", from, "--to", to]);
    assert!(ok, "swaks {from} -> {to}:\n{transcript}");
    transcript
}

/// A message with `subject` and `body` from `from` to `to` through swaks
/// at `server`; swaks's success and its transcript.
pub fn swaks_message(
    server: &str,
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> (bool, String) {
    let subject = format!("Subject: {subject}");
    swaks(&[
        "--server", server, "--from", from, "--to", to, "--header", &subject, "--body", body,
    ])
}

pub fn swaks(args: &[&str]) -> (bool, String) {
    require("swaks", "swaks");
    let out = Command::new("swaks")
        .args(args)
        .args(["--timeout", "60"])
        .output()
        .expect("run swaks");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), transcript)
}

/// The final server reply codes swaks saw, in order (`<-` / `<**` lines).
pub fn reply_codes(transcript: &str) -> Vec<String> {
    transcript
        .lines()
        .filter_map(|l| l.strip_prefix("<-  ").or_else(|| l.strip_prefix("<** ")))
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .map(|l| l[..3].to_owned())
        .collect()
}

/// A scripted dialog through Python's smtplib (tests/peers/dialog.py);
/// returns one `CODE text` line per reply.
pub fn dialog(server: &str, commands: &[&str]) -> Vec<String> {
    require_aiosmtpd();
    let out = Command::new(PYTHON)
        .arg(repo().join("tests/peers/dialog.py"))
        .args(["--server", server])
        .args(commands)
        .output()
        .expect("run dialog.py");
    assert!(
        out.status.success(),
        "dialog.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Messages captured by a peer: (envelope JSON, raw message) in arrival order.
pub fn captured(dir: &Path) -> Vec<(serde_json::Value, Vec<u8>)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    names.sort();
    names
        .into_iter()
        .map(|eml| {
            let json = std::fs::read(eml.with_extension("json")).unwrap_or_default();
            (
                serde_json::from_slice(&json).unwrap_or(serde_json::Value::Null),
                std::fs::read(&eml).expect("read captured message"),
            )
        })
        .collect()
}

pub fn wait_captured(dir: &Path, count: usize) -> Vec<(serde_json::Value, Vec<u8>)> {
    eventually(&format!("{count} message(s) in {}", dir.display()), || {
        let got = captured(dir);
        (got.len() >= count).then_some(got)
    })
}

pub fn header_block(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

/// Value of the first header with that name (unfolded).
pub fn header(message: &[u8], name: &str) -> Option<String> {
    let block = header_block(message)
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    block.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// aiosmtpd upstream with STARTTLS and AUTH (tests/peers/upstream.py).
pub struct AioUpstream {
    pub port: u16,
    pub dir: PathBuf,
    pub certs: PathBuf,
    _guard: Guard,
}

pub const UPSTREAM_USER: &str = "relayuser";
pub const UPSTREAM_PASSWORD: &str = "s3cret-pass";

impl AioUpstream {
    pub fn start(base: &Path, extra: &[&str]) -> Self {
        require_aiosmtpd();
        let certs = make_certs(&base.join("certs"));
        let dir = base.join("upstream-mail");
        std::fs::create_dir_all(&dir).expect("upstream dir");
        let port = free_port();
        let mut child = Command::new(PYTHON)
            .arg(repo().join("tests/peers/upstream.py"))
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(&dir)
            .arg("--tls-cert")
            .arg(certs.join("cert.pem"))
            .arg("--tls-key")
            .arg(certs.join("key.pem"))
            .args([
                "--auth",
                &format!("{UPSTREAM_USER}:{UPSTREAM_PASSWORD}"),
                "--require-auth",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn upstream.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("READY line");
        assert!(line.starts_with("READY"), "upstream.py said {line:?}");
        Self {
            port,
            dir,
            certs,
            _guard: Guard {
                child,
                name: "upstream.py".into(),
            },
        }
    }

    /// Config lines for the daemon: STARTTLS, AUTH and our throwaway CA.
    pub fn daemon_options(&self, base: &Path) -> DaemonOptions {
        let password_file = base.join("upstream-password");
        std::fs::write(&password_file, format!("{UPSTREAM_PASSWORD}\n")).expect("password file");
        let mut options = DaemonOptions::upstream(&format!(
            "smtp+starttls://{UPSTREAM_USER}@localhost:{}",
            self.port
        ));
        options.extra_upstream = format!(
            "password_file = \"{}\"\nca_file = \"{}\"",
            password_file.display(),
            self.certs.join("ca.pem").display()
        );
        options
    }
}

/// Postfix's smtp-sink as a plaintext loopback upstream, dumping each
/// message to its own file; `faults` are extra flags such as `-r .`.
pub struct Sink {
    pub port: u16,
    pub dir: PathBuf,
    guard: Option<Guard>,
}

impl Sink {
    pub fn start(base: &Path, faults: &[&str]) -> Self {
        let dir = base.join("sink");
        std::fs::create_dir_all(&dir).expect("sink dir");
        let mut sink = Self {
            port: free_port(),
            dir,
            guard: None,
        };
        sink.restart(faults);
        sink
    }

    pub fn restart(&mut self, faults: &[&str]) {
        require("smtp-sink", "postfix");
        self.guard = None;
        // smtp-sink drops root privileges to -u; the dump dir must be writable.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let mut command = Command::new("smtp-sink");
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        let template = format!("{}/%Y%m%d%H%M%S.", self.dir.display());
        let child = command
            .args(["-d", &template])
            .args(faults)
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("16")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn smtp-sink");
        self.guard = Some(Guard {
            child,
            name: "smtp-sink".into(),
        });
        wait_for_port(self.port, "smtp-sink");
    }

    pub fn stop(&mut self) {
        self.guard = None;
    }

    /// Dumped messages (smtp-sink's dump files hold the envelope as
    /// X- headers followed by the message).
    pub fn dumps(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|f| {
                let mut bytes = Vec::new();
                std::fs::File::open(f).ok()?.read_to_end(&mut bytes).ok()?;
                Some(bytes)
            })
            .collect()
    }
}

/// A throwaway CA and a localhost certificate (tests/peers/make-cert.sh).
pub fn make_certs(dir: &Path) -> PathBuf {
    require("openssl", "openssl");
    let made = Command::new("bash")
        .arg(repo().join("tests/peers/make-cert.sh"))
        .arg(dir)
        .output()
        .expect("run make-cert.sh");
    assert!(
        made.status.success(),
        "make-cert.sh: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    dir.to_owned()
}

/// `[smtp]` lines that enable STARTTLS with the certificate in `certs`.
pub fn starttls_config(certs: &Path) -> String {
    format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        certs.join("cert.pem").display(),
        certs.join("key.pem").display()
    )
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub fn contains_ci(haystack: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(haystack)
        .to_lowercase()
        .contains(&needle.to_lowercase())
}

/// The HTTP hook of a daemon under test, called with curl.
pub struct Hook {
    /// Read back from the daemon's ready line once it has started.
    port: Arc<AtomicU16>,
    pub token: String,
}

impl Hook {
    pub fn port(&self) -> u16 {
        let port = self.port.load(Ordering::SeqCst);
        assert_ne!(port, 0, "the hook's port is known once the daemon is ready");
        port
    }

    /// Adds a [hook] section (with a 0600 token file under `base`) to the
    /// daemon options.
    pub fn configure(base: &std::path::Path, options: &mut DaemonOptions) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let port = Arc::new(AtomicU16::new(0));
        options.hook_port = Some(Arc::clone(&port));
        let token = "test-token-0123456789abcdef".to_owned();
        let token_file = base.join("hook-token");
        std::fs::write(&token_file, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        options.extra_sections += &format!(
            "\n[hook]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\nmax_body_bytes = 65536\n",
            token_file.display()
        );
        Self { port, token }
    }

    /// curl; returns (status, body).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, String) {
        require("curl", "curl");
        let mut command = Command::new("curl");
        // A bound on a hung hook: the test fails (status 0) instead of
        // hanging; far above any answer's time, so speed is not tested.
        command
            .args(["-s", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}"])
            .args(["-X", method])
            .arg(format!("http://127.0.0.1:{}{path}", self.port()));
        if let Some(token) = token {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        if let Some(body) = body {
            command.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ]);
        }
        let out = command.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// A call with the right token; the body parsed as JSON (Null if it is not).
    pub fn authed(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let (status, text) = self.call(method, path, body, Some(&self.token));
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// The rewrite step alone, as the relay calls it for a message from
/// `sender` (fixed aliases, secret and clock, so outputs are comparable).
pub fn rewrite_in_process(
    raw: &[u8],
    sender: &str,
    display_name: Option<&str>,
) -> Result<Vec<u8>, anonrelay::rewrite::RewriteError> {
    rewrite_as(
        raw,
        &Sender {
            display_name,
            ..Sender::new(sender)
        },
    )
}

/// Who sends a message, for [`rewrite_as`].
pub struct Sender<'a> {
    pub address: &'a str,
    /// The conversation's display name for the sender.
    pub display_name: Option<&'a str>,
    pub client_ip: &'a str,
    pub client_host: &'a str,
    pub remote_content: anonrelay::rewrite::RemoteContent,
}

impl<'a> Sender<'a> {
    pub fn new(address: &'a str) -> Self {
        Self {
            address,
            display_name: None,
            client_ip: "127.0.0.1",
            client_host: "bobs-laptop.sender-mail.example",
            remote_content: anonrelay::rewrite::RemoteContent::Block,
        }
    }
}

/// The rewrite step for `sender`, from its client, to alias
/// `aaaaaaaaaaaaaaaaaaaa` from alias `bbbbbbbbbbbbbbbbbbbb`.
pub fn rewrite_as(
    raw: &[u8],
    sender: &Sender<'_>,
) -> Result<Vec<u8>, anonrelay::rewrite::RewriteError> {
    use anonrelay::rewrite::{self, Context};
    let cipher = anonrelay::core::tokens::ServerSecret::from_bytes([5; 32]).message_id_cipher();
    let inspected = rewrite::inspect(raw)?;
    rewrite::rewrite(
        &inspected,
        &Context {
            alias_domain: ALIAS_DOMAIN,
            hostname: "mx.relay.test",
            conversation_id: "conv",
            from_alias: "bbbbbbbbbbbbbbbbbbbb",
            sender_address: sender.address,
            from_display_name: sender.display_name,
            to_alias: "aaaaaaaaaaaaaaaaaaaa",
            cipher: &cipher,
            now: 1_800_000_000,
            trace_id: "t",
            client_ip: Some(sender.client_ip.parse().expect("an IP address")),
            client_host: Some(sender.client_host),
            remote_content: sender.remote_content,
        },
    )
    .map(|rewritten| rewritten.message)
}

/// A second process (Python's sqlite3) holding the write lock until killed.
pub fn hold_write_lock(db: &std::path::Path) -> std::process::Child {
    let script = "import sqlite3, sys, time\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                  c.execute('BEGIN IMMEDIATE')\n\
                  print('locked', flush=True)\n\
                  time.sleep(600)\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run python3 (Debian: python3)");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}
