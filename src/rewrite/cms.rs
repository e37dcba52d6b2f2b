//! TEMPORARY stand-in until the CMS reader lands (branch scrub-ical).
pub enum Cms {
    SignedData { content: Option<Vec<u8>> },
    EnvelopedData,
    AuthEnvelopedData,
    CompressedData,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("unreadable")]
    Unreadable,
}

pub fn classify(_blob: &[u8]) -> Result<Cms, CmsError> {
    Err(CmsError::Unreadable)
}
