//! A small Llama GGUF in the `Q4_K_M` mix most downloaded files use (Q4_K matrices, Q6_K for
//! `attn_v`, `ffn_down` and the output head, Q5_K for one of them, F32 norms), written with
//! the engine's GGUF builder, and a reference dequantizer written independently from the
//! block layouts in ggml's `ggml-common.h` (element by element, not the engine's loops).

use glassbox_engine::load::gguf::builder::{GgufBuilder, TOKENS, f16_bytes};

pub const HIDDEN: u64 = 256;
pub const HEADS: u64 = 4;
pub const KV_HEADS: u64 = 2;
pub const HEAD_DIM: u64 = HIDDEN / HEADS;
pub const FFN: u64 = 512;
pub const LAYERS: u64 = 2;

pub const Q4_K: u32 = 12;
pub const Q5_K: u32 = 13;
pub const Q6_K: u32 = 14;

/// Deterministic bytes.
pub struct Bytes(u64);

impl Bytes {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }
    pub fn fill(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// `n / 256` random super-blocks of `ty` with small scales (weights of order 0.1).
pub fn k_blocks(ty: u32, n: usize, rng: &mut Bytes) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n / 256 {
        match ty {
            Q4_K | Q5_K => {
                out.extend(f16_bytes(0.0005 + f32::from(rng.byte()) * 1e-5));
                out.extend(f16_bytes(0.0008 + f32::from(rng.byte()) * 1e-5));
                out.extend(rng.fill(12));
                out.extend(rng.fill(if ty == Q4_K { 128 } else { 32 + 128 }));
            }
            Q6_K => {
                out.extend(rng.fill(128 + 64));
                // Scales in [-32, 31]: i8 values that keep weights small.
                out.extend((0..16).map(|_| ((rng.byte() % 64) as i8 - 32) as u8));
                out.extend(f16_bytes(0.0004));
            }
            other => panic!("not a K-quant: {other}"),
        }
    }
    out
}

fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// 6-bit scale and min of sub-block `j` (ggml-common.h, `get_scale_min_k4`), read as bit
/// fields: sub-blocks 0–3 in the low 6 bits of bytes j / j+4; 4–7 split between the nibbles
/// of byte j+4 and the top two bits of bytes j-4 / j.
fn scale_min(scales: &[u8], j: usize) -> (u32, u32) {
    if j < 4 {
        (u32::from(scales[j] & 0x3f), u32::from(scales[j + 4] & 0x3f))
    } else {
        let sc = u32::from(scales[j + 4] & 0x0f) | (u32::from(scales[j - 4] >> 6) << 4);
        let m = u32::from(scales[j + 4] >> 4) | (u32::from(scales[j] >> 6) << 4);
        (sc, m)
    }
}

/// Reference dequantization of one tensor's bytes.
pub fn reference_dequant(ty: u32, data: &[u8]) -> Vec<f32> {
    let block = match ty {
        Q4_K => 144,
        Q5_K => 176,
        Q6_K => 210,
        other => panic!("not a K-quant: {other}"),
    };
    let mut out = Vec::with_capacity(data.len() / block * 256);
    for b in data.chunks_exact(block) {
        for e in 0..256 {
            out.push(element(ty, b, e));
        }
    }
    out
}

/// Element `e` (0..256) of one super-block.
fn element(ty: u32, b: &[u8], e: usize) -> f32 {
    match ty {
        Q4_K | Q5_K => {
            let (d, dmin) = (f16(b, 0), f16(b, 2));
            let (sb, l) = (e / 32, e % 32);
            let (sc, m) = scale_min(&b[4..16], sb);
            let qs = if ty == Q4_K { &b[16..144] } else { &b[48..176] };
            let byte = qs[32 * (sb / 2) + l];
            let mut q = if sb % 2 == 0 { byte & 0x0f } else { byte >> 4 };
            if ty == Q5_K {
                q += ((b[16 + l] >> sb) & 1) << 4;
            }
            (d * sc as f32) * f32::from(q) - dmin * m as f32
        }
        _ => {
            let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
            let d = f16(b, 208);
            let (half, r) = (e / 128, e % 128);
            let (k, l) = (r / 32, r % 32);
            let byte = ql[64 * half + l + 32 * (k & 1)];
            let low = if k < 2 { byte & 0x0f } else { byte >> 4 };
            let high = (qh[32 * half + l] >> (2 * k)) & 3;
            let q = i32::from(low | (high << 4)) - 32;
            d * f32::from(sc[e / 16] as i8) * q as f32
        }
    }
}

