//! Colour scales for heatmaps: how a value becomes a position on a colormap, and the ticks
//! of the colour bar that says so. One outlier (the residual stream's first position writes
//! ~2e4 where the rest write 20–600) must not turn a whole figure black, so besides linear
//! there are √, log, per-row and robust (percentile-clipped) scales, and the first position
//! can be left out of the fit. Display arithmetic only: no model math here.

use egui::Color32;

use super::theme::Colormap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ScaleMode {
    #[default]
    Linear,
    /// √v: small values spread out (sequential data only).
    Sqrt,
    /// log10 v between the smallest positive value and the largest (sequential data only).
    Log,
    /// Each row from 0 to its own largest |v|: compares positions within a row.
    PerRow,
    /// Linear up to the 99th percentile of |v|; the few cells above saturate.
    Robust,
}

impl ScaleMode {
    pub const SEQUENTIAL: [ScaleMode; 5] = [
        ScaleMode::Linear,
        ScaleMode::Sqrt,
        ScaleMode::Log,
        ScaleMode::PerRow,
        ScaleMode::Robust,
    ];
    pub const SIGNED: [ScaleMode; 3] = [ScaleMode::Linear, ScaleMode::PerRow, ScaleMode::Robust];

    pub fn label(self, zh: bool) -> &'static str {
        match (self, zh) {
            (ScaleMode::Linear, false) => "linear",
            (ScaleMode::Linear, true) => "线性",
            (ScaleMode::Sqrt, false) => "√",
            (ScaleMode::Sqrt, true) => "平方根",
            (ScaleMode::Log, false) => "log",
            (ScaleMode::Log, true) => "对数",
            (ScaleMode::PerRow, false) => "per row",
            (ScaleMode::PerRow, true) => "按行",
            (ScaleMode::Robust, false) => "robust (99th pct)",
            (ScaleMode::Robust, true) => "稳健（第 99 百分位）",
        }
    }
}

/// What the user picked for one heatmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScaleOpts {
    pub mode: ScaleMode,
    /// Leave column 0 (the first position, often an outlier) out of the picture.
    pub hide_first: bool,
}

impl ScaleOpts {
    pub fn new(mode: ScaleMode, hide_first: bool) -> Self {
        Self { mode, hide_first }
    }

    /// The first column drawn.
    pub fn first_col(self, cols: usize) -> usize {
        usize::from(self.hide_first && cols > 1)
    }
}

/// A scale fitted to one matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct ColorScale {
    pub mode: ScaleMode,
    /// Signed data: a diverging map centred on 0, `±hi` at the ends.
    pub signed: bool,
    /// The values at the two ends of the map (log: both > 0).
    pub lo: f32,
    pub hi: f32,
    row_hi: Vec<f32>,
    /// Cells beyond `hi` (robust), drawn at the end colour.
    pub clipped: usize,
}

fn percentile(mut v: Vec<f32>, q: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() - 1) as f32 * q).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(i, f32::total_cmp);
    *x
}

