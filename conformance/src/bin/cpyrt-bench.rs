//! `cargo xtask bench`: throughput of the models and costs of the reference,
//! each reported as a ratio against a baseline measured in the same run, so
//! the numbers compare across machines. Absolute figures are printed too,
//! for the record, but only the ratios are meant to be compared.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cpyrt_models::SpecModel;
use cpyrt_models::checker::bench::{self as cb, BenchRun, CountingAlloc};
use cpyrt_reference::qsbr::{Config as RefConfig, Domain};
use cpyrt_spec::qsbr::{Design, Qsbr};
use stateright::{Checker, Model};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Threads of the QSBR model configuration the throughput lines use.
const MODEL_THREADS: usize = 3;
/// Iterations of each reference micro-benchmark (per sample).
const ITERS: u32 = 1_000_000;
/// Samples per micro-benchmark; the median is reported.
const SAMPLES: usize = 7;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn per_op(iters: u32, f: &mut dyn FnMut(u32)) -> Duration {
    let samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            f(iters);
            start.elapsed()
        })
        .collect();
    median(samples) / iters
}

fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn model_lines() {
    println!("== QSBR model, base design, {MODEL_THREADS} threads");
    // Generated and unique states per second, stateright BFS, one worker.
    let m = SpecModel::<Qsbr>::new(cpyrt_models::qsbr::config(MODEL_THREADS, Design::CPYTHON));
    let start = Instant::now();
    let c = m.checker().threads(1).spawn_bfs().join();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "stateright bfs: {} unique, {} generated in {secs:.2}s: {:.0} unique/s, {:.0} generated/s",
        c.unique_state_count(),
        c.state_count(),
        c.unique_state_count() as f64 / secs,
        c.state_count() as f64 / secs
    );
    let runs: Vec<BenchRun> = cb::qsbr_all(MODEL_THREADS);
    let base = &runs[0];
    let base_rate = base.unique_states as f64 / base.seconds;
    println!(
        "{:<28} {:>10} {:>8} {:>12} {:>14} {:>12}  outcome",
        "run", "states", "seconds", "states/s", "x safety rate", "peak B/state"
    );
    for r in &runs {
        let rate = r.unique_states as f64 / r.seconds;
        println!(
            "{:<28} {:>10} {:>8.2} {:>12.0} {:>14.2} {:>12}  {}",
            r.name,
            r.unique_states,
            r.seconds,
            rate,
            rate / base_rate,
            r.peak_bytes_per_state
                .map(|b| format!("{b:.0}"))
                .unwrap_or_else(|| "-".into()),
            r.outcome
        );
    }
    let plain = runs
        .iter()
        .find(|r| r.name.starts_with("safety (graph)"))
        .map(|r| r.unique_states);
    let sym = runs
        .iter()
        .find(|r| r.name.contains("symmetry"))
        .map(|r| r.unique_states);
    if let (Some(p), Some(s)) = (plain, sym) {
        println!(
            "symmetry: {p} -> {s} states ({:.2}x fewer; {MODEL_THREADS}! = 6)",
            p as f64 / s as f64
        );
    }
}

fn reference_lines() {
    println!("\n== QSBR reference, one thread, {ITERS} iterations x {SAMPLES} samples (median)");
    let domain = Domain::new(RefConfig::CPYTHON);
    let mut th = Domain::reserve(&domain, 0).register();
    let qsbr = per_op(ITERS, &mut |n| {
        for _ in 0..n {
            th.attach();
            th.quiescent_state();
            th.detach();
        }
    });
    let collector = crossbeam_epoch::Collector::new();
    let handle = collector.register();
    let epoch = per_op(ITERS, &mut |n| {
        for _ in 0..n {
            let guard = handle.pin();
            black_box(&guard);
            drop(guard);
        }
    });
    println!(
        "attach + quiescent + detach: {:.1} ns; crossbeam-epoch pin + unpin: {:.1} ns; ratio {:.2}",
        ns(qsbr),
        ns(epoch),
        ns(qsbr) / ns(epoch)
    );
    let qs_only = {
        th.attach();
        let d = per_op(ITERS, &mut |n| {
            for _ in 0..n {
                th.quiescent_state();
            }
        });
        th.detach();
        d
    };
    println!(
        "quiescent state alone (the eval-breaker cost): {:.1} ns; ratio to pin + unpin {:.2}",
        ns(qs_only),
        ns(qs_only) / ns(epoch)
    );
    th.exit();

    // Tracing: the cost of the recorder when off (a branch) and when on.
    let traced = Domain::new(RefConfig {
        trace: true,
        ..RefConfig::CPYTHON
    });
    let mut tt = Domain::reserve(&traced, 0).register();
    let iters = ITERS / 10;
    let on = per_op(iters, &mut |n| {
        for _ in 0..n {
            tt.attach();
            tt.quiescent_state();
            tt.detach();
        }
        black_box(traced.take_trace());
    });
    println!(
        "tracing on: {:.1} ns per attach + quiescent + detach; ratio to tracing off {:.2}",
        ns(on),
        ns(on) / ns(qsbr)
    );
    tt.exit();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only = args.first().map(String::as_str);
    if only.is_none_or(|o| o == "model") {
        model_lines();
    }
    if only.is_none_or(|o| o == "reference") {
        reference_lines();
    }
}
