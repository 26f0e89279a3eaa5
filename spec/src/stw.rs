//! Stop-the-world pauses and the thread-state machine (free-threaded build).
//!
//! # Protocol
//! Follows `Python/pystate.c` of CPython 3.14 (`stop_the_world`,
//! `start_the_world`, `park_detached_threads`,
//! `decrement_stoptheworld_countdown`, `tstate_try_attach`,
//! `tstate_wait_attach`, `_PyThreadState_Attach`, `detach_thread`,
//! `_PyThreadState_Suspend`, `_PyThreadState_SetShuttingDown`,
//! `init_threadstate`/`new_threadstate`, `tstate_delete_common`,
//! `_PyThreadState_RemoveExcept`), `_Py_HandlePending` in
//! `Python/ceval_gil.c` (the `_PY_EVAL_PLEASE_STOP_BIT` branch),
//! `Python/critical_section.c` (`_PyCriticalSection_BeginSlow`,
//! `_PyCriticalSection_SuspendAll`, `_PyCriticalSection_Resume`) and
//! `Python/lock.c` (`_PyMutex_LockTimed`, `mutex_unpark` with its 1 ms
//! fairness hand-off, `_PyRWMutex_RLock`/`Lock`/`RUnlock`/`Unlock`,
//! `PyEvent_WaitTimed`). The prose version is `spec/stw.md`.
//!
//! A thread state is DETACHED, ATTACHED, SUSPENDED or SHUTTING_DOWN. Only
//! the bound thread attaches (CAS DETACHED -> ATTACHED) and detaches; a
//! requester parks detached threads (CAS DETACHED -> SUSPENDED) and sets
//! PLEASE_STOP on attached ones, which suspend themselves at their next
//! eval-breaker check and decrement the countdown; only the requester
//! moves threads out of SUSPENDED, in `start_the_world`. There is one pause
//! instance per interpreter and one global one, each with its own mutex;
//! the runtime read-write mutex lets per-interpreter pauses of different
//! interpreters overlap and keeps a global pause apart from all of them.
//!
//! # Abstraction
//! Each event is one atomic step under sequential consistency: an atomic
//! instruction, one section under HEAD_LOCK, or one attempt of a lock.
//!
//! - HEAD_LOCK is the unit of atomicity rather than a field: every read or
//!   write of a field it protects (`requested`, `countdown`, `requester`,
//!   the thread lists) is inside one event that is the whole section. That
//!   is exact because no code path parks or waits while holding it (it is
//!   taken with `_Py_LOCK_DONT_DETACH` and its holders never block), so a
//!   thread waiting for it is only delayed.
//! - PyMutex (object locks and each pause's `mutex`) is an owner plus the
//!   threads parked on it. A failed attempt parks the thread, which detaches
//!   first (`_PY_LOCK_DETACH`): its critical sections are released. An
//!   unlock with parked waiters wakes one of them, chosen freely (CPython's
//!   parking lot is FIFO: the model allows more orders, never fewer), and
//!   either hands it ownership (it waited over 1 ms, `mutex_unpark`) or
//!   leaves the lock free for it to retry. Spinning is a retry.
//! - The read-write mutex is `{writer, readers, has_parked}` with the exact
//!   rules of `Python/lock.c`: a parked writer blocks new readers, a write
//!   unlock clears `has_parked` and wakes everyone, a read unlock that
//!   leaves no reader wakes everyone and keeps `has_parked`.
//! - A thread holds at most one critical section, on its interpreter's
//!   object. That is the smallest setting in which detaching releases a
//!   lock that another thread waits for; nested sections add lock orders
//!   between objects, which are not this mechanism's subject.
//! - The requester always has a thread state (`requester` is never NULL:
//!   `_PyEval_EnableGILTransient` is left out), and a requester takes a
//!   critical section inside its pause only in a per-interpreter pause:
//!   CPython's global pauses (fork, finalization, `sys._current_frames`)
//!   take none, and `_PyCriticalSection_BeginSlow` only skips locking when
//!   the interpreter's own world is stopped.
//! - The stop event's 1 ms timeout is an event that is always enabled
//!   while the requester waits; the attached wait of CPython's design takes
//!   the timeout only while the event is unset (a timeout that finds the
//!   event set returns "set", as `PyEvent_WaitTimed` reads it last).
//! - `world_stopped = 1`, written after the last HEAD_LOCK section of
//!   `stop_the_world`, is part of the step that found every thread stopped;
//!   only the requester and critical-section entry read it.
//! - Detaching writes the new state together with releasing the thread's
//!   critical sections (`detach_thread` releases first, then stores): no
//!   other thread can tell the two orders apart.
//! - Finalization (`Py_FinalizeEx`) is its global pause, then
//!   `_PyThreadState_RemoveExcept` and `_PyThreadState_SetShuttingDown` of
//!   every other thread of its interpreter in one step, then
//!   `start_the_world`; the finalizer's own thread state is then deleted.
//!   It is modelled with one interpreter only: finalizing subinterpreters is
//!   a separate protocol.
//! - Omitted: the GIL (disabled), QSBR and the eval breaker's other bits
//!   (they do not block), `_PyEval_EnableGILTransient`, fork (the `fork`
//!   mechanism), thread-state reference counts.
//!
//! # Properties
//! See [`INVARIANTS`], [`TRANSITION_INVARIANTS`] and [`SOMETIMES`]; each
//! carries its one-sentence statement. `no_deadlock` is judged on an
//! explicit wait-for relation: each blocked thread names the threads that
//! can release it, and a deadlock is a non-empty set of blocked threads
//! that only threads of the same set can release (see [`deadlocked`]).
//!
//! # Limits
//! 1 to [`MAX_THREADS`] threads, 1 to [`MAX_INTERPS`] interpreters, one
//! object per interpreter, `max_pauses` pause requests per thread. The
//! countdown is an `i8` that stops at [`COUNTDOWN_FLOOR`]: broken designs
//! that count a thread twice would otherwise run it down forever, and any
//! negative value already violates `countdown_nonnegative`.

