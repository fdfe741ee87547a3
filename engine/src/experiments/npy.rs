//! Hooks as NumPy files for notebooks: `.npy` (one array, format version 1.0, little-endian
//! f32, C order) and `.npz` (a zip of `.npy` files named by hook, as `numpy.savez` writes).

use std::io::Write;
use std::path::Path;

use crate::error::{EngineError, Result};
use crate::exec::tensor::Tensor;

/// The bytes of a `.npy` file holding `t`.
pub fn npy_bytes(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape() {
        [n] => format!("({n},)"),
        dims => format!("({})", dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple
    // of 64 bytes and ended by a newline, as the format asks.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + t.data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in t.data.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::io(path, e)
}

/// Writes `t` as one `.npy` file.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    std::fs::write(path, npy_bytes(t)).map_err(io(path))
}

/// Writes the tensors as one `.npz` (uncompressed, like `numpy.savez`): `np.load(path)[name]`.
/// Written to a temporary file beside `path` and renamed, so a failure leaves nothing half done.
pub fn write_npz(path: &Path, entries: &[(String, &Tensor)]) -> Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".part");
    let tmp = std::path::PathBuf::from(tmp_name);
    let result = write_zip(&tmp, entries).and_then(|()| std::fs::rename(&tmp, path).map_err(io(path)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_zip(path: &Path, entries: &[(String, &Tensor)]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(io(path))?;
    let zip_err = |e: zip::result::ZipError| EngineError::Input(format!("{}: writing the zip: {e}", path.display()));
    let mut zip = zip::ZipWriter::new(file);
    for (name, t) in entries {
        let bytes = npy_bytes(t);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(bytes.len() as u64 >= u32::MAX as u64);
        zip.start_file(format!("{name}.npy"), options).map_err(zip_err)?;
        zip.write_all(&bytes).map_err(io(path))?;
    }
    zip.finish().map_err(zip_err)?.sync_all().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::tensor::Dim;

    #[test]
    fn npy_header_is_aligned_and_describes_the_array() {
        let t = Tensor::from_vec(vec![Dim::Pos, Dim::DModel], &[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
        let b = npy_bytes(&t);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + header_len]).unwrap();
        assert!(header.contains("'shape': (2, 3)") && header.ends_with('\n'), "{header}");
        assert_eq!(&b[b.len() - 4..], &6.5f32.to_le_bytes());
        let one = Tensor::from_vec(vec![Dim::Pos], &[4], vec![0.0; 4]).unwrap();
        assert!(std::str::from_utf8(&npy_bytes(&one)[10..]).unwrap().contains("'shape': (4,)"));
    }
}
