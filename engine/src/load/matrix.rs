//! A weight matrix `[rows, cols]` (row-major, the checkpoint's `[out_features, in_features]`),
//! held once: read in place from the memory-mapped safetensors file in its own dtype (f32,
//! bf16 or f16), or owned f32 (a converted, trained or edited model). Loading a model copies
//! no weights; the CPU kernels read them where they are and widen bf16/f16 in registers.
//!
//! A GGUF's quantized blocks (Q4_K, Q8_0, …) stay as downloaded too: [`Matrix::quantized`]
//! keeps them in the mapped file (or in an owned copy, for rows llama.cpp permuted) and the
//! kernels dequantize tiles as they read them; activations stay f32.

use std::borrow::Cow;
use std::sync::Arc;

use memmap2::Mmap;
use ndarray::{Array1, Array2, ArrayView2};

use crate::load::gguf::GgmlType;
use crate::load::gguf::dequant::{dequantize, first_non_finite_block};


/// The weights a kernel reads: `rows` rows of `cols` values, row `r` starting at `r · stride`.
#[derive(Debug, Clone, Copy)]
pub struct WeightRows<'a> {
    pub data: WeightData<'a>,
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

#[derive(Debug, Clone, Copy)]
pub enum WeightData<'a> {
    F32(&'a [f32]),
    /// bfloat16 bits.
    Bf16(&'a [u16]),
    /// IEEE half bits.
    F16(&'a [u16]),
    /// GGUF blocks of one type, rows contiguous ([`QuantRows`]); `stride` is `cols`.
    Quant(QuantRows<'a>),
}

/// Quantized rows: `row_bytes` bytes per row, each row a whole number of `ty`'s blocks.
#[derive(Debug, Clone, Copy)]
pub struct QuantRows<'a> {
    pub ty: GgmlType,
    pub bytes: &'a [u8],
    pub row_bytes: usize,
}

impl<'a> QuantRows<'a> {
    /// Row `r`'s blocks.
    pub fn row(&self, r: usize) -> &'a [u8] {
        &self.bytes[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// Row `r` dequantized into `out` (`cols` values), exactly as ggml's reference does.
    pub fn dequantize_row(&self, r: usize, cols: usize, out: &mut Vec<f32>) {
        out.clear();
        out.extend(dequantize(self.ty, self.row(r), cols).unwrap_or_else(|_| vec![0.0; cols]));
    }
}

impl WeightRows<'_> {
    pub(crate) fn len_ok(&self) -> bool {
        let need = if self.rows == 0 { 0 } else { (self.rows - 1) * self.stride + self.cols };
        let have = match self.data {
            WeightData::F32(d) => d.len(),
            WeightData::Bf16(d) | WeightData::F16(d) => d.len(),
            WeightData::Quant(q) => {
                let whole = q.ty.block_layout().is_some_and(|(block, bytes)| self.cols.is_multiple_of(block) && q.row_bytes == self.cols / block * bytes);
                return whole && self.stride == self.cols && q.bytes.len() >= self.rows * q.row_bytes;
            }
        };
        self.stride >= self.cols && have >= need
    }

    /// Rows `start..start + n` of this matrix.
    pub(crate) fn slice_rows(&self, start: usize, n: usize) -> WeightRows<'_> {
        let from = start * self.stride;
        let data = match self.data {
            WeightData::F32(d) => WeightData::F32(&d[from..]),
            WeightData::Bf16(d) => WeightData::Bf16(&d[from..]),
            WeightData::F16(d) => WeightData::F16(&d[from..]),
            WeightData::Quant(q) => WeightData::Quant(QuantRows { bytes: &q.bytes[start * q.row_bytes..], ..q }),
        };
        WeightRows { data, rows: n, cols: self.cols, stride: self.stride }
    }

    /// Element (r, c) widened to f32 (the portable path and the tails).
    #[inline]
    pub(crate) fn get(&self, r: usize, c: usize) -> f32 {
        let i = r * self.stride + c;
        match self.data {
            WeightData::F32(d) => d[i],
            WeightData::Bf16(d) => f32::from_bits(u32::from(d[i]) << 16),
            WeightData::F16(d) => half::f16::from_bits(d[i]).to_f32(),
            WeightData::Quant(q) => quant_get(q, r, c),
        }
    }
}

/// One value of a quantized matrix: its block dequantized (slow; tails and tests only).
fn quant_get(q: QuantRows<'_>, r: usize, c: usize) -> f32 {
    let Some((block, bytes)) = q.ty.block_layout() else { return 0.0 };
    let at = r * q.row_bytes + c / block * bytes;
    q.bytes.get(at..at + bytes).and_then(|b| dequantize(q.ty, b, block).ok()).map_or(0.0, |v| v[c % block])
}

/// Where a quantized matrix's blocks are: in the mapped file, or owned (rows reordered).
#[derive(Clone)]
pub enum QuantBytes {
    Mapped { map: Arc<Mmap>, offset: usize, len: usize },
    Owned(Arc<[u8]>),
}

impl QuantBytes {
    fn slice(&self) -> &[u8] {
        match self {
            QuantBytes::Mapped { map, offset, len } => map.get(*offset..offset + len).unwrap_or(&[]),
            QuantBytes::Owned(b) => b,
        }
    }
}

#[derive(Clone)]
struct Quantized {
    ty: GgmlType,
    bytes: QuantBytes,
    row_bytes: usize,
}

/// `rows · cols` little-endian values from byte `offset` of the map (aligned to their size).
#[derive(Clone)]
struct Mapped {
    map: Arc<Mmap>,
    offset: usize,
    dtype: MappedDtype,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappedDtype {
    F32,
    Bf16,
    F16,
}

impl MappedDtype {
    pub fn bytes(self) -> usize {
        match self {
            MappedDtype::F32 => 4,
            MappedDtype::Bf16 | MappedDtype::F16 => 2,
        }
    }
}

/// Exactly one of `owned`, `mapped` and `quant` holds the values.
#[derive(Clone)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    owned: Option<Array2<f32>>,
    mapped: Option<Mapped>,
    quant: Option<Quantized>,
}

impl std::fmt::Debug for Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Matrix [{}, {}] {}", self.rows, self.cols, self.dtype_name())
    }
}

