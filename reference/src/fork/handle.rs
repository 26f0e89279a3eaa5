//! Thread handles: `ThreadHandle` of `Modules/_threadmodule.c`, with its
//! states, its once-flag and the runtime's list of handles.

use std::mem;

use super::{
    ATTACHED, DETACHED, Event, RtMutex, Runtime, SUSPENDED, ThreadCtx, ThreadState, Token, current,
};
use crate::primitive::cell::UnsafeCell;
use crate::primitive::sync::Arc;
use crate::primitive::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crate::primitive::thread::{JoinHandle, spawn, yield_now};

/// `ThreadHandleState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum HandleState {
    NotStarted = 1,
    Starting = 2,
    Running = 3,
    Done = 4,
}

impl HandleState {
    fn from_u32(v: u32) -> HandleState {
        match v {
            1 => HandleState::NotStarted,
            2 => HandleState::Starting,
            3 => HandleState::Running,
            4 => HandleState::Done,
            _ => unreachable!("handle state {v}"),
        }
    }
}

/// Why `start` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// "thread already started".
    AlreadyStarted,
}

/// Why `join` refused or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// "thread not started".
    NotStarted,
    /// "Cannot join current thread".
    CurrentThread,
    /// The thread panicked.
    Panicked,
}

/// The shared part of a handle (`ThreadHandle` in CPython).
#[derive(Debug)]
pub(super) struct Handle {
    /// The spec thread index of its thread (see the module doc of `fork`).
    index: u8,
    state: AtomicU32,
    /// The token of its thread; 0 until started.
    ident: AtomicU64,
    /// `os_handle`: touched only by `start` (before RUNNING is published),
    /// inside the once-flag, by the last `decref`, or by the child's
    /// after-fork handler when it is the only thread.
    os: UnsafeCell<Option<JoinHandle<()>>>,
    /// `thread_is_exiting`.
    exiting: AtomicBool,
    /// `once`: serializes `join_thread`; `once_done` is its "initialized".
    once_lock: RtMutex,
    once_done: AtomicBool,
    /// References: the handle object and `thread_run`.
    refcount: AtomicUsize,
}

// SAFETY: `os` is accessed under the discipline its doc states; all other
// fields are atomics.
unsafe impl Sync for Handle {}
// SAFETY: JoinHandle<()> is Send; see above.
unsafe impl Send for Handle {}

impl Handle {
    pub(super) fn state(&self) -> HandleState {
        HandleState::from_u32(self.state.load(Ordering::Acquire))
    }

    pub(super) fn ident(&self) -> Token {
        self.ident.load(Ordering::Acquire)
    }

    /// `_PyThread_AfterFork` for one handle of a thread that is not in the
    /// child: DONE, once-flag initialized, unlocked, `thread_is_exiting`
    /// set. The OS handle is forgotten: joining or detaching a thread that
    /// does not exist in this process is the crash of gh-115035.
    ///
    /// Called only by the child's after-fork handler, as the only thread.
    pub(super) fn mark_dead(&self) {
        self.state
            .store(HandleState::Done as u32, Ordering::Relaxed);
        self.once_lock.reinit();
        self.once_done.store(true, Ordering::Relaxed);
        self.exiting.store(true, Ordering::Relaxed);
        // SAFETY: the child's handler is the only thread in the process.
        let os = self.os.with_mut(|o| unsafe { (*o).take() });
        mem::forget(os);
    }
}

/// `ThreadHandle_decref`: the last reference unlinks the handle and, if
/// it is still RUNNING, detaches its OS thread (`detach_thread`).
fn decref(rt: &Runtime, h: &Arc<Handle>, me: Token) {
    // AcqRel: the last decref sees every write the other reference made.
    if h.refcount.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    rt.with_lists(me, |l| unlink(l, h));
}

/// `ThreadHandle_decref` with `HEAD_LOCK` already held.
fn decref_locked(l: &mut super::Lists, h: &Arc<Handle>) {
    // AcqRel: as in `decref`.
    if h.refcount.fetch_sub(1, Ordering::AcqRel) == 1 {
        unlink(l, h);
    }
}

