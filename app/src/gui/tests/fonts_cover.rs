//! Every character the lessons and the UI strings use is in the bundled fonts, so nothing
//! renders as tofu on a machine without CJK or emoji fonts.

use std::collections::BTreeSet;
use std::path::Path;

use egui::{FontFamily, FontId, RawInput};

use super::repo_root;
use crate::gui::fonts;

fn chars_in(dir: &Path, ext: &str, out: &mut BTreeSet<char>) {
    for entry in std::fs::read_dir(dir).expect("readable folder").flatten() {
        let p = entry.path();
        if p.is_dir() {
            chars_in(&p, ext, out);
        } else if p.extension().is_some_and(|e| e == ext) {
            out.extend(std::fs::read_to_string(&p).expect("utf-8 text").chars());
        }
    }
}

fn missing(defs: egui::FontDefinitions, chars: &BTreeSet<char>) -> String {
    let ctx = egui::Context::default();
    ctx.set_fonts(defs);
    let _ = ctx.run_ui(RawInput::default(), |_| {});
    ctx.fonts_mut(|f| {
        let mut miss = String::new();
        for &c in chars {
            if c.is_whitespace() || c.is_control() {
                continue;
            }
            for family in [FontFamily::Proportional, FontFamily::Monospace] {
                if !f.has_glyph(&FontId::new(14.0, family.clone()), c) {
                    miss.push(c);
                    break;
                }
            }
        }
        miss
    })
}

fn is_emoji(c: char) -> bool {
    ('\u{1F000}'..='\u{1FAFF}').contains(&c)
}

#[test]
fn every_glyph_in_lessons_and_ui_strings_is_in_the_bundled_font() {
    let mut chars = BTreeSet::new();
    chars_in(&repo_root().join("lessons"), "md", &mut chars);
    chars_in(&repo_root().join("app/src/gui"), "rs", &mut chars);
    // Shown by views too: the tasks' presets (Chinese examples included) and the model
    // table's sources.
    for f in ["engine/src/article/tasks.rs", "assets/models/models.toml"] {
        chars.extend(std::fs::read_to_string(repo_root().join(f)).expect(f).chars());
    }
    assert!(
        chars.contains(&'注') && chars.contains(&'θ'),
        "the scan found the Chinese text"
    );
    let not_bundled = missing(fonts::bundled_only(), &chars);
    assert!(
        not_bundled.is_empty(),
        "not in assets/fonts/ (rerun assets/fonts/make_subset.py): {not_bundled}"
    );
    assert!(
        chars.iter().any(|&c| is_emoji(c)),
        "the tokens lesson's emoji was scanned"
    );
    let tofu = missing(fonts::definitions(), &chars);
    assert!(tofu.is_empty(), "no font in the app has: {tofu}");
}

#[test]
fn the_bundled_font_is_small_and_licensed() {
    assert!(
        fonts::CJK_FONT.len() < 3_200_000,
        "{} bytes",
        fonts::CJK_FONT.len()
    );
    let license =
        std::fs::read_to_string(repo_root().join("assets/fonts/OFL.txt")).expect("license text");
    assert!(license.contains("SIL OPEN FONT LICENSE Version 1.1"));
}
