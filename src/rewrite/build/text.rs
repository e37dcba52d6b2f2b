//! A text part's content: decoded from its charset and through its
//! format's scrubber (HTML, iCalendar, or plain text unflowed and
//! unarmored first), each copy charged to the budget.

use super::Writer;
use crate::rewrite::charset;
use crate::rewrite::policy::PartRule;
use crate::rewrite::scrub::html::{self, HtmlContext};
use crate::rewrite::scrub::ical::{self, CalendarContext};
use crate::rewrite::scrub::{armor, flowed};
use crate::rewrite::tree::Entity;
use crate::rewrite::RewriteError;

impl Writer<'_, '_> {
    /// A text part's content, decoded and through its scrubber.
    pub(super) fn text(
        &mut self,
        entity: &Entity<'_>,
        decoded: &[u8],
    ) -> Result<String, RewriteError> {
        let header = &entity.header;
        let label = header.param("charset").map(str::to_owned).or_else(|| {
            (entity.rule == PartRule::Html)
                .then(|| charset::sniff_html(decoded))
                .flatten()
        });
        let text = charset::decode(decoded, label.as_deref());
        self.budget.charge(text.len())?;
        let scrubber = self.cx.scrubber;
        let scrubbed = match entity.rule {
            PartRule::Html => {
                let content_id = |id: &str| Some(self.cx.content_id(id));
                html::scrub(
                    &text,
                    &HtmlContext {
                        scrubber,
                        remote_content: self.cx.remote_content,
                        content_id: &content_id,
                    },
                )
                .map_err(|_| RewriteError::TooComplex)?
            }
            // Unfolded before it is decoded: a fold may split a character.
            PartRule::Calendar if label.is_none() || is_utf8(label.as_deref()) => {
                ical::scrub_bytes(
                    decoded,
                    &CalendarContext {
                        scrubber,
                        uid: self.cx.calendar_uid,
                    },
                )
                .map_err(|_| RewriteError::TooComplex)?
            }
            PartRule::Calendar => ical::scrub(
                &text,
                &CalendarContext {
                    scrubber,
                    uid: self.cx.calendar_uid,
                },
            )
            .map_err(|_| RewriteError::TooComplex)?,
            _ => {
                let flowed = header
                    .param("format")
                    .is_some_and(|f| f.eq_ignore_ascii_case("flowed"));
                let unflowed = flowed.then(|| {
                    let delsp = header
                        .param("delsp")
                        .is_some_and(|d| d.eq_ignore_ascii_case("yes"));
                    flowed::unflow(&text, delsp)
                });
                let text = unflowed.as_deref().unwrap_or(&text);
                let unarmored = armor::strip(text);
                let text = unarmored.as_deref().unwrap_or(text);
                scrubber.text(text).into_owned()
            }
        };
        self.budget.charge(scrubbed.len())?;
        Ok(scrubbed)
    }
}

fn is_utf8(label: Option<&str>) -> bool {
    label.is_some_and(|l| {
        let l = l.trim().to_ascii_lowercase();
        l == "utf-8" || l == "utf8" || l == "us-ascii"
    })
}
