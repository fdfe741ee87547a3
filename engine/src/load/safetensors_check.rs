//! Messages for broken safetensors files. The `safetensors` crate decides what is valid;
//! when it refuses a file this module reads the header again to say which tensor is wrong
//! and by how many bytes (a truncated download shows expected vs actual size), and checks a
//! Hugging Face cache blob against the sha256 it is named by.

use std::io::Read;
use std::path::Path;

use safetensors::SafeTensorError;
use sha2::{Digest, Sha256};

/// The safetensors crate's own limit on the JSON header.
const MAX_HEADER: u64 = 100_000_000;

/// One line: what is wrong with `bytes` (the file at `path`), given the crate's verdict.
pub fn diagnose(bytes: &[u8], path: &Path, err: &SafeTensorError) -> String {
    let detail = detail(bytes, err);
    let blob = hf_blob_note(path).map(|n| format!("; {n}")).unwrap_or_default();
    crate::error::printable(&format!("not a valid safetensors file: {detail}{blob}"))
}

struct Entry {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    start: u64,
    end: u64,
}

fn detail(bytes: &[u8], err: &SafeTensorError) -> String {
    let len = bytes.len() as u64;
    let header_len = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes);
    match err {
        SafeTensorError::HeaderTooSmall => format!(
            "the file is {len} bytes, too short for the 8-byte header length (HeaderTooSmall; \
             an interrupted download?)"
        ),
        SafeTensorError::HeaderTooLarge => format!(
            "header length {} is over the {MAX_HEADER}-byte limit (HeaderTooLarge)",
            header_len.unwrap_or(0)
        ),
        SafeTensorError::InvalidHeaderLength => format!(
            "header length {} runs past the end of the {len}-byte file (InvalidHeaderLength; \
             truncated?)",
            header_len.unwrap_or(0)
        ),
        SafeTensorError::MetadataIncompleteBuffer => incomplete(bytes, len),
        SafeTensorError::InvalidOffset(name) => invalid_offset(bytes, name),
        SafeTensorError::TensorInvalidInfo => invalid_info(bytes),
        SafeTensorError::ValidationOverflow => overflow(bytes),
        other => other.to_string(),
    }
}

/// The header's tensor entries sorted by start offset; None when it does not parse.
fn entries(bytes: &[u8]) -> Option<(u64, Vec<Entry>)> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    if n > MAX_HEADER {
        return None;
    }
    let header = bytes.get(8..8 + usize::try_from(n).ok()?)?;
    let json: serde_json::Value = serde_json::from_slice(header).ok()?;
    let mut out = Vec::new();
    for (name, v) in json.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        let offsets = v.get("data_offsets")?.as_array()?;
        let (start, end) = (offsets.first()?.as_u64()?, offsets.get(1)?.as_u64()?);
        out.push(Entry {
            name: name.clone(),
            dtype: v.get("dtype")?.as_str()?.to_string(),
            shape: v
                .get("shape")?
                .as_array()?
                .iter()
                .map(serde_json::Value::as_u64)
                .collect::<Option<Vec<_>>>()?,
            start,
            end,
        });
    }
    out.sort_by_key(|e| (e.start, e.end));
    Some((n, out))
}

fn incomplete(bytes: &[u8], len: u64) -> String {
    let Some((n, entries)) = entries(bytes) else {
        return "incomplete metadata, file not fully covered (MetadataIncompleteBuffer)".into();
    };
    let data = entries.iter().map(|e| e.end).max().unwrap_or(0);
    let expected = 8u64.saturating_add(n).saturating_add(data);
    if len < expected {
        format!(
            "the header describes {data} bytes of tensor data, so the file should be {expected} \
             bytes, but it is {len} bytes: truncated by {} bytes (MetadataIncompleteBuffer; an \
             interrupted download? download it again)",
            expected - len
        )
    } else {
        format!(
            "the header describes {data} bytes of tensor data, so the file should be {expected} \
             bytes, but it is {len} bytes: {} bytes of trailing junk (MetadataIncompleteBuffer)",
            len - expected
        )
    }
}

fn invalid_offset(bytes: &[u8], name: &str) -> String {
    let fallback = format!("tensor `{name}`: invalid data_offsets (InvalidOffset)");
    let Some((_, entries)) = entries(bytes) else {
        return fallback;
    };
    let mut expected_start = 0;
    for e in &entries {
        if e.name == name || e.start != expected_start || e.end < e.start {
            let what = if e.end < e.start {
                "ends before it starts"
            } else if e.start < expected_start {
                "overlaps the tensor before it"
            } else if e.start > expected_start {
                "leaves a gap after the tensor before it"
            } else {
                "is not where the header order puts it"
            };
            return format!(
                "tensor `{}`: data_offsets [{}, {}] {what} (expected to start at {expected_start}) \
                 (InvalidOffset)",
                e.name, e.start, e.end
            );
        }
        expected_start = e.end;
    }
    fallback
}

/// Bits per element of a safetensors dtype name.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" | "C64" => 64,
        "F32" | "I32" | "U32" => 32,
        "F16" | "BF16" | "I16" | "U16" => 16,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" | "F8_E8M0" => 8,
        "F6_E2M3" | "F6_E3M2" => 6,
        "F4" => 4,
        _ => return None,
    })
}

fn n_bytes(e: &Entry) -> Option<u64> {
    let elements = e.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
    Some(elements.checked_mul(dtype_bits(&e.dtype)?)? / 8)
}

fn invalid_info(bytes: &[u8]) -> String {
    let found = entries(bytes).and_then(|(_, entries)| {
        entries.into_iter().find_map(|e| {
            let need = n_bytes(&e)?;
            let have = e.end.checked_sub(e.start)?;
            (need != have).then(|| {
                format!(
                    "tensor `{}`: shape {:?} of {} needs {need} bytes but its data_offsets [{}, {}] \
                     hold {have} (TensorInvalidInfo)",
                    e.name, e.shape, e.dtype, e.start, e.end
                )
            })
        })
    });
    found.unwrap_or_else(|| "a tensor's shape and dtype do not match its bytes (TensorInvalidInfo)".into())
}

fn overflow(bytes: &[u8]) -> String {
    let found = entries(bytes).and_then(|(_, entries)| {
        entries.into_iter().find(|e| n_bytes(e).is_none() && dtype_bits(&e.dtype).is_some())
    });
    match found {
        Some(e) => format!(
            "tensor `{}`: shape {:?} overflows a 64-bit size (ValidationOverflow)",
            e.name, e.shape
        ),
        None => "a tensor's shape overflows a 64-bit size (ValidationOverflow)".into(),
    }
}

/// Hugging Face's cache stores each LFS file as `blobs/<sha256>`, reached through a
/// `snapshots/<rev>/` symlink. A damaged blob is re-downloaded only if the user deletes it.
fn hf_blob_note(path: &Path) -> Option<String> {
    let real = path.canonicalize().ok()?;
    let name = real.file_name()?.to_str()?;
    let in_blobs = real.parent()?.file_name()? == "blobs";
    if !in_blobs || name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let got = sha256_file(&real)?;
    (got != name.to_ascii_lowercase()).then(|| {
        format!(
            "it is the Hugging Face cache blob {} but its sha256 is {got}: the download is \
             damaged; delete the blob and download the model again",
            real.display()
        )
    })
}

fn sha256_file(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
