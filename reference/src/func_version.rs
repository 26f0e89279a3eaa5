//! Function versions and a specialized `CALL`, with real threads and atomics.
//!
//! # Protocol
//! Follows `Objects/funcobject.c` (`_PyFunction_ClearVersion`,
//! `func_clear_version`, `func_set_code`, `func_set_defaults`),
//! `Objects/codeobject.c` (`co_version` from `interp->func_state.next_version`
//! under `func_state.mutex`), `Python/specialize.c` (`specialize_py_call`)
//! and `Python/bytecodes.c` (`_CHECK_FUNCTION_VERSION` followed by the lock-free
//! reads of `CALL_PY_EXACT_ARGS` / `CALL_PY_GENERAL`), CPython 3.14 with
//! gh-115999. The spec is `cpyrt_spec::func_version`; every method here
//! records the spec event of the step it performs.
//!
//! # Abstraction
//! - One function (the spec's function 0) whose five critical attributes are
//!   atomics holding small ids; the attributes at `MAKE_FUNCTION` are kept
//!   as `origin`, and every read after a passed guard is asserted against
//!   them (the spec's `guarded_reads_match_version`). A failed assertion is
//!   a panic whose message names that property, so loom and shuttle report
//!   it as a failing execution.
//! - The free-threaded build: no version cache (the spec with
//!   `cache_size` 0); each [`Thread`] keeps its own inline cache, as
//!   thread-local bytecode does.
//! - The pause is a minimal stop-the-world behind one mutex, exactly the
//!   spec's abstraction: one requester at a time, attached threads suspend
//!   at safe points, detached threads cannot attach while a pause is
//!   requested, the world is stopped when no other thread is attached. The
//!   `stw` mechanism's runtime is the full protocol; this module will take
//!   its pause when that exists.
//!
//! # Memory ordering
//! Versions and attributes are `Relaxed` atomics, as CPython's plain
//! loads and stores of `func_version` and `func_code` are: the pause mutex
//! supplies every happens-before edge the design needs. A reader's guard
//! and reads happen while it is attached; the requester clears the version
//! only after it observed, under the mutex, that the reader left the
//! attached state (the reader's release of the mutex happens before the
//! requester's acquire), and a thread that attaches later acquires the
//! mutex the requester released in `start_the_world`, so it sees the cleared
//! version. Without the pause (the `no-pause` twin) no such edge exists.
//!
//! # Limits
//! Code objects are never freed, and there is one function: the cache and
//! deallocation halves of the spec are covered by the model alone.

use cpyrt_spec::func_version::{
    Attr, CLEARED, CallKind, Config as SpecConfig, Design, Event, FIRST_VALID, MAX_OBJECTS, Run,
    valid,
};

use crate::primitive::sync::atomic::{AtomicU32, Ordering};
use crate::primitive::sync::{Arc, Condvar, Mutex, MutexGuard, lock, wait};
use crate::trace::Recorder;

/// The runtime's bounds and design.
#[derive(Clone, Debug)]
pub struct Config {
    pub threads: usize,
    /// The last version the counter hands out before it saturates.
    pub last_version: u32,
    /// The specialized call threads run.
    pub call: CallKind,
    pub design: Design,
    /// Record spec events.
    pub trace: bool,
}

impl Config {
    /// The spec configuration a trace of this runtime replays under.
    pub fn spec(&self) -> SpecConfig {
        SpecConfig {
            threads: self.threads,
            max_codes: MAX_OBJECTS,
            max_functions: 1,
            max_writes: u8::MAX - 1,
            last_version: self.last_version,
            cache_size: 0,
            call: self.call,
            writable: Attr::ALL.to_vec(),
            design: self.design,
        }
    }
}

/// The function the threads call (function 0 of the spec).
#[derive(Debug)]
struct Func {
    /// `func_version`.
    version: AtomicU32,
    /// `func_code` (a code index), `func_defaults`, `func_kwdefaults`,
    /// `func_closure`, `vectorcall`, indexed like [`Attr::ALL`].
    attrs: [AtomicU32; 5],
    /// The attributes when the version was assigned.
    origin: [u32; 5],
}

