//! The executable reference runtime of cpyrt.
//!
//! Real threads, real atomics and real heap memory implement CPython's
//! free-threading machinery one mechanism per module, behind one shim
//! ([`primitive`]) that swaps `std` for loom or shuttle. With tracing on,
//! the runtime records the events of `cpyrt_spec` ([`trace`]), so a run can
//! be replayed against the spec and the models.
//!
//! Architecture invariant: only [`primitive`] names `std::sync`, loom or
//! shuttle; this crate depends on no workspace crate but `cpyrt-spec`.

pub mod eval;
// fork() is a process-level operation a model checker's scheduler cannot
// run: the module is the plain std build's, on Unix, and shuttle's, where
// `Runtime::fork_parent_only` runs the protocol up to and after fork()
// without forking.
#[cfg(any(cpyrt_shuttle, all(unix, not(cpyrt_loom))))]
pub mod fork;
pub mod func_version;
pub mod gil;
pub mod primitive;
pub mod qsbr;
pub mod stw;
pub mod trace;
pub mod type_version;
