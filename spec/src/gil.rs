//! GIL: hand-off of the global interpreter lock, per-interpreter GILs and
//! the `PyGILState` API.
//!
//! # Protocol
//! Follows `Python/ceval_gil.c` as of CPython 3.13/3.14 (`take_gil`,
//! `drop_gil`, `drop_gil_impl`, `_PyEval_InitGIL`, `_PyEval_FiniGIL`,
//! `_Py_HandlePending`'s drop-request branch, `FORCE_SWITCHING`, which
//! `Include/internal/pycore_gil.h` always defines) and `Python/pystate.c`
//! (`new_threadstate`, `tstate_delete_common`,
//! `_PyThreadState_DeleteCurrent`, `PyGILState_Ensure`,
//! `PyGILState_Release`). The prose version is `spec/gil.md`.
//!
//! One GIL object is `locked`, `last_holder` (a thread state),
//! `switch_number`, `mutex` + `cond` and `switch_mutex` + `switch_cond`. A
//! thread that finds it locked waits on `cond` with a timeout (the switch
//! interval); a timeout with no switch in between sets the drop-request bit
//! in the eval breaker of `last_holder`. The holder sees the bit at its next
//! eval-breaker check and releases; with `FORCE_SWITCHING` it then waits on
//! `switch_cond` until another thread has taken the GIL. Threads that must
//! exit because the runtime or their interpreter is finalizing hang inside
//! `take_gil` (3.14: `_PyThreadState_HangThread`; 3.12 called
//! `PyThread_exit_thread`, which the spec treats the same: the thread stops
//! holding nothing). Interpreters either share the main interpreter's GIL
//! object or own one (PEP 684).
//!
//! What changed between 3.12 and 3.13/3.14, and how the spec reads it: the
//! drop request moved from a per-interpreter flag (`ceval->gil_drop_request`)
//! to a bit in the holder's own eval breaker (gh-112175), which is what the
//! spec models (`Tstate::drop_request`); `drop_gil` takes `final_release`
//! instead of a NULL thread state (gh-104341), and `tstate->holds_gil` is
//! the per-thread truth the debug assertions check.
//!
//! # Abstraction
//! Thread states and OS threads are distinct: a thread state is bound to a
//! set of OS threads (normally one), so a design that lets two OS threads
//! use one thread state (gh-105699, gh-109860) is expressible. Each OS
//! thread runs a fixed program of [`Op`]s; take and drop are split at every
//! lock, unlock and wait of `mutex`, `switch_mutex` and HEAD_LOCK. Reads and
//! writes done while holding a lock are merged into the step that follows
//! the acquire (nobody else can observe them in between), and a condition
//! signal is merged into the write it follows.
//!
//! - The switch interval is abstracted to a timeout that may fire at any
//!   time while a thread waits on `cond`: every real timing is one of the
//!   interleavings. Spurious wake-ups are allowed on either condition
//!   variable when [`Config::spurious_wakeups`] is set (the reference
//!   runtime's traces need it); the models leave them out, because a
//!   spurious wake-up is never something progress may rely on, and
//!   [`INVARIANTS`]' `no_deadlock` counts a thread waiting on
//!   `switch_cond` as blocked either way.
//! - `switch_number` is kept modulo [`SWITCH_NUMBER_MOD`]: a waiter that
//!   sees the same value after a wrap asks for a drop it did not need,
//!   which only adds behaviours.
//! - A Python thread's bytecode is abstracted to the eval-breaker checks
//!   that find the drop-request bit set ([`Op::Run`], [`Op::Compute`]); a
//!   check that finds nothing changes no state and is left out.
//! - Finalization is `Finalize` (sets the interpreter's `finalizing`
//!   thread state; the main interpreter's is also the runtime's), the final
//!   release (`Exit`), and `DeleteInterp`. The main interpreter lives in
//!   static storage and its GIL is never destroyed (bpo-9901), so only a
//!   subinterpreter's deletion frees memory.
//! - `PyGILState_Ensure` on a thread without a thread state is
//!   `NewTstate` then `Take`; `PyGILState_Release` at counter zero is
//!   `DeleteTstate` then `Exit`. The gilstate counter, the TSS key and
//!   `tstate->_status` bits are omitted. An allocation hook
//!   ([`Config::alloc_hook`], tracemalloc's raw allocator hook) may run
//!   `PyGILState_Ensure`/`Release` again, once ([`HOOK_PROGRAM`]):
//!   tracemalloc's reentrancy guard stops deeper recursion.
//! - Omitted: the free-threaded build's dynamic GIL (`enabled`), pending
//!   calls, signals, async exceptions, fork (`_PyEval_ReInitThreads`, the
//!   `fork` mechanism's subject), errno.
//!
//! # Properties
//! See [`INVARIANTS`], [`TRANSITION_INVARIANTS`] and [`SOMETIMES`]; each
//! carries its one-sentence statement. [`LIVENESS`] states progress per OS
//! thread (a `take_gil` call returns; a `switch_cond` wait ends), checked
//! under the fairness the model declares (`models/src/checker/gil.rs`).
//!
//! # Limits
//! At most [`MAX_THREADS`] OS threads, [`MAX_TSTATES`] thread states,
//! [`MAX_INTERPS`] interpreters and [`MAX_OPS`] ops per program.

