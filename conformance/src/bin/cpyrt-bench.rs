//! `cargo xtask bench`: throughput of the models and costs of the reference,
//! each reported as a ratio against a baseline measured in the same run, so
//! the numbers compare across machines. Absolute figures are printed too,
//! for the record, but only the ratios are meant to be compared.
//!
//! Sections: `model`, `reference`, `models`, `stw`, `gil` (the GIL
//! against `python3`, and the GIL model against QSBR's); all without an
//! argument.

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

/// Model throughput of every mechanism at its default thread count,
/// base design, default bounds: safety only (stateright BFS, one worker),
/// so the lines compare with the QSBR baseline above.
fn all_models_lines() {
    use cpyrt_models::registry::{DEFAULT_BOUNDS, MECHANISMS};
    use cpyrt_models::run::RunOptions;
    println!("\n== every model, base design, default threads, safety only");
    let opts = RunOptions {
        skip_liveness: true,
        ..RunOptions::default()
    };
    let mut baseline = None;
    for mech in MECHANISMS {
        let threads = mech.default_threads();
        match mech.check("base", threads, DEFAULT_BOUNDS, &opts, &mut |_| {}) {
            Ok(r) => {
                let rate = r.unique_states as f64 / r.seconds.max(1e-9);
                let base = *baseline.get_or_insert(rate);
                println!(
                    "{:<14} {threads} threads: {:>9} unique states in {:>6.2}s, {:>9.0} states/s ({:.2}x qsbr's rate)",
                    mech.name(),
                    r.unique_states,
                    r.seconds,
                    rate,
                    rate / base
                );
            }
            Err(e) => println!("{:<14} {threads} threads: {e}", mech.name()),
        }
    }
}

/// Stop-the-world pause latency in the reference: one requester pauses its
/// interpreter while 1, 2 or 3 other threads run an eval loop that checks
/// the eval breaker between short work items. The reference holds at most
/// `cpyrt_spec::stw::MAX_THREADS` (4) threads, so 3 running threads is the
/// largest setting. Before each timed pause the requester waits until every
/// worker has run two more loop iterations, so each pause stops threads
/// that are really running. Ratios are against the 1-thread latency.
fn stw_lines() {
    use cpyrt_reference::stw::{Config, Design, HandOff, Role, Runtime, Scope};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const PAUSES: usize = 2_000;
    println!("\n== stop-the-world reference, median pause latency over {PAUSES} pauses");
    let mut first = None;
    for running in [1usize, 2, 3] {
        let role = Role {
            interp: 0,
            starts_bound: true,
            interp_pauses: true,
            global_pauses: false,
            finalizes: false,
            critical_sections: false,
            blocking_calls: false,
            exits: true,
        };
        let rt = Runtime::new(Config {
            interps: 1,
            roles: vec![role; running + 1],
            design: Design::CPYTHON,
            hand_off: HandOff::ALWAYS,
            trace: false,
        });
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        // Each worker counts its loop iterations, so the requester can wait
        // until every worker is running attached again before it times the
        // next pause (otherwise it would time pausing threads still parked
        // from the previous one).
        let laps: std::sync::Arc<Vec<AtomicU64>> =
            std::sync::Arc::new((0..running).map(|_| AtomicU64::new(0)).collect());
        let workers: Vec<_> = (0..running as u8)
            .map(|t| {
                let rt = rt.clone();
                let stop = stop.clone();
                let laps = laps.clone();
                std::thread::spawn(move || {
                    let mut th = Runtime::bound(&rt, t);
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for i in 0..64 {
                            x = black_box(x.wrapping_mul(31).wrapping_add(i));
                        }
                        th.eval_breaker().expect("no finalization in the bench");
                        laps[t as usize].fetch_add(1, Ordering::Relaxed);
                    }
                    th.exit();
                })
            })
            .collect();
        let mut requester = Runtime::bound(&rt, running as u8);
        let mut lat = Vec::with_capacity(PAUSES);
        for _ in 0..PAUSES {
            let seen: Vec<u64> = laps.iter().map(|l| l.load(Ordering::Relaxed)).collect();
            while laps
                .iter()
                .zip(&seen)
                .any(|(l, s)| l.load(Ordering::Relaxed) <= *s + 1)
            {
                std::hint::spin_loop();
            }
            let start = Instant::now();
            requester
                .pause(Scope::Interp(0), false)
                .expect("no finalization in the bench");
            lat.push(start.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("worker panicked");
        }
        requester.exit();
        let m = median(lat);
        let base = *first.get_or_insert(m);
        println!(
            "{running} running thread(s): {:.1} us per pause ({:.2}x the 1-thread latency)",
            m.as_secs_f64() * 1e6,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
}

/// Seconds each side of the GIL-against-CPython comparison runs.
#[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
const GIL_SECONDS: f64 = 3.0;

/// The GIL: the reference against `python3` on the same hand-off workload
/// (switches per second, wake-up latency, as ratios; skipped with a line
/// saying so when `python3` is missing), then the GIL model's safety
/// throughput at its default configuration against QSBR's base design at
/// [`MODEL_THREADS`] (the baseline of the `model` section; QSBR's default
/// two-thread space, under 7,000 states, checks too fast for a stable
/// rate), measured in the same run.
fn gil_lines() {
    use cpyrt_models::registry::{DEFAULT_BOUNDS, find};
    use cpyrt_models::run::RunOptions;
    // The hand-off workload is std only (the loom and shuttle passes
    // build this binary too).
    #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
    {
        print!("\n== ");
        cpyrt_reference::gil::bench::compare_with_cpython(GIL_SECONDS);
    }
    println!("\n== GIL model against QSBR's, base design, safety only");
    let opts = RunOptions {
        skip_liveness: true,
        ..RunOptions::default()
    };
    let mut rates = Vec::new();
    for name in ["qsbr", "gil"] {
        let mech = find(name).expect("a registered model");
        let threads = if name == "qsbr" {
            MODEL_THREADS
        } else {
            mech.default_threads()
        };
        match mech.check("base", threads, DEFAULT_BOUNDS, &opts, &mut |_| {}) {
            Ok(r) => {
                let rate = r.unique_states as f64 / r.seconds.max(1e-9);
                println!(
                    "{name:<5} {threads} threads: {:>9} unique states in {:>6.2}s, {:>9.0} states/s",
                    r.unique_states, r.seconds, rate
                );
                rates.push(rate);
            }
            Err(e) => println!("{name:<5} {threads} threads: {e}"),
        }
    }
    if let [qsbr, gil] = rates[..] {
        println!("gil/qsbr states per second: {:.2}", gil / qsbr);
    }
}

/// The sections `cargo xtask bench` runs; one of them alone when named.
const SECTIONS: &[&str] = &["model", "reference", "models", "stw", "gil"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only = args.first().map(String::as_str);
    if let Some(o) = only
        && !SECTIONS.contains(&o)
    {
        eprintln!(
            "unknown bench section `{o}`; known: {}",
            SECTIONS.join(", ")
        );
        std::process::exit(2);
    }
    if only.is_none_or(|o| o == "model") {
        model_lines();
    }
    if only.is_none_or(|o| o == "reference") {
        reference_lines();
    }
    if only.is_none_or(|o| o == "models") {
        all_models_lines();
    }
    if only.is_none_or(|o| o == "stw") {
        stw_lines();
    }
    if only.is_none_or(|o| o == "gil") {
        gil_lines();
    }
}
