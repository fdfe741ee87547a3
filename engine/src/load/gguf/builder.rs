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