/// The last reference's work: unlink, and detach a RUNNING thread.
fn unlink(l: &mut super::Lists, h: &Arc<Handle>) {
    l.handles.retain(|x| !Arc::ptr_eq(x, h));
    if h.state() == HandleState::Running {
        // SAFETY: the last reference: nobody else can reach `os`.
        let os = h.os.with_mut(|o| unsafe { (*o).take() });
        // Dropping a JoinHandle detaches the thread.
        drop(os);
        h.state.store(HandleState::Done as u32, Ordering::Release);
    }
}

/// A handle object (`_thread._ThreadHandle`): the program's reference to
/// a thread it may start and join.
#[derive(Debug)]
pub struct ThreadHandle {
    rt: Arc<Runtime>,
    h: Arc<Handle>,
}

impl ThreadHandle {
    /// `ThreadHandle_new`: NOT_STARTED, linked in the runtime's list.
    pub fn new(ctx: &ThreadCtx) -> ThreadHandle {
        let index = ctx.rt.next_index.fetch_add(1, Ordering::Relaxed);
        let h = Arc::new(Handle {
            index: u8::try_from(index).unwrap_or(u8::MAX),
            state: AtomicU32::new(HandleState::NotStarted as u32),
            ident: AtomicU64::new(0),
            os: UnsafeCell::new(None),
            exiting: AtomicBool::new(false),
            once_lock: RtMutex::new(),
            once_done: AtomicBool::new(false),
            refcount: AtomicUsize::new(1),
        });
        ctx.rt
            .with_lists(ctx.token(), |l| l.handles.push(Arc::clone(&h)));
        ThreadHandle {
            rt: Arc::clone(&ctx.rt),
            h,
        }
    }

    pub fn state(&self) -> HandleState {
        self.h.state()
    }

    /// The spec thread index of its thread.
    pub fn index(&self) -> u8 {
        self.h.index
    }

    /// The token of its thread, once started.
    pub fn ident(&self) -> Option<Token> {
        match self.h.ident() {
            0 => None,
            t => Some(t),
        }
    }

    /// `is_done`: `thread_is_exiting` is set.
    pub fn is_done(&self) -> bool {
        self.h.exiting.load(Ordering::Acquire)
    }

    /// A join would reach the OS thread: RUNNING and the once-flag not yet
    /// initialized.
    pub fn is_joinable(&self) -> bool {
        self.state() == HandleState::Running && !self.h.once_done.load(Ordering::Acquire)
    }

    /// In `_PyRuntime.threads.handles`.
    pub fn is_listed(&self, ctx: &ThreadCtx) -> bool {
        ctx.rt.with_lists(ctx.token(), |l| {
            l.handles.iter().any(|x| Arc::ptr_eq(x, &self.h))
        })
    }

