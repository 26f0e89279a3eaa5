//! Function versions: the guard of specialized `CALL`s and its invalidation
//! under a stop-the-world pause.
//!
//! # Protocol
//! Follows `Objects/funcobject.c` (the comment "Function (and code)
//! versions", `_PyFunction_SetVersion`, `func_clear_version`,
//! `_PyFunction_ClearVersion`, `_PyFunction_ClearCodeByVersion`,
//! `_PyFunction_LookupByVersion`, the setters `func_set_code`,
//! `func_set_defaults`, `func_set_kwdefaults`, `PyFunction_SetClosure`,
//! `PyFunction_SetVectorcall`), `Objects/codeobject.c` (`init_code`: `co_version`
//! from `interp->func_state.next_version`, which stays 0 once it overflows),
//! `Include/internal/pycore_function.h` (`FUNC_VERSION_UNSET` 0,
//! `FUNC_VERSION_CLEARED` 1, `FUNC_VERSION_FIRST_VALID` 2,
//! `FUNC_VERSION_CACHE_SIZE`), `Python/specialize.c` (`specialize_py_call`
//! writes the version into the inline cache) and the `CALL` family of
//! `Python/bytecodes.c` (`_CHECK_FUNCTION_VERSION`, then
//! `_CHECK_FUNCTION_EXACT_ARGS`, `_CHECK_STACK_SPACE`,
//! `_INIT_CALL_PY_EXACT_ARGS` for `CALL_PY_EXACT_ARGS`; `_PY_FRAME_GENERAL`
//! for `CALL_PY_GENERAL`), as of CPython 3.14 with gh-115999 (PR 124997,
//! "Stop the world when invalidating function versions"). The prose
//! version is `spec/func_version.md`.
//!
//! A code object takes its version from the interpreter's counter when it
//! is created. `MAKE_FUNCTION` copies it into the new function and records
//! `{func, code}` in the version cache slot `version % FUNC_VERSION_CACHE_SIZE`.
//! The specializer writes a function's version into the call site's inline
//! cache; the specialized instruction checks that the callee's version
//! equals it and then reads the callee's code (and, on the general path,
//! its defaults, keyword defaults and closure) without locks. Changing any
//! of code, defaults, kwdefaults, closure or vectorcall first invalidates
//! the version; the first invalidation of a function stops the world,
//! clears the version (and the cache slot if it names the function) and
//! restarts the world, and only then is the attribute written. Later
//! changes find the version already cleared and pause nothing.
//!
//! # Abstraction
//! Each event is one atomic step under sequential consistency. The pause
//! is what orders the reader's guard and reads against the writer's clear;
//! the reference runtime carries the memory-ordering argument.
//!
//! - Objects are small integers. A function's attributes are an array of
//!   five values ([`Attr`]): the code attribute holds a code object's index,
//!   the others hold the sequence number of the write that stored them
//!   (0 is what `MAKE_FUNCTION` and `SET_FUNCTION_ATTRIBUTE` stored before
//!   the function became visible; they are one step here because nothing
//!   else can see the function yet).
//! - The initial state holds code 0 and function 0 made from it (a module
//!   whose `def` ran before the threads started). More code objects and
//!   functions are created by events up to the bounds.
//! - Each thread has its own call site and so its own inline cache: in the
//!   free-threaded build specialization writes thread-local bytecode
//!   (`co_tlbc`). A failed guard resets the cache, standing for the
//!   deoptimization and the adaptive counter that respecializes later.
//! - The specialized call reads the attributes listed by [`CallKind`]; the
//!   version guard is one event and each read is one event, so every
//!   interleaving of a writer between them is explored.
//! - The pause is a minimal stop-the-world in the vocabulary of the `stw`
//!   mechanism (`RequestStop`, `Suspend`, `StartWorld`, `Attach`,
//!   `Detach`), not its full protocol: one requester at a time (the
//!   `stw->mutex`), a detached thread cannot attach while a pause is
//!   requested (the requester parks it), an attached thread suspends only
//!   at a safe point, and the world is stopped when no other thread is
//!   attached. A thread waiting for another's pause detaches while it
//!   waits (`PyMutex_Lock` parks with detach), so it is at a safe point.
//! - The version cache is bookkeeping of the default build (the
//!   free-threaded build does not maintain it; `cache_size` 0 models that).
//!   Its invariants are single-step and independent of the build.
//! - Departure: `_PyFunction_SetVersion` asserts a valid version, so a
//!   `MAKE_FUNCTION` after the counter saturated would trip that assertion
//!   in a debug build. The spec follows the documented intent ("the
//!   specializer loses the ability to specialize calls to new
//!   functions"): the function keeps `FUNC_VERSION_UNSET` and no cache
//!   slot changes.
//! - Omitted: function deallocation (`func_clear` clears the version
//!   without a pause, which is safe for an object nobody else can
//!   reach), function watchers (`handle_func_event`), audit hooks, the
//!   free-variable count check of `func_set_code`, bound-method and `_KW`
//!   variants (the same guard), and tier 2's lookups by version (which
//!   only read the cache whose invariant is checked).
//!
//! # Properties
//! See [`INVARIANTS`], [`TRANSITION_INVARIANTS`] and [`SOMETIMES`]; each
//! carries its one-sentence statement.
//!
//! # Limits
//! Bounds are [`Config`] fields: threads (1 to [`MAX_THREADS`]), code
//! objects and functions ever created, attribute writes, the last version
//! the counter hands out before it saturates, and the cache size.

