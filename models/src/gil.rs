//! The GIL model: `cpyrt_spec::gil` explored by stateright in six
//! scenarios, each with the design CPython ships and its broken twins.
//!
//! # Protocol
//! The GIL of the default build as of CPython 3.13/3.14:
//! `Python/ceval_gil.c` (`take_gil`, `drop_gil`, `drop_gil_impl`,
//! `_PyEval_InitGIL`, `_PyEval_FiniGIL`, the drop-request branch of
//! `_Py_HandlePending`, `FORCE_SWITCHING`) and `Python/pystate.c`
//! (`new_threadstate`, `tstate_delete_common`,
//! `_PyThreadState_DeleteCurrent`, `PyGILState_Ensure`,
//! `PyGILState_Release`). A waiter that times out with no switch in the
//! interval asks the holder to drop; the holder drops at its next
//! eval-breaker check and, under FORCE_SWITCHING, waits until another
//! thread took the GIL; threads that must exit during finalization hang.
//! Each scenario is a `Config` of interpreters, thread states and OS
//! thread programs; a variant is a scenario with a [`Design`].
//!
//! # Abstraction
//! The model is [`SpecModel`](crate::SpecModel) over [`GilSpec`]: every
//! event of the spec is an action, and what the spec leaves out (see its
//! module doc: timing, pending calls, signals, fork, the free-threaded
//! build's dynamic GIL) is left out here too. The scenarios are the spec's
//! named ones (`cpyrt_spec::gil::scenario`, shared with the reference's
//! tests and the conformance tests); they fix what each OS thread runs:
//!
//! - `handoff`: threads 0 and 1 are CPU-bound (`Take, Compute`), so
//!   they release only on request; thread 2 blocks and wakes forever
//!   (`Take, Run, Drop`): the benchmark's shape.
//! - `finalize`: the main thread joins the non-daemon threads, finalizes,
//!   runs (atexit, GC: eval-breaker checks), releases for the last time and
//!   deletes the main interpreter; thread 1 is a CPU-bound daemon, thread 2
//!   a non-daemon that exits.
//! - `subinterpreters`: threads of the main interpreter and of one
//!   subinterpreter that shares the main GIL or owns one.
//! - `end-interpreter`: a subinterpreter's main thread joins a worker
//!   that unlinks its thread state and releases for the last time, then
//!   ends the interpreter, freeing it (gh-104341's race).
//! - `gilstate`: fresh C threads call `PyGILState_Ensure`/`Release`
//!   with an allocation hook that calls `PyGILState_Ensure` (gh-96071).
//! - `detached`: threads of two own-GIL subinterpreters temporarily use a
//!   main-interpreter thread state to run under the main GIL (gh-105699).
//!
//! # Properties
//! Always (state): `mutual_exclusion`, `holder_is_last_holder`,
//! `drop_only_when_locked`, `shared_gil_excludes`, `tstate_bound_once`,
//! `no_self_block`, `no_deadlock`, `no_use_after_free`. Always
//! (transition): `switch_counted`. Sometimes: `gil_held`, `handed_off`,
//! `drop_requested`, `forced_switch_wait`, `parallel_holders`,
//! `finalized`, `waiter_hung`; each scenario reaches only some of them and
//! the manifest pins which. Each is stated in one sentence in
//! `spec/src/gil.rs`; `cpyrt list gil` prints them.
//!
//! Eventually (per thread, under the fairness of
//! `models/src/checker/gil.rs`): `take_returns_0..2` (a thread in
//! `take_gil` gets the GIL or hangs), `switch_wait_ends_0..2` (a forced
//! switch wait ends). Between CPU-bound threads FORCE_SWITCHING makes
//! `take_returns` hold (`base` at 1 and 2 threads) and its absence breaks
//! it (`no-force-switching`). Wherever a thread releases voluntarily and
//! re-takes (blocking I/O, switching interpreters) `take_returns` fails
//! even in CPython's design: each release wakes a waiter, which restarts
//! its interval instead of timing out, and may lose the mutex to the
//! releaser every time. CPython's GIL bounds neither; the manifest pins
//! where this shows. Configurations above the checker's graph cap (one
//! million states) are judged for safety only.
//!
//! # Limits
//! 1 to [`MAX_MODEL_THREADS`] OS threads; below a scenario's full size the
//! later threads are left out. Unique states, BFS, release build, one
//! checker thread, on the project's 2-core machines, are pinned in
//! `models/manifest.json`; every configuration checks in seconds.

use cpyrt_spec::gil::{Design, GilSpec};

pub use cpyrt_spec::gil::scenario::{
    Scenario, detached, end_interpreter, finalize, gilstate, handoff, subinterpreters,
};

use crate::spec_mechanism::{SpecMechanism, SpecVariant};

/// Most OS threads a scenario uses (the spec allows 4; 3 keeps every
/// configuration to seconds).
pub const MAX_MODEL_THREADS: usize = 3;
/// Threads when the CLI is not told: two CPU-bound threads and one that
/// blocks, the smallest hand-off with a bystander.
pub const DEFAULT_THREADS: usize = 3;

