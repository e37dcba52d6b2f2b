//! Each kept attribute through the rule for its kind (text, identifiers,
//! CSS, a link, a loaded URL, a `srcset`), the rest removed, and what is
//! kept written anew, quoted and escaped.

use std::collections::HashSet;

use lol_html::html_content::Element;
use lol_html::HandlerResult;

use super::policy::{attribute_rule, AttributeRule};
use super::text::{decode_attribute, escape_attribute, srcset_urls};
use super::{RemoteContent, Walk};
use crate::rewrite::scrub::css::{is_clickable, normalize_url, scheme, scrub_css, UrlPolicy};

impl<'a> Walk<'_, 'a> {
    fn policy(&self) -> UrlPolicy<'a> {
        UrlPolicy {
            remote: self.cx.remote_content,
            content_id: self.cx.content_id,
        }
    }

    /// Kept attributes scrubbed by their rule, the rest removed, and all
    /// written anew, quoted and escaped: a value as it came (unquoted, with
    /// a stray quote) could be read otherwise by the next parser.
    pub(super) fn scrub_attributes(&self, el: &mut Element<'_, '_>, tag: &str) -> HandlerResult {
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
}