use serde::{Deserialize, Serialize};

use crate::{Invariant, LeadsTo, Rejection, Spec, TransitionInvariant};

mod enabled;
mod props;
mod step;
#[cfg(test)]
mod tests;

pub use props::{INVARIANTS, LIVENESS, SOMETIMES, TRANSITION_INVARIANTS, blocked_on, deadlocked};

/// Largest thread count (thread sets are `u8` bitmasks; 4 keeps models small).
pub const MAX_THREADS: usize = 4;
/// Largest interpreter count.
pub const MAX_INTERPS: u8 = 2;
/// The lowest value the countdown takes; see the module doc's limits.
pub const COUNTDOWN_FLOOR: i8 = -1;

/// Design switches. [`Design::CPYTHON`] is the design CPython 3.14 ships;
/// [`Design::CPYTHON_MAIN`] is main's lock order; each other setting is a
/// broken design from CPython's history or a plausible mistake, and the
/// models pin the counterexample it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Design {
    /// `stop_the_world` takes the runtime read-write mutex before the
    /// instance's mutex (main); off: the instance's mutex first (3.14).
    /// Release is in the reverse order either way.
    pub rw_mutex_first: bool,
    /// Pauses take the runtime read-write mutex (write for the global
    /// pause, read for a per-interpreter one). Off: they do not, and
    /// nothing keeps a global and a per-interpreter pause apart.
    pub pauses_take_rw_mutex: bool,
    /// The requester waits for the stop event without detaching
    /// (`detach = 0`, the gh-118332 fix, PR 118412). Off: it detaches while
    /// waiting, releasing its critical section, and resumes it on waking.
    pub requester_stays_attached: bool,
    /// Parked and self-suspended threads are stored SUSPENDED. Off: they
    /// are left (or stored) DETACHED, the two-state design before the
    /// third state was added (gh-109549).
    pub park_to_suspended: bool,
    /// `tstate_wait_attach` waits while the state is SUSPENDED. Off: the
    /// attach CAS also accepts SUSPENDED, so a thread leaves a pause by
    /// itself.
    pub suspended_blocks_attach: bool,
    /// `init_threadstate` creates a thread state SUSPENDED while a pause
    /// covering its interpreter is requested. Off: it starts DETACHED.
    pub new_thread_starts_suspended: bool,
    /// `tstate_delete_common` decrements the countdown of a requested
    /// pause for a thread that was counted and never suspended. Off: it
    /// does not, and the requester waits for a thread that is gone.
    pub delete_decrements_countdown: bool,
    /// `_PyCriticalSection_BeginSlow` skips locking while the
    /// interpreter's world is stopped (gh-144513, PR 144524). Off: a
    /// requester entering a critical section inside its pause locks the
    /// object, whose lock may have been handed to a suspended thread.
    pub skip_cs_lock_while_stopped: bool,
}

