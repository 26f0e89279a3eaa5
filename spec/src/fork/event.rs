//! The fork spec's events and the steps of the fork protocol.

use serde::{Deserialize, Serialize};

use super::Process;

/// The forker's steps in `PyOS_BeforeFork` besides the global pause (which
/// is the `Pause*` events with `global`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BeforeStep {
    /// `_PyImport_AcquireLock` (after the `before_forkers`).
    ImportLock,
    /// `HEAD_LOCK`, after the world is stopped.
    HeadLock,
}

/// `PyOS_AfterFork_Parent`, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ParentStep {
    HeadUnlock,
    StartWorldAll,
    ImportRelease,
}

/// `PyOS_AfterFork_Child`, in CPython's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChildStep {
    /// `_PyParkingLot_AfterFork` and `_PyMutex_at_fork_reinit` on
    /// `LOCKS_INIT` (this is what releases the `HEAD_LOCK` taken before
    /// the fork).
    ReinitLocks,
    /// `_PyThread_AfterFork`.
    MarkHandles,
    /// `_Py_qsbr_after_fork`.
    QsbrAfterFork,
    /// `_PyEval_ReInitThreads`: `recreate_gil`, `take_gil`.
    ReinitGil,
    /// `_PyThreadState_RemoveExcept`, under `HEAD_LOCK`.
    RemoveThreadStates,
    /// `_PyEval_StartTheWorldAll`.
    StartWorldAll,
    /// `_PyThreadState_DeleteList(list, 1)`: clearing runs destructors.
    ClearThreadStates,
    /// `_PyImport_ReInitLock` and `_PyImport_ReleaseLock`.
    ImportReinit,
}

impl ChildStep {
    pub fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl ParentStep {
    pub fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// One step of the protocol. Every event names the thread that takes it;
/// `target` names the thread whose handle it works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    /// `_PyThreadState_Attach` (and, for a new thread, binding after
    /// `handle_ready`): DETACHED to ATTACHED, QSBR attach, GIL if enabled.
    Attach {
        thread: u8,
    },
    /// `_PyThreadState_Detach`.
    Detach {
        thread: u8,
    },
    /// `_PyThreadState_Suspend` at the eval breaker on PLEASE_STOP.
    Suspend {
        thread: u8,
    },
    /// `_PyImport_AcquireLock` outside the fork protocol.
    ImportAcquire {
        thread: u8,
    },
    /// `_PyImport_ReleaseLock` outside the fork protocol.
    ImportRelease {
        thread: u8,
    },
    /// Lock the other runtime mutex.
    MutexLock {
        thread: u8,
    },
    MutexUnlock {
        thread: u8,
    },
    /// `stop_the_world`: the pause's mutex and the read-write mutex.
    PauseLock {
        thread: u8,
        global: bool,
    },
    /// `stop_the_world`: under `HEAD_LOCK`, request, count and park.
    PauseRequest {
        thread: u8,
        global: bool,
    },
    /// `stop_the_world`: the wait loop's wake-up (event or 1 ms timeout),
    /// parking threads that detached since.
    PausePoll {
        thread: u8,
        global: bool,
    },
    /// `start_the_world` of an interpreter pause.
    PauseStart {
        thread: u8,
    },
    /// `ThreadHandle_start` up to `PyThread_start_joinable_thread`: the
    /// handle is STARTING, the thread state and OS thread exist.
    StartBegin {
        thread: u8,
        target: u8,
    },
    /// `ThreadHandle_start`: RUNNING, `handle_ready` notified.
    StartEnd {
        thread: u8,
        target: u8,
    },
    /// `thread_run`: `_PyThreadState_DeleteCurrent` (unlink under
    /// `HEAD_LOCK`, QSBR unregister, GIL released).
    ExitStart {
        thread: u8,
    },
    /// `thread_run`: take `HEAD_LOCK` for the shutdown and handle lists.
    ExitUnlink {
        thread: u8,
    },
    /// `thread_run`: finish the lists, set `thread_is_exiting`, drop the
    /// handle reference (the last one detaches the OS thread).
    ExitDone {
        thread: u8,
    },
    /// The program drops the last reference to the handle object without
    /// joining (it becomes garbage).
    DropHandle {
        thread: u8,
        target: u8,
    },
    /// Code runs and frees the garbage handle object of `target`.
    Gc {
        thread: u8,
        target: u8,
    },
    /// `ThreadHandle_join`.
    Join {
        thread: u8,
        target: u8,
    },
    BeforeFork {
        thread: u8,
        step: BeforeStep,
    },
    /// `fork()`; the model follows `follow` from here on.
    Fork {
        thread: u8,
        follow: Process,
    },
    AfterForkParent {
        thread: u8,
        step: ParentStep,
    },
    AfterForkChild {
        thread: u8,
        step: ChildStep,
    },
    /// The child unlinks memory and queues it with a goal from a real
    /// advance (`_Py_qsbr_advance`).
    Retire {
        thread: u8,
    },
    /// `_Py_qsbr_quiescent_state`.
    Quiescent {
        thread: u8,
    },
    /// `qsbr_poll_scan`; carries `rd_seq` after the scan.
    Scan {
        thread: u8,
        rd_seq: u8,
    },
    /// The queued memory is freed: its goal is reached.
    Reclaim {
        thread: u8,
    },
}

impl Event {
    pub fn thread(&self) -> u8 {
        use Event::*;
        match *self {
            Attach { thread }
            | Detach { thread }
            | Suspend { thread }
            | ImportAcquire { thread }
            | ImportRelease { thread }
            | MutexLock { thread }
            | MutexUnlock { thread }
            | PauseLock { thread, .. }
            | PauseRequest { thread, .. }
            | PausePoll { thread, .. }
            | PauseStart { thread }
            | StartBegin { thread, .. }
            | StartEnd { thread, .. }
            | ExitStart { thread }
            | ExitUnlink { thread }
            | ExitDone { thread }
            | DropHandle { thread, .. }
            | Gc { thread, .. }
            | Join { thread, .. }
            | BeforeFork { thread, .. }
            | Fork { thread, .. }
            | AfterForkParent { thread, .. }
            | AfterForkChild { thread, .. }
            | Retire { thread }
            | Quiescent { thread }
            | Scan { thread, .. }
            | Reclaim { thread } => thread,
        }
    }

