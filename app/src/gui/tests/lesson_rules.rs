//! What the lessons may say (issue 21), as three rules over text, each shown failing on a bad
//! text before it is applied to every lesson:
//! - a quote of the article (`「…」`) is the article's own words (`lessons/article/`);
//! - a measured outcome is asked about or tried, never stated as fact;
//! - one term per concept, from `lessons/GLOSSARY.md`, in the lessons and the UI strings.
//!
//! Also: the task presets marked `from_article` are the article's examples, verbatim.

use std::path::PathBuf;

use super::repo_root;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn article() -> String {
    read("lessons/article/llama31-article.zh.txt")
}

/// Every lesson file, both languages: (path, language code, whole text).
fn lesson_files() -> Vec<(PathBuf, &'static str, String)> {
    let mut out = Vec::new();
    for lang in ["en", "zh"] {
        let dir = repo_root().join("lessons").join(lang);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("lesson folder")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).expect("lesson text");
            out.push((p, lang, text));
        }
    }
    assert!(out.len() >= 32, "found only {} lesson files", out.len());
    out
}

// ---- Quotes of the article ----

/// One spelling per punctuation mark and no whitespace: the article writes ASCII commas and
/// colons where a lesson's Chinese writes ，and ：, and `-->` where a lesson writes →.
fn normalize(s: &str) -> String {
    s.replace("-->", "→")
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '，' => ',',
            '：' => ':',
            '；' => ';',
            '？' => '?',
            '！' => '!',
            '（' => '(',
            '）' => ')',
            '“' | '”' => '"',
            '。' => '.',
            other => other,
        })
        .collect()
}

/// The text between each `「` and its `」` (an unclosed one runs to the end of the text).
fn quotes(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('「') {
        let after = &rest[start + '「'.len_utf8()..];
        let end = after.find('」').unwrap_or(after.len());
        out.push(&after[..end]);
        rest = &after[end..];
    }
    out
}

/// Each quote that is not the article's text. A quote may leave words out with `…`: then
/// each part must be in the article, in order.
fn quote_errors(text: &str, article: &str) -> Vec<String> {
    let article = normalize(article);
    let mut errors = Vec::new();
    for q in quotes(text) {
        let mut from = 0;
        let mut ok = !q.trim().is_empty();
        for part in q.split(['…']).map(normalize).filter(|p| !p.is_empty()) {
            match article[from..].find(&part) {
                Some(i) => from += i + part.len(),
                None => ok = false,
            }
        }
        if !ok {
            errors.push(format!("「{q}」 is not in the article"));
        }
    }
    errors
}

#[test]
fn the_quote_rule_fails_on_words_the_article_does_not_say() {
    let a = article();
    let bad = "文章的要点是「T5 有一个编码器和一个解码器」。";
    assert_eq!(quote_errors(bad, &a).len(), 1, "an invented quote must fail");
    let unclosed = "文章说「层归一化则标准化每一层的输出，而且在残差相加之后";
    assert_eq!(quote_errors(unclosed, &a).len(), 1, "an unclosed invented quote must fail");
    let good = "文章说「层归一化则标准化每一层的输出」，又写「患者，男性，45岁，主诉头痛」。";
    assert!(quote_errors(good, &a).is_empty(), "{:?}", quote_errors(good, &a));
    let elided = "「数据预处理 → 数据增强 …… 分布式训练」";
    assert!(quote_errors(elided, &a).is_empty(), "{:?}", quote_errors(elided, &a));
    let out_of_order = "「既往有高血压病史 …… 患者」";
    assert_eq!(quote_errors(out_of_order, &a).len(), 1);
}