impl PartialEq for Matrix {
    fn eq(&self, other: &Self) -> bool {
        self.dim() == other.dim() && self.to_f32() == other.to_f32()
    }
}

impl From<Array2<f32>> for Matrix {
    fn from(a: Array2<f32>) -> Self {
        let (rows, cols) = a.dim();
        let a = if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() };
        Matrix { rows, cols, owned: Some(a), mapped: None, quant: None }
    }
}

impl Matrix {
    /// The values `map[offset..]` read in place, if they are aligned for `dtype` (little-endian
    /// hosts only); `None` when they must be copied instead.
    pub fn mapped(map: Arc<Mmap>, offset: usize, rows: usize, cols: usize, dtype: MappedDtype) -> Option<Matrix> {
        let len = rows.checked_mul(cols)?.checked_mul(dtype.bytes())?;
        let fits = offset.checked_add(len).is_some_and(|end| end <= map.len());
        let aligned = (map.as_ptr() as usize + offset).is_multiple_of(dtype.bytes());
        (cfg!(target_endian = "little") && fits && aligned).then_some(Matrix { rows, cols, owned: None, mapped: Some(Mapped { map, offset, dtype }), quant: None })
    }

    /// Rows `start..start + n` as a matrix of their own: the same bytes of the mapped file
    /// (no copy; a fused `qkv_proj` seen as q, k and v), or a copy of an owned one's rows.
    /// Rows past the end are cut off (the caller checked the shape).
    pub fn row_range(&self, start: usize, n: usize) -> Matrix {
        let start = start.min(self.rows);
        let n = n.min(self.rows - start);
        if let Some(q) = &self.quant {
            let (from, len) = (start * q.row_bytes, n * q.row_bytes);
            let bytes = match &q.bytes {
                QuantBytes::Mapped { map, offset, .. } => QuantBytes::Mapped { map: map.clone(), offset: offset + from, len },
                QuantBytes::Owned(b) => QuantBytes::Owned(b.get(from..from + len).unwrap_or(&[]).into()),
            };
            return Matrix { rows: n, cols: self.cols, owned: None, mapped: None, quant: Some(Quantized { bytes, ..q.clone() }) };
        }
        match &self.mapped {
            Some(m) => Matrix {
                rows: n,
                cols: self.cols,
                owned: None,
                mapped: Some(Mapped { map: m.map.clone(), offset: m.offset + start * self.cols * m.dtype.bytes(), dtype: m.dtype }),
                quant: None,
            },
            None => {
                let owned = self.owned.as_ref().map(|a| a.slice(ndarray::s![start..start + n, ..]).to_owned());
                Matrix { rows: n, cols: self.cols, owned: Some(owned.unwrap_or_else(|| Array2::zeros((n, self.cols)))), mapped: None, quant: None }
            }
        }
    }

