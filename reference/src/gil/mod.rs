//! The GIL: `take_gil` / `drop_gil` with FORCE_SWITCHING, per-interpreter
//! GIL objects, thread-state creation under HEAD_LOCK and finalization,
//! following `Python/ceval_gil.c` and `Python/pystate.c` (CPython
//! 3.13/3.14) step for step, as `cpyrt_spec::gil` splits them.
//!
//! # Shape
//! A [`Runtime`] holds the GIL objects, interpreters and thread states of
//! one `cpyrt_spec::gil::Config` and the event [`Recorder`]. Each OS thread
//! drives a [`PyThread`]: [`PyThread::take_gil`], [`PyThread::drop_gil`],
//! [`PyThread::eval_breaker_check`] (the drop-request branch of
//! `_Py_HandlePending`), and [`PyThread::run`], which executes the
//! thread's spec program op by op so a recorded trace replays against the
//! same configuration. A `PyThread` is a `crate::eval::Machine`: `Run`
//! executes its bytecode on the shared instruction loop, which checks the
//! eval breaker before each instruction.
//!
//! # Condition variables and time
//! `pthread_cond_signal` wakes one waiter and does not say which; the spec's
//! signal events name the woken thread. So each condition variable here
//! keeps its waiters in a list under its mutex: a signal picks the oldest,
//! marks it woken and records which; a waiter loops until it is marked, so
//! spurious wake-ups of the underlying condvar are invisible. The timed wait
//! on `cond` uses the switch interval on `std`. loom and shuttle never time
//! out, so under them time is an actor: [`Gil::expire_waiters`] ends the
//! wait of every thread waiting on `cond` at that moment (one switch
//! interval passing), and a test spawns a timer thread that calls it a
//! bounded number of times; every placement of those calls is an
//! interleaving the checker explores.
//!
//! # Guided runs
//! [`Runtime::guided`] puts every thread behind a [`Gate`] it passes before
//! each event it records, so a driver outside (the conformance suite's
//! lock-step explorer) picks the interleaving event by event, ends timed
//! waits itself, and makes the choices the spec leaves open (how long a
//! `Run` segment lasts, whether the allocation hook runs). CPU-bound
//! threads (`Compute`) run only guided.
//!
//! # Ghost checks
//! The runtime asserts the spec's invariants where it can see them, and
//! panics with the invariant's name: `mutual_exclusion` when a second
//! thread sets `locked`, `drop_only_when_locked`, `tstate_bound_once`,
//! and `no_use_after_free` when a thread touches a deleted
//! subinterpreter. Hangs (a thread that must exit) return
//! [`Outcome::Hung`] instead of blocking forever, so a model checker can
//! tell them from deadlocks, and a thread about to block on the HEAD_LOCK
//! it holds returns [`Outcome::SelfBlocked`] (`no_self_block`) instead of
//! deadlocking.

#[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
pub mod bench;
mod gate;
mod handoff;
mod program;

pub use gate::{Aborted, Gate};

pub use cpyrt_spec::gil::{Config, Design, Event, Op};
pub use handoff::Gil;
pub use program::{Bytecode, Outcome, RunLimits};

use std::time::Duration;

use crate::primitive::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::primitive::sync::{Arc, Condvar, Mutex};
use crate::trace::Recorder;

/// CPython's default switch interval (`DEFAULT_INTERVAL`, 5000 µs).
pub const DEFAULT_INTERVAL: Duration = Duration::from_micros(5000);

/// `None` as 0, `Some(x)` as `x + 1`, for ids kept in an atomic.
fn encode(id: Option<u8>) -> u32 {
    id.map_or(0, |x| u32::from(x) + 1)
}

fn decode(v: u32) -> Option<u8> {
    v.checked_sub(1).map(|x| x as u8)
}

/// One thread state's fields the GIL uses.
#[derive(Debug)]
pub struct Tstate {
    pub interp: u8,
    /// `tstate->holds_gil`.
    holds_gil: AtomicBool,
    /// `_PY_GIL_DROP_REQUEST_BIT` of `tstate->eval_breaker`.
    drop_request: AtomicBool,
    /// OS threads it is bound to (bit i = thread i).
    bound: AtomicU32,
}

/// One interpreter's fields the GIL uses.
#[derive(Debug)]
pub struct Interp {
    /// `interp->ceval.gil`.
    pub gil: u8,
    /// The finalizing thread state, encoded.
    finalizing: AtomicU32,
    /// `PyInterpreterState_Delete` ran.
    deleted: AtomicBool,
}

/// One OS thread's fields others look at.
#[derive(Debug)]
struct ThreadInfo {
    daemon: bool,
    interp: Option<u8>,
    /// Joinable: it has started its last release.
    done: AtomicBool,
}

/// GIL objects, interpreters and thread states of one configuration.
#[derive(Debug)]
pub struct Runtime {
    cfg: Config,
    gils: Vec<Gil>,
    interps: Vec<Interp>,
    tstates: Vec<Tstate>,
    threads: Vec<ThreadInfo>,
    /// HEAD_LOCK (`_PyRuntime.interpreters.mutex`) and its owner, encoded.
    head: Mutex<()>,
    head_owner: AtomicU32,
    /// `threading._shutdown`'s wait for other threads.
    joined: Mutex<()>,
    join_cond: Condvar,
    trace: Recorder<Event>,
    /// Lock-step control (see [`Gate`]); `None` on free-running threads.
    gate: Option<std::sync::Arc<Gate>>,
}

