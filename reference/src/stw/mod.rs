//! Stop-the-world pauses and thread states, with real threads, atomics and
//! parking.
//!
//! # Protocol
//! Follows `Python/pystate.c` of CPython 3.14 function by function, with the
//! locks of `Python/lock.c` and the critical sections of
//! `Python/critical_section.c`; the spec is `cpyrt_spec::stw`, and every
//! method records the spec event of the step it performs.
//!
//! | CPython | here |
//! |---|---|
//! | `new_threadstate`, `init_threadstate` | [`Runtime::create`] |
//! | `_PyThreadState_Attach`, `tstate_try_attach`, `tstate_wait_attach`, `_PyCriticalSection_Resume` | [`Thread::attach`] (`thread.rs`) |
//! | `detach_thread`, `_PyCriticalSection_SuspendAll` | every detaching step (`Thread::detach_in_step`) |
//! | `_Py_HandlePending` (PLEASE_STOP), `_PyThreadState_Suspend` | [`Thread::eval_breaker`] |
//! | `Py_BEGIN/END_CRITICAL_SECTION`, `_PyCriticalSection_BeginSlow` | [`Thread::begin_critical_section`], [`Thread::end_critical_section`] |
//! | `Py_BEGIN/END_ALLOW_THREADS` | [`Thread::blocking_call`] |
//! | `_PyThreadState_DeleteCurrent`, `tstate_delete_common` | [`Thread::exit`] |
//! | `stop_the_world`, `park_detached_threads`, `decrement_stoptheworld_countdown` | [`Thread::stop_the_world`] (`pause.rs`) |
//! | `start_the_world` | [`Thread::start_the_world`] |
//! | `Py_FinalizeEx`'s pause, `_PyThreadState_RemoveExcept`, `_PyThreadState_SetShuttingDown` | [`Thread::finalize`] |
//! | `PyMutex`, `mutex_unpark`, `_PyRWMutex` | `lock.rs` |
//!
//! # Abstraction and departures
//! - HEAD_LOCK is a real mutex ([`Runtime`]'s `head`); every spec step that
//!   reads or writes what it protects holds it, as CPython does.
//! - The stop event's 1 ms timeout: under `std` the requester really waits
//!   at most 1 ms. loom and shuttle never time out, so the requester is
//!   also woken whenever a thread detaches: the only thing the timeout is
//!   there to catch is a thread that detached without decrementing the
//!   countdown, and a rescan after each detach catches it no later.
//! - The fairness hand-off counts missed wake-ups instead of time
//!   ([`HandOff`]).
//! - A hanging thread (`_PyThreadState_HangThread`) returns from its
//!   program with [`Outcome::Hung`] and never touches the runtime again,
//!   rather than blocking its OS thread forever. After finalization the
//!   process exits: a thread still parked on a lock (it may wait for one a
//!   hung thread owns) returns [`Outcome::Hung`] too, and records nothing.
//! - One object (one PyMutex) per interpreter, at most one critical
//!   section per thread, as in the spec.
//!
//! # Properties
//! The spec's invariants are asserted where the runtime can see them, with
//! panic messages that name them: `countdown_nonnegative` at every
//! decrement, `stopped_world_has_no_other_attached_thread` when the world
//! stops and whenever a thread attaches, `pauses_never_overlap` when a
//! pause begins, `only_pause_end_unsuspends` when an attach leaves
//! SUSPENDED, and `start_the_world`'s own assertion that every other
//! thread is SUSPENDED. Deadlocks are found by loom and shuttle (every
//! thread blocked). With tracing on, the recorded events replay through
//! `cpyrt_spec::replay::<Stop>` under [`Config::spec`].
//!
//! # Limits
//! Up to [`MAX_THREADS`] threads (8: the read-write mutex keeps its readers
//! and parked threads as `u8` bitmasks) and two interpreters. A traced
//! runtime holds at most `cpyrt_spec::stw::MAX_THREADS` (4), the most a
//! spec state has, since its trace must replay in the spec; untraced runs
//! (the pause-latency bench) may use more.

