//! Messages the front-end asks us to send (`POST /v1/messages`): built
//! from validated fields, then the same tail as forwarded mail.

pub mod draft;

use super::tail::{Letter, LetterKind, SendError};
use super::Deliverer;
use crate::store::{now_unix, ConversationView, LogEntry};
use draft::{ComposeError, Draft};

/// What the front-end asked to send, in a live conversation.
pub struct Request<'a> {
    pub view: &'a ConversationView,
    pub subject: &'a str,
    pub text: Option<&'a str>,
    pub html: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposedError {
    #[error(transparent)]
    Draft(#[from] ComposeError),
    #[error(transparent)]
    Send(#[from] SendError),
}

impl Deliverer {
    /// Composes the message from `request.view`'s user to its partner and
    /// sends it; returns its Message-ID (without brackets).
    pub async fn send_composed(&self, request: &Request<'_>) -> Result<String, ComposedError> {
        let view = request.view;
        let now = now_unix();
        let message_id = format!("{}@{}", uuid::Uuid::new_v4().simple(), self.alias_domain);
        let message = draft::compose(&Draft {
            hostname: self.hostname.as_str(),
            from_alias: &view.alias,
            from_display_name: view.display_name.as_deref(),
            alias_domain: self.alias_domain.as_str(),
            to_email: &view.partner_email,
            subject: request.subject,
            text: request.text,
            html: request.html,
            message_id: &message_id,
            now,
        })?;
        let row = LogEntry {
            sent_at: now,
            sender_id: Some(view.user_id.clone()),
            recipient_id: Some(view.partner_id.clone()),
            alias: view.partner_alias.clone(),
            subject: request.subject.to_owned(),
        };
        let letter = Letter {
            message,
            to: &view.partner_email,
            kind: LetterKind::BetweenUsers {
                recipient_alias: &view.partner_alias,
                row,
            },
        };
        self.tail.send(letter).await?;
        self.tail.metrics.composed.inc();
        tracing::debug!(alias = %view.alias, "composed message sent");
        Ok(message_id)
    }
}
