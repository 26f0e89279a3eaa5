//! Executable specifications of CPython's free-threading and subinterpreter
//! machinery.
//!
//! Each mechanism is one module with the same shape, in the manner of
//! stateright's `semantics` reference objects:
//!
//! - a `Config` (thread count, bounds, and the `Design` switches that select
//!   the design CPython ships or one of the broken designs from its history);
//! - an abstract `State` and its `init`;
//! - an `Event` vocabulary, shared by the models (as actions) and by the
//!   reference runtime (as the trace it records);
//! - `enabled`, the events a state offers, and `step`, which accepts or
//!   rejects one event and returns the next state;
//! - named invariants over states and over transitions, each with a one-line
//!   doc that is quoted, never restated, by the models, the conformance suite
//!   and the generated docs.
//!
//! Architecture invariant: this crate has no threads, no I/O and no workspace
//! dependencies. Everything in it is a pure function of its arguments.

pub mod fork;
pub mod func_version;
pub mod gil;
pub mod isolation;
pub mod qsbr;
pub mod stw;
pub mod type_version;

use std::fmt::Debug;
use std::hash::Hash;

/// A named property of states: an invariant (must hold in every reachable
/// state) or a reachability goal (must hold in some reachable state).
pub struct Invariant<S: 'static> {
    /// Stable name, used as the model's property name and in manifests.
    pub name: &'static str,
    /// The property in one English sentence.
    pub doc: &'static str,
    /// Returns true when the state satisfies the property.
    pub holds: fn(&S) -> bool,
}

/// A named property that must hold across every transition.
pub struct TransitionInvariant<S: 'static> {
    /// Stable name, used as the model's property name and in manifests.
    pub name: &'static str,
    /// The property in one English sentence.
    pub doc: &'static str,
    /// Returns true when the step from the first state to the second
    /// satisfies the property.
    pub holds: fn(&S, &S) -> bool,
}

/// A named liveness property: from every reachable state where `p` holds,
/// every fair run reaches a state where `q` holds (`p` leads to `q`). Which
/// runs count as fair is the model's declaration, not the spec's: the spec
/// says what must eventually happen, the model says what the scheduler may
/// not neglect.
pub struct LeadsTo<S: 'static> {
    /// Stable name, used in check output and manifests.
    pub name: &'static str,
    /// The property in one English sentence.
    pub doc: &'static str,
    /// The premise.
    pub p: fn(&S) -> bool,
    /// The goal every fair run from a premise state reaches.
    pub q: fn(&S) -> bool,
}

/// Why `step` refused an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// What the spec expected and did not find, in one sentence.
    pub reason: String,
}

impl Rejection {
    pub fn new(reason: impl Into<String>) -> Self {
        Rejection {
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The common shape of every mechanism's specification.
pub trait Spec {
    /// Bounds and design switches.
    type Config: Clone + Debug + 'static;
    /// The abstract state.
    type State: Clone + Debug + Eq + Hash + 'static;
    /// One step of the protocol, as recorded by the reference runtime.
    type Event: Clone + Debug + Eq + Hash + 'static;

    /// The mechanism's name as the CLI, the manifest and the docs spell it.
    const NAME: &'static str;

    fn init(cfg: &Self::Config) -> Self::State;
    /// Appends every event the state offers under `cfg`, in a fixed order.
    fn enabled(cfg: &Self::Config, state: &Self::State, out: &mut Vec<Self::Event>);
    /// Applies one event, or says why the protocol forbids it here.
    fn step(
        cfg: &Self::Config,
        state: &Self::State,
        event: &Self::Event,
    ) -> Result<Self::State, Rejection>;
    /// The thread that performs an event (for counterexample printing and
    /// per-thread fairness).
    fn actor(event: &Self::Event) -> usize;
    fn invariants() -> &'static [Invariant<Self::State>];
    fn transition_invariants() -> &'static [TransitionInvariant<Self::State>];
    /// Reachability goals: each must hold in some reachable state, which
    /// shows that a model whose invariants hold is not vacuous.
    fn sometimes() -> &'static [Invariant<Self::State>];
    /// Liveness properties, checked on the reachable graph under the
    /// model's fairness declaration. None by default.
    fn liveness() -> &'static [LeadsTo<Self::State>] {
        &[]
    }
}

/// Where a recorded trace left the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceError {
    /// Event `index` was refused by `step`.
    Rejected { index: usize, reason: String },
    /// After event `index`, the named invariant failed.
    Invariant { index: usize, name: &'static str },
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Rejected { index, reason } => {
                write!(f, "event {index} rejected: {reason}")
            }
            TraceError::Invariant { index, name } => {
                write!(f, "after event {index}: invariant {name} violated")
            }
        }
    }
}

/// Runs a recorded trace through the spec from its initial state, checking
/// every invariant after every event. Returns the visited states (the
/// initial one first) or the first place the trace left the spec.
pub fn replay<S: Spec>(cfg: &S::Config, events: &[S::Event]) -> Result<Vec<S::State>, TraceError> {
    let mut states = Vec::with_capacity(events.len() + 1);
    let mut state = S::init(cfg);
    states.push(state.clone());
    for (index, event) in events.iter().enumerate() {
        let next = S::step(cfg, &state, event).map_err(|r| TraceError::Rejected {
            index,
            reason: format!("{event:?}: {}", r.reason),
        })?;
        if let Some(inv) = S::invariants().iter().find(|inv| !(inv.holds)(&next)) {
            return Err(TraceError::Invariant {
                index,
                name: inv.name,
            });
        }
        if let Some(inv) = S::transition_invariants()
            .iter()
            .find(|inv| !(inv.holds)(&state, &next))
        {
            return Err(TraceError::Invariant {
                index,
                name: inv.name,
            });
        }
        states.push(next.clone());
        state = next;
    }
    Ok(states)
}