use serde::{Deserialize, Serialize};

use crate::{Invariant, LeadsTo, Rejection, Spec, TransitionInvariant};

mod machine;
pub mod scenario;
#[cfg(test)]
mod tests;

/// Largest OS-thread count (bound sets are `u8` bitmasks; 4 keeps models small).
pub const MAX_THREADS: usize = 4;
/// Largest number of thread states.
pub const MAX_TSTATES: usize = 8;
/// Largest number of interpreters.
pub const MAX_INTERPS: usize = 4;
/// Longest program.
pub const MAX_OPS: usize = 16;
/// `switch_number` is kept modulo this (CPython: an `unsigned long`).
pub const SWITCH_NUMBER_MOD: u8 = 4;

/// Design switches. [`Design::CPYTHON`] is the design CPython 3.13/3.14
/// ships; each other setting is a broken design from CPython's history or
/// a plausible mistake, and the models pin the counterexample it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Design {
    /// `FORCE_SWITCHING`: a thread that drops the GIL because it was asked
    /// to waits on `switch_cond` until another thread has taken it. Off:
    /// the dropper may take the GIL straight back.
    pub force_switching: bool,
    /// A waiter in `take_gil` that must exit clears the drop request it
    /// set (the gh-96387 fix, PR 96869). Off: the request stays set and the
    /// holder's `FORCE_SWITCHING` wait has nobody to end it.
    pub exiting_waiter_clears_request: bool,
    /// The exiting waiter clears its request before it unlocks `mutex`.
    /// CPython clears it after the unlock; see `spec/gil.md` for what the
    /// model finds in between.
    pub clear_request_before_unlock: bool,
    /// `drop_gil` skips the `FORCE_SWITCHING` tail on a final release,
    /// which may be followed at once by the interpreter's deletion (the
    /// gh-104341 fix). Off: the tail reads the thread state's eval breaker
    /// after the final unlock.
    pub final_release_skips_switch_wait: bool,
    /// `new_threadstate` allocates before taking HEAD_LOCK (the gh-96071
    /// fix, PR 96124). Off: it allocates under HEAD_LOCK, where an
    /// allocation hook may call `PyGILState_Ensure` and re-enter.
    pub alloc_before_head_lock: bool,
    /// An OS thread that needs a thread state of another interpreter uses
    /// one of its own (the gh-105699 and gh-109860 fixes). Off: every such
    /// thread binds one shared, detached thread state (3.12 betas'
    /// `_PyThreadState_BindDetached` of the extensions cache).
    pub tstate_per_os_thread: bool,
}

impl Design {
    /// The design as CPython 3.13/3.14 ships it.
    pub const CPYTHON: Design = Design {
        force_switching: true,
        exiting_waiter_clears_request: true,
        clear_request_before_unlock: false,
        final_release_skips_switch_wait: true,
        alloc_before_head_lock: true,
        tstate_per_os_thread: true,
    };
}

/// One step of a thread's program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    /// `take_gil` for the current thread state (`PyEval_RestoreThread`,
    /// `_PyThreadState_Attach`).
    Take,
    /// Run bytecode: handle drop requests at eval-breaker checks
    /// (`_Py_HandlePending`: detach, attach), and leave when done.
    Run,
    /// Run bytecode forever (a CPU-bound thread): like `Run`, never leaves.
    Compute,
    /// `drop_gil` without a final release (`PyEval_SaveThread`, blocking
    /// I/O).
    Drop,
    /// The thread's last release (`_PyThreadState_DeleteCurrent`:
    /// `drop_gil` with `final_release`); the thread state is gone after it.
    Exit,
    /// `threading._shutdown`: wait, holding no GIL, until every other
    /// non-daemon thread of the interpreter has exited.
    Join,
    /// `Py_FinalizeEx` / `Py_EndInterpreter` mark the interpreter (and for
    /// the main interpreter, the runtime) finalizing with this thread's
    /// thread state.
    Finalize,
    /// `PyInterpreterState_Delete` of the given interpreter, after its
    /// final release; a subinterpreter's memory (thread states, its own GIL)
    /// is freed. Needs every other thread state of it gone
    /// (`Py_EndInterpreter`'s "not the last thread" check).
    DeleteInterp(u8),
    /// `new_threadstate` for the thread's gilstate slot (or the hook's):
    /// allocate, HEAD_LOCK, link, HEAD_UNLOCK, bind.
    NewTstate,
    /// `tstate_delete_common`: unlink the current thread state under
    /// HEAD_LOCK.
    DeleteTstate,
    /// Bind a main-interpreter thread state and make it current
    /// (`_PyThreadState_BindDetached` + swap without the GIL); which one
    /// depends on [`Design::tstate_per_os_thread`].
    BindMain,
    /// Unbind it and make the thread's own thread state current again.
    Unbind,
}

/// What the allocation hook runs inside `new_threadstate`'s allocation:
/// `PyGILState_Ensure` and `PyGILState_Release` on a thread with no thread
/// state (tracemalloc recording the allocation).
pub const HOOK_PROGRAM: &[Op] = &[Op::NewTstate, Op::Take, Op::DeleteTstate, Op::Exit];

/// One interpreter. Interpreter 0 is the main interpreter and owns its GIL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterpSpec {
    /// `PyInterpreterConfig.gil == OWN`; otherwise it shares the main
    /// interpreter's GIL object.
    pub own_gil: bool,
}

