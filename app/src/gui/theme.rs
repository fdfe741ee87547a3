//! Every color the app uses: light/dark palettes and the perceptual colormaps.
//!
//! Views never write a color literal; they ask the theme, so dark mode, projector contrast
//! and exported figures stay consistent.

use std::sync::OnceLock;

use egui::Color32;

/// Sequential maps for magnitudes (probabilities, norms, losses) and one diverging map for
/// signed values, centered on zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colormap {
    Viridis,
    Magma,
    /// Blue (negative) – white (0) – red (positive).
    Diverging,
}

// Control points sampled from matplotlib's viridis, magma and RdBu_r (evenly spaced).
const VIRIDIS: [u32; 11] = [
    0x440154, 0x482475, 0x414487, 0x355f8d, 0x2a788e, 0x21918c, 0x22a884, 0x44bf70, 0x7ad151,
    0xbddf26, 0xfde725,
];
const MAGMA: [u32; 11] = [
    0x000004, 0x140e36, 0x3b0f70, 0x641a80, 0x8c2981, 0xb73779, 0xde4968, 0xf7705c, 0xfe9f6d,
    0xfecf92, 0xfcfdbf,
];
const RDBU_R: [u32; 11] = [
    0x053061, 0x2166ac, 0x4393c3, 0x92c5de, 0xd1e5f0, 0xf7f7f7, 0xfddbc7, 0xf4a582, 0xd6604d,
    0xb2182b, 0x67001f,
];

fn hex(c: u32) -> [f32; 3] {
    [
        ((c >> 16) & 0xff) as f32,
        ((c >> 8) & 0xff) as f32,
        (c & 0xff) as f32,
    ]
}

/// 256-entry lookup table, interpolated linearly between the control points; built once
/// because a 30-layer overview colors millions of cells.
fn build_lut(points: &[u32; 11]) -> [Color32; 256] {
    let mut lut = [Color32::BLACK; 256];
    for (i, slot) in lut.iter_mut().enumerate() {
        let t = i as f32 / 255.0 * 10.0;
        let lo = (t.floor() as usize).min(9);
        let f = t - lo as f32;
        let (a, b) = (hex(points[lo]), hex(points[lo + 1]));
        let mix = |k: usize| (a[k] + (b[k] - a[k]) * f).round().clamp(0.0, 255.0) as u8;
        *slot = Color32::from_rgb(mix(0), mix(1), mix(2));
    }
    lut
}

fn lut(map: Colormap) -> &'static [Color32; 256] {
    static V: OnceLock<[Color32; 256]> = OnceLock::new();
    static M: OnceLock<[Color32; 256]> = OnceLock::new();
    static D: OnceLock<[Color32; 256]> = OnceLock::new();
    match map {
        Colormap::Viridis => V.get_or_init(|| build_lut(&VIRIDIS)),
        Colormap::Magma => M.get_or_init(|| build_lut(&MAGMA)),
        Colormap::Diverging => D.get_or_init(|| build_lut(&RDBU_R)),
    }
}

/// A NaN or an infinity that is not the causal mask: magenta, a colour none of the maps
/// (viridis, magma, RdBu) contains, so a broken number can never pass for a small or large
/// one. Every heatmap with such cells gets a legend entry for it.
/// The smallest text presenter mode paints, in points at zoom 1: what a class reads from
/// the back row of a room on a 1280×720 projector.
pub const PRESENTER_PX: f32 = 18.0;

/// A figure's own font size `px`, raised to [`PRESENTER_PX`] in presenter mode (which sets
/// the `Small` text style to it): figures that size their labels to their cells still stay
/// readable from the back row.
pub fn font_px(ui: &egui::Ui, px: f32) -> f32 {
    let small = ui.style().text_styles.get(&egui::TextStyle::Small).map_or(0.0, |f| f.size);
    if small >= PRESENTER_PX { px.max(PRESENTER_PX) } else { px }
}

pub const NON_FINITE: Color32 = Color32::from_rgb(255, 0, 255);

impl Colormap {
    /// `t` in 0..=1 (sequential) — for the diverging map 0.5 is zero. NaN is [`NON_FINITE`].
    pub fn at(self, t: f32) -> Color32 {
        if t.is_nan() {
            return NON_FINITE;
        }
        lut(self)[(t.clamp(0.0, 1.0) * 255.0).round() as usize]
    }

    /// Color for `v` on a sequential scale `0..=max`.
    pub fn seq(self, v: f32, max: f32) -> Color32 {
        if !v.is_finite() {
            return NON_FINITE;
        }
        self.at(if max > 0.0 { v / max } else { 0.0 })
    }

    /// Color for a signed `v` with `±max_abs` at the ends.
    pub fn signed(self, v: f32, max_abs: f32) -> Color32 {
        if !v.is_finite() {
            return NON_FINITE;
        }
        self.at(if max_abs > 0.0 {
            0.5 + 0.5 * v / max_abs
        } else {
            0.5
        })
    }
}

/// Semantic colors for the UI chrome and the diagram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Theme {
    pub dark: bool,
}

