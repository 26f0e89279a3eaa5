//! Stop-the-world coverage by the step-gated guided explorer (std): the
//! reference's threads are scheduled one spec step at a time through every
//! interleaving the search reaches (`conformance/src/stw_guided.rs`); every
//! recorded event is accepted by the spec with every invariant holding, and
//! every visited state is one the model reaches.
//!
//! # Coverage (measured)
//! | configuration | bound | model states | reached | share | debug time |
//! |---|---|--:|--:|--:|--:|
//! | 2 threads, 1 interpreter | none (22,829 nodes, 354,908 actions) | 8,860 | 7,537 | 85.1 % | 35 to 175 s |
//! | 2 threads, 1 interpreter | 50,000 actions ([`ACTIONS_ONE`]) | 8,860 | 3,888 | 43.9 % | about 3 to 9 s |
//! | 3 threads, 2 interpreters | 60,000 actions ([`ACTIONS_TWO`]) | 95,986 | 6,370 | 6.6 % | about 10 s, and 6 s for the model |
//!
//! The times are wall-clock on a loaded 2-core machine: the explorer
//! waits for the OS to schedule each stepping thread, so its time is
//! mostly hand-offs between threads, not computation (the whole search
//! used 12 s of CPU in 35 to 175 s). The bounded searches are
//! deterministic: the same bound reaches the same states.
//!
//! The random real-thread runs of `conformance/tests/stw.rs` reach 178 and
//! 188 of these states.
//!
//! # What is missed, and why
//! At 2 threads and 1 interpreter the whole search is run by the ignored
//! test `whole_search_misses_only_states_behind_unhanded_wakes`: every
//! missed state that a reached state leads to is entered by an unlock that
//! wakes a waiter *without* handing it the lock (`Wake { handed: false }`:
//! an `EndCs`, a detach in `Syscall` or `HandlePending`, a `StwUnlock`);
//! 90 states are entered so, and the other 1,233 lie behind them. The runs
//! use `HandOff::ALWAYS`, under which the reference hands the lock to every
//! waiter it wakes (CPython does so once the waiter has waited 1 ms). With
//! three threads, the spec also lets an unlock wake any parked waiter,
//! while the reference's parking lot wakes the oldest: states that need a
//! younger waiter woken first are out of reach too. The bounded searches
//! miss, besides, what lies beyond the action bound.
//!
//! What made the difference to the random runs: the reference's eval loop
//! checks the eval breaker before every instruction, but the explorer also
//! issues operations without that check while PLEASE_STOP is set (code
//! between two checks, as CPython runs between its eval-breaker points),
//! which the spec allows; without them the whole search reaches 6,443
//! states (72.7 %).
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

use std::collections::{HashMap, HashSet, VecDeque};

use cpyrt_conformance::coverage::compare;
use cpyrt_conformance::stw_guided::{Explored, Explorer};
use cpyrt_reference::stw::HandOff;
use cpyrt_spec::Spec;
use cpyrt_spec::stw::{Config as SpecConfig, Design, Event, State, Stop};

/// Action bound of the one-interpreter search in the test pass.
const ACTIONS_ONE: usize = 50_000;
/// Model states that search reached when this bound was set.
/// (3,888 of 8,860: 43.9 %).
const MIN_ONE: usize = 3_850;
/// Action bound of the two-interpreter, three-thread search.
const ACTIONS_TWO: usize = 60_000;
/// Model states that search reached when this bound was set.
/// (6,370 of 95,986: 6.6 %).
const MIN_TWO: usize = 6_300;

/// Every state the spec reaches under `cfg` (breadth-first).
fn reachable(cfg: &SpecConfig) -> HashSet<State> {
    let init = Stop::init(cfg);
    let mut seen = HashSet::from([init.clone()]);
    let mut queue = VecDeque::from([init]);
    let mut events = Vec::new();
    while let Some(s) = queue.pop_front() {
        events.clear();
        Stop::enabled(cfg, &s, &mut events);
        for e in &events {
            let n = Stop::step(cfg, &s, e).expect("enabled events are accepted");
            if seen.insert(n.clone()) {
                queue.push_back(n);
            }
        }
    }
    seen
}

