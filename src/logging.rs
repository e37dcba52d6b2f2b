//! Logging to stderr through a redacting writer: whatever a log line holds —
//! from our code or from a dependency's error text — any email address and
//! any IP address is replaced before it leaves the process.
//!
//! The rule for our own lines: at info, warn and error no line carries a
//! per-message identifier (alias, conversation id, user id, address,
//! subject, IP); per-message events are counted in `/metrics` instead. The
//! journal keeps lines under its own retention, outside the 90-day purge
//! and user deletion, so the database stays the only metadata store. Debug
//! lines may carry aliases (as bare local parts, which survive redaction);
//! production does not run at debug.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

pub const REDACTED_ADDRESS: &str = "[address]";
pub const REDACTED_IP: &str = "[ip]";

/// Replaces email addresses and IP addresses (v4, v6, with or without a
/// port) in `text`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        out.push_str(&redact_token(token));
        token.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric()
            || matches!(
                c,
                '.' | ':'
                    | '_'
                    | '-'
                    | '@'
                    | '%'
                    | '+'
                    | '\''
                    | '='
                    | '~'
                    | '!'
                    | '#'
                    | '$'
                    | '&'
                    | '*'
                    | '/'
                    | '?'
                    | '^'
                    | '`'
                    | '{'
                    | '|'
                    | '}'
            )
        {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

fn redact_token(token: &str) -> String {
    if token.is_empty() {
        return String::new();
    }
    // key=value fields: judge the value.
    if let Some((key, value)) = token.split_once('=') {
        if !key.contains('@') {
            return format!("{key}={}", redact_token(value));
        }
    }
    let core = token.trim_end_matches(['.', ':', ',', ';']);
    let tail = &token[core.len()..];
    if let Some((local, domain)) = core.rsplit_once('@') {
        if !local.is_empty() && domain.contains('.') {
            return format!("{REDACTED_ADDRESS}{tail}");
        }
    }
    if core.parse::<std::net::IpAddr>().is_ok() {
        return format!("{REDACTED_IP}{tail}");
    }
    if let Ok(addr) = core.parse::<std::net::SocketAddr>() {
        return format!("{REDACTED_IP}:{}{tail}", addr.port());
    }
    // IPv4 with a port, or an IPv6 literal split off its brackets.
    if let Some((ip, port)) = core.rsplit_once(':') {
        if port.bytes().all(|b| b.is_ascii_digit()) && ip.parse::<std::net::IpAddr>().is_ok() {
            return format!("{REDACTED_IP}:{port}{tail}");
        }
    }
    token.to_owned()
}

/// A stderr writer that redacts each formatted log line.
#[derive(Clone, Copy, Default)]
pub struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = redact(&String::from_utf8_lossy(buf));
        io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Crates whose log lines name participants' domains (DNS queries).
const QUIET_TARGETS: [&str; 3] = ["hickory_proto", "hickory_resolver", "hickory_net"];

/// Installs the subscriber: level from `ANONRELAY_LOG` (an EnvFilter
/// expression, default `info`), colour only on a terminal.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let mut filter =
        EnvFilter::try_from_env("ANONRELAY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The DNS resolver logs every name it asks for: the domains of the
    // participants whose mail is being verified. Silenced whatever the
    // level; a failed lookup shows as our own "temperror" line instead.
    for quiet in QUIET_TARGETS {
        if let Ok(directive) = format!("{quiet}=off").parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_ips_are_redacted() {
        let line = "2026-11-23T01:55:07.636867Z  WARN failed for bob.real@b-mail.example from 203.0.113.77:4711 and [2001:db8::77]:25 or ::1, peer=192.0.2.1 <Alice@A.example>.";
        let out = redact(line);
        for secret in [
            "bob.real",
            "b-mail",
            "203.0.113.77",
            "2001:db8",
            "::1",
            "192.0.2.1",
            "Alice@A",
        ] {
            assert!(!out.contains(secret), "{secret} survived: {out}");
        }
        assert!(
            out.starts_with(
                "2026-11-23T01:55:07.636867Z  WARN failed for [address] from [ip]:4711"
            ),
            "{out}"
        );
        assert!(out.contains("peer=[ip]"), "{out}");
    }

    #[test]
    fn aliases_ids_and_words_survive() {
        let line = "INFO message forwarded alias=zkxm7dkz3w4axcnwue7k conversation=fa94db5a-2fc0-40cb-b0a7-3d274ff31f77 version 1.2.3 at 10:00:01 anonrelay::smtp";
        assert_eq!(redact(line), line);
    }
}
