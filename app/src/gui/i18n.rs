//! The two UI languages. Strings stay next to the widget that shows them (`lang.tr("Run",
//! "运行")`), so a reader sees both at once; the glyph test scans this folder's sources for
//! every character, so a new Chinese string cannot silently render as tofu.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The folder under `lessons/`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The language's own name, as the switch shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Zh => "中文",
        }
    }

    pub fn tr(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// For strings with values in them.
    pub fn tf(self, en: String, zh: String) -> String {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// The engine's own English phrases shown in the UI (device name, weight note), in
    /// Chinese: "Q4_1 weights (token embedding Q8_0) computed in f32" →
    /// "Q4_1 权重（词元嵌入为 Q8_0），以 f32 计算". Unknown parts stay as they are.
    pub fn engine_text(self, text: &str) -> String {
        if self == Lang::En {
            return text.to_string();
        }
        const PHRASES: [(&str, &str); 10] = [
            ("CPU (f32 reference)", "CPU（f32 参考实现）"),
            (" weights (token embedding ", " 权重（词元嵌入为 "),
            (") computed in f32", "），以 f32 计算"),
            (" weights computed in f32", " 权重，以 f32 计算"),
            ("), as downloaded", "），按下载原样计算"),
            (" weights, as downloaded", " 权重，按下载原样计算"),
            (" (f32 weights)", "（f32 权重）"),
            (" (f16 weights)", "（f16 权重）"),
            (" (f16 packed weights)", "（f16 打包权重）"),
            ("quantized 4-bit weights, computed in f32", "4 位量化权重，以 f32 计算"),
        ];
        PHRASES
            .iter()
            .fold(text.to_string(), |t, (en, zh)| t.replace(en, zh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_phrases_have_chinese() {
        let zh = Lang::Zh.engine_text("Q4_1 weights (token embedding Q8_0) computed in f32");
        assert_eq!(zh, "Q4_1 权重（词元嵌入为 Q8_0），以 f32 计算");
        assert_eq!(Lang::Zh.engine_text("CPU (f32 reference)"), "CPU（f32 参考实现）");
        assert_eq!(Lang::Zh.engine_text("F32 weights computed in f32"), "F32 权重，以 f32 计算");
        assert_eq!(Lang::Zh.engine_text("Q4_1 weights (token embedding Q8_0), as downloaded"), "Q4_1 权重（词元嵌入为 Q8_0），按下载原样计算");
        assert_eq!(Lang::Zh.engine_text("Q5_0 weights, as downloaded"), "Q5_0 权重，按下载原样计算");
        assert_eq!(Lang::En.engine_text("CPU (f32 reference)"), "CPU (f32 reference)");
    }
}
