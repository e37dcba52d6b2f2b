//! One inbound SMTP session: a state machine that owns its parser state
//! (`Phase::Command` reads lines, `Phase::Data` reads the message) and turns
//! client bytes into replies. Pipelined commands are answered in order and
//! the replies flushed together before we wait for more input.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::data::{DataOutcome, DataReader};
use super::limits::{ClientKey, Limits, Reservation};
use super::reply::{self, Reply};
use super::{Services, SessionSettings};
use crate::core::address::EmailAddress;
use crate::route::path::{classify_rcpt_path, raw_rcpt_path, RcptTarget};
use crate::route::verify;
use crate::route::{Recipient, Resolved};

mod command;
mod data;
mod hello;
mod input;
mod io;
mod mail;
mod rcpt;

use command::parse_error_reply;
use io::{closing, fit_buffers, write_within, MIN_REPLY_WRITE};

/// How a session ended, for the listener.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// QUIT, error limit, timeout or the client went away.
    Closed,
    /// The client asked for STARTTLS and got 220: the listener wraps the
    /// stream in TLS and runs a fresh session on it.
    StartTls,
}

enum Phase {
    Command,
    /// Discarding an over-long command line up to its LF.
    SkipLine,
    Data(DataReader),
}

/// The open mail transaction (after MAIL).
struct Transaction {
    /// Normalized envelope sender; None for the null sender `<>`.
    sender: Option<String>,
    recipient: Option<Recipient>,
}

enum Step {
    Continue,
    Close,
    StartTls,
}

pub struct Session<'a> {
    services: &'a Services,
    settings: &'a SessionSettings,
    limits: &'a Limits,
    /// Key for the per-client limits only: never logged, never stored.
    client: ClientKey,
    /// The client's full address, for SPF only: in memory, never logged or stored.
    client_ip: IpAddr,
    /// The EHLO/HELO name, for SPF only: a participant's host name, so
    /// kept for this session in memory and never logged.
    helo: Option<String>,
    transactions: u32,
    /// Turns true when the daemon stops: idle sessions get 421 at once,
    /// a message being received is finished first.
    shutdown: tokio::sync::watch::Receiver<bool>,
    tls_active: bool,
    greeted: bool,
    transaction: Option<Transaction>,
    phase: Phase,
    errors: u32,
    /// NOOP, RSET, VRFY and HELP since the last message: they keep a
    /// connection open without sending anything.
    idle_commands: u32,
    out: Vec<u8>,
}

/// Read buffer while commands are expected: small, because most
/// connections spend their life here (thousands may sit idle).
const COMMAND_READ_CHUNK: usize = 1024;
/// Read buffer while a message streams in.
const DATA_READ_CHUNK: usize = 16 * 1024;

impl<'a> Session<'a> {
    pub fn new(
        services: &'a Services,
        settings: &'a SessionSettings,
        limits: &'a Limits,
        client_ip: IpAddr,
        shutdown: tokio::sync::watch::Receiver<bool>,
        tls_active: bool,
    ) -> Self {
        Self {
            services,
            settings,
            limits,
            client: ClientKey::from(client_ip),
            client_ip,
            helo: None,
            transactions: 0,
            shutdown,
            tls_active,
            greeted: false,
            transaction: None,
            phase: Phase::Command,
            errors: 0,
            idle_commands: 0,
            out: Vec::with_capacity(512),
        }
    }

    /// Runs the session to its end. The greeting is sent only on a fresh
    /// connection, not after STARTTLS.
    pub async fn run<S>(mut self, stream: &mut S, started: Instant) -> std::io::Result<SessionEnd>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // A client that stops reading our replies must not hold its slot
        // forever: every write has the deadline a read would have. But a
        // reply is always given its moment, even past the session's end: a
        // 250 the client never reads (after a long wait for the upstream)
        // is a message it sends again.
        let write_limit = |started: Instant| {
            self.settings.command_timeout.min(
                self.settings
                    .session_timeout
                    .saturating_sub(started.elapsed())
                    .max(MIN_REPLY_WRITE),
            )
        };
        if !self.tls_active {
            let greeting = reply::greeting(self.services.hostname.as_str());
            write_within(stream, greeting.as_bytes(), write_limit(started)).await?;
        }
        let mut input: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; COMMAND_READ_CHUNK];
        loop {
            let step = self.process(&mut input).await;
            if !self.out.is_empty() {
                write_within(stream, &self.out, write_limit(started)).await?;
                self.out.clear();
            }
            match step {
                Step::Continue => {}
                Step::Close => return Ok(SessionEnd::Closed),
                // Whatever the client sent after STARTTLS in the clear is
                // dropped with `input` (the STARTTLS injection attack).
                Step::StartTls => return Ok(SessionEnd::StartTls),
            }
            let receiving_data = matches!(self.phase, Phase::Data(_));
            fit_buffers(receiving_data, &mut chunk, &mut input);
            if *self.shutdown.borrow() && !receiving_data {
                return closing(stream, Reply::SHUTTING_DOWN).await;
            }
            let read = tokio::time::timeout(self.read_timeout(started), stream.read(&mut chunk));
            let read = tokio::select! {
                read = read => read,
                _ = self.shutdown.changed(), if !receiving_data => {
                    return closing(stream, Reply::SHUTTING_DOWN).await;
                }
            };
            match read {
                Ok(Ok(0)) => return Ok(SessionEnd::Closed),
                Ok(Ok(n)) => input.extend_from_slice(&chunk[..n]),
                Ok(Err(err)) => return Err(err),
                Err(_) => return closing(stream, Reply::TIMEOUT).await,
            }
        }
    }

    /// Queues a reply; returns a step if the error limit closes the session.
    fn reply(&mut self, reply: Reply) -> Option<Step> {
        reply.write_to(&mut self.out);
        if reply.is_error() {
            self.services.metrics.rejected(reply.metric_reason());
        }
        if reply.counts_against_client() {
            self.errors += 1;
            if self.errors >= self.settings.max_errors {
                Reply::TOO_MANY_ERRORS.write_to(&mut self.out);
                return Some(Step::Close);
            }
        }
        None
    }

    fn reply_step(&mut self, reply: Reply) -> Step {
        self.reply(reply).unwrap_or(Step::Continue)
    }
}
