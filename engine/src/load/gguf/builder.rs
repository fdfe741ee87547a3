//! A small GGUF writer: builds GGUF v3 bytes in memory, so tests and fuzzers can describe
//! exactly the (valid or broken) file they need, and tools can write small models.

use half::f16;

pub const ALIGN: usize = 32;

struct TensorEntry {
    name: String,
    dims: Vec<u64>,
    ty: u32,
    /// `None`: the bytes are placed (aligned) in the data section in insertion order.
    /// `Some`: only the table entry, with the offset the test wants.
    offset: Option<u64>,
    bytes: Vec<u8>,
}

/// Keys and tensors in insertion order; `build` lays out the file.
#[derive(Default)]
pub struct GgufBuilder {
    kv: Vec<(String, u32, Vec<u8>)>,
    tensors: Vec<TensorEntry>,
}

pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend((s.len() as u64).to_le_bytes());
    buf.extend(s.as_bytes());
}

impl GgufBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A raw key/value entry: `value` is the already-encoded value bytes. Appends, so a
    /// repeated key makes a file with a duplicate key.
    pub fn kv_raw(mut self, key: &str, ty: u32, value: &[u8]) -> Self {
        self.kv.push((key.to_string(), ty, value.to_vec()));
        self
    }

    /// Replaces the value of `key` where it is (or appends it).
    pub fn set_kv_raw(mut self, key: &str, ty: u32, value: &[u8]) -> Self {
        match self.kv.iter_mut().find(|(k, _, _)| k == key) {
            Some(entry) => *entry = (key.to_string(), ty, value.to_vec()),
            None => self.kv.push((key.to_string(), ty, value.to_vec())),
        }
        self
    }

    pub fn remove_kv(mut self, key: &str) -> Self {
        self.kv.retain(|(k, _, _)| k != key);
        self
    }

    pub fn kv_u32(self, key: &str, v: u32) -> Self {
        self.kv_raw(key, 4, &v.to_le_bytes())
    }

    pub fn kv_f32(self, key: &str, v: f32) -> Self {
        self.kv_raw(key, 6, &v.to_le_bytes())
    }

    pub fn set_u32(self, key: &str, v: u32) -> Self {
        self.set_kv_raw(key, 4, &v.to_le_bytes())
    }

    pub fn set_f32(self, key: &str, v: f32) -> Self {
        self.set_kv_raw(key, 6, &v.to_le_bytes())
    }

    pub fn set_str(self, key: &str, v: &str) -> Self {
        let mut b = Vec::new();
        put_str(&mut b, v);
        self.set_kv_raw(key, 8, &b)
    }

    pub fn kv_str(self, key: &str, v: &str) -> Self {
        let mut b = Vec::new();
        put_str(&mut b, v);
        self.kv_raw(key, 8, &b)
    }

    fn str_array_bytes(items: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(8u32.to_le_bytes());
        b.extend((items.len() as u64).to_le_bytes());
        for s in items {
            put_str(&mut b, s);
        }
        b
    }

    pub fn kv_str_array(self, key: &str, items: &[&str]) -> Self {
        self.kv_raw(key, 9, &Self::str_array_bytes(items))
    }

    pub fn set_str_array(self, key: &str, items: &[&str]) -> Self {
        self.set_kv_raw(key, 9, &Self::str_array_bytes(items))
    }

    pub fn kv_i32_array(self, key: &str, items: &[i32]) -> Self {
        let mut b = Vec::new();
        b.extend(5u32.to_le_bytes());
        b.extend((items.len() as u64).to_le_bytes());
        for v in items {
            b.extend(v.to_le_bytes());
        }
        self.kv_raw(key, 9, &b)
    }

    pub fn kv_f32_array(self, key: &str, items: &[f32]) -> Self {
        let mut b = Vec::new();
        b.extend(6u32.to_le_bytes());
        b.extend((items.len() as u64).to_le_bytes());
        for v in items {
            b.extend(v.to_le_bytes());
        }
        self.kv_raw(key, 9, &b)
    }

    /// A tensor whose data is appended (aligned) to the data section.
    pub fn tensor(mut self, name: &str, dims: &[u64], ty: u32, bytes: &[u8]) -> Self {
        self.tensors.push(TensorEntry {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            offset: None,
            bytes: bytes.to_vec(),
        });
        self
    }

    /// Only the tensor-table entry, with whatever offset the test wants.
    pub fn tensor_info(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        self.tensors.push(TensorEntry {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            offset: Some(offset),
            bytes: Vec::new(),
        });
        self
    }

    /// Replaces a tensor's shape, type and data, keeping its place in the table.
    pub fn replace_tensor(mut self, name: &str, dims: &[u64], ty: u32, bytes: &[u8]) -> Self {
        if let Some(t) = self.tensors.iter_mut().find(|t| t.name == name) {
            t.dims = dims.to_vec();
            t.ty = ty;
            t.offset = None;
            t.bytes = bytes.to_vec();
        }
        self
    }

    pub fn remove_tensor(mut self, name: &str) -> Self {
        self.tensors.retain(|t| t.name != name);
        self
    }

    pub fn f32_tensor(self, name: &str, dims: &[u64], values: &[f32]) -> Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, dims, 0, &bytes)
    }

    pub fn build(&self) -> Vec<u8> {
        self.build_with_counts(self.tensors.len() as u64, self.kv.len() as u64)
    }

    /// Header counts chosen by the test (to lie about them).
    pub fn build_with_counts(&self, n_tensors: u64, n_kv: u64) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(b"GGUF");
        out.extend(3u32.to_le_bytes());
        out.extend(n_tensors.to_le_bytes());
        out.extend(n_kv.to_le_bytes());
        for (key, ty, value) in &self.kv {
            put_str(&mut out, key);
            out.extend(ty.to_le_bytes());
            out.extend(value);
        }
        let mut data = Vec::new();
        for t in &self.tensors {
            let offset = match t.offset {
                Some(o) => o,
                None => {
                    while !data.len().is_multiple_of(ALIGN) {
                        data.push(0);
                    }
                    let o = data.len() as u64;
                    data.extend(&t.bytes);
                    o
                }
            };
            put_str(&mut out, &t.name);
            out.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.ty.to_le_bytes());
            out.extend(offset.to_le_bytes());
        }
        while !out.len().is_multiple_of(ALIGN) {
            out.push(0);
        }
        out.extend(&data);
        out
    }
}