    /// GGUF blocks of `ty` kept as they are, `rows` rows of `cols` values. An error (one line,
    /// for the caller to prefix with the tensor's name) when a row is not a whole number of
    /// blocks or the bytes do not match.
    pub fn quantized(ty: GgmlType, bytes: QuantBytes, rows: usize, cols: usize) -> Result<Matrix, String> {
        let (block, block_bytes) = ty.block_layout().ok_or_else(|| format!("{ty} blocks cannot be read"))?;
        if !cols.is_multiple_of(block) {
            return Err(format!("a {ty} row holds whole blocks of {block} values, but this one has {cols}"));
        }
        let row_bytes = cols / block * block_bytes;
        let need = rows.checked_mul(row_bytes).ok_or_else(|| format!("{rows} × {cols} values overflow"))?;
        let have = bytes.slice().len();
        if have != need {
            return Err(format!("{rows} rows of {cols} {ty} values need {need} bytes, the data has {have} (the file may be cut short)"));
        }
        Ok(Matrix { rows, cols, owned: None, mapped: None, quant: Some(Quantized { ty, bytes, row_bytes }) })
    }

    /// The GGUF block type, for a matrix kept as downloaded.
    pub fn quant_type(&self) -> Option<GgmlType> {
        self.quant.as_ref().map(|q| q.ty)
    }

    /// The block of the first NaN or infinite scale (or value), for a quantized matrix: its
    /// row and the element its block starts at.
    pub fn first_non_finite_block(&self) -> Option<(usize, usize)> {
        let q = self.quant.as_ref()?;
        let (block, block_bytes) = q.ty.block_layout()?;
        let b = first_non_finite_block(q.ty, q.bytes.slice())?;
        let per_row = q.row_bytes / block_bytes;
        Some((b / per_row.max(1), b % per_row.max(1) * block))
    }

    pub fn dim(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    pub fn nrows(&self) -> usize {
        self.rows
    }

    pub fn ncols(&self) -> usize {
        self.cols
    }

    /// "f32", "bf16 (mapped)", …
    pub fn dtype_name(&self) -> &'static str {
        if let Some(q) = &self.quant {
            return quant_name(q.ty);
        }
        match self.mapped.as_ref().map(|m| m.dtype) {
            None => "f32",
            Some(MappedDtype::F32) => "f32 (mapped)",
            Some(MappedDtype::Bf16) => "bf16 (mapped)",
            Some(MappedDtype::F16) => "f16 (mapped)",
        }
    }

    /// Bytes the values take where they are.
    pub fn bytes(&self) -> usize {
        if let Some(q) = &self.quant {
            return self.rows * q.row_bytes;
        }
        self.rows * self.cols * self.mapped.as_ref().map_or(4, |m| m.dtype.bytes())
    }

