//! The function-version runtime on `std` threads: scripted runs whose
//! traces replay through the spec (and whose pause logs replay through the
//! stop-the-world spec), and a stress run of three threads whose every
//! trace the spec accepts.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

use std::collections::BTreeSet;

use cpyrt_reference::func_version::{Config, Op, Runtime, thread as handle};
use cpyrt_reference::primitive::thread;
use cpyrt_spec::func_version::{
    Attr, CLEARED, CallKind, Design, Event, FuncVersion, SOMETIMES, State,
};
use cpyrt_spec::{TraceError, replay};

fn config(threads: usize, design: Design, call: CallKind) -> Config {
    Config {
        threads,
        last_version: 3,
        cache_size: 0,
        call,
        design,
        trace: true,
    }
}

/// Runs one script per thread (thread 0 on the caller) and returns the
/// trace.
fn run(cfg: &Config, scripts: &[&'static [Op]]) -> Vec<Event> {
    let rt = Runtime::new(cfg.clone());
    let handles: Vec<_> = scripts[1..]
        .iter()
        .enumerate()
        .map(|(k, &ops)| {
            let t = handle(&rt, k + 1);
            thread::spawn(move || assert_eq!(t.run(ops), None))
        })
        .collect();
    assert_eq!(handle(&rt, 0).run(scripts[0]), None);
    for h in handles {
        h.join().unwrap();
    }
    rt.trace()
}

fn replay_ok(cfg: &Config, trace: &[Event]) -> Vec<State> {
    replay::<FuncVersion>(&cfg.spec(), trace)
        .unwrap_or_else(|e| panic!("the spec rejects a reference trace: {e}\n{trace:#?}"))
}

#[test]
fn one_thread_specializes_invalidates_and_deoptimizes() {
    use Op::*;
    let cfg = config(1, Design::CPYTHON, CallKind::General);
    let trace = run(
        &cfg,
        &[&[
            Call(0),
            Call(0),
            SetCode(0),
            Call(0),
            Set(0, Attr::Defaults),
            Call(0),
        ]],
    );
    let kinds: Vec<&str> = trace.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            "Specialize",
            "Guard",
            "Read",
            "Read",
            "Read",
            "Read",
            "NewCode",
            "SetAttr",
            "RequestStop",
            "ClearVersion",
            "StartWorld",
            "WriteAttr",
            "Guard",
            "SetAttr",
            "WriteAttr",
            "Detach"
        ]
    );
    let states = replay_ok(&cfg, &trace);
    let last = states.last().unwrap();
    assert_eq!(last.funcs[0].attrs[Attr::Code as usize], 1);
    assert_eq!(last.threads[0].cache, 0, "the guard failed and deoptimized");
}

#[test]
fn the_spec_refuses_a_change_spliced_into_a_guarded_call() {
    // The replay is not vacuous: move a real change (made by thread 0
    // after its call) to thread 1, between thread 0's guard and its reads.
    // The spec refuses the clear, because thread 0 is attached inside the
    // call and the world is not stopped.
    use Op::*;
    let cfg = config(1, Design::CPYTHON, CallKind::ExactArgs);
    let trace = run(&cfg, &[&[Call(0), Call(0), SetCode(0)]]);
    let guard_at = trace.iter().position(|e| e.kind() == "Guard").unwrap();
    let reads = &trace[guard_at + 1..guard_at + 3];
    assert!(reads.iter().all(|e| e.kind() == "Read"));
    let change: Vec<Event> = trace[guard_at + 3..trace.len() - 1]
        .iter()
        .map(|e| on_thread_1(*e))
        .collect();
    let mut spliced = trace[..=guard_at].to_vec();
    spliced.extend(&change);
    spliced.extend(reads);
    let mut two = cfg.clone();
    two.threads = 2;
    let clear_at = spliced
        .iter()
        .position(|e| e.kind() == "ClearVersion")
        .unwrap();
    match replay::<FuncVersion>(&two.spec(), &spliced) {
        Err(TraceError::Rejected { index, reason }) => {
            assert_eq!(index, clear_at);
            assert!(reason.contains("world is not stopped"), "{reason}");
        }
        other => panic!("expected the clear to be refused, got {other:?}"),
    }
}

