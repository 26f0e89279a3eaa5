//! `os.fork()` for a runtime with real threads: the runtime's locks, its
//! thread states and stop-the-world, the thread-handle table, and the
//! before- and after-fork hooks.
//!
//! # Protocol
//! Follows `Modules/posixmodule.c` (`PyOS_BeforeFork`,
//! `PyOS_AfterFork_Parent`, `PyOS_AfterFork_Child`), `Python/pystate.c`
//! (`_PyRuntimeState_ReInitThreads`, `stop_the_world`, `start_the_world`,
//! `_PyThreadState_RemoveExcept`, `_PyThreadState_DeleteList`),
//! `Python/import.c` (the import lock and `_PyImport_ReInitLock`) and
//! `Modules/_threadmodule.c` (`ThreadHandle_start`, `thread_run`,
//! `ThreadHandle_join` and its once-flag, `ThreadHandle_decref`,
//! `_PyThread_AfterFork`), as of CPython 3.14. The spec is
//! `cpyrt_spec::fork`; [`Runtime::fork`] is its design `Design::CPYTHON`:
//!
//! | CPython | here |
//! |---|---|
//! | `HEAD_LOCK`, `LOCKS_INIT` mutexes | [`Runtime::head`], [`Runtime::runtime_mutex`] ([`RtMutex`]) |
//! | the import lock (`_PyRecursiveMutex`) | [`ImportLock`] |
//! | `tstate->state`, `_PyThreadState_Attach/Detach`, `_Py_HandlePending` | [`ThreadCtx::attach`], [`ThreadCtx::detach`], [`ThreadCtx::eval_breaker`] |
//! | `_PyEval_StopTheWorldAll`, `_PyEval_StartTheWorldAll` | [`Runtime::stop_the_world`], [`Runtime::start_the_world`] |
//! | `ThreadHandle`, `_PyRuntime.threads.handles` | [`ThreadHandle`] (`fork/handle.rs`) |
//! | `os.fork()` | [`Runtime::fork`] |
//!
//! # Abstraction and departures
//! - Locks spin and yield instead of parking: a lock is one atomic word
//!   holding its owner's token, so the child can re-initialise it with one
//!   store (`_PyMutex_at_fork_reinit`) and the checks can name the owner.
//! - Stop-the-world waits until every other listed thread state is
//!   SUSPENDED instead of counting down; threads created during a pause
//!   start SUSPENDED (`init_threadstate`), deleted ones leave the list
//!   under `HEAD_LOCK`, so the two agree.
//! - No GIL: this is the free-threaded build with the GIL disabled, so
//!   `_PyEval_ReInitThreads` has nothing to do.
//! - QSBR is not part of the runtime: a program uses a `qsbr::Domain` next
//!   to it and attaches to it only while attached here, as CPython's
//!   `detach_thread` detaches QSBR first. [`Runtime::use_qsbr`] names the
//!   domain and the forker's QSBR thread; the child's handler then runs
//!   `_Py_qsbr_after_fork` on it ([`crate::qsbr::Domain::after_fork`]).
//!   [`Options::qsbr_after_fork`] off is the broken twin without it.
//! - Only thread 0 of a runtime forks (the spec's forker), and only once.
//!
//! # Events
//! With [`Options::trace`] on, the runtime records the events of
//! `cpyrt_spec::fork` through a [`Recorder`]: each event's instructions
//! run inside one recorder step, taken after any lock the step needs (so
//! the step itself never blocks), and a run's log replays with
//! `cpyrt_spec::replay::<Fork>` under the spec configuration of the same
//! thread count with the GIL disabled and `Design::CPYTHON`. Spec thread
//! indices are the handles' creation order: the main thread is 0, the
//! first [`ThreadHandle::new`] is 1, and so on; a thread records as its
//! handle's index. The spec creates every handle up front, so a traced
//! program creates its handles before it starts anything, and no more
//! of them than the configuration has threads.
//!
//! Where the process cannot do a spec step as one instruction, the event
//! is recorded where the code corresponds to it:
//! - `fork()` itself runs inside the recorder's step, and each process
//!   appends `Fork` with the side it is on. The recorder's lock is held
//!   across `fork()`, so no other thread is half-way through a step when
//!   memory is copied, and the child, which inherits the lock held by its
//!   only thread, releases it as the step ends. The child's log is a copy
//!   of the parent's up to the fork; the child sends it back to the
//!   parent through a [`Channel`].
//! - `Join` is recorded after the OS join returns, as the spec folds the
//!   once-flag's join into one step (the OS thread has set
//!   `thread_is_exiting` and has nothing left to do but return).
//! - Dropping a [`ThreadHandle`] has no event: the spec's `DropHandle` and
//!   `Gc` (a handle object that becomes garbage and is collected later)
//!   have no counterpart in a runtime whose handle objects are freed when
//!   dropped, so traced programs keep their handles until the log is taken.
//! - Waiting for a lock, a pause or a thread is never an event: the spec's
//!   waiting thread simply takes no step.
//!
//! # Properties
//! [`Runtime::check_child`] evaluates, on the live child, the spec's
//! `child_locks_free_or_live`, `child_only_live_thread_states`,
//! `child_dead_handles_marked_before_code` and `child_no_dead_pause`;
//! [`Repairs`] reports what the handler found and fixed, so a test can
//! show the repairs were needed.
//!
//! # Limits
//! Unix only; not under loom. Shuttle's scheduler cannot fork: under
//! shuttle `Runtime::fork_parent_only` replaces [`Runtime::fork`],
//! running the parent's side (before-fork hook, the parent's `Fork`
//! event, `PyOS_AfterFork_Parent`) so schedules of threads running into
//! the protocol can be explored (`reference/tests/shuttle_fork.rs`); the
//! pipe and process helpers are std's only. Fork in a process whose other threads belong to someone
//! else (a test harness) is unsafe: run it in a process of its own.

