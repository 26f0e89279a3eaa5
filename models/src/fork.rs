//! The fork model: `cpyrt_spec::fork` explored by stateright, with the
//! design CPython ships, the same with the GIL enabled, and seven broken
//! twins.
//!
//! # Protocol
//! `os.fork()` in CPython 3.14: `PyOS_BeforeFork`, `PyOS_AfterFork_Parent`
//! and `PyOS_AfterFork_Child` (`Modules/posixmodule.c`),
//! `_PyRuntimeState_ReInitThreads`, `_PyThreadState_RemoveExcept`,
//! `_PyThreadState_DeleteList` and the stop-the-world pauses
//! (`Python/pystate.c`), `_PyEval_ReInitThreads` (`Python/ceval_gil.c`),
//! `_Py_qsbr_after_fork` (`Python/qsbr.c`), the import lock
//! (`Python/import.c`) and the thread handles with their once-flag and
//! `_PyThread_AfterFork` (`Modules/_threadmodule.c`). The forker takes the
//! import lock, stops the world and takes `HEAD_LOCK`; `fork()` copies
//! memory; the parent undoes the three; the child re-initialises its
//! locks, marks dead threads' handles done, releases their QSBR slots,
//! re-creates and takes the GIL, unlinks their thread states, restarts the
//! world, clears the unlinked states and releases the import lock.
//!
//! # Abstraction
//! The model is [`SpecModel`](crate::SpecModel) over [`Fork`]: what the
//! spec leaves out (its module doc: the fork hooks beyond the code they
//! run, signals, subinterpreters, biased reference counting, the details
//! of the pause, QSBR and GIL protocols) is left out here too. `fork()`
//! is one action that chooses whether the model follows the parent or the
//! child, so both are explored from every fork point. The programs the
//! threads run are fixed by the spec: thread 0 is the main thread (starts
//! thread 1, joins, drops handle objects, collects garbage, forks);
//! thread 1 may run a GC pause, take the import lock and a runtime mutex,
//! start thread 2 and exit; thread 2 does the same but pauses nothing.
//! The model adds no bound beyond the spec's: one fork per run, one QSBR
//! retirement in the child, and every thread's program is finite apart
//! from attach/detach and lock rounds, which revisit states.
//!
//! # Properties
//! Always (state): `child_locks_free_or_live`, `child_lists_consistent`,
//! `child_only_live_thread_states`, `child_dead_handles_marked_before_code`,
//! `child_no_dead_pause`, `child_no_dead_qsbr_seq`,
//! `child_forker_holds_gil`, `no_code_while_world_stopped`,
//! `no_os_call_on_lost_thread`, `no_wait_forever`. Always (transition):
//! `rd_seq_monotone`, `handle_state_monotone`. Sometimes: `child_ready`,
//! `parent_resumed`, `forked_with_garbage_handle`,
//! `forked_while_worker_held_mutex`, `child_paused`, `child_imported`,
//! `child_reclaimed`, `child_started_thread`, `child_joined_new_thread`,
//! `child_joined_dead_handle`. Eventually (`LIVENESS` in the spec, under
//! the fairness of `checker/fork.rs`, judged by `cpyrt check` wherever the
//! graph is under the checker's cap: 1 and 2 threads, and `gil` and the
//! smaller twins at 3; `models/tests/fork.rs` shows each fairness class is
//! needed): once the child's
//! handler has finished, it completes a pause, an import and a QSBR
//! reclamation. Each is stated in one sentence in `spec/src/fork/props.rs`;
//! `cpyrt list fork` prints them.
//!
//! Twins and what they break (shortest counterexamples, BFS, pinned in
//! `models/manifest.json` and `models/tests/fork.rs`):
//!
//! | variant | violates | steps |
//! |---|---|--:|
//! | `handles-marked-late` (gh-115035) | `child_dead_handles_marked_before_code`, `no_os_call_on_lost_thread` | 13, 19 |
//! | `head-unlocked-across-fork` (bpo-30395) | `child_lists_consistent` | 9 |
//! | `no-stop-the-world` (before gh-116522) | `child_no_dead_qsbr_seq`, `child_no_dead_pause`, `child_locks_free_or_live`, `no_wait_forever`; and the three `child_eventually_*` (a lasso) | 6, 8, 8, 8 |
//! | `no-lock-reinit` (bpo-30395 before PR 1740) | `no_wait_forever` (from 1 thread), `child_locks_free_or_live` (from 2) | 9, 11 |
//! | `not-started-marked-done` (gh-134381) | leaves `child_started_thread`, `child_joined_new_thread` unreached | |
//! | `clear-before-restart` | `no_code_while_world_stopped` | 11 |
//! | `gil-not-recreated` | `no_wait_forever` | 9 |
//!
//! `child_only_live_thread_states`, `child_forker_holds_gil` and the two
//! transition invariants have no twin of their own: no design in CPython's
//! history leaves a dead thread state linked after
//! `_PyThreadState_RemoveExcept` or takes the GIL for another thread; they
//! guard the spec's own bookkeeping.
//!
//! # Limits
//! 1 to [`MAX_THREADS`] threads. Measured with BFS, one checker thread,
//! release build, on the project's 2-core machines (`cpyrt check fork`):
//!
//! | variant | threads | unique states | seconds | peak memory |
//! |---|--:|--:|--:|--:|
//! | `base` | 1 | 323 | < 0.01 | 5 MB |
//! | `base` | 2 | 26,554 | 0.5 | 8 MB |
//! | `base` | 3 | 1,125,950 | 21 | 120 MB |
//! | `gil` | 2 | 13,184 | 0.3 | 6 MB |
//! | `gil` | 3 | 365,071 | 6.5 | 50 MB |
//!
//! The twins are of the same order at 3 threads (1.15 M to 1.32 M states,
//! 20 to 23 s) except those that stop the child early (`no-lock-reinit`
//! 62,236, `gil-not-recreated` 9,458) or keep it from starting threads
//! (`not-started-marked-done` 451,352). Every twin fails at 3 threads with
//! the same shortest counterexample as at the fewest threads it needs.
//! With one thread no worker exists, so only the twins that break the
//! forker's own path fail there. Liveness (the child's progress) is
//! checked on the full graph at 1 and 2 threads.

