//! The fork spec's state: threads, handles, locks, pauses, QSBR slots.

use serde::{Deserialize, Serialize};

use super::*;

/// Which process the model follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Process {
    /// The original process (before the fork, and the parent after it).
    Parent,
    /// The child, where only the forker exists.
    Child,
}

/// Where the forker is in the fork protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Running Python code; no fork yet.
    Running,
    /// Inside `PyOS_BeforeFork`, holding the import lock.
    Preparing,
    /// After `fork()`, inside `PyOS_AfterFork_Parent` or `_Child`; `done`
    /// is the set of completed steps (bit [`ChildStep::bit`] or
    /// [`ParentStep::bit`]).
    AfterFork { done: u16 },
    /// The after-fork handler finished; the process runs Python code.
    Ready,
}

/// Where a thread is in its life (`ThreadHandle_start` .. `thread_run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Life {
    /// No OS thread yet.
    Unstarted,
    /// The OS thread exists and waits in `thread_run` for `handle_ready`.
    Starting,
    /// Bound to its thread state, running Python code or C code.
    Running,
    /// Its thread state is deleted; about to take `HEAD_LOCK` to update the
    /// shutdown and handle lists.
    Exiting,
    /// Holding `HEAD_LOCK` half-way through that update.
    Unlinking,
    /// `thread_run` returned.
    Exited,
}

/// The thread state's `state` field, or no thread state in the
/// interpreter's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ts {
    /// No thread state linked in the interpreter (not created, deleted, or
    /// unlinked by `_PyThreadState_RemoveExcept`).
    None,
    Detached,
    Attached,
    Suspended,
}

/// The OS thread a handle owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Os {
    /// Not created.
    None,
    /// Created and neither joined nor detached (possibly finished).
    Joinable,
    /// Joined or detached.
    Released,
    /// Joinable in the parent; does not exist in the child.
    Lost,
}

/// `ThreadHandleState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HandleState {
    NotStarted,
    Starting,
    Running,
    Done,
}

/// The `_ThreadHandle` Python object that wraps a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Obj {
    /// Referenced by live code (a `threading.Thread`).
    Held,
    /// Unreferenced but not yet freed (in a reference cycle, or waiting
    /// for a biased-refcount merge).
    Garbage,
    /// Deallocated: its reference to the handle is gone.
    Freed,
}

/// A `ThreadHandle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    pub state: HandleState,
    /// Linked in `_PyRuntime.threads.handles`.
    pub listed: bool,
    /// `thread_is_exiting` is set.
    pub exiting: bool,
    /// `once` is initialized: a join or the after-fork marking completed.
    pub once: bool,
    /// `thread_run` still holds its reference.
    pub thread_ref: bool,
    pub object: Obj,
}

impl Handle {
    /// Both references are gone: `ThreadHandle_decref` freed the struct.
    pub fn freed(&self) -> bool {
        self.object == Obj::Freed && !self.thread_ref
    }

    /// Done and not joinable: what `_PyThread_AfterFork` leaves.
    pub fn marked(&self) -> bool {
        self.state == HandleState::Done && self.once && self.exiting && !self.listed
    }
}

/// One thread: its OS thread, thread state, QSBR slot and handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thread {
    /// The OS thread exists in the followed process and takes steps.
    pub alive: bool,
    pub life: Life,
    pub ts: Ts,
    /// `_PY_EVAL_PLEASE_STOP_BIT` in its eval breaker.
    pub please_stop: bool,
    pub os: Os,
    pub handle: Handle,
    /// QSBR slot `allocated`.
    pub slot: bool,
    /// QSBR slot `seq` (it stays in the array after the slot is freed).
    pub seq: u8,
    /// Was started after the fork, in the child.
    pub born_in_child: bool,
}

/// One `_stoptheworld_state` with its `mutex` (and the runtime's
/// read-write mutex, write for the global pause, read for an
/// interpreter's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pause {
    /// The requester, holding the pause's mutexes.
    pub owner: Option<u8>,
    pub requested: bool,
    pub stopped: bool,
    /// `thread_countdown`.
    pub countdown: u8,
}