impl Design {
    /// The design as CPython 3.14 ships it.
    pub const CPYTHON: Design = Design {
        rw_mutex_first: false,
        pauses_take_rw_mutex: true,
        requester_stays_attached: true,
        park_to_suspended: true,
        suspended_blocks_attach: true,
        new_thread_starts_suspended: true,
        delete_decrements_countdown: true,
        skip_cs_lock_while_stopped: true,
    };

    /// CPython main: the read-write mutex is taken before the instance's.
    pub const CPYTHON_MAIN: Design = Design {
        rw_mutex_first: true,
        ..Design::CPYTHON
    };

    /// The locks `stop_the_world` takes, in order.
    pub fn lock_order(&self) -> &'static [StwLock] {
        match (self.pauses_take_rw_mutex, self.rw_mutex_first) {
            (false, _) => &[StwLock::Mutex],
            (true, false) => &[StwLock::Mutex, StwLock::RwMutex],
            (true, true) => &[StwLock::RwMutex, StwLock::Mutex],
        }
    }
}

/// What one thread's program may do. The models choose roles per
/// configuration; a thread never does what its role leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The interpreter its thread state belongs to.
    pub interp: u8,
    /// Starts attached with a thread state. Off: starts without one and
    /// creates it (`new_threadstate`) at any moment, pauses included.
    pub starts_bound: bool,
    /// May request a pause of its own interpreter (`_PyEval_StopTheWorld`).
    pub interp_pauses: bool,
    /// May request a global pause (`_PyEval_StopTheWorldAll`).
    pub global_pauses: bool,
    /// May finalize the runtime (`Py_FinalizeEx`'s pause), once.
    pub finalizes: bool,
    /// May enter and leave a critical section on its interpreter's object.
    pub critical_sections: bool,
    /// May detach around a blocking call (`Py_BEGIN_ALLOW_THREADS`).
    pub blocking_calls: bool,
    /// May delete its own thread state (`_PyThreadState_DeleteCurrent`).
    pub exits: bool,
}

/// Bounds, roles and design of one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Number of interpreters (1 to [`MAX_INTERPS`]); interpreter 0 is the
    /// main one.
    pub interps: u8,
    /// One role per thread (1 to [`MAX_THREADS`] threads).
    pub roles: Vec<Role>,
    /// Pause requests each thread may make (finalization not counted).
    pub max_pauses: u8,
    pub design: Design,
}

impl Config {
    /// Checks the bounds; the error names the bound and its range.
    pub fn validate(&self) -> Result<(), String> {
        if self.interps == 0 || self.interps > MAX_INTERPS {
            return Err(format!(
                "interps must be between 1 and {MAX_INTERPS}, got {}",
                self.interps
            ));
        }
        if self.roles.is_empty() || self.roles.len() > MAX_THREADS {
            return Err(format!(
                "threads must be between 1 and {MAX_THREADS}, got {}",
                self.roles.len()
            ));
        }
        for (t, r) in self.roles.iter().enumerate() {
            if r.interp >= self.interps {
                return Err(format!(
                    "thread {t} is in interpreter {}, but there are {}",
                    r.interp, self.interps
                ));
            }
            if r.finalizes && (self.interps != 1 || !r.starts_bound) {
                return Err(format!(
                    "thread {t} finalizes: finalization is modelled with one interpreter and a bound thread"
                ));
            }
        }
        Ok(())
    }
}

