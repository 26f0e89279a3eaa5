//! Stop-the-world conformance on std: real-thread runs of the reference,
//! under the roles and bounds of the model's own configurations, whose
//! traces the spec accepts and whose every visited state is a state the
//! model reaches (the reference does nothing the model does not), with the
//! fraction of the model's states the runs cover printed; and the model's
//! shortest counterexamples replayed by the same spec the reference is
//! checked against. These runs leave the interleaving to the OS and reach
//! few of the model's states (178 of 8,860 and 188 of 95,986); the
//! step-gated explorer of `conformance/tests/stw_guided.rs` schedules the
//! same reference one step at a time and reaches many more.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

use std::collections::{HashSet, VecDeque};

use cpyrt_reference::eval;
use cpyrt_reference::primitive::sync::Arc;
use cpyrt_reference::primitive::thread;
use cpyrt_reference::stw::{Config, HandOff, Op, Runtime, Scope};
use cpyrt_spec::stw::{Config as SpecConfig, Design, State, Stop};
use cpyrt_spec::{Spec, replay};

/// Real-thread runs per workload.
const RUNS: usize = 300;

const I0: Scope = Scope::Interp(0);
const I1: Scope = Scope::Interp(1);
const G: Scope = Scope::Global;

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

/// Runs one program per thread of the model's configuration `spec`.
fn run(spec: &SpecConfig, programs: &[&'static [Op]]) -> Vec<cpyrt_spec::stw::Event> {
    let rt = Runtime::new(Config {
        interps: spec.interps,
        roles: spec.roles.clone(),
        design: spec.design,
        hand_off: HandOff::ALWAYS,
        trace: true,
    });
    let handles: Vec<_> = programs
        .iter()
        .enumerate()
        .map(|(t, &ops)| {
            let rt = Arc::clone(&rt);
            thread::spawn(move || {
                let tid = t as u8;
                let mut th = if rt.config().roles[t].starts_bound {
                    Runtime::bound(&rt, tid)
                } else {
                    match Runtime::create(&rt, tid) {
                        Ok(th) => th,
                        Err(_) => return,
                    }
                };
                eval::run(&mut th, ops);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    rt.take_trace()
}

/// Checks that every run's trace replays under the model's configuration
/// and stays inside the model's reachable states; returns the share of
/// those states the runs visited.
fn conforms(threads: usize, interps: u8, workloads: &[&[&'static [Op]]]) -> f64 {
    let spec = cpyrt_models::stw::config(threads, interps, Design::CPYTHON);
    let model = reachable(&spec);
    let mut covered = HashSet::new();
    for programs in workloads {
        for _ in 0..RUNS {
            let events = run(&spec, programs);
            let states = replay::<Stop>(&spec, &events)
                .unwrap_or_else(|e| panic!("{e}\ntrace: {events:#?}"));
            for s in states {
                assert!(
                    model.contains(&s),
                    "the reference reached a state the model does not: {s:#?}"
                );
                covered.insert(s);
            }
        }
    }
    let share = covered.len() as f64 / model.len() as f64;
    eprintln!(
        "{threads} threads, {interps} interpreters: runs visited {} of the model's {} states ({:.1} %)",
        covered.len(),
        model.len(),
        100.0 * share
    );
    share
}

#[test]
fn one_interpreter_runs_are_model_runs() {
    use Op::*;
    // Thread 0 may pause and finalizes last; thread 1 pauses its
    // interpreter and exits (the model's roles at two threads).
    let share = conforms(
        2,
        1,
        &[
            &[
                &[
                    Begin,
                    Pause {
                        scope: I0,
                        cs: true,
                    },
                    End,
                    Syscall,
                    Finalize,
                ],
                &[
                    Begin,
                    End,
                    Syscall,
                    Pause {
                        scope: I0,
                        cs: false,
                    },
                    Begin,
                    End,
                    Exit,
                ],
            ],
            &[
                &[
                    Pause {
                        scope: G,
                        cs: false,
                    },
                    Begin,
                    Check,
                    End,
                    Finalize,
                ],
                &[Begin, Check, End, Syscall, Exit],
            ],
        ],
    );
    assert!(share > 0.0);
}

#[test]
fn two_interpreter_runs_are_model_runs() {
    use Op::*;
    // Thread 0 alone in interpreter 0 pauses globally and never exits (no
    // pause of interpreter 1 waits for it); threads 1 and 2 run in
    // interpreter 1, thread 2 created at any moment.
    let share = conforms(
        3,
        2,
        &[&[
            &[
                Begin,
                Pause {
                    scope: G,
                    cs: false,
                },
                End,
                Syscall,
                Begin,
                End,
            ],
            &[
                Begin,
                Pause {
                    scope: I1,
                    cs: true,
                },
                End,
                Syscall,
                Exit,
            ],
            &[Begin, End, Syscall, Check, Exit],
        ]],
    );
    assert!(share > 0.0);
}

#[test]
fn model_counterexamples_are_spec_traces_the_shipped_design_refuses() {
    // Each deadlocking twin's shortest counterexample, as `cpyrt check`
    // prints it, replays through the spec under the twin's configuration
    // and breaks its property exactly at its last step; under the shipped
    // design the same events are refused, or (where the twin differs only
    // in what a step computes, as the countdown of delete-keeps-countdown)
    // accepted with every invariant holding.
    use cpyrt_models::registry::{Token, check, find};
    use cpyrt_models::run::follow;
    use cpyrt_models::{SpecModel, stw::VARIANTS};
    let mech = find("stw").unwrap();
    for variant in ["cs-lock-in-pause", "delete-keeps-countdown", "no-rw-mutex"] {
        let report = check(
            mech,
            variant,
            2,
            "default",
            &Default::default(),
            &mut |_| {},
        )
        .unwrap();
        let cx = report
            .counterexamples
            .iter()
            .find(|c| c.property == "no_deadlock")
            .unwrap_or_else(|| panic!("{variant}: no deadlock counterexample"));
        let token = Token::parse(&cx.token).unwrap();
        let cfg = (VARIANTS.iter().find(|v| v.name == variant).unwrap().config)(2);
        let model = SpecModel::<Stop>::new(cfg.clone());
        let (_, events) = follow(&model, &token.steps).unwrap();
        let err = replay::<Stop>(&cfg, &events).unwrap_err();
        assert!(
            matches!(err, cpyrt_spec::TraceError::Invariant { index, name }
                if index + 1 == events.len() && (name == "no_deadlock" || name == "pauses_never_overlap" || name == "countdown_matches_threads_to_park")),
            "{variant}: {err}"
        );
        let shipped = SpecConfig {
            design: Design::CPYTHON,
            ..cfg
        };
        match replay::<Stop>(&shipped, &events) {
            Err(cpyrt_spec::TraceError::Rejected { .. }) => {}
            Ok(states) => {
                let last = states.last().unwrap();
                assert_eq!(cpyrt_spec::stw::deadlocked(last), 0, "{variant}");
            }
            Err(e) => panic!("{variant}: the shipped design breaks too: {e}"),
        }
    }
}