pub fn f16_bytes(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_bits().to_le_bytes()
}

const HIDDEN: u64 = 32;
const HEADS: u64 = 2;
const KV_HEADS: u64 = 1;
const HEAD_DIM: u64 = HIDDEN / HEADS;
const FFN: u64 = 8;
pub const TOKENS: &[&str] = &["<|end|>", "a", "b", "ab", "Ġ", "Ġab", "1", "2", "3", "12"];

/// Row `r`, column `c` holds `r * 100 + c`, so a moved row is recognisable by value.
pub fn matrix(rows: u64, cols: u64) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| (0..cols).map(move |c| (r * 100 + c) as f32))
        .collect()
}

/// A one-layer Llama with a working byte-level BPE tokenizer; Q and K hold `matrix` values
/// so the un-permutation is visible.
pub fn tiny_llama(with_output: bool) -> GgufBuilder {
    let mut embd = Vec::new();
    for _ in 0..(HIDDEN * TOKENS.len() as u64 / 32) {
        embd.extend(f16_bytes(0.5));
        embd.extend((0..32).map(|i| i as u8));
    }
    let b = GgufBuilder::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 1)
        .kv_u32("llama.context_length", 64)
        .kv_u32("llama.embedding_length", HIDDEN as u32)
        .kv_u32("llama.feed_forward_length", FFN as u32)
        .kv_u32("llama.attention.head_count", HEADS as u32)
        .kv_u32("llama.attention.head_count_kv", KV_HEADS as u32)
        .kv_f32("llama.rope.freq_base", 100000.0)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str("tokenizer.ggml.pre", "smollm")
        .kv_str_array("tokenizer.ggml.tokens", TOKENS)
        .kv_str_array("tokenizer.ggml.merges", &["a b", "Ġ ab", "1 2"])
        .kv_i32_array("tokenizer.ggml.token_type", &[3, 1, 1, 1, 1, 1, 1, 1, 1, 1])
        .kv_u32("tokenizer.ggml.bos_token_id", 0)
        .kv_u32("tokenizer.ggml.eos_token_id", 0)
        .kv_str("tokenizer.chat_template", "{{ messages }}")
        .tensor(
            "token_embd.weight",
            &[HIDDEN, TOKENS.len() as u64],
            8,
            &embd,
        )
        .f32_tensor("blk.0.attn_norm.weight", &[HIDDEN], &matrix(1, HIDDEN))
        .f32_tensor(
            "blk.0.attn_q.weight",
            &[HIDDEN, HIDDEN],
            &matrix(HIDDEN, HIDDEN),
        )
        .f32_tensor(
            "blk.0.attn_k.weight",
            &[HIDDEN, KV_HEADS * HEAD_DIM],
            &matrix(HEAD_DIM, HIDDEN),
        )
        .f32_tensor(
            "blk.0.attn_v.weight",
            &[HIDDEN, KV_HEADS * HEAD_DIM],
            &matrix(HEAD_DIM, HIDDEN),
        )
        .f32_tensor(
            "blk.0.attn_output.weight",
            &[HIDDEN, HIDDEN],
            &matrix(HIDDEN, HIDDEN),
        )
        .f32_tensor("blk.0.ffn_norm.weight", &[HIDDEN], &matrix(1, HIDDEN))
        .f32_tensor(
            "blk.0.ffn_gate.weight",
            &[HIDDEN, FFN],
            &matrix(FFN, HIDDEN),
        )
        .f32_tensor("blk.0.ffn_up.weight", &[HIDDEN, FFN], &matrix(FFN, HIDDEN))
        .f32_tensor(
            "blk.0.ffn_down.weight",
            &[FFN, HIDDEN],
            &matrix(HIDDEN, FFN),
        )
        .f32_tensor("output_norm.weight", &[HIDDEN], &matrix(1, HIDDEN));
    if with_output {
        b.f32_tensor(
            "output.weight",
            &[HIDDEN, TOKENS.len() as u64],
            &matrix(TOKENS.len() as u64, HIDDEN),
        )
    } else {
        b
    }
}