impl ColorScale {
    /// Fits a scale to `rows × cols` values `get(r, c)` (columns before `first_col` are left
    /// out; non-finite values, e.g. masked −∞, are ignored).
    pub fn fit(
        rows: usize,
        cols: usize,
        first_col: usize,
        signed: bool,
        mode: ScaleMode,
        get: impl Fn(usize, usize) -> f32,
    ) -> Self {
        let mode = if signed && matches!(mode, ScaleMode::Log | ScaleMode::Sqrt) {
            ScaleMode::Linear
        } else {
            mode
        };
        let mags: Vec<f32> = (0..rows)
            .flat_map(|r| (first_col..cols).map(move |c| (r, c)))
            .map(|(r, c)| get(r, c))
            .filter(|v| v.is_finite())
            .map(|v| if signed { v.abs() } else { v })
            .collect();
        let max = mags.iter().copied().fold(0.0f32, f32::max);
        let row_hi: Vec<f32> = (0..rows)
            .map(|r| {
                (first_col..cols)
                    .map(|c| get(r, c))
                    .filter(|v| v.is_finite())
                    .fold(0.0f32, |m, v| m.max(v.abs()))
            })
            .collect();
        let (lo, hi, clipped) = match mode {
            ScaleMode::Log => {
                let min_pos = mags
                    .iter()
                    .copied()
                    .filter(|&v| v > 0.0)
                    .fold(f32::INFINITY, f32::min);
                let lo = if min_pos.is_finite() { min_pos } else { 1e-6 };
                (lo, max.max(lo * 10.0), 0)
            }
            ScaleMode::Robust => {
                let hi = percentile(mags.clone(), 0.99).max(f32::MIN_POSITIVE);
                let clipped = mags.iter().filter(|&&v| v > hi).count();
                (if signed { -hi } else { 0.0 }, hi, clipped)
            }
            _ => (if signed { -max } else { 0.0 }, max, 0),
        };
        Self {
            mode,
            signed,
            lo,
            hi,
            row_hi,
            clipped,
        }
    }

    /// A fixed scale `lo..=hi` (probabilities 0..1, losses on a chosen range).
    pub fn fixed(lo: f32, hi: f32) -> Self {
        Self {
            mode: ScaleMode::Linear,
            signed: false,
            lo,
            hi,
            row_hi: Vec::new(),
            clipped: 0,
        }
    }

    /// A symmetric diverging scale `±max_abs`.
    pub fn symmetric(max_abs: f32) -> Self {
        Self {
            mode: ScaleMode::Linear,
            signed: true,
            lo: -max_abs,
            hi: max_abs,
            row_hi: Vec::new(),
            clipped: 0,
        }
    }

    /// Position on the colormap (0..=1; signed: 0.5 is zero). NaN stays NaN.
    pub fn t(&self, row: usize, v: f32) -> f32 {
        if v.is_nan() {
            return f32::NAN;
        }
        let ratio = |v: f32, hi: f32| if hi > 0.0 { v / hi } else { 0.0 };
        if self.signed {
            let hi = match self.mode {
                ScaleMode::PerRow => self.row_hi.get(row).copied().unwrap_or(self.hi),
                _ => self.hi,
            };
            return (0.5 + 0.5 * ratio(v, hi)).clamp(0.0, 1.0);
        }
        let t = match self.mode {
            ScaleMode::Linear | ScaleMode::Robust => {
                if self.hi > self.lo {
                    (v - self.lo) / (self.hi - self.lo)
                } else {
                    0.0
                }
            }
            ScaleMode::Sqrt => ratio(v.max(0.0), self.hi).sqrt(),
            ScaleMode::Log => {
                if v <= 0.0 {
                    0.0
                } else {
                    (v / self.lo).log10() / (self.hi / self.lo).log10().max(1e-6)
                }
            }
            ScaleMode::PerRow => ratio(v, self.row_hi.get(row).copied().unwrap_or(self.hi)),
        };
        t.clamp(0.0, 1.0)
    }

    pub fn color(&self, map: Colormap, row: usize, v: f32) -> Color32 {
        if !v.is_finite() {
            return super::theme::NON_FINITE;
        }
        map.at(self.t(row, v))
    }

    /// The value at colormap position `t` (not defined per row).
    fn value_at(&self, t: f32) -> f32 {
        match self.mode {
            _ if self.signed => self.hi * (2.0 * t - 1.0),
            ScaleMode::Sqrt => self.hi * t * t,
            ScaleMode::Log => self.lo * (self.hi / self.lo).powf(t),
            _ => self.lo + (self.hi - self.lo) * t,
        }
    }