use serde::{Deserialize, Serialize};

use crate::{Invariant, Rejection, Spec, TransitionInvariant};

/// `FUNC_VERSION_UNSET`: a function that never had a version.
pub const UNSET: u32 = 0;
/// `FUNC_VERSION_CLEARED`: a function whose version was invalidated.
pub const CLEARED: u32 = 1;
/// `FUNC_VERSION_FIRST_VALID`: the counter's first value.
pub const FIRST_VALID: u32 = 2;
/// `FUNC_VERSION_CACHE_SIZE` in CPython 3.13/3.14.
pub const CPYTHON_CACHE_SIZE: u32 = 1 << 12;

/// Largest thread count a configuration may use.
pub const MAX_THREADS: usize = 3;
/// Largest number of code objects or functions a configuration may create.
pub const MAX_OBJECTS: u8 = 6;

/// `_PyFunction_IsVersionValid`.
pub fn valid(version: u32) -> bool {
    version >= FIRST_VALID
}

/// The critical attributes whose change invalidates a function's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Attr {
    /// `__code__` (`func_set_code`).
    Code,
    /// `__defaults__` (`func_set_defaults`, `PyFunction_SetDefaults`).
    Defaults,
    /// `__kwdefaults__` (`func_set_kwdefaults`, `PyFunction_SetKwDefaults`).
    KwDefaults,
    /// `__closure__` (`PyFunction_SetClosure`).
    Closure,
    /// The vectorcall entry point (`PyFunction_SetVectorcall`).
    Vectorcall,
}

impl Attr {
    pub const ALL: [Attr; 5] = [
        Attr::Code,
        Attr::Defaults,
        Attr::KwDefaults,
        Attr::Closure,
        Attr::Vectorcall,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Which specialized `CALL` the threads execute, and so which attributes
/// it reads after the guard, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CallKind {
    /// `CALL_PY_EXACT_ARGS`: `_CHECK_FUNCTION_EXACT_ARGS` reads the code's
    /// argument count, `_INIT_CALL_PY_EXACT_ARGS` pushes a frame for the
    /// code (sized by `_CHECK_STACK_SPACE` from the same read). Two reads
    /// of `func_code` that must agree.
    ExactArgs,
    /// `CALL_PY_GENERAL`: `_PY_FRAME_GENERAL` reads the code, defaults and
    /// keyword defaults while it initializes the frame, and the callee's
    /// `COPY_FREE_VARS` (before its `RESUME`, the first safe point) reads
    /// the closure.
    General,
}

impl CallKind {
    /// The attributes read after the guard, in order.
    pub fn reads(self) -> &'static [Attr] {
        match self {
            CallKind::ExactArgs => &[Attr::Code, Attr::Code],
            CallKind::General => &[Attr::Code, Attr::Defaults, Attr::KwDefaults, Attr::Closure],
        }
    }
}

/// Design switches. [`Design::CPYTHON`] is the design CPython 3.14 ships;
/// each other setting is a broken design, and the models pin the
/// counterexample it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Design {
    /// `_PyFunction_ClearVersion` clears a valid version inside
    /// `_PyEval_StopTheWorld` / `_PyEval_StartTheWorld` (gh-115999, PR
    /// 124997). Off: the version is cleared while other threads run, as
    /// before that change.
    pub stop_the_world: bool,
    /// No safe point lies between a specialized call's guard and its
    /// reads (the caveat of PR 124997). Off: the thread may suspend for a
    /// pause right after its guard passed.
    pub no_safe_point_after_guard: bool,
    /// `func_clear_version` empties the cache slot that names the
    /// function. Off: the slot keeps naming a function whose version was
    /// cleared.
    pub clear_cache_slot: bool,
    /// `next_version` stays 0 once it overflows (`init_code`). Off: it
    /// wraps back to `FUNC_VERSION_FIRST_VALID` and hands versions out
    /// again.
    pub counter_saturates: bool,
}

