//! One command line to its verb's handler (`hello.rs`, `mail.rs`,
//! `rcpt.rs`, `data.rs`) or to its reply.

use smtp_proto::{Error as ParseError, Request};

use super::{mail, Session, Step};
use crate::smtp::reply::Reply;

impl Session<'_> {
    pub(super) async fn command(&mut self, line: &[u8]) -> Step {
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

/// NOOP, RSET, VRFY and HELP a connection may send between two messages
/// (Postfix sends one RSET before reusing a connection); more: 421.
const MAX_IDLE_COMMANDS: u32 = 20;

pub(super) fn parse_error_reply(err: &ParseError) -> Reply {
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