/// One thread state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TstateSpec {
    pub interp: u8,
}

/// One OS thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadSpec {
    /// A daemon thread: nobody joins it, and it hangs in `take_gil` once
    /// finalization has started.
    pub daemon: bool,
    /// The thread state bound and current at the start.
    pub tstate: Option<u8>,
    /// The slot `NewTstate` fills (`PyGILState_Ensure` on a fresh thread).
    pub gilstate_tstate: Option<u8>,
    /// The slot the allocation hook's nested `PyGILState_Ensure` fills.
    pub hook_tstate: Option<u8>,
    /// The main-interpreter thread state `BindMain` binds when each OS
    /// thread has its own.
    pub main_tstate: Option<u8>,
    pub program: Vec<Op>,
    /// After the last op, continue at this op (a thread that loops
    /// forever); `None`: the thread finishes.
    pub repeat_from: Option<u8>,
}

/// Interpreters, thread states, OS threads and the design.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub interps: Vec<InterpSpec>,
    pub tstates: Vec<TstateSpec>,
    pub threads: Vec<ThreadSpec>,
    /// The detached main-interpreter thread state every `BindMain` binds
    /// when [`Design::tstate_per_os_thread`] is off.
    pub shared_main_tstate: Option<u8>,
    /// An allocation hook that calls `PyGILState_Ensure` (tracemalloc).
    pub alloc_hook: bool,
    /// Allow spurious wake-ups of condition-variable waits.
    pub spurious_wakeups: bool,
    pub design: Design,
}

impl Config {
    /// Checks bounds and references; the error says which, in one line.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.threads.len();
        if n == 0 || n > MAX_THREADS {
            return Err(format!(
                "threads must be between 1 and {MAX_THREADS}, got {n}"
            ));
        }
        if self.interps.is_empty() || self.interps.len() > MAX_INTERPS {
            return Err(format!(
                "interpreters must be between 1 and {MAX_INTERPS}, got {}",
                self.interps.len()
            ));
        }
        if !self.interps[0].own_gil {
            return Err("the main interpreter (0) always owns its GIL".into());
        }
        if self.tstates.len() > MAX_TSTATES {
            return Err(format!(
                "at most {MAX_TSTATES} thread states, got {}",
                self.tstates.len()
            ));
        }
        for (i, ts) in self.tstates.iter().enumerate() {
            if ts.interp as usize >= self.interps.len() {
                return Err(format!(
                    "thread state {i} names interpreter {}, which does not exist",
                    ts.interp
                ));
            }
        }
        let ts_ok = |t: Option<u8>| t.is_none_or(|t| (t as usize) < self.tstates.len());
        if !ts_ok(self.shared_main_tstate) {
            return Err("shared_main_tstate names no thread state".into());
        }
        for (i, th) in self.threads.iter().enumerate() {
            if th.program.is_empty() || th.program.len() > MAX_OPS {
                return Err(format!("thread {i}: a program has 1 to {MAX_OPS} ops"));
            }
            if th
                .repeat_from
                .is_some_and(|r| r as usize >= th.program.len())
            {
                return Err(format!("thread {i}: repeat_from is past the program"));
            }
            for t in [
                th.tstate,
                th.gilstate_tstate,
                th.hook_tstate,
                th.main_tstate,
            ] {
                if !ts_ok(t) {
                    return Err(format!(
                        "thread {i} names a thread state that does not exist"
                    ));
                }
            }
            for op in &th.program {
                if let Op::DeleteInterp(k) = op
                    && *k as usize >= self.interps.len()
                {
                    return Err(format!(
                        "thread {i} deletes interpreter {k}, which does not exist"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Thread states that exist at the start: every one except the slots
    /// that `NewTstate` fills.
    fn initially_exists(&self, ts: usize) -> bool {
        !self
            .threads
            .iter()
            .any(|th| th.gilstate_tstate == Some(ts as u8) || th.hook_tstate == Some(ts as u8))
    }
}

/// One GIL object (`struct _gil_runtime_state`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gil {
    /// The interpreter that created it (`init_own_gil`).
    pub owner: u8,
    /// `gil->locked`.
    pub locked: bool,
    /// `gil->last_holder`, a thread state.
    pub last_holder: Option<u8>,
    /// `gil->switch_number`, modulo [`SWITCH_NUMBER_MOD`].
    pub switch_number: u8,
    /// Owner of `gil->mutex`.
    pub mutex: Option<u8>,
    /// Owner of `gil->switch_mutex`.
    pub switch_mutex: Option<u8>,
    /// Ghost: the OS thread that last set `locked`.
    pub last_os: Option<u8>,
    /// Ghost: the GIL has passed from one OS thread to another.
    pub handed_off: bool,
}

/// One interpreter's fields the spec needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interp {
    /// The GIL object `interp->ceval.gil` points to.
    pub gil: u8,
    /// The finalizing thread state (`_PyInterpreterState_SetFinalizing`;
    /// for interpreter 0 also `_PyRuntimeState_SetFinalizing`).
    pub finalizing: Option<u8>,
    /// `PyInterpreterState_Delete` ran.
    pub deleted: bool,
}

/// One thread state's fields the spec needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tstate {
    pub interp: u8,
    /// Allocated and linked into its interpreter.
    pub exists: bool,
    /// `tstate->holds_gil`.
    pub holds_gil: bool,
    /// `_PY_GIL_DROP_REQUEST_BIT` in `tstate->eval_breaker`.
    pub drop_request: bool,
    /// The OS threads it is bound to (bit i = thread i).
    pub bound: u8,
}

/// Where a thread is inside `take_gil`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TakePc {
    /// Entry: the must-exit check.
    Enter,
    /// `MUTEX_LOCK(gil->mutex)`.
    LockMutex,
    /// Holding `mutex`, at `while (locked)`; `requested`: this call set a
    /// drop request (`drop_requested`). When `locked` is clear, the next
    /// step is `MUTEX_LOCK(gil->switch_mutex)` (FORCE_SWITCHING).
    Loop { requested: bool },
    /// In `COND_TIMED_WAIT(gil->cond)`, having saved `switch_number`.
    Waiting { saved: u8, requested: bool },
    /// Woken (by a signal, a timeout or spuriously), re-taking `mutex`.
    Relock {
        saved: u8,
        requested: bool,
        timed_out: bool,
    },
    /// Timed out with no switch: about to set the holder's drop request.
    Request { holder: u8 },
    /// Must exit after a timeout: unlocking `mutex`.
    ExitUnlock { requested: bool, holder: Option<u8> },
    /// Must exit after a timeout: clearing the request it set, then hang.
    ExitClear { requested: bool, holder: Option<u8> },
    /// Holding both: set `locked`, `last_holder`, `switch_number`; signal
    /// `switch_cond`.
    Set,
    /// `MUTEX_UNLOCK(gil->switch_mutex)`.
    UnlockSwitch,
    /// The second must-exit check, then `holds_gil = 1`.
    Finish,
    /// Must exit holding the GIL: unlock `mutex`, then a final `drop_gil`.
    ExitRelease,
    /// `MUTEX_UNLOCK(gil->mutex)` at the end.
    Unlock,
}

/// Where a thread is inside `drop_gil`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropPc {
    /// The `locked` check and `last_holder = tstate`.
    Enter,
    /// `drop_gil_impl`: `MUTEX_LOCK(gil->mutex)`.
    LockMutex,
    /// `locked = 0`, `holds_gil = 0`, `COND_SIGNAL(gil->cond)`.
    Release,
    /// `MUTEX_UNLOCK(gil->mutex)`.
    UnlockMutex,
    /// The FORCE_SWITCHING test of the thread's drop-request bit.
    Tail,
    /// `MUTEX_LOCK(gil->switch_mutex)`.
    LockSwitch,
    /// `last_holder == tstate`: clear the bit and wait; else unlock.
    SwitchCheck,
    /// In `COND_WAIT(gil->switch_cond)`.
    SwitchWaiting,
    /// Woken, re-taking `switch_mutex`.
    SwitchRelock,
    /// `MUTEX_UNLOCK(gil->switch_mutex)`.
    SwitchUnlock,
}

