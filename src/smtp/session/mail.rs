//! MAIL FROM: the sender and its parameters.

use super::*;

impl Session<'_> {
    pub(super) fn mail(&mut self, address: &str, declared_size: usize) -> Reply {
        if !self.greeted {
            return Reply::NEED_HELO;
        }
        if self.transaction.is_some() {
            return Reply::NESTED_MAIL;
        }
        // smtp-proto reports an absurd SIZE as usize::MAX; either way too big.
        if declared_size != 0 && declared_size > self.settings.max_message_bytes {
            return Reply::TOO_BIG;
        }
        let sender = if address.is_empty() {
            None
        } else {
            match EmailAddress::parse(address) {
                Ok(address) => Some(address.as_str().to_owned()),
                Err(_) => return Reply::BAD_SENDER,
            }
        };
        if !self
            .limits
            .client_messages
            .try_take(&self.client, Instant::now())
        {
            return Reply::RATE_LIMITED;
        }
        self.transactions += 1;
        self.transaction = Some(Transaction {
            sender,
            recipient: None,
        });
        Reply::SENDER_OK
    }
}

/// RFC 5321 4.1.1.11: a MAIL parameter of an extension we did not announce
/// is refused (555), not silently ignored; we announce SIZE, 8BITMIME
/// (BODY=7BIT|8BITMIME) and SMTPUTF8. Accepting REQUIRETLS or RET/ENVID
/// would promise what we do not do.
pub(super) fn only_advertised_mail_parameters<T>(from: &smtp_proto::MailFrom<T>) -> bool {
    let advertised =
        smtp_proto::MAIL_BODY_7BIT | smtp_proto::MAIL_BODY_8BITMIME | smtp_proto::MAIL_SMTPUTF8;
    from.flags & !advertised == 0
        && from.trans_id.is_none()
        && from.env_id.is_none()
        && from.solicit.is_none()
        && from.mtrk.is_none()
        && from.auth.is_none()
        && from.by == 0
        && from.hold_for == 0
        && from.hold_until == 0
        && from.mt_priority == 0
}