/// The GIL in the registry.
pub static MECHANISM: SpecMechanism<GilSpec> = SpecMechanism {
    about: "GIL hand-off, per-interpreter GILs and PyGILState (Python/ceval_gil.c, Python/pystate.c)",
    threads: 1..=MAX_MODEL_THREADS,
    default_threads: DEFAULT_THREADS,
    variants: VARIANTS,
    default_bounds_doc: "switch_number modulo 4; each scenario's fixed programs, threads beyond the count left out",
    bounds: &[],
};

const CPYTHON: Design = Design::CPYTHON;

/// `base` and the other scenarios, each followed by its broken twins.
pub static VARIANTS: &[SpecVariant<GilSpec>] = &[
    SpecVariant {
        name: "base",
        doc: "Hand-off between a thread that blocks and CPU-bound threads, as CPython 3.13/3.14 ships it (Design::CPYTHON).",
        violates: &[],
        violates_from: 1,
        config: |t| handoff(t, CPYTHON),
    },
    SpecVariant {
        name: "no-force-switching",
        doc: "Hand-off without FORCE_SWITCHING: a thread asked to drop may take the GIL straight back, and the waiter starves.",
        violates: &["take_returns_0", "take_returns_1"],
        violates_from: 2,
        config: |t| {
            handoff(
                t,
                Design {
                    force_switching: false,
                    ..CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "finalize",
        doc: "The main thread finalizes while a daemon thread waits in take_gil (Design::CPYTHON); the waiter clears its request after unlocking gil->mutex, and a holder already in drop_gil_impl still sees it.",
        violates: &["no_deadlock", "switch_wait_ends_0"],
        violates_from: 2,
        config: |t| finalize(t, CPYTHON),
    },
    SpecVariant {
        name: "waiter-leaves-request",
        doc: "An exiting waiter leaves its drop request set, so the finalizing holder waits on switch_cond forever (gh-96387, fixed by PR 96869).",
        violates: &[
            "exit_clears_own_request",
            "no_deadlock",
            "switch_wait_ends_0",
        ],
        violates_from: 2,
        config: |t| {
            finalize(
                t,
                Design {
                    exiting_waiter_clears_request: false,
                    ..CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "clear-under-mutex",
        doc: "The exiting waiter clears its drop request before unlocking gil->mutex (not CPython: closes the window the finalize scenario finds).",
        violates: &[],
        violates_from: 1,
        config: |t| {
            finalize(
                t,
                Design {
                    clear_request_before_unlock: true,
                    ..CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "subinterpreters-shared",
        doc: "A legacy subinterpreter shares the main interpreter's GIL.",
        violates: &[],
        violates_from: 1,
        config: |t| subinterpreters(t, false, CPYTHON),
    },
    SpecVariant {
        name: "subinterpreters-own",
        doc: "An isolated subinterpreter owns its GIL (PEP 684): its threads run in parallel with the main interpreter's.",
        violates: &[],
        violates_from: 1,
        config: |t| subinterpreters(t, true, CPYTHON),
    },
    SpecVariant {
        name: "end-interpreter",
        doc: "A subinterpreter ends while its worker's final release may still be running (Design::CPYTHON).",
        violates: &[],
        violates_from: 1,
        config: |t| end_interpreter(t, CPYTHON),
    },
    SpecVariant {
        name: "final-release-tail",
        doc: "drop_gil runs the FORCE_SWITCHING tail on a final release and reads a freed interpreter's thread state (gh-104341).",
        violates: &["no_use_after_free"],
        violates_from: 2,
        config: |t| {
            end_interpreter(
                t,
                Design {
                    final_release_skips_switch_wait: false,
                    ..CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "gilstate",
        doc: "Fresh C threads call PyGILState_Ensure under an allocation hook that calls it again (Design::CPYTHON).",
        violates: &[],
        violates_from: 1,
        config: |t| gilstate(t, CPYTHON),
    },
    SpecVariant {
        name: "alloc-under-head-lock",
        doc: "new_threadstate allocates under HEAD_LOCK and the hook's PyGILState_Ensure blocks on it (gh-96071, fixed by PR 96124).",
        violates: &["no_self_block", "no_deadlock"],
        violates_from: 1,
        config: |t| {
            gilstate(
                t,
                Design {
                    alloc_before_head_lock: false,
                    ..CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "detached",
        doc: "Threads of two own-GIL subinterpreters each use their own main-interpreter thread state (Design::CPYTHON).",
        violates: &[],
        violates_from: 1,
        config: |t| detached(t, CPYTHON),
    },
    SpecVariant {
        name: "shared-detached-tstate",
        doc: "Both threads bind one shared detached main-interpreter thread state (gh-105699, 3.12 betas; fixed by PR 106974).",
        violates: &["tstate_bound_once", "switch_counted"],
        violates_from: 2,
        config: |t| {
            detached(
                t,
                Design {
                    tstate_per_os_thread: false,
                    ..CPYTHON
                },
            )
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_config_is_valid_at_every_thread_count() {
        for v in VARIANTS {
            for t in 1..=MAX_MODEL_THREADS {
                (v.config)(t)
                    .validate()
                    .unwrap_or_else(|e| panic!("{} at {t}: {e}", v.name));
            }
        }
    }
}
