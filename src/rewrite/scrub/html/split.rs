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

/// The text nodes of the current line, decoded, with their numbers.
#[derive(Debug, Default)]
pub struct Run {
    pub line: usize,
    pub nodes: Vec<(usize, String)>,
}

impl Run {
    pub fn joined(&self) -> String {
        self.nodes.iter().map(|(_, text)| text.as_str()).collect()
    }

    /// Edits for the matches (byte ranges of [`Run::joined`]) that cross
    /// a node boundary; matches inside one node are that node's business.
    pub fn edits_for(&self, matches: &[Range<usize>], replacement: &str) -> Vec<(usize, Edit)> {
        let mut bounds = Vec::with_capacity(self.nodes.len());
        let mut offset = 0;
        for (number, text) in &self.nodes {
            bounds.push((*number, offset..offset + text.len()));
            offset += text.len();
        }
        let mut edits = Vec::new();
        for found in matches {
            let covered: Vec<_> = bounds
                .iter()
                .filter(|(_, node)| {
                    node.start < found.end && found.start < node.end && !node.is_empty()
                })
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
        let run = Run {
            line: 0,
            nodes: vec![
                (4, "Mail bob".into()),
                (5, "@".into()),
                (6, "host or".into()),
            ],
        };
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
