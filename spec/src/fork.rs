//! Fork: `PyOS_BeforeFork`, `fork()`, `PyOS_AfterFork_Parent` and
//! `PyOS_AfterFork_Child` with the thread handles, locks, pauses and QSBR
//! slots they have to repair.
//!
//! # Protocol
//! Follows `Modules/posixmodule.c` (`PyOS_BeforeFork`,
//! `PyOS_AfterFork_Parent`, `PyOS_AfterFork_Child`), `Python/pystate.c`
//! (`_PyRuntimeState_ReInitThreads` with `LOCKS_INIT`,
//! `_PyThreadState_RemoveExcept`, `_PyThreadState_DeleteList`,
//! `stop_the_world`, `start_the_world`, `park_detached_threads`,
//! `_PyThreadState_Suspend`, `tstate_delete_common`, `init_threadstate`),
//! `Python/ceval_gil.c` (`_PyEval_ReInitThreads`), `Python/qsbr.c`
//! (`_Py_qsbr_after_fork`, `qsbr_poll_scan`), `Python/import.c`
//! (`_PyImport_AcquireLock`, `_PyImport_ReleaseLock`,
//! `_PyImport_ReInitLock`) and the thread handles of
//! `Modules/_threadmodule.c` (`ThreadHandle_start`, `thread_run`,
//! `ThreadHandle_join` with its once-flag, `ThreadHandle_decref`,
//! `_PyThread_AfterFork`), as of CPython 3.14 with gh-134381 (PR 134514).
//! The prose version is `spec/fork.md`.
//!
//! Before `fork()` the forking thread takes the import lock, stops the
//! world (free-threaded build) and takes `HEAD_LOCK`, so that no other
//! thread is running Python code, holds the import lock or is half-way
//! through a change to the runtime's lists when memory is copied. The
//! parent undoes the three in reverse. The child, where only the forking
//! thread exists, re-initialises the runtime's mutexes, marks the handles
//! of the threads that did not survive as done and not joinable, releases
//! their QSBR slots, re-creates and takes the GIL, unlinks their thread
//! states, restarts the world, clears the unlinked thread states (running
//! destructors), and hands the import lock back to itself and releases it.
//!
//! # Abstraction
//! Each event is one atomic step under sequential consistency: an atomic
//! instruction, or a section under one lock. Thread 0 ([`FORKER`]) is the
//! main thread and the one that forks; threads 1.. are `threading`
//! threads, each with its `ThreadHandle` (thread 0's handle is the main
//! thread's, which `_PyThread_AfterFork` skips by ident).
//!
//! - `fork()` is one event that chooses which process the model follows
//!   from then on ([`Process`]). Each property is about one process, so
//!   following one at a time loses nothing. In the child every thread but
//!   the forker stops taking steps while its memory (lock owners, thread
//!   state, QSBR slot, handle) stays as it was copied.
//! - Anything that can run Python code is an event placed wherever code
//!   can run: `Gc` (a collection or a refcount merge that frees a handle
//!   object nobody references) and the destructors that
//!   `_PyThreadState_DeleteList` runs ([`ChildStep::ClearThreadStates`]).
//! - The runtime's mutexes in `LOCKS_INIT` are two locks: `HEAD_LOCK` and
//!   one more ([`State::runtime_mutex`], standing for the extension cache,
//!   atexit, audit-hook and allocator mutexes, which a thread may hold
//!   while detached). The parking lot, the GIL's internal mutex and
//!   condition variables and QSBR's `shared->mutex` are re-created
//!   wholesale in the child and never held across an event here.
//! - Stop-the-world is the protocol of the `stw` mechanism reduced to what
//!   fork needs: the global pause (taken by the forker) and one
//!   interpreter's pause (a free-threaded GC, run by [`GC_THREAD`] in the
//!   parent and by the forker in the child). The pause's `mutex` and the
//!   runtime's read-write mutex are one owner per pause, with the two
//!   pauses excluding each other; lock order does not matter because no
//!   thread holds one while waiting for the other.
//! - QSBR keeps what fork touches: one slot per thread (allocated, `seq`),
//!   `wr_seq`, `rd_seq` and one retirement in the child. The `qsbr`
//!   mechanism checks the protocol itself.
//! - The import lock is a recursive mutex whose owner the child re-reads
//!   (gh-126688). Workers hold it at most one level deep.
//! - The GIL is either disabled (free-threaded build, the default
//!   configuration) or a lock every attached thread holds
//!   ([`Config::gil`]); its hand-off is the `gil` mechanism's subject.
//! - Omitted: `before_forkers`/`after_forkers` beyond the code they may
//!   run, signals, the remote-debugger and asyncio resets, the perf
//!   trampoline, subinterpreters (`_PyInterpreterState_DeleteExceptMain`)
//!   and biased reference counting (`_Py_brc_after_fork`), whose merge is
//!   one of the things `Gc` stands for.
//!
//! # Properties
//! See [`INVARIANTS`], [`TRANSITION_INVARIANTS`] and [`SOMETIMES`]; each
//! carries its one-sentence statement. The child's progress (it can stop
//! the world, take the import lock, reclaim QSBR memory, start and join
//! threads) is stated as reachability goals, and as [`LIVENESS`]: from
//! every state of a child whose handler has finished ([`child_ready`]),
//! every fair run reaches a pause, an import and a reclamation.
//!
//! # Limits
//! 1 to [`MAX_THREADS`] threads, one fork per run, one QSBR retirement in
//! the child, workers hold the import lock one level deep.

