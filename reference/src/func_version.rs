//! Function versions and a specialized `CALL` on the shared instruction
//! loop, invalidated under the stop-the-world runtime's real pause.
//!
//! # Protocol
//! Follows `Objects/funcobject.c` (`_PyFunction_SetVersion`,
//! `func_clear_version`, `_PyFunction_ClearVersion`, `func_set_code`,
//! `func_set_defaults`, `func_set_kwdefaults`, `PyFunction_SetClosure`,
//! `PyFunction_SetVectorcall`, `_PyFunction_Vectorcall`),
//! `Objects/codeobject.c` (`init_code`: `co_version` from
//! `interp->func_state.next_version` under `func_state.mutex`),
//! `Python/specialize.c` (`specialize_py_call` writes the callee's version
//! into the inline cache) and the `CALL` family of `Python/bytecodes.c`
//! (`_CHECK_FUNCTION_VERSION`, then the lock-free reads of
//! `_CHECK_FUNCTION_EXACT_ARGS` and `_INIT_CALL_PY_EXACT_ARGS` for
//! `CALL_PY_EXACT_ARGS`, of `_PY_FRAME_GENERAL` for `CALL_PY_GENERAL`;
//! `MAKE_FUNCTION`), CPython 3.14 with gh-115999 (PR 124997). The spec is
//! `cpyrt_spec::func_version`.
//!
//! # Shape
//! A [`Runtime`] holds the code objects, the functions, the version
//! counter and the version cache of one interpreter, over a
//! [`crate::stw::Runtime`] whose thread states and pause it uses. Each OS
//! thread drives a [`Thread`]: a `crate::stw::Thread` plus its call site's
//! inline cache. A `Thread` is a `crate::eval::Machine`, so its program of
//! [`Op`]s runs on the shared instruction loop, and the loop's eval-breaker
//! check before each instruction is the stop-the-world runtime's
//! (`_Py_HandlePending`'s PLEASE_STOP branch): the safe points are exactly
//! those checks. The first change of a critical attribute of a function
//! whose version is valid stops the world with
//! `crate::stw::Thread::stop_the_world` (per-interpreter scope, as
//! `_PyEval_StopTheWorld(interp)`), clears the version, starts the world,
//! and only then writes.
//!
//! # Events
//! The function-version spec keeps a minimal pause (`RequestStop`,
//! `Suspend`, `StartWorld`, `Attach`, `Detach`). The runtime records its
//! own steps (`NewCode`, `MakeFunction`, `Specialize`, `Guard`, `Read`,
//! `SetAttr`, `ClearVersion`, `WriteAttr`) inside the stop-the-world
//! runtime's recorder step, noting that log's position, and
//! [`Runtime::traces`] derives the pause events from the stop-the-world
//! trace (`translate.rs`), which itself replays through `cpyrt_spec::stw`.
//! A recorded run is thus checked against both specs.
//!
//! # Abstraction
//! - Objects are small integers, as in the spec: a function's attributes
//!   are atomics holding a code index or the sequence number of the write
//!   that stored them. The attributes at `MAKE_FUNCTION` are kept as the
//!   function's `origin`, and in debug builds and under loom and shuttle
//!   every read after a passed guard is asserted against them (the spec's
//!   `guarded_reads_match_version`); a failed assertion panics with that
//!   name, so loom and shuttle report it. Release builds on `std` skip the
//!   check, so the bench times the call alone.
//! - Each [`Thread`] has one call site and so one inline cache, as
//!   thread-local bytecode gives each thread its own (`co_tlbc`).
//! - The version cache (`func_version_cache`) is bookkeeping of the
//!   default build; the free-threaded build keeps none (`cache_size` 0,
//!   the default here). With `cache_size` above 0 the runtime keeps it
//!   under a mutex, so that its single-step invariant is checked against
//!   real runs too.
//! - Code objects are never freed (`FreeCode` is covered by the model
//!   alone), and blocking calls detach around nothing.
//!
//! # Memory ordering
//! Versions and attributes are `Relaxed` atomics, as CPython's plain loads
//! and stores of `func_version` and `func_code` are: the pause supplies
//! every happens-before edge the design needs. A reader's guard and reads
//! happen while it is attached and before its next eval-breaker check; the
//! requester clears the version only after the reader suspended at that
//! check and decremented the countdown under HEAD_LOCK, which the
//! requester's wait then acquires. A thread that attaches after the pause
//! does so with a `SeqCst` CAS that reads `start_the_world`'s store of
//! DETACHED, which follows the clear. Without the pause (the `no-pause`
//! design, gh-115999) no such edge exists, and with an eval-breaker check
//! between the guard and the reads (the caveat's broken design) the edge
//! comes too early. `MAKE_FUNCTION` writes a new function's fields before
//! a `Release` store of the function count, which callers load `Acquire`.
//!
//! # Limits
//! Up to `cpyrt_spec::func_version::MAX_THREADS` threads and
//! `MAX_OBJECTS` code objects and functions.

