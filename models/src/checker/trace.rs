//! Concrete traces: a path through the model from an initial state, with the
//! action index of every step so the path can be replayed.
//!
//! A path found in a symmetry-reduced graph runs through representatives, in
//! which threads are renamed. [`Trace::from_graph_path`] turns it back into
//! the real run by walking the unreduced model: at each step it takes the
//! first action (in `Model::actions` order) whose successor canonicalises to
//! the next representative on the path. Such an action exists because the
//! real state is a renaming of the representative, and the first one is
//! taken, so the result is deterministic.

use std::fmt;
use std::hash::Hash;

use stateright::Model;

use super::graph::{Edge, StateGraph};

/// One step of a trace.
pub struct Step<M: Model> {
    /// Index of the action in `Model::actions` order of the state before.
    pub action_index: usize,
    pub action: M::Action,
    /// The state after the action.
    pub state: M::State,
}

impl<M: Model> Clone for Step<M>
where
    M::Action: Clone,
    M::State: Clone,
{
    fn clone(&self) -> Self {
        Step {
            action_index: self.action_index,
            action: self.action.clone(),
            state: self.state.clone(),
        }
    }
}

/// A run of the model from one of its initial states.
pub struct Trace<M: Model> {
    /// Index of the initial state in `Model::init_states`.
    pub init_index: usize,
    pub init: M::State,
    pub steps: Vec<Step<M>>,
}

impl<M: Model> Clone for Trace<M>
where
    M::Action: Clone,
    M::State: Clone,
{
    fn clone(&self) -> Self {
        Trace {
            init_index: self.init_index,
            init: self.init.clone(),
            steps: self.steps.clone(),
        }
    }
}

/// Why a trace could not be rebuilt (only if the model's `actions` or
/// `next_state` are not functions of their arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError(pub String);

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TraceError {}