use serde::{Deserialize, Serialize};

use crate::{Invariant, LeadsTo, Rejection, Spec, TransitionInvariant};

mod event;
mod props;
mod protocol;
mod state;
mod step;
#[cfg(test)]
mod tests;

pub use event::*;
pub use props::{INVARIANTS, LIVENESS, SOMETIMES, TRANSITION_INVARIANTS, child_ready};
pub use state::*;

/// The thread that forks: the main thread, index 0.
pub const FORKER: u8 = 0;
/// The worker that runs an interpreter pause (a free-threaded GC) in the
/// parent. In the child the forker runs it.
pub const GC_THREAD: u8 = 1;
/// Largest thread count a configuration may use. Each thread carries a
/// handle, a thread state and a QSBR slot; 3 keeps the model small while
/// letting one worker start another.
pub const MAX_THREADS: usize = 3;
/// `QSBR_OFFLINE`.
pub const OFFLINE: u8 = 0;
/// `QSBR_INITIAL`.
pub const INITIAL_SEQ: u8 = 1;
/// `QSBR_INCR`.
pub const SEQ_INCR: u8 = 2;

/// Design switches. [`Design::CPYTHON`] is the design as CPython ships it;
/// each other setting is a broken design from CPython's history or a
/// plausible mistake, and the models pin the counterexample it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Design {
    /// `PyOS_BeforeFork` stops the world (`_PyEval_StopTheWorldAll`) and
    /// both processes restart it (gh-116522, PR 116607). Off: the design
    /// before it, where other threads may be attached, mid-pause or
    /// holding a QSBR sequence when memory is copied.
    pub stop_world_across_fork: bool,
    /// `PyOS_BeforeFork` takes `HEAD_LOCK` last and holds it across
    /// `fork()` (gh-116522). Off: a thread without a thread state (one
    /// finishing `thread_run`) may be half-way through a change to a
    /// runtime list when memory is copied (the setting of bpo-30395).
    pub hold_head_lock_across_fork: bool,
    /// The child re-initialises the runtime's mutexes before it uses any
    /// (bpo-30395, PR 1740; now `LOCKS_INIT` in
    /// `_PyRuntimeState_ReInitThreads`). Off: it keeps them as copied.
    pub reinit_locks_in_child: bool,
    /// `_PyThread_AfterFork` marks the handles of dead threads done and not
    /// joinable inside `_PyRuntimeState_ReInitThreads`, before any code can
    /// run (gh-115035, PR 115042). Off: they are marked by the first
    /// after-fork hook, as `threading._after_fork` did in 3.12, after the
    /// thread states have been cleared (which runs destructors).
    pub mark_handles_before_code: bool,
    /// Handles that were never started survive the marking and can be
    /// started in the child (gh-134381, PR 134514). Off: every handle but
    /// the forker's is marked done.
    pub keep_not_started_handles: bool,
    /// The child restarts the world before `_PyThreadState_DeleteList`
    /// clears the dead thread states, whose destructors may run code (the
    /// order `PyOS_AfterFork_Child` comments on and
    /// `_PyThreadState_DeleteList` asserts). Off: it clears them first.
    pub start_world_before_clearing: bool,
    /// `_PyEval_ReInitThreads` re-creates the GIL before taking it. Off: the
    /// child takes the GIL as it was copied, held by the forker.
    pub recreate_gil_in_child: bool,
}

impl Design {
    /// The design as CPython 3.14 ships it.
    pub const CPYTHON: Design = Design {
        stop_world_across_fork: true,
        hold_head_lock_across_fork: true,
        reinit_locks_in_child: true,
        mark_handles_before_code: true,
        keep_not_started_handles: true,
        start_world_before_clearing: true,
        recreate_gil_in_child: true,
    };
}

