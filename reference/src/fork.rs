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
//!   `detach_thread` detaches QSBR first. The pause before `fork()` then
//!   leaves every other thread's QSBR slot OFFLINE, which is what lets the
//!   child reclaim; `_Py_qsbr_after_fork` (freeing dead threads' slots and
//!   re-initialising the domain's mutex) is not implemented, so dead
//!   slots stay allocated and a domain mutex held across a blocking call
//!   at the fork would stay held.
//! - Only thread 0 of a runtime forks (the spec's forker), and only once.
//! - No event recording: the spec's fork events name the steps of one
//!   thread in one process, and the test checks the spec's invariants on
//!   the child directly ([`Runtime::check_child`]).
//!
//! # Properties
//! [`Runtime::check_child`] evaluates, on the live child, the spec's
//! `child_locks_free_or_live`, `child_only_live_thread_states`,
//! `child_dead_handles_marked_before_code` and `child_no_dead_pause`;
//! [`Repairs`] reports what the handler found and fixed, so a test can
//! show the repairs were needed.
//!
//! # Limits
//! Unix only; not under loom or shuttle (a model checker's scheduler
//! cannot fork). Fork in a process whose other threads belong to someone
//! else (a test harness) is unsafe: run it in a process of its own.

use std::cell::Cell;

use crate::primitive::cell::UnsafeCell;
use crate::primitive::sync::Arc;
use crate::primitive::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::primitive::thread::yield_now;

mod handle;

pub use handle::{HandleState, JoinError, StartError, ThreadHandle};

/// The runtime's name for a thread: 1 for the main thread, then one per
/// started thread. 0 means "unlocked" in a lock word.
pub type Token = u64;

/// The main thread's token.
pub const MAIN: Token = 1;
/// The token of a thread that is not a runtime thread (a destructor run
/// by a foreign thread).
const FOREIGN: Token = u64::MAX;

std::thread_local! {
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
    /// DETACHED, ATTACHED or SUSPENDED.
    state: AtomicU32,
    /// `_PY_EVAL_PLEASE_STOP_BIT`.
    please_stop: AtomicBool,
}

impl ThreadState {
    fn new(token: Token, state: u32) -> Arc<ThreadState> {
        Arc::new(ThreadState {
            token,
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

    /// `_PyThreadState_Attach`: DETACHED to ATTACHED; a SUSPENDED thread
    /// waits until the world restarts (`tstate_wait_attach`).
    pub fn attach(&self) {
        loop {
            // SeqCst: the requester's CAS DETACHED->SUSPENDED and ours are
            // ordered; whichever wins, the other sees it.
            match self.ts.state.compare_exchange(
                DETACHED,
                ATTACHED,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
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
        self.ts.state.store(DETACHED, Ordering::SeqCst);
    }

    /// `_Py_HandlePending`: a safe point. An attached thread asked to stop
    /// suspends itself and waits for the world to restart.
    pub fn eval_breaker(&self) {
        if self.ts.please_stop.swap(false, Ordering::SeqCst) {
            assert_eq!(self.ts.state(), ATTACHED);
            self.ts.state.store(SUSPENDED, Ordering::SeqCst);
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
    /// Starts a runtime: its main thread, attached, is the caller.
    pub fn start() -> ThreadCtx {
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
        });
        CURRENT.with(|c| c.set(MAIN));
        let ts = ThreadState::new(MAIN, ATTACHED);
        rt.with_lists(MAIN, |l| l.threads.push(Arc::clone(&ts)));
        ThreadCtx { rt, ts }
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

    /// `new_threadstate` under `HEAD_LOCK`; SUSPENDED if a pause is on.
    fn new_thread_state(&self, me: Token) -> Arc<ThreadState> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.with_lists(me, |l| {
            let state = if self.pause_requested.load(Ordering::SeqCst) {
                SUSPENDED
            } else {
                DETACHED
            };
            let ts = ThreadState::new(token, state);
            l.threads.push(Arc::clone(&ts));
            ts
        })
    }

    /// `tstate_delete_common`: unlink under `HEAD_LOCK`.
    fn delete_thread_state(&self, me: Token) {
        self.with_lists(me, |l| l.threads.retain(|t| t.token != me));
    }

    /// `_PyEval_StopTheWorldAll`: every other listed thread ends up
    /// SUSPENDED; the requester stays attached. Returns with the pause's
    /// mutex held.
    pub fn stop_the_world(&self, ctx: &ThreadCtx) {
        let me = ctx.token();
        self.pause_mutex.lock(me);
        self.pause_requested.store(true, Ordering::SeqCst);
        loop {
            // park_detached_threads under HEAD_LOCK.
            let all = self.with_lists(me, |l| {
                let mut all = true;
                for t in l.threads.iter().filter(|t| t.token != me) {
                    match t.state.compare_exchange(
                        DETACHED,
                        SUSPENDED,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    ) {
                        Ok(_) | Err(SUSPENDED) => {}
                        Err(_) => {
                            t.please_stop.store(true, Ordering::SeqCst);
                            all = false;
                        }
                    }
                }
                all
            });
            if all {
                return;
            }
            // The 1 ms wait of stop_the_world, attached (gh-118332).
            yield_now();
        }
    }

    /// `_PyEval_StartTheWorldAll`: SUSPENDED threads back to DETACHED, the
    /// pause's mutex released.
    pub fn start_the_world(&self, ctx: &ThreadCtx) {
        let me = ctx.token();
        assert_eq!(self.pause_mutex.owner(), Some(me), "start without stop");
        self.with_lists(me, |l| {
            self.pause_requested.store(false, Ordering::SeqCst);
            for t in l.threads.iter().filter(|t| t.token != me) {
                let _ = t.state.compare_exchange(
                    SUSPENDED,
                    DETACHED,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
        });
        self.pause_mutex.unlock(me);
    }
}

mod process;

pub use process::{Forked, Repairs};