    /// The rows as the CPU kernel reads them.
    pub fn rows(&self) -> WeightRows<'_> {
        if let Some(q) = &self.quant {
            let data = WeightData::Quant(QuantRows { ty: q.ty, bytes: q.bytes.slice(), row_bytes: q.row_bytes });
            return WeightRows { data, rows: self.rows, cols: self.cols, stride: self.cols };
        }
        let data = match (&self.owned, &self.mapped) {
            (Some(a), _) => WeightData::F32(a.as_slice().unwrap_or(&[])),
            (None, Some(m)) => {
                let bytes = &m.map[m.offset..m.offset + self.rows * self.cols * m.dtype.bytes()];
                // `mapped` checked the alignment, so these casts cannot fail.
                match m.dtype {
                    MappedDtype::F32 => WeightData::F32(bytemuck::try_cast_slice(bytes).unwrap_or(&[])),
                    MappedDtype::Bf16 => WeightData::Bf16(bytemuck::try_cast_slice(bytes).unwrap_or(&[])),
                    MappedDtype::F16 => WeightData::F16(bytemuck::try_cast_slice(bytes).unwrap_or(&[])),
                }
            }
            (None, None) => WeightData::F32(&[]),
        };
        WeightRows { data, rows: self.rows, cols: self.cols, stride: self.cols }
    }

    /// An f32 view without copying, when the values are f32.
    pub fn as_f32(&self) -> Option<ArrayView2<'_, f32>> {
        match self.rows().data {
            WeightData::F32(d) => ArrayView2::from_shape((self.rows, self.cols), d).ok(),
            _ => None,
        }
    }

    /// The values as f32: borrowed when they are f32, widened otherwise.
    pub fn f32_view(&self) -> Cow<'_, Array2<f32>> {
        match &self.owned {
            Some(a) => Cow::Borrowed(a),
            None => Cow::Owned(self.to_f32()),
        }
    }

    /// A widened copy.
    pub fn to_f32(&self) -> Array2<f32> {
        if let Some(v) = self.as_f32() {
            return v.to_owned();
        }
        if let WeightData::Quant(q) = self.rows().data {
            let all = dequantize(q.ty, q.bytes, self.rows * self.cols).unwrap_or_else(|_| vec![0.0; self.rows * self.cols]);
            return Array2::from_shape_vec((self.rows, self.cols), all).unwrap_or_else(|_| Array2::zeros((self.rows, self.cols)));
        }
        Array2::from_shape_fn((self.rows, self.cols), |(r, c)| self.get(r, c))
    }

    /// One value.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.rows().get(r, c)
    }

    /// Row `r` widened to f32 (an embedding lookup).
    pub fn row(&self, r: usize) -> Array1<f32> {
        match self.rows().data {
            WeightData::F32(d) => Array1::from(d[r * self.cols..(r + 1) * self.cols].to_vec()),
            WeightData::Quant(q) => {
                let mut row = Vec::with_capacity(self.cols);
                q.dequantize_row(r, self.cols, &mut row);
                Array1::from(row)
            }
            _ => Array1::from_shape_fn(self.cols, |c| self.get(r, c)),
        }
    }

    /// The values as an owned f32 array to edit (a mapped matrix is copied first).
    pub fn f32_mut(&mut self) -> &mut Array2<f32> {
        if self.owned.is_none() {
            self.owned = Some(self.to_f32());
            self.mapped = None;
            self.quant = None;
        }
        let (rows, cols) = (self.rows, self.cols);
        self.owned.get_or_insert_with(|| Array2::zeros((rows, cols)))
    }

    /// NaN and infinities: (count of NaN, count of ±inf).
    pub fn non_finite(&self) -> (usize, usize) {
        let (mut nan, mut inf) = (0, 0);
        let mut count = |v: f32| {
            if v.is_nan() {
                nan += 1;
            } else if v.is_infinite() {
                inf += 1;
            }
        };
        match self.rows().data {
            WeightData::F32(d) if all_finite(d) => {}
            WeightData::F32(d) => d.iter().for_each(|&v| count(v)),
            // An all-ones exponent is inf or NaN in both 16-bit formats.
            WeightData::Bf16(d) => d.iter().filter(|&&b| b & 0x7f80 == 0x7f80).for_each(|&b| count(f32::from_bits(u32::from(b) << 16))),
            WeightData::F16(d) => d.iter().filter(|&&b| b & 0x7c00 == 0x7c00).for_each(|&b| count(half::f16::from_bits(b).to_f32())),
            // Only scales can be non-finite; the loader refuses such blocks, so this is rare.
            WeightData::Quant(_) if self.first_non_finite_block().is_none() => {}
            WeightData::Quant(_) => self.to_f32().iter().for_each(|&v| count(v)),
        }
        (nan, inf)
    }
}

/// "Q4_K (as downloaded)", …
fn quant_name(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::F32 => "F32 (as downloaded)",
        GgmlType::F16 => "F16 (as downloaded)",
        GgmlType::Bf16 => "BF16 (as downloaded)",
        GgmlType::Q4_0 => "Q4_0 (as downloaded)",
        GgmlType::Q4_1 => "Q4_1 (as downloaded)",
        GgmlType::Q5_0 => "Q5_0 (as downloaded)",
        GgmlType::Q5_1 => "Q5_1 (as downloaded)",
        GgmlType::Q8_0 => "Q8_0 (as downloaded)",
        GgmlType::Q4K => "Q4_K (as downloaded)",
        GgmlType::Q5K => "Q5_K (as downloaded)",
        GgmlType::Q6K => "Q6_K (as downloaded)",
        GgmlType::Unsupported(_) => "unsupported (as downloaded)",
    }
}

/// Whether every value is finite: the largest magnitude's bits stay below the all-ones
/// exponent. An integer maximum, which the compiler vectorizes (a float test with an early
/// exit would run one value at a time); a pass checks every captured value with it.
pub fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff)) < 0x7f80_0000
}

