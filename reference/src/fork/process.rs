//! `os.fork()`: `PyOS_BeforeFork`, `fork()`, `PyOS_AfterFork_Parent` and
//! `PyOS_AfterFork_Child`, and the checks of the spec's child invariants
//! on the live child.

use std::time::{Duration, Instant};

use super::{
    ATTACHED, BeforeStep, ChildStep, Event, HandleState, ParentStep, Runtime, ThreadCtx, Token,
};
use crate::primitive::sync::atomic::Ordering;
use crate::primitive::sync::lock;
use crate::primitive::thread::yield_now;
use crate::qsbr::QsbrThread;

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
    /// QSBR slots `_Py_qsbr_after_fork` gave back.
    pub qsbr_slots_released: usize,
    /// The handler's own time, from `fork()`'s return in the child to the
    /// import lock's release (the world restarted, the process ready).
    pub handler_time: Duration,
}

impl Runtime {
    /// `os.fork()` from the main thread, attached: the before-fork hook,
    /// `fork()`, and the after-fork hook of whichever process returns.
    #[cfg(not(cpyrt_shuttle))]
    pub fn fork(&self, ctx: &ThreadCtx) -> std::io::Result<Forked> {
        self.before_fork(ctx);
        // fork() inside the recorder's step: see the module doc.
        let pid = self.rec.step(|e| {
            // SAFETY: fork() itself is always safe to call. What the child
            // may do afterwards is the question: every runtime thread but
            // this one is suspended at a safe point, detached outside the
            // runtime's locks, or waiting for HEAD_LOCK, no thread is inside
            // a recorder step (we hold its lock), and the child repairs the
            // runtime's state before anything else runs. Memory allocation
            // in the child relies on the C library's own fork handlers, as
            // CPython does.
            let pid = unsafe { libc::fork() };
            if pid >= 0 {
                e.emit(super::fork_event(pid == 0));
            }
            pid
        });
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

    /// `PyOS_BeforeFork` by the main thread, attached, for the one fork of
    /// the runtime: the import lock, the global pause, then `HEAD_LOCK`.
    fn before_fork(&self, ctx: &ThreadCtx) {
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
        let thread = ctx.index();
        // PyOS_BeforeFork: the import lock, the global pause, then
        // HEAD_LOCK, in this order. The import lock is awaited attached
        // with eval-breaker checks, which is what the detached wait of
        // `_PyImport_AcquireLock` amounts to for a pause.
        self.lock_attached(
            ctx,
            &self.import.lock,
            Event::BeforeFork {
                thread,
                step: BeforeStep::ImportLock,
            },
        );
        self.import.level.store(1, Ordering::Relaxed);
        self.stop_world(ctx, true);
        if self.hold_head_lock {
            self.head.lock(me);
            self.rec.step(|e| {
                e.emit(Event::BeforeFork {
                    thread,
                    step: BeforeStep::HeadLock,
                })
            });
        }
        self.fork_watermark
            .store(self.next_token.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// `os.fork()` under shuttle, whose scheduler cannot fork: the
    /// before-fork hook, the parent's `Fork` event recorded as `Runtime::fork`
    /// records it when `fork()` returns in the parent (one recorder step
    /// taken with `HEAD_LOCK` held), and `PyOS_AfterFork_Parent`. The child's
    /// side is the std build's.
    #[cfg(cpyrt_shuttle)]
    pub fn fork_parent_only(&self, ctx: &ThreadCtx) {
        self.before_fork(ctx);
        self.rec.step(|e| e.emit(super::fork_event(false)));
        self.after_fork_parent(ctx);
    }

    /// `PyOS_AfterFork_Parent`.
    fn after_fork_parent(&self, ctx: &ThreadCtx) {
        let (me, thread) = (ctx.token(), ctx.index());
        let ev = |step| Event::AfterForkParent { thread, step };
        if self.hold_head_lock {
            self.rec.step(|e| {
                self.head.unlock(me);
                e.emit(ev(ParentStep::HeadUnlock));
            });
        }
        self.head.lock(me);
        self.rec
            .step(|e| self.restart_world(me, e, ev(ParentStep::StartWorldAll)));
        self.head.unlock(me);
        self.rec.step(|e| {
            self.import.release(me);
            e.emit(ev(ParentStep::ImportRelease));
        });
    }

    /// `PyOS_AfterFork_Child`, in CPython's order, one recorded step each.
    /// Only this thread exists. (Compiled under shuttle, which cannot
    /// fork and so never calls it, to keep one build of the module.)
    #[cfg_attr(cpyrt_shuttle, allow(dead_code))]
    fn after_fork_child(&self, ctx: &ThreadCtx) -> Repairs {
        let started = Instant::now();
        let (me, thread) = (ctx.token(), ctx.index());
        let ev = |step| Event::AfterForkChild { thread, step };
        let mut repairs = Repairs::default();
        // _PyRuntimeState_ReInitThreads: main thread, LOCKS_INIT (this is
        // what releases the HEAD_LOCK taken before the fork).
        self.rec.step(|e| {
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
            e.emit(ev(ChildStep::ReinitLocks));
        });
        // _PyThread_AfterFork, before anything can run code (gh-115035).
        self.head.lock(me);
        let (marked, kept) = self.rec.step(|e| {
            // SAFETY: HEAD_LOCK is held: no other access to the lists.
            let l = self.lists.with_mut(|l| unsafe { &mut *l });
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
            e.emit(ev(ChildStep::MarkHandles));
            (marked, kept)
        });
        self.head.unlock(me);
        repairs.handles_marked = marked;
        repairs.handles_kept_not_started = kept;
        // _Py_qsbr_after_fork.
        let qsbr = lock(&self.qsbr).clone().0;
        self.rec.step(|e| {
            if let Some((domain, slot)) = qsbr.as_ref().filter(|_| self.qsbr_after_fork) {
                repairs.qsbr_slots_released = domain.after_fork(*slot);
            }
            e.emit(ev(ChildStep::QsbrAfterFork));
        });
        // _PyEval_ReInitThreads: the GIL is disabled here, nothing to do.
        self.rec.step(|e| e.emit(ev(ChildStep::ReinitGil)));
        // _PyThreadState_RemoveExcept, with the world stopped.
        assert!(
            self.pause_requested.load(Ordering::SeqCst),
            "the world is stopped"
        );
        self.head.lock(me);
        let removed = self.rec.step(|e| {
            // SAFETY: HEAD_LOCK is held: no other access to the lists.
            let l = self.lists.with_mut(|l| unsafe { &mut *l });
            let (keep, removed): (Vec<_>, Vec<_>) =
                l.threads.drain(..).partition(|t| t.token == me);
            l.threads = keep;
            e.emit(ev(ChildStep::RemoveThreadStates));
            removed
        });
        self.head.unlock(me);
        repairs.thread_states_removed = removed.len();
        // _PyEval_StartTheWorldAll: only this thread is left in scope.
        self.head.lock(me);
        self.rec
            .step(|e| self.restart_world(me, e, ev(ChildStep::StartWorldAll)));
        self.head.unlock(me);
        // _PyThreadState_DeleteList: clearing may run destructors, so the
        // world runs again first.
        self.rec.step(|e| e.emit(ev(ChildStep::ClearThreadStates)));
        drop(removed);
        // _PyImport_ReInitLock, _PyImport_ReleaseLock.
        self.rec.step(|e| {
            self.import.reinit(me);
            self.import.release(me);
            e.emit(ev(ChildStep::ImportReinit));
        });
        repairs.handler_time = started.elapsed();
        repairs
    }

    /// The child's QSBR reclamation, as the forker, recorded as the spec's
    /// `Retire`, `Quiescent`, `Scan` and `Reclaim`: `retire` unlinks a
    /// value and queues it for a delayed free with a goal (and advances
    /// `wr_seq`, as the spec's retirement does); then the thread announces
    /// a quiescent state, scans, and processes its queue until `freed`
    /// says the value is gone, at most `tries` times. Returns whether it
    /// was freed. `qt` is the forker's QSBR thread, attached.
    pub fn child_reclaim(
        &self,
        ctx: &ThreadCtx,
        qt: &mut QsbrThread,
        retire: impl FnOnce(&mut QsbrThread),
        freed: impl Fn() -> bool,
        tries: usize,
    ) -> bool {
        let thread = ctx.index();
        self.rec.step(|e| {
            retire(qt);
            e.emit(Event::Retire { thread });
        });
        self.rec.step(|e| {
            qt.quiescent_state();
            e.emit(Event::Quiescent { thread });
        });
        let mut last_rd = qt.domain().rd_seq();
        for _ in 0..tries {
            let done = self.rec.step(|e| {
                let rd = qt.scan();
                if rd != last_rd {
                    last_rd = rd;
                    e.emit(Event::Scan {
                        thread,
                        rd_seq: u8::try_from(rd).unwrap_or(u8::MAX),
                    });
                }
                qt.process_delayed();
                let done = freed();
                if done {
                    e.emit(Event::Reclaim { thread });
                }
                done
            });
            if done {
                return true;
            }
            yield_now();
        }
        false
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
