//! Postfix as the real sending MTA: a throwaway instance (its own config and
//! queue directories) relays to anonrelay. A message to three aliases
//! arrives three times through the `452 4.5.3` split, a `451` leaves the
//! message in Postfix's deferred queue until a flush delivers it once, and
//! a bounce Postfix makes itself comes back as one notice.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const BOB: &str = "bob@b-mail.example";

struct Postfix {
    conf: PathBuf,
    port: u16,
    /// One instance at a time: two Postfix instances side by side (each
    /// with its anonrelay, sinks and retries on two cores) made a delivery
    /// miss its deadline now and then in CI, and this binary's tests are
    /// about Postfix's behaviour, not about sharing a machine.
    _turn: std::sync::MutexGuard<'static, ()>,
}

static ONE_POSTFIX_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const MASTER_CF: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

/// Postfix's queue timing, fixed at start: a reload is asynchronous, so
/// changing it afterwards races the old qmgr.
/// Fast retries: a deferred message goes out again within seconds.
const FAST_RETRIES: &str = "\
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
";
/// Slow retries: a deferred message waits for an explicit flush.
const SLOW_RETRIES: &str = "\
queue_run_delay = 3600s
minimal_backoff_time = 3600s
maximal_backoff_time = 7200s
";

impl Postfix {
    /// Starts Postfix with `relayhost` = anonrelay on `relay_port` and the
    /// given queue timing (`FAST_RETRIES` or `SLOW_RETRIES`).
    fn start(base: &Path, relay_port: u16, retries: &str) -> Self {
        let routing = format!("relayhost = [127.0.0.1]:{relay_port}\n");
        let turn = Self::turn();
        Self::start_with(turn, base, free_port(), &routing, retries)
    }