/// A pause instance: the global one or one interpreter's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// `_PyRuntime.stoptheworld` (`is_global`).
    Global,
    /// `interp->stoptheworld`.
    Interp(u8),
}

impl Scope {
    /// Index into [`State::stw`]: the global instance first.
    pub fn index(self) -> usize {
        match self {
            Scope::Global => 0,
            Scope::Interp(i) => 1 + i as usize,
        }
    }

    /// Whether the pause covers threads of interpreter `interp`.
    pub fn covers(self, interp: u8) -> bool {
        match self {
            Scope::Global => true,
            Scope::Interp(i) => i == interp,
        }
    }
}

/// `tstate->state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TState {
    Detached,
    Attached,
    Suspended,
    ShuttingDown,
}

/// Where a thread state is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Life {
    /// No thread state yet.
    Unborn,
    /// In its interpreter's thread list.
    Alive,
    /// Deleted by its own thread (`tstate_delete_common`).
    Exited,
    /// Unlinked by finalization and SHUTTING_DOWN; the OS thread runs on
    /// until it next attaches.
    Removed,
    /// Hanging forever in `_PyThreadState_HangThread`.
    Hung,
}

/// The thread's critical section (`tstate->critical_section`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cs {
    None,
    /// Active: the object's lock is held.
    Held(u8),
    /// Suspended by a detach: the lock was released (or handed on) and is
    /// re-acquired on attach (`_PyCriticalSection_Resume`).
    Released(u8),
}

/// A lock or event a thread can park on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Lock {
    /// The PyMutex of object `o` (`ob_mutex`).
    Object(u8),
    /// A pause instance's `mutex`.
    StwMutex(Scope),
    /// `_PyRuntime.stoptheworld_mutex`.
    RwMutex,
    /// A pause's `stop_event` (only a requester that detaches parks on it).
    StopEvent(Scope),
}

/// The two locks `stop_the_world` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StwLock {
    /// The instance's `mutex`.
    Mutex,
    /// The runtime read-write mutex (write for global, read otherwise).
    RwMutex,
}

/// Where the thread is in the attach/lock machinery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum At {
    /// Running the job's next step (attached, except in `Countdown`).
    Go,
    /// Parked on a lock; only another thread's unlock (or, for the stop
    /// event, a timeout) moves it on.
    Parked(Lock),
    /// In `_PyThreadState_Attach` (or still in the blocking call that
    /// precedes it): the next step is the CAS to ATTACHED.
    Attach,
    /// Attached; re-acquiring the critical section released on detach.
    Resume,
}

/// A phase of `stop_the_world` / the pause / `start_the_world`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Taking the k-th lock of [`Design::lock_order`].
    Lock(u8),
    /// Locks held: the HEAD_LOCK section that counts and first parks.
    Begin,
    /// `park_detached_threads` again, after a timeout.
    Scan,
    /// Waiting for the stop event.
    Wait,
    /// Woken from a detached wait (only when the requester detaches).
    Woken,
    /// The world is stopped.
    Stopped,
    /// Entering a critical section inside the pause: retrying its lock.
    PauseLock(u8),
    /// Inside a critical section entered during the pause.
    InPauseCs(u8),
    /// The pause's work is done (its one critical section ended): only
    /// `start_the_world` is left. The work of a pause is finite.
    PauseDone,
    /// `start_the_world` done: releasing the k-th lock of the reverse order.
    Unlock(u8),
}

/// What the thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Running bytecode.
    Run,
    /// `Py_BEGIN_CRITICAL_SECTION` on object `o`: its PyMutex_Lock retries.
    Lock(u8),
    /// `_PyThreadState_Suspend` after the detach: decrementing the countdown
    /// of the pause it chose.
    Countdown(Scope),
    /// Requesting, holding or ending a pause. `finalizing` marks
    /// `Py_FinalizeEx`'s pause.
    Stw {
        scope: Scope,
        phase: Phase,
        finalizing: bool,
    },
    /// Finished (the finalizer after `Py_FinalizeEx`).
    Done,
}

