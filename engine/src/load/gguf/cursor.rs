//! Little-endian primitive reads over the file bytes. Errors are plain messages; the caller
//! knows which key or tensor was being read and wraps them.

use super::types::{
    GgufValue, T_ARRAY, T_BOOL, T_F32, T_F64, T_I8, T_I16, T_I32, T_I64, T_STRING, T_U8, T_U16,
    T_U32, T_U64, min_value_size, value_type_name,
};

/// Nested arrays are legal GGUF but no model uses more than one level; the cap (an array
/// may hold arrays, those may not) keeps a crafted file from recursing.
const MAX_ARRAY_DEPTH: usize = 2;

pub(crate) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> u64 {
        (self.data.len() - self.pos) as u64
    }

    pub(crate) fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "{what} needs {n} bytes at offset {} but only {} remain in the {}-byte file",
                self.pos,
                self.remaining(),
                self.data.len()
            ));
        }
        // n <= remaining <= usize::MAX, so the cast is lossless.
        let n = n as usize;
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<String, String> {
        let len = self.u64(&format!("{what} length"))?;
        if len > self.remaining() {
            return Err(format!(
                "{what} claims {len} bytes at offset {} but only {} remain in the {}-byte file",
                self.pos,
                self.remaining(),
                self.data.len()
            ));
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("{what} is not valid UTF-8: {e}"))
    }

    pub(crate) fn value(&mut self, value_type: u32) -> Result<GgufValue, String> {
        self.value_at_depth(value_type, 0)
    }

    fn value_at_depth(&mut self, value_type: u32, depth: usize) -> Result<GgufValue, String> {
        Ok(match value_type {
            T_U8 => GgufValue::U8(u8::from_le_bytes(self.array("uint8 value")?)),
            T_I8 => GgufValue::I8(i8::from_le_bytes(self.array("int8 value")?)),
            T_U16 => GgufValue::U16(u16::from_le_bytes(self.array("uint16 value")?)),
            T_I16 => GgufValue::I16(i16::from_le_bytes(self.array("int16 value")?)),
            T_U32 => GgufValue::U32(self.u32("uint32 value")?),
            T_I32 => GgufValue::I32(i32::from_le_bytes(self.array("int32 value")?)),
            T_F32 => GgufValue::F32(f32::from_le_bytes(self.array("float32 value")?)),
            T_U64 => GgufValue::U64(self.u64("uint64 value")?),
            T_I64 => GgufValue::I64(i64::from_le_bytes(self.array("int64 value")?)),
            T_F64 => GgufValue::F64(f64::from_le_bytes(self.array("float64 value")?)),
            T_BOOL => match self.array::<1>("bool value")?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(format!("bool value is {b}, expected 0 or 1")),
            },
            T_STRING => GgufValue::Str(self.string("string value")?),
            T_ARRAY => self.array_value(depth)?,
            other => return Err(format!("unknown value type {other}")),
        })
    }

    fn array_value(&mut self, depth: usize) -> Result<GgufValue, String> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(format!("arrays nested more than {} deep", MAX_ARRAY_DEPTH - 1));
        }
        let elem_type = self.u32("array element type")?;
        let min = min_value_size(elem_type)
            .ok_or_else(|| format!("array of unknown element type {elem_type}"))?;
        let count = self.u64("array length")?;
        let fits = count
            .checked_mul(min)
            .is_some_and(|need| need <= self.remaining());
        if !fits {
            return Err(format!(
                "array claims {count} {} elements (at least {min} bytes each) but only {} bytes \
                 remain in the {}-byte file",
                value_type_name(elem_type),
                self.remaining(),
                self.data.len()
            ));
        }
        // count * min <= remaining, so count fits in usize and the allocation is bounded by
        // the file size times a small constant.
        let mut items = Vec::with_capacity(count as usize);
        for i in 0..count {
            let item = self
                .value_at_depth(elem_type, depth + 1)
                .map_err(|e| format!("array element {i}: {e}"))?;
            items.push(item);
        }
        Ok(GgufValue::Array { elem_type, items })
    }
}