/// Bounds and design of one process and its fork.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Number of threads (1 to [`MAX_THREADS`]), the forker included.
    pub threads: usize,
    /// The GIL is enabled: every attached thread holds it (the default
    /// build, or the free-threaded build with `PYTHON_GIL=1`). Off: the
    /// free-threaded build with the GIL disabled.
    pub gil: bool,
    pub design: Design,
}

impl Config {
    /// Checks the bounds; the error names the bound and its range.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(format!(
                "threads must be between 1 and {MAX_THREADS}, got {}",
                self.threads
            ));
        }
        Ok(())
    }
}

impl Design {
    /// `PyOS_AfterFork_Child` under this design, in order.
    pub fn child_steps(&self) -> Vec<ChildStep> {
        use ChildStep::*;
        let mut v = Vec::with_capacity(8);
        if self.reinit_locks_in_child {
            v.push(ReinitLocks);
        }
        if self.mark_handles_before_code {
            v.push(MarkHandles);
        }
        v.extend([QsbrAfterFork, ReinitGil, RemoveThreadStates]);
        match (
            self.stop_world_across_fork,
            self.start_world_before_clearing,
        ) {
            (true, true) => v.extend([StartWorldAll, ClearThreadStates]),
            (true, false) => v.extend([ClearThreadStates, StartWorldAll]),
            (false, _) => v.push(ClearThreadStates),
        }
        v.push(ImportReinit);
        if !self.mark_handles_before_code {
            // threading._after_fork, the first after_forkers_child hook.
            v.push(MarkHandles);
        }
        v
    }

    /// `PyOS_AfterFork_Parent` under this design, in order.
    pub fn parent_steps(&self) -> Vec<ParentStep> {
        let mut v = Vec::with_capacity(3);
        if self.hold_head_lock_across_fork {
            v.push(ParentStep::HeadUnlock);
        }
        if self.stop_world_across_fork {
            v.push(ParentStep::StartWorldAll);
        }
        v.push(ParentStep::ImportRelease);
        v
    }
}

pub struct Fork;

impl Spec for Fork {
    type Config = Config;
    type State = State;
    type Event = Event;
    const NAME: &'static str = "fork";

    fn init(cfg: &Config) -> State {
        let worker = Thread {
            alive: false,
            life: Life::Unstarted,
            ts: Ts::None,
            please_stop: false,
            os: Os::None,
            handle: Handle {
                state: HandleState::NotStarted,
                listed: true,
                exiting: false,
                once: false,
                thread_ref: false,
                object: Obj::Held,
            },
            slot: false,
            seq: OFFLINE,
            born_in_child: false,
        };
        let mut threads = vec![worker; cfg.threads];
        // The main thread: running Python, attached, with the main
        // thread's handle (RUNNING, its ident is the forker's).
        threads[0] = Thread {
            alive: true,
            life: Life::Running,
            ts: Ts::Attached,
            os: Os::Joinable,
            handle: Handle {
                state: HandleState::Running,
                thread_ref: true,
                ..worker.handle
            },
            slot: true,
            seq: INITIAL_SEQ,
            ..worker
        };
        State {
            process: Process::Parent,
            phase: Phase::Running,
            threads,
            head: None,
            head_mid_update: false,
            torn_copy: false,
            runtime_mutex: None,
            import: None,
            gil: if cfg.gil {
                Gil::Held(FORKER)
            } else {
                Gil::Disabled
            },
            global: Pause::default(),
            interp: Pause::default(),
            wr_seq: INITIAL_SEQ,
            rd_seq: INITIAL_SEQ,
            goal: None,
            blocked: None,
            touched_lost_thread: false,
            code_ran_while_stopped: false,
            goals: 0,
            forked_with_garbage_handle: false,
        }
    }

    fn enabled(cfg: &Config, s: &State, out: &mut Vec<Event>) {
        // Every candidate the state could offer, filtered through `step`:
        // `step` is the one definition of what the protocol allows.
        let mut candidates = Vec::with_capacity(64);
        for t in 0..s.threads.len() as u8 {
            if !s.alive(t) || s.blocked.is_some_and(|(b, _)| b == t) {
                continue;
            }
            step::candidates(cfg, s, t, &mut candidates);
        }
        out.extend(
            candidates
                .into_iter()
                .filter(|e| step::apply(cfg, s, e).is_ok()),
        );
    }

    fn step(cfg: &Config, s: &State, event: &Event) -> Result<State, Rejection> {
        step::apply(cfg, s, event)
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
