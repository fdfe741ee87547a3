//! Building broken model folders, one fault at a time, from the tiny fixtures.

use std::path::{Path, PathBuf};

use glassbox_engine::Model;

use crate::fixtures_dir;

/// A copy of fixture `name` (config and weights) in a temp dir.
pub fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).expect("model dir");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures_dir().join(name).join(f), dir.join(f)).expect("fixture copy");
    }
    (tmp, dir)
}

/// The load error's message; panics if the model loads.
pub fn load_err(dir: &Path) -> String {
    match Model::load(dir) {
        Ok(_) => panic!("{} loaded, but it is broken", dir.display()),
        Err(e) => e.to_string(),
    }
}

pub fn edit_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).expect("config");
    assert!(text.contains(from), "{from} not in config");
    std::fs::write(&path, text.replace(from, to)).expect("config");
}

/// (name, shape, f32 values) of every tensor of an F32 safetensors file, in offset order.
pub type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

pub fn read_tensors(path: &Path) -> Tensors {
    let bytes = std::fs::read(path).expect("safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let mut out: Tensors = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let vals = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (n, v.shape().to_vec(), vals)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Writes an F32 safetensors file by hand: `header_pad` extra spaces after the JSON (a
/// header length that is not a multiple of 8 moves the data off alignment).
pub fn write_tensors(path: &Path, tensors: &Tensors, header_pad: usize) {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, values) in tensors {
        let end = offset + 4 * values.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header)).expect("header");
    json.extend(std::iter::repeat_n(b' ', header_pad));
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    for (_, _, values) in tensors {
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    std::fs::write(path, bytes).expect("write safetensors");
}

/// Rewrites the folder's model.safetensors with `edit` applied.
pub fn edit_tensors(dir: &Path, edit: impl FnOnce(&mut Tensors)) {
    let path = dir.join("model.safetensors");
    let mut tensors = read_tensors(&path);
    edit(&mut tensors);
    write_tensors(&path, &tensors, 0);
}

/// A safetensors file from a raw header JSON and data bytes.
pub fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}