use std::cell::Cell;

use crate::primitive::cell::UnsafeCell;
use crate::primitive::sync::Arc;
use crate::primitive::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::primitive::sync::{Mutex, lock};
use crate::primitive::thread::yield_now;
use crate::qsbr::Domain;
use crate::trace::Recorder;

pub use cpyrt_spec::fork::Event;
use cpyrt_spec::fork::{BeforeStep, ChildStep, ParentStep, Process};

#[cfg(not(cpyrt_shuttle))]
mod channel;
mod handle;

#[cfg(not(cpyrt_shuttle))]
pub use channel::{Channel, exit_child, run_alone, wait_child};
pub use handle::{HandleState, JoinError, StartError, ThreadHandle};

/// How a runtime is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Record the spec's events (see the module doc).
    pub trace: bool,
    /// The child's handler runs `_Py_qsbr_after_fork` on the domain named
    /// by [`Runtime::use_qsbr`]. Off: the broken twin that leaves dead
    /// threads' QSBR slots as they were copied.
    pub qsbr_after_fork: bool,
    /// `PyOS_BeforeFork` takes `HEAD_LOCK` last and holds it across
    /// `fork()`, the parent releasing it first (gh-116522). Off: the broken
    /// twin (the spec's `hold_head_lock_across_fork` off), where a thread
    /// finishing `thread_run`, which no pause stops, can be half-way
    /// through a change to the runtime's lists when memory is copied.
    pub hold_head_lock_across_fork: bool,
}

impl Options {
    /// CPython's design, tracing off.
    pub const CPYTHON: Options = Options {
        trace: false,
        qsbr_after_fork: true,
        hold_head_lock_across_fork: true,
    };
}

/// The runtime's name for a thread: 1 for the main thread, then one per
/// started thread. 0 means "unlocked" in a lock word.
pub type Token = u64;

/// The main thread's token.
pub const MAIN: Token = 1;
/// The token of a thread that is not a runtime thread (a destructor run
/// by a foreign thread).
const FOREIGN: Token = u64::MAX;

crate::primitive::thread::thread_local! {
    /// `_Py_tss_tstate`'s identity: the current thread's token.
    static CURRENT: Cell<Token> = const { Cell::new(FOREIGN) };
}

/// The current thread's token ([`FOREIGN`] for a thread the runtime did
/// not start). `PyThread_get_thread_ident_ex`.
pub fn current() -> Token {
    CURRENT.with(Cell::get)
}

/// A runtime mutex (`PyMutex` in `LOCKS_INIT`): one word holding the
/// owner's token, 0 when free.
#[derive(Debug, Default)]
pub struct RtMutex {
    owner: AtomicU64,
}

impl RtMutex {
    pub const fn new() -> Self {
        RtMutex {
            owner: AtomicU64::new(0),
        }
    }

