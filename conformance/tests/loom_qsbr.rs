//! QSBR conformance under loom: fixed two-thread programs, every schedule
//! within the preemption bound; every trace replays through the spec.
#![cfg(cpyrt_loom)]

use std::collections::HashSet;
use std::sync::Mutex as StdMutex;

use cpyrt_conformance::qsbr::{Op, Run, scripted};
use cpyrt_reference::primitive::sync::Arc;
use cpyrt_reference::primitive::thread;
use cpyrt_spec::qsbr::{Config, Design, Qsbr, State};
use cpyrt_spec::replay;

/// Preemptions loom may place in one execution. 2 finds the bugs of the
/// reference's twins (see reference/tests/loom_qsbr.rs) and keeps each
/// scenario to seconds in release mode.
const PREEMPTION_BOUND: usize = 2;

fn config() -> Config {
    cpyrt_models::qsbr::config(2, Design::CPYTHON)
}

fn explore(name: &'static str, a: &'static [Op], b: &'static [Op]) -> usize {
    let seen: &'static StdMutex<HashSet<State>> =
        Box::leak(Box::new(StdMutex::new(HashSet::new())));
    let runs: &'static StdMutex<usize> = Box::leak(Box::new(StdMutex::new(0)));
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(PREEMPTION_BOUND);
    builder.check(move || {
        let cfg = config();
        let run = Arc::new(Run::new(&cfg));
        let r = Arc::clone(&run);
        let t = thread::spawn(move || scripted(&r, 1, b));
        scripted(&run, 0, a);
        t.join().unwrap();
        let trace = run.trace();
        let states = replay::<Qsbr>(&cfg, &trace).unwrap_or_else(|e| {
            panic!("{name}: the spec rejects a reference trace: {e}\n{trace:?}")
        });
        seen.lock().unwrap().extend(states);
        *runs.lock().unwrap() += 1;
    });
    let runs = *runs.lock().unwrap();
    let states = seen.lock().unwrap().len();
    println!("{name}: {runs} executions, {states} distinct spec states");
    assert!(runs > 1, "{name}: loom explored a single execution");
    states
}

#[test]
fn reader_against_writer() {
    use Op::*;
    explore(
        "reader/writer",
        &[Attach, Read, Quiescent, Detach],
        &[Attach, Replace, Poll, Process],
    );
}

#[test]
fn two_writers_and_exit() {
    use Op::*;
    explore(
        "writers",
        &[Attach, Replace, Process],
        &[Attach, Replace, Advance, Process],
    );
}

#[test]
fn registration_against_exit() {
    use Op::*;
    // Thread 1's registration grows the slot array (minimum size 1) while
    // thread 0 may be exiting: the gh-115103 shape, in the shipped design.
    explore("grow/exit", &[Attach, Detach], &[Attach, Detach]);
}