impl Design {
    /// The design as CPython 3.14 ships it.
    pub const CPYTHON: Design = Design {
        stop_the_world: true,
        no_safe_point_after_guard: true,
        clear_cache_slot: true,
        counter_saturates: true,
    };
}

/// Bounds and design of one interpreter's function versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Number of threads (1 to [`MAX_THREADS`]).
    pub threads: usize,
    /// Code objects that may ever exist, code 0 included.
    pub max_codes: u8,
    /// Functions that may ever exist, function 0 included.
    pub max_functions: u8,
    /// Attribute writes in total, over all threads and functions.
    pub max_writes: u8,
    /// The last version the counter hands out before it saturates to 0
    /// (CPython: `u32::MAX`). At least `FIRST_VALID`.
    pub last_version: u32,
    /// `FUNC_VERSION_CACHE_SIZE`; 0 for the free-threaded build, which
    /// keeps no cache.
    pub cache_size: u32,
    /// The specialized call the threads run.
    pub call: CallKind,
    /// The attributes threads may write.
    pub writable: Vec<Attr>,
    pub design: Design,
}

impl Config {
    /// Checks the bounds; the error names the bound and its range.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(format!(
                "threads must be between 1 and {MAX_THREADS}, got {}",
                self.threads
            ));
        }
        if self.max_codes == 0 || self.max_codes > MAX_OBJECTS {
            return Err(format!(
                "max_codes must be between 1 and {MAX_OBJECTS}, got {}",
                self.max_codes
            ));
        }
        if self.max_functions == 0 || self.max_functions > MAX_OBJECTS {
            return Err(format!(
                "max_functions must be between 1 and {MAX_OBJECTS}, got {}",
                self.max_functions
            ));
        }
        if self.last_version < FIRST_VALID {
            return Err(format!(
                "last_version must be at least {FIRST_VALID}, got {}",
                self.last_version
            ));
        }
        if self.max_writes == u8::MAX {
            return Err("max_writes must be below 255".into());
        }
        Ok(())
    }
}

/// `tstate->state`, as far as the pause needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Run {
    Detached,
    Attached,
    /// Parked for a pause; only the requester's `StartWorld` releases it.
    Suspended,
}

