//! A streaming f32 safetensors writer: the header is fixed up front from the planned shapes,
//! then tensors are written one at a time so converting never holds the whole f32 model
//! (four to eight times the GGUF size) in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::GgufError;

pub(crate) struct SafetensorsWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// Of every byte written, so the cache can be verified later without a second read.
    hasher: Sha256,
    written: u64,
    /// (name, element count) in the order data must arrive.
    plan: Vec<(String, usize)>,
    next: usize,
}

impl SafetensorsWriter {
    pub(crate) fn create(path: &Path, tensors: &[(String, Vec<usize>)]) -> Result<Self, GgufError> {
        let mut header = serde_json::Map::new();
        let mut meta = serde_json::Map::new();
        // transformers refuses safetensors files without format = "pt".
        meta.insert("format".into(), "pt".into());
        meta.insert("converted_by".into(), "glassbox (from GGUF)".into());
        header.insert("__metadata__".into(), meta.into());
        let mut offset = 0usize;
        let mut plan = Vec::with_capacity(tensors.len());
        for (name, shape) in tensors {
            let n: usize = shape.iter().product();
            let end = n
                .checked_mul(4)
                .and_then(|b| b.checked_add(offset))
                .ok_or_else(|| GgufError::output(path, format!("tensor `{name}` is too large")))?;
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
            );
            offset = end;
            plan.push((name.clone(), n));
        }
        let mut header_bytes = serde_json::to_vec(&serde_json::Value::Object(header))
            .map_err(|e| GgufError::output(path, format!("header: {e}")))?;
        // Padding with spaces to 8 bytes keeps the f32 data aligned when mapped, as the
        // reference writer does.
        while header_bytes.len() % 8 != 0 {
            header_bytes.push(b' ');
        }
        let file = File::create(path).map_err(|e| GgufError::io(path, e))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let mut me = Self {
            path: path.to_path_buf(),
            out,
            hasher: Sha256::new(),
            written: 0,
            plan,
            next: 0,
        };
        me.write(&(header_bytes.len() as u64).to_le_bytes())?;
        me.write(&header_bytes)?;
        Ok(me)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|e| GgufError::io(&self.path, e))
    }

    pub(crate) fn write_tensor(&mut self, name: &str, data: &[f32]) -> Result<(), GgufError> {
        let Some((want_name, want_len)) = self.plan.get(self.next) else {
            return Err(GgufError::output(
                &self.path,
                format!("tensor `{name}` was not in the planned header"),
            ));
        };
        if want_name != name || *want_len != data.len() {
            return Err(GgufError::output(
                &self.path,
                format!(
                    "expected tensor `{want_name}` with {want_len} values next, got `{name}` \
                     with {}",
                    data.len()
                ),
            ));
        }
        let mut buf = Vec::with_capacity(64 * 1024);
        for chunk in data.chunks(16 * 1024) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            self.write(&buf)?;
        }
        self.next += 1;
        Ok(())
    }

    /// Flushes and syncs; returns the file's size and sha256 (hex).
    pub(crate) fn finish(self) -> Result<(u64, String), GgufError> {
        if self.next != self.plan.len() {
            return Err(GgufError::output(
                &self.path,
                format!(
                    "only {} of {} tensors were written",
                    self.next,
                    self.plan.len()
                ),
            ));
        }
        let file = self
            .out
            .into_inner()
            .map_err(|e| GgufError::io(&self.path, e.into_error()))?;
        file.sync_all().map_err(|e| GgufError::io(&self.path, e))?;
        let hash = self.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok((self.written, hash))
    }
}
