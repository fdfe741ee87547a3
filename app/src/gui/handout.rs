//! A lesson as a handout for a class: `NN-slug.md` (the body with its numbers filled in, the
//! current view's figures as PNG beside it, the questions without answers) and
//! `NN-slug-answers.md` (the answer sheet, kept apart), in the UI's language.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use glassbox_engine::LlamaConfig;

use super::export::{self, Figure};
use super::i18n::Lang;
use super::lesson_answers;
use super::lesson_numbers;
use super::lessons::Lesson;
use super::session::Session;

/// The files one export wrote.
#[derive(Debug)]
pub struct Handout {
    pub lesson: PathBuf,
    pub answers: PathBuf,
    pub figures: Vec<PathBuf>,
    /// The lesson's committed screenshots copied beside it (`Front::screenshots`).
    pub screenshots: Vec<PathBuf>,
}

/// Writes `lesson`'s handout into `dir` (created if missing): the figures first, so the
/// Markdown only links files that exist. `screenshots`: the folder of Glassbox's committed
/// screenshots, when this install has one; the ones the lesson cites are copied beside it.
pub fn write(
    dir: &Path,
    lesson: &Lesson,
    lang: Lang,
    loaded: &LlamaConfig,
    s: Option<&Session>,
    figures: &[Figure],
    screenshots: Option<&Path>,
) -> Result<Handout> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let id = lesson.id();
    let mut pngs = Vec::new();
    for (i, fig) in figures.iter().enumerate() {
        let path = dir.join(format!("{id}-figure-{}.png", i + 1));
        export::write_figure(fig, &path)?;
        pngs.push(path);
    }
    let shots = copy_screenshots(dir, lesson, lang, screenshots)?;
    let (config, other) = lesson_numbers::lesson_config(lesson.front.model.as_deref(), loaded);
    let mut text = lesson_markdown(lesson, lang, &config, other.as_deref(), figures, &pngs);
    if !shots.is_empty() {
        text.push_str(&format!("\n## {}\n\n", lang.tr("Screenshots of Glassbox", "Glassbox 截图")));
        for shot in &shots {
            let file = shot.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            text.push_str(&format!("![{file}]({file})\n\n"));
        }
    }
    let answers = answers_markdown(lesson, lang, &config, s);
    let lesson_path = dir.join(format!("{id}.md"));
    let answers_path = dir.join(format!("{id}-answers.md"));
    for (path, text) in [(&lesson_path, text), (&answers_path, answers)] {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Handout { lesson: lesson_path, answers: answers_path, figures: pngs, screenshots: shots })
}

/// Copies the screenshots `lesson` cites, in `lang`, from `from` into `dir`; a missing one is
/// skipped (an install without the repository's `screenshots/`).
fn copy_screenshots(dir: &Path, lesson: &Lesson, lang: Lang, from: Option<&Path>) -> Result<Vec<PathBuf>> {
    let Some(from) = from else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for name in &lesson.front.screenshots {
        let file = format!("{}-{name}.png", lang.code());
        let src = from.join(&file);
        if src.is_file() {
            let dst = dir.join(&file);
            std::fs::copy(&src, &dst).with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
            out.push(dst);
        }
    }
    Ok(out)
}

/// The handout proper: title, body, figures, questions (no answers).
fn lesson_markdown(lesson: &Lesson, lang: Lang, config: &LlamaConfig, other: Option<&str>, figures: &[Figure], pngs: &[PathBuf]) -> String {
    let mut md = format!("# {}\n\n", lesson.front.title);
    if let Some(m) = other {
        md.push_str(&lang.tf(
            format!("*The numbers are {m}'s, from its config.json.*\n\n"),
            format!("*数字取自 {m} 的 config.json。*\n\n"),
        ));
    }
    md.push_str(lesson_numbers::fill(&lesson.body, config).0.trim_end());
    md.push_str("\n\n");
    if !pngs.is_empty() {
        md.push_str(&format!("## {}\n\n", lang.tr("Figures", "图")));
        for (fig, png) in figures.iter().zip(pngs) {
            let file = png.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            md.push_str(&format!("![{}]({file})\n\n", fig.title()));
        }
    }
    md.push_str(&format!("## {}\n\n", lang.tr("Exercises", "练习")));
    for (i, q) in lesson.front.questions.iter().enumerate() {
        md.push_str(&format!("{}. {}\n", i + 1, lesson_answers::question_text(q, config)));
    }
    md
}

/// The answer sheet: each question with the answer computed now.
fn answers_markdown(lesson: &Lesson, lang: Lang, config: &LlamaConfig, s: Option<&Session>) -> String {
    let mut md = format!("# {} — {}\n\n", lesson.front.title, lang.tr("answers", "答案"));
    for (i, q) in lesson.front.questions.iter().enumerate() {
        let answer = lesson_answers::answer(&q.answer, config, s).text(lang);
        md.push_str(&format!(
            "{}. {}\n\n   **{}** {answer}\n\n",
            i + 1,
            lesson_answers::question_text(q, config),
            lang.tr("Answer:", "答案：")
        ));
    }
    md
}