/// Per-thread state: the thread state's fields and the program counter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thread {
    pub interp: u8,
    pub life: Life,
    /// `tstate->state`.
    pub state: TState,
    /// `_PY_EVAL_PLEASE_STOP_BIT` of `tstate->eval_breaker`.
    pub please_stop: bool,
    pub cs: Cs,
    pub job: Job,
    pub at: At,
    /// Pause requests made so far.
    pub pauses: u8,
    /// Ghost: the thread state was created while a pause covering its
    /// interpreter was requested (for the reachability goal only).
    pub created_in_pause: bool,
}

/// One pause instance (`struct _stoptheworld_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stw {
    /// Owner of `mutex`.
    pub mutex: Option<u8>,
    pub requested: bool,
    pub world_stopped: bool,
    /// `thread_countdown`.
    pub countdown: i8,
    /// `stop_event` is set.
    pub stop_event: bool,
    pub requester: Option<u8>,
}

/// `_PyRuntime.stoptheworld_mutex` (`_PyRWMutex`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RwMutex {
    pub writer: Option<u8>,
    /// Readers holding it, as a thread bitmask.
    pub readers: u8,
    /// `_Py_HAS_PARKED`.
    pub has_parked: bool,
}

/// The abstract state: threads, pause instances, the read-write mutex and
/// the object locks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    pub threads: Vec<Thread>,
    /// The global instance first, then one per interpreter.
    pub stw: Vec<Stw>,
    pub rw: RwMutex,
    /// Owner of each object's PyMutex (object `o` belongs to interpreter `o`).
    pub objects: Vec<Option<u8>>,
    /// `Py_FinalizeEx` has removed the other thread states.
    pub finalized: bool,
    /// The configuration's design, constant: which waits block depends on
    /// it, and the properties are functions of the state alone.
    pub design: Design,
}

impl State {
    pub fn stw(&self, scope: Scope) -> &Stw {
        &self.stw[scope.index()]
    }

    /// Whether thread `t` is in the thread list of an interpreter `scope`
    /// covers (`_Py_FOR_EACH_STW_INTERP` and `_Py_FOR_EACH_TSTATE_UNLOCKED`).
    pub fn in_scope(&self, t: usize, scope: Scope) -> bool {
        let th = &self.threads[t];
        th.life == Life::Alive && scope.covers(th.interp)
    }

    /// Threads parked on `lock`, in index order.
    pub fn parked_on(&self, lock: Lock) -> impl Iterator<Item = u8> + '_ {
        self.threads
            .iter()
            .enumerate()
            .filter(move |(_, th)| th.at == At::Parked(lock))
            .map(|(t, _)| t as u8)
    }

    /// The requested pauses that cover interpreter `interp`.
    pub fn pauses_covering(&self, interp: u8) -> impl Iterator<Item = Scope> + '_ {
        [Scope::Global, Scope::Interp(interp)]
            .into_iter()
            .filter(|s| s.index() < self.stw.len() && self.stw(*s).requested)
    }
}

/// A PyMutex unlock's effect on its parked waiters: which one is unparked,
/// and whether ownership is handed to it (`mutex_unpark` when it waited
/// longer than `TIME_TO_BE_FAIR_NS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Wake {
    pub thread: u8,
    pub handed: bool,
}

