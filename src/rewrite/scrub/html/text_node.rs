//! A whole text node in either pass: pass 1 notes which lines show the
//! sender's address and gathers each line's run, where matches that inline
//! tags split are found; pass 2 applies those edits, replaces the display
//! name beside an address and scrubs the rest.

use std::borrow::Cow;

use super::lines::LineOf;
use super::split::{self, Edits, Run};
use super::text::{escape_text, raw_is_safe, shown, TextKind};
use super::Walk;
use crate::rewrite::scrub::css::scrub_css;
use crate::rewrite::scrub::replace_ranges;

impl Walk<'_, '_> {
    /// One whole text node: lines noted; in pass 2, its new raw content
    /// (`None` to leave it as it was).
    pub(super) fn text_node(&mut self, raw: &str, kind: TextKind) -> Option<String> {
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
    pub(super) fn close_run(&mut self) {
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
    pub(super) fn split_edits_beside_address(&mut self) -> Edits {
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
        Cow::Owned(replace_ranges(seen, found, replacement))
    }
}