    /// `ThreadHandle_start`: STARTING, a new thread state (SUSPENDED if a
    /// pause is on), the OS thread, then RUNNING, which is the new
    /// thread's `handle_ready`. The starter stays attached throughout.
    pub fn start<F>(&self, ctx: &ThreadCtx, f: F) -> Result<(), StartError>
    where
        F: FnOnce(&ThreadCtx) + Send + 'static,
    {
        assert_eq!(ctx.ts.state(), ATTACHED, "ThreadHandle_start runs attached");
        let (rt, me) = (&ctx.rt, ctx.token());
        let (thread, target) = (ctx.index(), self.h.index);
        let token = rt.next_token.fetch_add(1, Ordering::Relaxed);
        // STARTING and new_threadstate under HEAD_LOCK (SUSPENDED if a
        // pause is on): the spec's StartBegin.
        rt.head.lock(me);
        let ts = rt.rec.step(|e| {
            self.h
                .state
                .compare_exchange(
                    HandleState::NotStarted as u32,
                    HandleState::Starting as u32,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .map_err(|_| StartError::AlreadyStarted)?;
            let state = if rt.pause_requested.load(Ordering::SeqCst) {
                SUSPENDED
            } else {
                DETACHED
            };
            let ts = ThreadState::new(token, target, state);
            // SAFETY: HEAD_LOCK is held: no other access to the lists.
            rt.lists
                .with_mut(|l| unsafe { &mut *l }.threads.push(Arc::clone(&ts)));
            e.emit(Event::StartBegin { thread, target });
            Ok(ts)
        });
        rt.head.unlock(me);
        let ts = ts?;
        // thread_run's reference.
        self.h.refcount.fetch_add(1, Ordering::Relaxed);
        let (rt2, h, ts2) = (Arc::clone(rt), Arc::clone(&self.h), Arc::clone(&ts));
        let os = spawn(move || thread_run(rt2, h, ts2, f));
        // SAFETY: RUNNING is not published yet, so no join, decref or
        // after-fork handler can reach `os`.
        self.h.os.with_mut(|o| unsafe { *o = Some(os) });
        self.h.ident.store(ts.token, Ordering::Relaxed);
        // Release: handle_ready; the new thread and joiners that see
        // RUNNING see `os` and `ident`.
        rt.rec.step(|e| {
            self.h
                .state
                .store(HandleState::Running as u32, Ordering::Release);
            e.emit(Event::StartEnd { thread, target });
        });
        Ok(())
    }

    /// `ThreadHandle_join`: waits (detached) for `thread_is_exiting`, then
    /// joins the OS thread once (`_PyOnceFlag_CallOnce(join_thread)`).
    pub fn join(&self, ctx: &ThreadCtx) -> Result<(), JoinError> {
        let me = ctx.token();
        if self.state() < HandleState::Running {
            return Err(JoinError::NotStarted);
        }
        if !self.is_done() && self.h.ident() == me {
            return Err(JoinError::CurrentThread);
        }
        // Acquire: pairs with the Release store in thread_run.
        if !self.h.exiting.load(Ordering::Acquire) {
            ctx.blocking(|| {
                while !self.h.exiting.load(Ordering::Acquire) {
                    yield_now();
                }
            });
        }
        self.h.once_lock.lock(me);
        let mut result = Ok(());
        let first = !self.h.once_done.load(Ordering::Acquire);
        if first {
            // SAFETY: inside the once-flag; RUNNING was published (with
            // `os`) before `thread_is_exiting` could be set.
            let os = self.h.os.with_mut(|o| unsafe { (*o).take() });
            if let Some(os) = os {
                // Joined attached: the thread has set thread_is_exiting
                // and only returns (the spec folds this into Join).
                result = os.join().map_err(|_| JoinError::Panicked);
            }
        }
        let (thread, target) = (ctx.index(), self.h.index);
        ctx.rt.rec.step(|e| {
            if first {
                self.h
                    .state
                    .store(HandleState::Done as u32, Ordering::Release);
                self.h.once_done.store(true, Ordering::Release);
            }
            e.emit(Event::Join { thread, target });
        });
        self.h.once_lock.unlock(me);
        result
    }
}

impl Drop for ThreadHandle {
    /// `PyThreadHandleObject_dealloc`: drops the object's reference.
    fn drop(&mut self) {
        decref(&self.rt, &self.h, current());
    }
}

/// `thread_run`: waits for `handle_ready`, attaches, runs `f`, deletes its
/// thread state, sets `thread_is_exiting` and drops its reference.
fn thread_run<F>(rt: Arc<Runtime>, h: Arc<Handle>, ts: Arc<ThreadState>, f: F)
where
    F: FnOnce(&ThreadCtx),
{
    // Acquire: pairs with the Release store of RUNNING in `start`.
    while h.state.load(Ordering::Acquire) != HandleState::Running as u32 {
        yield_now();
    }
    let token = ts.token;
    super::CURRENT.with(|c| c.set(token));
    let ctx = ThreadCtx { rt, ts };
    ctx.attach();
    f(&ctx);
    // _PyThreadState_DeleteCurrent (the spec's ExitStart).
    ctx.rt.delete_current(&ctx);
    let (rt, thread) = (&ctx.rt, ctx.index());
    // The shutdown and handle lists under HEAD_LOCK: ExitUnlink when the
    // lock is taken, ExitDone with thread_is_exiting set, thread_run's
    // reference dropped and the lock about to be released.
    rt.head.lock(token);
    rt.rec.step(|e| e.emit(Event::ExitUnlink { thread }));
    rt.rec.step(|e| {
        // Release: the thread's work happens before a join that sees it.
        h.exiting.store(true, Ordering::Release);
        // SAFETY: HEAD_LOCK is held.
        rt.lists.with_mut(|l| decref_locked(unsafe { &mut *l }, &h));
        e.emit(Event::ExitDone { thread });
    });
    rt.head.unlock(token);
}