impl Runtime {
    /// The runtime of `cfg` (validated), recording spec events when
    /// `trace`, with switch interval `interval` for `std` timed waits.
    pub fn new(cfg: &Config, interval: Duration, trace: bool) -> Result<Arc<Runtime>, String> {
        Runtime::build(cfg, interval, trace).map(Arc::new)
    }

    fn build(cfg: &Config, interval: Duration, trace: bool) -> Result<Runtime, String> {
        cfg.validate()?;
        let mut gils = Vec::new();
        let mut interps = Vec::new();
        for (i, spec) in cfg.interps.iter().enumerate() {
            // _PyEval_InitGIL: init_own_gil or init_shared_gil.
            let gil = if i == 0 || spec.own_gil {
                gils.push(Gil::new(
                    gils.len() as u8,
                    i as u8,
                    cfg.threads.len(),
                    interval,
                ));
                gils.len() - 1
            } else {
                0
            };
            interps.push(Interp {
                gil: gil as u8,
                finalizing: AtomicU32::new(0),
                deleted: AtomicBool::new(false),
            });
        }
        let tstates: Vec<Tstate> = cfg
            .tstates
            .iter()
            .map(|ts| Tstate {
                interp: ts.interp,
                holds_gil: AtomicBool::new(false),
                drop_request: AtomicBool::new(false),
                bound: AtomicU32::new(0),
            })
            .collect();
        let threads = cfg
            .threads
            .iter()
            .enumerate()
            .map(|(t, spec)| {
                if let Some(ts) = spec.tstate {
                    tstates[ts as usize]
                        .bound
                        .fetch_or(1 << t, Ordering::Relaxed);
                }
                ThreadInfo {
                    daemon: spec.daemon,
                    interp: spec.tstate.map(|ts| cfg.tstates[ts as usize].interp),
                    done: AtomicBool::new(false),
                }
            })
            .collect();
        Ok(Runtime {
            cfg: cfg.clone(),
            gils,
            interps,
            tstates,
            threads,
            head: Mutex::new(()),
            head_owner: AtomicU32::new(0),
            joined: Mutex::new(()),
            join_cond: Condvar::new(),
            trace: Recorder::new(trace),
            gate: None,
        })
    }

    /// A traced runtime of `cfg` whose threads step only when `gate` lets
    /// them (see [`Gate`]): time passes only through
    /// [`Runtime::expire_waiters`], a `Run` segment lasts until the gate
    /// says leave, `Compute` and repeating programs run until the gate
    /// aborts the run.
    pub fn guided(cfg: &Config, gate: std::sync::Arc<Gate>) -> Result<Arc<Runtime>, String> {
        let mut rt = Runtime::build(cfg, Duration::from_secs(3600), true)?;
        rt.gate = Some(gate);
        Ok(Arc::new(rt))
    }

    /// Waits at thread `t`'s gate, when the runtime is guided; true when
    /// the gate chose the other branch.
    fn pass(&self, t: u8) -> bool {
        self.gate.as_ref().is_some_and(|gate| gate.pass(t))
    }

    /// Whether the runtime is guided.
    fn guided_run(&self) -> bool {
        self.gate.is_some()
    }

    /// The design the runtime follows.
    pub fn design(&self) -> Design {
        self.cfg.design
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The GIL objects.
    pub fn gils(&self) -> &[Gil] {
        &self.gils
    }

    /// The recorded events so far (empty when tracing is off).
    pub fn take_trace(&self) -> Vec<Event> {
        self.trace.take()
    }

    /// A handle for OS thread `t` of `rt`, with its configured thread
    /// state current. Each OS thread uses its own handle.
    pub fn thread(rt: &Arc<Runtime>, t: u8) -> PyThread {
        PyThread {
            rt: Arc::clone(rt),
            id: t,
            current: rt.cfg.threads[t as usize].tstate,
            home: None,
            in_hook: false,
        }
    }

    fn gil_of(&self, ts: u8) -> &Gil {
        &self.gils[self.interps[self.tstates[ts as usize].interp as usize].gil as usize]
    }

    /// `_PyThreadState_MustExit`: the runtime or the thread state's
    /// interpreter is finalizing with another thread state.
    fn must_exit(&self, ts: u8) -> bool {
        let other = |i: usize| {
            decode(self.interps[i].finalizing.load(Ordering::Acquire)).is_some_and(|f| f != ts)
        };
        other(0) || other(self.tstates[ts as usize].interp as usize)
    }

    /// The ghost check behind `no_use_after_free`: a deleted
    /// subinterpreter's memory is gone (the main interpreter is static).
    fn touch_interp(&self, interp: u8, what: &str) {
        if interp != 0
            && self.interps[interp as usize]
                .deleted
                .load(Ordering::Acquire)
        {
            panic!("no_use_after_free: {what} of deleted interpreter {interp}");
        }
    }
}

/// One OS thread's view: which thread state is current.
pub struct PyThread {
    rt: Arc<Runtime>,
    id: u8,
    current: Option<u8>,
    home: Option<u8>,
    in_hook: bool,
}

impl PyThread {
    /// The spec thread index this thread records events as.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// The current thread state.
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// Whether the current thread state holds its GIL (`holds_gil`).
    pub fn holds_gil(&self) -> bool {
        self.current.is_some_and(|ts| {
            self.rt.tstates[ts as usize]
                .holds_gil
                .load(Ordering::Acquire)
        })
    }

    /// The runtime this thread belongs to.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }
}
