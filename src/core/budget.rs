//! What a message costs in memory while it is forwarded: the bounds the
//! rewrite works within, in one place, so the session can reserve them from
//! the buffer budget before the rewrite starts and the config can check
//! that the budget holds one message at the size limit.

/// MIME entities (parts, multiparts, embedded messages) a message may have.
pub const MAX_ENTITIES: usize = 500;

/// The most a forwarded copy of an `input_len`-byte message may take:
/// every part is re-encoded (base64 of 8-bit content grows by 37%, a
/// quoted-printable part never beyond its base64 size), boundaries and
/// part headers are rewritten (at most [`MAX_ENTITIES`] of them, a
/// few hundred bytes each), and our headers add at most 32 KiB (the ids
/// dominate: 2 x 21 listed plus the Message-ID, each a token of a 200-byte
/// id on a long alias domain, about 610 bytes a line). A copy that would
/// be larger is refused.
pub fn max_output_len(input_len: usize) -> usize {
    input_len
        .saturating_add(input_len.saturating_mul(3) / 8)
        .saturating_add(MAX_ENTITIES * 512)
        .saturating_add(32 * 1024)
}

/// Memory the rewrite of an `input_len`-byte message may use beyond the
/// input: its output, and the decoded and scrubbed copies charged to its
/// budget (the rewrite charges them to a budget of three times the input). The session reserves this much of the
/// buffer budget before it rewrites.
pub fn memory_needed(input_len: usize) -> usize {
    max_output_len(input_len).saturating_add(working_copies(input_len))
}

/// What the rewrite may decode or copy beyond the input and its output,
/// over the whole rewrite: three times the input (a part decoded,
/// scrubbed and re-encoded; an encoded forwarded message decoded once
/// more), plus a small allowance. The rewrite's budget starts here.
pub fn working_copies(input_len: usize) -> usize {
    input_len.saturating_mul(3).saturating_add(64 * 1024)
}

/// What one message at the size limit holds of the buffer budget while it
/// is forwarded: the message, the rewrite's working copies and its output,
/// plus a budget step.
pub fn held_per_message(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_add(memory_needed(max_message_bytes))
        .saturating_add(64 * 1024)
}
