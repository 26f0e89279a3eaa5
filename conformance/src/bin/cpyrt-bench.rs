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
    use cpyrt_models::registry::MECHANISMS;
    println!("\n== every model, base design, default threads, safety only");
    let mut baseline = None;
    for mech in MECHANISMS {
        let threads = mech.default_threads();
        match safety_run(*mech) {
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

/// One model's safety run at its default threads and bounds, base design
/// (stateright BFS, one worker), as the `models` lines run it.
fn safety_run(
    mech: &dyn cpyrt_models::registry::Mechanism,
) -> Result<cpyrt_models::report::Report, String> {
    use cpyrt_models::registry::DEFAULT_BOUNDS;
    use cpyrt_models::run::RunOptions;
    let opts = RunOptions {
        skip_liveness: true,
        ..RunOptions::default()
    };
    mech.check(
        "base",
        mech.default_threads(),
        DEFAULT_BOUNDS,
        &opts,
        &mut |_| {},
    )
}

/// Function versions: the reference's cost of a specialized `CALL` (the
/// version guard, then the reads it trusts) against the generic path
/// (`_PyFunction_Vectorcall` binding the frame from fresh loads), per call
/// on one attached thread with tracing off, for both specialized calls;
/// then the function-version model's safety throughput at its default
/// configuration against QSBR's, measured in the same run.
fn func_version_lines() {
    use cpyrt_reference::func_version::{Called, Config, Runtime, thread};
    use cpyrt_spec::func_version::{CallKind, Design as FvDesign};
    println!("\n== function versions: reference call cost, tracing off, one thread");
    for call in [CallKind::ExactArgs, CallKind::General] {
        let rt = Runtime::new(Config {
            threads: 1,
            last_version: u32::MAX,
            cache_size: 0,
            call,
            design: FvDesign::CPYTHON,
            trace: false,
        });
        let mut th = thread(&rt, 0);
        // The first call takes the generic path and specializes the site.
        assert!(matches!(th.call(0), Ok(Called::Generic(_))));
        let specialized = per_op(ITERS, &mut |n| {
            for _ in 0..n {
                let called = th.call(black_box(0)).expect("no finalization in the bench");
                assert!(matches!(called, Called::Specialized(_)));
                black_box(called);
            }
        });
        let generic = per_op(ITERS, &mut |n| {
            for _ in 0..n {
                black_box(th.generic_call(black_box(0)));
            }
        });
        println!(
            "{call:?}: specialized {:.1} ns/call, generic {:.1} ns/call: specialized/generic {:.2}",
            ns(specialized),
            ns(generic),
            ns(specialized) / ns(generic)
        );
        th.run(&[]);
    }
    model_against_qsbr("func-version");
}

/// Stop-the-world pause latency in the reference: one requester pauses its
/// interpreter while 1, 2 or 4 other threads run an eval loop that checks
/// the eval breaker between short work items (5 threads in all: the
/// reference holds up to `cpyrt_reference::stw::MAX_THREADS`, 8; an
/// untraced runtime may hold more threads than a spec state). Before each
/// timed pause the requester waits until every worker has run two more
/// loop iterations, so each pause stops threads that are really running.
/// Ratios are against the 1-thread latency. On a machine with fewer cores
/// than running threads plus the requester, a pause also waits for the OS
/// to schedule each running thread to its next eval-breaker check, so
/// there the latency measures time slices more than the protocol; the
/// output says so when it happens.
fn stw_lines() {
    use cpyrt_reference::stw::{Config, Design, HandOff, Role, Runtime, Scope};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const PAUSES: usize = 2_000;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n== stop-the-world reference, median pause latency over {PAUSES} pauses ({cores} cores available)"
    );
    let mut first = None;
    for running in [1usize, 2, 4] {
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
        let oversubscribed = if running + 1 > cores {
            format!(
                " [{} threads on {cores} cores: oversubscribed]",
                running + 1
            )
        } else {
            String::new()
        };
        println!(
            "{running} running thread(s): {:.1} us per pause ({:.2}x the 1-thread latency){oversubscribed}",
            m.as_secs_f64() * 1e6,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
}

/// Type version tags: the reference's lookups on `B` of an attribute its
/// base `A` holds (MRO `B, A, object`), one thread: a specialized
/// `LOAD_ATTR` whose guard passes, a method-cache hit, and the lookup
/// without tags (the type lock and a walk of the MRO), each as a ratio to
/// the last; then the same with two threads at once, where the walk
/// contends for the type lock and the hits for the shared reference count.
/// The two tagged paths include the reference's coherence check (one
/// relaxed load of a ghost table), and the walk is three array reads
/// where CPython probes a dictionary per class, so the ratios understate
/// what a tag saves CPython. Then the type-version model's safety
/// throughput against QSBR's at their default threads.
fn type_version_lines() {
    use cpyrt_reference::type_version::{Config, Runtime, thread};
    use cpyrt_spec::type_version::Design as TvDesign;
    println!(
        "\n== type-version reference, one thread, {ITERS} lookups x {SAMPLES} samples (median)"
    );
    let mut spec = cpyrt_models::type_version::config(2, TvDesign::CPYTHON);
    spec.max_modifications = 1;
    let rt = Runtime::new(Config { spec, trace: false }).expect("the model's configuration");
    let mut th = thread(&rt, 0);
    const A: u8 = 1;
    const B: u8 = 2;
    th.modify(A);
    assert_eq!(th.load_attr(B), (1, false), "specializes");
    let guard = per_op(ITERS, &mut |n| {
        for _ in 0..n {
            black_box(th.load_attr(black_box(B)));
        }
    });
    assert_eq!(th.load_attr(B), (1, true), "the guard passes");
    let hit = per_op(ITERS, &mut |n| {
        for _ in 0..n {
            black_box(th.lookup(black_box(B)));
        }
    });
    let walk = per_op(ITERS, &mut |n| {
        for _ in 0..n {
            black_box(th.lookup_unversioned(black_box(B)));
        }
    });
    println!(
        "LOAD_ATTR guard passed: {:.1} ns ({:.2}x); method-cache hit: {:.1} ns ({:.2}x); lock + MRO walk, no tags: {:.1} ns (1.00x)",
        ns(guard),
        ns(guard) / ns(walk),
        ns(hit),
        ns(hit) / ns(walk),
        ns(walk)
    );
    // Two threads at once: the tagged paths share no lock, the walk
    // contends for the type lock.
    let mut other = thread(&rt, 1);
    assert_eq!(other.load_attr(B), (1, false), "specializes");
    let both = |f: &(dyn Fn(&mut cpyrt_reference::type_version::Thread) + Sync),
                a: &mut cpyrt_reference::type_version::Thread,
                b: &mut cpyrt_reference::type_version::Thread| {
        let samples: Vec<Duration> = (0..SAMPLES)
            .map(|_| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    s.spawn(|| f(a));
                    s.spawn(|| f(b));
                });
                start.elapsed()
            })
            .collect();
        median(samples) / ITERS
    };
    let guard2 = both(
        &|t| {
            for _ in 0..ITERS {
                black_box(t.load_attr(black_box(B)));
            }
        },
        &mut th,
        &mut other,
    );
    let hit2 = both(
        &|t| {
            for _ in 0..ITERS {
                black_box(t.lookup(black_box(B)));
            }
        },
        &mut th,
        &mut other,
    );
    let walk2 = both(
        &|t| {
            for _ in 0..ITERS {
                black_box(t.lookup_unversioned(black_box(B)));
            }
        },
        &mut th,
        &mut other,
    );
    println!(
        "two threads at once, per lookup pair: guard {:.1} ns ({:.2}x); hit {:.1} ns ({:.2}x); lock + walk {:.1} ns (1.00x)",
        ns(guard2),
        ns(guard2) / ns(walk2),
        ns(hit2),
        ns(hit2) / ns(walk2),
        ns(walk2)
    );
    model_against_qsbr("type-version");
}

