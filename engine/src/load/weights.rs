//! Safetensors checkpoints via mmap (F32, F16, BF16 → f32) and a prefix walk over checkpoint
//! names, in the manner of candle's `VarBuilder`. Every error names the file, the tensor and
//! both shapes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use memmap2::Mmap;
use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors};

use crate::error::{EngineError, Result};
use crate::load::matrix::{MappedDtype, Matrix};

/// What a checkpoint's header says about one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMeta {
    /// Index into the checkpoint's files.
    pub file: usize,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Where the tensor's bytes start in its file.
    pub offset: usize,
}

/// The mapped checkpoint files and what each tensor is and where it lives.
pub struct Checkpoint {
    files: Vec<(PathBuf, Arc<Mmap>)>,
    index: HashMap<String, TensorMeta>,
    /// Tensors already read under their checkpoint names (a GGUF loaded natively: its matrices'
    /// blocks in place, its vectors in f32); `index` lists them as f32 of their shape.
    held: HashMap<String, Held>,
    /// The file held tensors came from, for errors.
    held_path: Option<PathBuf>,
}

/// A tensor a [`Checkpoint`] holds read.
pub enum Held {
    Matrix(Matrix),
    Vector(Vec<f32>),
}

impl Checkpoint {
    /// Opens `model.safetensors`, or every shard named by `model.safetensors.index.json`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let paths = if single.exists() {
            vec![single]
        } else if index_path.exists() {
            shard_paths(dir, &index_path)?
        } else {
            return Err(EngineError::Safetensors {
                path: dir.to_path_buf(),
                msg: "no model.safetensors or model.safetensors.index.json in this folder".into(),
            });
        };
        Self::open(&paths)
    }

    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::new();
        let mut index = HashMap::new();
        for path in paths {
            let file = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
            let mmap = map(&file, path)?;
            // Parsing checks the header length, JSON and every offset against the file size;
            // when it fails, `diagnose` says which tensor and how many bytes.
            let st = SafeTensors::deserialize(&mmap).map_err(|e| EngineError::Safetensors {
                path: path.clone(),
                msg: crate::load::safetensors_check::diagnose(&mmap, path, &e),
            })?;
            for (name, view) in st.tensors() {
                let meta = TensorMeta {
                    file: files.len(),
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    offset: view.data().as_ptr() as usize - mmap.as_ptr() as usize,
                };
                if index.insert(name.clone(), meta).is_some() {
                    return Err(EngineError::Tensor {
                        file: path.clone(),
                        tensor: name,
                        msg: "appears in more than one shard; the checkpoint is inconsistent".into(),
                    });
                }
            }
            files.push((path.clone(), Arc::new(mmap)));
        }
        Ok(Self { files, index, held: HashMap::new(), held_path: None })
    }

    /// A checkpoint of tensors already read from `path` (named, with their shapes), for the
    /// family mapping to take as it takes a safetensors file's.
    pub fn from_held(path: &Path, tensors: Vec<(String, Vec<usize>, Held)>) -> Self {
        let mut index = HashMap::with_capacity(tensors.len());
        let mut held = HashMap::with_capacity(tensors.len());
        for (name, shape, t) in tensors {
            index.insert(name.clone(), TensorMeta { file: 0, dtype: Dtype::F32, shape, offset: 0 });
            held.insert(name, t);
        }
        Self { files: Vec::new(), index, held, held_path: Some(path.to_path_buf()) }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Shape and dtype from the header, without reading the data.
    pub fn meta(&self, name: &str) -> Option<&TensorMeta> {
        self.index.get(name)
    }

    /// The file holding `name` (the first file when there is none).
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.index
            .get(name)
            .and_then(|m| self.files.get(m.file))
            .map_or_else(|| self.first_path(), |(p, _)| p.clone())
    }

    /// The tensor as f32 with its shape, converting F16/BF16.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        if let (Some(t), Some(meta)) = (self.held.get(name), self.index.get(name)) {
            let values = match t {
                Held::Vector(v) => v.clone(),
                Held::Matrix(m) => m.to_f32().into_iter().collect(),
            };
            return Ok((meta.shape.clone(), values));
        }
        let i = self
            .index
            .get(name)
            .ok_or_else(|| EngineError::Tensor {
                file: self.first_path(),
                tensor: name.to_string(),
                msg: "missing from the checkpoint".into(),
            })?
            .file;
        let Some((path, mmap)) = self.files.get(i) else {
            return Err(EngineError::Tensor { file: self.first_path(), tensor: name.to_string(), msg: "has no file".into() });
        };
        let err = |msg: String| EngineError::Tensor {
            file: path.clone(),
            tensor: name.to_string(),
            msg,
        };
        let st = SafeTensors::deserialize(mmap).map_err(|e| err(e.to_string()))?;
        let view = st.tensor(name).map_err(|e| err(e.to_string()))?;
        let bytes = view.data();
        let values = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => return Err(err(unsupported_dtype(other))),
        };
        Ok((view.shape().to_vec(), values))
    }

    /// `name` as a `[rows, cols]` matrix read in place from the map (F32, BF16 and F16 data
    /// aligned for its type), or copied into f32 when it cannot be.
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        let meta = self.index.get(name).ok_or_else(|| EngineError::Tensor {
            file: self.first_path(),
            tensor: name.to_string(),
            msg: "missing from the checkpoint".into(),
        })?;
        if meta.shape != [rows, cols] {
            return Err(EngineError::Tensor {
                file: self.path_of(name),
                tensor: name.to_string(),
                msg: format!("shape {:?} does not match [{rows}, {cols}] expected from config.json", meta.shape),
            });
        }
        match self.held.get(name) {
            Some(Held::Matrix(m)) => return Ok(m.clone()),
            Some(Held::Vector(v)) => {
                let a = Array2::from_shape_vec((rows, cols), v.clone()).map_err(|e| EngineError::Tensor {
                    file: self.path_of(name),
                    tensor: name.to_string(),
                    msg: e.to_string(),
                })?;
                return Ok(Matrix::from(a));
            }
            None => {}
        }
        let Some((path, mmap)) = self.files.get(meta.file) else {
            return Err(EngineError::Tensor { file: self.first_path(), tensor: name.to_string(), msg: "has no file".into() });
        };
        let dtype = match meta.dtype {
            Dtype::F32 => Some(MappedDtype::F32),
            Dtype::BF16 => Some(MappedDtype::Bf16),
            Dtype::F16 => Some(MappedDtype::F16),
            _ => None,
        };
        let in_place = dtype.and_then(|dtype| Matrix::mapped(Arc::clone(mmap), meta.offset, rows, cols, dtype));
        match in_place {
            Some(m) => Ok(m),
            None => {
                let (_, values) = self.tensor_f32(name)?;
                let a = Array2::from_shape_vec((rows, cols), values).map_err(|e| EngineError::Tensor {
                    file: path.clone(),
                    tensor: name.to_string(),
                    msg: e.to_string(),
                })?;
                Ok(Matrix::from(a))
            }
        }
    }

    pub fn first_path(&self) -> PathBuf {
        self.files
            .first()
            .map(|(p, _)| p.clone())
            .or_else(|| self.held_path.clone())
            .unwrap_or_default()
    }

    /// A prefix-walking view, rooted at the empty prefix.
    pub fn root(&self) -> Weights<'_> {
        Weights {
            ckpt: self,
            prefix: String::new(),
        }
    }
}

