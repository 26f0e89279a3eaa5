//! Stop-the-world on real threads: the shipped designs, traced, with every
//! trace replayed through the spec. Deadlocking designs are left to the
//! loom and shuttle passes, which detect deadlocks instead of hanging.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

mod stw_common;

use cpyrt_reference::stw::{Design, Op, Outcome, Runtime};
use cpyrt_spec::stw::{Event, Stop};
use stw_common::*;

/// Rounds each workload runs (a new runtime each).
const ROUNDS: usize = 200;

fn workloads() -> Vec<(u8, Vec<Program>)> {
    use Op::*;
    vec![
        // One interpreter: a requester in a critical section, a waiter for
        // it that also pauses, and a thread created at any moment.
        (
            1,
            vec![
                program(
                    role(0, true, false),
                    &[
                        Begin,
                        Pause {
                            scope: I0,
                            cs: false,
                        },
                        End,
                        Check,
                        Pause {
                            scope: G,
                            cs: false,
                        },
                        Syscall,
                        Pause {
                            scope: I0,
                            cs: true,
                        },
                        Exit,
                    ],
                ),
                program(
                    role(0, true, false),
                    &[
                        Begin,
                        Check,
                        End,
                        Syscall,
                        Pause {
                            scope: I0,
                            cs: true,
                        },
                        Begin,
                        End,
                        Exit,
                    ],
                ),
                program(role(0, false, false), &[Begin, End, Check, Syscall, Exit]),
            ],
        ),
        // Two interpreters: per-interpreter pauses overlap, a global one
        // excludes them.
        (
            2,
            vec![
                program(
                    role(0, true, false),
                    &[
                        Pause {
                            scope: I0,
                            cs: true,
                        },
                        Begin,
                        Pause {
                            scope: G,
                            cs: false,
                        },
                        End,
                        Exit,
                    ],
                ),
                program(
                    role(1, true, false),
                    &[
                        Begin,
                        Pause {
                            scope: I1,
                            cs: false,
                        },
                        End,
                        Syscall,
                        Pause {
                            scope: I1,
                            cs: true,
                        },
                        Exit,
                    ],
                ),
                program(
                    role(1, false, false),
                    &[
                        Begin,
                        Check,
                        End,
                        Pause {
                            scope: I1,
                            cs: false,
                        },
                        Exit,
                    ],
                ),
            ],
        ),
        // Finalization: the other threads hang or have finished.
        (
            1,
            vec![
                program(
                    role(0, true, true),
                    &[
                        Check,
                        Pause {
                            scope: I0,
                            cs: false,
                        },
                        Finalize,
                    ],
                ),
                program(
                    role(0, true, false),
                    &[Begin, End, Syscall, Check, Check, Exit],
                ),
                program(role(0, false, false), &[Begin, Syscall, End, Check, Exit]),
            ],
        ),
    ]
}

#[test]
fn shipped_designs_run_and_their_traces_replay_through_the_spec() {
    let mut kinds = std::collections::BTreeSet::new();
    let mut hung = 0;
    for design in [Design::CPYTHON, Design::CPYTHON_MAIN] {
        for (w, (interps, programs)) in workloads().into_iter().enumerate() {
            for _ in 0..ROUNDS {
                let programs: Vec<Program> =
                    programs.iter().map(|p| program(p.role, &p.ops)).collect();
                let cfg = config(interps, &programs, design, true);
                let rt = Runtime::new(cfg.clone());
                let outcomes = run(&rt, programs);
                hung += outcomes
                    .iter()
                    .filter(|o| **o == Some(Outcome::Hung))
                    .count();
                let events = rt.take_trace();
                let states = cpyrt_spec::replay::<Stop>(&cfg.spec(), &events)
                    .unwrap_or_else(|e| panic!("workload {w}: {e}\n{events:#?}"));
                let last = states.last().unwrap();
                assert!(
                    last.stw.iter().all(|s| !s.requested),
                    "workload {w}: a pause is left requested"
                );
                assert!(rt.checks() > 0, "the invariant checks ran");
                kinds.extend(events.iter().map(Event::kind));
            }
        }
    }
    // The runs went through the parts of the protocol that matter.
    for kind in [
        "StwBegin",
        "StwScan",
        "StwWait",
        "HandlePending",
        "Countdown",
        "Create",
        "Finalize",
        "Resume",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} in {ROUNDS} rounds: {kinds:?}"
        );
    }
    eprintln!("event kinds seen: {kinds:?}; threads hung at finalization: {hung}");
}

#[test]
fn untraced_runtimes_hold_more_threads_than_a_spec_state() {
    // Four threads in a critical-section loop with checks, and a fifth that
    // pauses their interpreter and then the world: the latency bench's
    // setting (4 running threads and the requester).
    use Op::*;
    for _ in 0..20 {
        let mut programs: Vec<Program> = (0..4)
            .map(|_| {
                program(
                    role(0, true, false),
                    &[Begin, Check, End, Check, Check, Exit],
                )
            })
            .collect();
        programs.push(program(
            role(0, true, false),
            &[
                Pause {
                    scope: I0,
                    cs: true,
                },
                Pause {
                    scope: G,
                    cs: false,
                },
                Exit,
            ],
        ));
        let rt = Runtime::new(config(1, &programs, Design::CPYTHON, false));
        let outcomes = run(&rt, programs);
        assert!(
            outcomes.iter().all(|o| *o == Some(Outcome::Exited)),
            "{outcomes:?}"
        );
        assert!(rt.checks() > 0, "the invariant checks ran");
    }
    // A traced runtime must fit a spec state: its trace replays there.
    let programs: Vec<Program> = (0..5)
        .map(|_| program(role(0, true, false), &[Exit]))
        .collect();
    let refused =
        std::panic::catch_unwind(|| Runtime::new(config(1, &programs, Design::CPYTHON, true)));
    assert!(refused.is_err(), "a traced 5-thread runtime was built");
}
