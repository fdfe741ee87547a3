//! Parsing and typed access to a GGUF file's metadata and tensor table.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use super::GgufError;
use super::cursor::Cursor;
use super::dequant::dequantize;
use super::types::{GgmlType, GgufValue};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml writes 32; anything above a page multiple is a corrupt value, and a huge alignment
/// would push the data section past any real file.
const MAX_ALIGNMENT: u64 = 1 << 16;
/// ggml's GGML_MAX_DIMS; a tensor claiming more is corrupt, not exotic.
pub(crate) const MAX_DIMS: u32 = 4;
/// ggml's GGML_TYPE_COUNT as of GGUF v3 (2025): a larger id is corruption, not a newer
/// quantization.
const GGML_TYPE_COUNT: u32 = 40;
/// Smallest encodings of one key/value pair and one tensor-info record, used to reject
/// counts that could not possibly fit in the file before reserving room for them.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

/// One entry of the tensor table. `dims` are in GGUF order, fastest-varying first, so a
/// weight matrix is `[in_features, out_features]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        // Checked when the file was opened.
        self.dims.iter().product()
    }

    /// Row-major (slowest first) shape, as Hugging Face and safetensors write it.
    pub fn hf_shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// None for types without a dequantizer.
    pub fn byte_len(&self) -> Option<u64> {
        let (block, bytes) = self.ggml_type.block_layout()?;
        Some((self.n_elements() / block as u64).saturating_mul(bytes as u64))
    }
}

enum Backing {
    Mapped(std::sync::Arc<memmap2::Mmap>),
    Owned(Vec<u8>),
}

impl Deref for Backing {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(m) => m,
            Self::Owned(v) => v,
        }
    }
}