/// (GGUF name, dims fastest-first, type) of every K-quant matrix in the model.
pub fn quantized_tensors() -> Vec<(String, [u64; 2], u32)> {
    let v = TOKENS.len() as u64;
    let mut out = vec![("token_embd.weight".to_string(), [HIDDEN, v], Q4_K)];
    for l in 0..LAYERS {
        let p = |n: &str| format!("blk.{l}.{n}.weight");
        out.push((p("attn_q"), [HIDDEN, HEADS * HEAD_DIM], Q4_K));
        out.push((p("attn_k"), [HIDDEN, KV_HEADS * HEAD_DIM], Q4_K));
        // Q4_K_M keeps attn_v and ffn_down at 6 bits (in half the layers; here one of each
        // is 5 bits so all three decoders run).
        out.push((p("attn_v"), [HIDDEN, KV_HEADS * HEAD_DIM], if l == 0 { Q6_K } else { Q5_K }));
        out.push((p("attn_output"), [HEADS * HEAD_DIM, HIDDEN], Q4_K));
        out.push((p("ffn_gate"), [HIDDEN, FFN], Q4_K));
        out.push((p("ffn_up"), [HIDDEN, FFN], Q5_K));
        out.push((p("ffn_down"), [FFN, HIDDEN], Q6_K));
    }
    out.push(("output.weight".to_string(), [HIDDEN, v], Q6_K));
    out
}

/// (GGUF name, ggml type, raw bytes) of one quantized tensor.
pub type RawTensor = (String, u32, Vec<u8>);

/// The model and each quantized tensor's raw bytes (for the reference).
pub fn q4_k_m_llama() -> (Vec<u8>, Vec<RawTensor>) {
    let mut rng = Bytes::new(7);
    let ones: Vec<f32> = (0..HIDDEN).map(|i| 1.0 + (i % 7) as f32 * 0.01).collect();
    let mut b = GgufBuilder::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", LAYERS as u32)
        .kv_u32("llama.context_length", 128)
        .kv_u32("llama.embedding_length", HIDDEN as u32)
        .kv_u32("llama.feed_forward_length", FFN as u32)
        .kv_u32("llama.attention.head_count", HEADS as u32)
        .kv_u32("llama.attention.head_count_kv", KV_HEADS as u32)
        .kv_f32("llama.rope.freq_base", 10000.0)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str("tokenizer.ggml.pre", "smollm")
        .kv_str_array("tokenizer.ggml.tokens", TOKENS)
        .kv_str_array("tokenizer.ggml.merges", &["a b", "Ġ ab", "1 2"])
        .kv_u32("tokenizer.ggml.eos_token_id", 0);
    let mut raw = Vec::new();
    for (name, dims, ty) in quantized_tensors() {
        let bytes = k_blocks(ty, (dims[0] * dims[1]) as usize, &mut rng);
        b = b.tensor(&name, &dims, ty, &bytes);
        raw.push((name, ty, bytes));
    }
    for l in 0..LAYERS {
        b = b
            .f32_tensor(&format!("blk.{l}.attn_norm.weight"), &[HIDDEN], &ones)
            .f32_tensor(&format!("blk.{l}.ffn_norm.weight"), &[HIDDEN], &ones);
    }
    b = b.f32_tensor("output_norm.weight", &[HIDDEN], &ones);
    (b.build(), raw)
}