/// `new_threadstate`'s steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NewPc {
    Alloc,
    Lock,
    Add,
    Unlock,
}

/// `tstate_delete_common`'s steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DelPc {
    Lock,
    Remove,
    Unlock,
}

/// What a thread does when its `take_gil` or `drop_gil` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Then {
    /// Go on with the next op.
    NextOp,
    /// A drop request was handled: take the GIL back.
    Retake,
    /// Back to the `Run`/`Compute` op it interrupted.
    Resume,
    /// Hang: the thread must exit.
    Hang,
}

/// Where a thread is in its current op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// At an op whose first step is one event.
    Start,
    Take {
        pc: TakePc,
        then: Then,
    },
    Drop {
        pc: DropPc,
        final_release: bool,
        then: Then,
    },
    New(NewPc),
    Del(DelPc),
    /// In `Join`, until every other non-daemon thread of its interpreter
    /// is done.
    Join,
    /// Hung forever in `take_gil` (`_PyThreadState_HangThread`).
    Hung,
    /// The program ended.
    Finished,
}

/// The main program's place while the allocation hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resume {
    pub op: u8,
    pub step: NewPc,
    pub current: Option<u8>,
}

/// One OS thread.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thread {
    pub daemon: bool,
    /// The interpreter of its initial thread state: the one whose
    /// `threading._shutdown` joins it (none for a fresh C thread).
    pub interp: Option<u8>,
    /// Index into its program (or [`HOOK_PROGRAM`] while `hook` is set).
    pub op: u8,
    pub step: Step,
    /// The thread state it uses.
    pub current: Option<u8>,
    /// Its own thread state while a `BindMain` one is current.
    pub home: Option<u8>,
    /// Set while the allocation hook runs.
    pub hook: Option<Resume>,
    /// Ghost: the GIL object whose `locked` this thread set and has not
    /// cleared yet.
    pub holding: Option<u8>,
    /// Joinable: it has started its last release.
    pub done: bool,
}

/// The abstract state: GIL objects, interpreters, thread states, OS
/// threads and HEAD_LOCK.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    pub gils: Vec<Gil>,
    pub interps: Vec<Interp>,
    pub tstates: Vec<Tstate>,
    pub threads: Vec<Thread>,
    /// Owner of `_PyRuntime.interpreters.mutex` (HEAD_LOCK).
    pub head: Option<u8>,
    /// Set when a thread touched a freed subinterpreter's state.
    pub use_after_free: bool,
}

