//! Inbound SPF/DKIM/DMARC (issue 7, "What must be shown" 1): a real SMTP
//! client (swaks) talks to the real daemon, whose DNS is a seeded file
//! (`[verify] dns_records`) and nothing else. The partner's mail is signed
//! by an independent signer, Python's dkimpy (tests/peers/dkim_sign.py).
//! A second client address (127.0.0.2) plays the forger's host.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const SELECTOR: &str = "mail2026";
const OWNER: (&str, &str) = ("u-alice", "alice@owner.example");
/// Publishes SPF for 127.0.0.1 only, a DKIM key and DMARC p=reject.
const PARTNER: (&str, &str) = ("u-bob", "bob@partner.example");
/// Publishes SPF for 127.0.0.1 only and no DMARC record.
const NO_DMARC: (&str, &str) = ("u-dave", "dave@nodmarc.example");
/// Nothing about this domain is seeded: every lookup is a DNS failure.
const UNSEEDED: (&str, &str) = ("u-erin", "erin@unseeded.example");
/// The guesser's own address: SPF for the forger's host, no DMARC.
const GUESSER: &str = "eve@forger.example";
const GENUINE_IP: &str = "127.0.0.1";
const FORGER_IP: &str = "127.0.0.2";

/// An RSA key for dkimpy (PKCS#1 PEM) and its DKIM record's `p=` value.
fn partner_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("partner-dkim.pem");
    let key_arg = key.as_os_str();
    openssl([
        "genrsa".as_ref(),
        "-traditional".as_ref(),
        "-out".as_ref(),
        key_arg,
        "2048".as_ref(),
    ]);
    let der = openssl([
        "rsa".as_ref(),
        "-pubout".as_ref(),
        "-outform".as_ref(),
        "DER".as_ref(),
        "-in".as_ref(),
        key_arg,
    ]);
    (key, data_encoding::BASE64.encode(&der))
}

/// The whole DNS the daemon sees.
fn write_seeds(dir: &Path, public_key: &str) -> PathBuf {
    let path = dir.join("dns.toml");
    std::fs::write(
        &path,
        format!(
            r#"# Parents asked by the DMARC tree walk: they have no record.
nxdomain = ["_dmarc.example", "_dmarc.nodmarc.example", "_dmarc.forger.example"]

[txt]
"partner.example" = "v=spf1 ip4:{GENUINE_IP} -all"
"_dmarc.partner.example" = "v=DMARC1; p=reject"
"{SELECTOR}._domainkey.partner.example" = "v=DKIM1; k=rsa; p={public_key}"
"nodmarc.example" = "v=spf1 ip4:{GENUINE_IP} -all"
"forger.example" = "v=spf1 ip4:{FORGER_IP} -all"
"#
        ),
    )
    .unwrap();
    path
}

fn verifying_daemon(seeds: &Path, no_dmarc: &str) -> Daemon {
    let mut options = DaemonOptions::outbox();
    options.verify_section = format!(
        "[verify]\nmode = \"enforce\"\nno_dmarc = \"{no_dmarc}\"\ndns_timeout_secs = 5\ndns_records = \"{}\"",
        seeds.display()
    );
    Daemon::configure(options)
}

/// A reply as the partner's mail client writes it (CRLF line endings).
fn reply_message(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Someone <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Date: Mon, 23 Nov 2026 15:00:00 +0000\r\n\
         Message-ID: <{subject}@mail.partner.example>\r\n\r\n\
         See you on Tuesday.\r\n"
    )
    .into_bytes()
}