    /// Locks for `me`, spinning with yields (PyMutex spins, then parks).
    pub fn lock(&self, me: Token) {
        assert_ne!(self.owner(), Some(me), "RtMutex is not recursive");
        // Acquire: everything the previous owner did under the lock
        // happens before what we do under it (pairs with `unlock`).
        while self
            .owner
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            yield_now();
        }
    }

    /// Unlocks; `me` must own the lock.
    pub fn unlock(&self, me: Token) {
        assert_eq!(
            self.owner(),
            Some(me),
            "unlock by a thread that does not own it"
        );
        // Release: pairs with the next owner's Acquire in `lock`.
        self.owner.store(0, Ordering::Release);
    }

    /// The owner, if locked.
    pub fn owner(&self) -> Option<Token> {
        match self.owner.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    /// `_PyMutex_at_fork_reinit`: unlocked, whoever held it. Only the
    /// child's after-fork handler calls this, when it is the only thread.
    fn reinit(&self) {
        self.owner.store(0, Ordering::Relaxed);
    }
}

/// The interpreter's import lock: a recursive mutex.
#[derive(Debug, Default)]
pub struct ImportLock {
    lock: RtMutex,
    /// Recursion level; only the owner touches it.
    level: AtomicU32,
}

impl ImportLock {
    /// `_PyImport_AcquireLock` (the caller detaches while it waits).
    pub fn acquire(&self, me: Token) {
        if self.lock.owner() == Some(me) {
            self.level.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.lock.lock(me);
        self.level.store(1, Ordering::Relaxed);
    }

    /// `_PyImport_ReleaseLock`.
    pub fn release(&self, me: Token) {
        assert_eq!(
            self.lock.owner(),
            Some(me),
            "import lock released by a non-owner"
        );
        if self.level.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.lock.unlock(me);
        }
    }

    pub fn owner(&self) -> Option<Token> {
        self.lock.owner()
    }

    /// `_PyImport_ReInitLock`: the owner's identity is re-read in the child
    /// (gh-126688); the forker took the lock in `PyOS_BeforeFork`.
    fn reinit(&self, me: Token) {
        assert!(
            self.lock.owner().is_some(),
            "the import lock is held across fork"
        );
        self.lock.owner.store(me, Ordering::Relaxed);
    }
}

/// `tstate->state` values.
pub const DETACHED: u32 = 0;
pub const ATTACHED: u32 = 1;
pub const SUSPENDED: u32 = 2;

/// A thread state: linked in the runtime's list under `HEAD_LOCK`.
#[derive(Debug)]
pub struct ThreadState {
    pub token: Token,
    /// The spec thread index its events name (see the module doc).
    pub index: u8,
    /// DETACHED, ATTACHED or SUSPENDED.
    state: AtomicU32,
    /// `_PY_EVAL_PLEASE_STOP_BIT`.
    please_stop: AtomicBool,
}

impl ThreadState {
    fn new(token: Token, index: u8, state: u32) -> Arc<ThreadState> {
        Arc::new(ThreadState {
            token,
            index,
            state: AtomicU32::new(state),
            please_stop: AtomicBool::new(false),
        })
    }

    pub fn state(&self) -> u32 {
        self.state.load(Ordering::SeqCst)
    }
}

/// The lists `HEAD_LOCK` guards.
#[derive(Debug, Default)]
struct Lists {
    /// `interp->threads`.
    threads: Vec<Arc<ThreadState>>,
    /// `_PyRuntime.threads.handles`. Intrusive in CPython; here the list
    /// keeps the memory alive and the handle's own refcount decides when
    /// `ThreadHandle_decref` runs.
    handles: Vec<Arc<handle::Handle>>,
}

/// The runtime: its locks, thread states, pause and handle table.
#[derive(Debug)]
pub struct Runtime {
    head: RtMutex,
    lists: UnsafeCell<Lists>,
    runtime_mutex: RtMutex,
    import: ImportLock,
    /// The global pause's mutex (with the read-write mutex: no other
    /// pause exists here).
    pause_mutex: RtMutex,
    pause_requested: AtomicBool,
    next_token: AtomicU64,
    /// `_PyRuntime.main_thread`.
    main_thread: AtomicU64,
    forked: AtomicBool,
    /// The first token handed out after the fork: in the child, threads
    /// with a token at or above it were started there.
    fork_watermark: AtomicU64,
    /// The spec index of the next handle ([`ThreadHandle::new`]).
    next_index: AtomicU32,
    rec: Recorder<Event>,
    qsbr_after_fork: bool,
    hold_head_lock: bool,
    /// The domain `_Py_qsbr_after_fork` repairs in the child, with the
    /// forker's slot.
    qsbr: Mutex<QsbrLink>,
}

