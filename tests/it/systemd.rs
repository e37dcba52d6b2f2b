//! The systemd units: `systemd-analyze verify` accepts them and
//! `systemd-analyze security` rates anonrelay.service at 2.0 or lower.
//! Offline mode: no running systemd is needed.

use crate::common;

use std::process::Command;

use common::*;

/// Copies the units with ExecStart pointing at the binary under test.
fn units() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "anonrelay.service",
        "anonrelay-prune.service",
        "anonrelay-prune.timer",
    ] {
        let text = std::fs::read_to_string(repo().join("systemd").join(name)).unwrap();
        let text = text.replace("/usr/local/bin/anonrelay", env!("CARGO_BIN_EXE_anonrelay"));
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn units_verify() {
    require("systemd-analyze", "systemd");
    let dir = units();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(
            [
                "anonrelay.service",
                "anonrelay-prune.service",
                "anonrelay-prune.timer",
            ]
            .map(|u| dir.path().join(u)),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("anonrelay")).collect();
    assert!(complaints.is_empty(), "verify complains: {complaints:#?}");
}

fn exposure(unit: &str) -> f64 {
    let dir = units();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(dir.path().join(unit))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let value = line
        .split(':')
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .unwrap();
    value.parse().unwrap()
}

#[test]
fn service_exposure_is_at_most_2() {
    require("systemd-analyze", "systemd");
    let service = exposure("anonrelay.service");
    assert!(service <= 2.0, "anonrelay.service exposure {service}");
    let prune = exposure("anonrelay-prune.service");
    assert!(prune <= 2.0, "anonrelay-prune.service exposure {prune}");
    println!(
        "systemd-analyze security: anonrelay.service {service}, anonrelay-prune.service {prune}"
    );
}

fn directive<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn both_services_share_one_user_and_the_tls_key_stays_reloadable() {
    let service = std::fs::read_to_string(repo().join("systemd/anonrelay.service")).unwrap();
    let prune = std::fs::read_to_string(repo().join("systemd/anonrelay-prune.service")).unwrap();
    // Two different dynamic users would make systemd chown the state
    // directory to the prune job's UID every day, locking the daemon out.
    let user = directive(&service, "User");
    assert_eq!(user, ["anonrelay"]);
    assert_eq!(directive(&prune, "User"), user);
    assert_eq!(
        directive(&service, "StateDirectory"),
        directive(&prune, "StateDirectory")
    );
    // A credential is copied once at start; SIGHUP must see a renewed key.
    let example = std::fs::read_to_string(repo().join("systemd/relay.toml.example")).unwrap();
    let config = anonrelay::config::Config::parse(&example).unwrap();
    let key = config
        .smtp
        .tls_key
        .expect("the example configures STARTTLS");
    assert!(!key.starts_with("/run/credentials"), "{}", key.display());
    assert_eq!(
        directive(&service, "SupplementaryGroups"),
        ["anonrelay-tls"]
    );
}

#[test]
fn timer_is_daily_and_persistent() {
    let text = std::fs::read_to_string(repo().join("systemd/anonrelay-prune.timer")).unwrap();
    assert!(text.contains("OnCalendar=daily") && text.contains("Persistent=true"));
}

#[test]
fn production_example_config_is_valid() {
    let text = std::fs::read_to_string(repo().join("systemd/relay.toml.example")).unwrap();
    let config = anonrelay::config::Config::parse(&text).expect("example config parses");
    assert_eq!(config.retention.days, 90);
    assert!(config.hook.is_some());
}
