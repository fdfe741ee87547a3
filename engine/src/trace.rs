//! `Trace`: what one forward pass recorded, keyed by hook, plus where the executor stopped.

use std::collections::{BTreeMap, BTreeSet};

use crate::hooks::{HookKey, HookKind};
use crate::step::Step;
use crate::tensor::Tensor;

/// Which hooks to record. Reading back less is what makes an uncaptured run fast.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CaptureFilter {
    #[default]
    All,
    Nothing,
    /// These exact keys, plus every layer's hooks of these kinds.
    Select {
        keys: BTreeSet<HookKey>,
        kinds: BTreeSet<HookKind>,
    },
}

impl CaptureFilter {
    pub fn keys(keys: impl IntoIterator<Item = HookKey>) -> Self {
        Self::Select {
            keys: keys.into_iter().collect(),
            kinds: BTreeSet::new(),
        }
    }

    pub fn kinds(kinds: impl IntoIterator<Item = HookKind>) -> Self {
        Self::Select {
            keys: BTreeSet::new(),
            kinds: kinds.into_iter().collect(),
        }
    }

    pub fn wants(&self, key: HookKey) -> bool {
        match self {
            CaptureFilter::All => true,
            CaptureFilter::Nothing => false,
            CaptureFilter::Select { keys, kinds } => {
                keys.contains(&key) || kinds.contains(&key.kind())
            }
        }
    }

    /// Parses comma-separated hook names; layer-free names select every layer.
    pub fn parse(list: &str) -> Result<Self, crate::hooks::ParseHookError> {
        let mut keys = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.starts_with("blocks.") {
                keys.insert(part.parse::<HookKey>()?);
            } else {
                let kind = HookKind::from_name(part)
                    .ok_or_else(|| crate::hooks::ParseHookError(part.to_string()))?;
                kinds.insert(kind);
            }
        }
        if keys.is_empty() && kinds.is_empty() {
            return Ok(CaptureFilter::Nothing);
        }
        Ok(CaptureFilter::Select { keys, kinds })
    }
}

/// One forward pass over `token_ids` (the new tokens, at positions `pos_offset..`).
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Ids of the tokens this pass ran over (after any KV-cached prefix).
    pub token_ids: Vec<u32>,
    /// Position of `token_ids[0]`: the KV cache length before this pass.
    pub pos_offset: usize,
    /// The last step that has run; `None` before the first.
    pub last_step: Option<Step>,
    /// The token chosen by the `Sample` step.
    pub sampled: Option<u32>,
    pub temperature: f32,
    tensors: BTreeMap<HookKey, Tensor>,
}

impl Trace {
    pub fn new(token_ids: Vec<u32>, pos_offset: usize, temperature: f32) -> Self {
        Self {
            token_ids,
            pos_offset,
            temperature,
            ..Self::default()
        }
    }

    pub fn get(&self, key: HookKey) -> Option<&Tensor> {
        self.tensors.get(&key)
    }

    pub fn insert(&mut self, key: HookKey, tensor: Tensor) {
        self.tensors.insert(key, tensor);
    }

    pub fn keys(&self) -> impl Iterator<Item = HookKey> + '_ {
        self.tensors.keys().copied()
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Bytes held by recorded tensors (for memory figures).
    pub fn bytes(&self) -> usize {
        self.tensors.values().map(|t| t.data.len() * 4).sum()
    }

    pub fn n_tokens(&self) -> usize {
        self.token_ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::BlockHook;

    #[test]
    fn filter_by_kind_selects_every_layer() {
        let f = CaptureFilter::parse("attn.hook_pattern, hook_resid_post").unwrap();
        assert!(f.wants(HookKey::Block(7, BlockHook::Pattern)));
        assert!(f.wants(HookKey::Block(0, BlockHook::ResidPost)));
        assert!(!f.wants(HookKey::Block(0, BlockHook::Q)));
        assert!(!f.wants(HookKey::Logits));
    }

    #[test]
    fn filter_by_key_selects_one_layer() {
        let f = CaptureFilter::parse("blocks.2.attn.hook_q,hook_logits").unwrap();
        assert!(f.wants(HookKey::Block(2, BlockHook::Q)));
        assert!(f.wants(HookKey::Logits));
        assert!(CaptureFilter::parse("bogus").is_err());
    }
}
