//! GIL workloads shared by the std, loom and shuttle test targets: the
//! spec's named scenarios (the models' too) in their finite form, where a
//! CPU-bound thread blocks and wakes instead (a reference thread must end),
//! run under whichever scheduler the build selects. Under loom and shuttle
//! a timer thread stands for time passing (`Runtime::expire_waiters`),
//! because their timed waits never time out.
#![allow(dead_code)]

use std::time::Duration;

use cpyrt_reference::gil::{Config, Design, Event, Outcome, RunLimits, Runtime};
use cpyrt_reference::primitive::sync::Arc;
use cpyrt_reference::primitive::{MODEL_CHECKED, thread};
use cpyrt_spec::gil::scenario::{self, finite};

/// The message of a caught panic.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The spec's named scenarios as free-running reference threads run them
/// (`scenario::finite`: a CPU-bound thread blocks and wakes instead, so
/// every thread ends); the traces replay against these configurations.
pub fn handoff(threads: usize, design: Design) -> Config {
    finite(scenario::handoff(threads, design))
}

/// See [`scenario::finalize`].
pub fn finalize(threads: usize, design: Design) -> Config {
    finite(scenario::finalize(threads, design))
}

/// See [`scenario::subinterpreters`].
pub fn subinterpreters(threads: usize, own_gil: bool, design: Design) -> Config {
    finite(scenario::subinterpreters(threads, own_gil, design))
}

/// See [`scenario::end_interpreter`].
pub fn end_interpreter(threads: usize, design: Design) -> Config {
    finite(scenario::end_interpreter(threads, design))
}

/// See [`scenario::gilstate`].
pub fn gilstate(threads: usize, design: Design) -> Config {
    finite(scenario::gilstate(threads, design))
}

/// See [`scenario::detached`].
pub fn detached(threads: usize, design: Design) -> Config {
    finite(scenario::detached(threads, design))
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
