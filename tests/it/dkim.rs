//! Outbound DKIM: what anonrelay sends verifies with mail-auth (in process,
//! DNS answered from a seeded cache) and with an independent verifier,
//! Python's dkimpy (tests/peers/dkim_verify.py), against the DNS record that
//! `anonrelay dkim keygen` or `anonrelay check-config` tells the admin to
//! publish. No real DNS is ever asked.

use crate::common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anonrelay::deliver::composed::draft::{compose, Draft};
use anonrelay::deliver::dkim::{DnsRecord, KeyAlgorithm, Signer};
use anonrelay::rewrite;
use common::*;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

const SELECTOR: &str = "test2026";

// ---------------------------------------------------------------- helpers

/// TXT answers for the verifier; a name not seeded is simply absent.
struct SeededTxt(HashMap<Box<str>, Txt>);

impl ResolverCache<Box<str>, Txt> for SeededTxt {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

/// mail-auth's verdict on every DKIM-Signature of `message`, with DNS
/// holding exactly `record`. Ok only for a single signature that passes
/// with d= the alias domain.
fn mail_auth_verify(message: &[u8], record: &DnsRecord) -> Result<(), String> {
    let key = DomainKey::parse(record.value.as_bytes())
        .map_err(|e| format!("mail-auth cannot parse the published record: {e}"))?;
    let cache = SeededTxt(HashMap::from([(
        format!("{}.", record.name).into_boxed_str(),
        Txt::from(key),
    )]));
    // No name servers: a lookup outside the cache fails at once.
    let authenticator = MessageAuthenticator::new(
        ResolverConfig::from_parts(None, vec![], vec![]),
        ResolverOpts::default(),
    )
    .map_err(|e| e.to_string())?;
    let parsed = AuthenticatedMessage::parse(message).ok_or("unparsable message")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let outputs = runtime
        .block_on(authenticator.verify_dkim(Parameters::new(&parsed).with_txt_cache(&cache)));
    match outputs.as_slice() {
        [one] if one.result() == &DkimResult::Pass => {
            let d = one.signature().map(|s| s.d.clone()).unwrap_or_default();
            if d == ALIAS_DOMAIN {
                Ok(())
            } else {
                Err(format!("d={d}"))
            }
        }
        other => Err(format!(
            "{:?}",
            other.iter().map(|o| o.result()).collect::<Vec<_>>()
        )),
    }
}

/// dkimpy's verdict per file: (all passed, its output).
fn dkimpy_verify(record: &DnsRecord, files: &[PathBuf]) -> (bool, String) {
    require(PYTHON, "python3");
    let importable = Command::new(PYTHON)
        .args(["-c", "import dkim, nacl"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        importable,
        "dkimpy is missing: run scripts/test.sh, or `apt-get install python3-dkim`"
    );
    let out = Command::new(PYTHON)
        .arg(repo().join("tests/peers/dkim_verify.py"))
        .arg("--record")
        .arg(format!("{}={}", record.name, record.value))
        .args(files)
        .output()
        .expect("run dkim_verify.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let passes = text.lines().filter(|l| l.starts_with("PASS ")).count();
    (out.status.success() && passes == files.len(), text)
}

/// dkimpy's refusal of one file: its own `FAIL FILE reason` line (returned),
/// so a crashed or missing verifier does not count as a refusal.
fn dkimpy_refusal(record: &DnsRecord, file: &Path) -> String {
    let (ok, report) = dkimpy_verify(record, std::slice::from_ref(&file.to_path_buf()));
    let fail_line = format!("FAIL {} ", file.display());
    match report.lines().find(|l| l.starts_with(&fail_line)) {
        Some(line) if !ok => line.to_owned(),
        _ => panic!("dkimpy did not refuse {}:\n{report}", file.display()),
    }
}

/// The record an admin publishes, read back from the zone-file line we print.
fn parse_zone_line(line: &str) -> DnsRecord {
    let (name, rest) = line
        .split_once(" IN TXT ")
        .unwrap_or_else(|| panic!("not a TXT zone line: {line}"));
    DnsRecord {
        name: name.trim_end_matches('.').to_owned(),
        value: rest.split('"').skip(1).step_by(2).collect(),
    }
}

fn private_file(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A 2048-bit RSA key made the way the README tells admins to.
fn openssl_rsa_key(path: &Path) {
    let path = path.as_os_str();
    openssl([
        "genpkey".as_ref(),
        "-algorithm".as_ref(),
        "RSA".as_ref(),
        "-pkeyopt".as_ref(),
        "rsa_keygen_bits:2048".as_ref(),
        "-out".as_ref(),
        path,
    ]);
    private_file(std::path::Path::new(path));
}

fn signer_from_file(path: &Path) -> Signer {
    Signer::from_pem(&std::fs::read(path).unwrap(), path, SELECTOR, ALIAS_DOMAIN).unwrap()
}

fn ed25519_signer(dir: &Path) -> Signer {
    let (pem, _) = anonrelay::deliver::dkim::generate_ed25519().unwrap();
    let path = dir.join("ed25519.pem");
    std::fs::write(&path, pem).unwrap();
    signer_from_file(&path)
}

fn rsa_signer(dir: &Path) -> Signer {
    let path = dir.join("rsa.pem");
    openssl_rsa_key(&path);
    signer_from_file(&path)
}

/// The rewrite of `raw` as the relay does it for a message from `sender`.
fn forwarded(raw: &[u8], sender: &str) -> Vec<u8> {
    rewrite_in_process(raw, sender, Some("Night Owl")).expect("the fixture rewrites")
}

fn composed() -> Vec<u8> {
    compose(&Draft {
        hostname: "mx.relay.test",
        from_alias: "aaaaaaaaaaaaaaaaaaaa",
        from_display_name: Some("Night Owl"),
        alias_domain: ALIAS_DOMAIN,
        to_email: "bob@b.example",
        subject: "Grüße from the hook",
        text: Some("Hello Bob,\nsee you.\n"),
        html: Some("<p>Hello Bob</p>"),
        message_id: "m1@relay.test",
        now: 1_800_000_000,
    })
    .unwrap()
}

/// Changes one signed header value: any verifier must now fail.
fn tamper_subject(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message).into_owned();
    assert!(text.contains("\r\nSubject: "), "no Subject to tamper with");
    text.replacen("\r\nSubject: ", "\r\nSubject: X", 1)
        .into_bytes()
}

#[derive(serde::Deserialize)]
struct Manifest {
    fixture: Vec<ManifestEntry>,
}

#[derive(serde::Deserialize)]
struct ManifestEntry {
    file: String,
    expect: String,
    #[serde(default)]
    sender: String,
}

/// The participant the fixtures are written by (fixtures/README.md).
const FIXTURE_SENDER: &str = "bob.real@sender-mail.example";

// ------------------------------------------------------------------ tests

#[test]
fn mail_auth_verifies_signed_forwarded_and_composed_messages_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let gmail = std::fs::read(repo().join("fixtures/gmail-plain.eml")).unwrap();
    for signer in [ed25519_signer(dir.path()), rsa_signer(dir.path())] {
        let record = signer.dns_record();
        assert_eq!(record.name, format!("{SELECTOR}._domainkey.{ALIAS_DOMAIN}"));
        for (what, message) in [
            ("forwarded", forwarded(&gmail, FIXTURE_SENDER)),
            ("composed", composed()),
        ] {
            let signed = signer.sign(message.clone()).unwrap();
            assert!(signed.starts_with(b"DKIM-Signature: "), "{what}");
            assert!(signed.ends_with(&message), "{what}: message changed");
            rewrite::check_line_endings(&signed).unwrap();
            mail_auth_verify(&signed, &record)
                .unwrap_or_else(|e| panic!("{} {what}: {e}", signer.algorithm()));
            // The verifier is not vacuous: a changed header, or another key, fails.
            assert!(mail_auth_verify(&tamper_subject(&signed), &record).is_err());
            let other_dir = dir.path().join("other");
            std::fs::create_dir_all(&other_dir).unwrap();
            let other = ed25519_signer(&other_dir).dns_record();
            assert!(mail_auth_verify(
                &signed,
                &DnsRecord {
                    name: record.name.clone(),
                    ..other
                }
            )
            .is_err());
        }
    }
}

/// Issue 6 point 4: the signature verifies on the rewritten output of
/// every fixture that is forwarded, with both key types and both verifiers.
#[test]
fn every_forwarded_fixture_signs_and_verifies_with_mail_auth_and_dkimpy() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("fixtures/manifest.toml")).unwrap();
    let manifest: Manifest = toml::from_str(&text).unwrap();
    let entries: Vec<ManifestEntry> = manifest
        .fixture
        .into_iter()
        .filter(|f| f.expect == "forward")
        .collect();
    assert!(entries.len() >= 10, "too few forwarded fixtures");
    for signer in [ed25519_signer(dir.path()), rsa_signer(dir.path())] {
        let record = signer.dns_record();
        let out_dir = dir.path().join(signer.algorithm().to_string());
        std::fs::create_dir_all(&out_dir).unwrap();
        let mut files = Vec::new();
        for entry in &entries {
            let raw = std::fs::read(repo().join("fixtures").join(&entry.file)).unwrap();
            let signed = signer.sign(forwarded(&raw, &entry.sender)).unwrap();
            mail_auth_verify(&signed, &record)
                .unwrap_or_else(|e| panic!("{} {}: {e}", signer.algorithm(), entry.file));
            let path = out_dir.join(&entry.file);
            std::fs::write(&path, &signed).unwrap();
            files.push(path);
        }
        let (ok, report) = dkimpy_verify(&record, &files);
        assert!(ok, "dkimpy, {} key:\n{report}", signer.algorithm());
    }
}