#[derive(Debug)]
struct PauseState {
    /// `stw->requester`; `Some` while a pause is requested or in force.
    requester: Option<usize>,
    /// `tstate->state` of every thread.
    run: Vec<Run>,
}

/// One interpreter's function-version state and pause.
#[derive(Debug)]
pub struct Runtime {
    cfg: Config,
    /// `interp->func_state.next_version`, under `func_state.mutex`.
    next_version: Mutex<u32>,
    /// `co_version` of every code object, by index.
    codes: Mutex<Vec<u32>>,
    func: Func,
    /// Attribute writes begun; a non-code attribute takes the count as its
    /// new value, so every write stores a fresh object.
    writes: AtomicU32,
    pause: Mutex<PauseState>,
    changed: Condvar,
    trace: Recorder<Event>,
}

impl Runtime {
    /// Code 0 and function 0 made from it; every thread attached.
    pub fn new(cfg: Config) -> Arc<Runtime> {
        let origin = [0; 5];
        let rt = Runtime {
            next_version: Mutex::new(advance(&cfg, FIRST_VALID)),
            codes: Mutex::new(vec![FIRST_VALID]),
            func: Func {
                version: AtomicU32::new(FIRST_VALID),
                attrs: origin.map(AtomicU32::new),
                origin,
            },
            writes: AtomicU32::new(0),
            pause: Mutex::new(PauseState {
                requester: None,
                run: vec![Run::Attached; cfg.threads],
            }),
            changed: Condvar::new(),
            trace: Recorder::new(cfg.trace),
            cfg,
        };
        Arc::new(rt)
    }

    /// The events recorded so far.
    pub fn trace(&self) -> Vec<Event> {
        self.trace.take()
    }
}

/// The handle of thread `id` of `rt` (each id once).
pub fn thread(rt: &Arc<Runtime>, id: usize) -> Thread {
    assert!(id < rt.cfg.threads, "thread {id} out of range");
    Thread {
        rt: Arc::clone(rt),
        id,
        cache: 0,
    }
}

/// `init_code`: the counter after handing out `next`.
fn advance(cfg: &Config, next: u32) -> u32 {
    match next {
        0 => 0,
        v if v >= cfg.last_version => {
            if cfg.design.counter_saturates {
                0
            } else {
                FIRST_VALID
            }
        }
        v => v + 1,
    }
}

/// One instruction of a scripted thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Execute the call site once ([`Thread::call`]).
    Call,
    /// Create a code object and assign it to `__code__`.
    SetCode,
    /// Assign a fresh object to a non-code attribute.
    Set(Attr),
    /// Detach (a blocking call without the thread state).
    Detach,
    /// Attach again.
    Attach,
}

/// One thread: its thread state in the pause and its call site's inline
/// cache.
#[derive(Debug)]
pub struct Thread {
    rt: Arc<Runtime>,
    id: usize,
    /// The inline cache `func_version`; 0 while unspecialized.
    cache: u32,
}

impl Thread {
    fn tid(&self) -> u8 {
        self.id as u8
    }

    /// Runs `ops` as an instruction loop: an eval-breaker check before each
    /// instruction while attached, and a detach at the end so that no
    /// pause waits for a thread that has finished.
    pub fn run(&mut self, ops: &[Op]) {
        let mut attached = true;
        for &op in ops {
            if attached {
                self.safe_point();
            }
            match op {
                Op::Call => {
                    self.call();
                }
                Op::SetCode => {
                    let code = self.new_code();
                    self.set_code(code);
                }
                Op::Set(attr) => self.set(attr),
                Op::Detach => {
                    self.detach();
                    attached = false;
                }
                Op::Attach => {
                    self.attach();
                    attached = true;
                }
            }
        }
        if attached {
            self.detach();
        }
    }