fn on_thread_1(e: Event) -> Event {
    use Event::*;
    match e {
        NewCode { code, version, .. } => NewCode {
            thread: 1,
            code,
            version,
        },
        SetAttr {
            func,
            attr,
            value,
            pause,
            ..
        } => SetAttr {
            thread: 1,
            func,
            attr,
            value,
            pause,
        },
        RequestStop { .. } => RequestStop { thread: 1 },
        ClearVersion { func, .. } => ClearVersion { thread: 1, func },
        StartWorld { .. } => StartWorld { thread: 1 },
        WriteAttr {
            func, attr, value, ..
        } => WriteAttr {
            thread: 1,
            func,
            attr,
            value,
        },
        other => panic!("not a change event: {other:?}"),
    }
}

#[test]
fn three_threads_stress_replays_and_reaches_the_goals() {
    use Op::*;
    const ROUNDS: usize = 200;
    let mut reached = BTreeSet::new();
    for round in 0..ROUNDS {
        let call = if round % 2 == 0 {
            CallKind::ExactArgs
        } else {
            CallKind::General
        };
        let cfg = config(3, Design::CPYTHON, call);
        let trace = run(
            &cfg,
            &[
                &[Call(0), Call(0), Call(0), Call(0), Call(0), Call(0)],
                &[Call(0), Call(0), Syscall, Call(0), Call(0)],
                &[
                    Call(0),
                    SetCode(0),
                    Call(0),
                    Set(0, Attr::Defaults),
                    Call(0),
                ],
            ],
        );
        for s in replay_ok(&cfg, &trace) {
            for goal in SOMETIMES {
                if (goal.holds)(&s) {
                    reached.insert(goal.name);
                }
            }
        }
    }
    for goal in [
        "call_completed",
        "version_cleared",
        "guard_failed_after_clear",
        "write_without_pause",
    ] {
        assert!(reached.contains(goal), "no run reached {goal}: {reached:?}");
    }
}

#[test]
fn the_pause_is_the_stop_the_world_runtimes_and_its_log_replays_there() {
    use Op::*;
    let cfg = config(2, Design::CPYTHON, CallKind::General);
    let rt = Runtime::new(cfg.clone());
    let reader = handle(&rt, 1);
    let h = thread::spawn(move || reader.run(&[Call(0), Call(0), Call(0), Call(0)]));
    assert_eq!(handle(&rt, 0).run(&[Call(0), SetCode(0), Call(0)]), None);
    assert_eq!(h.join().unwrap(), None);
    let traces = rt
        .traces()
        .expect("the pause log replays through the stw spec");
    let kinds: Vec<&str> = traces.pause.iter().map(|e| e.kind()).collect();
    for kind in ["StwRequest", "StwBegin", "StartWorld", "StwUnlock", "Exit"] {
        assert!(
            kinds.contains(&kind),
            "no {kind} in the pause log: {kinds:?}"
        );
    }
    let states = replay_ok(&cfg, &traces.events);
    assert_eq!(states.last().unwrap().funcs[0].version, CLEARED);
}

#[test]
fn make_function_fills_the_version_cache_and_invalidation_empties_it() {
    use Op::*;
    let mut cfg = config(1, Design::CPYTHON, CallKind::ExactArgs);
    cfg.cache_size = 2;
    // Code 1 takes version 3, the last; code 2 finds the counter saturated,
    // so function 2 has no version and its call site never specializes.
    let trace = run(
        &cfg,
        &[&[
            NewCode,
            MakeFunction(1),
            Call(1),
            Call(1),
            Set(1, Attr::Closure),
            NewCode,
            MakeFunction(2),
            Call(2),
            Call(2),
        ]],
    );
    let made: Vec<Event> = trace
        .iter()
        .copied()
        .filter(|e| e.kind() == "MakeFunction")
        .collect();
    assert_eq!(
        made,
        [
            Event::MakeFunction {
                thread: 0,
                func: 1,
                code: 1,
                version: 3
            },
            Event::MakeFunction {
                thread: 0,
                func: 2,
                code: 2,
                version: 0
            }
        ]
    );
    let states = replay_ok(&cfg, &trace);
    let after_make = &states[trace
        .iter()
        .position(|e| e.kind() == "MakeFunction")
        .unwrap()
        + 1];
    assert_eq!(
        after_make.cache[1].func,
        Some(1),
        "slot 3 % 2 names function 1"
    );
    let last = states.last().unwrap();
    assert_eq!(last.cache[1].func, None, "the clear emptied the slot");
    assert_eq!(last.cache[1].code, Some(1), "and left its code");
    assert_eq!(last.funcs[2].version, 0);
    assert_eq!(
        trace.iter().filter(|e| e.kind() == "Specialize").count(),
        1,
        "only function 1 specializes"
    );
}
