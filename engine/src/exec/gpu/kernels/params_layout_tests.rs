//! Each kernel's Rust params struct against the uniform `Params` of the WGSL its pipeline is
//! built from, reflected with naga. The params go over as raw bytes (`bytemuck`), so a field
//! added, renamed, retyped or moved on one side only compiles, passes every CPU test and has
//! the shader read the wrong parameter; only the GPU tests would notice, and CI may have no GPU.
//!
//! Padding members (named `_pad…`) are compared by what they leave, not by name: a uniform
//! array's stride is 16 bytes, so WGSL spells padding as single `u32`s where Rust uses one
//! array. Every other member must agree in name, offset and type, and the sizes must be equal,
//! which leaves the padding covering the same bytes on both sides.

use std::any::type_name;
use std::collections::BTreeSet;
use std::path::Path;

use naga::proc::Layouter;
use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{AddressSpace, ResourceBinding, ScalarKind, TypeInner};

use super::*;

/// One member of a params struct, as either side lays it out.
#[derive(Debug, PartialEq)]
struct Member {
    name: String,
    offset: usize,
    /// Spelled the Rust way: `u32`, `f32`, `[u32; 3]` (a WGSL `vec3<u32>` too).
    ty: String,
}

/// A kernel of the table: the shader's file stem, the sources its pipeline is built from (one
/// per weight format for the kernels behind a weight prelude), and the Rust params.
struct Entry {
    kernel: &'static str,
    sources: Vec<String>,
    size: usize,
    fields: Vec<Member>,
}

const FORMATS: [WeightFormat; 12] = WeightFormat::ALL;

/// Fails to compile when a weight format is added, so that `WeightFormat::ALL` is revisited.
#[allow(dead_code)]
fn every_format_is_listed(format: WeightFormat) {
    use WeightFormat as F;
    match format {
        F::F32 | F::F16Native | F::F16Packed | F::Bf16 | F::Q8_0 | F::Q4_0 | F::Q4_1 | F::Q5_0 | F::Q5_1 | F::Q4K | F::Q5K | F::Q6K => {}
    }
}

fn field_type<P, F>(_: fn(&P) -> &F) -> &'static str {
    type_name::<F>()
}

/// `entry!(module, Params { every field })`, or `entry!(module with weights, ...)` for a
/// kernel built behind the weight prelude (`WeightFormat::with_prelude`, as `Kernels::new`).
/// The shader is `module::SOURCE`; the params struct any module's `Params` (gemv uses matmul's).
macro_rules! entry {
    ($kernel:ident, $pm:ident::Params { $($field:ident),+ $(,)? }) => {
        entry!(@ $kernel, vec![$kernel::SOURCE.to_string()], $pm::Params { $($field),+ })
    };
    ($kernel:ident with weights, $pm:ident::Params { $($field:ident),+ $(,)? }) => {
        entry!(@ $kernel, FORMATS.map(|f| f.with_prelude($kernel::SOURCE)).to_vec(), $pm::Params { $($field),+ })
    };
    (@ $kernel:ident, $sources:expr, $pm:ident::Params { $($field:ident),+ }) => {{
        // No `..` in this pattern: a Rust field left out of the list stops the build, so the
        // comparison below always sees the whole struct.
        let _every_field_listed = |p: $pm::Params| {
            let $pm::Params { $($field: _),+ } = p;
        };
        Entry {
            kernel: stringify!($kernel),
            sources: $sources,
            size: size_of::<$pm::Params>(),
            fields: vec![$(Member {
                name: stringify!($field).to_string(),
                offset: std::mem::offset_of!($pm::Params, $field),
                ty: field_type(|p: &$pm::Params| &p.$field).to_string(),
            }),+],
        }
    }};
}

/// Every kernel `Kernels::new` builds.
fn table() -> Vec<Entry> {
    vec![
        entry!(add, add::Params { len, _pad }),
        entry!(attend, attend::Params { n, k_len, n_heads, n_kv_heads, d_head, group, _pad }),
        entry!(bias, bias::Params { len, cols, scale, has_bias }),
        entry!(embed with weights, embed::Params { n, d, stride, row_start, rows, _pad }),
        entry!(gemv with weights, matmul::Params { m, n_out, k_len, stride, x_row_offset, y_stride, y_col_offset, _pad }),
        entry!(intervene, intervene::Params { len, mode, a1, a2, off1, off2, factor, _pad }),
        entry!(layernorm, layernorm::Params { rows, d, eps, given_scale }),
        entry!(mask, mask::Params { n, k_len, n_heads, pos_offset, window, _pad }),
        entry!(matmul with weights, matmul::Params { m, n_out, k_len, stride, x_row_offset, y_stride, y_col_offset, _pad }),
        entry!(probs, probs::Params { rows, vocab, temperature, first_row }),
        entry!(qk_norm, qk_norm::Params { rows, d, eps, _pad }),
        entry!(rmsnorm, rmsnorm::Params { rows, d, eps, given_scale }),
        entry!(rope, rope::Params { n, heads, d_head, _pad }),
        entry!(scores, scores::Params { n, k_len, n_heads, n_kv_heads, d_head, group, scale, _pad }),
        entry!(silu_mul, silu_mul::Params { len, mode, _pad }),
        entry!(softmax, softmax::Params { rows, len, _pad }),
    ]
}