#[test]
fn every_quote_in_the_lessons_is_the_articles_text() {
    let a = article();
    let mut errors = Vec::new();
    let mut n = 0;
    for (p, _, text) in lesson_files() {
        n += quotes(&text).len();
        for e in quote_errors(&text, &a) {
            errors.push(format!("{}: {e}", p.display()));
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(n >= 10, "only {n} article quotes in the lessons: the rule checks nothing");
}

// ---- Measured outcomes ----

/// Words that state what an intervention or a measurement did to the model.
const OUTCOME_EN: [&str; 11] = [
    "breaks",
    "destroys",
    "ruins",
    "collapses",
    "wrecks",
    "completely",
    "barely changes",
    "hardly changes",
    "stops copying",
    "keeps copying",
    "is unchanged",
];
const OUTCOME_ZH: [&str; 8] = ["毁掉", "破坏了", "崩溃", "彻底", "几乎不变", "不再抄", "停止抄", "完全没变"];

/// What makes a sentence about an outcome a question or an instruction, not a claim.
const HEDGE_EN: [&str; 16] = [
    "?", "whether", "try", "look", "see if", "often", "may", "might", "can ", "expect", "if ",
    "usually", "likely", "check", "watch", "would",
];
const HEDGE_ZH: [&str; 13] = [
    "？", "是否", "会不会", "试", "看看", "看一看", "往往", "通常", "可能", "也许", "如果", "能不能", "留意",
];

/// Sentences (split at . ? ! 。？！ and line ends, the end mark kept).
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c != '\n' {
            cur.push(c);
        }
        if matches!(c, '.' | '?' | '!' | '。' | '？' | '！' | '\n') {
            if !cur.trim().is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// Sentences that state a measured outcome: an outcome word with no question or hedge.
fn outcome_errors(text: &str, lang: &str) -> Vec<String> {
    let (outcomes, hedges): (&[&str], &[&str]) = if lang == "zh" {
        (&OUTCOME_ZH, &HEDGE_ZH)
    } else {
        (&OUTCOME_EN, &HEDGE_EN)
    };
    sentences(&without_quotes_and_code(text))
        .into_iter()
        .filter(|s| {
            let l = s.to_lowercase();
            outcomes.iter().any(|o| l.contains(o)) && !hedges.iter().any(|h| l.contains(h))
        })
        .collect()
}

#[test]
fn the_outcome_rule_fails_on_a_measured_result_stated_as_fact() {
    let bad_en = "Compare the two curves. One of them breaks the prediction completely.";
    assert_eq!(outcome_errors(bad_en, "en").len(), 1, "a stated outcome must fail");
    let good_en = "Compare the two curves. Does one of them break the prediction? Look at the KL.";
    assert!(outcome_errors(good_en, "en").is_empty());
    let bad_zh = "比较两条曲线。其中一个会把预测彻底毁掉。";
    assert_eq!(outcome_errors(bad_zh, "zh").len(), 1, "a stated outcome must fail");
    let good_zh = "比较两条曲线。其中有没有一个把预测毁掉？看看 KL。";
    assert!(outcome_errors(good_zh, "zh").is_empty());
}

#[test]
fn no_lesson_states_a_measured_outcome_as_fact() {
    let mut errors = Vec::new();
    for (p, lang, text) in lesson_files() {
        for s in outcome_errors(&text, lang) {
            errors.push(format!("{}: {}", p.display(), s.trim()));
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

// ---- One term per concept ----

#[derive(Debug)]
struct Term {
    zh: String,
    en: String,
    not_zh: Vec<String>,
    not_en: Vec<String>,
}

/// The glossary's table rows: `| en | zh | not (zh) | not (en) |`.
fn glossary(md: &str) -> Vec<Term> {
    let list = |s: &str, sep: char| -> Vec<String> {
        s.split(sep).map(str::trim).filter(|v| !v.is_empty()).map(String::from).collect()
    };
    md.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| en |"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells.len() == 4).then(|| Term {
                en: cells[0].to_string(),
                zh: cells[1].to_string(),
                not_zh: list(cells[2], '、'),
                not_en: list(cells[3], ';'),
            })
        })
        .collect()
}

/// `text` with article quotes and inline code blanked: the article's own words and
/// identifiers are not the lessons' terms.
fn without_quotes_and_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_quote, mut in_code) = (false, false);
    for c in text.chars() {
        match c {
            '「' if !in_code => in_quote = true,
            '」' if in_quote => in_quote = false,
            '`' if !in_quote => in_code = !in_code,
            _ if in_quote || in_code => {}
            _ => out.push(c),
        }
        if (in_quote || in_code) && c != '\n' {
            out.push(' ');
        }
    }
    out
}