/// Whether the spec's invariants are asserted: in debug builds and under
/// loom and shuttle.
pub(crate) const CHECK_INVARIANTS: bool = cfg!(debug_assertions) || crate::primitive::MODEL_CHECKED;

mod lock;
mod pause;
mod thread;

pub use cpyrt_spec::stw::{Design, Event, Role, Scope};
pub use lock::HandOff;
pub use pause::Paused;
pub use thread::{Op, Outcome, Thread};

use cpyrt_spec::stw::{Config as SpecConfig, MAX_INTERPS};

/// Most threads a runtime holds (thread sets are `u8` bitmasks).
pub const MAX_THREADS: usize = 8;

use crate::primitive::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::primitive::sync::{Arc, Condvar, Mutex, MutexGuard, lock};
use crate::trace::Recorder;
use lock::{PyMutex, RwMutex};

/// `_Py_THREAD_DETACHED` and the other values of `tstate->state`.
pub const DETACHED: u32 = 0;
pub const ATTACHED: u32 = 1;
pub const SUSPENDED: u32 = 2;
pub const SHUTTING_DOWN: u32 = 3;
/// `_PY_EVAL_PLEASE_STOP_BIT`.
pub const PLEASE_STOP: u32 = 1 << 5;

/// The runtime's interpreters, threads and design.
#[derive(Clone, Debug)]
pub struct Config {
    /// Interpreters (1 or 2).
    pub interps: u8,
    /// What each thread may do; `starts_bound` threads exist at start,
    /// the others are created with [`Runtime::create`].
    pub roles: Vec<Role>,
    pub design: Design,
    pub hand_off: HandOff,
    /// Record spec events.
    pub trace: bool,
}

impl Config {
    /// The spec configuration a trace of this runtime replays under.
    pub fn spec(&self) -> SpecConfig {
        SpecConfig {
            interps: self.interps,
            roles: self.roles.clone(),
            max_pauses: u8::MAX,
            design: self.design,
        }
    }
}

/// A pause instance's fields under HEAD_LOCK.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StwFields {
    pub(crate) requested: bool,
    pub(crate) world_stopped: bool,
    pub(crate) countdown: i32,
    pub(crate) requester: Option<u8>,
}

/// Whether a thread state is in its interpreter's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listed {
    Unborn,
    Alive,
    /// Deleted, or unlinked by finalization.
    Gone,
}

/// What HEAD_LOCK (`runtime->interpreters.mutex`) protects.
#[derive(Debug)]
pub(crate) struct Head {
    /// Per pause instance, the global one first.
    pub(crate) stw: Vec<StwFields>,
    pub(crate) listed: Vec<Listed>,
    pub(crate) finalized: bool,
}

/// The stop events and the detach count that stands in for the timeout.
#[derive(Debug)]
pub(crate) struct Events {
    /// `stop_event` of each pause instance is set.
    pub(crate) set: Vec<bool>,
    /// Detaches so far (see the module doc).
    pub(crate) detaches: u64,
}

/// The shared part of a thread state.
#[derive(Debug)]
pub(crate) struct Tstate {
    pub(crate) interp: u8,
    /// `tstate->state`.
    pub(crate) state: AtomicU32,
    /// `tstate->eval_breaker` (only PLEASE_STOP is used).
    pub(crate) eval_breaker: AtomicU32,
    /// `_PyParkingLot_Park(&tstate->state, ...)`.
    pub(crate) park: Mutex<()>,
    pub(crate) unparked: Condvar,
}

/// One process: its interpreters, thread states, pause instances and locks.
#[derive(Debug)]
pub struct Runtime {
    pub(crate) cfg: Config,
    pub(crate) head: Mutex<Head>,
    pub(crate) tstates: Vec<Tstate>,
    /// Each instance's `mutex`, indexed like [`Head::stw`].
    pub(crate) stw_mutex: Vec<PyMutex>,
    /// `world_stopped` of each instance, readable without HEAD_LOCK
    /// (`_PyCriticalSection_BeginSlow` reads it so).
    pub(crate) world_stopped: Vec<AtomicBool>,
    pub(crate) rw: RwMutex,
    /// One object per interpreter.
    pub(crate) objects: Vec<PyMutex>,
    pub(crate) events: Mutex<Events>,
    pub(crate) events_changed: Condvar,
    /// Counts invariant checks that ran (a check that never runs proves
    /// nothing).
    pub(crate) checks: AtomicU64,
    /// The first failed check, raised once the step that found it has
    /// released its locks (see [`Runtime::step`]).
    pub(crate) failed: Mutex<Option<&'static str>>,
    pub(crate) trace: Recorder<Event>,
    /// The driver's hook around every step, when one is installed
    /// ([`Runtime::set_gate`]; std builds only).
    #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
    pub(crate) gate: std::sync::OnceLock<std::sync::Arc<dyn StepGate>>,
}

