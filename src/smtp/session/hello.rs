//! HELO, EHLO and STARTTLS.

use super::*;

impl Session<'_> {
    pub(super) fn hello(&mut self, host: &str, extended: bool) -> Step {
        if host.trim().is_empty() {
            return self.reply_step(Reply::SYNTAX);
        }
        self.helo = Some(host.trim().to_owned());
        self.greeted = true;
        self.transaction = None;
        let hello = reply::hello(
            self.services.hostname.as_str(),
            extended,
            self.settings.max_message_bytes,
            self.settings.tls_available && !self.tls_active,
        );
        self.out.extend_from_slice(hello.as_bytes());
        Step::Continue
    }

    pub(super) fn starttls(&mut self) -> Step {
        if self.tls_active {
            return self.reply_step(Reply::TLS_ALREADY);
        }
        if !self.settings.tls_available {
            return self.reply_step(Reply::NOT_IMPLEMENTED);
        }
        Reply::READY_FOR_TLS.write_to(&mut self.out);
        Step::StartTls
    }
}
