//! The committed screenshots are the set the scripts make, in both languages, and every
//! screenshot a lesson or the README cites exists. A stale file (no script makes it any more)
//! or a renamed shot that a lesson still cites fails here.

use std::collections::BTreeSet;


use super::repo_root;
use crate::gui::i18n::Lang;
use crate::gui::lessons::Library;

/// The committed screenshots by name without the language: `06-attention-head` → the
/// languages it exists in.
fn committed() -> Vec<(String, BTreeSet<&'static str>)> {
    let mut names: std::collections::BTreeMap<String, BTreeSet<&'static str>> = Default::default();
    for entry in std::fs::read_dir(repo_root().join("screenshots")).expect("screenshots folder").flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".png") else { continue };
        for lang in ["en", "zh"] {
            if let Some(name) = stem.strip_prefix(&format!("{lang}-")) {
                names.entry(name.to_string()).or_default().insert(lang);
            }
        }
    }
    names.into_iter().collect()
}

/// The names a text cites as `screenshots/LANG-NAME.png`.
fn cited_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("screenshots/") {
        let rest = &text[i + "screenshots/".len()..];
        let end = rest.find(".png").filter(|&e| !rest[..e].contains(char::is_whitespace));
        let Some(end) = end else { continue };
        let file = &rest[..end];
        if let Some(name) = file.strip_prefix("en-").or_else(|| file.strip_prefix("zh-")) {
            out.push(name.to_string());
        }
    }
    out
}

/// What is wrong with the cited names against the committed set: each name must exist in
/// both languages.
fn citation_errors(who: &str, cited: &[String], committed: &[(String, BTreeSet<&str>)]) -> Vec<String> {
    cited
        .iter()
        .filter_map(|name| {
            let langs = committed.iter().find(|(n, _)| n == name).map(|(_, l)| l.clone()).unwrap_or_default();
            let missing: Vec<&str> = ["en", "zh"].into_iter().filter(|l| !langs.contains(l)).collect();
            (!missing.is_empty()).then(|| format!("{who} cites `{name}`, missing in {missing:?}"))
        })
        .collect()
}

#[test]
fn the_citation_check_fails_on_a_screenshot_that_does_not_exist() {
    let committed = committed();
    let errors = citation_errors("test", &["06-attention-head".into(), "99-no-such-figure".into()], &committed);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("99-no-such-figure"), "{errors:?}");
    let cited = cited_in("see ![x](screenshots/en-99-gone.png) and screenshots/zh-01-model.png");
    assert_eq!(cited, ["99-gone", "01-model"]);
    assert_eq!(citation_errors("test", &cited, &committed).len(), 1);
}

#[test]
fn every_screenshot_a_lesson_or_the_readme_cites_exists_in_both_languages() {
    let committed = committed();
    let lib = Library::load(Some(repo_root().join("lessons")));
    let mut errors = Vec::new();
    let mut citing = 0;
    for lang in [Lang::En, Lang::Zh] {
        for lesson in lib.lessons(lang) {
            let who = format!("lesson {} ({lang:?})", lesson.id());
            citing += usize::from(!lesson.front.screenshots.is_empty());
            errors.extend(citation_errors(&who, &lesson.front.screenshots, &committed));
            errors.extend(citation_errors(&who, &cited_in(&lesson.body), &committed));
        }
    }
    for doc in ["README.md", "lessons/README.md", "ARCHITECTURE.md"] {
        let text = std::fs::read_to_string(repo_root().join(doc)).expect("doc");
        errors.extend(citation_errors(doc, &cited_in(&text), &committed));
    }
    assert!(citing >= 60, "only {citing} lessons cite a screenshot");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// The shot names the screenshot scripts write (`shot $d/06-attention-head.png`, or a
/// `convert … $OUT/$lang-NAME.png` of an export), from every script in `scripts/`; a name
/// made from a variable (`30-$model-mlp`) is a pattern whose `$var` matches anything.
fn scripted() -> Vec<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("scripts")).expect("scripts folder").flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !file.ends_with(".sh") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("script");
        for word in text.split(|c: char| c.is_whitespace() || matches!(c, '"' | '/' | ':' | ';')) {
            let Some(stem) = word.strip_suffix(".png") else { continue };
            let name = stem.trim_start_matches("$lang-").trim_start_matches("en-").trim_start_matches("zh-");
            if !name.is_empty() && !name.contains('*') {
                names.push(pattern(name));
            }
        }
    }
    names
}

/// `30-$model-mlp` → `["30-", "-mlp"]`: the literal pieces between variables.
fn pattern(name: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            let braced = chars.next_if_eq(&'{').is_some();
            while chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_').is_some() {}
            if braced {
                chars.next_if_eq(&'}');
            }
            pieces.push(String::new());
        } else if let Some(last) = pieces.last_mut() {
            last.push(c);
        }
    }
    pieces
}

fn matches(pieces: &[String], name: &str) -> bool {
    let (first, rest) = pieces.split_first().expect("a pattern has a piece");
    let Some(mut left) = name.strip_prefix(first.as_str()) else { return false };
    if rest.is_empty() {
        return left.is_empty();
    }
    let (last, middle) = rest.split_last().expect("checked non-empty");
    for piece in middle {
        match left.find(piece.as_str()) {
            Some(i) => left = &left[i + piece.len()..],
            None => return false,
        }
    }
    left.ends_with(last.as_str())
}

#[test]
fn script_patterns_match_the_names_they_make() {
    assert!(matches(&pattern("30-$model-mlp"), "30-gemma-3-270m-mlp"));
    assert!(matches(&pattern("06-attention-head"), "06-attention-head"));
    assert!(!matches(&pattern("06-attention-head"), "06-attention-head-old"));
    assert!(!matches(&pattern("30-$model-mlp"), "31-gemma-3-270m-diagram"));
}

#[test]
fn the_committed_screenshots_are_what_the_scripts_make_in_both_languages() {
    let scripted = scripted();
    let mut errors = Vec::new();
    for (name, langs) in committed() {
        if !scripted.iter().any(|p| matches(p, &name)) {
            errors.push(format!("screenshots/*-{name}.png: no script in scripts/ makes it (stale?)"));
        }
        if langs.len() != 2 {
            errors.push(format!("screenshots/*-{name}.png exists only in {langs:?}"));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
