//! Every reply the SMTP side sends, in one place, so DESIGN.md's table can
//! be checked against a single list. Texts are generic on purpose: they
//! never echo an upstream's words, an address or anything the client sent.

use crate::deliver::Outcome;
use crate::rewrite::RewriteError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code and text, e.g. `5.1.1 No such recipient`.
    pub text: &'static str,
}

impl Reply {
    const fn new(code: u16, text: &'static str) -> Self {
        Self { code, text }
    }

    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Whether this error counts towards `max_errors`. Replies that a
    /// well-behaved client earns in normal operation do not: the `452` that
    /// splits a multi-recipient message (an MTA pipelining eleven recipients
    /// would otherwise be cut off before DATA on every retry) and our own
    /// or the upstream's temporary trouble.
    pub fn counts_against_client(&self) -> bool {
        self.is_error()
            && !matches!(
                *self,
                Reply::ONE_RECIPIENT
                    | Reply::OVER_BUDGET
                    | Reply::UPSTREAM_TEMPORARY
                    | Reply::UPSTREAM_PERMANENT
                    | Reply::LOCAL_ERROR
                    | Reply::DNS_TEMPORARY
            )
    }

    /// The `reason` label counted in /metrics for an error reply.
    pub fn metric_reason(&self) -> &'static str {
        match *self {
            Reply::RELAY_DENIED => "relay_denied",
            Reply::NO_SUCH_RECIPIENT => "unknown_recipient",
            Reply::SENDER_REFUSED => "sender_refused",
            Reply::ONE_RECIPIENT => "extra_recipient",
            Reply::TOO_BIG | Reply::HEADER_TOO_LARGE => "too_big",
            Reply::BARE_LINE_ENDING => "bare_line_ending",
            Reply::NUL_IN_DATA => "nul_in_data",
            Reply::MALFORMED_HEADER | Reply::BAD_FROM => "malformed_message",
            Reply::TOO_COMPLEX | Reply::UNREADABLE_SMIME => "not_forwardable",
            Reply::UPSTREAM_TEMPORARY | Reply::UPSTREAM_PERMANENT => "upstream",
            Reply::TOO_MANY_CONNECTIONS | Reply::TOO_MANY_CLIENT_CONNECTIONS => {
                "too_many_connections"
            }
            Reply::RATE_LIMITED => "rate_limited",
            Reply::OVER_BUDGET => "over_memory_budget",
            Reply::ROUTING_LOOP => "loop",
            Reply::DNS_TEMPORARY => "dns_temporary",
            _ => "protocol",
        }
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{} {}\r\n", self.code, self.text).as_bytes());
    }

    pub const OK: Reply = Reply::new(250, "2.0.0 OK");
    pub const SENDER_OK: Reply = Reply::new(250, "2.1.0 Sender OK");
    pub const RECIPIENT_OK: Reply = Reply::new(250, "2.1.5 Recipient OK");
    pub const START_DATA: Reply = Reply::new(354, "Start mail input; end with <CRLF>.<CRLF>");
    pub const DELIVERED: Reply = Reply::new(250, "2.0.0 Message accepted for delivery");
    pub const BYE: Reply = Reply::new(221, "2.0.0 Bye");
    pub const READY_FOR_TLS: Reply = Reply::new(220, "2.0.0 Ready to start TLS");
    pub const HELP: Reply = Reply::new(214, "2.0.0 See RFC 5321");
    pub const CANNOT_VRFY: Reply =
        Reply::new(252, "2.5.0 Cannot VRFY user; send mail and we will try");

    pub const RELAY_DENIED: Reply = Reply::new(554, "5.7.1 Relaying denied");
    pub const NO_SUCH_RECIPIENT: Reply = Reply::new(550, "5.1.1 No such recipient here");
    /// Mail to an alias from anyone but the authenticated partner: one
    /// reply for a wrong address and for the partner's address that failed
    /// SPF/DKIM/DMARC, so a refused sender cannot tell whether the address
    /// they tried was the partner's (the reasons differ only in /metrics).
    pub const SENDER_REFUSED: Reply =
        Reply::new(550, "5.7.1 Sender is not allowed to write to this address");
    pub const DNS_TEMPORARY: Reply = Reply::new(
        451,
        "4.4.3 Temporary DNS failure while authenticating the sender, please try again later",
    );
    pub const NEED_MAIL: Reply = Reply::new(503, "5.5.1 Need MAIL before RCPT");
    pub const NEED_MAIL_BEFORE_DATA: Reply = Reply::new(503, "5.5.1 Need MAIL before DATA");
    pub const NEED_RCPT: Reply = Reply::new(503, "5.5.1 Need RCPT before DATA");
    pub const NEED_HELO: Reply = Reply::new(503, "5.5.1 Say EHLO or HELO first");
    pub const NESTED_MAIL: Reply = Reply::new(503, "5.5.1 Sender already specified");
    pub const ONE_RECIPIENT: Reply = Reply::new(
        452,
        "4.5.3 One recipient per message; send the rest separately",
    );
    pub const TOO_BIG: Reply = Reply::new(552, "5.3.4 Message too big");
    pub const HEADER_TOO_LARGE: Reply = Reply::new(552, "5.3.4 Message header too large");
    pub const BARE_LINE_ENDING: Reply = Reply::new(
        550,
        "5.5.2 Bare CR or LF not allowed; use CRLF line endings",
    );
    pub const NUL_IN_DATA: Reply =
        Reply::new(550, "5.6.0 NUL characters are not allowed in a message");
    pub const MALFORMED_HEADER: Reply = Reply::new(550, "5.6.0 Message header is malformed");
    pub const TOO_COMPLEX: Reply = Reply::new(
        554,
        "5.6.0 Message is too complex to check and forward safely",
    );
    pub const UNREADABLE_SMIME: Reply = Reply::new(
        554,
        "5.6.0 S/MIME content that cannot be read is not forwarded; send it unsigned or with a detached signature",
    );
    pub const ROUTING_LOOP: Reply = Reply::new(554, "5.4.6 Routing loop detected");
    pub const BAD_FROM: Reply = Reply::new(550, "5.6.0 Message must have exactly one From address");
    pub const UPSTREAM_TEMPORARY: Reply =
        Reply::new(451, "4.3.0 Temporary failure, please try again later");
    pub const UPSTREAM_PERMANENT: Reply = Reply::new(550, "5.0.0 Message could not be delivered");
    pub const LOCAL_ERROR: Reply = Reply::new(451, "4.3.0 Local error, please try again later");
    pub const TOO_MANY_CONNECTIONS: Reply =
        Reply::new(421, "4.7.0 Too many connections, try again later");
    pub const TOO_MANY_CLIENT_CONNECTIONS: Reply = Reply::new(
        421,
        "4.7.0 Too many connections from your address, try again later",
    );
    pub const TOO_MANY_TRANSACTIONS: Reply = Reply::new(
        421,
        "4.7.0 Too many messages in one connection, please reconnect",
    );
    pub const RATE_LIMITED: Reply = Reply::new(450, "4.7.1 Rate limit reached, try again later");
    pub const OVER_BUDGET: Reply =
        Reply::new(452, "4.3.1 Insufficient system resources, try again later");
    pub const TOO_MANY_ERRORS: Reply = Reply::new(421, "4.7.0 Too many errors, closing connection");
    pub const TOO_MANY_IDLE_COMMANDS: Reply = Reply::new(
        421,
        "4.7.0 Too many commands without a message, closing connection",
    );
    pub const TIMEOUT: Reply = Reply::new(421, "4.4.2 Timeout, closing connection");
    pub const SHUTTING_DOWN: Reply = Reply::new(421, "4.3.2 Service shutting down");
    pub const LINE_TOO_LONG: Reply = Reply::new(500, "5.5.2 Line too long");
    pub const UNKNOWN_COMMAND: Reply = Reply::new(500, "5.5.1 Command not recognized");
    pub const NOT_IMPLEMENTED: Reply = Reply::new(502, "5.5.1 Command not implemented");
    pub const SYNTAX: Reply = Reply::new(501, "5.5.4 Syntax error in parameters or arguments");
    pub const BAD_SENDER: Reply = Reply::new(501, "5.1.7 Bad sender address syntax");
    pub const BAD_RECIPIENT: Reply = Reply::new(501, "5.1.3 Bad recipient address syntax");
    pub const BAD_PARAMETER: Reply =
        Reply::new(555, "5.5.4 Parameter not recognized or not implemented");
    pub const TLS_ALREADY: Reply = Reply::new(503, "5.5.1 TLS already active");
    pub const TLS_FAILED: Reply = Reply::new(454, "4.7.0 TLS not available");
}

