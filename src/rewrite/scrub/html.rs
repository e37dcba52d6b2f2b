//! HTML rebuilt for the reader: a client renders it without contacting any
//! host the sender chose (under `remote_content = "block"`) and without
//! showing the sender's identity. lol_html, a streaming rewriter that
//! tokenizes as browsers do, carries every element through an allowlist
//! (`policy`), every kept attribute through a rule for its kind, every text
//! node through the [`Scrubber`], and CSS through [`css`](super::css).
//!
//! The display name is replaced only beside the sender's address (on a
//! line that shows it, or the line before, as `Scrubber::text` does for
//! plain text). Lines in HTML are known only after the fact (an address
//! may come after the name, in a later text node or a `mailto:` link), so
//! the document is read twice: pass 1 only marks the lines that show the
//! address (and finds an address or name that inline tags split across
//! text nodes, `split`), pass 2 rewrites.
//!
//! What is written back raw: text nodes and attribute values that
//! scrubbing leaves unchanged (so a document with nothing to change comes
//! out byte for byte), and tags' own syntax. Everything changed is written
//! escaped. Text that lol_html read in a special mode (`<title>`, `<xmp>`,
//! raw text) is escaped whenever it holds `<`, so markup can reach the
//! client only through tags that passed the allowlist, even where lol_html
//! and a browser would disagree about a tag that switches the parsing mode
//! (hence non-strict parsing: refusing such documents would gain nothing).

mod lines;
mod policy;
mod split;
mod text;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use lol_html::errors::RewritingError;
use lol_html::html_content::{ContentType, Element, TextChunk};
use lol_html::{
    doc_comments, doc_text, element, end_tag, HandlerResult, HtmlRewriter, MemorySettings, Settings,
};

use super::address::AddressMatcher;
pub use super::css::RemoteContent;
use super::css::{is_clickable, normalize_url, scheme, scrub_css, UrlPolicy};
use super::names::NameMatcher;
use super::Scrubber;
use lines::{LineOf, Lines};
use policy::{
    attribute_rule, breaks_lines, element_action, is_preformatted, AttributeRule, ElementAction,
};
use split::{Edit, Edits, Run};
use text::{
    decode_attribute, escape_attribute, escape_text, raw_is_safe, shown, srcset_urls, text_kind,
    TextKind,
};

/// What the scrubber needs to know about the message the HTML is part of.
pub struct HtmlContext<'a> {
    pub scrubber: &'a Scrubber,
    pub remote_content: RemoteContent,
    /// The new Content-ID for a `cid:` reference (its text after `cid:`,
    /// percent-decoded); None when no part of this message has that id. An
    /// id it returned must map to itself: the scrubber runs again on its
    /// own output.
    pub content_id: &'a dyn Fn(&str) -> Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// The document exceeds what the rewriter buffers (a giant tag or
    /// text node); the caller decides what to forward instead.
    #[error("the HTML is too complex to rewrite: {0}")]
    TooComplex(&'static str),
    #[error("the HTML rewriter failed: {0}")]
    Rewriter(String),
}

/// lol_html's own buffers (an unfinished tag, the open-element stack) may
/// not grow past this. With the whole document written at once lol_html
/// buffers little; this bounds the hostile rest.
const REWRITER_MEMORY: usize = 32 * 1024 * 1024;

/// The most one text node may hold: it is buffered whole to be scrubbed (an
/// address may straddle lol_html's chunks). Text nodes are appended to, so
/// the cost is linear; the limit bounds the copy.
const MAX_TEXT_NODE: usize = 8 * 1024 * 1024;

const UTF8_CHARSET: &str = "<meta charset=\"utf-8\">";

/// Written after the document. lol_html copies a tag cut off by the end of
/// input to the output as it was, unscrubbed (`<img src="http://t/x` at
/// the very end); a client that renders the part inside a page of its own
/// could complete it. This closes a start tag in any of its states (quoted
/// values, names) so that it reaches the element handler, which removes it
/// as a browser would; where the input ended outside a tag, the closer is
/// text and is cut off again (`Walk::text_chunk`).
const EOF_CLOSER: &str = "\"'>";

