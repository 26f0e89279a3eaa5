//! Symmetry reduction that works with breadth-first search.
//!
//! stateright 0.31 honours `.symmetry()` only in DFS and simulation; its BFS
//! ignores it. Here the graph itself stores one representative per class of
//! states equal up to renaming threads: [`StateGraph::build_with`] with a
//! canonicaliser maps every initial state and successor to its
//! representative before looking it up. Shortest paths in the reduced graph
//! are shortest up to renaming, and [`Trace::from_graph_path`] turns them
//! back into runs with the real thread numbers.
//!
//! Sound for properties that do not name threads (every invariant and goal
//! of the specs quantifies over all threads) and for liveness without
//! fairness; per-thread fairness is not preserved by the quotient, so
//! liveness under fairness runs on the unreduced graph.
//!
//! [`Trace::from_graph_path`]: super::trace::Trace::from_graph_path

use std::hash::Hash;

use stateright::Model;

use super::graph::{GraphError, StateGraph};
use crate::spec_model::Checked;

/// A renaming of threads: `perm[new] = old`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permutation(pub Vec<u8>);

impl Permutation {
    /// The thread that position `new` of the representative came from.
    pub fn old(&self, new: usize) -> usize {
        self.0[new] as usize
    }

    pub fn is_identity(&self) -> bool {
        self.0.iter().enumerate().all(|(i, &t)| i == t as usize)
    }
}

/// A state type whose threads are interchangeable.
pub trait Symmetric: Sized {
    /// The representative of the state's class and the renaming that maps
    /// the state to it. Two states that differ only by thread numbering must
    /// get the same representative.
    fn canonical(&self) -> (Self, Permutation);

    fn representative(&self) -> Self {
        self.canonical().0
    }
}

impl Symmetric for cpyrt_spec::qsbr::State {
    fn canonical(&self) -> (Self, Permutation) {
        let (s, p) = cpyrt_spec::qsbr::State::canonical(self);
        (s, Permutation(p))
    }
}

impl<St: Symmetric> Symmetric for Checked<St> {
    fn canonical(&self) -> (Self, Permutation) {
        let (state, p) = self.state.canonical();
        (
            Checked {
                state,
                broken: self.broken,
            },
            p,
        )
    }
}

/// The representative of `s` (a function pointer for
/// [`StateGraph::build_with`]).
pub fn representative<S: Symmetric>(s: &S) -> S {
    s.representative()
}

/// The reachable graph with one representative per symmetry class.
pub fn build_reduced<M: Model>(model: &M, max_states: usize) -> Result<StateGraph<M>, GraphError>
where
    M::State: Symmetric + Hash + Eq + Clone,
{
    StateGraph::build_with(model, max_states, Some(representative::<M::State>))
}
