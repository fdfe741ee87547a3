//! `Trace`: what one forward pass recorded, keyed by hook, plus where the executor stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use ndarray::{ArrayViewMut3, Ix3};

use crate::program::hooks::{HookKey, HookKind};
use crate::program::op::Step;
use crate::exec::tensor::Tensor;

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
    /// The names this filter asks for that `program`'s model never records (a layer past its
    /// last, a hook of another family), for an error that names them.
    pub fn not_recorded(&self, program: &crate::program::step::Program) -> Vec<String> {
        let Self::Select { keys, kinds } = self else { return Vec::new() };
        let recorded = program.hooks();
        let missing_keys = keys.iter().filter(|k| !program.records(**k)).map(|k| k.to_string());
        let missing_kinds = kinds.iter().filter(|kind| !recorded.iter().any(|k| k.kind() == **kind)).map(|kind| kind.name().to_string());
        missing_keys.chain(missing_kinds).collect()
    }

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
    pub fn parse(list: &str) -> Result<Self, crate::program::hooks::ParseHookError> {
        let mut keys = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.starts_with("blocks.") {
                keys.insert(part.parse::<HookKey>()?);
            } else {
                let kind = HookKind::from_name(part)
                    .ok_or_else(|| crate::program::hooks::ParseHookError(part.to_string()))?;
                kinds.insert(kind);
            }
        }
        if keys.is_empty() && kinds.is_empty() {
            return Ok(CaptureFilter::Nothing);
        }
        Ok(CaptureFilter::Select { keys, kinds })
    }
}

/// Where a pass first produced NaN or infinite values. Executors check every tensor they
/// record, plus the residual stream and the logits even when those are not recorded, so an
/// uncaptured pass still names the first residual write that went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonFinite {
    pub key: HookKey,
    pub nan: usize,
    pub inf: usize,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "non-finite values first appear at `{}` (op {}): {} NaN, {} infinite",
            self.key,
            Step::producing(self.key),
            self.nan,
            self.inf
        )
    }
}

/// Counts NaN and infinities; the causal mask's -inf in `attn.hook_attn_scores` are meant.
pub fn count_non_finite<'a>(key: HookKey, values: impl IntoIterator<Item = &'a f32>) -> (usize, usize) {
    let masked_ok = matches!(key.kind(), HookKind::Block(crate::program::hooks::BlockHook::AttnScores));
    let (mut nan, mut inf) = (0, 0);
    for &v in values {
        if v.is_nan() {
            nan += 1;
        } else if v.is_infinite() && !(masked_ok && v < 0.0) {
            inf += 1;
        }
    }
    (nan, inf)
}

/// How a derived entry comes from the tensor it holds, by the executor's own code (handed
/// over by the executor, so the trace repeats the very code the pass ran and depends on no
/// backend).
#[derive(Clone)]
pub enum Derivation {
    /// The raw attention scores, and the executor's in-place op on a copy of them (the mask,
    /// or the mask then the softmax) at the pass's position offset.
    InPlace {
        pos_offset: usize,
        apply: fn(ArrayViewMut3<'_, f32>, usize),
    },
    /// A function of the tensor held: the LM head on the final norm's rows, for the logits.
    Map(Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>),
}

impl std::fmt::Debug for Derivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Derivation::InPlace { pos_offset, .. } => write!(f, "InPlace {{ pos_offset: {pos_offset} }}"),
            Derivation::Map(_) => write!(f, "Map"),
        }
    }
}

/// A recorded tensor, or one worked out from another on first read. The masked scores and the
/// pattern are each as big as the raw scores (9 × T × T floats a layer: 1.1 GB for 30 layers at
/// T = 1,024); when the pass computed them from the raw scores with nothing edited or rounded
/// in between, the trace keeps only the raw scores and repeats the same two in-place ops (the
/// very functions the CPU pass ran) when a reader asks, which gives the same bits. The logits
/// of every row (T × vocabulary: 64 MiB at T = 64 for Gemma's 262,144 tokens) are kept as the
/// final norm's rows (T × d_model) and the LM head the pass would have run on them.
#[derive(Debug, Clone)]
enum Entry {
    Stored(Arc<Tensor>),
    Derived {
        from: Arc<Tensor>,
        how: Derivation,
        value: Arc<OnceLock<Arc<Tensor>>>,
    },
}

impl Entry {
    fn value(&self) -> &Arc<Tensor> {
        match self {
            Entry::Stored(t) => t,
            Entry::Derived { from, how, value } => value.get_or_init(|| Arc::new(derive(from, how))),
        }
    }