/// The document without a tag, comment or declaration that the end of the
/// input cut off (`… <img src="http://t/x` at the very end): a browser drops
/// it, and left in, it could be read as a tag by whoever parses the output
/// next. Scans once, tracking only tags, quoted attribute values and
/// comments: inside `<style>` or `<title>` a `<` is text to a browser, and
/// cutting there drops some text, never adds any.
fn without_unfinished_tag(html: &str) -> &str {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Text,
        Tag,
        Quoted(u8),
        Comment,
    }
    let bytes = html.as_bytes();
    let mut state = State::Text;
    let mut tag_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        state = match state {
            State::Text if b == b'<' => {
                tag_start = i;
                if bytes[i..].starts_with(b"<!--") {
                    i += 3;
                    State::Comment
                } else {
                    State::Tag
                }
            }
            State::Text => State::Text,
            State::Tag if b == b'"' || b == b'\'' => State::Quoted(b),
            State::Tag if b == b'>' => State::Text,
            State::Tag => State::Tag,
            State::Quoted(quote) if b == quote => State::Tag,
            State::Quoted(quote) => State::Quoted(quote),
            State::Comment if bytes[i..].starts_with(b"-->") => {
                i += 2;
                State::Text
            }
            State::Comment => State::Comment,
        };
        i += 1;
    }
    match state {
        State::Text => html,
        // `tag_start` is the offset of an ASCII `<`: a character boundary.
        _ => &html[..tag_start],
    }
}

/// Rounds [`scrub`] runs at most before it gives up on a document.
const MAX_ROUNDS: usize = 4;

/// The HTML rebuilt: see the module documentation. Run again on its own
/// output until nothing changes: malformed markup that lol_html reads as
/// text in one place can be a tag to the next parser (a browser, the
/// reader's client); the output is what a parser of it sees, judged.
/// Markup that never settles is refused.
pub fn scrub(html: &str, cx: &HtmlContext<'_>) -> Result<String, HtmlError> {
    let mut current = scrub_once(html, cx)?;
    if current == html {
        return Ok(current);
    }
    for _ in 1..MAX_ROUNDS {
        let next = scrub_once(&current, cx)?;
        if next == current {
            return Ok(current);
        }
        current = next;
    }
    Err(HtmlError::TooComplex("the markup changes on every pass"))
}

fn scrub_once(html: &str, cx: &HtmlContext<'_>) -> Result<String, HtmlError> {
    let html = without_unfinished_tag(html);
    let identity = cx.scrubber.identity();
    let names = NameMatcher::new(&identity.names);
    let addresses: Vec<AddressMatcher> = identity
        .addresses
        .iter()
        .filter_map(|a| AddressMatcher::new(a))
        .collect();
    let mut first = Walk::new(cx, names.as_ref(), &addresses, Pass::MarkLines);
    run(html, &mut first, |_| {})?;
    first.close_run();
    let mut second = Walk::new(cx, names.as_ref(), &addresses, Pass::Rewrite);
    second.edits = first.split_edits_beside_address();
    second.marked = first.marked;
    let mut output = Vec::with_capacity(html.len());
    run(html, &mut second, |chunk| output.extend_from_slice(chunk))?;
    String::from_utf8(output).map_err(|_| HtmlError::Rewriter("output is not UTF-8".into()))
}

/// The two passes: the same walk, different effects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Marks the lines that show the sender's address and finds what
    /// inline tags split; writes nothing.
    MarkLines,
    /// Rewrites, knowing both.
    Rewrite,
}

/// A text node longer than [`MAX_TEXT_NODE`].
#[derive(Debug, thiserror::Error)]
#[error("a text node over {MAX_TEXT_NODE} bytes")]
struct TextNodeTooLarge;

/// State of one pass. Line state and the `<style>` flag are shared with
/// end-tag handlers, which lol_html requires to be `'static`.
struct Walk<'c, 'a> {
    cx: &'c HtmlContext<'a>,
    names: Option<&'c NameMatcher>,
    addresses: &'c [AddressMatcher],
    pass: Pass,
    /// Lines that show the sender's address (pass 1 fills it).
    marked: HashSet<usize>,
    /// Split addresses, and split names beside an address, per text node.
    edits: Edits,
    /// Split names with their line, kept only if beside an address.
    name_splits: Vec<(usize, usize, Edit)>,
    /// Visible text nodes so far (their numbers are the same in both passes).
    nodes: usize,
    /// The current line's text nodes (pass 1).
    run: Run,
    lines: Rc<RefCell<Lines>>,
    in_style: Rc<Cell<bool>>,
    /// The chunks of the current text node so far.
    text: String,
    /// Where the document ends and [`EOF_CLOSER`] begins.
    input_len: usize,
}