/// The domain and the forker's slot `_Py_qsbr_after_fork` works on.
#[derive(Clone, Default)]
struct QsbrLink(Option<(Arc<Domain>, usize)>);

impl std::fmt::Debug for QsbrLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QsbrLink(forker slot {:?})",
            self.0.as_ref().map(|x| x.1)
        )
    }
}

// SAFETY: `lists` is only accessed while holding `head` (see `with_lists`);
// everything else is atomics.
unsafe impl Sync for Runtime {}
// SAFETY: as above; the handles and thread states it owns are Send.
unsafe impl Send for Runtime {}

/// A runtime thread's view of the runtime: what `PyThreadState_Get`
/// returns.
#[derive(Debug, Clone)]
pub struct ThreadCtx {
    pub rt: Arc<Runtime>,
    pub ts: Arc<ThreadState>,
}

impl ThreadCtx {
    pub fn token(&self) -> Token {
        self.ts.token
    }

    /// The spec thread index this thread's events name.
    pub fn index(&self) -> u8 {
        self.ts.index
    }

    /// `_PyThreadState_Attach`: DETACHED to ATTACHED; a SUSPENDED thread
    /// waits until the world restarts (`tstate_wait_attach`).
    pub fn attach(&self) {
        let thread = self.index();
        loop {
            // SeqCst: the requester's CAS DETACHED->SUSPENDED and ours are
            // ordered; whichever wins, the other sees it.
            let r = self.rt.rec.step(|e| {
                let r = self.ts.state.compare_exchange(
                    DETACHED,
                    ATTACHED,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                if r.is_ok() {
                    e.emit(Event::Attach { thread });
                }
                r
            });
            match r {
                Ok(_) => return,
                Err(s) => {
                    assert_eq!(s, SUSPENDED, "attach of an attached thread");
                    yield_now();
                }
            }
        }
    }

    /// `_PyThreadState_Detach`.
    pub fn detach(&self) {
        assert_eq!(self.ts.state(), ATTACHED, "detach of a detached thread");
        let thread = self.index();
        self.rt.rec.step(|e| {
            self.ts.state.store(DETACHED, Ordering::SeqCst);
            e.emit(Event::Detach { thread });
        });
    }

    /// `_Py_HandlePending`: a safe point. An attached thread asked to stop
    /// runs `_PyThreadState_Suspend`: under `HEAD_LOCK` it finds the pause
    /// that asked, SUSPENDED if one is still requested, DETACHED if it is
    /// over (the bit can outlive the pause when the thread detached in
    /// between and was parked), then attaches again, waiting out the
    /// pause.
    pub fn eval_breaker(&self) {
        if !self.ts.please_stop.load(Ordering::SeqCst) {
            return;
        }
        let (me, thread) = (self.token(), self.index());
        self.rt.head.lock(me);
        let handled = self.rt.rec.step(|e| {
            if !self.ts.please_stop.swap(false, Ordering::SeqCst) {
                return false;
            }
            assert_eq!(self.ts.state(), ATTACHED);
            let to = if self.rt.pause_requested.load(Ordering::SeqCst) {
                SUSPENDED
            } else {
                DETACHED
            };
            self.ts.state.store(to, Ordering::SeqCst);
            e.emit(Event::Suspend { thread });
            true
        });
        self.rt.head.unlock(me);
        if handled {
            self.attach();
        }
    }

    /// Runs `f` detached (`Py_BEGIN_ALLOW_THREADS`): a blocking call.
    pub fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        self.detach();
        let r = f();
        self.attach();
        r
    }
}

impl Runtime {
    /// Starts a runtime with [`Options::CPYTHON`]: its main thread,
    /// attached, is the caller.
    pub fn start() -> ThreadCtx {
        Runtime::start_with(Options::CPYTHON)
    }

    /// Starts a runtime built as `opts` says.
    pub fn start_with(opts: Options) -> ThreadCtx {
        let rt = Arc::new(Runtime {
            head: RtMutex::new(),
            lists: UnsafeCell::new(Lists::default()),
            runtime_mutex: RtMutex::new(),
            import: ImportLock::default(),
            pause_mutex: RtMutex::new(),
            pause_requested: AtomicBool::new(false),
            next_token: AtomicU64::new(MAIN + 1),
            main_thread: AtomicU64::new(MAIN),
            forked: AtomicBool::new(false),
            fork_watermark: AtomicU64::new(u64::MAX),
            next_index: AtomicU32::new(1),
            rec: Recorder::new(opts.trace),
            qsbr_after_fork: opts.qsbr_after_fork,
            hold_head_lock: opts.hold_head_lock_across_fork,
            qsbr: Mutex::new(QsbrLink::default()),
        });
        CURRENT.with(|c| c.set(MAIN));
        let ts = ThreadState::new(MAIN, 0, ATTACHED);
        rt.with_lists(MAIN, |l| l.threads.push(Arc::clone(&ts)));
        ThreadCtx { rt, ts }
    }