impl Theme {
    pub fn new(dark: bool) -> Self {
        Self { dark }
    }

    pub fn text(&self) -> Color32 {
        if self.dark {
            Color32::from_gray(230)
        } else {
            Color32::from_gray(20)
        }
    }

    pub fn muted(&self) -> Color32 {
        if self.dark {
            Color32::from_gray(150)
        } else {
            Color32::from_gray(100)
        }
    }

    pub fn faint(&self) -> Color32 {
        if self.dark {
            Color32::from_gray(60)
        } else {
            Color32::from_gray(215)
        }
    }

    pub fn panel_fill(&self) -> Color32 {
        if self.dark {
            Color32::from_gray(32)
        } else {
            Color32::from_gray(246)
        }
    }

    /// The current step, the selected cell, the cursor on the timeline.
    pub fn highlight(&self) -> Color32 {
        if self.dark {
            Color32::from_rgb(255, 200, 60)
        } else {
            Color32::from_rgb(220, 120, 0)
        }
    }

    pub fn accent(&self) -> Color32 {
        if self.dark {
            Color32::from_rgb(110, 170, 255)
        } else {
            Color32::from_rgb(30, 90, 200)
        }
    }

    pub fn error(&self) -> Color32 {
        if self.dark {
            Color32::from_rgb(255, 110, 110)
        } else {
            Color32::from_rgb(190, 30, 30)
        }
    }

    /// Masked (−∞) attention scores: not a number on any scale, so a neutral hatch color.
    pub fn masked(&self) -> Color32 {
        if self.dark {
            Color32::from_gray(45)
        } else {
            Color32::from_gray(200)
        }
    }

    /// Families of operations, shared by the diagram and the timeline.
    pub fn op_color(&self, family: OpFamily) -> Color32 {
        let (light, dark) = match family {
            OpFamily::Embed => ((120, 120, 200), (150, 150, 230)),
            OpFamily::Norm => ((150, 150, 150), (140, 140, 140)),
            OpFamily::Attention => ((60, 130, 200), (80, 150, 230)),
            OpFamily::Mlp => ((210, 130, 40), (230, 150, 60)),
            OpFamily::Residual => ((90, 160, 90), (110, 190, 110)),
            OpFamily::Output => ((170, 80, 160), (200, 110, 190)),
        };
        let (r, g, b) = if self.dark { dark } else { light };
        Color32::from_rgb(r, g, b)
    }

    /// One color per GQA group (K/V head); query heads take their group's color.
    pub fn group_color(&self, group: usize) -> Color32 {
        const LIGHT: [(u8, u8, u8); 6] = [
            (31, 119, 180),
            (214, 39, 40),
            (44, 160, 44),
            (148, 103, 189),
            (140, 86, 75),
            (227, 119, 194),
        ];
        const DARK: [(u8, u8, u8); 6] = [
            (100, 170, 240),
            (250, 110, 110),
            (110, 210, 110),
            (190, 150, 230),
            (200, 150, 130),
            (240, 160, 220),
        ];
        let (r, g, b) = if self.dark {
            DARK[group % 6]
        } else {
            LIGHT[group % 6]
        };
        Color32::from_rgb(r, g, b)
    }

    /// Lines of a plot with several series (layers, workers): the group palette.
    pub fn series(&self, i: usize) -> Color32 {
        self.group_color(i)
    }

    /// Text drawn on top of a colormap cell: black on light cells, white on dark ones.
    pub fn text_on(&self, bg: Color32) -> Color32 {
        let l = 0.299 * f32::from(bg.r()) + 0.587 * f32::from(bg.g()) + 0.114 * f32::from(bg.b());
        if l > 140.0 {
            Color32::BLACK
        } else {
            Color32::WHITE
        }
    }
}

/// Which family an operation belongs to, for coloring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpFamily {
    Embed,
    Norm,
    Attention,
    Mlp,
    Residual,
    Output,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn colormaps_hit_their_end_points() {
        assert_eq!(
            Colormap::Viridis.at(0.0),
            Color32::from_rgb(0x44, 0x01, 0x54)
        );
        assert_eq!(
            Colormap::Viridis.at(1.0),
            Color32::from_rgb(0xfd, 0xe7, 0x25)
        );
        // Zero on the diverging map is (near) white.
        let mid = Colormap::Diverging.signed(0.0, 3.0);
        assert!(mid.r() > 240 && mid.g() > 240 && mid.b() > 240, "{mid:?}");
        assert!(
            Colormap::Diverging.signed(-3.0, 3.0).b() > Colormap::Diverging.signed(-3.0, 3.0).r()
        );
    }

    #[test]
    fn non_finite_values_get_a_colour_no_map_contains() {
        for map in [Colormap::Viridis, Colormap::Magma, Colormap::Diverging] {
            assert!(lut(map).iter().all(|&c| c != NON_FINITE), "{map:?}");
            for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                assert_eq!(map.signed(v, 1.0), NON_FINITE);
                assert_eq!(map.seq(v, 1.0), NON_FINITE);
            }
            assert_eq!(map.at(f32::NAN), NON_FINITE);
        }
    }
}