/// Seconds each side of the GIL-against-CPython comparison runs.
#[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
const GIL_SECONDS: f64 = 3.0;

/// The GIL: the reference against `python3` on the same hand-off workload
/// (switches per second, wake-up latency, as ratios; skipped with a line
/// saying so when `python3` is missing), then the GIL model's safety
/// throughput at its default configuration against QSBR's, measured in the
/// same run.
#[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
fn gil_lines() {
    print!("\n== ");
    cpyrt_reference::gil::bench::compare_with_cpython(GIL_SECONDS);
    model_against_qsbr("gil");
}

/// A model's safety throughput (unique states per second, base design, its
/// default threads) against QSBR's at [`MODEL_THREADS`], measured in the same run. Each model is
/// checked `RUNS` times and its median time kept: one run lasts a fraction
/// of a second, which a busy machine easily doubles.
fn model_against_qsbr(name: &str) {
    use cpyrt_models::registry::{DEFAULT_BOUNDS, find};
    use cpyrt_models::run::RunOptions;
    const RUNS: usize = 5;
    println!("\n== {name} model against QSBR's, base design, default threads, safety only");
    let opts = RunOptions {
        skip_liveness: true,
        ..RunOptions::default()
    };
    let mut rates = Vec::new();
    for model in ["qsbr", name] {
        let mech = find(model).expect("a registered model");
        // QSBR at MODEL_THREADS, the `model` section's baseline: its
        // default two-thread space (under 7,000 states) checks too fast
        // for a stable rate.
        let threads = if model == "qsbr" {
            MODEL_THREADS
        } else {
            mech.default_threads()
        };
        let mut secs = Vec::new();
        let mut states = 0;
        for _ in 0..RUNS {
            match mech.check("base", threads, DEFAULT_BOUNDS, &opts, &mut |_| {}) {
                Ok(r) => {
                    states = r.unique_states;
                    secs.push(Duration::from_secs_f64(r.seconds.max(1e-9)));
                }
                Err(e) => println!("{model:<14} {threads} threads: {e}"),
            }
        }
        if secs.is_empty() {
            continue;
        }
        let m = median(secs).as_secs_f64();
        let rate = states as f64 / m;
        println!(
            "{model:<14} {threads} threads: {states:>9} unique states in {m:>6.3}s (median of {RUNS}), {rate:>9.0} states/s"
        );
        rates.push(rate);
    }
    if let [q, t] = rates[..] {
        println!("{name} model throughput: {:.2}x qsbr's rate", t / q);
    }
}