pub struct GgufFile {
    path: PathBuf,
    bytes: Backing,
    version: u32,
    alignment: u64,
    data_start: u64,
    metadata: Vec<(String, GgufValue)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let file = std::fs::File::open(path).map_err(|e| GgufError::io(path, e))?;
        // SAFETY: the map is read-only and private to this process. If another process
        // truncates the file while it is mapped, reads may fault; that is the same trade
        // every mmap-based model loader makes, and copying ~100 MB+ files up front is worse.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| GgufError::io(path, e))?;
        Self::parse(path.to_path_buf(), Backing::Mapped(std::sync::Arc::new(map)))
    }

    /// Parse bytes already in memory; `path` only labels errors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, GgufError> {
        Self::parse(path.to_path_buf(), Backing::Owned(bytes))
    }

    fn parse(path: PathBuf, bytes: Backing) -> Result<Self, GgufError> {
        let format = |msg: String| GgufError::Format {
            path: path.clone(),
            msg: crate::printable::printable(&msg),
        };
        let mut cur = Cursor::new(&bytes);
        let magic = cur.take(4, "magic").map_err(format)?;
        if magic != MAGIC {
            return Err(format(format!(
                "magic is {magic:02x?}, expected \"GGUF\" ({MAGIC:02x?})"
            )));
        }
        let version = cur.u32("version").map_err(format)?;
        if !(2..=3).contains(&version) {
            return Err(format(format!(
                "version {version} is not supported (only GGUF v2 and v3)"
            )));
        }
        let tensor_count = cur.u64("tensor count").map_err(format)?;
        let kv_count = cur.u64("metadata key/value count").map_err(format)?;
        check_count(&cur, kv_count, MIN_KV_BYTES, "metadata key/value count").map_err(format)?;
        check_count(&cur, tensor_count, MIN_TENSOR_INFO_BYTES, "tensor count").map_err(format)?;

        let mut metadata = Vec::with_capacity(kv_count as usize);
        let mut key_index = HashMap::with_capacity(kv_count as usize);
        for i in 0..kv_count {
            let key = cur.string(&format!("metadata key #{i}")).map_err(format)?;
            if key.is_empty() {
                return Err(format(format!("metadata key #{i} is empty")));
            }
            let meta_err = |msg: String| GgufError::metadata(&path, &key, msg);
            let value_type = cur.u32("value type").map_err(meta_err)?;
            let value = cur.value(value_type).map_err(meta_err)?;
            if key_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(meta_err("appears more than once".to_string()));
            }
            metadata.push((key, value));
        }

        let mut tensors = Vec::with_capacity(tensor_count as usize);
        let mut tensor_index = HashMap::with_capacity(tensor_count as usize);
        for i in 0..tensor_count {
            let name = cur.string(&format!("tensor #{i} name")).map_err(format)?;
            let info =
                read_tensor_info(&mut cur, name).map_err(|(name, msg)| GgufError::Tensor {
                    path: path.clone(),
                    tensor: name,
                    msg,
                })?;
            if tensor_index
                .insert(info.name.clone(), tensors.len())
                .is_some()
            {
                return Err(GgufError::tensor(
                    &path,
                    &info.name,
                    "appears more than once",
                ));
            }
            tensors.push(info);
        }

        let alignment = match metadata_value(&metadata, &key_index, "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a.is_power_of_two() && a <= MAX_ALIGNMENT => a,
                _ => {
                    return Err(GgufError::metadata(
                        &path,
                        "general.alignment",
                        format!("must be a power of two up to {MAX_ALIGNMENT}, found {v:?}"),
                    ));
                }
            },
        };
        let data_start = (cur.pos() as u64).div_ceil(alignment) * alignment;
        let file_len = bytes.len() as u64;
        for t in &tensors {
            check_tensor_bounds(t, data_start, file_len, alignment)
                .map_err(|msg| GgufError::tensor(&path, &t.name, msg))?;
        }
        check_overlaps(&tensors).map_err(|(name, msg)| GgufError::tensor(&path, &name, msg))?;

        Ok(Self {
            path,
            bytes,
            version,
            alignment,
            data_start,
            metadata,
            key_index,
            tensors,
            tensor_index,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's map, shared, when it was opened from disk (a native load keeps its blocks in
    /// place); None for bytes parsed from memory.
    pub fn shared_map(&self) -> Option<std::sync::Arc<memmap2::Mmap>> {
        match &self.bytes {
            Backing::Mapped(m) => Some(m.clone()),
            Backing::Owned(_) => None,
        }
    }

    /// Where a tensor's bytes start in the file (bounds were checked at open).
    pub fn tensor_file_offset(&self, info: &TensorInfo) -> u64 {
        self.data_start + info.offset
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset where tensor data begins.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    pub fn metadata(&self, key: &str) -> Option<&GgufValue> {
        metadata_value(&self.metadata, &self.key_index, key)
    }

    /// All key/value pairs in file order.
    pub fn metadata_entries(&self) -> &[(String, GgufValue)] {
        &self.metadata
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    fn require(&self, key: &str) -> Result<&GgufValue, GgufError> {
        self.metadata(key)
            .ok_or_else(|| GgufError::metadata(&self.path, key, "is missing"))
    }

    fn mistyped(&self, key: &str, want: &str, got: &GgufValue) -> GgufError {
        GgufError::metadata(
            &self.path,
            key,
            format!("expected {want}, found {} {got:?}", got.type_name()),
        )
    }

    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| self.mistyped(key, "a non-negative integer", v))
    }

    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        let n = self.get_u64(key)?;
        u32::try_from(n)
            .map_err(|_| GgufError::metadata(&self.path, key, format!("{n} does not fit in u32")))
    }

    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        let v = self.require(key)?;
        v.as_f64()
            .map(|f| f as f32)
            .ok_or_else(|| self.mistyped(key, "a float", v))
    }

    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.mistyped(key, "a string", v))
    }

    fn get_array(&self, key: &str) -> Result<&[GgufValue], GgufError> {
        match self.require(key)? {
            GgufValue::Array { items, .. } => Ok(items),
            other => Err(self.mistyped(key, "an array", other)),
        }
    }

    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        self.get_array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    GgufError::metadata(&self.path, key, format!("element {i} is not a string"))
                })
            })
            .collect()
    }

    pub fn get_int_array(&self, key: &str) -> Result<Vec<i64>, GgufError> {
        self.get_array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_i64().ok_or_else(|| {
                    GgufError::metadata(&self.path, key, format!("element {i} is not an integer"))
                })
            })
            .collect()
    }

    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        self.get_array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_f64().map(|f| f as f32).ok_or_else(|| {
                    GgufError::metadata(&self.path, key, format!("element {i} is not a float"))
                })
            })
            .collect()
    }

    /// Missing keys are None; present keys of the wrong type are still errors, because a
    /// silently ignored value would change the model.
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.metadata(key).map(|_| self.get_u32(key)).transpose()
    }

    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.metadata(key).map(|_| self.get_f32(key)).transpose()
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.metadata(key) {
            None => Ok(None),
            Some(GgufValue::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.mistyped(key, "a bool", other)),
        }
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        self.metadata(key).map(|_| self.get_str(key)).transpose()
    }

    /// The raw encoded bytes of a tensor (bounds were checked at open).
    pub fn tensor_bytes(&self, info: &TensorInfo) -> Result<&[u8], GgufError> {
        let len = info
            .byte_len()
            .ok_or_else(|| unsupported_type(&self.path, info))?;
        let start = self.data_start + info.offset;
        // Both fit in usize: open() checked start + len <= file length.
        Ok(&self.bytes[start as usize..(start + len) as usize])
    }

    /// Dequantized values and the Hugging Face shape (`[out_features, in_features]`).
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), GgufError> {
        let info = self
            .tensor(name)
            .ok_or_else(|| GgufError::tensor(&self.path, name, "is not in the file"))?;
        let bytes = self.tensor_bytes(info)?;
        let values = dequantize(info.ggml_type, bytes, info.n_elements() as usize)
            .map_err(|e| GgufError::tensor(&self.path, name, e.to_string()))?;
        Ok((info.hf_shape(), values))
    }
}

