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
//!
//! The parts: `rewriter` drives lol_html and its element and text
//! handlers, `attributes` holds the rule for each kept attribute,
//! `text_node` what happens to a whole text node in either pass, and
//! `unfinished` cuts a tag the end of the input left open.

mod attributes;
mod lines;
mod policy;
mod rewriter;
mod split;
mod text;
mod text_node;
mod unfinished;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use super::address::AddressMatcher;
pub use super::css::RemoteContent;
use super::names::NameMatcher;
use super::Scrubber;
use lines::Lines;
use split::{Edit, Edits, Run};
use unfinished::without_unfinished_tag;

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
    rewriter::run(html, &mut first, |_| {})?;
    first.close_run();
    let mut second = Walk::new(cx, names.as_ref(), &addresses, Pass::Rewrite);
    second.edits = first.split_edits_beside_address();
    second.marked = first.marked;
    let mut output = Vec::with_capacity(html.len());
    rewriter::run(html, &mut second, |chunk| output.extend_from_slice(chunk))?;
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
    /// Where the document ends and [`rewriter::EOF_CLOSER`] begins.
    input_len: usize,
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
}

#[cfg(test)]
mod tests;