/// The GIL as fork sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gil {
    /// Free-threaded build with the GIL disabled.
    Disabled,
    Free,
    Held(u8),
}

/// What a thread waits for that no live thread will ever provide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Blocker {
    HeadLock,
    RuntimeMutex,
    ImportLock,
    /// A pause's mutex or the runtime's read-write mutex.
    PauseMutex,
    /// A pause's countdown counts threads that will never park.
    PauseCountsDeadThread,
    /// Suspended for a pause whose requester will never restart the world.
    SuspendedByDeadPause,
    Gil,
    /// `join` waits for `thread_is_exiting` of a thread that is gone.
    JoinDeadThread,
}

/// Bits of [`State::goals`]: progress the child made.
pub mod goal {
    /// The child completed a stop-the-world pause.
    pub const PAUSED: u8 = 1;
    /// The child took and released the import lock.
    pub const IMPORTED: u8 = 2;
    /// The child freed memory through QSBR.
    pub const RECLAIMED: u8 = 4;
    /// The child started a thread (its handle was created before the fork).
    pub const STARTED: u8 = 8;
    /// The child joined a thread it started.
    pub const JOINED_NEW: u8 = 16;
    /// The child joined the handle of a thread that did not survive.
    pub const JOINED_DEAD: u8 = 32;
    /// Every goal.
    pub const ALL: u8 = 63;
}

/// The abstract state of one process and its fork.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    pub process: Process,
    pub phase: Phase,
    pub threads: Vec<Thread>,
    /// `HEAD_LOCK` (`runtime->interpreters.mutex`).
    pub head: Option<u8>,
    /// The holder of `HEAD_LOCK` is half-way through a list update.
    pub head_mid_update: bool,
    /// `fork()` copied a list while it was half-way through an update.
    pub torn_copy: bool,
    /// Another mutex of `LOCKS_INIT` (see the module doc).
    pub runtime_mutex: Option<u8>,
    /// The import lock: owner and recursion level.
    pub import: Option<(u8, u8)>,
    pub gil: Gil,
    /// `_PyRuntime.stoptheworld`.
    pub global: Pause,
    /// The interpreter's `stoptheworld`.
    pub interp: Pause,
    /// QSBR `wr_seq`.
    pub wr_seq: u8,
    /// QSBR `rd_seq`.
    pub rd_seq: u8,
    /// The goal of the child's retired memory, while it waits.
    pub goal: Option<u8>,
    /// A thread waits forever: which, and for what.
    pub blocked: Option<(u8, Blocker)>,
    /// A join or detach reached an OS thread that does not exist here.
    pub touched_lost_thread: bool,
    /// Code ran while the world was stopped.
    pub code_ran_while_stopped: bool,
    /// Progress the child made ([`goal`] bits).
    pub goals: u8,
    /// At the fork, some thread had finished unjoined and its handle
    /// object was garbage (the gh-115035 setting).
    pub forked_with_garbage_handle: bool,
}

impl State {
    /// The thread exists in the followed process and takes steps.
    pub fn alive(&self, t: u8) -> bool {
        self.threads.get(t as usize).is_some_and(|th| th.alive)
    }

    /// A lock owner that no live thread is: a thread that did not survive
    /// the fork.
    pub fn dead_owner(&self, owner: Option<u8>) -> bool {
        owner.is_some_and(|o| !self.alive(o))
    }

    /// Completed after-fork steps.
    pub fn done(&self) -> u16 {
        match self.phase {
            Phase::AfterFork { done } => done,
            Phase::Ready => u16::MAX,
            _ => 0,
        }
    }

    /// In the child, the handler has reached the point where destructors
    /// run, or finished: code may run.
    pub fn child_code_may_run(&self) -> bool {
        self.process == Process::Child && self.done() & ChildStep::ClearThreadStates.bit() != 0
    }

    /// What `qsbr_poll_scan` computes: the minimum of `wr_seq` and every
    /// slot's non-OFFLINE `seq`, allocated or not (it walks the array).
    pub fn scan_min(&self) -> u8 {
        self.threads
            .iter()
            .filter(|t| t.seq != OFFLINE)
            .map(|t| t.seq)
            .fold(self.wr_seq, u8::min)
    }
}
