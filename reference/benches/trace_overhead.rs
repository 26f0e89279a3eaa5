//! The cost of the event recorder, as ratios measured in one run:
//! `cargo bench -p cpyrt-reference --bench trace_overhead`.
//!
//! - a disabled `Recorder::step` around one atomic store, against the bare
//!   store (the promise: one branch, so a ratio near 1);
//! - a single-thread QSBR loop (quiescent state, read, replace, process)
//!   with tracing off against tracing on.
//!
//! Measured on the project's 2-core machine: the disabled step costs 1.27x
//! the bare store (0.30 ns against 0.23 ns: one predictable branch), and
//! tracing makes a QSBR round 5x slower (61 ns against 308 ns: the lock
//! and the log append in every step).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpyrt_reference::qsbr::{Config, Domain, Published};
use cpyrt_reference::trace::Recorder;

/// Repetitions of each measurement; the minimum is reported.
const SAMPLES: usize = 7;

fn best(mut f: impl FnMut() -> Duration) -> Duration {
    (0..SAMPLES).map(|_| f()).min().expect("SAMPLES > 0")
}

fn recorder_step(iterations: u64) -> (Duration, Duration) {
    let cell = AtomicU64::new(0);
    let bare = best(|| {
        let start = Instant::now();
        for i in 0..iterations {
            black_box(&cell).store(i, Ordering::Release);
        }
        start.elapsed()
    });
    let recorder: Recorder<u64> = Recorder::new(black_box(false));
    let stepped = best(|| {
        let start = Instant::now();
        for i in 0..iterations {
            recorder.step(|log| {
                black_box(&cell).store(i, Ordering::Release);
                log.emit_with(|| i);
            });
        }
        start.elapsed()
    });
    (bare, stepped)
}

/// Rounds per domain: a traced domain publishes at most 255 objects.
const ROUNDS_PER_DOMAIN: u64 = 250;

fn qsbr_loop(trace: bool, domains: u64) -> Duration {
    best(|| {
        let mut elapsed = Duration::ZERO;
        for _ in 0..domains {
            let mut cfg = Config::CPYTHON;
            cfg.trace = trace;
            let domain = Domain::new(cfg);
            let cell = Published::new(&domain, 0u64);
            let mut t = Domain::register(&domain, 0);
            t.attach();
            let start = Instant::now();
            for i in 0..ROUNDS_PER_DOMAIN {
                t.quiescent_state();
                black_box(*t.read(&cell));
                t.replace(&cell, i);
                t.process_delayed();
            }
            elapsed += start.elapsed();
            t.exit();
        }
        elapsed
    })
}

fn main() {
    let iterations = 10_000_000;
    let (bare, stepped) = recorder_step(iterations);
    println!(
        "recorder off: {:.2} ns/step vs {:.2} ns bare store: ratio {:.2}",
        stepped.as_nanos() as f64 / iterations as f64,
        bare.as_nanos() as f64 / iterations as f64,
        stepped.as_secs_f64() / bare.as_secs_f64()
    );
    let domains = 800;
    let rounds = domains * ROUNDS_PER_DOMAIN;
    let off = qsbr_loop(false, domains);
    let on = qsbr_loop(true, domains);
    println!(
        "qsbr round (quiescent, read, replace, process): {:.0} ns untraced, {:.0} ns traced: ratio {:.2}",
        off.as_nanos() as f64 / rounds as f64,
        on.as_nanos() as f64 / rounds as f64,
        on.as_secs_f64() / off.as_secs_f64()
    );
}
