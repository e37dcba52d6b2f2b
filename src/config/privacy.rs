//! What the relay forwards, as the admin chose it: remote content in
//! HTML, auto-replies, and when a bouncing mailbox ends a conversation.

/// `[privacy] remote_content` in relay.toml: whether the reader's client
/// may load what the sender's HTML points at. Re-exported by `html`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteContent {
    /// Nothing loads but the message's own parts (`cid:`) and `data:`.
    #[default]
    Block,
    /// `http:`/`https:` resources are forwarded as the sender wrote them.
    Keep,
}

/// Admin choices about what the relay forwards (`relay.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayPolicy {
    /// `privacy.remote_content`: what HTML may make the reader's client load.
    pub remote_content: RemoteContent,
    /// `smtp.auto_replies`: forward auto-replies (rewritten like any
    /// message) or accept and drop them.
    pub auto_replies: AutoReplies,
    /// `bounces.disable_after`: revoke a conversation once the alias owner's
    /// mailbox bounced this many messages permanently within a week; 0 never.
    pub disable_after_hard_bounces: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoReplies {
    #[default]
    Forward,
    Drop,
}
