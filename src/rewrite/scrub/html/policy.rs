//! Which elements and attributes the rebuilt HTML may keep: allowlists, so
//! that anything no list names goes. One table per question, readable in a
//! minute.

/// What happens to an element (its start tag, end tag and content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementAction {
    /// Kept, with its attributes scrubbed.
    Keep,
    /// Tags removed, content kept (and scrubbed like everything else).
    Unwrap,
    /// Removed with everything inside it.
    Remove,
    /// A charset declaration: becomes `<meta charset="utf-8">`, since the
    /// relay sends the part as UTF-8 and a stale declaration would make the
    /// client misread it.
    Utf8Charset,
}

/// Ordinary text and layout elements, kept.
const KEPT: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "area",
    "article",
    "aside",
    "b",
    "bdi",
    "bdo",
    "big",
    "blockquote",
    "body",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "fieldset",
    "figcaption",
    "figure",
    "font",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hgroup",
    "hr",
    "html",
    "i",
    "img",
    "ins",
    "kbd",
    "label",
    "legend",
    "li",
    "main",
    "map",
    "mark",
    "nav",
    "nobr",
    "ol",
    "p",
    "pre",
    "q",
    "rp",
    "rt",
    "ruby",
    "s",
    "samp",
    "section",
    "small",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "title",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];

/// Removed with their content: they run script, load or embed something
/// by themselves, change how URLs resolve, or hold markup the rewriter
/// cannot scrub as markup. `noscript` is among them: lol_html reads its
/// content as raw text (as a browser with script on does), while a mail
/// client with script off renders it as markup; that markup is only a
/// fallback for a script that is removed anyway. `select` and `datalist`
/// go with their options (menus that only mean something to a script or a
/// form); `input` goes in every type (`type=image` loads its `src`).
const REMOVED: &[&str] = &[
    "applet",
    "audio",
    "base",
    "bgsound",
    "canvas",
    "datalist",
    "embed",
    "fencedframe",
    "frame",
    "frameset",
    "iframe",
    "input",
    "keygen",
    "link",
    "math",
    "meta",
    "noembed",
    "noframes",
    "noscript",
    "object",
    "param",
    "portal",
    "script",
    "select",
    "source",
    "svg",
    "template",
    "track",
    "video",
];

pub fn element_action(tag: &str, attribute: impl Fn(&str) -> Option<String>) -> ElementAction {
    // VML (`v:*`), Office (`o:*`) and every other prefixed element: Outlook
    // hangs remote images on them.
    if tag.contains(':') {
        return ElementAction::Remove;
    }
    if tag == "meta" && declares_charset(&attribute) {
        return ElementAction::Utf8Charset;
    }
    if REMOVED.contains(&tag) {
        return ElementAction::Remove;
    }
    if KEPT.contains(&tag) {
        return ElementAction::Keep;
    }
    // form, picture, button, textarea, xml, custom and unknown elements:
    // their tags go, their text stays.
    ElementAction::Unwrap
}

fn declares_charset(attribute: &impl Fn(&str) -> Option<String>) -> bool {
    attribute("charset").is_some()
        || attribute("http-equiv").is_some_and(|v| v.trim().eq_ignore_ascii_case("content-type"))
}

/// How a kept attribute's (decoded) value is scrubbed, if it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeRule {
    Drop,
    /// Words a reader sees (alt, title): names beside an address, then
    /// identifiers.
    Text,
    /// A presentation value: identifiers only.
    Plain,
    /// CSS declarations.
    Style,
    /// A link the reader clicks (`a`/`area` `href`).
    Link,
    /// A URL the client loads by itself (`img src`, `background`).
    Loaded,
    /// `img srcset`: a list of loaded URLs.
    Srcset,
}

/// Harmless presentation attributes, on any kept element.
const PLAIN: &[&str] = &[
    "align",
    "alink",
    "axis",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "char",
    "charoff",
    "class",
    "clear",
    "color",
    "cols",
    "colspan",
    "compact",
    "datetime",
    "dir",
    "face",
    "frame",
    "headers",
    "height",
    "hspace",
    "id",
    "lang",
    "leftmargin",
    "link",
    "marginheight",
    "marginwidth",
    "name",
    "noshade",
    "nowrap",
    "rel",
    "role",
    "rows",
    "rowspan",
    "rules",
    "scope",
    "size",
    "span",
    "target",
    "text",
    "topmargin",
    "valign",
    "vlink",
    "vspace",
    "width",
];

/// Attributes whose value is text for the reader.
const TEXT: &[&str] = &[
    "abbr",
    "alt",
    "aria-description",
    "aria-label",
    "aria-placeholder",
    "aria-roledescription",
    "aria-valuetext",
    "summary",
    "title",
];

/// Presentation attributes that mean something on one element only.
const PLAIN_ON: &[(&str, &[&str])] = &[
    ("area", &["coords", "shape"]),
    ("img", &["usemap"]),
    ("li", &["type", "value"]),
    ("ol", &["reversed", "start", "type"]),
    ("style", &["media", "type"]),
    ("ul", &["type"]),
];

pub fn attribute_rule(tag: &str, name: &str) -> AttributeRule {
    match (tag, name) {
        (_, "style") => AttributeRule::Style,
        ("a" | "area", "href") => AttributeRule::Link,
        ("img", "src") | (_, "background") => AttributeRule::Loaded,
        ("img", "srcset") => AttributeRule::Srcset,
        _ if TEXT.contains(&name) => AttributeRule::Text,
        _ if PLAIN.contains(&name) || name.starts_with("aria-") => AttributeRule::Plain,
        _ if PLAIN_ON
            .iter()
            .any(|(on, names)| *on == tag && names.contains(&name)) =>
        {
            AttributeRule::Plain
        }
        _ => AttributeRule::Drop,
    }
}

/// Elements whose start and end break the visible text into lines.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "li",
    "listing",
    "main",
    "nav",
    "ol",
    "p",
    "plaintext",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "ul",
    "xmp",
];

pub fn breaks_lines(tag: &str) -> bool {
    BLOCKS.contains(&tag)
}

/// Elements inside which a newline in the text is a line break.
pub fn is_preformatted(tag: &str) -> bool {
    matches!(tag, "pre" | "listing" | "plaintext" | "textarea" | "xmp")
}

#[cfg(test)]
mod tests;