    /// Waits for this test's turn to run a Postfix instance.
    fn turn() -> std::sync::MutexGuard<'static, ()> {
        // A test that failed while holding the turn must not fail the rest.
        ONE_POSTFIX_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts Postfix listening on `port`, with `routing` (main.cf lines
    /// that say where mail goes) and the queue timing `retries`.
    fn start_with(
        turn: std::sync::MutexGuard<'static, ()>,
        base: &Path,
        port: u16,
        routing: &str,
        retries: &str,
    ) -> Self {
        require("postfix", "postfix");
        assert!(
            is_root(),
            "the Postfix tests start a Postfix instance and need root (CI runs as root)"
        );
        use std::os::unix::fs::PermissionsExt;
        // Postfix's daemons run as `postfix` and must reach these directories.
        std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let conf = base.join("postfix-conf");
        let queue = base.join("postfix-queue");
        let data = base.join("postfix-data");
        for dir in [&conf, &queue, &data] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let chown = Command::new("chown")
            .arg("postfix:")
            .arg(&data)
            .status()
            .unwrap();
        assert!(chown.success(), "chown postfix {}", data.display());
        let main_cf = format!(
            "compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.test
mydomain = postfix.test
myorigin = postfix.test
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
{routing}smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
maillog_file = {base}/postfix.log
maillog_file_prefixes = {base}
{retries}smtp_connect_timeout = 5s
smtp_helo_timeout = 10s
smtp_data_done_timeout = 30s
smtputf8_enable = yes
",
            queue = queue.display(),
            data = data.display(),
            base = base.display(),
        );
        std::fs::write(conf.join("main.cf"), main_cf).unwrap();
        let master = format!("127.0.0.1:{port} inet n - n - - smtpd\n{MASTER_CF}");
        std::fs::write(conf.join("master.cf"), master).unwrap();
        let postfix = Self {
            conf,
            port,
            _turn: turn,
        };
        let out = postfix.run("postfix", &["start"]);
        assert!(
            out.0,
            "postfix start failed: {}\n{}",
            out.1,
            postfix.log(base)
        );
        wait_for_port(port, "postfix smtpd");
        postfix
    }

    fn run(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(program)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn queue_is_empty(&self) -> bool {
        self.run("postqueue", &["-p"])
            .1
            .contains("Mail queue is empty")
    }

    /// Like `eventually`, but a timeout shows Postfix's log and queue:
    /// what Postfix did is the evidence when a delivery does not come.
    fn wait_for<T>(&self, base: &Path, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}\nqueue:\n{}\nPostfix log:\n{}",
                self.run("postqueue", &["-p"]).1,
                self.log(base)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn log(&self, base: &Path) -> String {
        std::fs::read_to_string(base.join("postfix.log")).unwrap_or_default()
    }

    fn submit(&self, to: &[&str], subject: &str) {
        let (ok, transcript) = swaks(&[
            "--server",
            &format!("127.0.0.1:{}", self.port),
            "--from",
            BOB,
            "--to",
            &to.join(","),
            "--header",
            &format!("Subject: {subject}"),
            "--body",
            "relayed by Postfix",
        ]);
        assert!(ok, "Postfix refused the submission:\n{transcript}");
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.run("postfix", &["stop"]);
    }
}

#[test]
fn postfix_delivers_to_three_aliases_through_the_one_recipient_split() {
    let base = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(DaemonOptions::outbox());
    let aliases: Vec<String> = (1..=3)
        .map(|i| {
            daemon
                .conversation(
                    (&format!("alice{i}"), &format!("alice{i}@a-mail.example")),
                    ("bob", BOB),
                )
                .alias_a
        })
        .collect();
    let postfix = Postfix::start(base.path(), daemon.port, FAST_RETRIES);
    let to: Vec<&str> = aliases.iter().map(String::as_str).collect();
    postfix.submit(&to, "to three aliases");
    let delivered = postfix.wait_for(base.path(), "3 messages in the outbox", || {
        let captured = captured(&daemon.outbox());
        (captured.len() >= 3).then_some(captured)
    });
    let mut recipients: Vec<String> = delivered
        .iter()
        .map(|(envelope, _)| envelope["rcpt_to"].as_str().unwrap().to_owned())
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "alice1@a-mail.example",
            "alice2@a-mail.example",
            "alice3@a-mail.example"
        ]
    );
    eventually("Postfix's queue to drain", || {
        postfix.queue_is_empty().then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        captured(&daemon.outbox()).len(),
        3,
        "each alias exactly once"
    );
    assert!(
        postfix.log(base.path()).contains("452 4.5.3"),
        "the split went through 452:\n{}",
        postfix.log(base.path())
    );
}

#[test]
fn a_451_stays_in_postfix_deferred_queue_and_a_flush_delivers_once() {
    let base = tempfile::tempdir().unwrap();
    // The upstream fails the first delivery with 451 at end of data.
    let upstream = AioUpstream::start(base.path(), &["--fail-data", "451", "--fail-count", "1"]);
    let daemon = Daemon::start(upstream.daemon_options(base.path()));
    let conv = daemon.conversation(("alice", "alice@a-mail.example"), ("bob", BOB));
    // Slow retries from the start: only our flush may deliver it.
    let postfix = Postfix::start(base.path(), daemon.port, SLOW_RETRIES);
    postfix.submit(&[&conv.alias_a], "deferred once");
    eventually("the 451 in Postfix's log", || {
        postfix.log(base.path()).contains("451 4.3.0").then_some(())
    });
    assert!(
        !postfix.queue_is_empty(),
        "the message must wait in Postfix's queue"
    );
    assert!(captured(&upstream.dir).is_empty());
    assert!(daemon.log_rows().is_empty());
    assert!(postfix.run("postqueue", &["-f"]).0);
    let delivered = wait_captured(&upstream.dir, 1);
    assert_eq!(
        delivered[0].0["rcpt_tos"],
        serde_json::json!(["alice@a-mail.example"])
    );
    eventually("Postfix's queue to drain", || {
        postfix.queue_is_empty().then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(captured(&upstream.dir).len(), 1, "delivered exactly once");
    assert_eq!(daemon.log_rows().len(), 1);
}

#[test]
fn a_store_locked_longer_than_postfix_waits_defers_and_nothing_is_sent_twice() {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let daemon = Daemon::start(upstream.daemon_options(base.path()));
    let conv = daemon.conversation(("alice", "alice@a-mail.example"), ("bob", BOB));
    // Postfix waits 30 s for the reply to the dot (smtp_data_done_timeout
    // in its main.cf above); the lock lasts longer than that.
    let mut locker = hold_write_lock(&daemon.db_path());
    let postfix = Postfix::start(base.path(), daemon.port, FAST_RETRIES);
    for i in 0..5 {
        postfix.submit(&[&conv.alias_a], &format!("during the lock {i}"));
    }
    postfix.wait_for(base.path(), "a 451 in Postfix's log", || {
        postfix.log(base.path()).contains("451 4.3.0").then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(35));
    assert!(
        captured(&upstream.dir).is_empty(),
        "nothing forwarded during the lock"
    );
    locker.kill().unwrap();
    locker.wait().unwrap();
    postfix.wait_for(base.path(), "5 messages at the upstream", || {
        (captured(&upstream.dir).len() >= 5).then_some(())
    });
    eventually("Postfix's queue to drain", || {
        postfix.queue_is_empty().then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(captured(&upstream.dir).len(), 5, "each message once");
    assert_eq!(daemon.log_rows().len(), 5, "each with its one row");
    let log = postfix.log(base.path());
    assert!(
        !log.contains("timeout"),
        "Postfix never gave up waiting for our reply:\n{log}"
    );
}

#[test]
fn postfix_sends_200_messages_on_one_connection_without_a_421() {
    require("smtp-source", "postfix");
    let base = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::outbox();
    // The rate limits are not what this test is about.
    options.extra_smtp = "[smtp.limits]\nmax_messages_per_client_per_minute = 1000\n\
                          max_messages_per_alias_per_hour = 1000"
        .into();
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(("alice", "alice@a-mail.example"), ("bob", BOB));
    // One connection to us at a time, reused for as long as mail is queued.
    let routing = format!(
        "relayhost = [127.0.0.1]:{}\ndefault_destination_concurrency_limit = 1\n",
        daemon.port
    );
    let postfix = Postfix::start_with(
        Postfix::turn(),
        base.path(),
        free_port(),
        &routing,
        FAST_RETRIES,
    );
    // smtp-source submits 200 messages to Postfix over 5 sessions.
    let out = Command::new("smtp-source")
        .args(["-c", "-s", "5", "-m", "200", "-f", BOB, "-t", &conv.alias_a])
        .arg(format!("127.0.0.1:{}", postfix.port))
        .output()
        .expect("run smtp-source");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    postfix.wait_for(base.path(), "200 messages in the outbox", || {
        (captured(&daemon.outbox()).len() >= 200).then_some(())
    });
    let log = postfix.log(base.path());
    assert!(!log.contains(" 421 "), "Postfix was refused:\n{log}");
    // Postfix logs how often it reused the connection it delivered on.
    let most_reuse = log
        .split("conn_use=")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u32>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most_reuse > 50,
        "the connection was reused {most_reuse} times at most:\n{log}"
    );
    assert_eq!(daemon.log_rows().len(), 200);
}

/// A bounce made by a real MTA, not a fixture: Postfix is anonrelay's
/// upstream, the recipient's server (smtp-sink) refuses the forwarded
/// message at RCPT, and Postfix's own bounce daemon sends its DSN to the
/// VERP address. anonrelay turns it into one notice, sent back through
/// Postfix to the sender's inbox (a second smtp-sink), that names only
/// aliases: no real address of the recipient, no host of theirs.
#[test]
fn a_bounce_made_by_postfix_becomes_one_notice_naming_only_aliases() {
    // The turn first: Postfix's port is picked here and bound later.
    let turn = Postfix::turn();
    let base = tempfile::tempdir().unwrap();
    let refusing = Sink::start(&base.path().join("recipient-mx"), &["-f", "RCPT"]);
    let inbox = Sink::start(&base.path().join("sender-inbox"), &[]);
    let postfix_port = free_port();
    let mut options = DaemonOptions::upstream(&format!("smtp://127.0.0.1:{postfix_port}"));
    // A circle: Postfix's transport must name our port before we can
    // start (our start checks Postfix), so this one port is chosen here.
    options.smtp_port = free_port();
    let mut daemon = Daemon::configure(options);
    let conv = daemon.conversation(("alice", "alice@a-mail.example"), ("bob", BOB));
    let transport = base.path().join("transport");
    std::fs::write(
        &transport,
        format!(
            "relay.test smtp:[127.0.0.1]:{}\n\
             a-mail.example smtp:[127.0.0.1]:{}\n\
             b-mail.example smtp:[127.0.0.1]:{}\n",
            daemon.port, refusing.port, inbox.port
        ),
    )
    .unwrap();
    let routing = format!("transport_maps = texthash:{}\n", transport.display());
    let postfix = Postfix::start_with(turn, base.path(), postfix_port, &routing, FAST_RETRIES);
    daemon.spawn();

    let (ok, transcript) = swaks_message(
        &daemon.server(),
        BOB,
        &conv.alias_a,
        "dinner on friday",
        "See you there.",
    );
    assert!(ok, "{transcript}");
    let notices = eventually("the notice in the sender's inbox", || {
        let dumps = inbox.dumps();
        (!dumps.is_empty()).then_some(dumps)
    });
    let log = postfix.log(base.path());
    assert!(
        log.contains("status=bounced"),
        "Postfix bounced the message itself:\n{log}"
    );
    eventually("Postfix's queue to drain", || {
        postfix.queue_is_empty().then_some(())
    });
    assert_eq!(inbox.dumps().len(), 1, "one notice");
    let dump = String::from_utf8_lossy(&notices[0]).into_owned();
    assert!(
        dump.contains(&format!("X-Rcpt-Args: <{BOB}>")),
        "the notice goes to the sender:\n{dump}"
    );
    assert!(
        dump.contains("X-Mail-Args: <>"),
        "with the null sender:\n{dump}"
    );
    // What anonrelay wrote: the dump without smtp-sink's envelope lines and
    // the Received fields Postfix and smtp-sink added on the way.
    let notice = written_by_anonrelay(&dump);
    assert!(
        notice.contains("Subject: Undelivered: dinner on friday"),
        "{notice}"
    );
    assert!(
        notice.contains(&format!("From: <{}>", conv.alias_a)),
        "from the alias Bob wrote to:\n{notice}"
    );
    for secret in [
        "alice@a-mail.example",
        "a-mail.example",
        "postfix.test",
        "127.0.0.1",
        "MAILER-DAEMON",
        "smtp-sink",
    ] {
        assert!(
            !notice.to_lowercase().contains(&secret.to_lowercase()),
            "the notice shows {secret}:\n{notice}"
        );
    }
    assert!(
        daemon.log_rows().len() == 1,
        "the forwarded message is logged once; the notice is no message between users"
    );
}

/// An smtp-sink dump without its `X-…` envelope lines and the Received
/// fields (with their folded lines) that the MTAs on the way put on top.
fn written_by_anonrelay(dump: &str) -> String {
    let mut lines = dump.split_inclusive('\n').peekable();
    while let Some(line) = lines.peek() {
        let folded = line.starts_with([' ', '\t']);
        if line.starts_with("X-") || line.starts_with("Received:") || folded {
            lines.next();
        } else {
            break;
        }
    }
    lines.collect()
}