/// A lock the spec tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockId {
    /// `gil->mutex` of GIL object `gil`.
    Mutex { gil: u8 },
    /// `gil->switch_mutex`.
    SwitchMutex { gil: u8 },
    /// HEAD_LOCK.
    Head,
}

/// A condition variable the spec tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CondId {
    /// `gil->cond` (timed wait in `take_gil`).
    Cond { gil: u8 },
    /// `gil->switch_cond` (untimed wait in `drop_gil`).
    SwitchCond { gil: u8 },
}

/// One step of the protocol. Every event names the OS thread that takes
/// it; events that observe a value carry it, so a recorded trace is
/// checked against what the spec computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    /// `take_gil` entry; `exit`: the thread must exit, so it hangs.
    TakeEnter { thread: u8, exit: bool },
    /// Acquires a lock (blocks while another thread holds it).
    Lock { thread: u8, lock: LockId },
    /// Releases a lock.
    Unlock { thread: u8, lock: LockId },
    /// Starts waiting on a condition variable, releasing its mutex. On
    /// `switch_cond` this also clears the thread's own drop request.
    Wait { thread: u8, cond: CondId },
    /// The timed wait on `cond` expired.
    Timeout { thread: u8 },
    /// A wait ended with no signal and no timeout.
    Spurious { thread: u8 },
    /// A timed-out waiter sets the drop request of thread state `holder`.
    RequestDrop { thread: u8, holder: u8 },
    /// A waiter that must exit hangs, first clearing the request it set on
    /// `cleared`.
    WaiterExit { thread: u8, cleared: Option<u8> },
    /// `locked = 1`; `switched`: `last_holder` changed and `switch_number`
    /// went up; `woken`: the `switch_cond` waiter the signal woke.
    TakeSet {
        thread: u8,
        switched: bool,
        woken: Option<u8>,
    },
    /// The must-exit check after taking; on `exit: false`, `holds_gil = 1`
    /// and the thread's own drop request is cleared.
    TakeDone { thread: u8, exit: bool },
    /// `drop_gil` entry.
    DropEnter { thread: u8, final_release: bool },
    /// `locked = 0`, `holds_gil = 0`, and the `cond` waiter the signal woke.
    DropRelease { thread: u8, woken: Option<u8> },
    /// The FORCE_SWITCHING test: `wait` when the drop request is set.
    DropTail { thread: u8, wait: bool },
    /// An eval-breaker check finds the drop request: detach, then attach.
    Check { thread: u8 },
    /// The bytecode segment ends.
    Leave { thread: u8 },
    /// Every other non-daemon thread of the interpreter has exited.
    Join { thread: u8 },
    /// Finalization starts with this thread's thread state.
    Finalize { thread: u8 },
    /// The interpreter is deleted.
    DeleteInterp { thread: u8, interp: u8 },
    /// `new_threadstate`'s allocation; `hook`: the allocation hook runs.
    Alloc { thread: u8, hook: bool },
    /// Under HEAD_LOCK: thread state `tstate` initialised, linked, bound.
    AddTstate { thread: u8, tstate: u8 },
    /// Under HEAD_LOCK: thread state `tstate` unlinked.
    RemoveTstate { thread: u8, tstate: u8 },
    /// Thread state `tstate` bound and made current.
    Bind { thread: u8, tstate: u8 },
    /// The bound thread state is unbound; the thread's own is current.
    Unbind { thread: u8 },
}

impl Event {
    pub fn thread(&self) -> u8 {
        use Event::*;
        match *self {
            TakeEnter { thread, .. }
            | Lock { thread, .. }
            | Unlock { thread, .. }
            | Wait { thread, .. }
            | Timeout { thread }
            | Spurious { thread }
            | RequestDrop { thread, .. }
            | WaiterExit { thread, .. }
            | TakeSet { thread, .. }
            | TakeDone { thread, .. }
            | DropEnter { thread, .. }
            | DropRelease { thread, .. }
            | DropTail { thread, .. }
            | Check { thread }
            | Leave { thread }
            | Join { thread }
            | Finalize { thread }
            | DeleteInterp { thread, .. }
            | Alloc { thread, .. }
            | AddTstate { thread, .. }
            | RemoveTstate { thread, .. }
            | Bind { thread, .. }
            | Unbind { thread } => thread,
        }
    }

    /// The event's kind, without its values (for coverage and fairness).
    pub fn kind(&self) -> &'static str {
        use Event::*;
        match self {
            TakeEnter { .. } => "TakeEnter",
            Lock { .. } => "Lock",
            Unlock { .. } => "Unlock",
            Wait { .. } => "Wait",
            Timeout { .. } => "Timeout",
            Spurious { .. } => "Spurious",
            RequestDrop { .. } => "RequestDrop",
            WaiterExit { .. } => "WaiterExit",
            TakeSet { .. } => "TakeSet",
            TakeDone { .. } => "TakeDone",
            DropEnter { .. } => "DropEnter",
            DropRelease { .. } => "DropRelease",
            DropTail { .. } => "DropTail",
            Check { .. } => "Check",
            Leave { .. } => "Leave",
            Join { .. } => "Join",
            Finalize { .. } => "Finalize",
            DeleteInterp { .. } => "DeleteInterp",
            Alloc { .. } => "Alloc",
            AddTstate { .. } => "AddTstate",
            RemoveTstate { .. } => "RemoveTstate",
            Bind { .. } => "Bind",
            Unbind { .. } => "Unbind",
        }
    }
}

