//! GIL workloads shared by the std, loom and shuttle test targets: the
//! models' scenarios with bytecode as `Run` (a reference thread must end),
//! run under whichever scheduler the build selects. Under loom and shuttle
//! a timer thread stands for time passing (`Runtime::expire_waiters`),
//! because their timed waits never time out.
#![allow(dead_code)]

use std::time::Duration;

use cpyrt_reference::gil::{Config, Design, Event, Outcome, RunLimits, Runtime};
use cpyrt_reference::primitive::sync::Arc;
use cpyrt_reference::primitive::{MODEL_CHECKED, thread};
use cpyrt_spec::gil::{InterpSpec, Op, ThreadSpec, TstateSpec};

/// The message of a caught panic.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn thread_spec(tstate: Option<u8>, program: Vec<Op>, repeat_from: Option<u8>) -> ThreadSpec {
    ThreadSpec {
        daemon: false,
        tstate,
        gilstate_tstate: None,
        hook_tstate: None,
        main_tstate: None,
        program,
        repeat_from,
    }
}

fn io_loop(tstate: u8) -> ThreadSpec {
    thread_spec(Some(tstate), vec![Op::Take, Op::Run, Op::Drop], Some(0))
}

fn config(
    interps: Vec<bool>,
    tstates: Vec<u8>,
    threads: Vec<ThreadSpec>,
    design: Design,
) -> Config {
    Config {
        interps: interps
            .into_iter()
            .map(|own_gil| InterpSpec { own_gil })
            .collect(),
        tstates: tstates
            .into_iter()
            .map(|interp| TstateSpec { interp })
            .collect(),
        threads,
        shared_main_tstate: None,
        alloc_hook: false,
        spurious_wakeups: false,
        design,
    }
}

/// Every thread runs bytecode and blocks, in a loop.
pub fn handoff(threads: usize, design: Design) -> Config {
    config(
        vec![true],
        vec![0; threads],
        (0..threads).map(|t| io_loop(t as u8)).collect(),
        design,
    )
}

/// The main thread joins, finalizes, runs and releases for the last
/// time; thread 1 is a daemon that keeps running; thread 2 a non-daemon
/// that exits.
pub fn finalize(threads: usize, design: Design) -> Config {
    let main = thread_spec(
        Some(0),
        vec![
            Op::Take,
            Op::Run,
            Op::Drop,
            Op::Join,
            Op::Take,
            Op::Finalize,
            Op::Run,
            Op::Exit,
            Op::DeleteInterp(0),
        ],
        None,
    );
    let mut daemon = io_loop(1);
    daemon.daemon = true;
    let worker = thread_spec(Some(2), vec![Op::Take, Op::Run, Op::Exit], None);
    config(
        vec![true],
        vec![0; threads],
        [main, daemon, worker][..threads].to_vec(),
        design,
    )
}

/// Threads of the main interpreter and of a subinterpreter.
pub fn subinterpreters(threads: usize, own_gil: bool, design: Design) -> Config {
    let tstates = (0..threads).map(|t| u8::from(t > 0)).collect();
    config(
        vec![true, own_gil],
        tstates,
        (0..threads).map(|t| io_loop(t as u8)).collect(),
        design,
    )
}

/// A subinterpreter ends while its worker's final release may still run.
pub fn end_interpreter(threads: usize, design: Design) -> Config {
    let sub_main = thread_spec(
        Some(0),
        vec![
            Op::Take,
            Op::Run,
            Op::Drop,
            Op::Join,
            Op::Take,
            Op::Finalize,
            Op::Exit,
            Op::DeleteInterp(1),
        ],
        None,
    );
    let worker = thread_spec(
        Some(1),
        vec![Op::Take, Op::Run, Op::DeleteTstate, Op::Exit],
        None,
    );
    let all = [sub_main, worker, io_loop(2)];
    config(
        vec![true, true],
        vec![1, 1, 0][..threads].to_vec(),
        all[..threads].to_vec(),
        design,
    )
}

/// Fresh C threads call PyGILState_Ensure/Release under the allocation
/// hook; thread 2 is a main thread that blocks and wakes.
pub fn gilstate(threads: usize, design: Design) -> Config {
    let c_thread = |t: u8| ThreadSpec {
        gilstate_tstate: Some(2 * t),
        hook_tstate: Some(2 * t + 1),
        ..thread_spec(
            None,
            vec![Op::NewTstate, Op::Take, Op::Run, Op::DeleteTstate, Op::Exit],
            None,
        )
    };
    let all = [c_thread(0), c_thread(1), io_loop(4)];
    let mut c = config(vec![true], vec![0; 5], all[..threads].to_vec(), design);
    c.alloc_hook = true;
    c
}

/// Threads of two own-GIL subinterpreters borrow a main-interpreter thread
/// state (their own, or one shared detached one).
pub fn detached(threads: usize, design: Design) -> Config {
    let borrower = |t: u8| ThreadSpec {
        main_tstate: Some(2 + t),
        ..thread_spec(
            Some(t),
            vec![
                Op::Take,
                Op::Run,
                Op::Drop,
                Op::BindMain,
                Op::Take,
                Op::Run,
                Op::Drop,
                Op::Unbind,
            ],
            Some(0),
        )
    };
    let all = [borrower(0), borrower(1), io_loop(5)];
    let mut c = config(
        vec![true, true, true],
        vec![1, 2, 0, 0, 0, 0],
        all[..threads].to_vec(),
        design,
    );
    c.shared_main_tstate = Some(4);
    c
}

/// How to run a workload.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub limits: RunLimits,
    /// Switch intervals the timer thread lets pass (loom and shuttle only;
    /// `std` uses real time).
    pub ticks: usize,
    /// The `std` switch interval.
    pub interval: Duration,
    pub trace: bool,
}

impl Default for Run {
    fn default() -> Self {
        Run {
            limits: RunLimits::default(),
            ticks: 2,
            interval: Duration::from_micros(50),
            trace: false,
        }
    }
}

/// Runs every thread's program (thread 0 on the calling thread) and, under
/// a model checker, a timer thread; returns each thread's outcome and the
/// trace.
pub fn run(cfg: &Config, how: Run) -> (Vec<Outcome>, Vec<Event>) {
    let rt = Runtime::new(cfg, how.interval, how.trace).expect("valid configuration");
    let mut handles = Vec::new();
    for t in 1..cfg.threads.len() {
        let mut th = Runtime::thread(&rt, t as u8);
        handles.push(thread::spawn(move || th.run(how.limits)));
    }
    let timer = (MODEL_CHECKED && how.ticks > 0).then(|| {
        let rt = Arc::clone(&rt);
        thread::spawn(move || {
            for _ in 0..how.ticks {
                for g in 0..rt.gils().len() {
                    rt.expire_waiters(g as u8);
                }
                thread::yield_now();
            }
        })
    });
    let mut outcomes = vec![Runtime::thread(&rt, 0).run(how.limits)];
    for h in handles {
        outcomes.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
    }
    if let Some(timer) = timer {
        timer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
    }
    // Reported here, with every lock released (under loom a panic while a
    // guard is alive aborts the process).
    if let Some(t) = outcomes.iter().position(|o| *o == Outcome::SelfBlocked) {
        panic!("no_self_block: thread {t} waits for HEAD_LOCK, which it holds");
    }
    (outcomes, rt.take_trace())
}