    /// Bytes of numbers this entry holds now (a derived one holds none until it is read).
    fn bytes(&self) -> usize {
        match self {
            Entry::Stored(t) => t.data.len() * 4,
            Entry::Derived { value, .. } => value.get().map_or(0, |t| t.data.len() * 4),
        }
    }
}

fn derive(from: &Tensor, how: &Derivation) -> Tensor {
    match how {
        Derivation::InPlace { pos_offset, apply } => {
            let mut out = from.clone();
            if let Ok(scores) = out.data.view_mut().into_dimensionality::<Ix3>() {
                apply(scores, *pos_offset);
            }
            out
        }
        Derivation::Map(f) => f(from),
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
    /// The logits of the last position, as the `Sample` step saw them (kept whatever the
    /// capture filter says: they are small, and the next-token analyses need them).
    pub last_logits: Option<Vec<f32>>,
    pub temperature: f32,
    /// The first hook found holding NaN or infinite values, if any (see [`NonFinite`]).
    pub non_finite: Option<NonFinite>,
    /// Shared, so a trace handed from the model thread to the UI (or kept by both) is one
    /// copy of the numbers, not two.
    tensors: BTreeMap<HookKey, Entry>,
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

    /// A recorded tensor (a derived one is worked out on this first read).
    pub fn get(&self, key: HookKey) -> Option<&Tensor> {
        self.tensors.get(&key).map(|e| &**e.value())
    }

    /// The shared handle of a recorded tensor (cloning it copies no numbers).
    pub fn get_shared(&self, key: HookKey) -> Option<&Arc<Tensor>> {
        self.tensors.get(&key).map(Entry::value)
    }

    pub fn insert(&mut self, key: HookKey, tensor: Tensor) {
        self.tensors.insert(key, Entry::Stored(Arc::new(tensor)));
    }

    pub fn insert_shared(&mut self, key: HookKey, tensor: Arc<Tensor>) {
        self.tensors.insert(key, Entry::Stored(tensor));
    }

    /// A recorded tensor's handle, only if it is held as computed (not derived).
    pub(crate) fn get_shared_stored(&self, key: HookKey) -> Option<Arc<Tensor>> {
        match self.tensors.get(&key)? {
            Entry::Stored(t) => Some(t.clone()),
            Entry::Derived { .. } => None,
        }
    }

    /// Records `key` as `how` applied to `from`, worked out when first read.
    pub fn insert_derived(&mut self, key: HookKey, from: Arc<Tensor>, how: Derivation) {
        let value = Arc::new(OnceLock::new());
        self.tensors.insert(key, Entry::Derived { from, how, value });
    }

    /// Takes a recorded tensor out of the trace.
    pub fn remove(&mut self, key: HookKey) -> Option<Arc<Tensor>> {
        self.tensors.remove(&key).map(|e| e.value().clone())
    }

    /// The recorded tensors in hook order (derived ones are worked out as they are reached).
    pub fn iter(&self) -> impl Iterator<Item = (HookKey, &Arc<Tensor>)> {
        self.tensors.iter().map(|(k, e)| (*k, e.value()))
    }

    /// Works out every derived entry now, so whoever reads the trace next (a UI thread) only
    /// reads.
    pub fn materialize(&self) {
        for entry in self.tensors.values() {
            entry.value();
        }
    }

    /// Whether `key` is recorded but not yet worked out (reading it costs a computation).
    pub fn is_pending(&self, key: HookKey) -> bool {
        matches!(self.tensors.get(&key), Some(Entry::Derived { value, .. }) if value.get().is_none())
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

    /// Notes `values` of `key` if they are the first non-finite ones of the pass.
    pub fn check_finite(&mut self, key: HookKey, values: ndarray::ArrayViewD<'_, f32>) {
        if self.non_finite.is_some() || values.as_slice_memory_order().is_some_and(crate::load::load_check::all_finite) {
            return;
        }
        let (nan, inf) = count_non_finite(key, values);
        if nan + inf > 0 {
            self.non_finite = Some(NonFinite { key, nan, inf });
        }
    }

    /// Bytes held by recorded tensors (for memory figures): a tensor shared by two hooks counts
    /// once, a derived one once it has been read.
    pub fn bytes(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        self.tensors
            .values()
            .filter(|e| match e {
                Entry::Stored(t) => seen.insert(Arc::as_ptr(t)),
                Entry::Derived { .. } => true,
            })
            .map(Entry::bytes)
            .sum()
    }

    pub fn n_tokens(&self) -> usize {
        self.token_ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::hooks::BlockHook;

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