/// Explores the reference under the model's configuration and checks the
/// visited states against the model's; returns the search and the number
/// of model states reached.
fn explore(threads: usize, interps: u8, max_actions: usize) -> (Explored, HashSet<State>, usize) {
    let cfg = cpyrt_models::stw::config(threads, interps, Design::CPYTHON);
    let t0 = std::time::Instant::now();
    let model = reachable(&cfg);
    let t1 = std::time::Instant::now();
    let found = Explorer::new(&cfg, HandOff::ALWAYS).explore(max_actions);
    let cov = compare(&model, &found.visited);
    println!(
        "{threads} threads, {interps} interpreters: {} of {} model states ({:.1} %), {} nodes, {} runs, {} actions, {} steps, whole search: {}, {:.1?} (model: {:.1?})",
        cov.reached,
        cov.model,
        100.0 * cov.fraction(),
        found.nodes,
        found.runs,
        found.actions,
        found.steps,
        found.complete,
        t1.elapsed(),
        t1 - t0
    );
    assert!(
        cov.outside.is_empty(),
        "{} reference states the model lacks, e.g. {:?}",
        cov.outside.len(),
        cov.outside[0]
    );
    (found, model, cov.reached)
}

#[test]
fn guided_exploration_reaches_the_models_states() {
    let (_, _, one) = explore(2, 1, ACTIONS_ONE);
    let (_, _, two) = explore(3, 2, ACTIONS_TWO);
    assert!(
        one >= MIN_ONE,
        "one-interpreter coverage fell to {one} (bound {MIN_ONE})"
    );
    assert!(
        two >= MIN_TWO,
        "two-interpreter coverage fell to {two} (bound {MIN_TWO})"
    );
}

#[test]
#[ignore = "the whole search: 35 s or more in a debug build"]
fn whole_search_misses_only_states_behind_unhanded_wakes() {
    let (found, model, _) = explore(2, 1, usize::MAX);
    assert!(found.complete);
    let cfg = cpyrt_models::stw::config(2, 1, Design::CPYTHON);
    // Every event of the model from a reached state into a missed one.
    let mut into_missed: HashMap<&State, Vec<Event>> = HashMap::new();
    let mut events = Vec::new();
    for s in found.visited.iter().filter(|s| model.contains(*s)) {
        events.clear();
        Stop::enabled(&cfg, s, &mut events);
        for e in &events {
            let next = Stop::step(&cfg, s, e).expect("enabled events are accepted");
            if let Some(n) = model.get(&next)
                && !found.visited.contains(n)
            {
                into_missed.entry(n).or_default().push(*e);
            }
        }
    }
    let unhanded = |e: &Event| format!("{e:?}").contains("handed: false");
    for (s, es) in &into_missed {
        assert!(
            es.iter().all(unhanded),
            "a missed state is entered by {es:?}, not only by unhanded wakes: {s:?}"
        );
    }
    // The rest are deeper: unreached from the reached states in one step.
    let mut deeper = 0;
    let mut queue: VecDeque<&State> = into_missed.keys().copied().collect();
    let mut seen: HashSet<&State> = queue.iter().copied().collect();
    while let Some(s) = queue.pop_front() {
        events.clear();
        Stop::enabled(&cfg, s, &mut events);
        for e in &events {
            let next = Stop::step(&cfg, s, e).unwrap();
            if let Some(n) = model.get(&next)
                && !found.visited.contains(n)
                && seen.insert(n)
            {
                deeper += 1;
                queue.push_back(n);
            }
        }
    }
    println!(
        "missed: {} entered from reached states by unhanded wakes, {deeper} behind them",
        into_missed.len()
    );
    assert_eq!(
        into_missed.len() + deeper,
        model.len() - found.visited.iter().filter(|s| model.contains(*s)).count(),
        "missed states that no unhanded wake leads to"
    );
}

#[test]
#[should_panic(expected = "countdown")]
fn a_broken_design_is_caught() {
    // Paused threads stored DETACHED: the reference's countdown check (or
    // the spec's invariant on the replayed step) fails within the bound.
    let cfg = cpyrt_models::stw::config(
        2,
        1,
        Design {
            park_to_suspended: false,
            ..Design::CPYTHON
        },
    );
    Explorer::new(&cfg, HandOff::ALWAYS).explore(ACTIONS_ONE);
}