/// The vocabulary of [`tiny_gemma3`]: Gemma's specials, a run of spaces spelled with spaces
/// (what marks a Gemma vocabulary), `▁` and two words.
pub const GEMMA_TOKENS: [&str; 8] = ["<pad>", "<eos>", "<bos>", "<unk>", "  ", "▁", "a", "▁a"];

/// A two-layer Gemma 3 (d 32, 2 query heads and 1 KV head of 16, ffn 8): every tensor a Gemma 3
/// GGUF has, norm weights stored as llama.cpp stores them (`1 + w`), and a working Gemma
/// tokenizer.
pub fn tiny_gemma3() -> GgufBuilder {
    let (d, hd, ff, v) = (32u64, 16u64, 8u64, GEMMA_TOKENS.len() as u64);
    let mut b = GgufBuilder::new()
        .kv_str("general.architecture", "gemma3")
        .kv_u32("gemma3.block_count", 2)
        .kv_u32("gemma3.context_length", 128)
        .kv_u32("gemma3.embedding_length", d as u32)
        .kv_u32("gemma3.feed_forward_length", ff as u32)
        .kv_u32("gemma3.attention.head_count", 2)
        .kv_u32("gemma3.attention.head_count_kv", 1)
        .kv_u32("gemma3.attention.key_length", hd as u32)
        .kv_u32("gemma3.attention.value_length", hd as u32)
        .kv_f32("gemma3.rope.freq_base", 1_000_000.0)
        .kv_f32("gemma3.attention.layer_norm_rms_epsilon", 1e-6)
        .kv_u32("gemma3.attention.sliding_window", 4)
        .kv_str("tokenizer.ggml.model", "llama")
        .kv_str("tokenizer.ggml.pre", "default")
        .kv_str_array("tokenizer.ggml.tokens", &GEMMA_TOKENS)
        .kv_f32_array("tokenizer.ggml.scores", &[-1000.0, -1000.0, -1000.0, -1000.0, -1000.0, -5.0, -6.0, -7.0])
        .kv_i32_array("tokenizer.ggml.token_type", &[3, 3, 3, 3, 4, 1, 1, 1])
        .kv_u32("tokenizer.ggml.bos_token_id", 2)
        .kv_u32("tokenizer.ggml.eos_token_id", 1)
        .kv_u32("tokenizer.ggml.unknown_token_id", 3)
        .kv_u32("tokenizer.ggml.padding_token_id", 0)
        .kv_raw("tokenizer.ggml.add_bos_token", 7, &[1])
        .f32_tensor("token_embd.weight", &[d, v], &matrix(v, d))
        .f32_tensor("output_norm.weight", &[d], &matrix(1, d));
    for l in 0..2 {
        let t = |n: &str| format!("blk.{l}.{n}.weight");
        b = b
            .f32_tensor(&t("attn_norm"), &[d], &matrix(1, d))
            .f32_tensor(&t("attn_q"), &[d, 2 * hd], &matrix(2 * hd, d))
            .f32_tensor(&t("attn_k"), &[d, hd], &matrix(hd, d))
            .f32_tensor(&t("attn_v"), &[d, hd], &matrix(hd, d))
            .f32_tensor(&t("attn_output"), &[2 * hd, d], &matrix(d, 2 * hd))
            .f32_tensor(&t("attn_q_norm"), &[hd], &matrix(1, hd))
            .f32_tensor(&t("attn_k_norm"), &[hd], &matrix(1, hd))
            .f32_tensor(&t("post_attention_norm"), &[d], &matrix(1, d))
            .f32_tensor(&t("ffn_norm"), &[d], &matrix(1, d))
            .f32_tensor(&t("post_ffw_norm"), &[d], &matrix(1, d))
            .f32_tensor(&t("ffn_gate"), &[d, ff], &matrix(ff, d))
            .f32_tensor(&t("ffn_up"), &[d, ff], &matrix(ff, d))
            .f32_tensor(&t("ffn_down"), &[ff, d], &matrix(d, ff));
    }
    b
}

/// `n / 32` Q5_0 (`with_min` false: f16 d, u32 qh, 16 bytes of nibbles) or Q5_1 (`with_min`
/// true: f16 d, f16 m, qh, nibbles) blocks with small scales and varied bits.
pub fn q5_blocks(n: usize, with_min: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for blk in 0..n / 32 {
        out.extend(f16_bytes(0.01 + blk as f32 * 0.001));
        if with_min {
            out.extend(f16_bytes(-0.1));
        }
        out.extend((0x9e37_79b9u32.rotate_left(blk as u32)).to_le_bytes());
        out.extend((0..16).map(|i| (i as u8).wrapping_mul(37).wrapping_add(blk as u8)));
    }
    out
}