/// Each use of a variant that is not part of a use of the chosen term (提示 in 提示词).
fn term_errors(text: &str, terms: &[Term], lang: &str) -> Vec<String> {
    let text = without_quotes_and_code(text);
    let mut errors = Vec::new();
    for t in terms {
        let (chosen, variants) = if lang == "zh" { (&t.zh, &t.not_zh) } else { (&t.en, &t.not_en) };
        let covered: Vec<(usize, usize)> =
            text.match_indices(chosen.as_str()).map(|(i, m)| (i, i + m.len())).collect();
        for v in variants {
            for (i, m) in text.match_indices(v.as_str()) {
                if !covered.iter().any(|&(a, b)| a <= i && i + m.len() <= b) {
                    errors.push(format!("`{v}` (the glossary's term is `{chosen}`)"));
                }
            }
        }
    }
    errors
}

fn the_glossary() -> Vec<Term> {
    let terms = glossary(&read("lessons/GLOSSARY.md"));
    assert!(terms.len() >= 25, "the glossary has only {} lines", terms.len());
    terms
}

#[test]
fn the_term_rule_fails_on_a_variant() {
    let terms = the_glossary();
    for bad in ["一次前向计算", "把提示送进模型", "每个键/值头", "p（注意力权重）", "第一个词元是注意力汇聚。", "打开训练视图"] {
        assert!(!term_errors(bad, &terms, "zh").is_empty(), "`{bad}` must fail");
    }
    let good = "一次前向传播；把提示词送进模型；每个 K/V 头；注意力汇聚点；打开“训练”视图；文章说「计算注意力权重」";
    assert!(term_errors(good, &terms, "zh").is_empty(), "{:?}", term_errors(good, &terms, "zh"));
    assert!(!term_errors("one forward computation", &terms, "en").is_empty());
}

#[test]
fn lessons_use_the_glossarys_terms() {
    let terms = the_glossary();
    let mut errors = Vec::new();
    for (p, lang, text) in lesson_files() {
        for e in term_errors(&text, &terms, lang) {
            errors.push(format!("{}: {e}", p.display()));
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The UI's strings (the `tr("en", "zh")` pairs and the rest of the GUI's literals; test
/// files and comments left out).
#[test]
fn ui_strings_use_the_glossarys_terms() {
    let terms = the_glossary();
    let mut walk = vec![repo_root().join("app/src/gui")];
    let mut errors = Vec::new();
    while let Some(dir) = walk.pop() {
        for e in std::fs::read_dir(&dir).expect("folder").flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("tests") {
                    walk.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") || p.to_string_lossy().ends_with("_tests.rs") {
                continue;
            }
            let code: String = std::fs::read_to_string(&p)
                .expect("source")
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for lang in ["zh", "en"] {
                for e in term_errors(&code, &terms, lang) {
                    errors.push(format!("{}: {e}", p.display()));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
}

// ---- The article's examples ----

#[test]
fn presets_from_the_article_are_its_text_verbatim() {
    use glassbox_engine::article::tasks::{PRESETS, TaskKind};
    let a = article();
    let six = [
        (TaskKind::Extract, "患者,男性,45岁,主诉头痛,持续两天。既往有高血压病史。"),
        (TaskKind::Generate, "根据《劳动合同法》,本合同的主要条款如下:"),
        (TaskKind::Generate, "未来的人工智能技术将会如何影响我们的生活"),
        (TaskKind::Sentiment, "某科技公司股价大幅上涨,市场反应积极。"),
        (TaskKind::Sentiment, "这款智能手表功能强大,设计时尚,非常满意。"),
        (TaskKind::Qa, "Llama3.1 的核心技术是什么?"),
    ];
    for (kind, text) in six {
        assert!(
            PRESETS.iter().any(|p| p.from_article && p.kind == kind && p.text == text),
            "the article's example {text:?} is not a from_article preset"
        );
    }
    for p in PRESETS.iter().filter(|p| p.from_article) {
        assert!(a.contains(&format!("\"{}\"", p.text)), "{}: not in the article verbatim", p.name);
    }
    for p in PRESETS.iter().filter(|p| !p.from_article) {
        assert!(!a.contains(p.text), "{}: the article's text, yet not marked from_article", p.name);
    }
}
