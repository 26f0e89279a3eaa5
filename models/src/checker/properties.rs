//! A model's own stateright properties, judged on the state graph.
//!
//! `always` and `sometimes` are judged on every state; the path reported is
//! the shortest to the first state (in BFS order) that breaks or reaches
//! the property, so it is the same on every run and in plain and
//! symmetry-reduced graphs (up to renaming). `eventually` is judged as
//! liveness without fairness, on cycles and joins as well as path ends
//! (stateright judges it at path ends only and misses the rest).

use std::hash::Hash;

use stateright::{Expectation, Model};

use super::fairness::Fairness;
use super::graph::StateGraph;
use super::liveness::{self, Lasso, LivenessError};
use super::trace::Trace;

/// The verdict on one property.
pub enum Outcome<M: Model> {
    /// `always` holds in every state, or `eventually` on every run.
    Holds,
    /// An `always` property fails at the end of this trace.
    Violated(Trace<M>),
    /// A `sometimes` property holds at the end of this trace.
    Reached(Trace<M>),
    /// No reachable state satisfies a `sometimes` property.
    Unreached,
    /// A run that never satisfies an `eventually` property.
    Never(Lasso<M>),
}

impl<M: Model> Outcome<M> {
    /// Whether the outcome is a failure of the property (an unreached
    /// `sometimes` is reported, but is a goal missed, not a counterexample).
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Violated(_) | Outcome::Never(_))
    }
}

pub struct PropertyResult<M: Model> {
    pub name: &'static str,
    pub expectation: Expectation,
    pub outcome: Outcome<M>,
}

/// Judges every property of `model` on `graph`.
pub fn check_properties<M: Model>(
    model: &M,
    graph: &StateGraph<M>,
) -> Result<Vec<PropertyResult<M>>, LivenessError>
where
    M::State: Clone + Hash + Eq,
    M::Action: Clone + 'static,
{
    let props = model.properties();
    // One pass over the states in id order, which is BFS order: the first
    // state that breaks (always) or meets (sometimes) each property is the
    // one a breadth-first search from the initial states meets first.
    let mut first: Vec<Option<u32>> = vec![None; props.len()];
    graph.for_each_state(model, |id, state| {
        for (k, prop) in props.iter().enumerate() {
            if first[k].is_some() {
                continue;
            }
            let hit = match prop.expectation {
                Expectation::Always => !(prop.condition)(model, state),
                Expectation::Sometimes => (prop.condition)(model, state),
                Expectation::Eventually => false,
            };
            if hit {
                first[k] = Some(id);
            }
        }
    });
    let trace = |target: u32| {
        let (start, hops) = graph
            .path_to(|id| id == target)
            .expect("every state of the graph is reachable");
        Trace::from_graph_path(model, graph, start, &hops).map_err(LivenessError::Trace)
    };
    let mut out = Vec::new();
    for (k, prop) in props.into_iter().enumerate() {
        let outcome = match (prop.expectation.clone(), first[k]) {
            (Expectation::Always, Some(id)) => Outcome::Violated(trace(id)?),
            (Expectation::Always, None) => Outcome::Holds,
            (Expectation::Sometimes, Some(id)) => Outcome::Reached(trace(id)?),
            (Expectation::Sometimes, None) => Outcome::Unreached,
            (Expectation::Eventually, _) => {
                let cond = prop.condition;
                let report =
                    liveness::eventually(model, graph, &Fairness::none(), |s| cond(model, s))?;
                match report.lasso {
                    Some(l) => Outcome::Never(l),
                    None => Outcome::Holds,
                }
            }
        };
        out.push(PropertyResult {
            name: prop.name,
            expectation: prop.expectation,
            outcome,
        });
    }
    Ok(out)
}
