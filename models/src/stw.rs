//! The stop-the-world model: `cpyrt_spec::stw` explored by stateright, in
//! one and two interpreters, with both lock orders CPython has shipped and
//! seven broken twins.
//!
//! # Protocol
//! Stop-the-world pauses and the thread-state machine of the free-threaded
//! build, as of CPython 3.14: `Python/pystate.c` (`stop_the_world`,
//! `start_the_world`, `park_detached_threads`,
//! `decrement_stoptheworld_countdown`, `tstate_try_attach`,
//! `tstate_wait_attach`, `_PyThreadState_Attach`, `detach_thread`,
//! `_PyThreadState_Suspend`, `_PyThreadState_SetShuttingDown`,
//! `new_threadstate`, `tstate_delete_common`), `_Py_HandlePending` in
//! `Python/ceval_gil.c`, `Python/critical_section.c` and `Python/lock.c`
//! (PyMutex with its 1 ms fairness hand-off, `_PyRWMutex`). A requester
//! takes its instance's mutex and the runtime read-write mutex, counts the
//! other threads, parks the detached ones and asks the attached ones to
//! stop, then waits; threads suspend at eval-breaker checks; the requester
//! restarts the world. Threads enter critical sections (released when they
//! detach, resumed when they attach), make blocking calls, are created and
//! deleted at any moment, and finalization hangs the other threads.
//!
//! # Abstraction
//! The model is [`SpecModel`](crate::SpecModel) over [`Stop`]; what the
//! spec leaves out (its module doc: HEAD_LOCK as a lock, nested critical
//! sections, requesters without a thread state, the GIL, QSBR, fork) is
//! left out here too. The model fixes what each thread's program may do
//! ([`roles`]):
//!
//! - thread 0 is the main thread of interpreter 0: it may request a pause
//!   of its interpreter or a global one, and, with one interpreter,
//!   finalize the runtime;
//! - thread 1 runs in the last interpreter and may request a pause of it
//!   and delete its thread state;
//! - thread 2 starts without a thread state in the last interpreter and
//!   creates one at any moment, pauses included; it may delete it again.
//!
//! Every thread may enter a critical section on its interpreter's object
//! and detach around blocking calls. Each thread requests at most
//! [`MAX_PAUSES`] pause (finalization not counted): every interleaving of
//! one request per thread with everything else is explored, and the
//! `two-pauses` bounds allow two.
//!
//! # Properties
//! Always (state): `stopped_world_has_no_other_attached_thread`,
//! `countdown_nonnegative`, `countdown_matches_threads_to_park`,
//! `pauses_never_overlap`, `no_deadlock`. Always (transition):
//! `only_pause_end_unsuspends`. Sometimes: `world_stopped_globally`,
//! `interp_pauses_overlap`, `thread_created_during_pause`,
//! `thread_suspended_itself`, `lock_handed_to_suspended_thread`,
//! `thread_hung_at_shutdown`; each is unreachable in some configurations
//! (two interpreters for the overlap, three threads for creation, one
//! interpreter for finalization), and the manifest pins which. Eventually
//! (leads-to on the state graph, under the fairness declared in
//! `checker/stw.rs`: the protocol's own steps weakly, the eval-breaker
//! check and the 1 ms lock hand-off strongly): `global_pause_stops_world`,
//! `interp0_pause_stops_world`, `interp1_pause_stops_world`,
//! `suspended_thread_{0,1,2}_resumes`. `cpyrt check` judges them on
//! graphs up to the checker's cap (1 M states); the twins that deadlock
//! also lose progress, and the manifest lists those names too. Each
//! property is stated in one sentence in `spec/src/stw/props.rs`;
//! `cpyrt list stw` prints them.
//!
//! Findings: both lock orders (3.14's instance mutex first, main's
//! read-write mutex first) hold at these bounds. gh-118332 needs three
//! threads: with two, the pause that parks the waiter is already complete,
//! so the requester never waits; there, the detaching requester can only
//! livelock (it drops and retakes its lock every timeout while the waiter
//! never gets it), which the hand-off rule ends.
//!
//! # Limits
//! 1 to [`MAX_THREADS`] threads, 1 or 2 interpreters. Measured with BFS,
//! one checker thread, release build, on the project's 2-core machines
//! (base designs, default bounds unless said):
//!
//! | variant | threads | bounds | unique states | safety s | with liveness s |
//! |---|--:|---|--:|--:|--:|
//! | base | 2 | default | 8,860 | 0.07 | 0.1 |
//! | base | 2 | two-pauses | 47,228 | 0.3 | |
//! | base | 3 | default | 538,805 | 2 to 5 | 3.4 (180 MB) |
//! | two-interps | 2 | default | 1,363 | < 0.01 | |
//! | two-interps | 3 | default | 95,986 | 0.5 | |
//! | two-interps | 3 | two-pauses | 664,429 | 2.5 to 7 | 7 (210 MB) |
//!
//! The twins at 3 threads take 0.35 M (`no-rw-mutex`, 3 s) to 1.1 M
//! (`created-detached`, 12 s) states; `paused-threads-detached` is pinned
//! at 2 threads only (3.4 M states and 28 s at 3, where it adds
//! `no_deadlock`). The figures are re-measured whenever the
//! manifest changes.