    /// `init_code`: a new code object takes the next version. Returns its
    /// index.
    pub fn new_code(&mut self) -> u8 {
        let rt = &*self.rt;
        let mut next = lock(&rt.next_version);
        let mut codes = lock(&rt.codes);
        rt.trace.step(|e| {
            let version = *next;
            *next = advance(&rt.cfg, version);
            codes.push(version);
            let code = (codes.len() - 1) as u8;
            e.emit(Event::NewCode {
                thread: self.tid(),
                code,
                version,
            });
            code
        })
    }

    /// One execution of the call site: the generic call specializes it;
    /// the specialized call guards on the version and reads the callee's
    /// attributes without locks. Returns whether the specialized path ran.
    pub fn call(&mut self) -> bool {
        let rt = Arc::clone(&self.rt);
        let f = &rt.func;
        let thread = self.tid();
        if !valid(self.cache) {
            // specialize_py_call after the generic call.
            self.cache = rt.trace.step(|e| {
                let v = f.version.load(Ordering::Relaxed);
                if valid(v) {
                    e.emit(Event::Specialize {
                        thread,
                        func: 0,
                        version: v,
                    });
                }
                if valid(v) { v } else { 0 }
            });
            return false;
        }
        // _CHECK_FUNCTION_VERSION.
        let pass = rt.trace.step(|e| {
            let pass = f.version.load(Ordering::Relaxed) == self.cache;
            e.emit(Event::Guard {
                thread: self.tid(),
                func: 0,
                pass,
            });
            pass
        });
        if !pass {
            self.cache = 0;
            return false;
        }
        for &attr in rt.cfg.call.reads() {
            if !rt.cfg.design.no_safe_point_after_guard {
                // The caveat's broken design: an eval-breaker check (or a
                // detach around a lock) inside the instruction.
                self.safe_point();
            }
            let value = rt.trace.step(|e| {
                let value = f.attrs[attr as usize].load(Ordering::Relaxed);
                e.emit(Event::Read {
                    thread: self.tid(),
                    attr,
                    value: value as u8,
                });
                value
            });
            assert_eq!(
                value, f.origin[attr as usize],
                "guarded_reads_match_version: thread {} read {attr:?} = {value} after its guard passed",
                self.id
            );
        }
        true
    }

    /// `func_set_code`: invalidate, then store code object `code`.
    pub fn set_code(&mut self, code: u8) {
        self.set_attr(Attr::Code, Some(code));
    }

    /// `func_set_defaults`, `func_set_kwdefaults`, `PyFunction_SetClosure` or
    /// `PyFunction_SetVectorcall`: invalidate, then store a fresh object.
    pub fn set(&mut self, attr: Attr) {
        assert_ne!(attr, Attr::Code, "use set_code");
        self.set_attr(attr, None);
    }

    fn set_attr(&mut self, attr: Attr, code: Option<u8>) {
        let rt = Arc::clone(&self.rt);
        let f = &rt.func;
        // _PyFunction_ClearVersion's first load decides whether to pause.
        let (pause, value) = rt.trace.step(|e| {
            let writes = rt.writes.fetch_add(1, Ordering::Relaxed) + 1;
            let value = code.map_or(writes, u32::from);
            let pause = valid(f.version.load(Ordering::Relaxed));
            e.emit(Event::SetAttr {
                thread: self.tid(),
                func: 0,
                attr,
                value: value as u8,
                pause,
            });
            (pause, value)
        });
        if pause {
            if rt.cfg.design.stop_the_world {
                self.stop_the_world();
                self.clear_version();
                self.start_the_world();
            } else {
                self.clear_version();
            }
        }
        rt.trace.step(|e| {
            f.attrs[attr as usize].store(value, Ordering::Relaxed);
            e.emit(Event::WriteAttr {
                thread: self.tid(),
                func: 0,
                attr,
                value: value as u8,
            });
        });
    }

    /// `func_clear_version` (a no-op on an invalid version).
    fn clear_version(&self) {
        let f = &self.rt.func;
        self.rt.trace.step(|e| {
            if valid(f.version.load(Ordering::Relaxed)) {
                f.version.store(CLEARED, Ordering::Relaxed);
            }
            e.emit(Event::ClearVersion {
                thread: self.tid(),
                func: 0,
            });
        });
    }

