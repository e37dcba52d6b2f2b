//! Lines of visible text in HTML, so that the display-name rule ("on a line
//! that shows the address, or the line before") means in HTML what it
//! means in plain text. A line ends at `<br>` and at the start or end of a
//! block element; in preformatted text, at a newline too. Breaks between
//! which no text shows (`</p>` followed by `<p>`, whitespace between tags)
//! count once; each `<br>` counts, so `a<br><br>b` has an empty line
//! between `a` and `b`, as its plain-text form would.
//!
//! Both passes over a document drive the same calls in the same order, so
//! line numbers found in the first pass hold in the second.

#[derive(Debug, Default)]
pub struct Lines {
    current: usize,
    /// Breaks seen since the last visible text.
    pending: usize,
    /// How many preformatted elements are open.
    preformatted: usize,
}

impl Lines {
    /// A block element starts or ends.
    pub fn block_boundary(&mut self) {
        self.pending = self.pending.max(1);
    }

    /// A `<br>`.
    pub fn line_break(&mut self) {
        self.pending = self.pending.saturating_add(1);
    }

    pub fn enter_preformatted(&mut self) {
        self.preformatted = self.preformatted.saturating_add(1);
    }

    pub fn leave_preformatted(&mut self) {
        self.preformatted = self.preformatted.saturating_sub(1);
    }

    pub fn in_preformatted(&self) -> bool {
        self.preformatted > 0
    }

    /// The line something shown from here on stands on (a link, or text).
    pub fn visible_here(&mut self) -> usize {
        self.current = self.current.saturating_add(self.pending);
        self.pending = 0;
        self.current
    }

    /// The line a text node starts on. Text that shows nothing (white space
    /// between tags) leaves pending breaks for the next text.
    pub fn text_starts(&mut self, text: &str) -> usize {
        if text.trim().is_empty() {
            self.current
        } else {
            self.visible_here()
        }
    }

    /// After a text node: in preformatted text its newlines were breaks.
    pub fn text_ends(&mut self, text: &str) {
        if self.in_preformatted() {
            let newlines = text.bytes().filter(|&b| b == b'\n').count();
            self.current = self.current.saturating_add(newlines);
        }
    }
}

/// The line of each byte offset in `text`, which starts on `start`.
/// Offsets must be given in increasing order; newlines count only in
/// preformatted text. Linear in the text over all calls.
pub struct LineOf<'t> {
    text: &'t str,
    preformatted: bool,
    line: usize,
    counted_to: usize,
}

impl<'t> LineOf<'t> {
    pub fn new(text: &'t str, start: usize, preformatted: bool) -> Self {
        Self {
            text,
            preformatted,
            line: start,
            counted_to: 0,
        }
    }

    pub fn at(&mut self, offset: usize) -> usize {
        if self.preformatted && offset > self.counted_to {
            let newlines = self
                .text
                .as_bytes()
                .get(self.counted_to..offset)
                .map_or(0, |span| span.iter().filter(|&&b| b == b'\n').count());
            self.line = self.line.saturating_add(newlines);
            self.counted_to = offset;
        }
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaks_without_text_between_count_once_but_each_br_counts() {
        let mut lines = Lines::default();
        assert_eq!(lines.text_starts("Bob"), 0);
        lines.block_boundary(); // </p>
        assert_eq!(lines.text_starts("\n  "), 0);
        lines.block_boundary(); // <p>
        assert_eq!(lines.text_starts("bob@x"), 1);
        lines.line_break();
        lines.line_break();
        assert_eq!(lines.text_starts("after an empty line"), 3);
    }

    #[test]
    fn newlines_break_only_in_preformatted_text() {
        let mut lines = Lines::default();
        lines.text_ends("a\nb\n");
        assert_eq!(lines.text_starts("c"), 0);
        lines.enter_preformatted();
        lines.text_ends("a\nb\n");
        assert_eq!(lines.text_starts("c"), 2);
        let mut of = LineOf::new("x\ny\nz", 5, true);
        assert_eq!((of.at(0), of.at(2), of.at(4)), (5, 6, 7));
        let mut flowing = LineOf::new("x\ny", 5, false);
        assert_eq!(flowing.at(2), 5);
    }
}
