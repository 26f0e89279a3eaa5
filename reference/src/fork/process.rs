//! `os.fork()`: `PyOS_BeforeFork`, `fork()`, `PyOS_AfterFork_Parent` and
//! `PyOS_AfterFork_Child`, and the checks of the spec's child invariants
//! on the live child.

use super::{ATTACHED, HandleState, Runtime, ThreadCtx, Token};
use crate::primitive::sync::atomic::Ordering;

/// Which process `fork` returned in.
#[derive(Debug)]
pub enum Forked {
    /// The parent, with the child's pid.
    Parent { pid: i32 },
    /// The child, with what its after-fork handler repaired.
    Child(Repairs),
}

/// What `PyOS_AfterFork_Child` found and fixed: evidence that each repair
/// was needed in this run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Runtime mutexes a thread that is not in the child held, by name.
    pub dead_lock_owners: Vec<(&'static str, Token)>,
    /// Handles marked done and not joinable (`_PyThread_AfterFork`).
    pub handles_marked: usize,
    /// Never-started handles left startable (gh-134381).
    pub handles_kept_not_started: usize,
    /// Thread states unlinked (`_PyThreadState_RemoveExcept`).
    pub thread_states_removed: usize,
}

impl Runtime {
    /// `os.fork()` from the main thread, attached: the before-fork hook,
    /// `fork()`, and the after-fork hook of whichever process returns.
    pub fn fork(&self, ctx: &ThreadCtx) -> std::io::Result<Forked> {
        let me = ctx.token();
        assert_eq!(
            me,
            self.main_thread.load(Ordering::Relaxed),
            "only the main thread forks"
        );
        assert_eq!(ctx.ts.state(), ATTACHED, "fork runs attached");
        assert!(
            !self.forked.swap(true, Ordering::Relaxed),
            "one fork per runtime"
        );
        // PyOS_BeforeFork: the import lock (waiting detached), the global
        // pause, then HEAD_LOCK, in this order.
        ctx.blocking(|| self.import.acquire(me));
        self.stop_the_world(ctx);
        self.head.lock(me);
        self.fork_watermark
            .store(self.next_token.load(Ordering::Relaxed), Ordering::Relaxed);
        // SAFETY: fork() itself is always safe to call. What the child may do
        // afterwards is the question: every runtime thread but this one is
        // suspended at a safe point, detached outside the runtime's locks,
        // or waiting for HEAD_LOCK, and the child repairs the runtime's
        // state before anything else runs. Memory allocation in the child
        // relies on the C library's own fork handlers, as CPython does.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let err = std::io::Error::last_os_error();
            self.after_fork_parent(ctx);
            return Err(err);
        }
        if pid == 0 {
            Ok(Forked::Child(self.after_fork_child(ctx)))
        } else {
            self.after_fork_parent(ctx);
            Ok(Forked::Parent { pid })
        }
    }

    /// `PyOS_AfterFork_Parent`.
    fn after_fork_parent(&self, ctx: &ThreadCtx) {
        let me = ctx.token();
        self.head.unlock(me);
        self.start_the_world(ctx);
        self.import.release(me);
    }

    /// `PyOS_AfterFork_Child`, in CPython's order. Only this thread exists.
    fn after_fork_child(&self, ctx: &ThreadCtx) -> Repairs {
        let me = ctx.token();
        let mut repairs = Repairs::default();
        // _PyRuntimeState_ReInitThreads: main thread, LOCKS_INIT (this is
        // what releases the HEAD_LOCK taken before the fork).
        self.main_thread.store(me, Ordering::Relaxed);
        for (name, lock) in [
            ("HEAD_LOCK", &self.head),
            ("runtime mutex", &self.runtime_mutex),
        ] {
            if let Some(owner) = lock.owner().filter(|&o| o != me) {
                repairs.dead_lock_owners.push((name, owner));
            }
            lock.reinit();
        }
        // _PyThread_AfterFork, before anything can run code (gh-115035).
        let (marked, kept) = self.with_lists(me, |l| {
            let (mut marked, mut kept) = (0, 0);
            l.handles.retain(|h| {
                if h.ident() == me {
                    true
                } else if h.state() == HandleState::NotStarted {
                    kept += 1;
                    true
                } else {
                    h.mark_dead();
                    marked += 1;
                    false
                }
            });
            (marked, kept)
        });
        repairs.handles_marked = marked;
        repairs.handles_kept_not_started = kept;
        // _Py_qsbr_after_fork and _PyEval_ReInitThreads: see the module
        // doc (no QSBR in the runtime, no GIL).
        // _PyThreadState_RemoveExcept, with the world stopped.
        assert!(
            self.pause_requested.load(Ordering::SeqCst),
            "the world is stopped"
        );
        let removed = self.with_lists(me, |l| {
            let (keep, removed): (Vec<_>, Vec<_>) =
                l.threads.drain(..).partition(|t| t.token == me);
            l.threads = keep;
            removed
        });
        repairs.thread_states_removed = removed.len();
        // _PyEval_StartTheWorldAll: only this thread is left in scope.
        self.start_the_world(ctx);
        // _PyThreadState_DeleteList: clearing may run destructors, so the
        // world runs again first.
        drop(removed);
        // _PyImport_ReInitLock, _PyImport_ReleaseLock.
        self.import.reinit(me);
        self.import.release(me);
        repairs
    }

    /// The spec's child invariants on this live child:
    /// `child_locks_free_or_live`, `child_only_live_thread_states`,
    /// `child_no_dead_pause` and, for the listed handles,
    /// `child_dead_handles_marked_before_code`. A thread is live when it
    /// is the forker or was started in the child.
    pub fn check_child(&self, ctx: &ThreadCtx) -> Result<(), String> {
        let me = ctx.token();
        let watermark = self.fork_watermark.load(Ordering::Relaxed);
        let live = |t: Token| t == me || t >= watermark;
        for (name, owner) in [
            ("HEAD_LOCK", self.head.owner()),
            ("runtime mutex", self.runtime_mutex.owner()),
            ("import lock", self.import.owner()),
            ("pause mutex", self.pause_mutex.owner()),
        ] {
            if let Some(o) = owner.filter(|&o| !live(o)) {
                return Err(format!(
                    "child_locks_free_or_live: {name} owned by dead thread {o}"
                ));
            }
        }
        if self.pause_requested.load(Ordering::SeqCst) {
            return Err("child_no_dead_pause: the pause from before the fork is still on".into());
        }
        self.with_lists(me, |l| {
            if let Some(t) = l.threads.iter().find(|t| !live(t.token)) {
                return Err(format!(
                    "child_only_live_thread_states: thread state {} is linked",
                    t.token
                ));
            }
            if let Some(h) = l
                .handles
                .iter()
                .find(|h| !live(h.ident()) && h.state() != HandleState::NotStarted)
            {
                return Err(format!(
                    "child_dead_handles_marked_before_code: handle of {} is {:?}",
                    h.ident(),
                    h.state()
                ));
            }
            Ok(())
        })
    }
}