    /// An eval-breaker check: suspend if another thread requested a pause.
    ///
    /// CPython reads the eval-breaker bit without a lock and takes
    /// `HEAD_LOCK` only when it is set; this runtime takes the pause mutex
    /// at every safe point instead. The decision is the same (it is taken
    /// under the lock either way), and the lock makes every safe point an
    /// operation on the same object as the requester's, which loom's
    /// partial-order reduction then interleaves with it: with a relaxed
    /// hint it never scheduled a request between a reader's guard and its
    /// reads.
    pub fn safe_point(&mut self) {
        let rt = Arc::clone(&self.rt);
        let mut st = lock(&rt.pause);
        if st.requester.is_some_and(|r| r != self.id) && st.run[self.id] == Run::Attached {
            st = self.suspend(st);
        }
        drop(st);
    }

    /// `_PyThreadState_Suspend` and the wait in `_PyThreadState_Attach`:
    /// park until the requester restarts the world, then attach again.
    fn suspend<'a>(&self, mut st: MutexGuard<'a, PauseState>) -> MutexGuard<'a, PauseState> {
        let rt = &*self.rt;
        rt.trace.step(|e| {
            st.run[self.id] = Run::Suspended;
            e.emit(Event::Suspend { thread: self.tid() });
        });
        rt.changed.notify_all();
        while st.run[self.id] == Run::Suspended {
            st = wait(&rt.changed, st);
        }
        self.attach_locked(st)
    }

    fn attach_locked<'a>(&self, mut st: MutexGuard<'a, PauseState>) -> MutexGuard<'a, PauseState> {
        let rt = &*self.rt;
        // A detached thread cannot attach while a pause is requested: the
        // requester parked it.
        while st.requester.is_some() {
            st = wait(&rt.changed, st);
        }
        rt.trace.step(|e| {
            st.run[self.id] = Run::Attached;
            e.emit(Event::Attach { thread: self.tid() });
        });
        st
    }

    /// `_PyThreadState_Detach`, between instructions.
    pub fn detach(&mut self) {
        let rt = Arc::clone(&self.rt);
        let mut st = lock(&rt.pause);
        assert_eq!(
            st.run[self.id],
            Run::Attached,
            "detach needs an attached thread"
        );
        rt.trace.step(|e| {
            st.run[self.id] = Run::Detached;
            e.emit(Event::Detach { thread: self.tid() });
        });
        drop(st);
        rt.changed.notify_all();
    }

    /// `_PyThreadState_Attach`.
    pub fn attach(&mut self) {
        let rt = Arc::clone(&self.rt);
        let st = lock(&rt.pause);
        assert_eq!(
            st.run[self.id],
            Run::Detached,
            "attach needs a detached thread"
        );
        drop(self.attach_locked(st));
    }

    /// `stop_the_world`: take the pause (parking, detached, while another
    /// thread holds it), then wait until no other thread is attached.
    fn stop_the_world(&self) {
        let rt = &*self.rt;
        let mut st = lock(&rt.pause);
        while st.requester.is_some() {
            // Blocked on stw->mutex: PyMutex_Lock parks detached.
            st = self.suspend(st);
        }
        rt.trace.step(|e| {
            st.requester = Some(self.id);
            e.emit(Event::RequestStop { thread: self.tid() });
        });
        while st
            .run
            .iter()
            .enumerate()
            .any(|(u, r)| u != self.id && *r == Run::Attached)
        {
            st = wait(&rt.changed, st);
        }
    }

    /// `start_the_world`: suspended threads become detached and may attach.
    fn start_the_world(&self) {
        let rt = &*self.rt;
        let mut st = lock(&rt.pause);
        assert_eq!(
            st.requester,
            Some(self.id),
            "only the requester restarts the world"
        );
        rt.trace.step(|e| {
            st.requester = None;
            for r in st.run.iter_mut() {
                if *r == Run::Suspended {
                    *r = Run::Detached;
                }
            }
            e.emit(Event::StartWorld { thread: self.tid() });
        });
        drop(st);
        rt.changed.notify_all();
    }
}
