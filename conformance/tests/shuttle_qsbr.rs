//! QSBR conformance under shuttle: random and PCT schedules of the
//! workload; every trace replays through the spec, and the states the
//! traces visit are compared with the model's reachable set.
#![cfg(cpyrt_shuttle)]

use std::collections::HashSet;
use std::sync::Mutex as StdMutex;

use cpyrt_conformance::Choose;
use cpyrt_conformance::coverage::{compare, model_states};
use cpyrt_conformance::qsbr::{Run, thread_program};
use cpyrt_reference::primitive::sync::Arc;
use cpyrt_reference::primitive::thread;
use cpyrt_spec::qsbr::{Config, Design, Event, Qsbr, State};
use cpyrt_spec::replay;
use shuttle::rand::{Rng, thread_rng};

/// Choices from shuttle's generator: deterministic per schedule, so a
/// failing schedule replays with its choices.
struct ShuttleRng;

impl Choose for ShuttleRng {
    fn below(&mut self, n: usize) -> usize {
        thread_rng().gen_range(0..n)
    }
}

/// Operations per thread: long enough for two retirements, an exit and the
/// frees between them, short enough for thousands of schedules a second.
const BUDGET: usize = 24;
/// Schedules per strategy (random, PCT) in the coverage run.
const COVERAGE_SCHEDULES: usize = 60_000;
/// Schedules per strategy for the 3-thread acceptance run.
const SCHEDULES: usize = 1_000;
/// PCT depth: bugs needing up to this many ordering constraints are found
/// with probability bounded below.
const PCT_DEPTH: usize = 3;

fn config(threads: usize) -> Config {
    cpyrt_models::qsbr::config(threads, Design::CPYTHON)
}

/// What the coverage run collects: states visited before any step the
/// model's bounds exclude, and states visited after one.
#[derive(Default)]
struct Reached {
    strict: HashSet<State>,
    /// After an advance nobody waited for. The workload decides to advance
    /// from a racy look at the goals, where the model's guard is atomic, so
    /// two threads may both advance for one goal; the states after that lie
    /// beyond the model's bound and are not held against the reference.
    beyond: HashSet<State>,
}

/// Index of the first GC advance taken while no queued goal was ahead of
/// `wr_seq` (the model offers `Advance` only when one is), if any.
fn first_unneeded_advance(trace: &[Event], states: &[State]) -> Option<usize> {
    trace.iter().zip(states).position(|(e, s)| {
        matches!(e, Event::Advance { .. }) && !s.pending().any(|i| i.goal > s.wr_seq)
    })
}

fn run_once(cfg: &Config, sink: Option<&StdMutex<Reached>>) {
    let run = Arc::new(Run::new(cfg));
    let handles: Vec<_> = (0..cfg.threads as u8)
        .map(|t| {
            let run = Arc::clone(&run);
            thread::spawn(move || thread_program(&run, t, BUDGET, &mut ShuttleRng))
        })
        .collect();
    for h in handles {
        h.join().expect("workload thread panicked");
    }
    let trace = run.trace();
    let states = replay::<Qsbr>(cfg, &trace)
        .unwrap_or_else(|e| panic!("the spec rejects a reference trace: {e}\ntrace: {trace:?}"));
    if let Some(sink) = sink {
        let cut = first_unneeded_advance(&trace, &states).map_or(states.len(), |i| i + 1);
        let mut sink = sink.lock().unwrap();
        sink.strict.extend(states[..cut].iter().cloned());
        sink.beyond.extend(states[cut..].iter().cloned());
    }
}

#[test]
fn three_thread_traces_are_spec_traces() {
    let cfg = config(3);
    shuttle::check_random(move || run_once(&cfg, None), SCHEDULES);
    let cfg = config(3);
    shuttle::check_pct(move || run_once(&cfg, None), SCHEDULES, PCT_DEPTH);
}

#[test]
fn reference_reaches_the_models_states() {
    let cfg = config(2);
    let model = model_states::<Qsbr>(&cfg, 1_000_000).expect("model graph");
    let sink: &'static StdMutex<Reached> = Box::leak(Box::new(StdMutex::new(Reached::default())));
    let c = cfg.clone();
    shuttle::check_random(move || run_once(&c, Some(sink)), COVERAGE_SCHEDULES);
    let c = cfg.clone();
    shuttle::check_pct(
        move || run_once(&c, Some(sink)),
        COVERAGE_SCHEDULES,
        PCT_DEPTH,
    );
    let (strict, beyond) = {
        let r = sink.lock().unwrap();
        (r.strict.clone(), r.beyond.clone())
    };
    let reached: HashSet<State> = strict.union(&beyond).cloned().collect();
    let cov = compare(&model, &reached);
    // For the union with the guided explorer (conformance/tests/qsbr_guided.rs):
    // the reached model states, one `Debug` line each.
    if let Some(path) = std::env::var_os("CPYRT_QSBR_SHUTTLE_STATES") {
        let mut lines: Vec<String> = reached
            .intersection(&model)
            .map(|s| format!("{s:?}"))
            .collect();
        lines.sort();
        std::fs::write(&path, lines.join("\n") + "\n").expect("write the reached states");
    }
    println!(
        "qsbr coverage (2 threads): {} of {} model states reached ({:.1}%), {} reference states outside the model",
        cov.reached,
        cov.model,
        100.0 * cov.fraction(),
        cov.outside.len()
    );
    for s in cov.missed.iter().take(5) {
        println!("missed: {s:?}");
    }
    // Before any advance the model would not take, the reference must stay
    // inside the model's reachable set.
    let strict_cov = compare(&model, &strict);
    println!(
        "{} states after an unneeded advance ({} of them outside the model)",
        beyond.len(),
        beyond.difference(&model).count()
    );
    assert!(
        strict_cov.outside.is_empty(),
        "{} reference states the model lacks, e.g. {:?}",
        strict_cov.outside.len(),
        strict_cov.outside.first()
    );
    assert!(
        cov.fraction() > 0.75,
        "coverage fell to {:.1}%",
        100.0 * cov.fraction()
    );
}