/// A hook around every spec step of a [`Runtime`], for a driver that
/// schedules the runtime's threads one step at a time (std builds only).
///
/// Every write to state that a spec event observes happens inside a step
/// (see `crate::trace`), and blocking happens only between steps, so a
/// driver that lets one step run at a time decides the execution: each
/// step sees the state the previous ones left, whatever the OS scheduler
/// does meanwhile. The conformance suite's guided explorer uses it to walk
/// the reference through the spec's interleavings.
#[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
pub trait StepGate: Send + Sync + std::fmt::Debug {
    /// Called by the stepping thread before a step; may block until the
    /// driver lets the step run.
    fn before(&self);
    /// Called by the same thread once the step's events are recorded and
    /// its locks released (before an invariant failure it found panics).
    fn after(&self);
}

impl Runtime {
    pub fn new(cfg: Config) -> Arc<Runtime> {
        assert!(
            (1..=MAX_INTERPS).contains(&cfg.interps),
            "1 to {MAX_INTERPS} interpreters"
        );
        assert!(
            (1..=MAX_THREADS).contains(&cfg.roles.len()),
            "1 to {MAX_THREADS} threads"
        );
        let spec = cfg.spec();
        if cfg.roles.len() <= cpyrt_spec::stw::MAX_THREADS {
            spec.validate().expect("a valid configuration");
        } else {
            // More threads than a spec state holds: no trace to replay, and
            // each role is checked on its own (the spec's role rules are
            // per thread).
            assert!(
                !cfg.trace,
                "a traced runtime holds at most {} threads (its trace replays in the spec)",
                cpyrt_spec::stw::MAX_THREADS
            );
            for r in &cfg.roles {
                SpecConfig {
                    roles: vec![*r],
                    ..spec.clone()
                }
                .validate()
                .expect("a valid configuration");
            }
        }
        let instances = 1 + cfg.interps as usize;
        let tstates = cfg
            .roles
            .iter()
            .map(|r| Tstate {
                interp: r.interp,
                // Bound threads start attached, as the spec's do.
                state: AtomicU32::new(if r.starts_bound { ATTACHED } else { DETACHED }),
                eval_breaker: AtomicU32::new(0),
                park: Mutex::new(()),
                unparked: Condvar::new(),
            })
            .collect();
        Arc::new(Runtime {
            head: Mutex::new(Head {
                stw: vec![StwFields::default(); instances],
                listed: cfg
                    .roles
                    .iter()
                    .map(|r| {
                        if r.starts_bound {
                            Listed::Alive
                        } else {
                            Listed::Unborn
                        }
                    })
                    .collect(),
                finalized: false,
            }),
            tstates,
            stw_mutex: (0..instances).map(|_| PyMutex::new(cfg.hand_off)).collect(),
            world_stopped: (0..instances).map(|_| AtomicBool::new(false)).collect(),
            rw: RwMutex::default(),
            objects: (0..cfg.interps)
                .map(|_| PyMutex::new(cfg.hand_off))
                .collect(),
            events: Mutex::new(Events {
                set: vec![false; instances],
                detaches: 0,
            }),
            events_changed: Condvar::new(),
            checks: AtomicU64::new(0),
            failed: Mutex::new(None),
            trace: Recorder::new(cfg.trace),
            #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
            gate: std::sync::OnceLock::new(),
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The events recorded so far.
    pub fn take_trace(&self) -> Vec<Event> {
        self.trace.take()
    }

    /// How many invariant checks ran.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Installs a [`StepGate`]: from now on every step waits for it. Set it
    /// before any thread uses the runtime; a second gate is refused.
    #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
    pub fn set_gate(&self, gate: std::sync::Arc<dyn StepGate>) -> Result<(), String> {
        self.gate
            .set(gate)
            .map_err(|_| "this runtime already has a step gate".to_string())
    }

    /// The handle of a thread that starts bound and attached.
    pub fn bound(rt: &Arc<Runtime>, tid: u8) -> Thread {
        assert!(
            rt.cfg.roles[tid as usize].starts_bound,
            "thread {tid} starts unbound"
        );
        Thread::new(Arc::clone(rt), tid)
    }

    pub(crate) fn head(&self) -> MutexGuard<'_, Head> {
        lock(&self.head)
    }

    /// Whether thread `t` is listed in an interpreter `scope` covers.
    pub(crate) fn in_scope(&self, head: &Head, t: usize, scope: Scope) -> bool {
        head.listed[t] == Listed::Alive && scope.covers(self.tstates[t].interp)
    }

    /// `decrement_stoptheworld_countdown` (HEAD_LOCK held). Returns the
    /// new countdown.
    pub(crate) fn decrement(&self, head: &mut Head, scope: Scope) -> i32 {
        let stw = &mut head.stw[scope.index()];
        stw.countdown -= 1;
        self.check(
            stw.countdown >= 0,
            "countdown_nonnegative: a pause's countdown went negative",
        );
        if stw.countdown == 0 {
            self.set_event(scope, true);
        }
        stw.countdown
    }

    pub(crate) fn set_event(&self, scope: Scope, value: bool) {
        let mut ev = lock(&self.events);
        ev.set[scope.index()] = value;
        if value {
            self.events_changed.notify_all();
        }
    }

    /// A thread detached: wake waiting requesters so they rescan (the
    /// stand-in for the 1 ms timeout).
    pub(crate) fn note_detach(&self) {
        let mut ev = lock(&self.events);
        ev.detaches += 1;
        self.events_changed.notify_all();
    }

    /// Stores `state` into thread `t`'s state and wakes it if it waits to
    /// attach (`_PyParkingLot_UnparkAll(&tstate->state)`).
    pub(crate) fn store_and_unpark(&self, t: usize, state: u32) {
        let ts = &self.tstates[t];
        // SeqCst as `_Py_atomic_store_int`; the park mutex below orders it
        // before the waiter's next check.
        ts.state.store(state, Ordering::SeqCst);
        let _guard = lock(&ts.park);
        ts.unparked.notify_all();
    }

    /// The process exits after `Py_FinalizeEx`: threads still parked on a
    /// lock (daemon threads, SHUTTING_DOWN, perhaps waiting for a lock a
    /// hung thread owns) stop with it. Records nothing: no spec step.
    pub(crate) fn exit_process(&self) {
        for m in self.stw_mutex.iter().chain(&self.objects) {
            m.abandon();
        }
        self.rw.abandon();
    }

    /// An invariant check: when it fails, the step that made it panics
    /// with `what` once it has released its locks.
    pub(crate) fn check(&self, ok: bool, what: &'static str) {
        if CHECK_INVARIANTS {
            self.checks.fetch_add(1, Ordering::Relaxed);
            if !ok {
                lock(&self.failed).get_or_insert(what);
            }
        }
    }

    /// Runs one spec step ([`Recorder::step`]), then panics if a check in
    /// it failed. The panic comes after the step's guards are dropped: a
    /// model checker tears down a failed execution, and a guard of its
    /// mutexes held by a panicking thread must not outlive the execution.
    pub(crate) fn step<R>(&self, op: impl FnOnce(&mut crate::trace::Emit<'_, Event>) -> R) -> R {
        #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
        let gate = self.gate.get();
        #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
        if let Some(g) = gate {
            g.before();
        }
        let r = self.trace.step(op);
        #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
        if let Some(g) = gate {
            g.after();
        }
        let failed = lock(&self.failed).take();
        if let Some(what) = failed {
            panic!("{what}");
        }
        r
    }
}