    /// The event recorder.
    pub fn trace(&self) -> &Recorder<Event> {
        &self.rec
    }

    /// Takes the events recorded so far (empty when tracing is off).
    pub fn take_trace(&self) -> Vec<Event> {
        self.rec.take()
    }

    /// Names the QSBR domain the child's handler repairs
    /// (`_Py_qsbr_after_fork`) and the forker's slot in it
    /// ([`crate::qsbr::QsbrThread::slot_index`]).
    pub fn use_qsbr(&self, domain: &Arc<Domain>, forker_slot: usize) {
        *lock(&self.qsbr) = QsbrLink(Some((Arc::clone(domain), forker_slot)));
    }

    /// `HEAD_LOCK`.
    pub fn head(&self) -> &RtMutex {
        &self.head
    }

    /// A mutex of `LOCKS_INIT` besides `HEAD_LOCK` (the extension cache's,
    /// atexit's, ...): a thread may hold it across a blocking call.
    pub fn runtime_mutex(&self) -> &RtMutex {
        &self.runtime_mutex
    }

    pub fn import_lock(&self) -> &ImportLock {
        &self.import
    }

    /// Runs `f` on the lists under `HEAD_LOCK`, as thread `me`.
    fn with_lists<R>(&self, me: Token, f: impl FnOnce(&mut Lists) -> R) -> R {
        self.head.lock(me);
        // SAFETY: HEAD_LOCK is held: no other access to the lists.
        let r = self.lists.with_mut(|l| f(unsafe { &mut *l }));
        self.head.unlock(me);
        r
    }

    /// The tokens of the listed thread states.
    pub fn thread_tokens(&self, me: Token) -> Vec<Token> {
        self.with_lists(me, |l| l.threads.iter().map(|t| t.token).collect())
    }

    /// Takes `lock` for `ctx`'s thread, attached, checking the eval
    /// breaker between attempts (a thread waiting for a lock can still be
    /// asked to stop). The acquisition and `event` are one step.
    fn lock_attached(&self, ctx: &ThreadCtx, lock: &RtMutex, event: Event) {
        let me = ctx.token();
        assert_ne!(lock.owner(), Some(me), "RtMutex is not recursive");
        loop {
            let took = self.rec.step(|e| {
                // Acquire: pairs with the owner's Release in `unlock`.
                let ok = lock
                    .owner
                    .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok();
                if ok {
                    e.emit(event);
                }
                ok
            });
            if took {
                return;
            }
            ctx.eval_breaker();
            yield_now();
        }
    }

    /// `_PyImport_AcquireLock` from Python code, one level deep (the
    /// spec's workers and the child's forker), recorded.
    pub fn import_acquire(&self, ctx: &ThreadCtx) {
        self.lock_attached(
            ctx,
            &self.import.lock,
            Event::ImportAcquire {
                thread: ctx.index(),
            },
        );
        self.import.level.store(1, Ordering::Relaxed);
    }

    /// `_PyImport_ReleaseLock` of [`Runtime::import_acquire`], recorded.
    pub fn import_release(&self, ctx: &ThreadCtx) {
        let thread = ctx.index();
        self.rec.step(|e| {
            self.import.release(ctx.token());
            e.emit(Event::ImportRelease { thread });
        });
    }

    /// Locks [`Runtime::runtime_mutex`], recorded.
    pub fn mutex_lock(&self, ctx: &ThreadCtx) {
        let event = Event::MutexLock {
            thread: ctx.index(),
        };
        self.lock_attached(ctx, &self.runtime_mutex, event);
    }

    /// Unlocks [`Runtime::runtime_mutex`], recorded.
    pub fn mutex_unlock(&self, ctx: &ThreadCtx) {
        let thread = ctx.index();
        self.rec.step(|e| {
            self.runtime_mutex.unlock(ctx.token());
            e.emit(Event::MutexUnlock { thread });
        });
    }

