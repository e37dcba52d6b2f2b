//! Buffered client bytes into commands or message data, in order: the
//! parser state the session owns.

use super::{Phase, Session, Step};
use crate::smtp::reply::Reply;

impl Session<'_> {
    /// Consumes as much buffered input as forms complete commands or data.
    pub(super) async fn process(&mut self, input: &mut Vec<u8>) -> Step {
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
}
