//! The shuttle pass for stop-the-world: random and PCT schedules of three
//! and four threads across two interpreters, over sequentially consistent
//! memory. The shipped designs (both lock orders) finish every schedule,
//! and every traced schedule replays through the spec; each broken design
//! fails, by a deadlock (shuttle reports every task blocked) or a failed
//! invariant check naming the spec property, and shuttle prints the
//! failing schedule in the form `shuttle::replay` reruns.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_shuttle" CARGO_TARGET_DIR=/work/tgt/stw/shuttle
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test shuttle_stw`
#![cfg(cpyrt_shuttle)]

mod shuttle_common;

mod stw_common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cpyrt_reference::stw::{Design, Op, Runtime};
use cpyrt_spec::stw::Stop;
use shuttle::scheduler::Scheduler;
use shuttle::{Config as ShuttleConfig, Runner};
use shuttle_common::{KINDS, Kind};
use stw_common::*;

/// Schedules per scheduler and workload for the shipped designs. See
/// `shipped_designs_hold_and_every_trace_replays` for what they cost.
const SCHEDULES: usize = 10_000;
/// Budget per scheduler for finding a broken design's failure; a run stops
/// at the first failing schedule.
const TWIN_SCHEDULES: usize = 20_000;
/// PCT's bug depth.
const PCT_DEPTH: usize = 4;
/// Fixed seed: the same schedules, and the same counterexample, every run.
const SEED: u64 = 0x5700_7e57;

fn scheduler(kind: Kind, schedules: usize) -> Box<dyn Scheduler + Send> {
    shuttle_common::scheduler(kind, SEED, PCT_DEPTH, schedules)
}

use Op::*;

/// Two interpreters, four threads: overlapping per-interpreter pauses, a
/// global one, critical sections inside and around them, blocking calls,
/// and a thread of interpreter 1 created at any moment.
fn two_interps() -> (u8, Vec<Program>) {
    (
        2,
        vec![
            program(
                role(0, true, false),
                &[
                    Begin,
                    Pause {
                        scope: I0,
                        cs: true,
                    },
                    End,
                    Pause {
                        scope: G,
                        cs: false,
                    },
                    Exit,
                ],
            ),
            program(
                role(1, true, false),
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
            ),
            program(
                role(1, false, false),
                &[
                    Begin,
                    End,
                    Check,
                    Pause {
                        scope: I1,
                        cs: false,
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
                        cs: false,
                    },
                    Exit,
                ],
            ),
        ],
    )
}

/// One interpreter, three threads, ending in finalization.
fn finalization() -> (u8, Vec<Program>) {
    (
        1,
        vec![
            program(
                role(0, true, true),
                &[
                    Begin,
                    Pause {
                        scope: I0,
                        cs: true,
                    },
                    End,
                    Finalize,
                ],
            ),
            program(role(0, true, false), &[Begin, End, Syscall, Check, Exit]),
            program(role(0, false, false), &[Begin, End, Exit]),
        ],
    )
}

/// Runs a workload once: traced, and the trace replayed through the spec.
fn traced(design: Design, workload: fn() -> (u8, Vec<Program>)) {
    let (interps, programs) = workload();
    let cfg = config(interps, &programs, design, true);
    let rt = Runtime::new(cfg.clone());
    run(&rt, programs);
    let events = rt.take_trace();
    if let Err(e) = cpyrt_spec::replay::<Stop>(&cfg.spec(), &events) {
        panic!("trace left the spec: {e}\ntrace: {events:?}");
    }
    KINDS_SEEN
        .lock()
        .unwrap()
        .extend(events.iter().map(|e| e.kind()));
}

/// Event kinds the traced schedules went through (a std mutex: it is the
/// test's bookkeeping, outside the scheduled program).
static KINDS_SEEN: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

#[test]
fn shipped_designs_hold_and_every_trace_replays() {
    // Measured on the project's 2-core machine, release build: 10,000
    // random and 10,000 PCT schedules of each workload and lock order,
    // every trace replayed, take about 5.4 s in all (see the printed times).
    for (label, design) in [("3.14", Design::CPYTHON), ("main", Design::CPYTHON_MAIN)] {
        for (name, workload) in [
            (
                "two interpreters",
                two_interps as fn() -> (u8, Vec<Program>),
            ),
            ("finalization", finalization),
        ] {
            for kind in KINDS {
                let start = Instant::now();
                let runs = Runner::new(scheduler(kind, SCHEDULES), ShuttleConfig::default())
                    .run(move || traced(design, workload));
                eprintln!(
                    "{label} {name} ({kind:?}): {runs} schedules in {:.2?}",
                    start.elapsed()
                );
                assert_eq!(runs, SCHEDULES);
            }
        }
    }
    // The schedules went through the parts of the protocol that matter.
    let seen = KINDS_SEEN.lock().unwrap();
    for kind in [
        "Create",
        "Attach",
        "Hang",
        "Resume",
        "CsLockRetry",
        "Syscall",
        "HandlePending",
        "Countdown",
        "StwLock",
        "StwBegin",
        "StwScan",
        "StwWait",
        "Finalize",
        "StartWorld",
    ] {
        assert!(seen.contains(kind), "no {kind} in any schedule: {seen:?}");
    }
}

/// Runs `programs` under `design` until a schedule fails with a message
/// containing one of `needles`, once per scheduler.
fn expect_failure(
    name: &str,
    needles: &[&str],
    design: Design,
    programs: fn() -> (u8, Vec<Program>),
) {
    for kind in KINDS {
        let start = Instant::now();
        let tried = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&tried);
        let found = catch_unwind(AssertUnwindSafe(|| {
            Runner::new(scheduler(kind, TWIN_SCHEDULES), ShuttleConfig::default()).run(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                let (interps, programs) = programs();
                let rt = Runtime::new(config(interps, &programs, design, false));
                run(&rt, programs);
            })
        }))
        .expect_err("shuttle must find the broken design's failure");
        let message = panic_message(found);
        eprintln!(
            "{name} ({kind:?}): found on schedule {} in {:.2?}: {}",
            tried.load(Ordering::Relaxed),
            start.elapsed(),
            message.lines().next().unwrap_or_default()
        );
        assert!(
            needles.iter().any(|n| message.contains(n)),
            "{name}: expected one of {needles:?}, got: {message}"
        );
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn twin(f: fn(&mut Design)) -> Design {
    let mut d = Design::CPYTHON;
    f(&mut d);
    d
}

/// A thread of interpreter 1 that pauses its own interpreter meanwhile.
fn bystander() -> Program {
    program(
        role(1, true, false),
        &[
            Pause {
                scope: I1,
                cs: true,
            },
            Begin,
            End,
            Exit,
        ],
    )
}

#[test]
fn requester_that_detaches_deadlocks_gh118332() {
    expect_failure(
        "requester-detaches",
        &["deadlock"],
        twin(|d| d.requester_stays_attached = false),
        || {
            (
                2,
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
                            Exit,
                        ],
                    ),
                    program(role(0, true, false), &[Begin, End, Exit]),
                    program(role(0, true, false), &[Check, Check, Exit]),
                    bystander(),
                ],
            )
        },
    );
}

#[test]
fn lock_inside_the_pause_deadlocks_gh144513() {
    expect_failure(
        "cs-lock-in-pause",
        &["deadlock"],
        twin(|d| d.skip_cs_lock_while_stopped = false),
        || {
            (
                2,
                vec![
                    program(
                        role(0, true, false),
                        &[
                            Begin,
                            End,
                            Pause {
                                scope: I0,
                                cs: true,
                            },
                            Exit,
                        ],
                    ),
                    program(role(0, true, false), &[Begin, End, Exit]),
                    bystander(),
                ],
            )
        },
    );
}

#[test]
fn deleting_without_decrementing_deadlocks() {
    expect_failure(
        "delete-keeps-countdown",
        &["deadlock"],
        twin(|d| d.delete_decrements_countdown = false),
        || {
            (
                2,
                vec![
                    program(
                        role(0, true, false),
                        &[
                            Pause {
                                scope: G,
                                cs: false,
                            },
                            Exit,
                        ],
                    ),
                    program(role(0, true, false), &[Check, Exit]),
                    program(role(1, true, false), &[Check, Check, Exit]),
                ],
            )
        },
    );
}

/// A requester and a thread in a blocking call, with a bystander.
fn syscall_in_pause() -> (u8, Vec<Program>) {
    (
        2,
        vec![
            program(
                role(0, true, false),
                &[
                    Pause {
                        scope: I0,
                        cs: false,
                    },
                    Exit,
                ],
            ),
            program(role(0, true, false), &[Syscall, Check, Exit]),
            bystander(),
        ],
    )
}

#[test]
fn parking_to_detached_lets_a_thread_run_in_the_pause() {
    expect_failure(
        "paused-threads-detached",
        &[
            "stopped_world_has_no_other_attached_thread",
            "start_the_world: a thread of the stopped world is not SUSPENDED",
        ],
        twin(|d| d.park_to_suspended = false),
        syscall_in_pause,
    );
}

#[test]
fn attaching_from_suspended_leaves_the_pause() {
    expect_failure(
        "attach-while-suspended",
        &["only_pause_end_unsuspends"],
        twin(|d| d.suspended_blocks_attach = false),
        syscall_in_pause,
    );
}

#[test]
fn pauses_without_the_rw_mutex_overlap() {
    expect_failure(
        "no-rw-mutex",
        &["pauses_never_overlap"],
        twin(|d| d.pauses_take_rw_mutex = false),
        || {
            (
                2,
                vec![
                    program(
                        role(0, true, false),
                        &[
                            Pause {
                                scope: G,
                                cs: false,
                            },
                            Exit,
                        ],
                    ),
                    program(
                        role(1, true, false),
                        &[
                            Pause {
                                scope: I1,
                                cs: false,
                            },
                            Exit,
                        ],
                    ),
                    program(role(1, true, false), &[Check, Exit]),
                ],
            )
        },
    );
}

#[test]
fn thread_created_detached_runs_in_the_pause() {
    expect_failure(
        "created-detached",
        &[
            "stopped_world_has_no_other_attached_thread",
            "start_the_world: a thread of the stopped world is not SUSPENDED",
        ],
        twin(|d| d.new_thread_starts_suspended = false),
        || {
            (
                2,
                vec![
                    program(
                        role(1, true, false),
                        &[
                            Pause {
                                scope: I1,
                                cs: false,
                            },
                            Exit,
                        ],
                    ),
                    program(role(1, false, false), &[Check, Check, Exit]),
                    program(role(0, true, false), &[Begin, End, Exit]),
                ],
            )
        },
    );
}