/// One step of the protocol. Every event names the thread that takes it.
/// Choices (which pause, which waiter an unlock wakes) are inputs; the
/// other fields are what the step observed, which `step` checks against
/// what the spec computes, so a recorded trace is checked value by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    /// `new_threadstate`: the thread state is created, SUSPENDED if a
    /// pause covering its interpreter is requested (`init_threadstate`).
    Create { thread: u8, suspended: bool },
    /// `tstate_try_attach`: CAS DETACHED -> ATTACHED.
    Attach { thread: u8 },
    /// `tstate_wait_attach` found SHUTTING_DOWN: `_PyThreadState_HangThread`.
    Hang { thread: u8 },
    /// `_PyCriticalSection_Resume`: re-lock the critical section's object;
    /// `parked` when it was held (the thread detaches and parks).
    Resume {
        thread: u8,
        object: u8,
        parked: bool,
    },
    /// `Py_BEGIN_CRITICAL_SECTION`: a first attempt, or (`retry`) the
    /// PyMutex_Lock loop's next attempt after waking; `parked` when the
    /// lock was held.
    BeginCs {
        thread: u8,
        object: u8,
        retry: bool,
        parked: bool,
    },
    /// `Py_END_CRITICAL_SECTION`: unlock, waking a parked waiter if any.
    EndCs {
        thread: u8,
        object: u8,
        wake: Option<Wake>,
    },
    /// `Py_BEGIN_ALLOW_THREADS`: detach around a blocking call.
    Syscall { thread: u8, wake: Option<Wake> },
    /// `_Py_HandlePending` saw PLEASE_STOP: clear it, pick the requested
    /// pause (global first) under HEAD_LOCK and detach to SUSPENDED, or to
    /// DETACHED when none is requested.
    HandlePending {
        thread: u8,
        suspend: Option<Scope>,
        wake: Option<Wake>,
    },
    /// `_PyThreadState_Suspend`'s HEAD_LOCK section: decrement the chosen
    /// pause's countdown (carried: its value after) and set the event at 0.
    Countdown {
        thread: u8,
        scope: Scope,
        countdown: i8,
    },
    /// `_PyThreadState_DeleteCurrent` -> `tstate_delete_common`.
    Exit { thread: u8 },
    /// `Py_FinalizeEx` begins: the thread will take the global pause.
    Shutdown { thread: u8 },
    /// `stop_the_world` takes its next lock; `start` when this attempt
    /// begins a request of `scope` (`_PyEval_StopTheWorld` is called),
    /// `parked` when the lock was busy (the thread detaches and parks).
    StwLock {
        thread: u8,
        scope: Scope,
        start: bool,
        lock: StwLock,
        parked: bool,
        wake: Option<Wake>,
    },
    /// The first HEAD_LOCK section of `stop_the_world`: set `requested`,
    /// count the other threads, then `park_detached_threads`. Carries the
    /// countdown after it and whether the world is now stopped.
    StwBegin {
        thread: u8,
        scope: Scope,
        countdown: i8,
        stopped: bool,
    },
    /// `park_detached_threads` after a timeout.
    StwScan {
        thread: u8,
        scope: Scope,
        countdown: i8,
        stopped: bool,
    },
    /// The detaching requester parks on the stop event.
    StwPark {
        thread: u8,
        scope: Scope,
        wake: Option<Wake>,
    },
    /// Its wait ends (set event or 1 ms timeout); it re-attaches next.
    StwUnpark { thread: u8, scope: Scope },
    /// `PyEvent_WaitTimed` returns: `stopped` when the event was set, else
    /// it timed out and scans again.
    StwWait {
        thread: u8,
        scope: Scope,
        stopped: bool,
    },
    /// The requester enters a critical section on `object` inside its
    /// pause and locks it (only when the design does not skip that lock).
    PauseCs {
        thread: u8,
        object: u8,
        parked: bool,
    },
    /// `_PyThreadState_RemoveExcept` and `_PyThreadState_SetShuttingDown`
    /// on every other thread state of the finalizer's interpreter.
    Finalize { thread: u8 },
    /// `start_the_world`'s HEAD_LOCK section: SUSPENDED -> DETACHED.
    StartWorld { thread: u8, scope: Scope },
    /// `start_the_world` releases its next lock.
    StwUnlock {
        thread: u8,
        scope: Scope,
        lock: StwLock,
        wake: Option<Wake>,
    },
}

impl Event {
    pub fn thread(&self) -> u8 {
        use Event::*;
        match *self {
            Create { thread, .. }
            | Attach { thread }
            | Hang { thread }
            | Resume { thread, .. }
            | BeginCs { thread, .. }
            | EndCs { thread, .. }
            | Syscall { thread, .. }
            | HandlePending { thread, .. }
            | Countdown { thread, .. }
            | Exit { thread }
            | Shutdown { thread }
            | StwLock { thread, .. }
            | StwBegin { thread, .. }
            | StwScan { thread, .. }
            | StwPark { thread, .. }
            | StwUnpark { thread, .. }
            | StwWait { thread, .. }
            | PauseCs { thread, .. }
            | Finalize { thread }
            | StartWorld { thread, .. }
            | StwUnlock { thread, .. } => thread,
        }
    }

