//! The hand-off workload the GIL benchmark runs on the reference runtime
//! and, in the same shape, on CPython (`reference/benches/gil_vs_cpython.rs`):
//! two CPU-bound threads and one thread that blocks (sleeps, holding no
//! GIL) and wakes, for a fixed time, at one switch interval.
//!
//! Measured: hand-offs between the CPU-bound threads per second (each
//! thread notes, after each unit of work, whether the previous unit was
//! someone else's), and the blocking thread's wake-up latency: how much
//! longer "release, sleep, re-take" takes than the sleep asked for. The
//! same two quantities are what a Python program can observe of CPython's
//! GIL, so the ratios compare like with like.

use std::time::{Duration, Instant};

use cpyrt_spec::gil::{Config, Design, InterpSpec, Op, ThreadSpec, TstateSpec};

use super::{Runtime, handoff::Taken};
use crate::primitive::sync::Arc;
use crate::primitive::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::primitive::thread;

/// What one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct HandoffStats {
    pub seconds: f64,
    /// Hand-offs between the two CPU-bound threads.
    pub switches: u64,
    /// Completed sleep/wake cycles of the blocking thread.
    pub wakeups: u64,
    /// Median and 90th percentile of the wake-up latency, in µs.
    pub wake_median_us: f64,
    pub wake_p90_us: f64,
}

impl HandoffStats {
    pub fn switches_per_second(&self) -> f64 {
        self.switches as f64 / self.seconds
    }
}

fn config() -> Config {
    let thread = |t: u8| ThreadSpec {
        daemon: false,
        tstate: Some(t),
        gilstate_tstate: None,
        hook_tstate: None,
        main_tstate: None,
        program: vec![Op::Take, Op::Run, Op::Drop],
        repeat_from: Some(0),
    };
    Config {
        interps: vec![InterpSpec { own_gil: true }],
        tstates: vec![TstateSpec { interp: 0 }; 3],
        threads: (0..3).map(thread).collect(),
        shared_main_tstate: None,
        alloc_hook: false,
        spurious_wakeups: false,
        design: Design::CPYTHON,
    }
}

/// Runs the workload for `duration` with switch interval `interval`; the
/// blocking thread sleeps `sleep` per cycle; `work` spin iterations make
/// one unit of CPU-bound work between eval-breaker checks.
pub fn handoff(duration: Duration, interval: Duration, sleep: Duration, work: u32) -> HandoffStats {
    let rt = Runtime::new(&config(), interval, false).expect("valid configuration");
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicU32::new(u32::MAX));
    let switches = Arc::new(AtomicU64::new(0));
    let mut cpu = Vec::new();
    for t in 0..2u8 {
        let mut th = Runtime::thread(&rt, t);
        let (stop, last, switches) = (Arc::clone(&stop), Arc::clone(&last), Arc::clone(&switches));
        cpu.push(thread::spawn(move || {
            assert_eq!(th.take_gil(), Taken::Held);
            while !stop.load(Ordering::Relaxed) {
                for i in 0..work {
                    std::hint::black_box(i);
                }
                // Noted while holding the GIL, so the notes are in GIL order.
                if last.swap(u32::from(t), Ordering::Relaxed) != u32::from(t) {
                    switches.fetch_add(1, Ordering::Relaxed);
                }
                th.eval_breaker_check();
            }
            th.drop_gil(false);
        }));
    }
    let io = {
        let mut th = Runtime::thread(&rt, 2);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut lat = Vec::new();
            assert_eq!(th.take_gil(), Taken::Held);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                th.drop_gil(false);
                std::thread::sleep(sleep);
                th.take_gil();
                lat.push(start.elapsed().saturating_sub(sleep));
            }
            th.drop_gil(false);
            lat
        })
    };
    let start = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    for h in cpu {
        h.join().expect("CPU-bound thread");
    }
    let mut lat = io.join().expect("blocking thread");
    lat.sort();
    let pct = |p: usize| {
        lat.get(lat.len() * p / 100)
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    HandoffStats {
        seconds,
        switches: switches.load(Ordering::Relaxed),
        wakeups: lat.len() as u64,
        wake_median_us: pct(50),
        wake_p90_us: pct(90),
    }
}
