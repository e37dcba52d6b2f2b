//! The forwarded message's own header, written by the relay up to its MIME
//! tree: the one trace field, From, To and Date, the threading ids through
//! the mapper, the scrubbed Subject, the few fields the policy keeps by
//! value, and MIME-Version.

use mail_builder::headers::date::Date;

use super::policy::{self, FieldRule};
use super::threading::{self, message_ids, IdMapper};
use super::{build, push_line, Context, Inspected};

/// The header fields before the MIME tree; `subject` is the Subject as
/// forwarded (scrubbed, one line).
pub(super) fn write(
    out: &mut Vec<u8>,
    message: &Inspected<'_>,
    ctx: &Context<'_>,
    ids: &IdMapper<'_>,
    subject: &str,
) {
    write_origin(out, message, ctx);
    write_threading(out, message, ctx, ids);
    if message.fields.iter().any(|f| f.is("Subject")) {
        build::write_subject(out, subject);
    }
    write_kept_fields(out, message);
    push_line(out, "MIME-Version: 1.0");
}

/// The trace field, From, To and Date.
fn write_origin(out: &mut Vec<u8>, message: &Inspected<'_>, ctx: &Context<'_>) {
    // The one trace header: RFC 5321 wants a Received line; ours names
    // neither the client nor any IP.
    push_line(
        out,
        &format!(
            "Received: by {} (anonrelay) id {};\r\n\t{}",
            ctx.hostname,
            ctx.trace_id,
            Date::new(ctx.now).to_rfc822()
        ),
    );
    match &ctx.from_display_name {
        Some(name) => push_line(
            out,
            &format!("From: \"{name}\" <{}@{}>", ctx.from_alias, ctx.alias_domain),
        ),
        None => push_line(
            out,
            &format!("From: <{}@{}>", ctx.from_alias, ctx.alias_domain),
        ),
    }
    push_line(out, &format!("To: <{}@{}>", ctx.to_alias, ctx.alias_domain));
    // Date in UTC: the sender's time zone is a fingerprint.
    push_line(
        out,
        &format!(
            "Date: {}",
            Date::new(message.date.unwrap_or(ctx.now)).to_rfc822()
        ),
    );
}

/// Message-ID (the sender's, mapped, else a new one), In-Reply-To and
/// References, every id through the mapper.
fn write_threading(
    out: &mut Vec<u8>,
    message: &Inspected<'_>,
    ctx: &Context<'_>,
    ids: &IdMapper<'_>,
) {
    let message_id = message
        .fields
        .iter()
        .find(|f| f.is("Message-ID"))
        .and_then(|f| message_ids(f.value).next())
        .and_then(|id| ids.map(id))
        .unwrap_or_else(|| format!("{}@{}", ctx.trace_id, ctx.alias_domain));
    push_line(out, &format!("Message-ID: <{message_id}>"));
    for name in ["In-Reply-To", "References"] {
        if let Some(field) = message.fields.iter().find(|f| f.is(name)) {
            threading::write_id_list(out, name, &ids.map_all(field.value));
        }
    }
}

/// The fields the policy keeps when their value is one it names.
fn write_kept_fields(out: &mut Vec<u8>, message: &Inspected<'_>) {
    for (name, rule) in policy::KEPT_FIELDS {
        let FieldRule::OneOf(values) = rule else {
            continue;
        };
        let Some(field) = message.fields.iter().find(|f| f.is(name)) else {
            continue;
        };
        let value = String::from_utf8_lossy(field.value);
        let token = value.split([';', '(']).next().unwrap_or_default().trim();
        if let Some(kept) = values.iter().find(|v| v.eq_ignore_ascii_case(token)) {
            push_line(out, &format!("{name}: {kept}"));
        }
    }
}
