//! The QSBR model: `cpyrt_spec::qsbr` explored by stateright, with the
//! design CPython ships and three broken twins.
//!
//! # Protocol
//! Quiescent-state based reclamation in the free-threaded build, as of
//! CPython 3.13/3.14: `Python/qsbr.c` (`_Py_qsbr_attach`,
//! `_Py_qsbr_detach`, `_Py_qsbr_advance`, `_Py_qsbr_deferred_advance`,
//! `qsbr_poll_scan`, `_Py_qsbr_poll`, `_Py_qsbr_reserve`,
//! `_Py_qsbr_register`, `_Py_qsbr_unregister`, `grow_thread_array`),
//! `Include/internal/pycore_qsbr.h` (`_Py_qsbr_quiescent_state`), the
//! delayed-free queues of `Objects/obmalloc.c` (`free_delayed`,
//! `process_queue`, `process_interp_queue`, `_PyMem_AbandonDelayed`) and
//! their callers in `Python/pystate.c` (`new_threadstate`,
//! `_PyThreadState_Attach`, `detach_thread`, `tstate_delete_common`). A
//! writer unlinks an object and queues it with a goal; readers announce
//! quiescent states; an attached thread scans the slots, moves `rd_seq`
//! and frees the queue items whose goal it reached. Threads are created
//! (reserving and registering a slot, growing the slot array under a
//! stop-the-world pause when it is full) and exit (abandoning their queue
//! to the interpreter's, then unregistering under `shared->mutex`).
//!
//! # Abstraction
//! The model is [`SpecModel`](crate::SpecModel) over [`Qsbr`]: every event of the spec is an
//! action, and what the spec leaves out (see its module doc: chunked
//! queues, the decref tag bit, finalization, fork, the memory-ordering
//! argument, the pause protocol itself) is left out here too. The model
//! adds only bounds, each sound for the properties checked:
//!
//! - [`MAX_OBJECTS`] objects ever published: every interleaving of up to
//!   two retirements with reads, scans and frees is explored; a third
//!   retirement repeats a shape already seen with a larger `wr_seq`.
//! - [`DEFERRAL_LIMIT`] 2 instead of CPython's 10: the first retirement of
//!   a thread takes a deferred goal and the second advances, so both
//!   branches of `_Py_qsbr_deferred_advance` occur; a larger limit only
//!   lengthens the run of deferred goals.
//! - [`MIN_ARRAY_SIZE`] 1 instead of CPython's 8: the second thread to
//!   register already grows the array, where CPython needs a ninth.
//!
//! # Properties
//! Always (state): `no_use_after_free` (the reason QSBR exists),
//! `wr_seq_odd`, `rd_seq_bounded`, `seq_nonzero_iff_attached`,
//! `goals_bounded`, `slot_owned_by_at_most_one_thread`,
//! `no_write_to_freed_slot_array`. Always (transition): `wr_seq_monotone`,
//! `rd_seq_monotone`. Sometimes: `item_freed`, `array_grown`,
//! `thread_exited`. Each is stated in one sentence in `spec/src/qsbr.rs`
//! (`INVARIANTS`, `TRANSITION_INVARIANTS`, `SOMETIMES`); `cpyrt list qsbr`
//! prints them. With one thread the array is grown once only, so
//! `array_grown` is unreachable there (the manifest pins that), and no
//! safety twin can fail: every safety bug here is a race between two
//! threads. Eventually (leads-to, judged on the state graph under the
//! fairness declared in `checker/qsbr.rs`): `retired_eventually_freed`,
//! which the `no-gc-advance` twin breaks already at one thread.
//!
//! # Limits
//! 1 to [`MAX_THREADS`] threads. Measured with BFS, one checker thread,
//! release build, on the project's 2-core machines (base design; the
//! manifest pins every count):
//!
//! | threads | bounds  | unique states | seconds | memory |
//! |--------:|---------|--------------:|--------:|-------:|
//! | 1       | default | 104           | < 0.01  |        |
//! | 2       | default | 6,879         | 0.01    |        |
//! | 3       | default | 437,020       | 1.0     | 60 MB  |
//! | 4       | small   | 1,491,800     | 3.9     | 230 MB |
//! | 4       | default | not finished: 17.7 M states after 60 s | | 5 GB |
//!
//! The twins are larger (freeing early or passing readers opens states
//! the base design never reaches): 0.6 M to 0.9 M states and 1.4 to
//! 2.9 s at 3 threads, 1.9 M to 3.1 M states and 8 to 11 s at 4 threads
//! with the `small` bounds, where each still fails with the same
//! shortest counterexample as at 2 threads.