    /// The event's kind, without its values (for coverage and fairness).
    pub fn kind(&self) -> &'static str {
        use Event::*;
        match self {
            Attach { .. } => "Attach",
            Detach { .. } => "Detach",
            Suspend { .. } => "Suspend",
            ImportAcquire { .. } => "ImportAcquire",
            ImportRelease { .. } => "ImportRelease",
            MutexLock { .. } => "MutexLock",
            MutexUnlock { .. } => "MutexUnlock",
            PauseLock { .. } => "PauseLock",
            PauseRequest { .. } => "PauseRequest",
            PausePoll { .. } => "PausePoll",
            PauseStart { .. } => "PauseStart",
            StartBegin { .. } => "StartBegin",
            StartEnd { .. } => "StartEnd",
            ExitStart { .. } => "ExitStart",
            ExitUnlink { .. } => "ExitUnlink",
            ExitDone { .. } => "ExitDone",
            DropHandle { .. } => "DropHandle",
            Gc { .. } => "Gc",
            Join { .. } => "Join",
            BeforeFork { .. } => "BeforeFork",
            Fork { .. } => "Fork",
            AfterForkParent { .. } => "AfterForkParent",
            AfterForkChild { .. } => "AfterForkChild",
            Retire { .. } => "Retire",
            Quiescent { .. } => "Quiescent",
            Scan { .. } => "Scan",
            Reclaim { .. } => "Reclaim",
        }
    }
}

/// Every event kind, in declaration order.
pub const EVENT_KINDS: &[&str] = &[
    "Attach",
    "Detach",
    "Suspend",
    "ImportAcquire",
    "ImportRelease",
    "MutexLock",
    "MutexUnlock",
    "PauseLock",
    "PauseRequest",
    "PausePoll",
    "PauseStart",
    "StartBegin",
    "StartEnd",
    "ExitStart",
    "ExitUnlink",
    "ExitDone",
    "DropHandle",
    "Gc",
    "Join",
    "BeforeFork",
    "Fork",
    "AfterForkParent",
    "AfterForkChild",
    "Retire",
    "Quiescent",
    "Scan",
    "Reclaim",
];