/// Where a thread that is changing an attribute is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stage {
    /// Wants to stop the world (blocked on `stw->mutex`, detaching while
    /// blocked).
    AwaitPause,
    /// Requested the pause; waits until no other thread is attached, then
    /// clears the version.
    Pausing,
    /// Cleared the version with the world stopped; restarts it next.
    Restart,
    /// Design without the pause: clears the version next.
    Clearing,
    /// Writes the attribute next (`Py_XSETREF`).
    Writing,
}

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Pc {
    /// Between instructions: a safe point.
    Idle,
    /// Inside a specialized call whose guard passed on `func`; `next`
    /// indexes the call's reads.
    Guarded { func: u8, next: u8 },
    /// Inside a setter of `attr` on `func`, storing `value`.
    Setting {
        func: u8,
        attr: Attr,
        value: u8,
        stage: Stage,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thread {
    pub run: Run,
    pub pc: Pc,
    /// The call site's inline cache `func_version`; 0 while unspecialized.
    pub cache: u32,
    /// Set when a read after a passed guard returned an attribute other
    /// than the one the guarded version stands for.
    pub torn: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code {
    /// `co_version`: 0 when the counter had saturated.
    pub version: u32,
    pub live: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Func {
    /// `func_version`.
    pub version: u32,
    /// Current attributes, indexed by [`Attr`].
    pub attrs: [u8; 5],
    /// The attributes when the version was assigned (`MAKE_FUNCTION`).
    pub origin: [u8; 5],
}

/// One slot of `interp->func_state.func_version_cache` (borrowed pointers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    pub func: Option<u8>,
    pub code: Option<u8>,
}

/// Sticky observations for the reachability goals.
pub mod seen {
    /// A specialized call finished its reads.
    pub const CALL_COMPLETED: u8 = 1;
    /// A guard failed on a function whose version had been cleared.
    pub const GUARD_FAILED: u8 = 2;
    /// A setter found the version already cleared and paused nothing.
    pub const WRITE_WITHOUT_PAUSE: u8 = 4;
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    /// `interp->func_state.next_version`.
    pub next_version: u32,
    pub codes: Vec<Code>,
    pub funcs: Vec<Func>,
    pub cache: Vec<Slot>,
    pub threads: Vec<Thread>,
    /// The thread holding the pause (`stw->requester`), if any.
    pub requester: Option<u8>,
    /// Attribute writes begun so far.
    pub writes: u8,
    /// [`seen`] bits.
    pub seen: u8,
}

/// One step. Every event names its thread; events that observe a value
/// carry it, so a recorded trace is checked against what the spec computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    /// `init_code`: a new code object takes `next_version`.
    NewCode { thread: u8, code: u8, version: u32 },
    /// `MAKE_FUNCTION` + `_PyFunction_SetVersion`.
    MakeFunction {
        thread: u8,
        func: u8,
        code: u8,
        version: u32,
    },
    /// `code_dealloc` -> `_PyFunction_ClearCodeByVersion`.
    FreeCode { thread: u8, code: u8 },
    /// `specialize_py_call`: the inline cache takes the callee's version.
    Specialize { thread: u8, func: u8, version: u32 },
    /// `_CHECK_FUNCTION_VERSION` on callee `func`.
    Guard { thread: u8, func: u8, pass: bool },
    /// One read of the specialized call after its guard.
    Read { thread: u8, attr: Attr, value: u8 },
    /// A setter begins: `_PyFunction_ClearVersion` loads the version;
    /// `pause` says it is valid, so the design stops the world.
    SetAttr {
        thread: u8,
        func: u8,
        attr: Attr,
        value: u8,
        pause: bool,
    },
    /// `stop_the_world`: takes the pause and asks the others to stop.
    RequestStop { thread: u8 },
    /// An attached thread at a safe point parks for another's pause.
    Suspend { thread: u8 },
    /// `func_clear_version` (with the world stopped when the design pauses).
    ClearVersion { thread: u8, func: u8 },
    /// `start_the_world`: suspended threads become detached.
    StartWorld { thread: u8 },
    /// The setter stores the attribute.
    WriteAttr {
        thread: u8,
        func: u8,
        attr: Attr,
        value: u8,
    },
    /// `_PyThreadState_Attach`.
    Attach { thread: u8 },
    /// `_PyThreadState_Detach`, between instructions.
    Detach { thread: u8 },
}

impl Event {
    pub fn thread(&self) -> u8 {
        use Event::*;
        match *self {
            NewCode { thread, .. }
            | MakeFunction { thread, .. }
            | FreeCode { thread, .. }
            | Specialize { thread, .. }
            | Guard { thread, .. }
            | Read { thread, .. }
            | SetAttr { thread, .. }
            | RequestStop { thread }
            | Suspend { thread }
            | ClearVersion { thread, .. }
            | StartWorld { thread }
            | WriteAttr { thread, .. }
            | Attach { thread }
            | Detach { thread } => thread,
        }
    }

    /// The event's kind, without its values.
    pub fn kind(&self) -> &'static str {
        use Event::*;
        match self {
            NewCode { .. } => "NewCode",
            MakeFunction { .. } => "MakeFunction",
            FreeCode { .. } => "FreeCode",
            Specialize { .. } => "Specialize",
            Guard { .. } => "Guard",
            Read { .. } => "Read",
            SetAttr { .. } => "SetAttr",
            RequestStop { .. } => "RequestStop",
            Suspend { .. } => "Suspend",
            ClearVersion { .. } => "ClearVersion",
            StartWorld { .. } => "StartWorld",
            WriteAttr { .. } => "WriteAttr",
            Attach { .. } => "Attach",
            Detach { .. } => "Detach",
        }
    }
}

/// Every event kind, in declaration order.
pub const EVENT_KINDS: &[&str] = &[
    "NewCode",
    "MakeFunction",
    "FreeCode",
    "Specialize",
    "Guard",
    "Read",
    "SetAttr",
    "RequestStop",
    "Suspend",
    "ClearVersion",
    "StartWorld",
    "WriteAttr",
    "Attach",
    "Detach",
];

impl State {
    /// The counter after handing out `next_version` (`init_code`).
    pub fn advanced_counter(&self, cfg: &Config) -> u32 {
        match self.next_version {
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

    fn slot_of(&self, version: u32) -> Option<usize> {
        (!self.cache.is_empty()).then(|| (version as usize) % self.cache.len())
    }

    /// Whether a code object is still referenced: by a function, or by a
    /// setter that is about to store it.
    pub fn code_referenced(&self, code: u8) -> bool {
        self.funcs
            .iter()
            .any(|f| f.attrs[Attr::Code.index()] == code)
            || self.threads.iter().any(
                |t| matches!(t.pc, Pc::Setting { attr: Attr::Code, value, .. } if value == code),
            )
    }

    /// The values a write of `attr` on `func` may store now.
    fn write_values(&self, func: usize, attr: Attr) -> Vec<u8> {
        match attr {
            Attr::Code => (0..self.codes.len() as u8)
                .filter(|&c| {
                    self.codes[c as usize].live && c != self.funcs[func].attrs[Attr::Code.index()]
                })
                .collect(),
            _ => vec![self.writes + 1],
        }
    }

    /// The stop-the-world condition: no thread but `t` is attached.
    pub fn world_stopped_for(&self, t: usize) -> bool {
        self.threads
            .iter()
            .enumerate()
            .all(|(u, th)| u == t || th.run != Run::Attached)
    }

    fn safe_point(&self, cfg: &Config, th: &Thread) -> bool {
        match th.pc {
            Pc::Idle => true,
            Pc::Guarded { .. } => !cfg.design.no_safe_point_after_guard,
            Pc::Setting {
                stage: Stage::AwaitPause,
                ..
            } => true,
            Pc::Setting { .. } => false,
        }
    }
}

pub struct FuncVersion;

fn reject<T>(reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason))
}

impl Spec for FuncVersion {
    type Config = Config;
    type State = State;
    type Event = Event;
    const NAME: &'static str = "func-version";

    fn init(cfg: &Config) -> State {
        let version = FIRST_VALID;
        let mut cache = vec![Slot::default(); cfg.cache_size as usize];
        if cfg.cache_size > 0 {
            cache[(version % cfg.cache_size) as usize] = Slot {
                func: Some(0),
                code: Some(0),
            };
        }
        let mut s = State {
            next_version: version,
            codes: vec![Code {
                version,
                live: true,
            }],
            funcs: vec![Func {
                version,
                attrs: [0; 5],
                origin: [0; 5],
            }],
            cache,
            threads: vec![
                Thread {
                    run: Run::Attached,
                    pc: Pc::Idle,
                    cache: 0,
                    torn: false,
                };
                cfg.threads
            ],
            requester: None,
            writes: 0,
            seen: 0,
        };
        s.next_version = s.advanced_counter(cfg);
        s
    }

    fn enabled(cfg: &Config, s: &State, out: &mut Vec<Event>) {
        for (t, th) in s.threads.iter().enumerate() {
            let thread = t as u8;
            let paused_by_other = s.requester.is_some_and(|r| r as usize != t);
            match th.run {
                Run::Suspended => continue,
                Run::Detached => {
                    if s.requester.is_none() {
                        out.push(Event::Attach { thread });
                    }
                    continue;
                }
                Run::Attached => {}
            }
            if paused_by_other && s.safe_point(cfg, th) {
                out.push(Event::Suspend { thread });
            }
            match th.pc {
                Pc::Idle => idle_events(cfg, s, thread, out),
                Pc::Guarded { func, next } => {
                    let attr = cfg.call.reads()[next as usize];
                    out.push(Event::Read {
                        thread,
                        attr,
                        value: s.funcs[func as usize].attrs[attr.index()],
                    });
                }
                Pc::Setting {
                    func,
                    attr,
                    value,
                    stage,
                } => match stage {
                    Stage::AwaitPause => {
                        if s.requester.is_none() {
                            out.push(Event::RequestStop { thread });
                        }
                    }
                    Stage::Pausing => {
                        if s.world_stopped_for(t) {
                            out.push(Event::ClearVersion { thread, func });
                        }
                    }
                    Stage::Clearing => out.push(Event::ClearVersion { thread, func }),
                    Stage::Restart => out.push(Event::StartWorld { thread }),
                    Stage::Writing => out.push(Event::WriteAttr {
                        thread,
                        func,
                        attr,
                        value,
                    }),
                },
            }
        }
    }

    fn step(cfg: &Config, s: &State, event: &Event) -> Result<State, Rejection> {
        let t = event.thread() as usize;
        if t >= s.threads.len() {
            return reject(format!(
                "no thread {t} in a {}-thread configuration",
                s.threads.len()
            ));
        }
        let mut n = s.clone();
        let th = &s.threads[t];
        let attached = th.run == Run::Attached;
        let idle = attached && th.pc == Pc::Idle;
        let func_ok = |f: u8| (f as usize) < s.funcs.len();
        match *event {
            Event::NewCode { code, version, .. } => {
                if !idle {
                    return reject(
                        "code objects are created by an attached thread between instructions",
                    );
                }
                if code as usize != s.codes.len() || code >= cfg.max_codes {
                    return reject(format!(
                        "new code must be {} (bound {})",
                        s.codes.len(),
                        cfg.max_codes
                    ));
                }
                if version != s.next_version {
                    return reject(format!(
                        "code took version {version}, next_version is {}",
                        s.next_version
                    ));
                }
                n.codes.push(Code {
                    version,
                    live: true,
                });
                n.next_version = s.advanced_counter(cfg);
            }
            Event::MakeFunction {
                func,
                code,
                version,
                ..
            } => {
                if !idle {
                    return reject("MAKE_FUNCTION runs attached, between instructions");
                }
                if func as usize != s.funcs.len() || func >= cfg.max_functions {
                    return reject(format!(
                        "new function must be {} (bound {})",
                        s.funcs.len(),
                        cfg.max_functions
                    ));
                }
                let Some(c) = s.codes.get(code as usize).filter(|c| c.live) else {
                    return reject(format!("code {code} is not a live code object"));
                };
                let expected = if valid(c.version) { c.version } else { UNSET };
                if version != expected {
                    return reject(format!(
                        "function took version {version}, its code's version gives {expected}"
                    ));
                }
                let mut attrs = [0; 5];
                attrs[Attr::Code.index()] = code;
                n.funcs.push(Func {
                    version,
                    attrs,
                    origin: attrs,
                });
                if valid(version)
                    && let Some(i) = s.slot_of(version)
                {
                    n.cache[i] = Slot {
                        func: Some(func),
                        code: Some(code),
                    };
                }
            }
            Event::FreeCode { code, .. } => {
                if !idle {
                    return reject("deallocation runs attached, between instructions");
                }
                if !s.codes.get(code as usize).is_some_and(|c| c.live) {
                    return reject(format!("code {code} is not live"));
                }
                if s.code_referenced(code) {
                    return reject(format!("code {code} is still referenced"));
                }
                n.codes[code as usize].live = false;
                // _PyFunction_ClearCodeByVersion: clear the slot when its
                // code has this version.
                let version = s.codes[code as usize].version;
                if let Some(i) = s.slot_of(version)
                    && let Some(sc) = s.cache[i].code
                    && s.codes[sc as usize].version == version
                {
                    n.cache[i] = Slot::default();
                }
            }
            Event::Specialize { func, version, .. } => {
                if !idle || !func_ok(func) {
                    return reject(
                        "specialization runs attached, between instructions, on a function",
                    );
                }
                let v = s.funcs[func as usize].version;
                if !valid(v) {
                    return reject("specialize_py_call fails with SPEC_FAIL_OUT_OF_VERSIONS");
                }
                if version != v {
                    return reject(format!(
                        "specialized on version {version}, function has {v}"
                    ));
                }
                n.threads[t].cache = v;
            }
            Event::Guard { func, pass, .. } => {
                if !idle || !func_ok(func) {
                    return reject("the guard runs attached, between instructions, on a function");
                }
                if !valid(th.cache) {
                    return reject("the call site is not specialized");
                }
                let v = s.funcs[func as usize].version;
                if pass != (v == th.cache) {
                    return reject(format!(
                        "guard {} but version {v} vs cached {}",
                        if pass { "passed" } else { "failed" },
                        th.cache
                    ));
                }
                if pass {
                    n.threads[t].pc = Pc::Guarded { func, next: 0 };
                } else {
                    // Deoptimize; the adaptive counter respecializes later.
                    n.threads[t].cache = 0;
                    if v == CLEARED {
                        n.seen |= seen::GUARD_FAILED;
                    }
                }
            }
            Event::Read { attr, value, .. } => {
                let Pc::Guarded { func, next } = th.pc else {
                    return reject("no specialized call in progress");
                };
                if !attached {
                    return reject("reads need an attached thread");
                }
                let reads = cfg.call.reads();
                if reads[next as usize] != attr {
                    return reject(format!(
                        "the call reads {:?} next, not {attr:?}",
                        reads[next as usize]
                    ));
                }
                let f = &s.funcs[func as usize];
                if value != f.attrs[attr.index()] {
                    return reject(format!(
                        "read {value}, the attribute holds {}",
                        f.attrs[attr.index()]
                    ));
                }
                if value != f.origin[attr.index()] {
                    n.threads[t].torn = true;
                }
                if next as usize + 1 == reads.len() {
                    n.threads[t].pc = Pc::Idle;
                    n.seen |= seen::CALL_COMPLETED;
                } else {
                    n.threads[t].pc = Pc::Guarded {
                        func,
                        next: next + 1,
                    };
                }
            }
            Event::SetAttr {
                func,
                attr,
                value,
                pause,
                ..
            } => {
                if !idle || !func_ok(func) {
                    return reject("a setter starts attached, between instructions, on a function");
                }
                if !cfg.writable.contains(&attr) {
                    return reject(format!("{attr:?} is not writable in this configuration"));
                }
                if s.writes >= cfg.max_writes {
                    return reject("the write bound is reached");
                }
                if !s.write_values(func as usize, attr).contains(&value) {
                    return reject(format!("{attr:?} cannot be set to {value} now"));
                }
                let v = s.funcs[func as usize].version;
                if pause != valid(v) {
                    return reject(format!("version {v}: pause must be {}", valid(v)));
                }
                let stage = if !valid(v) {
                    n.seen |= seen::WRITE_WITHOUT_PAUSE;
                    Stage::Writing
                } else if cfg.design.stop_the_world {
                    Stage::AwaitPause
                } else {
                    Stage::Clearing
                };
                n.writes = s.writes + 1;
                n.threads[t].pc = Pc::Setting {
                    func,
                    attr,
                    value,
                    stage,
                };
            }
            Event::RequestStop { .. } => {
                let Pc::Setting {
                    stage: Stage::AwaitPause,
                    ..
                } = th.pc
                else {
                    return reject("only a setter waiting for a pause requests one");
                };
                if !attached || s.requester.is_some() {
                    return reject("the pause is held or the thread is not attached");
                }
                n.requester = Some(t as u8);
                set_stage(&mut n.threads[t], Stage::Pausing);
            }
            Event::Suspend { .. } => {
                if !attached || s.requester.is_none_or(|r| r as usize == t) {
                    return reject("only an attached thread suspends, for another's pause");
                }
                if !s.safe_point(cfg, th) {
                    return reject("the thread is not at a safe point");
                }
                n.threads[t].run = Run::Suspended;
            }
            Event::ClearVersion { func, .. } => {
                let Pc::Setting { func: f, stage, .. } = th.pc else {
                    return reject("only a setter clears a version");
                };
                if f != func || !attached {
                    return reject("clearing another function's version");
                }
                match stage {
                    Stage::Pausing => {
                        if !s.world_stopped_for(t) {
                            return reject("the world is not stopped");
                        }
                        set_stage(&mut n.threads[t], Stage::Restart);
                    }
                    Stage::Clearing => set_stage(&mut n.threads[t], Stage::Writing),
                    _ => return reject("the setter is not at its clearing step"),
                }
                clear_version(cfg, s, &mut n, func);
            }
            Event::StartWorld { .. } => {
                if !matches!(
                    th.pc,
                    Pc::Setting {
                        stage: Stage::Restart,
                        ..
                    }
                ) || s.requester != Some(t as u8)
                {
                    return reject("only the requester restarts the world");
                }
                n.requester = None;
                for other in n.threads.iter_mut() {
                    if other.run == Run::Suspended {
                        other.run = Run::Detached;
                    }
                }
                set_stage(&mut n.threads[t], Stage::Writing);
            }
            Event::WriteAttr {
                func, attr, value, ..
            } => {
                let expected = Pc::Setting {
                    func,
                    attr,
                    value,
                    stage: Stage::Writing,
                };
                if th.pc != expected || !attached {
                    return reject("the setter is not at its write");
                }
                n.funcs[func as usize].attrs[attr.index()] = value;
                n.threads[t].pc = Pc::Idle;
            }
            Event::Attach { .. } => {
                if th.run != Run::Detached {
                    return reject("attach needs a detached thread");
                }
                if s.requester.is_some() {
                    return reject("a pause is requested: the requester parked this thread");
                }
                n.threads[t].run = Run::Attached;
            }
            Event::Detach { .. } => {
                if !idle {
                    return reject("a thread detaches attached, between instructions");
                }
                n.threads[t].run = Run::Detached;
            }
        }
        Ok(n)
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
}

fn idle_events(cfg: &Config, s: &State, thread: u8, out: &mut Vec<Event>) {
    let th = &s.threads[thread as usize];
    if (s.codes.len() as u8) < cfg.max_codes {
        out.push(Event::NewCode {
            thread,
            code: s.codes.len() as u8,
            version: s.next_version,
        });
    }
    for (c, code) in s.codes.iter().enumerate() {
        if !code.live {
            continue;
        }
        if (s.funcs.len() as u8) < cfg.max_functions {
            out.push(Event::MakeFunction {
                thread,
                func: s.funcs.len() as u8,
                code: c as u8,
                version: if valid(code.version) {
                    code.version
                } else {
                    UNSET
                },
            });
        }
        if !s.code_referenced(c as u8) {
            out.push(Event::FreeCode {
                thread,
                code: c as u8,
            });
        }
    }
    for (f, func) in s.funcs.iter().enumerate() {
        let func_id = f as u8;
        if valid(func.version) && func.version != th.cache {
            out.push(Event::Specialize {
                thread,
                func: func_id,
                version: func.version,
            });
        }
        if valid(th.cache) {
            out.push(Event::Guard {
                thread,
                func: func_id,
                pass: func.version == th.cache,
            });
        }
        if s.writes < cfg.max_writes {
            for &attr in &cfg.writable {
                for value in s.write_values(f, attr) {
                    out.push(Event::SetAttr {
                        thread,
                        func: func_id,
                        attr,
                        value,
                        pause: valid(func.version),
                    });
                }
            }
        }
    }
    out.push(Event::Detach { thread });
}

fn set_stage(th: &mut Thread, to: Stage) {
    if let Pc::Setting { stage, .. } = &mut th.pc {
        *stage = to;
    }
}

/// `func_clear_version`: a no-op on an invalid version; otherwise empty
/// the cache slot naming the function and mark the version cleared.
fn clear_version(cfg: &Config, s: &State, n: &mut State, func: u8) {
    let v = s.funcs[func as usize].version;
    if !valid(v) {
        return;
    }
    if cfg.design.clear_cache_slot
        && let Some(i) = s.slot_of(v)
        && s.cache[i].func == Some(func)
    {
        // Leave the slot's code: it may still be looked up by version.
        n.cache[i].func = None;
    }
    n.funcs[func as usize].version = CLEARED;
}

/// Reachability goals: without them a model whose invariants hold could be
/// holding vacuously.
pub static SOMETIMES: &[Invariant<State>] = &[
    Invariant {
        name: "call_completed",
        doc: "Some specialized call passes its guard and finishes its reads.",
        holds: |s| s.seen & seen::CALL_COMPLETED != 0,
    },
    Invariant {
        name: "version_cleared",
        doc: "Some function's version is invalidated.",
        holds: |s| s.funcs.iter().any(|f| f.version == CLEARED),
    },
    Invariant {
        name: "guard_failed_after_clear",
        doc: "Some specialized call's guard fails because the callee's version was cleared.",
        holds: |s| s.seen & seen::GUARD_FAILED != 0,
    },
    Invariant {
        name: "write_without_pause",
        doc: "Some attribute write finds the version already cleared and proceeds without a pause.",
        holds: |s| s.seen & seen::WRITE_WITHOUT_PAUSE != 0,
    },
    Invariant {
        name: "reader_suspended_by_pause",
        doc: "Some thread is suspended while another holds a pause.",
        holds: |s| s.threads.iter().any(|t| t.run == Run::Suspended),
    },
];

/// Named state invariants. The first is the reason the pause exists.
pub static INVARIANTS: &[Invariant<State>] = &[
    Invariant {
        name: "guarded_reads_match_version",
        doc: "Every attribute a specialized call reads after its version guard passed is the one the function had when that version was assigned.",
        holds: |s| s.threads.iter().all(|t| !t.torn),
    },
    Invariant {
        name: "valid_version_means_unchanged",
        doc: "A function whose version is valid still has every critical attribute it had when the version was assigned.",
        holds: |s| {
            s.funcs
                .iter()
                .all(|f| !valid(f.version) || f.attrs == f.origin)
        },
    },
    Invariant {
        name: "versions_never_reused",
        doc: "No two code objects ever created share a valid version.",
        holds: versions_unique,
    },
    Invariant {
        name: "counter_ahead_of_versions",
        doc: "The version counter is above every version it has handed out, or saturated at 0.",
        holds: |s| s.next_version == 0 || s.codes.iter().all(|c| c.version < s.next_version),
    },
    Invariant {
        name: "cache_slot_consistent",
        doc: "A version-cache slot names only a function with a valid version that maps to the slot and whose code is the slot's code, and only a live code object whose version maps to the slot.",
        holds: cache_consistent,
    },
    Invariant {
        name: "pause_excludes_attached",
        doc: "While a setter clears a version with the world stopped, no other thread is attached.",
        holds: |s| {
            s.threads.iter().enumerate().all(|(t, th)| {
                !matches!(
                    th.pc,
                    Pc::Setting {
                        stage: Stage::Restart,
                        ..
                    }
                ) || s.world_stopped_for(t)
            })
        },
    },
];

/// Named transition invariants.
pub static TRANSITION_INVARIANTS: &[TransitionInvariant<State>] = &[TransitionInvariant {
    name: "version_only_cleared",
    doc: "A function's version never changes except from valid to cleared.",
    holds: |a, b| {
        a.funcs
            .iter()
            .zip(&b.funcs)
            .all(|(x, y)| x.version == y.version || (valid(x.version) && y.version == CLEARED))
    },
}];

fn versions_unique(s: &State) -> bool {
    s.codes
        .iter()
        .enumerate()
        .all(|(i, a)| !valid(a.version) || s.codes[i + 1..].iter().all(|b| b.version != a.version))
}

fn cache_consistent(s: &State) -> bool {
    let size = s.cache.len();
    s.cache.iter().enumerate().all(|(i, slot)| {
        let func_ok = slot.func.is_none_or(|f| {
            let f = &s.funcs[f as usize];
            valid(f.version)
                && f.version as usize % size == i
                && Some(f.attrs[Attr::Code.index()]) == slot.code
        });
        let code_ok = slot.code.is_none_or(|c| {
            let c = &s.codes[c as usize];
            c.live && c.version as usize % size == i
        });
        func_ok && code_ok
    })
}

#[cfg(test)]
mod tests;