mod translate;

use std::ops::ControlFlow;

use cpyrt_spec::func_version::{
    Attr, CLEARED, CallKind, Config as SpecConfig, Design, Event, FIRST_VALID, MAX_OBJECTS,
    MAX_THREADS, Slot, UNSET, valid,
};
use cpyrt_spec::stw::{Design as StwDesign, Role, Scope};

use crate::eval::{self, Machine};
use crate::primitive::sync::atomic::{AtomicU32, Ordering};
use crate::primitive::sync::{Arc, Mutex, lock};
use crate::stw::{self, HandOff, Outcome};
use crate::trace::Recorder;

/// The pause instance function versions use: the interpreter's own.
const SCOPE: Scope = Scope::Interp(0);

/// Positional parameters of every code object, and arguments every call
/// passes (so `CALL_PY_EXACT_ARGS` applies).
pub const ARGCOUNT: usize = 2;

/// The runtime's bounds and design.
#[derive(Clone, Debug)]
pub struct Config {
    pub threads: usize,
    /// The last version the counter hands out before it saturates.
    pub last_version: u32,
    /// `FUNC_VERSION_CACHE_SIZE`; 0 as in the free-threaded build.
    pub cache_size: u32,
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
            max_functions: MAX_OBJECTS,
            max_writes: u8::MAX - 1,
            last_version: self.last_version,
            cache_size: self.cache_size,
            call: self.call,
            writable: Attr::ALL.to_vec(),
            design: self.design,
        }
    }

    /// The stop-the-world runtime underneath: one interpreter, every
    /// thread bound from the start, pausing its interpreter, making
    /// blocking calls and exiting at the end of its program; CPython
    /// 3.14's pause design, every contended unlock handing the pause's
    /// mutex to its waiter.
    pub fn stw(&self) -> stw::Config {
        let role = Role {
            interp: 0,
            starts_bound: true,
            interp_pauses: true,
            global_pauses: false,
            finalizes: false,
            critical_sections: false,
            blocking_calls: true,
            exits: true,
        };
        stw::Config {
            interps: 1,
            roles: vec![role; self.threads],
            design: StwDesign::CPYTHON,
            hand_off: HandOff::ALWAYS,
            trace: self.trace,
        }
    }
}

/// A function object's critical fields.
#[derive(Debug)]
struct Func {
    /// `func_version`.
    version: AtomicU32,
    /// `func_code` (a code index), `func_defaults`, `func_kwdefaults`,
    /// `func_closure`, `vectorcall`, indexed like [`Attr::ALL`].
    attrs: [AtomicU32; 5],
    /// The attributes when the version was assigned (written before the
    /// function is published, never after).
    origin: [AtomicU32; 5],
}

impl Func {
    fn new() -> Func {
        Func {
            version: AtomicU32::new(UNSET),
            attrs: [0; 5].map(AtomicU32::new),
            origin: [0; 5].map(AtomicU32::new),
        }
    }
}

/// What a step of this runtime appends: the stop-the-world log's length
/// when it ran, and the event.
pub(crate) type Placed = (usize, Event);

/// One interpreter's code objects, functions and version state.
#[derive(Debug)]
pub struct Runtime {
    cfg: Config,
    stw: Arc<stw::Runtime>,
    /// `co_version` of every code object, by index; its lock is
    /// `func_state.mutex`, which also guards `next_version`.
    codes: Mutex<Vec<u32>>,
    /// `co_argcount` of every code object slot (immutable; every code
    /// object takes [`ARGCOUNT`] positional parameters).
    argcounts: Vec<AtomicU32>,
    next_version: AtomicU32,
    /// Function slots; the first `funcs_made` exist.
    funcs: Vec<Func>,
    funcs_made: AtomicU32,
    /// `interp->func_state.func_version_cache`.
    cache: Mutex<Vec<Slot>>,
    /// Attribute writes begun; a non-code attribute takes the count as its
    /// new value, so every write stores a fresh object.
    writes: AtomicU32,
    trace: Recorder<Placed>,
}