fn is_padding(member: &Member) -> bool {
    member.name.starts_with("_pad")
}

/// The data members in offset order (Rust lists them in any order; offsets decide).
fn data_members(mut members: Vec<Member>) -> Vec<Member> {
    members.retain(|m| !is_padding(m));
    members.sort_by_key(|m| m.offset);
    members
}

/// A WGSL type spelled as its Rust mirror would be.
fn rust_spelling(module: &naga::Module, ty: naga::Handle<naga::Type>) -> String {
    let scalar = |s: naga::Scalar| match (s.kind, s.width) {
        (ScalarKind::Uint, 4) => "u32".to_string(),
        (ScalarKind::Sint, 4) => "i32".to_string(),
        (ScalarKind::Float, 4) => "f32".to_string(),
        (ScalarKind::Float, 2) => "f16".to_string(),
        other => format!("{other:?}"),
    };
    match &module.types[ty].inner {
        TypeInner::Scalar(s) => scalar(*s),
        TypeInner::Vector { size, scalar: s } => format!("[{}; {}]", scalar(*s), *size as u8),
        TypeInner::Array { base, size: naga::ArraySize::Constant(n), .. } => format!("[{}; {n}]", rust_spelling(module, *base)),
        other => format!("{other:?}"),
    }
}

/// The uniform params struct of `source` (binding 0 of group 0 by the kernels' convention):
/// its size by naga's `Layouter` and its members with the offsets naga gives them.
fn wgsl_params(source: &str) -> Result<(usize, Vec<Member>), String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    // Validated as wgpu would, so a broken shader shows here on machines without a GPU too;
    // with shader-f16 (the native-f16 prelude) and f16-in-f32 (`unpack2x16float` in the
    // packed prelude and intervene's rounding, a downlevel flag wgpu's adapters grant).
    let caps = Capabilities::default() | Capabilities::SHADER_FLOAT16 | Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .map_err(|e| format!("invalid WGSL: {e:?}"))?;
    let uniforms: Vec<_> = module.global_variables.iter().filter(|(_, g)| g.space == AddressSpace::Uniform).map(|(_, g)| g).collect();
    let [params] = uniforms[..] else {
        return Err(format!("{} uniforms, expected the one params struct", uniforms.len()));
    };
    if params.binding != Some(ResourceBinding { group: 0, binding: 0 }) {
        return Err(format!("params uniform at {:?}, expected group 0 binding 0", params.binding));
    }
    let TypeInner::Struct { members, .. } = &module.types[params.ty].inner else {
        return Err("the params uniform is not a struct".to_string());
    };
    let mut layouter = Layouter::default();
    layouter.update(module.to_ctx()).map_err(|e| format!("layout: {e:?}"))?;
    let members = members
        .iter()
        .map(|m| Member {
            name: m.name.clone().unwrap_or_default(),
            offset: m.offset as usize,
            ty: rust_spelling(&module, m.ty),
        })
        .collect();
    Ok((layouter[params.ty].size as usize, members))
}

#[test]
fn params_structs_match_their_wgsl() {
    let (mut kernels, mut sources, mut fields) = (0, 0, 0);
    let mut errors = Vec::new();
    for entry in table() {
        let rust = data_members(entry.fields);
        kernels += 1;
        fields += rust.len();
        for source in &entry.sources {
            sources += 1;
            let (size, members) = match wgsl_params(source) {
                Ok(found) => found,
                Err(e) => {
                    errors.push(format!("{}: {e}", entry.kernel));
                    continue;
                }
            };
            if size != entry.size {
                errors.push(format!("{}: WGSL Params is {size} bytes, Rust {}", entry.kernel, entry.size));
            }
            // On GL (among the default backends) naga wraps the struct in a std140 block, which
            // rounds it up to 16 bytes, so a shorter binding falls short; wgpu enforces this for
            // render pipelines on adapters without `BUFFER_BINDINGS_NOT_16_BYTE_ALIGNED`.
            if size % 16 != 0 {
                errors.push(format!("{}: WGSL Params is {size} bytes, not a multiple of 16", entry.kernel));
            }
            let wgsl = data_members(members);
            if wgsl != rust {
                errors.push(format!("{}: members differ\n  WGSL: {wgsl:?}\n  Rust: {rust:?}", entry.kernel));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    eprintln!("{kernels} kernels ({sources} sources with the weight formats), {fields} data members");
}

#[test]
fn the_table_lists_every_kernel_shader() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/exec/gpu/kernels");
    let shaders: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        // The weight preludes go in front of a kernel; they are checked with it.
        .filter(|stem| !stem.starts_with("weights_"))
        .collect();
    let table = table();
    let listed: BTreeSet<String> = table.iter().map(|e| e.kernel.to_string()).collect();
    assert_eq!(listed.len(), table.len(), "a kernel is listed twice");
    assert_eq!(listed, shaders);
}
