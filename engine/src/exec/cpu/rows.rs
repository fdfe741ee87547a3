//! [`Executor::begin_rows_at`] on the CPU: one block's keys and values for the rows before a
//! window, then a pass over the window's rows alone (the keys and values of the rows before it
//! are in the layer's cache, as if an earlier pass had left them there).

use ndarray::s;

use super::CpuExecutor;
use super::pass::Pass;
use crate::error::Result;
use crate::exec::executor::{Executor, PassOptions, check_pass_input};
use crate::program::hooks::HookKey;
use crate::program::op_table::PassDims;
use crate::long::recompute::RowsSplit;
use crate::program::op::{LayerOp, Step};
use crate::exec::tensor::Tensor;
use crate::exec::trace::Trace;

impl CpuExecutor {
    pub(super) fn begin_rows(&mut self, ids: &[u32], options: PassOptions, layer: usize, resid_pre: &Tensor, first: usize) -> Result<()> {
        if first == 0 {
            return self.begin_at(ids, options, layer, resid_pre);
        }
        let split = RowsSplit::new(self.config(), ids, layer, resid_pre, first, &options)?;
        // ln1 → k, v → rope over the rows before the window: the rope step caches them.
        self.begin_at(&ids[..first], split.before_options, layer, &split.before)?;
        self.run_to(Step::Layer(layer, LayerOp::Rope))?;
        // Dropped as it is, so its cache rows stay (`begin_at` marked the cache partial: the
        // next `begin` starts from an empty one).
        self.pass = None;
        let window = &ids[first..];
        let c = &self.model.config;
        check_pass_input(c, window, first)?;
        let logit_rows = if options.touches(HookKey::Logits) { window.len() } else { 1 };
        let dims = PassDims { n: window.len(), k_len: ids.len(), logit_rows };
        let edits = options.resolve(c, dims, first)?;
        self.trace = Trace::new(window.to_vec(), first, options.sampling.temperature);
        let mut pass = Pass::new(window, first, options, dims, edits);
        let x = resid_pre.as_2d().ok_or_else(|| RowsSplit::shape_error(resid_pre))?;
        pass.slots.x = x.slice(s![first.., ..]).to_owned().into_shared(); // [window, d_model]
        pass.next = self.program.index_or_next(self.program.layer_start(layer));
        self.pass = Some(pass);
        Ok(())
    }
}