use cpyrt_spec::fork::{Design, Fork, MAX_THREADS};

use crate::spec_mechanism::{SpecMechanism, SpecVariant};

pub use cpyrt_spec::fork::Config;

/// Threads when the CLI is not told: the smallest count at which every
/// twin but `no-lock-reinit`, `clear-before-restart` and
/// `gil-not-recreated` (which fail with the forker alone) needs a worker.
pub const DEFAULT_THREADS: usize = 2;

/// The model's configuration of `design` at `threads` threads.
pub fn config(threads: usize, gil: bool, design: Design) -> Config {
    Config {
        threads,
        gil,
        design,
    }
}

/// Fork in the registry.
pub static MECHANISM: SpecMechanism<Fork> = SpecMechanism {
    about: "os.fork(): PyOS_BeforeFork and the after-fork handlers with thread handles, locks, pauses and QSBR slots (Modules/posixmodule.c)",
    threads: 1..=MAX_THREADS,
    default_threads: DEFAULT_THREADS,
    variants: VARIANTS,
    default_bounds_doc: "one fork per run, one QSBR retirement in the child",
    bounds: &[],
};

/// `base`, `gil` and the broken twins.
pub static VARIANTS: &[SpecVariant<Fork>] = &[
    SpecVariant {
        name: "base",
        doc: "The design CPython 3.14 ships, free-threaded build with the GIL disabled (Design::CPYTHON).",
        violates: &[],
        violates_from: 1,
        config: |t| config(t, false, Design::CPYTHON),
    },
    SpecVariant {
        name: "gil",
        doc: "The design CPython 3.14 ships, with the GIL enabled (the default build, or PYTHON_GIL=1).",
        violates: &[],
        violates_from: 1,
        config: |t| config(t, true, Design::CPYTHON),
    },
    SpecVariant {
        name: "handles-marked-late",
        doc: "Dead threads' handles are marked by the first after-fork hook, after destructors ran (gh-115035, fixed by PR 115042).",
        violates: &[
            "child_dead_handles_marked_before_code",
            "no_os_call_on_lost_thread",
        ],
        violates_from: 2,
        config: |t| {
            config(
                t,
                false,
                Design {
                    mark_handles_before_code: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "head-unlocked-across-fork",
        doc: "HEAD_LOCK is not held across fork(): a thread leaving thread_run is half-way through the handle lists (bpo-30395, gh-116522).",
        violates: &["child_lists_consistent"],
        violates_from: 2,
        config: |t| {
            config(
                t,
                false,
                Design {
                    hold_head_lock_across_fork: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "no-stop-the-world",
        doc: "No pause across fork() (before gh-116522): dead threads stay attached with a QSBR sequence, or mid-pause.",
        // With the graph small enough to judge liveness, the child's
        // progress fails too: a dead thread's QSBR sequence or pause holds
        // it back forever.
        violates: &[
            "child_eventually_imports",
            "child_eventually_pauses",
            "child_eventually_reclaims",
            "child_locks_free_or_live",
            "child_no_dead_pause",
            "child_no_dead_qsbr_seq",
            "no_wait_forever",
        ],
        violates_from: 2,
        config: |t| {
            config(
                t,
                false,
                Design {
                    stop_world_across_fork: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "no-lock-reinit",
        doc: "The child keeps its mutexes as copied (bpo-30395 before PR 1740): dead owners, and HEAD_LOCK still held by the forker.",
        violates: &["child_locks_free_or_live", "no_wait_forever"],
        violates_from: 2,
        config: |t| {
            config(
                t,
                false,
                Design {
                    reinit_locks_in_child: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "not-started-marked-done",
        doc: "Never-started handles are marked done in the child, so their threads cannot start (gh-134381, fixed by PR 134514).",
        violates: &[],
        violates_from: 2,
        config: |t| {
            config(
                t,
                false,
                Design {
                    keep_not_started_handles: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "clear-before-restart",
        doc: "The child clears the dead thread states, running destructors, before it restarts the world.",
        violates: &["no_code_while_world_stopped"],
        violates_from: 1,
        config: |t| {
            config(
                t,
                false,
                Design {
                    start_world_before_clearing: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "gil-not-recreated",
        doc: "With the GIL enabled, the child takes the GIL as copied instead of re-creating it: take_gil waits forever.",
        violates: &["no_wait_forever"],
        violates_from: 1,
        config: |t| {
            config(
                t,
                true,
                Design {
                    recreate_gil_in_child: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
];