/// `message` with a DKIM-Signature by the partner's domain (dkimpy).
fn dkimpy_signed(dir: &Path, key: &Path, message: &[u8], name: &str) -> Vec<u8> {
    require(PYTHON, "python3");
    let input = dir.join(format!("{name}.unsigned.eml"));
    let output = dir.join(format!("{name}.signed.eml"));
    std::fs::write(&input, message).unwrap();
    let out = Command::new(PYTHON)
        .arg(repo().join("tests/peers/dkim_sign.py"))
        .arg("--key")
        .arg(key)
        .args(["--selector", SELECTOR, "--domain", "partner.example"])
        .arg(&input)
        .arg(&output)
        .output()
        .expect("run dkim_sign.py");
    assert!(
        out.status.success(),
        "dkim_sign.py (apt-get install python3-dkim): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&output).unwrap()
}

/// Sends `message` from `source_ip` with swaks; returns the final reply
/// code to DATA and the transcript.
fn send(
    daemon: &Daemon,
    source_ip: &str,
    mail_from: &str,
    to: &str,
    message: &[u8],
) -> (String, String) {
    let file = daemon
        .dir
        .path()
        .join(format!("send-{}.eml", rand_suffix()));
    std::fs::write(&file, message).unwrap();
    let (_, transcript) = swaks(&[
        "--server",
        &daemon.server(),
        "--local-interface",
        source_ip,
        "--ehlo",
        "mail.partner.example",
        "--from",
        mail_from,
        "--to",
        to,
        "--data",
        &format!("@{}", file.display()),
    ]);
    let final_code = final_reply(&transcript)
        .get(..3)
        .unwrap_or_default()
        .to_owned();
    (final_code, transcript)
}

/// The server's whole reply to the end of data, as swaks saw it.
fn final_reply(transcript: &str) -> String {
    let replies: Vec<&str> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix("<-  ").or_else(|| l.strip_prefix("<** ")))
        .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
        .collect();
    // greeting, EHLO, MAIL, RCPT, DATA (354), end of data, QUIT
    replies.get(5).map(|r| r.to_string()).unwrap_or_default()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn outbox_count(daemon: &Daemon) -> usize {
    captured(&daemon.outbox()).len()
}

/// The daemon log says which check failed, with the alias, and nothing
/// about the participant: no IP, no address, no domain, no EHLO name.
fn assert_log_private(daemon: &Daemon) {
    let log = daemon.log();
    for secret in [
        FORGER_IP,
        GENUINE_IP,
        "partner.example",
        "nodmarc.example",
        "unseeded.example",
        "bob@",
        "dave@",
        "mallory@",
    ] {
        assert!(
            !log.contains(secret),
            "daemon log mentions {secret}:\n{log}"
        );
    }
}

#[test]
fn genuine_replies_pass_forged_and_tampered_ones_are_refused_under_p_reject() {
    let work = tempfile::tempdir().unwrap();
    let (key, public_key) = partner_key(work.path());
    let seeds = write_seeds(work.path(), &public_key);
    let mut daemon = verifying_daemon(&seeds, "spf_or_dkim");
    let conv = daemon.conversation(OWNER, PARTNER);
    daemon.spawn();
    let bob = PARTNER.1;

    // Genuine: signed by partner.example and sent from its SPF-listed host.
    let genuine = dkimpy_signed(
        work.path(),
        &key,
        &reply_message(bob, &conv.alias_a, "genuine"),
        "genuine",
    );
    let (code, transcript) = send(&daemon, GENUINE_IP, bob, &conv.alias_a, &genuine);
    assert_eq!(code, "250", "{transcript}\n{}", daemon.log());
    assert_eq!(outbox_count(&daemon), 1);

    // Forged: same From, from a host SPF does not list, no signature.
    let forged = reply_message(bob, &conv.alias_a, "forged");
    let (code, transcript) = send(&daemon, FORGER_IP, bob, &conv.alias_a, &forged);
    assert_eq!(code, "550", "{transcript}");
    assert!(transcript.contains("5.7.1"), "{transcript}");
    assert_eq!(outbox_count(&daemon), 1, "a forged reply was forwarded");

    // A valid signature carries DMARC even when SPF fails (the message
    // travelled through another host): this is what tampering must break.
    let relayed = dkimpy_signed(
        work.path(),
        &key,
        &reply_message(bob, &conv.alias_a, "relayed"),
        "relayed",
    );
    let (code, transcript) = send(&daemon, FORGER_IP, bob, &conv.alias_a, &relayed);
    assert_eq!(code, "250", "{transcript}\n{}", daemon.log());
    assert_eq!(outbox_count(&daemon), 2);

    // Broken signature: the body changed after signing, SPF fails.
    let mut tampered = dkimpy_signed(
        work.path(),
        &key,
        &reply_message(bob, &conv.alias_a, "tampered"),
        "tampered",
    );
    let text = String::from_utf8(tampered).unwrap();
    assert!(text.contains("See you on Tuesday."));
    tampered = text
        .replace("See you on Tuesday.", "Send the money today.")
        .into_bytes();
    let (code, transcript) = send(&daemon, FORGER_IP, bob, &conv.alias_a, &tampered);
    assert_eq!(code, "550", "{transcript}");
    assert!(transcript.contains("5.7.1"), "{transcript}");
    assert_eq!(outbox_count(&daemon), 2, "a tampered reply was forwarded");

    // Another user of the partner's provider: her own genuinely signed
    // message, replayed from her host with the partner's MAIL FROM. Her
    // DKIM and DMARC pass, but they speak for her header From, not for the
    // partner's envelope, and SPF does not list her host.
    let mallory = "mallory@partner.example";
    let replayed = dkimpy_signed(
        work.path(),
        &key,
        &reply_message(mallory, &conv.alias_a, "replayed"),
        "replayed",
    );
    let (code, transcript) = send(&daemon, FORGER_IP, bob, &conv.alias_a, &replayed);
    assert_eq!(code, "550", "{transcript}");
    assert!(transcript.contains("5.7.1"), "{transcript}");
    assert_eq!(outbox_count(&daemon), 2, "a replayed message was forwarded");

    let log = daemon.log();
    assert!(log.contains("check=\"no_envelope_spf_pass\""), "{log}");
    assert_eq!(log.matches("check=\"dmarc_fail\"").count(), 2, "{log}");
    assert!(
        log.contains(conv.alias_a.split('@').next().unwrap()),
        "{log}"
    );
    assert_log_private(&daemon);
}

#[test]
fn without_dmarc_spf_decides_unless_the_policy_accepts() {
    let work = tempfile::tempdir().unwrap();
    let (_, public_key) = partner_key(work.path());
    let seeds = write_seeds(work.path(), &public_key);
    let dave = NO_DMARC.1;

    let mut strict = verifying_daemon(&seeds, "spf_or_dkim");
    let conv = strict.conversation(OWNER, NO_DMARC);
    strict.spawn();
    let message = reply_message(dave, &conv.alias_a, "nodmarc");
    let (code, transcript) = send(&strict, GENUINE_IP, dave, &conv.alias_a, &message);
    assert_eq!(code, "250", "SPF pass: {transcript}\n{}", strict.log());
    let (code, transcript) = send(&strict, FORGER_IP, dave, &conv.alias_a, &message);
    assert_eq!(code, "550", "SPF fail, no DKIM: {transcript}");
    assert_eq!(outbox_count(&strict), 1);
    assert!(
        strict.log().contains("check=\"no_spf_or_dkim_pass\""),
        "{}",
        strict.log()
    );
    assert_log_private(&strict);

    let mut lenient = verifying_daemon(&seeds, "accept");
    let conv = lenient.conversation(OWNER, NO_DMARC);
    lenient.spawn();
    let message = reply_message(dave, &conv.alias_a, "nodmarc-accepted");
    let (code, transcript) = send(&lenient, FORGER_IP, dave, &conv.alias_a, &message);
    assert_eq!(
        code,
        "250",
        "no_dmarc = accept: {transcript}\n{}",
        lenient.log()
    );
    assert_eq!(outbox_count(&lenient), 1);
}

#[test]
fn a_dns_failure_defers_with_451_and_forwards_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (_, public_key) = partner_key(work.path());
    let seeds = write_seeds(work.path(), &public_key);
    let mut daemon = verifying_daemon(&seeds, "accept");
    let conv = daemon.conversation(OWNER, UNSEEDED);
    daemon.spawn();
    let erin = UNSEEDED.1;
    let message = reply_message(erin, &conv.alias_a, "unseeded");
    let (code, transcript) = send(&daemon, GENUINE_IP, erin, &conv.alias_a, &message);
    assert_eq!(code, "451", "{transcript}\n{}", daemon.log());
    assert!(transcript.contains("4.4.3"), "{transcript}");
    assert_eq!(outbox_count(&daemon), 0);
    assert_log_private(&daemon);
}

