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

/// Real-thread runs per fixed workload.
const RUNS: usize = 300;
/// Generated workloads, and real-thread runs of each.
const GENERATED: usize = 500;
const GENERATED_RUNS: usize = 8;
/// The floor pinned under the states the runs visit. Measured on the
/// project's 2-core machine (loaded): 939 to 1,134 of 7,756 in five runs
/// (12.1 to 14.6%; 18.1 to 21.9% of the 5,180 the model reaches without
/// freeing code, which the reference never does). Before the start
/// barrier and skew, 500 generated workloads reached about 450 and the
/// three fixed ones alone 98. Real-thread schedules vary with the machine:
/// a clean clone on an idle 2-core machine visited 698, where threads run
/// in parallel and interleave less than on a loaded one. The floor guards
/// against a collapse (the fixed workloads' 98), not against that spread,
/// so it sits well below the lowest run seen.
const MIN_COVERED: usize = 450;

fn config(design: Design) -> Config {
    Config {
        threads: 2,
        last_version: 3,
        cache_size: 0,
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
        max_functions: 1,
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

/// Runs `a` on thread 0 and `b` on thread 1, released together from a
/// barrier, thread 1 after `skew` spin iterations (so that each thread
/// gets ahead in some runs: without it, thread 0 finishes short programs
/// before thread 1 has started).
fn run(cfg: &Config, a: Vec<Op>, b: Vec<Op>, skew: u32) -> Vec<Event> {
    let rt = Runtime::new(cfg.clone());
    let t1 = handle(&rt, 1);
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let go = std::sync::Arc::clone(&start);
    let h = thread::spawn(move || {
        go.wait();
        for i in 0..skew {
            std::hint::black_box(i);
        }
        t1.run(&b)
    });
    let t0 = handle(&rt, 0);
    start.wait();
    assert_eq!(t0.run(&a), None);
    assert_eq!(h.join().unwrap(), None);
    rt.trace()
}

/// A small deterministic generator (SplitMix64), so the workloads are the
/// same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Two programs within the bounds of [`bounded`]: at most one new code
/// object and two writes in all, calls and blocking calls anywhere.
fn workload(rng: &mut Rng) -> (Vec<Op>, Vec<Op>) {
    use Op::*;
    let mut writes = 0;
    let mut set_code = false;
    let mut program = |rng: &mut Rng| {
        let len = 2 + rng.below(4);
        (0..len)
            .map(|_| match rng.below(7) {
                0 if writes < 2 && !set_code => {
                    writes += 1;
                    set_code = true;
                    SetCode(0)
                }
                1 if writes < 2 => {
                    writes += 1;
                    Set(0, Attr::Defaults)
                }
                2 => Syscall,
                _ => Call(0),
            })
            .collect::<Vec<Op>>()
    };
    let a = program(rng);
    let b = program(rng);
    (a, b)
}

/// Every state the spec reaches under `cfg` without freeing a code object
/// (the reference never frees one).
fn reachable_without_free(cfg: &SpecConfig) -> HashSet<State> {
    let init = FuncVersion::init(cfg);
    let mut seen = HashSet::from([init.clone()]);
    let mut queue = VecDeque::from([init]);
    let mut events = Vec::new();
    while let Some(s) = queue.pop_front() {
        events.clear();
        FuncVersion::enabled(cfg, &s, &mut events);
        for e in events.iter().filter(|e| e.kind() != "FreeCode") {
            let n = FuncVersion::step(cfg, &s, e).expect("enabled events are accepted");
            if seen.insert(n.clone()) {
                queue.push_back(n);
            }
        }
    }
    seen
}

#[test]
fn reference_states_are_model_states() {
    use Op::*;
    let cfg = config(Design::CPYTHON);
    let spec = bounded(&cfg);
    let model = reachable(&spec);
    let shaped = reachable_without_free(&spec);
    let fixed: [(&[Op], &[Op]); 3] = [
        (&[Call(0), Call(0), Call(0)], &[SetCode(0)]),
        (
            &[Call(0), Call(0), Syscall, Call(0)],
            &[Call(0), SetCode(0), Call(0)],
        ),
        (
            &[Call(0), Set(0, Attr::Defaults), Call(0)],
            &[Call(0), Call(0), SetCode(0)],
        ),
    ];
    let mut workloads: Vec<(Vec<Op>, Vec<Op>, usize)> = fixed
        .iter()
        .map(|(a, b)| (a.to_vec(), b.to_vec(), RUNS))
        .collect();
    let mut rng = Rng(0x00c0_ffee);
    for _ in 0..GENERATED {
        let (a, b) = workload(&mut rng);
        workloads.push((a, b, GENERATED_RUNS));
    }
    let mut covered = HashSet::new();
    for (a, b, runs) in workloads {
        for k in 0..runs {
            let skew = [0, 30, 300, 3_000, 30_000][k % 5];
            let trace = run(&cfg, a.clone(), b.clone(), skew);
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
    let of = |n: usize| 100.0 * covered.len() as f64 / n as f64;
    eprintln!(
        "func-version: the reference visited {} of the model's {} states ({:.1}%), \
         {:.1}% of the {} reached without freeing code",
        covered.len(),
        model.len(),
        of(model.len()),
        of(shaped.len()),
        shaped.len()
    );
    // The runs are not one interleaving repeated: a pause, a suspension or
    // detach, and a failed guard all occur.
    assert!(covered.iter().any(|s| s.requester.is_some()));
    assert!(
        covered
            .iter()
            .any(|s| s.funcs[0].version == cpyrt_spec::func_version::CLEARED)
    );
    assert!(
        covered.len() >= MIN_COVERED,
        "only {} states covered, the floor is {MIN_COVERED}",
        covered.len()
    );
}