/// Every event kind, in declaration order.
pub const EVENT_KINDS: &[&str] = &[
    "TakeEnter",
    "Lock",
    "Unlock",
    "Wait",
    "Timeout",
    "Spurious",
    "RequestDrop",
    "WaiterExit",
    "TakeSet",
    "TakeDone",
    "DropEnter",
    "DropRelease",
    "DropTail",
    "Check",
    "Leave",
    "Join",
    "Finalize",
    "DeleteInterp",
    "Alloc",
    "AddTstate",
    "RemoveTstate",
    "Bind",
    "Unbind",
];

impl State {
    /// The GIL object thread state `ts` uses.
    pub fn gil_of(&self, ts: u8) -> u8 {
        self.interps[self.tstates[ts as usize].interp as usize].gil
    }

    /// `_PyThreadState_MustExit`: the runtime (main interpreter) or the
    /// thread state's interpreter is finalizing with another thread state.
    pub fn must_exit(&self, ts: u8) -> bool {
        let other = |f: Option<u8>| f.is_some_and(|f| f != ts);
        let interp = self.tstates[ts as usize].interp as usize;
        other(self.interps[0].finalizing) || other(self.interps[interp].finalizing)
    }

    /// Whether interpreter `i`'s memory has been freed: a deleted
    /// subinterpreter (the main interpreter is static).
    pub fn freed(&self, i: u8) -> bool {
        i != 0 && self.interps[i as usize].deleted
    }

    /// The lock thread `t` is trying to acquire, if its next step is an
    /// acquire.
    pub fn wants_lock(&self, t: usize) -> Option<LockId> {
        let th = &self.threads[t];
        let gil = || th.current.map(|ts| self.gil_of(ts));
        match th.step {
            Step::Take { pc, .. } => match pc {
                TakePc::LockMutex | TakePc::Relock { .. } => gil().map(|gil| LockId::Mutex { gil }),
                // Without FORCE_SWITCHING nobody ever holds switch_mutex, so
                // naming it here never makes a thread blocked.
                TakePc::Loop { .. } => gil()
                    .filter(|&g| !self.gils[g as usize].locked)
                    .map(|gil| LockId::SwitchMutex { gil }),
                _ => None,
            },
            Step::Drop { pc, .. } => match pc {
                DropPc::LockMutex => gil().map(|gil| LockId::Mutex { gil }),
                DropPc::LockSwitch | DropPc::SwitchRelock => {
                    gil().map(|gil| LockId::SwitchMutex { gil })
                }
                _ => None,
            },
            Step::New(NewPc::Lock) | Step::Del(DelPc::Lock) => Some(LockId::Head),
            _ => None,
        }
    }

    /// The owner of a lock.
    pub fn lock_owner(&self, lock: LockId) -> Option<u8> {
        match lock {
            LockId::Mutex { gil } => self.gils[gil as usize].mutex,
            LockId::SwitchMutex { gil } => self.gils[gil as usize].switch_mutex,
            LockId::Head => self.head,
        }
    }

    /// Whether thread `t` cannot move until another thread does: it waits
    /// for a held lock, on `switch_cond` (no timeout), or in `Join` for a
    /// thread that has not exited. A timed wait on `cond` is not blocked.
    pub fn blocked(&self, t: usize) -> bool {
        let th = &self.threads[t];
        if let Some(lock) = self.wants_lock(t) {
            return self.lock_owner(lock).is_some();
        }
        match th.step {
            Step::Drop {
                pc: DropPc::SwitchWaiting,
                ..
            } => true,
            Step::Join => !self.joinable(t),
            _ => false,
        }
    }

    /// Whether every other non-daemon thread of `t`'s interpreter is done.
    pub fn joinable(&self, t: usize) -> bool {
        let interp = self.threads[t].interp;
        self.threads
            .iter()
            .enumerate()
            .all(|(u, th)| u == t || th.interp != interp || th.daemon || th.done)
    }

    /// Whether thread `t`'s lock wait-for chain (the owner of the lock it
    /// wants, the owner of the lock that one wants, ...) ends in a cycle or
    /// in a thread that has stopped: then it waits forever, whatever the
    /// other threads do.
    pub fn stuck_on_locks(&self, t: usize) -> bool {
        let mut at = t;
        for _ in 0..=self.threads.len() {
            let Some(owner) = self.wants_lock(at).and_then(|l| self.lock_owner(l)) else {
                return false;
            };
            if self.stopped(owner as usize) {
                return true;
            }
            at = owner as usize;
        }
        // More hops than threads: the chain has come round.
        true
    }

    /// Whether thread `t` has stopped for good (hung or finished).
    pub fn stopped(&self, t: usize) -> bool {
        matches!(self.threads[t].step, Step::Hung | Step::Finished)
    }
}

pub struct GilSpec;

impl Spec for GilSpec {
    type Config = Config;
    type State = State;
    type Event = Event;
    const NAME: &'static str = "gil";

    fn init(cfg: &Config) -> State {
        machine::init(cfg)
    }