/// The two ways a guesser who knows an alias tries an address as the
/// partner's, from a host that is not the partner's: in the envelope (with
/// their own header From) or in the header From (with their own envelope).
fn guesses(guess: &str, alias: &str, subject: &str) -> [(String, Vec<u8>); 2] {
    [
        (guess.to_owned(), reply_message(GUESSER, alias, subject)),
        (GUESSER.to_owned(), reply_message(guess, alias, subject)),
    ]
}

/// The guess oracle (issue 11, item 4): a right and a wrong guess of the
/// partner's address get the same final reply, byte for byte, in the
/// envelope and in the header From. The wrong guess is on the partner's
/// own domain, so the DNS the message claims is the same for both.
#[test]
fn a_right_and_a_wrong_guess_of_the_partners_address_get_the_same_refusal() {
    let work = tempfile::tempdir().unwrap();
    let (_, public_key) = partner_key(work.path());
    let seeds = write_seeds(work.path(), &public_key);
    for no_dmarc in ["spf_or_dkim", "accept"] {
        let mut daemon = verifying_daemon(&seeds, no_dmarc);
        let conv = daemon.conversation(OWNER, PARTNER);
        daemon.spawn();
        let right = guesses(PARTNER.1, &conv.alias_a, "right");
        let wrong = guesses("robert@partner.example", &conv.alias_a, "wrong");
        for (variant, (right, wrong)) in ["envelope", "header From"]
            .iter()
            .zip(right.iter().zip(wrong.iter()))
        {
            let (_, right_transcript) = send(&daemon, FORGER_IP, &right.0, &conv.alias_a, &right.1);
            let (_, wrong_transcript) = send(&daemon, FORGER_IP, &wrong.0, &conv.alias_a, &wrong.1);
            let (right_reply, wrong_reply) = (
                final_reply(&right_transcript),
                final_reply(&wrong_transcript),
            );
            assert_eq!(
                right_reply, wrong_reply,
                "{no_dmarc}, {variant}: the reply tells the guess\n{right_transcript}\n{wrong_transcript}"
            );
            assert_eq!(
                right_reply,
                "550 5.7.1 Sender is not allowed to write to this address",
                "{no_dmarc}, {variant}:\n{right_transcript}\n{}",
                daemon.log()
            );
        }
        assert_eq!(outbox_count(&daemon), 0, "a guess was forwarded");
        // The reasons differ only where the sender cannot look.
        let log = daemon.log();
        assert!(log.contains("check=\"not_partner\""), "{log}");
        assert_log_private(&daemon);
    }
}

