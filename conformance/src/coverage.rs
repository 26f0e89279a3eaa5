//! Which of a model's reachable abstract states the reference reaches.

use std::collections::HashSet;
use std::hash::Hash;

use cpyrt_models::SpecModel;
use cpyrt_models::checker::graph::StateGraph;
use cpyrt_spec::Spec;

/// Every state the model reaches under `cfg` (the spec states of
/// `SpecModel<S>`'s reachable graph).
pub fn model_states<S: Spec>(cfg: &S::Config, cap: usize) -> Result<HashSet<S::State>, String>
where
    S::State: Send + Sync,
    S::Event: Send + Sync,
    S::Config: Send + Sync,
{
    let model = SpecModel::<S>::new(cfg.clone());
    let graph = StateGraph::build(&model, cap).map_err(|e| e.to_string())?;
    Ok(graph.states().iter().map(|c| c.state.clone()).collect())
}

/// The comparison of the states a reference reached with a model's.
#[derive(Debug)]
pub struct Coverage<St> {
    pub model: usize,
    pub reached: usize,
    /// Reference states the model does not have (expected only where the
    /// workload steps outside the model's bounds; each is a finding
    /// otherwise).
    pub outside: Vec<St>,
    pub missed: Vec<St>,
}

impl<St> Coverage<St> {
    pub fn fraction(&self) -> f64 {
        if self.model == 0 {
            1.0
        } else {
            self.reached as f64 / self.model as f64
        }
    }
}

pub fn compare<St: Clone + Eq + Hash + Ord>(
    model: &HashSet<St>,
    reference: &HashSet<St>,
) -> Coverage<St> {
    let mut missed: Vec<St> = model.difference(reference).cloned().collect();
    missed.sort();
    let mut outside: Vec<St> = reference.difference(model).cloned().collect();
    outside.sort();
    Coverage {
        model: model.len(),
        reached: model.intersection(reference).count(),
        outside,
        missed,
    }
}
