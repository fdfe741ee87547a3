//! Value and tensor-type vocabulary of the GGUF format.

use std::fmt;

/// A metadata value. Arrays keep their element type so an empty array still says what it
/// would have held.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array {
        elem_type: u32,
        items: Vec<GgufValue>,
    },
    U64(u64),
    I64(i64),
    F64(f64),
}

pub(crate) const T_U8: u32 = 0;
pub(crate) const T_I8: u32 = 1;
pub(crate) const T_U16: u32 = 2;
pub(crate) const T_I16: u32 = 3;
pub(crate) const T_U32: u32 = 4;
pub(crate) const T_I32: u32 = 5;
pub(crate) const T_F32: u32 = 6;
pub(crate) const T_BOOL: u32 = 7;
pub(crate) const T_STRING: u32 = 8;
pub(crate) const T_ARRAY: u32 = 9;
pub(crate) const T_U64: u32 = 10;
pub(crate) const T_I64: u32 = 11;
pub(crate) const T_F64: u32 = 12;

/// Smallest number of bytes one value of a metadata type can occupy; used to reject counts
/// that cannot fit in what remains of the file before allocating for them.
pub(crate) fn min_value_size(value_type: u32) -> Option<u64> {
    Some(match value_type {
        T_U8 | T_I8 | T_BOOL => 1,
        T_U16 | T_I16 => 2,
        T_U32 | T_I32 | T_F32 => 4,
        T_U64 | T_I64 | T_F64 => 8,
        T_STRING => 8,
        T_ARRAY => 12,
        _ => return None,
    })
}

pub(crate) fn value_type_name(value_type: u32) -> &'static str {
    match value_type {
        T_U8 => "uint8",
        T_I8 => "int8",
        T_U16 => "uint16",
        T_I16 => "int16",
        T_U32 => "uint32",
        T_I32 => "int32",
        T_F32 => "float32",
        T_BOOL => "bool",
        T_STRING => "string",
        T_ARRAY => "array",
        T_U64 => "uint64",
        T_I64 => "int64",
        T_F64 => "float64",
        _ => "unknown",
    }
}

impl GgufValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::U8(_) => "uint8",
            Self::I8(_) => "int8",
            Self::U16(_) => "uint16",
            Self::I16(_) => "int16",
            Self::U32(_) => "uint32",
            Self::I32(_) => "int32",
            Self::F32(_) => "float32",
            Self::Bool(_) => "bool",
            Self::Str(_) => "string",
            Self::Array { .. } => "array",
            Self::U64(_) => "uint64",
            Self::I64(_) => "int64",
            Self::F64(_) => "float64",
        }
    }

    /// Any integer type that fits a u64 without loss; writers disagree on which integer
    /// width they use for counts and ids, so callers should not care.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::I8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::I64(v) => Some(v),
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Tensor element encodings. Only the ones with a dequantizer get their own variant; the
/// rest keep their number so errors can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
    Bf16,
    Unsupported(u32),
}

/// Elements per K-quant super-block (ggml's `QK_K`).
pub const QK_K: usize = 256;

impl GgmlType {
    /// Every type Glassbox reads (and keeps as downloaded).
    pub const DECODED: [GgmlType; 11] = [
        Self::F32,
        Self::F16,
        Self::Bf16,
        Self::Q8_0,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
    ];

    pub fn from_id(id: u32) -> Self {
        match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::Bf16,
            other => Self::Unsupported(other),
        }
    }

    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q4K => 12,
            Self::Q5K => 13,
            Self::Q6K => 14,
            Self::Bf16 => 30,
            Self::Unsupported(id) => id,
        }
    }

    /// (elements per block, bytes per block), or None for types we cannot decode.
    pub fn block_layout(self) -> Option<(usize, usize)> {
        match self {
            Self::F32 => Some((1, 4)),
            Self::F16 | Self::Bf16 => Some((1, 2)),
            Self::Q4_0 => Some((32, 2 + 16)),
            Self::Q4_1 => Some((32, 2 + 2 + 16)),
            // d, 4 bytes of fifth bits (`qh`, little-endian u32), 16 bytes of nibbles.
            Self::Q5_0 => Some((32, 2 + 4 + 16)),
            // d, m, qh, nibbles.
            Self::Q5_1 => Some((32, 2 + 2 + 4 + 16)),
            Self::Q8_0 => Some((32, 2 + 32)),
            // d, dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles.
            Self::Q4K => Some((QK_K, 2 + 2 + 12 + QK_K / 2)),
            // Q4_K plus 32 bytes holding each element's fifth bit.
            Self::Q5K => Some((QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2)),
            // 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 i8 scales, d.
            Self::Q6K => Some((QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2)),
            Self::Unsupported(_) => None,
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
            Self::Bf16 => "BF16",
            Self::Unsupported(id) => {
                return write!(f, "ggml type {id} ({})", known_type_name(id));
            }
        };
        write!(f, "{name}")
    }
}

/// Names of ggml types we do not decode, so an error says "Q4_K" rather than only "12".
fn known_type_name(id: u32) -> &'static str {
    match id {
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        15 => "Q8_K",
        16..=23 => "IQ quant",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        _ => "unknown",
    }
}
