//! One inbound SMTP session: a state machine that owns its parser state
//! (`Phase::Command` reads lines, `Phase::Data` reads the message) and turns
//! client bytes into replies. Pipelined commands are answered in order and
//! the replies flushed together before we wait for more input.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use smtp_proto::{Error as ParseError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::data::{DataOutcome, DataReader};
use super::limits::{ClientKey, Limits, Reservation};
use super::reply::{self, Reply};
use super::{Services, SessionSettings};
use crate::core::address::EmailAddress;
use crate::route::path::{classify_rcpt_path, raw_rcpt_path, RcptTarget};
use crate::route::verify;
use crate::route::{Recipient, Resolved};

mod data;
mod hello;
mod mail;
mod rcpt;

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
            let wanted = if receiving_data {
                DATA_READ_CHUNK
            } else {
                COMMAND_READ_CHUNK
            };
            if chunk.len() != wanted {
                chunk = vec![0u8; wanted];
            }
            if input.is_empty() && input.capacity() > DATA_READ_CHUNK {
                input = Vec::new();
            }
            if *self.shutdown.borrow() && !receiving_data {
                return closing(stream, Reply::SHUTTING_DOWN).await;
            }
            let timeout = if let Phase::Data(reader) = &self.phase {
                // Each chunk within data_timeout, the whole message within
                // max_data_secs: a trickle cannot hold its buffer for the
                // session's 30 minutes.
                self.settings.data_timeout.min(
                    self.settings
                        .max_data_time
                        .saturating_sub(reader.started().elapsed()),
                )
            } else if self.transaction.is_none() {
                self.settings
                    .idle_timeout
                    .min(self.settings.command_timeout)
            } else {
                self.settings.command_timeout
            };
            let remaining = self
                .settings
                .session_timeout
                .saturating_sub(started.elapsed());
            let read = tokio::time::timeout(timeout.min(remaining), stream.read(&mut chunk));
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

    /// Consumes as much buffered input as forms complete commands or data.
    async fn process(&mut self, input: &mut Vec<u8>) -> Step {
        let mut consumed = 0;
        let step = loop {
            let pending = &input[consumed..];
            if pending.is_empty() {
                break Step::Continue;
            }
            match &mut self.phase {
                Phase::Data(reader) => {
                    let (used, outcome) = reader.feed(pending);
                    consumed += used;
                    let Some(outcome) = outcome else {
                        break Step::Continue;
                    };
                    // The message's memory stays reserved until it is forwarded.
                    let held = match std::mem::replace(&mut self.phase, Phase::Command) {
                        Phase::Data(reader) => Some(reader.into_reservation()),
                        _ => None,
                    };
                    let reply = self.finish_data(outcome, held).await;
                    if let Some(step) = self.reply(reply) {
                        break step;
                    }
                }
                Phase::SkipLine => match pending.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        consumed += end + 1;
                        self.phase = Phase::Command;
                    }
                    None => {
                        consumed += pending.len();
                        break Step::Continue;
                    }
                },
                Phase::Command => {
                    let max = self.settings.max_line_length;
                    match pending.iter().take(max).position(|&b| b == b'\n') {
                        Some(end) => {
                            let line = pending[..=end].to_vec();
                            consumed += end + 1;
                            let step = self.command(&line).await;
                            if !matches!(step, Step::Continue) {
                                break step;
                            }
                        }
                        None if pending.len() >= max => {
                            // Drop the over-long line: up to its LF if it is
                            // here, else everything and the rest as it comes.
                            match pending.iter().position(|&b| b == b'\n') {
                                Some(end) => consumed += end + 1,
                                None => {
                                    consumed += pending.len();
                                    self.phase = Phase::SkipLine;
                                }
                            }
                            if let Some(step) = self.reply(Reply::LINE_TOO_LONG) {
                                break step;
                            }
                        }
                        None => break Step::Continue,
                    }
                }
            }
        };
        input.drain(..consumed);
        step
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

    async fn command(&mut self, line: &[u8]) -> Step {
        // RCPT is judged on its raw text first: parsers normalize away the
        // source routes and quoting that relay probes hide behind.
        if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"RCPT") {
            let reply = self.rcpt(line).await;
            return self.reply_step(reply);
        }
        let request = Request::parse(&mut line.iter());
        match request {
            Ok(Request::Ehlo { host }) => self.hello(&host, true),
            Ok(Request::Helo { host }) => self.hello(&host, false),
            Ok(Request::Mail { .. }) if self.transactions >= self.settings.max_transactions => {
                Reply::TOO_MANY_TRANSACTIONS.write_to(&mut self.out);
                Step::Close
            }
            Ok(Request::Mail { from }) if !mail::only_advertised_mail_parameters(&from) => {
                self.reply_step(Reply::BAD_PARAMETER)
            }
            Ok(Request::Mail { from }) => {
                let reply = self.mail(&from.address, from.size);
                self.reply_step(reply)
            }
            Ok(Request::Data) => self.data(),
            Ok(
                Request::Rset | Request::Noop { .. } | Request::Vrfy { .. } | Request::Help { .. },
            ) if self.idle_commands >= MAX_IDLE_COMMANDS => {
                Reply::TOO_MANY_IDLE_COMMANDS.write_to(&mut self.out);
                Step::Close
            }
            Ok(Request::Rset) => {
                self.idle_commands += 1;
                self.transaction = None;
                self.reply_step(Reply::OK)
            }
            Ok(Request::Noop { .. }) => {
                self.idle_commands += 1;
                self.reply_step(Reply::OK)
            }
            Ok(Request::Quit) => {
                Reply::BYE.write_to(&mut self.out);
                Step::Close
            }
            Ok(Request::Vrfy { .. }) => {
                self.idle_commands += 1;
                self.reply_step(Reply::CANNOT_VRFY)
            }
            Ok(Request::Help { .. }) => {
                self.idle_commands += 1;
                self.reply_step(Reply::HELP)
            }
            Ok(Request::StartTls) => self.starttls(),
            Ok(
                Request::Lhlo { .. }
                | Request::Expn { .. }
                | Request::Auth { .. }
                | Request::Bdat { .. }
                | Request::Etrn { .. }
                | Request::Atrn { .. }
                | Request::Burl { .. }
                | Request::Rcpt { .. },
            ) => self.reply_step(Reply::NOT_IMPLEMENTED),
            Err(err) => self.reply_step(parse_error_reply(&err)),
        }
    }
}

