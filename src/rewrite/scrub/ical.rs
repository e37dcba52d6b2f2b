//! TEMPORARY stand-in until the calendar scrubber lands (branch scrub-ical).
use super::Scrubber;

pub struct CalendarContext<'a> {
    pub scrubber: &'a Scrubber,
    pub uid: &'a dyn Fn(&str) -> Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("too large")]
    TooLarge,
}

pub fn scrub(text: &str, cx: &CalendarContext<'_>) -> Result<String, CalendarError> {
    Ok(cx.scrubber.text(text).into_owned())
}