use cpyrt_spec::stw::{Config, Design, Role, Stop};

use crate::spec_mechanism::{SpecBounds, SpecMechanism, SpecVariant};

/// Threads the roles are defined for (the spec allows up to
/// `cpyrt_spec::stw::MAX_THREADS`; a fourth thread would add a role and
/// tens of millions of states).
pub const MAX_THREADS: usize = 3;
/// Pause requests per thread under the default bounds.
pub const MAX_PAUSES: u8 = 1;
/// Pause requests per thread under the `two-pauses` bounds: a thread can
/// pause again after its first pause, and a suspended thread can be
/// suspended twice. Costs about 5x (2 threads) to 7x (3 threads, two
/// interpreters) the default.
pub const TWO_PAUSES: u8 = 2;
/// Threads when the CLI is not told: the smallest count at which every
/// twin but `requester-detaches` and `created-detached` fails.
pub const DEFAULT_THREADS: usize = 2;

/// The roles of `threads` threads in `interps` interpreters (see the
/// module doc).
pub fn roles(threads: usize, interps: u8) -> Vec<Role> {
    let last = interps - 1;
    (0..threads)
        .map(|t| Role {
            interp: if t == 0 { 0 } else { last },
            starts_bound: t < 2,
            interp_pauses: t < 2,
            global_pauses: t == 0,
            finalizes: t == 0 && interps == 1,
            critical_sections: true,
            blocking_calls: true,
            exits: t > 0,
        })
        .collect()
}

/// The model's configuration of `design` at `threads` threads in `interps`
/// interpreters.
pub fn config(threads: usize, interps: u8, design: Design) -> Config {
    Config {
        interps,
        roles: roles(threads, interps),
        max_pauses: MAX_PAUSES,
        design,
    }
}

/// Stop-the-world in the registry.
pub static MECHANISM: SpecMechanism<Stop> = SpecMechanism {
    about: "Stop-the-world pauses and thread states with critical sections and PyMutex hand-off (Python/pystate.c, Python/lock.c)",
    threads: 1..=MAX_THREADS,
    default_threads: DEFAULT_THREADS,
    variants: VARIANTS,
    default_bounds_doc: "one pause request per thread, one object per interpreter",
    bounds: &[SpecBounds {
        name: "two-pauses",
        doc: "two pause requests per thread: pauses that follow pauses",
        apply: |c| Config {
            max_pauses: TWO_PAUSES,
            ..c
        },
    }],
};

/// Design with one switch flipped from CPython 3.14's.
macro_rules! twin {
    ($field:ident) => {
        Design {
            $field: false,
            ..Design::CPYTHON
        }
    };
}