    /// `tstate_delete_common` from `_PyThreadState_DeleteCurrent`, with
    /// the thread attached: unlinked under `HEAD_LOCK` in one step (the
    /// spec's `ExitStart`), so no pause sees it half-way.
    fn delete_current(&self, ctx: &ThreadCtx) {
        let (me, thread) = (ctx.token(), ctx.index());
        assert_eq!(ctx.ts.state(), ATTACHED, "a thread exits attached");
        self.head.lock(me);
        self.rec.step(|e| {
            ctx.ts.state.store(DETACHED, Ordering::SeqCst);
            // SAFETY: HEAD_LOCK is held: no other access to the lists.
            self.lists
                .with_mut(|l| unsafe { &mut *l }.threads.retain(|t| t.token != me));
            e.emit(Event::ExitStart { thread });
        });
        self.head.unlock(me);
    }

    /// An interpreter pause (`_PyEval_StopTheWorld`, a free-threaded GC):
    /// every other listed thread ends up SUSPENDED; the requester stays
    /// attached. Returns with the pause's mutex held. The spec lets thread
    /// 1 run it in the parent and the forker in the child.
    pub fn stop_the_world(&self, ctx: &ThreadCtx) {
        self.stop_world(ctx, false);
    }

    /// `stop_the_world` of the global pause (`global`) or the
    /// interpreter's: the pause's mutex (one for both pauses, which
    /// exclude each other), the request with its first park, then polls
    /// until every other listed thread is SUSPENDED. A poll that parks
    /// nothing and finds some thread still running is the spec's waiting
    /// requester, which takes no step: it is not recorded.
    fn stop_world(&self, ctx: &ThreadCtx, global: bool) {
        let (me, thread) = (ctx.token(), ctx.index());
        self.lock_attached(ctx, &self.pause_mutex, Event::PauseLock { thread, global });
        let mut first = true;
        loop {
            // park_detached_threads under HEAD_LOCK.
            self.head.lock(me);
            let all = self.rec.step(|e| {
                if first {
                    self.pause_requested.store(true, Ordering::SeqCst);
                }
                // SAFETY: HEAD_LOCK is held: no other access to the lists.
                let l = self.lists.with(|l| unsafe { &*l });
                let (mut all, mut parked) = (true, false);
                for t in l.threads.iter().filter(|t| t.token != me) {
                    match t.state.compare_exchange(
                        DETACHED,
                        SUSPENDED,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    ) {
                        Ok(_) => parked = true,
                        Err(SUSPENDED) => {}
                        Err(_) => {
                            t.please_stop.store(true, Ordering::SeqCst);
                            all = false;
                        }
                    }
                }
                if first {
                    e.emit(Event::PauseRequest { thread, global });
                } else if parked || all {
                    e.emit(Event::PausePoll { thread, global });
                }
                all
            });
            self.head.unlock(me);
            first = false;
            if all {
                return;
            }
            // The 1 ms wait of stop_the_world, attached (gh-118332).
            yield_now();
        }
    }

    /// SUSPENDED threads back to DETACHED, the pause over and its mutex
    /// released, as one step recording `event`. The caller holds
    /// `HEAD_LOCK`.
    fn restart_world(&self, me: Token, e: &mut crate::trace::Emit<'_, Event>, event: Event) {
        self.pause_requested.store(false, Ordering::SeqCst);
        // SAFETY: HEAD_LOCK is held by the caller.
        let l = self.lists.with(|l| unsafe { &*l });
        for t in l.threads.iter().filter(|t| t.token != me) {
            let _ =
                t.state
                    .compare_exchange(SUSPENDED, DETACHED, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.pause_mutex.unlock(me);
        e.emit(event);
    }

    /// `_PyEval_StartTheWorld` of an interpreter pause: SUSPENDED threads
    /// back to DETACHED, the pause's mutex released.
    pub fn start_the_world(&self, ctx: &ThreadCtx) {
        let (me, thread) = (ctx.token(), ctx.index());
        assert_eq!(self.pause_mutex.owner(), Some(me), "start without stop");
        self.head.lock(me);
        self.rec
            .step(|e| self.restart_world(me, e, Event::PauseStart { thread }));
        self.head.unlock(me);
    }
}

mod process;

pub use process::{Forked, Repairs};

/// The spec's `Fork` event for the side `fork()` returned on.
fn fork_event(child: bool) -> Event {
    Event::Fork {
        thread: 0,
        follow: if child {
            Process::Child
        } else {
            Process::Parent
        },
    }
}
