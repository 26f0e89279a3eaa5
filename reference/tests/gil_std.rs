//! The GIL reference runtime on `std`: recorded traces of every scenario
//! replay through the spec with every invariant holding, and the broken
//! designs that fail deterministically on one thread's schedule do.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

mod gil_common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use cpyrt_reference::gil::{Config, Design, Event, Outcome, RunLimits, Runtime};
use cpyrt_spec::gil::{GilSpec, Op};
use cpyrt_spec::replay;
use gil_common::*;

/// Enough bytecode between checks, and enough rounds, that threads really
/// contend on `std` with a 50 µs switch interval.
const BUSY: RunLimits = RunLimits {
    checks_per_run: 20,
    rounds: 5,
    spin: 5_000,
};

/// Runs `cfg` `runs` times with tracing on; every trace must replay.
/// Returns how often each event kind occurred over all runs.
fn replay_runs(
    name: &str,
    cfg: &Config,
    runs: usize,
) -> std::collections::BTreeMap<&'static str, usize> {
    let mut kinds = std::collections::BTreeMap::new();
    for _ in 0..runs {
        let how = Run {
            trace: true,
            limits: BUSY,
            ..Run::default()
        };
        let (_, trace) = run(cfg, how);
        assert!(!trace.is_empty(), "{name}");
        if let Err(e) = replay::<GilSpec>(cfg, &trace) {
            panic!("{name}: trace left the spec: {e}\n{trace:#?}");
        }
        for e in &trace {
            *kinds.entry(e.kind()).or_insert(0) += 1;
        }
    }
    kinds
}

#[test]
fn handoff_traces_replay_and_hand_off_on_request() {
    let kinds = replay_runs("handoff", &handoff(3, Design::CPYTHON), 30);
    // Non-vacuous: threads waited, timed out and asked for drops.
    for k in ["Wait", "Timeout", "RequestDrop", "Check"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k}: {kinds:?}");
    }
}

#[test]
fn handoff_without_forced_switching_replays() {
    let cfg = handoff(
        3,
        Design {
            force_switching: false,
            ..Design::CPYTHON
        },
    );
    let kinds = replay_runs("no-force-switching", &cfg, 20);
    assert!(!kinds.contains_key("DropTail"), "{kinds:?}");
}

#[test]
fn subinterpreter_traces_replay() {
    for own in [false, true] {
        replay_runs(
            "subinterpreters",
            &subinterpreters(3, own, Design::CPYTHON),
            20,
        );
    }
}

#[test]
fn finalize_traces_replay_and_the_daemon_hangs() {
    // The clear-under-mutex design: CPython's can deadlock in a narrow
    // window (spec/gil.md), which a std run must not risk; the loom and
    // shuttle passes look for that window.
    let cfg = finalize(
        3,
        Design {
            clear_request_before_unlock: true,
            ..Design::CPYTHON
        },
    );
    for _ in 0..30 {
        let (outcomes, trace) = run(
            &cfg,
            Run {
                trace: true,
                limits: RunLimits { rounds: 50, ..BUSY },
                ..Run::default()
            },
        );
        replay::<GilSpec>(&cfg, &trace).unwrap_or_else(|e| panic!("{e}\n{trace:#?}"));
        assert_eq!(outcomes[0], Outcome::Finished);
        assert!(trace.contains(&Event::DeleteInterp {
            thread: 0,
            interp: 0
        }));
        // The daemon either finished its rounds before finalization or
        // hung in take_gil after it.
        if outcomes[1] == Outcome::Hung {
            assert!(trace.iter().any(|e| matches!(
                e,
                Event::TakeEnter {
                    thread: 1,
                    exit: true
                } | Event::TakeDone {
                    thread: 1,
                    exit: true
                } | Event::WaiterExit { thread: 1, .. }
            )));
        }
    }
}

#[test]
fn end_interpreter_traces_replay() {
    replay_runs("end-interpreter", &end_interpreter(3, Design::CPYTHON), 30);
}

#[test]
fn gilstate_traces_replay_through_the_hook() {
    let kinds = replay_runs("gilstate", &gilstate(3, Design::CPYTHON), 30);
    assert!(
        kinds["AddTstate"] >= 4,
        "the hook creates a thread state too: {kinds:?}"
    );
}

#[test]
fn detached_traces_replay() {
    replay_runs("detached", &detached(3, Design::CPYTHON), 30);
}

#[test]
fn allocating_under_head_lock_blocks_on_its_own_lock() {
    let cfg = gilstate(
        1,
        Design {
            alloc_before_head_lock: false,
            ..Design::CPYTHON
        },
    );
    let rt = Runtime::new(&cfg, Run::default().interval, true).unwrap();
    let mut th = Runtime::thread(&rt, 0);
    assert_eq!(th.run(RunLimits::default()), Outcome::SelfBlocked);
    // The spec sees the same: right after the hook starts, the thread
    // wants the HEAD_LOCK it holds.
    let trace = rt.take_trace();
    assert_eq!(
        replay::<GilSpec>(&cfg, &trace).unwrap_err(),
        cpyrt_spec::TraceError::Invariant {
            index: 1,
            name: "no_self_block"
        }
    );
}

#[test]
fn a_shared_detached_tstate_is_bound_by_two_threads() {
    let cfg = detached(
        2,
        Design {
            tstate_per_os_thread: false,
            ..Design::CPYTHON
        },
    );
    let rt = Runtime::new(&cfg, Run::default().interval, true).unwrap();
    let (mut a, mut b) = (Runtime::thread(&rt, 0), Runtime::thread(&rt, 1));
    // Both threads take and drop their own GIL, then bind the main one.
    for th in [&mut a, &mut b] {
        for op in [Op::Take, Op::Run, Op::Drop] {
            assert_eq!(th.run_op(op, RunLimits::default()), Outcome::Finished);
        }
    }
    a.run_op(Op::BindMain, RunLimits::default());
    let err = catch_unwind(AssertUnwindSafe(|| {
        b.run_op(Op::BindMain, RunLimits::default())
    }))
    .unwrap_err();
    assert!(panic_message(err).starts_with("tstate_bound_once"));
    let trace = rt.take_trace();
    assert!(matches!(
        replay::<GilSpec>(&cfg, &trace),
        Err(cpyrt_spec::TraceError::Invariant {
            name: "tstate_bound_once",
            ..
        })
    ));
}
