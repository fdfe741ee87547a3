//! The bundled fonts (subsets of Noto Sans CJK SC and Noto Emoji, SIL OFL 1.1; see
//! assets/fonts/), added
//! as a fallback after egui's own fonts so Chinese renders on a machine with no CJK fonts.
//! The same bytes serve plotters for exported figures.

use std::sync::Arc;

use egui::{FontData, FontDefinitions, FontFamily};

pub const CJK_FONT: &[u8] = include_bytes!("../../../assets/fonts/NotoSansSC-Glassbox.otf");
pub const CJK_FONT_NAME: &str = "NotoSansSC-Glassbox";
/// Emoticons egui's own emoji font lacks (the tokens lesson shows U+1F642).
pub const EMOJI_FONT: &[u8] = include_bytes!("../../../assets/fonts/NotoEmoji-Glassbox.ttf");
pub const EMOJI_FONT_NAME: &str = "NotoEmoji-Glassbox";

/// egui's default fonts plus the CJK fallback in both families (token text and code may be
/// shown in monospace and still hold Chinese).
pub fn definitions() -> FontDefinitions {
    let mut defs = FontDefinitions::default();
    defs.font_data.insert(
        CJK_FONT_NAME.to_owned(),
        Arc::new(FontData::from_static(CJK_FONT)),
    );
    defs.font_data.insert(
        EMOJI_FONT_NAME.to_owned(),
        Arc::new(FontData::from_static(EMOJI_FONT)),
    );
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        let list = defs.families.entry(family).or_default();
        list.push(CJK_FONT_NAME.to_owned());
        list.push(EMOJI_FONT_NAME.to_owned());
    }
    defs
}

/// Only the bundled fonts, for the glyph-coverage test.
#[cfg(test)]
pub fn bundled_only() -> FontDefinitions {
    let mut defs = FontDefinitions::empty();
    defs.font_data.insert(
        CJK_FONT_NAME.to_owned(),
        Arc::new(FontData::from_static(CJK_FONT)),
    );
    defs.font_data.insert(
        EMOJI_FONT_NAME.to_owned(),
        Arc::new(FontData::from_static(EMOJI_FONT)),
    );
    let names = vec![CJK_FONT_NAME.to_owned(), EMOJI_FONT_NAME.to_owned()];
    defs.families
        .insert(FontFamily::Proportional, names.clone());
    defs.families.insert(FontFamily::Monospace, names);
    defs
}

pub fn install(ctx: &egui::Context) {
    ctx.set_fonts(definitions());
}
