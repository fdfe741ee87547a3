//! Data augmentation (the article's §2.2): make a new training example from an old one by
//! replacing, deleting or inserting a word, in the style of EDA (Wei & Zou, 2019). Words are
//! whitespace-separated; the edit is seeded, so a class sees the same example twice. The app
//! runs the model on both texts to show how the tokens and the next-token loss change.

/// The three edits the article names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AugmentOp {
    /// A word becomes a synonym (from a small built-in list), else another word of the text.
    Replace,
    /// A word is dropped.
    Delete,
    /// A synonym of one word (else a copy of it) is inserted at another place.
    Insert,
}

impl AugmentOp {
    pub const ALL: [AugmentOp; 3] = [AugmentOp::Replace, AugmentOp::Delete, AugmentOp::Insert];

    pub fn name(self) -> &'static str {
        match self {
            AugmentOp::Replace => "replace",
            AugmentOp::Delete => "delete",
            AugmentOp::Insert => "insert",
        }
    }
}

/// The augmented text and what was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Augmented {
    pub op: AugmentOp,
    pub text: String,
    /// Index of the word changed / removed / inserted, in the new text (delete: in the old).
    pub word_index: usize,
    /// The word before (replace, delete) and after (replace, insert).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A few common English words and a synonym each (both directions are used).
const SYNONYMS: [(&str, &str); 24] = [
    ("big", "large"),
    ("small", "little"),
    ("quick", "fast"),
    ("happy", "glad"),
    ("begin", "start"),
    ("end", "finish"),
    ("buy", "purchase"),
    ("help", "assist"),
    ("show", "display"),
    ("answer", "reply"),
    ("rise", "increase"),
    ("fell", "dropped"),
    ("jumped", "rose"),
    ("city", "town"),
    ("car", "automobile"),
    ("film", "movie"),
    ("smart", "clever"),
    ("hard", "difficult"),
    ("easy", "simple"),
    ("shares", "stocks"),
    ("company", "firm"),
    ("record", "highest"),
    ("capital", "seat"),
    ("lazy", "idle"),
];

fn synonym(word: &str) -> Option<&'static str> {
    let core = word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    SYNONYMS.iter().find_map(|&(a, b)| {
        if core == a {
            Some(b)
        } else if core == b {
            Some(a)
        } else {
            None
        }
    })
}

/// SplitMix64, as the sampler uses: reproducible across platforms.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n.max(1) as u64) as usize
    }
}

/// Keeps a word's surrounding punctuation when its core is swapped ("fell," → "dropped,").
fn swap_core(word: &str, new: &str) -> String {
    let start = word.find(|c: char| c.is_alphanumeric()).unwrap_or(0);
    let end = word
        .rfind(|c: char| c.is_alphanumeric())
        .map_or(word.len(), |i| i + word[i..].chars().next().map_or(1, char::len_utf8));
    format!("{}{new}{}", &word[..start], &word[end..])
}

/// Applies `op` to `text` with `seed`. `None` when the text has too few words for it (delete
/// needs two, replace needs two distinct words or one with a synonym).
pub fn augment(text: &str, op: AugmentOp, seed: u64) -> Option<Augmented> {
    let mut words: Vec<String> = text.split_whitespace().map(String::from).collect();
    if words.is_empty() {
        return None;
    }
    let mut rng = Rng(seed);
    let with_synonym: Vec<usize> = (0..words.len())
        .filter(|&i| synonym(&words[i]).is_some())
        .collect();
    match op {
        AugmentOp::Delete => {
            if words.len() < 2 {
                return None;
            }
            let i = rng.below(words.len());
            let before = words.remove(i);
            Some(Augmented {
                op,
                text: words.join(" "),
                word_index: i,
                before: Some(before),
                after: None,
            })
        }
        AugmentOp::Replace => {
            let (i, new) = if with_synonym.is_empty() {
                let i = rng.below(words.len());
                let others: Vec<&String> = words.iter().filter(|w| **w != words[i]).collect();
                if others.is_empty() {
                    return None;
                }
                (i, others[rng.below(others.len())].clone())
            } else {
                let i = with_synonym[rng.below(with_synonym.len())];
                let syn = synonym(&words[i]).unwrap_or_default();
                (i, swap_core(&words[i], syn))
            };
            let before = std::mem::replace(&mut words[i], new.clone());
            Some(Augmented {
                op,
                text: words.join(" "),
                word_index: i,
                before: Some(before),
                after: Some(new),
            })
        }
        AugmentOp::Insert => {
            let source = if with_synonym.is_empty() {
                rng.below(words.len())
            } else {
                with_synonym[rng.below(with_synonym.len())]
            };
            let core = words[source]
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_string();
            let new = synonym(&words[source]).map_or(core, str::to_string);
            if new.is_empty() {
                return None;
            }
            let at = rng.below(words.len() + 1);
            words.insert(at, new.clone());
            Some(Augmented {
                op,
                text: words.join(" "),
                word_index: at,
                before: None,
                after: Some(new),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Shares of the company jumped 12% after record earnings.";

    #[test]
    fn each_op_changes_exactly_one_word_and_is_reproducible() {
        let n = TEXT.split_whitespace().count();
        for seed in 0..20 {
            let d = augment(TEXT, AugmentOp::Delete, seed).expect("delete");
            assert_eq!(d.text.split_whitespace().count(), n - 1);
            let r = augment(TEXT, AugmentOp::Replace, seed).expect("replace");
            let (old, new): (Vec<&str>, Vec<&str>) =
                (TEXT.split_whitespace().collect(), r.text.split_whitespace().collect());
            assert_eq!(new.len(), n);
            let changed: Vec<usize> = (0..n).filter(|&i| old[i] != new[i]).collect();
            assert_eq!(changed, vec![r.word_index], "seed {seed}: {}", r.text);
            let i = augment(TEXT, AugmentOp::Insert, seed).expect("insert");
            assert_eq!(i.text.split_whitespace().count(), n + 1);
            assert_eq!(
                i.text.split_whitespace().nth(i.word_index),
                i.after.as_deref()
            );
            assert_eq!(augment(TEXT, AugmentOp::Replace, seed), Some(r));
        }
    }

    #[test]
    fn replace_uses_a_synonym_and_keeps_punctuation() {
        let r = augment("The film was hard, but fun.", AugmentOp::Replace, 3).expect("replace");
        assert!(
            r.text == "The movie was hard, but fun." || r.text == "The film was difficult, but fun.",
            "{}",
            r.text
        );
        assert_eq!(augment("word", AugmentOp::Delete, 1), None);
        assert_eq!(augment("", AugmentOp::Insert, 1), None);
    }
}