/// Sends a last 421 and ends the session; the client may already be gone.
async fn closing<S: AsyncWrite + Unpin>(
    stream: &mut S,
    reply: Reply,
) -> std::io::Result<SessionEnd> {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    // A courtesy to a client that may not be reading: brief, and ignored.
    let _ = write_within(stream, &out, CLOSING_WRITE_LIMIT).await;
    Ok(SessionEnd::Closed)
}

/// NOOP, RSET, VRFY and HELP a connection may send between two messages
/// (Postfix sends one RSET before reusing a connection); more: 421.
const MAX_IDLE_COMMANDS: u32 = 20;

/// A reply's write is never bounded below this (see `run`).
const MIN_REPLY_WRITE: Duration = Duration::from_secs(30);

/// How long a parting reply (timeout, shutdown) may take to be written.
const CLOSING_WRITE_LIMIT: Duration = Duration::from_secs(5);

/// Writes and flushes `bytes`, or fails with `TimedOut` after `limit`.
async fn write_within<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    limit: Duration,
) -> std::io::Result<()> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(limit, write).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client stopped reading",
        )),
    }
}

fn parse_error_reply(err: &ParseError) -> Reply {
    match err {
        ParseError::UnknownCommand => Reply::UNKNOWN_COMMAND,
        ParseError::InvalidSenderAddress => Reply::BAD_SENDER,
        ParseError::InvalidRecipientAddress => Reply::BAD_RECIPIENT,
        ParseError::InvalidParameter { .. } | ParseError::UnsupportedParameter { .. } => {
            Reply::BAD_PARAMETER
        }
        ParseError::ResponseTooLong => Reply::LINE_TOO_LONG,
        _ => Reply::SYNTAX,
    }
}
