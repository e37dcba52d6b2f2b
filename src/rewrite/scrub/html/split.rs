//! The sender's address or name split across inline tags:
//! `bob.real<span>@</span>sender-mail.example`, `<b>Bob</b> Realname`, or an
//! editor's spell-check span around half an address. Each text node alone
//! shows no secret; the line shows it whole. Pass 1 joins the text nodes of
//! each line (a *run*: consecutive nodes with no line break between them),
//! finds matches that cross node boundaries, and turns each into edits of
//! the nodes it covers: the first node gets the replacement, the others
//! lose their part. Pass 2 applies a node's edits before scrubbing it.

use std::collections::HashMap;
use std::ops::Range;

/// One change to one text node's decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub replacement: String,
}

/// Edits per text node (numbered in document order).
pub type Edits = HashMap<usize, Vec<Edit>>;

/// The text nodes of the current line, decoded and joined, with their
/// numbers and where each sits in the joined text.
#[derive(Debug, Default)]
pub struct Run {
    pub line: usize,
    joined: String,
    nodes: Vec<(usize, Range<usize>)>,
}

/// A line holding more than this many text nodes or bytes is joined in
/// pieces: it bounds what pass 1 keeps (a line of a million `<b>x</b>`),
/// at the price of missing a split exactly at a piece boundary of such a
/// line, which no mail client writes.
const MAX_RUN_NODES: usize = 10_000;
const MAX_RUN_BYTES: usize = 1 << 20;

impl Run {
    pub fn new(line: usize) -> Self {
        Self {
            line,
            ..Self::default()
        }
    }

    pub fn push(&mut self, number: usize, text: &str) {
        let start = self.joined.len();
        self.joined.push_str(text);
        self.nodes.push((number, start..self.joined.len()));
    }

    pub fn is_full(&self) -> bool {
        self.nodes.len() >= MAX_RUN_NODES || self.joined.len() >= MAX_RUN_BYTES
    }

    /// Whether matches could cross a node boundary here at all.
    pub fn has_boundaries(&self) -> bool {
        self.nodes.len() > 1
    }

    pub fn joined(&self) -> &str {
        &self.joined
    }

    /// Edits for the matches (byte ranges of [`Run::joined`]) that cross
    /// a node boundary; matches inside one node are that node's business.
    pub fn edits_for(&self, matches: &[Range<usize>], replacement: &str) -> Vec<(usize, Edit)> {
        let mut edits = Vec::new();
        for found in matches {
            // Nodes are in order: those the match covers are contiguous.
            let first = self
                .nodes
                .partition_point(|(_, node)| node.end <= found.start);
            let covered: Vec<_> = self.nodes[first..]
                .iter()
                .take_while(|(_, node)| node.start < found.end)
                .filter(|(_, node)| !node.is_empty())
                .collect();
            if covered.len() < 2 {
                continue;
            }
            for (position, (number, node)) in covered.iter().enumerate() {
                let start = found.start.max(node.start) - node.start;
                let end = found.end.min(node.end) - node.start;
                let replacement = if position == 0 { replacement } else { "" };
                edits.push((
                    *number,
                    Edit {
                        range: start..end,
                        replacement: replacement.to_owned(),
                    },
                ));
            }
        }
        edits
    }
}

/// `text` with its edits applied (overlapping ones after the first skipped).
pub fn apply<'t>(text: &'t str, edits: Option<&Vec<Edit>>) -> std::borrow::Cow<'t, str> {
    let Some(edits) = edits.filter(|e| !e.is_empty()) else {
        return std::borrow::Cow::Borrowed(text);
    };
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| e.range.start);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for edit in sorted {
        let (Some(before), true) = (
            text.get(copied..edit.range.start),
            edit.range.end <= text.len(),
        ) else {
            continue;
        };
        if !text.is_char_boundary(edit.range.end) {
            continue;
        }
        out.push_str(before);
        out.push_str(&edit.replacement);
        copied = edit.range.end;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_across_nodes_becomes_one_replacement() {
        let mut run = Run::new(0);
        for (number, text) in [(4, "Mail bob"), (5, "@"), (6, "host or")] {
            run.push(number, text);
        }
        assert_eq!(run.joined(), "Mail bob@host or");
        let edits = run.edits_for(&[5..13, 0..4], "ALIAS");
        assert_eq!(
            edits,
            vec![
                (
                    4,
                    Edit {
                        range: 5..8,
                        replacement: "ALIAS".into()
                    }
                ),
                (
                    5,
                    Edit {
                        range: 0..1,
                        replacement: String::new()
                    }
                ),
                (
                    6,
                    Edit {
                        range: 0..4,
                        replacement: String::new()
                    }
                ),
            ]
        );
        let by_node = |n: usize| -> Vec<Edit> {
            edits
                .iter()
                .filter(|(m, _)| *m == n)
                .map(|(_, e)| e.clone())
                .collect()
        };
        assert_eq!(apply("Mail bob", Some(&by_node(4))), "Mail ALIAS");
        assert_eq!(apply("@", Some(&by_node(5))), "");
        assert_eq!(apply("host or", Some(&by_node(6))), " or");
        assert_eq!(apply("x", None), "x");
    }
}