fn run(html: &str, walk: &mut Walk<'_, '_>, sink: impl FnMut(&[u8])) -> Result<(), HtmlError> {
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

impl<'c, 'a> Walk<'c, 'a> {
    fn new(
        cx: &'c HtmlContext<'a>,
        names: Option<&'c NameMatcher>,
        addresses: &'c [AddressMatcher],
        pass: Pass,
    ) -> Self {
        Self {
            cx,
            names,
            addresses,
            pass,
            marked: HashSet::new(),
            edits: Edits::new(),
            name_splits: Vec::new(),
            nodes: 0,
            run: Run::default(),
            lines: Rc::default(),
            in_style: Rc::default(),
            text: String::new(),
            input_len: 0,
        }
    }

    fn rewriting(&self) -> bool {
        self.pass == Pass::Rewrite
    }

    fn policy(&self) -> UrlPolicy<'a> {
        UrlPolicy {
            remote: self.cx.remote_content,
            content_id: self.cx.content_id,
        }
    }

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

    /// Kept attributes scrubbed by their rule, the rest removed, and all
    /// written anew, quoted and escaped: a value as it came (unquoted, with
    /// a stray quote) could be read otherwise by the next parser.
    fn scrub_attributes(&self, el: &mut Element<'_, '_>, tag: &str) -> HandlerResult {
        let attributes: Vec<(String, String)> = el
            .attributes()
            .iter()
            .map(|a| (a.name(), a.value()))
            .collect();
        let mut seen = HashSet::new();
        let mut kept = Vec::with_capacity(attributes.len());
        let mut changed = !attributes.is_empty();
        for (name, raw) in &attributes {
            // A browser keeps the first of repeated attributes.
            if !seen.insert(name.as_str()) {
                changed = true;
                continue;
            }
            let decoded = decode_attribute(raw);
            match self.attribute_value(tag, name, &decoded) {
                Some(value) => {
                    changed |= value != decoded;
                    kept.push((name.as_str(), value));
                }
                None => changed = true,
            }
        }
        if changed {
            for (name, _) in &attributes {
                el.remove_attribute(name);
            }
            for (name, value) in kept {
                el.set_attribute(name, &escape_attribute(&value))?;
            }
        }
        Ok(())
    }

    /// A kept attribute's new value, or `None` when it goes.
    fn attribute_value(&self, tag: &str, name: &str, value: &str) -> Option<String> {
        let scrubber = self.cx.scrubber;
        match attribute_rule(tag, name) {
            AttributeRule::Drop => None,
            AttributeRule::Text => Some(scrubber.text(value).into_owned()),
            AttributeRule::Plain => Some(scrubber.identifiers(value).into_owned()),
            AttributeRule::Style => {
                let css = scrub_css(value, self.cx.remote_content, self.cx.content_id);
                let css = scrubber.identifiers(&css).into_owned();
                (!css.trim().is_empty()).then_some(css)
            }
            AttributeRule::Link => self
                .clickable(value)
                .map(|url| scrubber.identifiers(&url).into_owned()),
            AttributeRule::Loaded => self
                .loaded_image(value)
                .map(|url| scrubber.identifiers(&url).into_owned()),
            AttributeRule::Srcset => {
                // Under Keep, only when every candidate is remote http(s).
                let urls = srcset_urls(value);
                let remote = |url: &&str| {
                    matches!(
                        scheme(&normalize_url(url)).as_deref(),
                        Some("http" | "https")
                    )
                };
                let kept = self.cx.remote_content == RemoteContent::Keep
                    && !urls.is_empty()
                    && urls.iter().all(remote);
                kept.then(|| scrubber.identifiers(value).into_owned())
            }
        }
    }

    /// A link: kept unless it runs or embeds something; a link to one of
    /// the message's parts follows the part's new Content-ID (the old one
    /// often names the sender's host), and goes when no part has it.
    fn clickable(&self, url: &str) -> Option<String> {
        if !is_clickable(url) {
            return None;
        }
        if scheme(&normalize_url(url)).as_deref() == Some("cid") {
            return self.policy().loaded(url);
        }
        Some(url.to_owned())
    }

    /// An image URL: the CSS rule, except that `data:` must be an image.
    fn loaded_image(&self, url: &str) -> Option<String> {
        let normalized = normalize_url(url);
        let media_type = normalized.get("data:".len()..).unwrap_or_default();
        if scheme(&normalized).as_deref() == Some("data")
            && !media_type
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("image/")
        {
            return None;
        }
        self.policy().loaded(url)
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

    /// One whole text node: lines noted; in pass 2, its new raw content
    /// (`None` to leave it as it was).
    fn text_node(&mut self, raw: &str, kind: TextKind) -> Option<String> {
        match kind {
            TextKind::Hidden => return Some(String::new()),
            TextKind::Css if !self.rewriting() => return None,
            TextKind::Css => {
                let css = scrub_css(raw, self.cx.remote_content, self.cx.content_id);
                let css = self.cx.scrubber.identifiers(&css).into_owned();
                return (css != raw).then_some(css);
            }
            TextKind::Markup | TextKind::Literal { .. } => {}
        }
        let number = self.nodes;
        self.nodes += 1;
        let seen = shown(raw, kind);
        let (start, preformatted) = {
            let mut lines = self.lines.borrow_mut();
            let start = lines.text_starts(&seen);
            let preformatted = lines.in_preformatted();
            lines.text_ends(&seen);
            (start, preformatted)
        };
        if !self.rewriting() {
            let found = self.address_lines(&seen, start, preformatted);
            self.marked.extend(found);
            self.extend_run(number, &seen, start, preformatted);
            return None;
        }
        // Lines were counted on the text as it came, in both passes; the
        // edits of split matches come after.
        let edited = split::apply(&seen, self.edits.get(&number));
        let named = self.names_beside_address(&edited, start, preformatted);
        let scrubbed = self.cx.scrubber.identifiers(&named);
        if scrubbed == seen && raw_is_safe(raw, kind) {
            None
        } else {
            Some(escape_text(&scrubbed))
        }
    }

    /// Whether a line shows the sender's address or is the line before one.
    fn beside_address(&self, line: usize) -> bool {
        self.marked.contains(&line) || self.marked.contains(&line.saturating_add(1))
    }

    /// Pass 1: adds a text node to its line's run, closing the previous
    /// line's. Preformatted text is not joined (its lines are inside it).
    fn extend_run(&mut self, number: usize, seen: &str, start: usize, preformatted: bool) {
        if preformatted || self.run.line != start || self.run.is_full() {
            self.close_run();
            self.run = Run::new(start);
        }
        if !preformatted {
            self.run.push(number, seen);
        }
    }

    /// Pass 1: the current run's matches that inline tags split, as edits.
    fn close_run(&mut self) {
        let run = std::mem::take(&mut self.run);
        if !run.has_boundaries() {
            return;
        }
        let joined = run.joined();
        let identity = self.cx.scrubber.identity();
        let addresses: Vec<_> = self
            .addresses
            .iter()
            .flat_map(|m| m.find_all(joined.as_bytes()))
            .collect();
        let address_edits = run.edits_for(&addresses, &identity.alias_address);
        if !address_edits.is_empty() {
            self.marked.insert(run.line);
        }
        for (number, edit) in address_edits {
            self.edits.entry(number).or_default().push(edit);
        }
        if self.names.is_some() {
            let found = self.cx.scrubber.name_matches(joined);
            for (number, edit) in run.edits_for(&found, &identity.name_replacement) {
                self.name_splits.push((run.line, number, edit));
            }
        }
    }

    /// After pass 1: split addresses, and the split names that stand
    /// beside an address, per text node.
    fn split_edits_beside_address(&mut self) -> Edits {
        let mut edits = std::mem::take(&mut self.edits);
        for (line, number, edit) in std::mem::take(&mut self.name_splits) {
            if self.beside_address(line) {
                edits.entry(number).or_default().push(edit);
            }
        }
        edits
    }

    /// The lines of this text node that show the sender's address.
    fn address_lines(&self, seen: &str, start: usize, preformatted: bool) -> Vec<usize> {
        let scrubber = self.cx.scrubber;
        if !preformatted {
            return if scrubber.mentions_address(seen) {
                vec![start]
            } else {
                Vec::new()
            };
        }
        seen.split('\n')
            .enumerate()
            .filter(|(_, line)| scrubber.mentions_address(line))
            .map(|(offset, _)| start.saturating_add(offset))
            .collect()
    }

    /// The display name replaced where it stands on a marked line or on the
    /// line just before one.
    fn names_beside_address<'t>(
        &self,
        seen: &'t str,
        start: usize,
        preformatted: bool,
    ) -> Cow<'t, str> {
        if self.names.is_none() {
            return Cow::Borrowed(seen);
        }
        let beside = |line: usize| self.beside_address(line);
        let mut line_of = LineOf::new(seen, start, preformatted);
        let found: Vec<_> = self
            .cx
            .scrubber
            .name_matches(seen)
            .into_iter()
            .filter(|range| beside(line_of.at(range.start)))
            .collect();
        if found.is_empty() {
            return Cow::Borrowed(seen);
        }
        let replacement = &self.cx.scrubber.identity().name_replacement;
        Cow::Owned(super::replace_ranges(seen, found, replacement))
    }
}

#[cfg(test)]
mod tests;
