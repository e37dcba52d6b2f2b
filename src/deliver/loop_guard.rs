//! Loop protection. Two inboxes that auto-forward to each other's alias
//! would bounce a message through the relay forever; so would a
//! misconfigured upstream. A message that already carries our own trace
//! header (`Received: by HOST (anonrelay) ...`, written by the rewrite), or
//! that has travelled through too many hops, is refused and never forwarded.

use std::fmt;

/// Most `Received` headers a message may carry: Postfix's default
/// `hopcount_limit`, so we never refuse what a stock MTA would pass on.
pub const MAX_RECEIVED_HEADERS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopSign {
    /// Our own trace header is already there: the message went round.
    OwnTrace,
    /// More `Received` headers than [`MAX_RECEIVED_HEADERS`].
    TooManyHops(usize),
}

impl fmt::Display for LoopSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopSign::OwnTrace => f.write_str("carries our own trace header"),
            LoopSign::TooManyHops(count) => write!(f, "{count} Received headers"),
        }
    }
}

/// Looks at the values of every `Received` header (folding included).
/// `hostname` is the name our trace header carries (`smtp.hostname`).
pub fn detect<'v>(
    received: impl IntoIterator<Item = &'v [u8]>,
    hostname: &str,
) -> Option<LoopSign> {
    let ours = format!("by {} (anonrelay)", hostname.to_ascii_lowercase());
    let mut count = 0;
    for value in received {
        count += 1;
        if normalized(value).contains(&ours) {
            return Some(LoopSign::OwnTrace);
        }
    }
    (count > MAX_RECEIVED_HEADERS).then_some(LoopSign::TooManyHops(count))
}

/// Lowercase, every run of white space (folding too) as one space, so a
/// hop that re-folds or re-cases our header does not hide it.
fn normalized(value: &[u8]) -> String {
    String::from_utf8_lossy(value)
        .split_ascii_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "mx.relay.test";

    fn detect_in(values: &[&str]) -> Option<LoopSign> {
        detect(values.iter().map(|v| v.as_bytes()), HOST)
    }

    #[test]
    fn own_trace_is_found_whatever_the_folding_or_case() {
        assert_eq!(
            detect_in(&[" by mx.relay.test (anonrelay) id abc;\r\n\tMon, 1 Jan 2024"]),
            Some(LoopSign::OwnTrace)
        );
        assert_eq!(
            detect_in(&[
                " from x by y; Mon",
                " by MX.Relay.Test\r\n  (anonrelay)\r\n id q; Mon"
            ]),
            Some(LoopSign::OwnTrace)
        );
    }

    #[test]
    fn other_relays_and_other_hosts_are_not_loops() {
        assert_eq!(detect_in(&[]), None);
        assert_eq!(
            detect_in(&[" from mx.relay.test by mail.example (Postfix); Mon"]),
            None
        );
        // Another anonrelay instance, or our name without the marker.
        assert_eq!(
            detect_in(&[" by mx.other.test (anonrelay) id x; Mon"]),
            None
        );
        assert_eq!(detect_in(&[" by mx.relay.test (Postfix); Mon"]), None);
    }

    #[test]
    fn hop_count_limit_is_inclusive() {
        let hop = " from a by b; Mon, 1 Jan 2024 00:00:00 +0000";
        assert_eq!(detect_in(&[hop; MAX_RECEIVED_HEADERS]), None);
        assert_eq!(
            detect_in(&[hop; MAX_RECEIVED_HEADERS + 1]),
            Some(LoopSign::TooManyHops(MAX_RECEIVED_HEADERS + 1))
        );
    }
}