/// `base`, the two-interpreter configurations, main's lock order and the
/// broken twins.
pub static VARIANTS: &[SpecVariant<Stop>] = &[
    SpecVariant {
        name: "base",
        doc: "The design CPython 3.14 ships (Design::CPYTHON), one interpreter.",
        violates: &[],
        violates_from: 1,
        config: |t| config(t, 1, Design::CPYTHON),
    },
    SpecVariant {
        name: "two-interps",
        doc: "The design CPython 3.14 ships, two interpreters: per-interpreter pauses overlap, a global one excludes them.",
        violates: &[],
        violates_from: 1,
        config: |t| config(t, 2, Design::CPYTHON),
    },
    SpecVariant {
        name: "main-lock-order",
        doc: "CPython main's order: the read-write mutex before the instance's mutex (Design::CPYTHON_MAIN), one interpreter.",
        violates: &[],
        violates_from: 1,
        config: |t| config(t, 1, Design::CPYTHON_MAIN),
    },
    SpecVariant {
        name: "main-lock-order-two-interps",
        doc: "CPython main's lock order, two interpreters.",
        violates: &[],
        violates_from: 1,
        config: |t| config(t, 2, Design::CPYTHON_MAIN),
    },
    SpecVariant {
        name: "requester-detaches",
        doc: "The requester detaches while waiting for the stop event and resumes a critical section whose lock it handed to a thread it suspended (gh-118332, fixed by PR 118412).",
        violates: &[
            "global_pause_stops_world",
            "interp0_pause_stops_world",
            "no_deadlock",
            "suspended_thread_0_resumes",
            "suspended_thread_1_resumes",
            "suspended_thread_2_resumes",
        ],
        violates_from: 3,
        config: |t| config(t, 1, twin!(requester_stays_attached)),
    },
    SpecVariant {
        name: "paused-threads-detached",
        doc: "Parked and self-suspended threads are stored DETACHED, not SUSPENDED: they attach inside the pause and rescans count them again.",
        // At 3 threads also no_deadlock (the manifest pins both).
        violates: &[
            "countdown_matches_threads_to_park",
            "countdown_nonnegative",
            "stopped_world_has_no_other_attached_thread",
        ],
        violates_from: 2,
        config: |t| config(t, 1, twin!(park_to_suspended)),
    },
    SpecVariant {
        name: "attach-while-suspended",
        doc: "The attach CAS also accepts SUSPENDED: a thread leaves the pause by itself.",
        // The first step out of SUSPENDED breaks the transition invariant
        // and ends its path, so the countdown never gets to go negative.
        violates: &[
            "countdown_matches_threads_to_park",
            "global_pause_stops_world",
            "interp0_pause_stops_world",
            "only_pause_end_unsuspends",
            "stopped_world_has_no_other_attached_thread",
        ],
        violates_from: 2,
        config: |t| config(t, 1, twin!(suspended_blocks_attach)),
    },
    SpecVariant {
        name: "no-rw-mutex",
        doc: "Pauses do not take the runtime read-write mutex: a global and a per-interpreter pause cover one interpreter and wait for each other.",
        // At 3 threads also countdown_matches_threads_to_park: the second
        // pause counts a thread already SUSPENDED by the first, which its
        // scan will never park.
        violates: &[
            "global_pause_stops_world",
            "interp0_pause_stops_world",
            "no_deadlock",
            "pauses_never_overlap",
        ],
        violates_from: 2,
        config: |t| config(t, 1, twin!(pauses_take_rw_mutex)),
    },
    SpecVariant {
        name: "cs-lock-in-pause",
        doc: "A critical section entered inside a pause locks its object, whose lock was handed to a suspended thread (gh-144513, fixed by PR 144524).",
        violates: &[
            "no_deadlock",
            "suspended_thread_0_resumes",
            "suspended_thread_1_resumes",
        ],
        violates_from: 2,
        config: |t| config(t, 1, twin!(skip_cs_lock_while_stopped)),
    },
    SpecVariant {
        name: "created-detached",
        doc: "A thread state created during a pause starts DETACHED and attaches in the stopped world.",
        violates: &[
            "countdown_matches_threads_to_park",
            "countdown_nonnegative",
            "no_deadlock",
            "stopped_world_has_no_other_attached_thread",
        ],
        violates_from: 3,
        config: |t| config(t, 1, twin!(new_thread_starts_suspended)),
    },
    SpecVariant {
        name: "delete-keeps-countdown",
        doc: "Deleting a counted, unsuspended thread state leaves the countdown alone: the requester waits for a thread that is gone.",
        violates: &[
            "countdown_matches_threads_to_park",
            "global_pause_stops_world",
            "interp0_pause_stops_world",
            "no_deadlock",
        ],
        violates_from: 2,
        config: |t| config(t, 1, twin!(delete_decrements_countdown)),
    },
];