impl<M: Model> Trace<M>
where
    M::State: Clone + Hash + Eq,
    M::Action: Clone,
{
    /// Rebuilds the run along a graph path `(from, edge)` that starts at the
    /// initial state `start`, renaming threads back when the graph is
    /// symmetry-reduced.
    pub fn from_graph_path(
        model: &M,
        graph: &StateGraph<M>,
        start: u32,
        hops: &[(u32, Edge)],
    ) -> Result<Self, TraceError> {
        let canon = graph.canonicalizer();
        let inits = model.init_states();
        let (init_index, init) = match canon {
            None => {
                let k = graph
                    .init_index(start)
                    .ok_or_else(|| TraceError(format!("state {start} is not initial")))?;
                (k as usize, inits[k as usize].clone())
            }
            Some(c) => {
                let want = graph.state(start);
                inits
                    .iter()
                    .enumerate()
                    .find(|(_, s)| c(s) == *want)
                    .map(|(k, s)| (k, s.clone()))
                    .ok_or_else(|| TraceError("no initial state maps to the path's start".into()))?
            }
        };
        let mut trace = Trace {
            init_index,
            init,
            steps: Vec::with_capacity(hops.len()),
        };
        trace.follow(model, graph, hops)?;
        Ok(trace)
    }

    /// Rebuilds a lasso: the prefix, then the cycle. In a reduced graph one
    /// turn of the cycle may end in a renaming of the state it left, so the
    /// cycle is followed again until the real state repeats (at most the
    /// order of the renaming, a few turns). Returns the trace and the number
    /// of prefix steps.
    pub fn from_graph_lasso(
        model: &M,
        graph: &StateGraph<M>,
        start: u32,
        prefix: &[(u32, Edge)],
        cycle: &[(u32, Edge)],
    ) -> Result<(Self, usize), TraceError> {
        let mut trace = Self::from_graph_path(model, graph, start, prefix)?;
        let cycle_start = trace.steps.len();
        if cycle.is_empty() {
            return Ok((trace, cycle_start));
        }
        let head = trace.last().clone();
        const MAX_TURNS: usize = 720;
        for _ in 0..MAX_TURNS {
            trace.follow(model, graph, cycle)?;
            if *trace.last() == head {
                return Ok((trace, cycle_start));
            }
        }
        Err(TraceError(format!(
            "the cycle does not return to its first state within {MAX_TURNS} turns"
        )))
    }

    /// Appends the steps of `hops`, each from the trace's last state.
    fn follow(
        &mut self,
        model: &M,
        graph: &StateGraph<M>,
        hops: &[(u32, Edge)],
    ) -> Result<(), TraceError> {
        let canon = graph.canonicalizer();
        let mut buf = Vec::new();
        for &(_, edge) in hops {
            let k = self.steps.len() + 1;
            let last = self.last().clone();
            buf.clear();
            model.actions(&last, &mut buf);
            let step = match canon {
                None => {
                    let i = edge.action as usize;
                    let action = buf
                        .get(i)
                        .cloned()
                        .ok_or_else(|| TraceError(format!("step {k}: no action {i}")))?;
                    let state = model
                        .next_state(&last, action.clone())
                        .ok_or_else(|| TraceError(format!("step {k}: action {i} is disabled")))?;
                    Step {
                        action_index: i,
                        action,
                        state,
                    }
                }
                Some(c) => {
                    let want = graph.state(edge.to);
                    let mut found = None;
                    for (i, action) in buf.iter().enumerate() {
                        if let Some(s) = model.next_state(&last, action.clone())
                            && c(&s) == *want
                        {
                            found = Some(Step {
                                action_index: i,
                                action: action.clone(),
                                state: s,
                            });
                            break;
                        }
                    }
                    found.ok_or_else(|| {
                        TraceError(format!(
                            "step {k}: no action leads to a renaming of the next state"
                        ))
                    })?
                }
            };
            self.steps.push(step);
        }
        Ok(())
    }

    /// Replays action indices (`[init index, action index, ...]`, the form
    /// stateright's `Path::from_action_indices` and the CLI take).
    pub fn from_indices(model: &M, indices: &[usize]) -> Result<Self, TraceError> {
        let (&first, rest) = indices
            .split_first()
            .ok_or_else(|| TraceError("an empty index list names no initial state".into()))?;
        let inits = model.init_states();
        let init = inits
            .get(first)
            .cloned()
            .ok_or_else(|| TraceError(format!("no initial state {first}")))?;
        let mut trace: Trace<M> = Trace {
            init_index: first,
            init,
            steps: Vec::new(),
        };
        let mut buf = Vec::new();
        for (k, &i) in rest.iter().enumerate() {
            let last = trace.last().clone();
            buf.clear();
            model.actions(&last, &mut buf);
            let action = buf
                .get(i)
                .cloned()
                .ok_or_else(|| TraceError(format!("step {}: no action {i}", k + 1)))?;
            let state = model
                .next_state(&last, action.clone())
                .ok_or_else(|| TraceError(format!("step {}: action {i} is disabled", k + 1)))?;
            trace.steps.push(Step {
                action_index: i,
                action,
                state,
            });
        }
        Ok(trace)
    }
}

impl<M: Model> Trace<M> {
    /// The state the trace ends in.
    pub fn last(&self) -> &M::State {
        self.steps.last().map(|s| &s.state).unwrap_or(&self.init)
    }

    /// The state after `k` steps (0 is the initial state).
    pub fn state_at(&self, k: usize) -> &M::State {
        if k == 0 {
            &self.init
        } else {
            &self.steps[k - 1].state
        }
    }

    /// `[init index, action index, ...]`: paste it back into a replay.
    pub fn indices(&self) -> Vec<usize> {
        std::iter::once(self.init_index)
            .chain(self.steps.iter().map(|s| s.action_index))
            .collect()
    }

    /// The actions, in order.
    pub fn actions(&self) -> impl Iterator<Item = &M::Action> {
        self.steps.iter().map(|s| &s.action)
    }
}

/// Formats action indices as the comma-separated list the CLI reads back.
pub fn format_indices(indices: &[usize]) -> String {
    indices
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
