//! Function-version conformance on std: real-thread runs of the reference
//! whose traces the spec accepts, and whose visited states all lie in the
//! spec's reachable state space under the same bounds (the reference does
//! nothing the model does not), with the fraction of that space the runs
//! cover printed.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

use std::collections::{HashSet, VecDeque};

use cpyrt_reference::func_version::{Config, Op, Runtime, thread as handle};
use cpyrt_reference::primitive::thread;
use cpyrt_spec::func_version::{
    Attr, CallKind, Config as SpecConfig, Design, Event, FuncVersion, State,
};
use cpyrt_spec::{Spec, replay};

/// Real-thread runs per workload.
const RUNS: usize = 300;

fn config(design: Design) -> Config {
    Config {
        threads: 2,
        last_version: 3,
        call: CallKind::ExactArgs,
        design,
        trace: true,
    }
}

/// The reference's spec configuration, bounded to what the workloads do:
/// one new code object and at most two writes.
fn bounded(cfg: &Config) -> SpecConfig {
    SpecConfig {
        max_codes: 2,
        max_writes: 2,
        writable: vec![Attr::Code, Attr::Defaults],
        ..cfg.spec()
    }
}

/// Every state the spec reaches under `cfg` (breadth-first).
fn reachable(cfg: &SpecConfig) -> HashSet<State> {
    let init = FuncVersion::init(cfg);
    let mut seen = HashSet::from([init.clone()]);
    let mut queue = VecDeque::from([init]);
    let mut events = Vec::new();
    while let Some(s) = queue.pop_front() {
        events.clear();
        FuncVersion::enabled(cfg, &s, &mut events);
        for e in &events {
            let n = FuncVersion::step(cfg, &s, e).expect("enabled events are accepted");
            if seen.insert(n.clone()) {
                queue.push_back(n);
            }
        }
    }
    seen
}

fn run(cfg: &Config, a: &'static [Op], b: &'static [Op]) -> Vec<Event> {
    let rt = Runtime::new(cfg.clone());
    let mut t1 = handle(&rt, 1);
    let h = thread::spawn(move || t1.run(b));
    handle(&rt, 0).run(a);
    h.join().unwrap();
    rt.trace()
}

#[test]
fn reference_states_are_model_states() {
    use Op::*;
    let cfg = config(Design::CPYTHON);
    let spec = bounded(&cfg);
    let model = reachable(&spec);
    let workloads: [(&[Op], &[Op]); 3] = [
        (&[Call, Call, Call], &[SetCode]),
        (&[Call, Call, Detach, Attach, Call], &[Call, SetCode, Call]),
        (&[Call, Set(Attr::Defaults), Call], &[Call, Call, SetCode]),
    ];
    let mut covered = HashSet::new();
    for (a, b) in workloads {
        for _ in 0..RUNS {
            let trace = run(&cfg, a, b);
            let states = replay::<FuncVersion>(&spec, &trace)
                .unwrap_or_else(|e| panic!("the spec rejects a reference trace: {e}\n{trace:?}"));
            for s in states {
                assert!(
                    model.contains(&s),
                    "a reference state the model never reaches: {s:?}"
                );
                covered.insert(s);
            }
        }
    }
    eprintln!(
        "func-version: the reference visited {} of the model's {} states",
        covered.len(),
        model.len()
    );
    // The runs are not one interleaving repeated: a pause, a suspension or
    // detach, and a failed guard all occur.
    assert!(covered.iter().any(|s| s.requester.is_some()));
    assert!(
        covered
            .iter()
            .any(|s| s.funcs[0].version == cpyrt_spec::func_version::CLEARED)
    );
    assert!(covered.len() > 30, "only {} states covered", covered.len());
}