    fn enabled(cfg: &Config, s: &State, out: &mut Vec<Event>) {
        let mut moves = Vec::new();
        for t in 0..s.threads.len() {
            moves.clear();
            machine::moves(cfg, s, t, &mut moves);
            out.extend(moves.iter().map(|(e, _)| *e));
        }
    }

    fn step(cfg: &Config, s: &State, event: &Event) -> Result<State, Rejection> {
        let t = event.thread() as usize;
        if t >= s.threads.len() {
            return Err(Rejection::new(format!(
                "no thread {t} in a {}-thread configuration",
                s.threads.len()
            )));
        }
        let mut moves = Vec::new();
        machine::moves(cfg, s, t, &mut moves);
        match moves.iter().position(|(e, _)| e == event) {
            Some(k) => Ok(moves.swap_remove(k).1),
            None => {
                let offered: Vec<String> = moves.iter().map(|(e, _)| format!("{e:?}")).collect();
                Err(Rejection::new(format!(
                    "thread {t} at {:?} offers [{}]",
                    s.threads[t].step,
                    offered.join(", ")
                )))
            }
        }
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

/// Named state invariants. The first is the reason the GIL exists.
pub static INVARIANTS: &[Invariant<State>] = &[
    Invariant {
        name: "mutual_exclusion",
        doc: "At most one OS thread holds each GIL object, and its locked flag is set exactly while one does.",
        holds: mutual_exclusion,
    },
    Invariant {
        name: "holder_is_last_holder",
        doc: "A thread state with holds_gil set finds its GIL locked and itself recorded as last_holder.",
        holds: holder_is_last_holder,
    },
    Invariant {
        name: "drop_only_when_locked",
        doc: "No thread releases a GIL whose locked flag is clear.",
        holds: drop_only_when_locked,
    },
    Invariant {
        name: "shared_gil_excludes",
        doc: "Threads of interpreters that share a GIL object never hold it at the same time.",
        holds: shared_gil_excludes,
    },
    Invariant {
        name: "tstate_bound_once",
        doc: "A thread state is bound to at most one OS thread at a time.",
        holds: |s| s.tstates.iter().all(|ts| ts.bound.count_ones() <= 1),
    },
    Invariant {
        name: "no_self_block",
        doc: "No thread waits for a lock it already holds.",
        holds: |s| {
            (0..s.threads.len()).all(|t| {
                s.wants_lock(t)
                    .is_none_or(|l| s.lock_owner(l) != Some(t as u8))
            })
        },
    },
    Invariant {
        name: "no_deadlock",
        doc: "No lock wait-for chain ends in a cycle or a stopped thread, and not every running thread is blocked on a lock, on switch_cond or in a join.",
        holds: no_deadlock,
    },
    Invariant {
        name: "no_use_after_free",
        doc: "No thread touches a freed subinterpreter's state: its thread states, their eval breakers or its own GIL.",
        holds: |s| !s.use_after_free,
    },
];

/// Named transition invariants.
pub static TRANSITION_INVARIANTS: &[TransitionInvariant<State>] = &[
    TransitionInvariant {
        name: "switch_counted",
        doc: "Every hand-off of a GIL to a different OS thread increments its switch_number.",
        holds: switch_counted,
    },
    TransitionInvariant {
        name: "exit_clears_own_request",
        doc: "A waiter that hangs in take_gil leaves no drop request it set behind.",
        holds: exit_clears_own_request,
    },
];

/// Reachability goals, in name order: without them a model whose
/// invariants hold could be holding vacuously.
pub static SOMETIMES: &[Invariant<State>] = &[
    Invariant {
        name: "drop_requested",
        doc: "A waiter has set the drop request of the holder's thread state.",
        holds: |s| s.tstates.iter().any(|ts| ts.drop_request),
    },
    Invariant {
        name: "finalized",
        doc: "An interpreter is deleted after its final release.",
        holds: |s| s.interps.iter().any(|i| i.deleted),
    },
    Invariant {
        name: "forced_switch_wait",
        doc: "A thread that dropped on request waits on switch_cond for another thread to take the GIL.",
        holds: |s| {
            s.threads.iter().any(|th| {
                matches!(
                    th.step,
                    Step::Drop {
                        pc: DropPc::SwitchWaiting,
                        ..
                    }
                )
            })
        },
    },
    Invariant {
        name: "gil_held",
        doc: "Some thread state holds a GIL.",
        holds: |s| s.tstates.iter().any(|ts| ts.holds_gil),
    },
    Invariant {
        name: "handed_off",
        doc: "A GIL passes from one OS thread to another.",
        holds: |s| s.gils.iter().any(|g| g.handed_off),
    },
    Invariant {
        name: "parallel_holders",
        doc: "Two OS threads hold two different GIL objects at the same time.",
        holds: |s| {
            let held: Vec<u8> = s.threads.iter().filter_map(|th| th.holding).collect();
            held.iter().any(|a| held.iter().any(|b| a != b))
        },
    },
    Invariant {
        name: "waiter_hung",
        doc: "A thread that must exit hangs instead of taking the GIL.",
        holds: |s| s.threads.iter().any(|th| th.step == Step::Hung),
    },
];

fn mutual_exclusion(s: &State) -> bool {
    s.gils.iter().enumerate().all(|(g, gil)| {
        let holders = s
            .threads
            .iter()
            .filter(|th| th.holding == Some(g as u8))
            .count();
        holders <= 1 && gil.locked == (holders == 1)
    })
}

fn holder_is_last_holder(s: &State) -> bool {
    s.tstates.iter().enumerate().all(|(i, ts)| {
        if !ts.holds_gil {
            return true;
        }
        let gil = &s.gils[s.gil_of(i as u8) as usize];
        gil.locked && gil.last_holder == Some(i as u8)
    })
}

fn drop_only_when_locked(s: &State) -> bool {
    s.threads.iter().all(|th| match (th.step, th.current) {
        (
            Step::Drop {
                pc: DropPc::Enter | DropPc::LockMutex | DropPc::Release,
                ..
            },
            Some(ts),
        ) => s.gils[s.gil_of(ts) as usize].locked,
        _ => true,
    })
}

fn shared_gil_excludes(s: &State) -> bool {
    // Judged by interpreter, not by GIL object: a holder's interpreter is
    // the one of the thread state it holds through.
    let holders: Vec<(usize, u8)> = s
        .threads
        .iter()
        .enumerate()
        .filter(|(_, th)| th.holding.is_some())
        .filter_map(|(t, th)| th.current.map(|ts| (t, s.tstates[ts as usize].interp)))
        .collect();
    holders.iter().all(|&(t, i)| {
        holders
            .iter()
            .all(|&(u, j)| t == u || s.interps[i as usize].gil != s.interps[j as usize].gil)
    })
}

fn no_deadlock(s: &State) -> bool {
    let running: Vec<usize> = (0..s.threads.len()).filter(|&t| !s.stopped(t)).collect();
    let global = running.is_empty() || running.iter().any(|&t| !s.blocked(t));
    global && (0..s.threads.len()).all(|t| !s.stuck_on_locks(t))
}

fn switch_counted(a: &State, b: &State) -> bool {
    a.gils.iter().zip(&b.gils).all(|(before, after)| {
        let handed =
            after.last_os != before.last_os && before.last_os.is_some() && after.last_os.is_some();
        !handed || after.switch_number != before.switch_number
    })
}

fn exit_clears_own_request(a: &State, b: &State) -> bool {
    a.threads.iter().zip(&b.threads).all(|(before, after)| {
        let holder = match before.step {
            Step::Take {
                pc:
                    TakePc::ExitUnlock {
                        requested: true,
                        holder,
                    }
                    | TakePc::ExitClear {
                        requested: true,
                        holder,
                    },
                ..
            } => holder,
            _ => None,
        };
        match holder {
            Some(h) if after.step == Step::Hung => !b.tstates[h as usize].drop_request,
            _ => true,
        }
    })
}

/// Whether thread `K` is inside `take_gil` (a `Retake` after a handled drop
/// request included).
fn in_take<const K: usize>(s: &State) -> bool {
    s.threads
        .get(K)
        .is_some_and(|th| matches!(th.step, Step::Take { .. }))
}

fn out_of_take<const K: usize>(s: &State) -> bool {
    !in_take::<K>(s)
}

/// Whether thread `K` waits on `switch_cond` (or re-takes `switch_mutex`
/// after it).
fn in_switch_wait<const K: usize>(s: &State) -> bool {
    s.threads.get(K).is_some_and(|th| {
        matches!(
            th.step,
            Step::Drop {
                pc: DropPc::SwitchWaiting,
                ..
            }
        )
    })
}

fn out_of_switch_wait<const K: usize>(s: &State) -> bool {
    !in_switch_wait::<K>(s)
}

/// Liveness, per OS thread 0 to 2 (the models' largest configurations
/// have three; with fewer threads the higher ones hold vacuously), checked
/// under the fairness the model declares.
/// A `take_gil` that hangs because the thread must exit counts as
/// returned: it leaves `Step::Take`.
pub static LIVENESS: &[LeadsTo<State>] = &[
    LeadsTo {
        name: "take_returns_0",
        doc: "Thread 0 in take_gil eventually holds the GIL (or hangs because it must exit).",
        p: in_take::<0>,
        q: out_of_take::<0>,
    },
    LeadsTo {
        name: "take_returns_1",
        doc: "Thread 1 in take_gil eventually holds the GIL (or hangs because it must exit).",
        p: in_take::<1>,
        q: out_of_take::<1>,
    },
    LeadsTo {
        name: "take_returns_2",
        doc: "Thread 2 in take_gil eventually holds the GIL (or hangs because it must exit).",
        p: in_take::<2>,
        q: out_of_take::<2>,
    },
    LeadsTo {
        name: "switch_wait_ends_0",
        doc: "Thread 0 waiting on switch_cond is eventually woken.",
        p: in_switch_wait::<0>,
        q: out_of_switch_wait::<0>,
    },
    LeadsTo {
        name: "switch_wait_ends_1",
        doc: "Thread 1 waiting on switch_cond is eventually woken.",
        p: in_switch_wait::<1>,
        q: out_of_switch_wait::<1>,
    },
    LeadsTo {
        name: "switch_wait_ends_2",
        doc: "Thread 2 waiting on switch_cond is eventually woken.",
        p: in_switch_wait::<2>,
        q: out_of_switch_wait::<2>,
    },
];
