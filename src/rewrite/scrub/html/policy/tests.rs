use super::*;

fn none(_: &str) -> Option<String> {
    None
}

#[test]
fn elements_by_list() {
    assert_eq!(element_action("p", none), ElementAction::Keep);
    assert_eq!(element_action("script", none), ElementAction::Remove);
    assert_eq!(element_action("v:rect", none), ElementAction::Remove);
    assert_eq!(element_action("o:p", none), ElementAction::Remove);
    assert_eq!(element_action("picture", none), ElementAction::Unwrap);
    assert_eq!(element_action("my-widget", none), ElementAction::Unwrap);
    assert_eq!(element_action("meta", none), ElementAction::Remove);
    let charset = |n: &str| (n == "http-equiv").then(|| "Content-Type".to_owned());
    assert_eq!(element_action("meta", charset), ElementAction::Utf8Charset);
}

#[test]
fn attributes_by_list() {
    assert_eq!(attribute_rule("img", "src"), AttributeRule::Loaded);
    assert_eq!(attribute_rule("video", "src"), AttributeRule::Drop);
    assert_eq!(attribute_rule("td", "background"), AttributeRule::Loaded);
    assert_eq!(attribute_rule("a", "href"), AttributeRule::Link);
    assert_eq!(attribute_rule("div", "href"), AttributeRule::Drop);
    assert_eq!(attribute_rule("img", "alt"), AttributeRule::Text);
    assert_eq!(attribute_rule("ol", "type"), AttributeRule::Plain);
    assert_eq!(attribute_rule("button", "type"), AttributeRule::Drop);
    assert_eq!(attribute_rule("div", "aria-hidden"), AttributeRule::Plain);
    for dropped in [
        "onload",
        "onerror",
        "ping",
        "formaction",
        "xmlns:v",
        "srcdoc",
        "lowsrc",
        "dynsrc",
        "longdesc",
        "data-src",
        "poster",
    ] {
        assert_eq!(
            attribute_rule("img", dropped),
            AttributeRule::Drop,
            "{dropped}"
        );
    }
}