/// A DNS failure for the domain the message claims defers a right and a
/// wrong guess alike (451), in the envelope and in the header From: the
/// wrong guess is looked up as the right one is.
#[test]
fn a_dns_failure_for_the_claimed_domain_defers_a_right_and_a_wrong_guess_alike() {
    let work = tempfile::tempdir().unwrap();
    let (_, public_key) = partner_key(work.path());
    let seeds = write_seeds(work.path(), &public_key);
    let mut daemon = verifying_daemon(&seeds, "spf_or_dkim");
    let conv = daemon.conversation(OWNER, UNSEEDED);
    daemon.spawn();
    let right = guesses(UNSEEDED.1, &conv.alias_a, "right");
    let wrong = guesses("eric@unseeded.example", &conv.alias_a, "wrong");
    for (variant, (right, wrong)) in ["envelope", "header From"]
        .iter()
        .zip(right.iter().zip(wrong.iter()))
    {
        let (_, right_transcript) = send(&daemon, FORGER_IP, &right.0, &conv.alias_a, &right.1);
        let (_, wrong_transcript) = send(&daemon, FORGER_IP, &wrong.0, &conv.alias_a, &wrong.1);
        for transcript in [&right_transcript, &wrong_transcript] {
            assert!(
                final_reply(transcript).starts_with("451 4.4.3"),
                "{variant}:\n{transcript}\n{}",
                daemon.log()
            );
        }
        assert_eq!(
            final_reply(&right_transcript),
            final_reply(&wrong_transcript)
        );
    }
    assert_eq!(outbox_count(&daemon), 0);
    assert_log_private(&daemon);
}

#[test]
fn check_config_names_a_bad_seed_file() {
    let work = tempfile::tempdir().unwrap();
    let seeds = work.path().join("dns.toml");
    std::fs::write(&seeds, "[txt]\n\"partner.example\" = \"not a record\"\n").unwrap();
    let daemon = verifying_daemon(&seeds, "spf_or_dkim");
    let out = daemon.cli(&["check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-config accepted it: {stderr}");
    assert!(stderr.contains("verify.dns_records"), "{stderr}");
    assert!(stderr.contains("partner.example"), "{stderr}");
}
