//! The checks stateright 0.31 lacks, over any stateright [`Model`]:
//!
//! - [`graph`]: the reachable state graph, by an explicit BFS in a fixed
//!   order, states stored once, edges with their action index; a state cap
//!   that fails with an error naming it. [`export`] writes it as DOT, JSON
//!   or SVG.
//! - [`liveness`]: `eventually Q` and `P leads to Q` judged on cycles and
//!   joins (stateright judges `eventually` only at path ends), under weak
//!   and strong [`fairness`] declared per thread and action class, with a
//!   replayable lasso as counterexample.
//! - [`coverage`]: transitions per action kind, and the kinds that never
//!   fire.
//! - [`symmetry`]: reduction by thread renaming that works with BFS, with
//!   counterexamples printed in the real thread numbers.
//! - [`properties`]: a model's own always/sometimes/eventually properties
//!   judged on the graph.
//! - [`spec`]: the same for spec-backed models, with what each mechanism
//!   declares ([`qsbr`]'s fairness, symmetry and labels).
//! - [`registry`]: what `cpyrt check` and `cpyrt graph` run for each
//!   mechanism that declares hooks.
//! - [`bench`]: the runs `cargo xtask bench` times.
//!
//! Determinism: every result is a function of the model alone. State ids
//! follow BFS discovery order with actions in `Model::actions` order, all
//! searches visit successors in that order, and no hash map's iteration
//! order reaches an output.
//!
//! [`Model`]: stateright::Model

pub mod bench;
pub mod coverage;
pub mod export;
pub mod fairness;
pub mod fork;
pub mod gil;
pub mod graph;
pub mod liveness;
pub mod properties;
pub mod qsbr;
pub mod registry;
pub mod scc;
pub mod spec;
pub mod stw;
pub mod symmetry;
pub mod trace;

pub use coverage::Coverage;
pub use fairness::{FairClass, Fairness, Strength};
pub use graph::{DEFAULT_MAX_STATES, GraphError, StateGraph};
pub use liveness::{Lasso, LivenessReport, eventually, leads_to};
pub use symmetry::{Permutation, Symmetric, build_reduced};
pub use trace::Trace;