#[test]
fn dkimpy_rejects_a_tampered_signed_message() {
    let dir = tempfile::tempdir().unwrap();
    let signer = ed25519_signer(dir.path());
    let signed = signer.sign(composed()).unwrap();
    let good = dir.path().join("good.eml");
    let bad = dir.path().join("bad.eml");
    std::fs::write(&good, &signed).unwrap();
    std::fs::write(&bad, tamper_subject(&signed)).unwrap();
    let (ok, report) = dkimpy_verify(&signer.dns_record(), std::slice::from_ref(&good));
    assert!(ok, "{report}");
    dkimpy_refusal(&signer.dns_record(), &bad);
    // And with no published record at all.
    let nowhere = DnsRecord {
        name: "other._domainkey.relay.test".into(),
        value: signer.dns_record().value,
    };
    let refusal = dkimpy_refusal(&nowhere, &good);
    assert!(refusal.contains("missing public key"), "{refusal}");
}

/// The daemon end to end: a message forwarded over SMTP and one composed
/// through the hook, as captured by the real aiosmtpd upstream, verify with
/// dkimpy and mail-auth against the record the admin was told to publish.
fn daemon_signs_forwarded_and_composed_mail(algorithm: KeyAlgorithm) {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let mut options = upstream.daemon_options(base.path());
    let hook = Hook::configure(base.path(), &mut options);
    let mut daemon = Daemon::configure(options);
    let key = base.path().join("dkim.pem");
    let record = match algorithm {
        // Ed25519: the key and record come from `anonrelay dkim keygen`.
        KeyAlgorithm::Ed25519 => {
            let out = daemon.cli(&[
                "dkim",
                "keygen",
                "--selector",
                SELECTOR,
                "--out",
                &key.display().to_string(),
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            parse_zone_line(String::from_utf8_lossy(&out.stdout).trim())
        }
        // RSA: made with openssl; `check-config` prints the record.
        KeyAlgorithm::Rsa => {
            openssl_rsa_key(&key);
            DnsRecord {
                name: String::new(),
                value: String::new(),
            }
        }
    };
    let mut config = std::fs::read_to_string(&daemon.config).unwrap();
    config.push_str(&format!(
        "\n[dkim]\nselector = \"{SELECTOR}\"\nkey_file = \"{}\"\nalgorithm = \"{algorithm}\"\n",
        key.display()
    ));
    std::fs::write(&daemon.config, config).unwrap();
    let check = daemon.cli(&["check-config"]);
    let check_out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success(),
        "{check_out}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let printed = parse_zone_line(
        check_out
            .lines()
            .find(|l| l.contains(" IN TXT "))
            .unwrap_or_else(|| panic!("check-config printed no record: {check_out}")),
    );
    let record = if algorithm == KeyAlgorithm::Rsa {
        printed
    } else {
        assert_eq!(printed, record, "check-config and keygen disagree");
        record
    };
    assert_eq!(record.name, format!("{SELECTOR}._domainkey.{ALIAS_DOMAIN}"));
    assert!(
        record
            .value
            .starts_with(&format!("v=DKIM1; k={algorithm}; p=")),
        "{}",
        record.value
    );
    daemon.spawn();

    let alice = "alice.real@a-mail.example";
    let bob = "bob.real@b-mail.example";
    let conv = daemon.conversation(("alice", alice), ("bob", bob));
    // Forwarded: Bob writes to Alice's alias over SMTP.
    let (ok, transcript) = swaks_message(
        &daemon.server(),
        bob,
        &conv.alias_a,
        "signed on the way",
        "Hello Alice\r\n.leading dot\r\n",
    );
    assert!(ok, "{transcript}");
    wait_captured(&upstream.dir, 1);
    // Composed: Alice writes to Bob through the hook.
    let body = serde_json::json!({
        "conversation_id": conv.id, "from_user": "alice",
        "subject": "Grüße", "text": "Hi Bob\n", "html": "<p>Hi Bob</p>",
    });
    let (status, sent) = hook.authed("POST", "/v1/messages", Some(&body.to_string()));
    assert_eq!(status, 200, "hook: {sent}");
    let captured = wait_captured(&upstream.dir, 2);

    let mut files = Vec::new();
    for (index, (envelope, message)) in captured.iter().enumerate() {
        let what = if index == 0 { "forwarded" } else { "composed" };
        assert_eq!(
            envelope["rcpt_tos"][0],
            if index == 0 { alice } else { bob },
            "{what}"
        );
        mail_auth_verify(message, &record).unwrap_or_else(|e| panic!("{what}: {e}"));
        let path = base.path().join(format!("{what}.eml"));
        std::fs::write(&path, message).unwrap();
        files.push(path);
    }
    let (ok, report) = dkimpy_verify(&record, &files);
    assert!(ok, "dkimpy:\n{report}");
    // The upstream sees the signature the verifiers saw: nothing after it.
    let tampered = base.path().join("tampered.eml");
    std::fs::write(&tampered, tamper_subject(&captured[0].1)).unwrap();
    dkimpy_refusal(&record, &tampered);
}

#[test]
fn daemon_output_verifies_with_dkimpy_ed25519_key_from_keygen() {
    daemon_signs_forwarded_and_composed_mail(KeyAlgorithm::Ed25519);
}

#[test]
fn daemon_output_verifies_with_dkimpy_rsa_key_from_openssl() {
    daemon_signs_forwarded_and_composed_mail(KeyAlgorithm::Rsa);
}

#[test]
fn without_dkim_section_nothing_is_signed() {
    let daemon = Daemon::start(DaemonOptions::outbox());
    let conv = daemon.conversation(("alice", "alice@a.example"), ("bob", "bob@b.example"));
    let (ok, transcript) = swaks(&[
        "--server",
        &daemon.server(),
        "--from",
        "bob@b.example",
        "--to",
        &conv.alias_a,
    ]);
    assert!(ok, "{transcript}");
    let captured = wait_captured(&daemon.outbox(), 1);
    assert!(header(&captured[0].1, "DKIM-Signature").is_none());
}

#[test]
fn keygen_writes_a_private_key_openssl_agrees_with_and_never_overwrites() {
    let daemon = Daemon::configure(DaemonOptions::outbox());
    let key = daemon.dir.path().join("new.pem");
    let key_arg = key.display().to_string();
    let out = daemon.cli(&["dkim", "keygen", "--out", &key_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Without --selector or [dkim]: the default selector.
    let record = parse_zone_line(stdout.trim());
    assert_eq!(record.name, "anonrelay._domainkey.relay.test");
    assert!(
        stdout.starts_with("anonrelay._domainkey.relay.test. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{stdout}"
    );
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // openssl reads the key and derives the published public key.
    let der = openssl(["pkey", "-pubout", "-outform", "DER", "-in", &key_arg]);
    let raw_public = &der[der.len() - 32..];
    assert!(record
        .value
        .ends_with(&format!("p={}", data_encoding::BASE64.encode(raw_public))));

    let before = std::fs::read(&key).unwrap();
    let again = daemon.cli(&["dkim", "keygen", "--out", &key_arg]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    assert_eq!(std::fs::read(&key).unwrap(), before);

    let rsa = daemon.cli(&[
        "dkim",
        "keygen",
        "--algorithm",
        "rsa",
        "--out",
        &format!("{key_arg}.rsa"),
    ]);
    assert!(!rsa.status.success());
    assert!(String::from_utf8_lossy(&rsa.stderr).contains("openssl genpkey"));
    let bad = daemon.cli(&[
        "dkim",
        "keygen",
        "--selector",
        "a b",
        "--out",
        &format!("{key_arg}.x"),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--selector"));
}

#[test]
fn bad_dkim_keys_stop_serve_and_check_config_naming_key_and_path() {
    let daemon = Daemon::configure(DaemonOptions::outbox());
    let dir = daemon.dir.path();
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    let not_pem = dir.join("not-a-key.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    private_file(&not_pem);
    let small = dir.join("rsa-1024.pem");
    require("openssl", "openssl");
    assert!(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out"
        ])
        .arg(&small)
        .output()
        .unwrap()
        .status
        .success());
    private_file(&small);
    let open = dir.join("world-readable.pem");
    std::fs::copy(&small, &open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    // As every secret file: nobody but the owner may write it.
    let shared = dir.join("group-writable.pem");
    std::fs::copy(&small, &shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o660)).unwrap();
    let good = dir.join("good.pem");
    let out = daemon.cli(&["dkim", "keygen", "--out", &good.display().to_string()]);
    assert!(out.status.success());
    let missing = dir.join("missing.pem");
    let section = |path: &Path, extra: &str| {
        format!(
            "{text}\n[dkim]\nselector = \"{SELECTOR}\"\nkey_file = \"{}\"\n{extra}",
            path.display()
        )
    };
    let cases = [
        (section(&missing, ""), "missing.pem"),
        (section(&not_pem, ""), "not-a-key.pem"),
        (section(&small, ""), "rsa-1024.pem"),
        (section(&open, ""), "world-readable.pem"),
        (section(&shared, ""), "mode 660"),
        (section(&good, "algorithm = \"rsa\"\n"), "dkim.algorithm"),
        (section(&good, "algorithm = \"dsa\"\n"), "algorithm"),
        (
            format!(
                "{text}\n[dkim]\nselector = \"bad selector\"\nkey_file = \"{}\"\n",
                good.display()
            ),
            "dkim.selector",
        ),
        (
            format!("{text}\n[dkim]\nselector = \"{SELECTOR}\"\n"),
            "key_file",
        ),
    ];
    for (config, expected) in cases {
        std::fs::write(&daemon.config, &config).unwrap();
        for command in ["check-config", "serve"] {
            let out = daemon.cli(&[command]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command} accepted:\n{config}");
            assert!(
                stderr.contains(expected),
                "{command}: error does not name `{expected}`: {stderr}"
            );
            if expected.ends_with(".pem") {
                assert!(stderr.contains("dkim.key_file"), "{command}: {stderr}");
            }
        }
    }
    std::fs::write(&daemon.config, section(&good, "algorithm = \"ed25519\"\n")).unwrap();
    let out = daemon.cli(&["check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