/// Fork: the fork model's safety throughput against QSBR's
/// ([`model_against_qsbr`]), and the child's after-fork work in the reference (from
/// `fork()`'s return in the child to the world restarted and the import
/// lock released, timed in the child and sent back through a pipe) with
/// 1, 4 and 16 worker threads running an eval loop at the fork, as ratios
/// against the 1-worker time. The reference has no thread cap (a runtime
/// hands out 64-bit tokens; only traced runs are bounded by the spec's
/// thread count).
#[cfg(all(unix, not(any(cpyrt_loom, cpyrt_shuttle))))]
fn fork_lines() {
    use cpyrt_reference::fork::{Channel, Forked, Runtime, ThreadHandle, exit_child, wait_child};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    model_against_qsbr("fork");
    const FORKS: usize = 15;
    println!(
        "\n== fork reference, the child's after-fork handler, median of {FORKS} forks per setting"
    );
    let mut first = None;
    for workers in [1usize, 4, 16] {
        let mut times = Vec::with_capacity(FORKS);
        for _ in 0..FORKS {
            let main = Runtime::start();
            let stop = Arc::new(AtomicBool::new(false));
            let laps: Arc<Vec<AtomicU64>> =
                Arc::new((0..workers).map(|_| AtomicU64::new(0)).collect());
            let handles: Vec<ThreadHandle> = (0..workers)
                .map(|w| {
                    let h = ThreadHandle::new(&main);
                    let (stop, laps) = (Arc::clone(&stop), Arc::clone(&laps));
                    h.start(&main, move |ctx| {
                        let mut x = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            for i in 0..64 {
                                x = black_box(x.wrapping_mul(31).wrapping_add(i));
                            }
                            ctx.eval_breaker();
                            laps[w].fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .expect("a new handle starts");
                    h
                })
                .collect();
            // Every worker is running its loop when the fork comes.
            while laps.iter().any(|l| l.load(Ordering::Relaxed) < 2) {
                main.eval_breaker();
                std::thread::yield_now();
            }
            let channel = Channel::new().expect("pipe");
            match main.rt.fork(&main).expect("fork") {
                Forked::Child(repairs) => {
                    channel.send(&(repairs.handler_time.as_nanos() as u64).to_le_bytes());
                    exit_child(0);
                }
                Forked::Parent { pid } => {
                    let msg = channel.receive();
                    let code = wait_child(pid, Duration::from_secs(30)).expect("the child exits");
                    assert_eq!(code, 0, "child exit status");
                    let ns = u64::from_le_bytes(msg.try_into().expect("8 bytes from the child"));
                    times.push(Duration::from_nanos(ns));
                }
            }
            stop.store(true, Ordering::Relaxed);
            for h in &handles {
                h.join(&main).expect("worker joins");
            }
        }
        let m = median(times);
        let base = *first.get_or_insert(m);
        println!(
            "{workers:>2} running worker(s): {:.1} us in the child's handler ({:.2}x the 1-worker time)",
            m.as_secs_f64() * 1e6,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
}

/// The sections `cargo xtask bench` runs; one of them alone when named.
const SECTIONS: &[&str] = &[
    "model",
    "reference",
    "models",
    "stw",
    "func-version",
    "type-version",
    "gil",
    "fork",
];

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
    if only.is_none_or(|o| o == "type-version") {
        type_version_lines();
    }
    #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
    if only.is_none_or(|o| o == "gil") {
        gil_lines();
    }
    #[cfg(all(unix, not(any(cpyrt_loom, cpyrt_shuttle))))]
    if only.is_none_or(|o| o == "fork") {
        fork_lines();
    }
    if only.is_none_or(|o| o == "func-version") {
        func_version_lines();
    }
}