use cpyrt_spec::qsbr::{CPYTHON_DEFERRED_LIMIT, Config, Design, MAX_THREADS, Qsbr};

use crate::spec_mechanism::{SpecBounds, SpecMechanism, SpecVariant};

/// Objects ever published, the initial one included: two retirements, the
/// second of which is a real advance at [`DEFERRAL_LIMIT`] 2.
pub const MAX_OBJECTS: u8 = 3;
/// `QSBR_DEFERRED_LIMIT` for the model (CPython: 10): one deferred goal,
/// then a real advance.
pub const DEFERRAL_LIMIT: u8 = 2;
/// `MIN_ARRAY_SIZE` for the model (CPython: 8): the second thread's
/// registration grows the slot array.
pub const MIN_ARRAY_SIZE: u8 = 1;
/// `max_objects` of the `small` bounds: one retirement per run. At 4
/// threads the default bounds reach 17.7 M unique states in a minute and
/// are not done (5 GB); `small` finishes in about 4 s (base) to 9 s
/// (twins) with 1.5 M to 3.1 M states, and every twin still fails.
pub const SMALL_MAX_OBJECTS: u8 = 2;
/// Threads when the CLI is not told: the smallest count at which every
/// twin fails.
pub const DEFAULT_THREADS: usize = 2;

/// The model's configuration of `design` at `threads` threads.
pub fn config(threads: usize, design: Design) -> Config {
    Config {
        threads,
        max_objects: MAX_OBJECTS,
        deferral_limit: DEFERRAL_LIMIT,
        min_array_size: MIN_ARRAY_SIZE,
        design,
    }
}

/// QSBR in the registry.
pub static MECHANISM: SpecMechanism<Qsbr> = SpecMechanism {
    about: "Quiescent-state based reclamation and _PyMem_FreeDelayed (Python/qsbr.c, Objects/obmalloc.c)",
    threads: 1..=MAX_THREADS,
    default_threads: DEFAULT_THREADS,
    variants: VARIANTS,
    default_bounds_doc: "max_objects 3 (two retirements), deferral_limit 2, min_array_size 1",
    bounds: &[SpecBounds {
        name: "small",
        doc: "max_objects 2 (one retirement): what makes 4 threads affordable",
        apply: |c| Config {
            max_objects: SMALL_MAX_OBJECTS,
            ..c
        },
    }],
};

/// `base` and the broken twins.
pub static VARIANTS: &[SpecVariant<Qsbr>] = &[
    SpecVariant {
        name: "base",
        doc: "The design CPython 3.13/3.14 ships (Design::CPYTHON).",
        violates: &[],
        violates_from: 1,
        config: |t| config(t, Design::CPYTHON),
    },
    SpecVariant {
        name: "free-before-goal",
        doc: "Delayed frees ignore their goal: an item is freed at the queue head while a reader still holds it.",
        violates: &["no_use_after_free"],
        violates_from: 2,
        config: |t| {
            config(
                t,
                Design {
                    free_waits_for_goal: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "quiescent-in-read",
        doc: "A thread reports a quiescent state inside a read section, so the scan passes it while it holds a pointer.",
        violates: &["no_use_after_free"],
        violates_from: 2,
        config: |t| {
            config(
                t,
                Design {
                    quiescent_outside_reads: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "stale-slot-pointer",
        doc: "_Py_qsbr_unregister uses the slot pointer loaded before taking the mutex (gh-115103, fixed by PR 116480).",
        // The write lands in the freed array, and the live array keeps the
        // slot bound to the exited thread.
        violates: &[
            "no_write_to_freed_slot_array",
            "slot_owned_by_at_most_one_thread",
        ],
        violates_from: 2,
        config: |t| {
            config(
                t,
                Design {
                    reload_slot_under_mutex: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "no-gc-advance",
        doc: "Nothing outside free_delayed advances wr_seq (no GC) and the deferral limit is CPython's 10, above the retirements: deferred goals are never reached, so a running thread's retired objects are never freed.",
        // A liveness twin: every safety property holds.
        violates: &["retired_eventually_freed"],
        violates_from: 1,
        config: |t| Config {
            deferral_limit: CPYTHON_DEFERRED_LIMIT,
            ..config(
                t,
                Design {
                    gc_advances: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
];