pub(crate) fn unsupported_type(path: &Path, info: &TensorInfo) -> GgufError {
    GgufError::tensor(
        path,
        &info.name,
        format!(
            "{} is not supported (Glassbox reads {}; re-export the model with one of those, \
             e.g. llama-quantize --allow-requantize ... Q8_0)",
            info.ggml_type,
            super::dequant::SUPPORTED
        ),
    )
}

fn metadata_value<'a>(
    metadata: &'a [(String, GgufValue)],
    index: &HashMap<String, usize>,
    key: &str,
) -> Option<&'a GgufValue> {
    index.get(key).map(|&i| &metadata[i].1)
}

fn check_count(cur: &Cursor<'_>, count: u64, min_each: u64, what: &str) -> Result<(), String> {
    match count.checked_mul(min_each) {
        Some(need) if need <= cur.remaining() => Ok(()),
        _ => Err(format!(
            "{what} is {count}, but {count} entries of at least {min_each} bytes cannot fit in \
             the {} bytes left after offset {}",
            cur.remaining(),
            cur.pos()
        )),
    }
}

/// Errors carry the tensor name back so the caller can wrap them uniformly.
fn read_tensor_info(cur: &mut Cursor<'_>, name: String) -> Result<TensorInfo, (String, String)> {
    let n_dims = match cur.u32("dimension count") {
        Ok(n) => n,
        Err(e) => return Err((name, e)),
    };
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err((
            name,
            format!("has {n_dims} dimensions; GGUF tensors have 1 to {MAX_DIMS}"),
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        match cur.u64(&format!("dimension {d}")) {
            Ok(v) => dims.push(v),
            Err(e) => return Err((name, e)),
        }
    }
    let type_id = match cur.u32("ggml type") {
        Ok(t) => t,
        Err(e) => return Err((name, e)),
    };
    if type_id >= GGML_TYPE_COUNT {
        return Err((
            name,
            format!(
                "type id {type_id} is not a ggml type (ids stop below {GGML_TYPE_COUNT}); the \
                 tensor table is corrupt"
            ),
        ));
    }
    let offset = match cur.u64("data offset") {
        Ok(o) => o,
        Err(e) => return Err((name, e)),
    };
    if dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .is_none()
    {
        return Err((
            name,
            format!("dimensions {dims:?} overflow a 64-bit element count"),
        ));
    }
    Ok(TensorInfo {
        name,
        dims,
        ggml_type: GgmlType::from_id(type_id),
        offset,
    })
}

fn check_tensor_bounds(
    t: &TensorInfo,
    data_start: u64,
    file_len: u64,
    alignment: u64,
) -> Result<(), String> {
    // ggml places every tensor at an aligned offset; one that is not was written by
    // something else or shifted by corruption, and its bytes would decode as garbage.
    if !t.offset.is_multiple_of(alignment) {
        return Err(format!(
            "data offset {} is not a multiple of the file's alignment {alignment}; the tensor \
             table is corrupt",
            t.offset
        ));
    }
    // Unknown types have no known size; tensor_bytes() refuses them later with a message
    // naming the type, and until then they are only listed.
    let Some((block, block_bytes)) = t.ggml_type.block_layout() else {
        return Ok(());
    };
    let row = t.dims[0];
    if !row.is_multiple_of(block as u64) {
        return Err(format!(
            "first dimension {row} is not a multiple of the {} block size {block}: a row must \
             hold whole blocks; the file is damaged or written by a broken tool, download or \
             export it again",
            t.ggml_type
        ));
    }
    let len = (t.n_elements() / block as u64).checked_mul(block_bytes as u64);
    let end = len.and_then(|len| data_start.checked_add(t.offset)?.checked_add(len));
    let len = len.map_or_else(|| "too many".to_string(), |l| l.to_string());
    match end {
        Some(end) if end <= file_len => Ok(()),
        _ => Err(format!(
            "data offset {} + {len} bytes (data section starts at {data_start}) runs past the \
             end of the file ({file_len} bytes): the file is cut short, download it again",
            t.offset
        )),
    }
}

/// Two tensors sharing bytes means at least one of them decodes something else's data:
/// a corrupt (or hostile) table, never a real model. Bounds were checked already.
fn check_overlaps(tensors: &[TensorInfo]) -> Result<(), (String, String)> {
    let mut spans: Vec<(u64, u64, &str)> = tensors
        .iter()
        .filter_map(|t| {
            let len = t.byte_len()?;
            (len > 0).then(|| (t.offset, t.offset + len, t.name.as_str()))
        })
        .collect();
    spans.sort_unstable();
    for pair in spans.windows(2) {
        let [(_, end_a, a), (start_b, _, b)] = pair else {
            continue;
        };
        if start_b < end_a {
            return Err((
                b.to_string(),
                format!(
                    "data at offset {start_b} overlaps tensor `{}` (which runs to {end_a}); the \
                     tensor table is corrupt",
                    crate::printable::printable(a)
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