pub(crate) fn unsupported_dtype(dtype: Dtype) -> String {
    format!("dtype {dtype:?} is not supported (F32, F16, BF16); convert the checkpoint to one of those")
}

#[allow(unsafe_code)]
fn map(file: &std::fs::File, path: &Path) -> Result<Mmap> {
    // SAFETY: the file is opened read-only and only read through the map; a concurrent writer
    // truncating a model file is outside what Glassbox can protect against.
    unsafe { Mmap::map(file) }.map_err(|e| EngineError::io(path, e))
}

fn shard_paths(dir: &Path, index_path: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index_path).map_err(|e| EngineError::io(index_path, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| EngineError::Safetensors {
            path: index_path.to_path_buf(),
            msg: e.to_string(),
        })?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| EngineError::Safetensors {
            path: index_path.to_path_buf(),
            msg: "no `weight_map` object".into(),
        })?;
    let mut names: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// A position in the checkpoint's name tree: `root().pp("model").pp("layers").pp(3)`.
#[derive(Clone)]
pub struct Weights<'a> {
    ckpt: &'a Checkpoint,
    prefix: String,
}

impl<'a> Weights<'a> {
    pub fn pp(&self, part: impl std::fmt::Display) -> Weights<'a> {
        let prefix = if self.prefix.is_empty() {
            part.to_string()
        } else {
            format!("{}.{part}", self.prefix)
        };
        Weights {
            ckpt: self.ckpt,
            prefix,
        }
    }

    fn name(&self, leaf: &str) -> String {
        if self.prefix.is_empty() {
            leaf.to_string()
        } else {
            format!("{}.{leaf}", self.prefix)
        }
    }

    pub fn contains(&self, leaf: &str) -> bool {
        self.ckpt.contains(&self.name(leaf))
    }

    fn get(&self, leaf: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let name = self.name(leaf);
        let (shape, values) = self.ckpt.tensor_f32(&name)?;
        if shape != expected {
            return Err(EngineError::Tensor {
                file: self.ckpt.path_of(&name),
                tensor: name,
                msg: format!("shape {shape:?} does not match {expected:?} expected from config.json"),
            });
        }
        Ok(values)
    }

    /// A `[rows, cols]` matrix, e.g. a Linear weight `[out_features, in_features]`.
    pub fn get2(&self, leaf: &str, rows: usize, cols: usize) -> Result<Array2<f32>> {
        let values = self.get(leaf, &[rows, cols])?;
        Array2::from_shape_vec((rows, cols), values).map_err(|e| EngineError::Tensor {
            file: self.ckpt.path_of(&self.name(leaf)),
            tensor: self.name(leaf),
            msg: e.to_string(),
        })
    }

    /// A `[rows, cols]` weight matrix read in place (see [`Checkpoint::matrix`]).
    pub fn matrix(&self, leaf: &str, rows: usize, cols: usize) -> Result<Matrix> {
        self.ckpt.matrix(&self.name(leaf), rows, cols)
    }

    pub fn get1(&self, leaf: &str, len: usize) -> Result<Array1<f32>> {
        Ok(Array1::from_vec(self.get(leaf, &[len])?))
    }
}