impl From<Outcome> for Reply {
    /// What the client is told of a message the relay took after DATA.
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Delivered => Reply::DELIVERED,
            Outcome::NoSuchRecipient => Reply::NO_SUCH_RECIPIENT,
            Outcome::RoutingLoop => Reply::ROUTING_LOOP,
            Outcome::LocalError => Reply::LOCAL_ERROR,
            Outcome::SenderRefused => Reply::SENDER_REFUSED,
            Outcome::DnsTemporary => Reply::DNS_TEMPORARY,
            Outcome::UpstreamTemporary => Reply::UPSTREAM_TEMPORARY,
            Outcome::UpstreamPermanent => Reply::UPSTREAM_PERMANENT,
            Outcome::Refused(err) => match err {
                RewriteError::BareLineEnding => Reply::BARE_LINE_ENDING,
                RewriteError::HeaderTooLarge => Reply::HEADER_TOO_LARGE,
                RewriteError::MalformedHeader => Reply::MALFORMED_HEADER,
                RewriteError::SeveralFrom | RewriteError::BadFrom => Reply::BAD_FROM,
                RewriteError::TooComplex => Reply::TOO_COMPLEX,
                RewriteError::UnreadableSmime => Reply::UNREADABLE_SMIME,
            },
        }
    }
}

/// The greeting: our host name and nothing else (no software, no version).
pub fn greeting(hostname: &str) -> String {
    format!("220 {hostname} ESMTP\r\n")
}

/// The reply to HELO, or to EHLO with the extensions we offer.
pub fn hello(hostname: &str, extended: bool, max_message_bytes: usize, starttls: bool) -> String {
    if !extended {
        return format!("250 {hostname}\r\n");
    }
    let size = format!("SIZE {max_message_bytes}");
    let mut lines = vec![hostname, "PIPELINING", size.as_str()];
    if starttls {
        lines.push("STARTTLS");
    }
    lines.extend(["8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"]);
    let last = lines.len() - 1;
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        let separator = if index == last { ' ' } else { '-' };
        out.push_str(&format!("250{separator}{line}\r\n"));
    }
    out
}
