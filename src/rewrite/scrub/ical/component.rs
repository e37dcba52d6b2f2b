//! Components: BEGIN and END followed through the nesting, each
//! component kept only where the allowlist puts it, and the properties of
//! a kept one handed to [`property`](super::property).

use super::content_line::{self, ContentLine};
use super::property::property;
use super::{CalendarContext, CalendarError, MAX_DEPTH, PRODID};

/// A component begun and not yet ended.
pub(super) struct Open {
    /// Upper case.
    name: String,
    /// Whether it (and so everything up to it) is allowlisted.
    kept: bool,
}

pub(super) struct Rebuild<'c, 'a> {
    pub(super) cx: &'c CalendarContext<'a>,
    pub(super) out: String,
    pub(super) open: Vec<Open>,
    pub(super) calendars: usize,
}

impl Rebuild<'_, '_> {
    pub(super) fn line(&mut self, line: &str) -> Result<(), CalendarError> {
        // Not a content line: nothing of it can be kept.
        let Some(parsed) = ContentLine::parse(line) else {
            return Ok(());
        };
        // Trailing blanks after a component name are a producer's slip.
        if parsed.name.eq_ignore_ascii_case("BEGIN") {
            return self.begin(parsed.value.trim_end());
        }
        if parsed.name.eq_ignore_ascii_case("END") {
            return self.end(parsed.value.trim_end());
        }
        if self.open.last().is_some_and(|c| c.kept) {
            if let Some(rebuilt) = property(&parsed, self.cx) {
                content_line::fold_into(&mut self.out, &rebuilt);
            }
        }
        Ok(())
    }

    fn begin(&mut self, component: &str) -> Result<(), CalendarError> {
        if !content_line::is_name(component) {
            return Err(CalendarError::NotACalendar(
                "BEGIN without a component name",
            ));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(CalendarError::TooDeep);
        }
        let name = component.to_ascii_uppercase();
        let kept = match self.open.last() {
            None => is_allowed_child(None, &name),
            Some(parent) => parent.kept && is_allowed_child(Some(&parent.name), &name),
        };
        if kept {
            content_line::fold_into(&mut self.out, &format!("BEGIN:{name}"));
            if name == "VCALENDAR" {
                self.calendars += 1;
                content_line::fold_into(&mut self.out, &format!("PRODID:{PRODID}"));
            }
        }
        self.open.push(Open { name, kept });
        Ok(())
    }

    fn end(&mut self, component: &str) -> Result<(), CalendarError> {
        let Some(open) = self.open.pop() else {
            return Err(CalendarError::NotACalendar("END without BEGIN"));
        };
        if !open.name.eq_ignore_ascii_case(component) {
            return Err(CalendarError::NotACalendar("END does not match its BEGIN"));
        }
        if open.kept {
            content_line::fold_into(&mut self.out, &format!("END:{}", open.name));
        }
        Ok(())
    }
}

/// Where a component may stand: VCALENDAR at the top, the rest where RFC
/// 5545 puts them.
fn is_allowed_child(parent: Option<&str>, child: &str) -> bool {
    match parent {
        None => child == "VCALENDAR",
        Some("VCALENDAR") => matches!(
            child,
            "VEVENT" | "VTODO" | "VJOURNAL" | "VFREEBUSY" | "VTIMEZONE"
        ),
        Some("VTIMEZONE") => matches!(child, "STANDARD" | "DAYLIGHT"),
        Some("VEVENT" | "VTODO") => child == "VALARM",
        Some(_) => false,
    }
}
