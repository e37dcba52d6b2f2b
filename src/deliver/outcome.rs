//! What became of a message handed to `deliver`. The SMTP session maps it
//! to its reply (`smtp/reply.rs`) and the hook to its HTTP status; deliver
//! decides no reply text.

use crate::rewrite::RewriteError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded (or, by policy, accepted and dropped).
    Delivered,
    /// The recipient exists no more (a conversation revoked meanwhile).
    NoSuchRecipient,
    /// The message has passed through us before.
    RoutingLoop,
    /// Our own fault: the store could not take the row, a notice could not
    /// be built or signed. Nothing was forwarded.
    LocalError,
    /// The sender is not the partner (one outcome for every reason).
    SenderRefused,
    /// The sender's checks could not finish (DNS).
    DnsTemporary,
    UpstreamTemporary,
    UpstreamPermanent,
    /// The message cannot be forwarded as it is.
    Refused(RewriteError),
}