/// A run's two logs: the pause's, and the function-version events with
/// the pause events derived from it.
#[derive(Debug)]
pub struct Traces {
    pub pause: Vec<stw::Event>,
    pub events: Vec<Event>,
}

impl Runtime {
    /// Code 0 and function 0 made from it (a `def` that ran before the
    /// threads started); every thread attached.
    pub fn new(cfg: Config) -> Arc<Runtime> {
        assert!(
            (1..=MAX_THREADS).contains(&cfg.threads),
            "1 to {MAX_THREADS} threads"
        );
        cfg.spec().validate().expect("a valid configuration");
        let mut cache = vec![Slot::default(); cfg.cache_size as usize];
        if cfg.cache_size > 0 {
            cache[(FIRST_VALID % cfg.cache_size) as usize] = Slot {
                func: Some(0),
                code: Some(0),
            };
        }
        let funcs: Vec<Func> = (0..MAX_OBJECTS).map(|_| Func::new()).collect();
        funcs[0].version.store(FIRST_VALID, Ordering::Relaxed);
        Arc::new(Runtime {
            stw: stw::Runtime::new(cfg.stw()),
            codes: Mutex::new(vec![FIRST_VALID]),
            argcounts: (0..MAX_OBJECTS)
                .map(|_| AtomicU32::new(ARGCOUNT as u32))
                .collect(),
            next_version: AtomicU32::new(advance(&cfg, FIRST_VALID)),
            funcs,
            funcs_made: AtomicU32::new(1),
            cache: Mutex::new(cache),
            writes: AtomicU32::new(0),
            trace: Recorder::new(cfg.trace),
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The stop-the-world runtime underneath.
    pub fn stw(&self) -> &Arc<stw::Runtime> {
        &self.stw
    }

    /// Takes both logs and merges them: the pause log must replay through
    /// `cpyrt_spec::stw` (its error otherwise), and the function-version
    /// events are placed among the pause events derived from it.
    pub fn traces(&self) -> Result<Traces, String> {
        let pause = self.stw.take_trace();
        let mine = self.trace.take();
        let events = translate::translate(&self.cfg, &pause, &mine)?;
        Ok(Traces { pause, events })
    }

    /// The function-version events of the run so far (see
    /// [`Runtime::traces`]); panics if the pause log leaves its spec.
    pub fn trace(&self) -> Vec<Event> {
        self.traces()
            .unwrap_or_else(|e| panic!("the stop-the-world spec rejects the pause log: {e}"))
            .events
    }

    /// One spec step of this runtime: inside the stop-the-world
    /// recorder's step (so both logs share one order), then this one's.
    #[inline]
    fn step<R>(&self, op: impl FnOnce(&mut Emitter<'_, '_>) -> R) -> R {
        self.stw.trace.step(|pause| {
            let at = pause.position();
            self.trace.step(|log| op(&mut Emitter { at, log }))
        })
    }

    /// The functions made so far.
    fn made(&self) -> usize {
        self.funcs_made.load(Ordering::Acquire) as usize
    }
}

/// Appends this runtime's events, placed in the pause log's order.
struct Emitter<'a, 'b> {
    at: usize,
    log: &'a mut crate::trace::Emit<'b, Placed>,
}

impl Emitter<'_, '_> {
    #[inline]
    fn emit(&mut self, event: Event) {
        self.log.emit((self.at, event));
    }
}

/// The handle of thread `id` of `rt` (each id once); it starts attached.
pub fn thread(rt: &Arc<Runtime>, id: usize) -> Thread {
    assert!(id < rt.cfg.threads, "thread {id} out of range");
    Thread {
        rt: Arc::clone(rt),
        stw: stw::Runtime::bound(&rt.stw, id as u8),
        id: id as u8,
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

/// One instruction of a thread's program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `CALL` on function `f` ([`Thread::call`]); nothing when `f` does not
    /// exist yet.
    Call(u8),
    /// Compile a code object.
    NewCode,
    /// `MAKE_FUNCTION` from code object `c`; nothing when `c` does not
    /// exist yet.
    MakeFunction(u8),
    /// Create a code object and assign it to function `f`'s `__code__`.
    SetCode(u8),
    /// Assign a fresh object to a non-code attribute of function `f`.
    Set(u8, Attr),
    /// A blocking call (`Py_BEGIN_ALLOW_THREADS` .. `Py_END_ALLOW_THREADS`).
    Syscall,
}

/// A frame's start: what a call bound before running the callee.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub code: u32,
    pub locals: [u32; ARGCOUNT],
    pub closure: u32,
}

/// How one `CALL` ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Called {
    /// The callee does not exist (yet).
    NoCallee,
    /// The generic path (`_PyFunction_Vectorcall`).
    Generic(Frame),
    /// The specialized path after a passed guard.
    Specialized(Frame),
}

/// One thread: its thread state in the stop-the-world runtime and its
/// call site's inline cache.
#[derive(Debug)]
pub struct Thread {
    rt: Arc<Runtime>,
    stw: stw::Thread,
    id: u8,
    /// The inline cache's `func_version`; 0 while unspecialized.
    cache: u32,
}

impl Machine for Thread {
    type Op = Op;
    type Exit = Outcome;

    /// The stop-the-world runtime's eval-breaker check.
    fn eval_breaker(&mut self) -> ControlFlow<Outcome> {
        match self.stw.eval_breaker() {
            Ok(()) => ControlFlow::Continue(()),
            Err(o) => ControlFlow::Break(o),
        }
    }

    fn exec(&mut self, op: &Op) -> ControlFlow<Outcome> {
        let done = match *op {
            Op::Call(f) => self.call(f).map(drop),
            Op::NewCode => {
                self.new_code();
                Ok(())
            }
            Op::MakeFunction(c) => {
                self.make_function(c);
                Ok(())
            }
            Op::SetCode(f) => self.set_code(f),
            Op::Set(f, attr) => self.set(f, attr),
            Op::Syscall => self.stw.blocking_call(crate::primitive::thread::yield_now),
        };
        match done {
            Ok(()) => ControlFlow::Continue(()),
            Err(o) => ControlFlow::Break(o),
        }
    }
}

impl Thread {
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Runs `program` on the instruction loop, then deletes the thread
    /// state (`_PyThreadState_DeleteCurrent`), so that no later pause
    /// waits for a thread that has finished. Returns why it ended early.
    pub fn run(mut self, program: &[Op]) -> Option<Outcome> {
        let early = eval::run(&mut self, program);
        if early.is_none() {
            self.stw.exit();
        }
        early
    }

    /// `init_code`: a new code object takes the next version. Returns its
    /// index.
    pub fn new_code(&mut self) -> u8 {
        let rt = &*self.rt;
        let thread = self.id;
        rt.step(|emit| {
            let mut codes = lock(&rt.codes);
            assert!(
                codes.len() < MAX_OBJECTS as usize,
                "at most {MAX_OBJECTS} code objects"
            );
            let version = rt.next_version.load(Ordering::Relaxed);
            rt.next_version
                .store(advance(&rt.cfg, version), Ordering::Relaxed);
            codes.push(version);
            let code = (codes.len() - 1) as u8;
            emit.emit(Event::NewCode {
                thread,
                code,
                version,
            });
            code
        })
    }

    /// `MAKE_FUNCTION` + `_PyFunction_SetVersion`: a new function of code
    /// `code` takes the code's version (none once the counter saturated)
    /// and the cache slot of that version. Returns its index, or `None`
    /// when code `code` does not exist.
    pub fn make_function(&mut self, code: u8) -> Option<u8> {
        let rt = &*self.rt;
        let thread = self.id;
        rt.step(|emit| {
            let codes = lock(&rt.codes);
            let co_version = *codes.get(code as usize)?;
            let func = rt.made();
            assert!(
                func < MAX_OBJECTS as usize,
                "at most {MAX_OBJECTS} functions"
            );
            let f = &rt.funcs[func];
            let version = if valid(co_version) { co_version } else { UNSET };
            f.attrs[Attr::Code as usize].store(u32::from(code), Ordering::Relaxed);
            f.origin[Attr::Code as usize].store(u32::from(code), Ordering::Relaxed);
            f.version.store(version, Ordering::Relaxed);
            if valid(version) && rt.cfg.cache_size > 0 {
                let mut cache = lock(&rt.cache);
                cache[(version % rt.cfg.cache_size) as usize] = Slot {
                    func: Some(func as u8),
                    code: Some(code),
                };
            }
            // Publish: a thread that finds the function sees its fields.
            rt.funcs_made.store(func as u32 + 1, Ordering::Release);
            emit.emit(Event::MakeFunction {
                thread,
                func: func as u8,
                code,
                version,
            });
            Some(func as u8)
        })
    }

    /// One execution of the call site on function `f`. Unspecialized: the
    /// generic call, then `specialize_py_call` writes the callee's version
    /// into the inline cache. Specialized: `_CHECK_FUNCTION_VERSION`, then
    /// the call's reads without locks; a failed guard deoptimizes and
    /// takes the generic path.
    pub fn call(&mut self, f: u8) -> Result<Called, Outcome> {
        let Thread {
            rt,
            stw,
            id: thread,
            cache,
        } = self;
        let (rt, thread) = (&**rt, *thread);
        if f as usize >= rt.made() {
            return Ok(Called::NoCallee);
        }
        let func = &rt.funcs[f as usize];
        if valid(*cache) {
            let cached = *cache;
            let pass = rt.step(|emit| {
                let pass = func.version.load(Ordering::Relaxed) == cached;
                emit.emit(Event::Guard {
                    thread,
                    func: f,
                    pass,
                });
                pass
            });
            if pass {
                return specialized(rt, stw, thread, func).map(Called::Specialized);
            }
            // DEOPT_IF: the adaptive counter respecializes later.
            *cache = 0;
            return Ok(Called::Generic(generic(rt, func)));
        }
        let frame = generic(rt, func);
        *cache = rt.step(|emit| {
            let v = func.version.load(Ordering::Relaxed);
            if !valid(v) {
                // SPEC_FAIL_OUT_OF_VERSIONS: stays unspecialized.
                return 0;
            }
            emit.emit(Event::Specialize {
                thread,
                func: f,
                version: v,
            });
            v
        });
        Ok(Called::Generic(frame))
    }

    /// The generic path alone, on function `f` (`None` when it does not
    /// exist): what an unspecialized or deoptimized `CALL` runs, without
    /// the specialization attempt that follows it (CPython's adaptive
    /// counter makes that attempt rare). Records nothing.
    pub fn generic_call(&self, f: u8) -> Option<Frame> {
        let rt = &*self.rt;
        (usize::from(f) < rt.made()).then(|| generic(rt, &rt.funcs[f as usize]))
    }

    /// `func_set_code`: invalidate, then store a new code object.
    pub fn set_code(&mut self, f: u8) -> Result<(), Outcome> {
        if f as usize >= self.rt.made() {
            return Ok(());
        }
        let code = self.new_code();
        self.set_attr(f, Attr::Code, Some(code))
    }

    /// `func_set_defaults`, `func_set_kwdefaults`, `PyFunction_SetClosure`
    /// or `PyFunction_SetVectorcall`: invalidate, then store a fresh object.
    pub fn set(&mut self, f: u8, attr: Attr) -> Result<(), Outcome> {
        assert_ne!(attr, Attr::Code, "use set_code");
        if f as usize >= self.rt.made() {
            return Ok(());
        }
        self.set_attr(f, attr, None)
    }

    fn set_attr(&mut self, f: u8, attr: Attr, code: Option<u8>) -> Result<(), Outcome> {
        let rt = Arc::clone(&self.rt);
        let func = &rt.funcs[f as usize];
        let thread = self.id;
        // _PyFunction_ClearVersion's first load decides whether to pause.
        let (pause, value) = rt.step(|emit| {
            let writes = rt.writes.fetch_add(1, Ordering::Relaxed) + 1;
            let value = code.map_or(writes, u32::from);
            let pause = valid(func.version.load(Ordering::Relaxed));
            emit.emit(Event::SetAttr {
                thread,
                func: f,
                attr,
                value: value as u8,
                pause,
            });
            (pause, value)
        });
        if pause {
            if rt.cfg.design.stop_the_world {
                let paused = self.stw.stop_the_world(SCOPE, true)?;
                clear_version(&rt, thread, f);
                paused.start();
            } else {
                clear_version(&rt, thread, f);
            }
        }
        rt.step(|emit| {
            func.attrs[attr as usize].store(value, Ordering::Relaxed);
            emit.emit(Event::WriteAttr {
                thread,
                func: f,
                attr,
                value: value as u8,
            });
        });
        Ok(())
    }
}

/// The reads of the specialized call after its guard passed, in the order
/// of [`CallKind::reads`], each one spec step; with the broken design an
/// eval-breaker check comes before each. In debug builds and under loom
/// and shuttle each read is checked against the function's attributes at
/// `MAKE_FUNCTION` (the spec's `guarded_reads_match_version`).
fn specialized(
    rt: &Runtime,
    stw: &mut stw::Thread,
    thread: u8,
    func: &Func,
) -> Result<Frame, Outcome> {
    let mut frame = Frame::default();
    for (k, &attr) in rt.cfg.call.reads().iter().enumerate() {
        if !rt.cfg.design.no_safe_point_after_guard {
            // The caveat's broken design: a safe point inside the
            // instruction (an eval-breaker check, or a lock that may
            // detach).
            stw.eval_breaker()?;
        }
        let value = rt.step(|emit| {
            let value = func.attrs[attr as usize].load(Ordering::Relaxed);
            emit.emit(Event::Read {
                thread,
                attr,
                value: value as u8,
            });
            value
        });
        if stw::CHECK_INVARIANTS {
            let origin = func.origin[attr as usize].load(Ordering::Relaxed);
            assert_eq!(
                value, origin,
                "guarded_reads_match_version: thread {thread} read {attr:?} = {value} after its guard passed"
            );
        }
        match attr {
            // ExactArgs: the first read is _CHECK_FUNCTION_EXACT_ARGS's
            // (the code's argument count against the call's), the second
            // _INIT_CALL_PY_EXACT_ARGS's (the frame for the code, whose
            // locals are the arguments); General: _PY_FRAME_GENERAL's.
            Attr::Code if k == 0 && rt.cfg.call == CallKind::ExactArgs => {
                let argcount = rt.argcounts[value as usize].load(Ordering::Relaxed);
                debug_assert_eq!(argcount as usize, ARGCOUNT, "exact arguments");
                frame.code = value;
            }
            Attr::Code => {
                frame.code = value;
                frame.locals = args();
            }
            Attr::Closure => frame.closure = value,
            // Defaults and keyword defaults: every argument is given.
            _ => {}
        }
    }
    Ok(frame)
}

/// The arguments every call passes.
fn args() -> [u32; ARGCOUNT] {
    std::array::from_fn(|i| i as u32 + 1)
}

/// `func_clear_version`: mark a valid version cleared and empty the cache
/// slot that names the function (a no-op on an invalid version).
fn clear_version(rt: &Runtime, thread: u8, f: u8) {
    let func = &rt.funcs[f as usize];
    rt.step(|emit| {
        let v = func.version.load(Ordering::Relaxed);
        if valid(v) {
            if rt.cfg.design.clear_cache_slot && rt.cfg.cache_size > 0 {
                let mut cache = lock(&rt.cache);
                let slot = &mut cache[(v % rt.cfg.cache_size) as usize];
                if slot.func == Some(f) {
                    // Its code stays: it may still be looked up by version.
                    slot.func = None;
                }
            }
            func.version.store(CLEARED, Ordering::Relaxed);
        }
        emit.emit(Event::ClearVersion { thread, func: f });
    });
}

/// A vectorcall entry point.
type Vectorcall = fn(&Runtime, &Func) -> Frame;

/// The entry points a function's vectorcall slot may select; every value
/// a write stores selects `_PyFunction_Vectorcall`.
static VECTORCALLS: [Vectorcall; 1] = [function_vectorcall];

/// The generic call: `PyObject_Vectorcall` loads the callee's vectorcall
/// slot and calls through it. Records nothing: the spec sees only what
/// the specialized path trusts.
fn generic(rt: &Runtime, func: &Func) -> Frame {
    let slot = func.attrs[Attr::Vectorcall as usize].load(Ordering::Relaxed) as usize;
    let entry = std::hint::black_box(VECTORCALLS[slot % VECTORCALLS.len()]);
    entry(rt, func)
}

/// `_PyFunction_Vectorcall` -> `_PyEval_Vector` -> `initialize_locals`:
/// no assumption carried across loads, so each attribute is loaded once
/// and the frame bound from those loads.
fn function_vectorcall(rt: &Runtime, func: &Func) -> Frame {
    let code = func.attrs[Attr::Code as usize].load(Ordering::Relaxed);
    let defaults = func.attrs[Attr::Defaults as usize].load(Ordering::Relaxed);
    let kwdefaults = func.attrs[Attr::KwDefaults as usize].load(Ordering::Relaxed);
    let closure = func.attrs[Attr::Closure as usize].load(Ordering::Relaxed);
    let argcount = rt.argcounts[code as usize].load(Ordering::Relaxed) as usize;
    // Positional arguments first, then defaults for the missing ones, then
    // keyword-only defaults (none are missing here).
    let given = args();
    let mut locals = [0; ARGCOUNT];
    for (i, slot) in locals.iter_mut().enumerate().take(argcount) {
        *slot = given.get(i).copied().unwrap_or(defaults);
    }
    std::hint::black_box(kwdefaults);
    Frame {
        code,
        locals,
        closure,
    }
}
