//! The one integration crate: end-to-end tests against the real binary
//! and real third-party peers (swaks, smtplib, aiosmtpd, Postfix,
//! smtp-sink, openssl, Chromium, systemd-analyze), one module per
//! concern, sharing one harness (`common`). One crate compiles the harness
//! once; `cargo test --test it MODULE::` runs one concern.

mod common;

mod bounces;
mod cli;
mod dialogs;
mod dkim;
mod e2e_relay;
mod fixtures;
mod fuzz_regressions;
mod generative;
mod hook;
mod hostile;
mod idn;
mod loops;
mod memory;
mod postfix;
mod postmaster;
mod quiet_log;
mod remote_content;
mod retention;
mod signed_mail;
mod startup;
mod store_faults;
mod systemd;
mod upstream;
mod verify;
