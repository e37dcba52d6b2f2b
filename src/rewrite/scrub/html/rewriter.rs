//! One pass of lol_html over the document: its settings and memory limit,
//! what is written after the input, and the element and text handlers
//! that hand each element and whole text node to the walk's rules.

use std::cell::RefCell;
use std::rc::Rc;

use lol_html::errors::RewritingError;
use lol_html::html_content::{ContentType, Element, TextChunk};
use lol_html::{
    doc_comments, doc_text, element, end_tag, HandlerResult, HtmlRewriter, MemorySettings, Settings,
};

use super::policy::{breaks_lines, element_action, is_preformatted, ElementAction};
use super::text::{decode_attribute, text_kind};
use super::{HtmlError, Walk};
use crate::rewrite::scrub::css::{normalize_url, scheme};

/// lol_html's own buffers (an unfinished tag, the open-element stack) may
/// not grow past this. With the whole document written at once lol_html
/// buffers little; this bounds the hostile rest.
const REWRITER_MEMORY: usize = 32 * 1024 * 1024;

/// The most one text node may hold: it is buffered whole to be scrubbed (an
/// address may straddle lol_html's chunks). Text nodes are appended to, so
/// the cost is linear; the limit bounds the copy.
pub(super) const MAX_TEXT_NODE: usize = 8 * 1024 * 1024;

const UTF8_CHARSET: &str = "<meta charset=\"utf-8\">";

/// Written after the document. lol_html copies a tag cut off by the end of
/// input to the output as it was, unscrubbed (`<img src="http://t/x` at
/// the very end); a client that renders the part inside a page of its own
/// could complete it. This closes a start tag in any of its states (quoted
/// values, names) so that it reaches the element handler, which removes it
/// as a browser would; where the input ended outside a tag, the closer is
/// text and is cut off again (`Walk::text_chunk`).
pub(super) const EOF_CLOSER: &str = "\"'>";

/// A text node longer than [`MAX_TEXT_NODE`].
#[derive(Debug, thiserror::Error)]
#[error("a text node over {MAX_TEXT_NODE} bytes")]
struct TextNodeTooLarge;

pub(super) fn run(
    html: &str,
    walk: &mut Walk<'_, '_>,
    sink: impl FnMut(&[u8]),
) -> Result<(), HtmlError> {
    walk.input_len = html.len();
    let walk = RefCell::new(walk);
    let settings = Settings::new()
        .with_strict(false)
        .with_memory_settings(MemorySettings::new().with_max_allowed_memory_usage(REWRITER_MEMORY))
        .append_element_content_handler(element!("*", |el| walk.borrow_mut().element(el)))
        .append_document_content_handler(doc_text!(|chunk| walk.borrow_mut().text_chunk(chunk)))
        .append_document_content_handler(doc_comments!(|comment| {
            // Outlook's `<!--[if mso]>` comments carry VML with remote images.
            comment.remove();
            Ok(())
        }));
    let mut rewriter = HtmlRewriter::new(settings, sink);
    rewriter.write(html.as_bytes()).map_err(rewriting_error)?;
    rewriter
        .write(EOF_CLOSER.as_bytes())
        .map_err(rewriting_error)?;
    rewriter.end().map_err(rewriting_error)
}

fn rewriting_error(error: RewritingError) -> HtmlError {
    match error {
        RewritingError::MemoryLimitExceeded(_) => {
            HtmlError::TooComplex("lol_html's memory limit (a giant tag or nesting)")
        }
        RewritingError::ContentHandlerError(e) if e.is::<TextNodeTooLarge>() => {
            HtmlError::TooComplex("a text node over the limit")
        }
        other => HtmlError::Rewriter(other.to_string()),
    }
}

impl Walk<'_, '_> {
    fn element(&mut self, el: &mut Element<'_, '_>) -> HandlerResult {
        // Already removed: inside an element removed with its content.
        if el.removed() {
            return Ok(());
        }
        // A start tag the end of the document cut off: a browser drops it.
        if el.source_location().bytes().end > self.input_len {
            el.remove();
            return Ok(());
        }
        let tag = el.tag_name();
        let action = element_action(&tag, |name| el.get_attribute(name));
        match action {
            ElementAction::Remove => {
                el.remove();
                return Ok(());
            }
            ElementAction::Utf8Charset => {
                el.replace(UTF8_CHARSET, ContentType::Html);
                return Ok(());
            }
            ElementAction::Unwrap => el.remove_and_keep_content(),
            ElementAction::Keep => {
                if (tag == "a" || tag == "area") && self.links_to_sender(el) {
                    let line = self.lines.borrow_mut().visible_here();
                    if !self.rewriting() {
                        self.marked.insert(line);
                    }
                }
                if self.rewriting() {
                    self.scrub_attributes(el, &tag)?;
                }
            }
        }
        self.track_lines(el, &tag);
        if tag == "style" && action == ElementAction::Keep && el.can_have_content() {
            self.in_style.set(true);
            let in_style = Rc::clone(&self.in_style);
            el.on_end_tag(end_tag!(move |_| {
                in_style.set(false);
                Ok(())
            }))?;
        }
        Ok(())
    }

    /// A `mailto:` link to the sender marks its line, like their address
    /// shown in text.
    fn links_to_sender(&self, el: &Element<'_, '_>) -> bool {
        el.get_attribute("href").is_some_and(|raw| {
            let href = normalize_url(&decode_attribute(&raw));
            scheme(&href).as_deref() == Some("mailto") && self.cx.scrubber.mentions_address(&href)
        })
    }

    fn track_lines(&self, el: &mut Element<'_, '_>, tag: &str) {
        let mut lines = self.lines.borrow_mut();
        if tag == "br" {
            lines.line_break();
        } else if breaks_lines(tag) {
            lines.block_boundary();
            if el.can_have_content() {
                let shared = Rc::clone(&self.lines);
                let _ = el.on_end_tag(end_tag!(move |_| {
                    shared.borrow_mut().block_boundary();
                    Ok(())
                }));
            }
        }
        if is_preformatted(tag) && el.can_have_content() {
            lines.enter_preformatted();
            let shared = Rc::clone(&self.lines);
            let _ = el.on_end_tag(end_tag!(move |_| {
                shared.borrow_mut().leave_preformatted();
                Ok(())
            }));
        }
    }

    fn text_chunk(&mut self, chunk: &mut TextChunk<'_>) -> HandlerResult {
        let past_end = chunk
            .source_location()
            .bytes()
            .end
            .saturating_sub(self.input_len);
        let own = chunk.as_str();
        let own = own.get(..own.len().saturating_sub(past_end)).unwrap_or(own);
        if self.text.len() + own.len() > MAX_TEXT_NODE {
            return Err(Box::new(TextNodeTooLarge));
        }
        if !chunk.last_in_text_node() {
            self.text.push_str(own);
            if self.rewriting() {
                chunk.remove();
            }
            return Ok(());
        }
        let kind = text_kind(chunk.text_type(), self.in_style.get());
        if self.text.is_empty() && past_end == 0 {
            let replacement = self.text_node(chunk.as_str(), kind);
            if let (true, Some(new)) = (self.rewriting(), replacement) {
                chunk.replace(&new, ContentType::Html);
            }
        } else {
            // Earlier chunks were removed, or the closer cut off: the
            // whole node is written here.
            let mut whole = std::mem::take(&mut self.text);
            whole.push_str(own);
            let replacement = self.text_node(&whole, kind);
            if self.rewriting() {
                chunk.replace(replacement.as_deref().unwrap_or(&whole), ContentType::Html);
            }
        }
        Ok(())
    }
}
