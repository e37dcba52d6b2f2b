//! DATA: the message, handed to `deliver` once it has all arrived.

use super::*;

impl Session<'_> {
    pub(super) fn data(&mut self) -> Step {
        match &self.transaction {
            None => self.reply_step(Reply::NEED_MAIL_BEFORE_DATA),
            Some(Transaction {
                recipient: None, ..
            }) => self.reply_step(Reply::NEED_RCPT),
            Some(_) => {
                let reservation = self.limits.reserve_for(self.client);
                self.phase = Phase::Data(DataReader::new(
                    self.settings.max_message_bytes,
                    reservation,
                ));
                self.reply_step(Reply::START_DATA)
            }
        }
    }

    pub(super) async fn finish_data(
        &mut self,
        outcome: DataOutcome,
        mut held: Option<Reservation>,
    ) -> Reply {
        let Some(Transaction {
            sender,
            recipient: Some(recipient),
        }) = self.transaction.take()
        else {
            return Reply::NEED_RCPT;
        };
        match outcome {
            DataOutcome::BareLineEnding => Reply::BARE_LINE_ENDING,
            DataOutcome::NulByte => Reply::NUL_IN_DATA,
            DataOutcome::TooLarge => Reply::TOO_BIG,
            DataOutcome::OverBudget => Reply::OVER_BUDGET,
            DataOutcome::Message(mut message) => {
                // Growing by doubling left up to half the buffer unused:
                // give that back before budgeting the copy.
                message.shrink_to_fit();
                if let Some(held) = held.as_mut() {
                    held.shrink_to(message.capacity());
                }
                // The rewrite's working copies and the rewritten message
                // (which exists while the upstream takes it): budget them
                // too, before making them. The reservation is held
                // until the upstream has answered.
                let needed = message.capacity() + crate::rewrite::memory_needed(message.len());
                if !held
                    .as_mut()
                    .is_some_and(|held| held.cover_outside_share(needed))
                {
                    return Reply::OVER_BUDGET;
                }
                // Boxed: the delivery future (TLS client, SMTP client) is
                // large and must not be part of every idle session's task.
                let client = verify::Client {
                    ip: self.client_ip,
                    helo: self.helo.as_deref().unwrap_or_default(),
                    mail_from: sender.as_deref(),
                };
                let outcome = Box::pin(self.services.deliverer.deliver(
                    &recipient,
                    &client,
                    &message,
                    self.settings.max_header_bytes,
                ))
                .await;
                drop(held);
                self.idle_commands = 0;
                let reply = Reply::from(outcome);
                if reply == Reply::DELIVERED {
                    self.limits
                        .alias_messages
                        .record(&recipient.rate_key(), Instant::now());
                }
                reply
            }
        }
    }
}