    /// The event's kind, without its values (for coverage and fairness).
    /// The first `StwLock` of a request is its own kind, `StwRequest`, and a
    /// retried `BeginCs` is `CsLockRetry`: a thread chooses to request a
    /// pause or enter a critical section, but must go on once it has.
    pub fn kind(&self) -> &'static str {
        use Event::*;
        match self {
            Create { .. } => "Create",
            Attach { .. } => "Attach",
            Hang { .. } => "Hang",
            Resume { .. } => "Resume",
            BeginCs { retry: false, .. } => "BeginCs",
            BeginCs { .. } => "CsLockRetry",
            EndCs { .. } => "EndCs",
            Syscall { .. } => "Syscall",
            HandlePending { .. } => "HandlePending",
            Countdown { .. } => "Countdown",
            Exit { .. } => "Exit",
            Shutdown { .. } => "Shutdown",
            StwLock { start: true, .. } => "StwRequest",
            StwLock { .. } => "StwLock",
            StwBegin { .. } => "StwBegin",
            StwScan { .. } => "StwScan",
            StwPark { .. } => "StwPark",
            StwUnpark { .. } => "StwUnpark",
            StwWait { .. } => "StwWait",
            PauseCs { .. } => "PauseCs",
            Finalize { .. } => "Finalize",
            StartWorld { .. } => "StartWorld",
            StwUnlock { .. } => "StwUnlock",
        }
    }
}

/// Every event kind, in declaration order.
pub const EVENT_KINDS: &[&str] = &[
    "Create",
    "Attach",
    "Hang",
    "Resume",
    "BeginCs",
    "CsLockRetry",
    "EndCs",
    "Syscall",
    "HandlePending",
    "Countdown",
    "Exit",
    "Shutdown",
    "StwRequest",
    "StwLock",
    "StwBegin",
    "StwScan",
    "StwPark",
    "StwUnpark",
    "StwWait",
    "PauseCs",
    "Finalize",
    "StartWorld",
    "StwUnlock",
];

pub struct Stop;

impl Spec for Stop {
    type Config = Config;
    type State = State;
    type Event = Event;
    const NAME: &'static str = "stw";

    fn init(cfg: &Config) -> State {
        let threads = cfg
            .roles
            .iter()
            .map(|r| Thread {
                interp: r.interp,
                life: if r.starts_bound {
                    Life::Alive
                } else {
                    Life::Unborn
                },
                state: if r.starts_bound {
                    TState::Attached
                } else {
                    TState::Detached
                },
                please_stop: false,
                cs: Cs::None,
                job: Job::Run,
                at: At::Go,
                pauses: 0,
                created_in_pause: false,
            })
            .collect();
        let idle = Stw {
            mutex: None,
            requested: false,
            world_stopped: false,
            countdown: 0,
            stop_event: false,
            requester: None,
        };
        State {
            threads,
            stw: vec![idle; 1 + cfg.interps as usize],
            rw: RwMutex::default(),
            objects: vec![None; cfg.interps as usize],
            finalized: false,
            design: cfg.design,
        }
    }

    fn enabled(cfg: &Config, state: &State, out: &mut Vec<Event>) {
        enabled::enabled(cfg, state, out)
    }

    fn step(cfg: &Config, state: &State, event: &Event) -> Result<State, Rejection> {
        step::step(cfg, state, event)
    }

    fn actor(event: &Event) -> usize {
        event.thread() as usize
    }

    fn invariants() -> &'static [Invariant<State>] {
        INVARIANTS
    }

    fn transition_invariants() -> &'static [TransitionInvariant<State>] {
        TRANSITION_INVARIANTS
    }

    fn sometimes() -> &'static [Invariant<State>] {
        SOMETIMES
    }

    fn liveness() -> &'static [LeadsTo<State>] {
        LIVENESS
    }
}