    /// Tick marks of the colour bar: `(t, label)`.
    pub fn ticks(&self, zh: bool) -> Vec<(f32, String)> {
        if self.mode == ScaleMode::PerRow {
            let (lo, hi) = if zh {
                ("0", "本行最大值")
            } else {
                ("0", "row max")
            };
            return if self.signed {
                vec![
                    (0.0, format!("−{hi}")),
                    (0.5, lo.into()),
                    (1.0, hi.into()),
                ]
            } else {
                vec![(0.0, lo.into()), (1.0, hi.into())]
            };
        }
        if self.mode == ScaleMode::Log && self.hi > self.lo {
            let (a, b) = (self.lo.log10(), self.hi.log10());
            let mut ticks = vec![(0.0, short(self.lo))];
            for e in (a.ceil() as i32)..=(b.floor() as i32) {
                let t = (e as f32 - a) / (b - a);
                if t > 0.08 && t < 0.92 {
                    ticks.push((t, short(10f32.powi(e))));
                }
            }
            ticks.push((1.0, short(self.hi)));
            return ticks;
        }
        [0.0, 0.25, 0.5, 0.75, 1.0]
            .into_iter()
            .map(|t| (t, short(self.value_at(t))))
            .collect()
    }

    /// A line under the bar: the scale and what it did (clipped cells).
    pub fn note(&self, zh: bool, hide_first: bool) -> String {
        let mut parts = vec![self.mode.label(zh).to_string()];
        if self.clipped > 0 {
            parts.push(if zh {
                format!("{} 个格子超出范围，按最大颜色显示", self.clipped)
            } else {
                format!("{} cells above the range drawn at the top colour", self.clipped)
            });
        }
        if hide_first {
            parts.push(if zh {
                "隐藏了位置 0".into()
            } else {
                "position 0 hidden".into()
            });
        }
        parts.join(" · ")
    }
}

/// A number short enough for a tick: 3 significant digits, scientific when tiny or huge.
pub fn short(v: f32) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-2..1e4).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The residual-writes situation: one cell 100× the rest.
    fn outlier(r: usize, c: usize) -> f32 {
        if (r, c) == (0, 0) { 23000.0 } else { 20.0 + (r * 7 + c * 13) as f32 }
    }

    #[test]
    fn an_outlier_no_longer_blackens_the_rest() {
        let lin = ColorScale::fit(8, 10, 0, false, ScaleMode::Linear, outlier);
        assert!(lin.t(3, outlier(3, 5)) < 0.01, "linear: the rest is black");
        // (√ helps with a 10× outlier, not with this 1000× one; it is offered for attention.)
        for mode in [ScaleMode::Log, ScaleMode::Robust, ScaleMode::PerRow] {
            let s = ColorScale::fit(8, 10, 0, false, mode, outlier);
            let spread = s.t(7, outlier(7, 9)) - s.t(1, outlier(1, 1));
            assert!(spread > 0.05, "{mode:?}: the ordinary cells are told apart ({spread})");
        }
        let hidden = ColorScale::fit(8, 10, 1, false, ScaleMode::Linear, outlier);
        assert!(hidden.hi < 200.0, "hiding column 0 drops the outlier from the fit");
        let robust = ColorScale::fit(8, 10, 0, false, ScaleMode::Robust, outlier);
        assert_eq!(robust.clipped, 1);
        assert_eq!(robust.t(0, 23000.0), 1.0);
    }

    #[test]
    fn ticks_run_from_end_to_end() {
        let log = ColorScale::fit(1, 3, 0, false, ScaleMode::Log, |_, c| [2.0, 50.0, 20000.0][c]);
        let ticks = log.ticks(false);
        assert_eq!(ticks.first().map(|t| t.0), Some(0.0));
        assert_eq!(ticks.last().map(|t| t.1.as_str()), Some("2.0e4"));
        assert!(ticks.iter().any(|t| t.1 == "100"), "{ticks:?}");
        let signed = ColorScale::fit(1, 2, 0, true, ScaleMode::Linear, |_, c| [-3.0, 1.0][c]);
        assert_eq!(signed.t(0, 0.0), 0.5);
        assert_eq!(signed.ticks(false)[0].1, "-3.00");
    }
}
