//! Hand-written traces through the function-version spec: the shipped
//! design, the race of gh-115999, the safe-point caveat and the cache and
//! counter twins.

use super::*;
use crate::{TraceError, replay};

fn cfg(design: Design) -> Config {
    Config {
        threads: 2,
        max_codes: 3,
        max_functions: 2,
        max_writes: 3,
        last_version: 3,
        cache_size: 1,
        call: CallKind::ExactArgs,
        writable: vec![Attr::Code, Attr::Defaults],
        design,
    }
}

/// Thread 0 specializes on function 0, passes the guard and reads the
/// code once; thread 1 creates code 1 (version 3).
fn guarded_prefix() -> Vec<Event> {
    vec![
        Event::Specialize {
            thread: 0,
            func: 0,
            version: 2,
        },
        Event::Guard {
            thread: 0,
            func: 0,
            pass: true,
        },
        Event::Read {
            thread: 0,
            attr: Attr::Code,
            value: 0,
        },
        Event::NewCode {
            thread: 1,
            code: 1,
            version: 3,
        },
    ]
}

fn set_code(pause: bool) -> Event {
    Event::SetAttr {
        thread: 1,
        func: 0,
        attr: Attr::Code,
        value: 1,
        pause,
    }
}

fn write_code() -> Event {
    Event::WriteAttr {
        thread: 1,
        func: 0,
        attr: Attr::Code,
        value: 1,
    }
}

const CLEAR: Event = Event::ClearVersion { thread: 1, func: 0 };

#[test]
fn without_the_pause_a_guarded_call_reads_the_new_code() {
    // gh-115999: the guard passed, the writer clears and writes between
    // the two reads of func_code, the frame is pushed for the new code.
    let c = cfg(Design {
        stop_the_world: false,
        ..Design::CPYTHON
    });
    let mut trace = guarded_prefix();
    trace.extend([
        set_code(true),
        CLEAR,
        write_code(),
        Event::Read {
            thread: 0,
            attr: Attr::Code,
            value: 1,
        },
    ]);
    let err = replay::<FuncVersion>(&c, &trace).unwrap_err();
    assert_eq!(
        err,
        TraceError::Invariant {
            index: 7,
            name: "guarded_reads_match_version"
        }
    );
}

#[test]
fn the_pause_waits_for_the_guarded_call_to_finish() {
    let c = cfg(Design::CPYTHON);
    let mut trace = guarded_prefix();
    trace.extend([set_code(true), Event::RequestStop { thread: 1 }]);
    // Thread 0 is between its guard and its reads: not a safe point.
    let mut early = trace.clone();
    early.push(CLEAR);
    assert!(matches!(
        replay::<FuncVersion>(&c, &early),
        Err(TraceError::Rejected { index: 6, .. })
    ));
    let mut early = trace.clone();
    early.push(Event::Suspend { thread: 0 });
    assert!(matches!(
        replay::<FuncVersion>(&c, &early),
        Err(TraceError::Rejected { index: 6, .. })
    ));

    trace.extend([
        Event::Read {
            thread: 0,
            attr: Attr::Code,
            value: 0,
        },
        Event::Suspend { thread: 0 },
        CLEAR,
        Event::StartWorld { thread: 1 },
        write_code(),
        Event::Attach { thread: 0 },
        Event::Guard {
            thread: 0,
            func: 0,
            pass: false,
        },
    ]);
    let states = replay::<FuncVersion>(&c, &trace).unwrap();
    let last = states.last().unwrap();
    assert_eq!(last.funcs[0].version, CLEARED);
    assert_eq!(last.funcs[0].attrs[0], 1);
    assert_eq!(last.threads[0].cache, 0, "the failed guard deoptimized");
    assert_ne!(last.seen & seen::GUARD_FAILED, 0);
    assert_ne!(last.seen & seen::CALL_COMPLETED, 0);
    // The slot no longer names function 0, but keeps its code.
    assert_eq!(
        last.cache[0],
        Slot {
            func: None,
            code: Some(0)
        }
    );
}

#[test]
fn a_safe_point_after_the_guard_lets_the_pause_in() {
    let c = cfg(Design {
        no_safe_point_after_guard: false,
        ..Design::CPYTHON
    });
    let mut trace = guarded_prefix();
    trace.extend([
        set_code(true),
        Event::RequestStop { thread: 1 },
        Event::Suspend { thread: 0 },
        CLEAR,
        Event::StartWorld { thread: 1 },
        write_code(),
        Event::Attach { thread: 0 },
        Event::Read {
            thread: 0,
            attr: Attr::Code,
            value: 1,
        },
    ]);
    let err = replay::<FuncVersion>(&c, &trace).unwrap_err();
    assert_eq!(
        err,
        TraceError::Invariant {
            index: 11,
            name: "guarded_reads_match_version"
        }
    );
    // The same trace is refused by the shipped design at the suspension.
    assert!(matches!(
        replay::<FuncVersion>(&cfg(Design::CPYTHON), &trace),
        Err(TraceError::Rejected { index: 6, .. })
    ));
}

#[test]
fn only_the_first_change_pauses() {
    let c = cfg(Design::CPYTHON);
    let trace = vec![
        Event::Detach { thread: 0 },
        Event::SetAttr {
            thread: 1,
            func: 0,
            attr: Attr::Defaults,
            value: 1,
            pause: true,
        },
        Event::RequestStop { thread: 1 },
        CLEAR,
        Event::StartWorld { thread: 1 },
        Event::WriteAttr {
            thread: 1,
            func: 0,
            attr: Attr::Defaults,
            value: 1,
        },
        Event::SetAttr {
            thread: 1,
            func: 0,
            attr: Attr::Defaults,
            value: 2,
            pause: false,
        },
        Event::WriteAttr {
            thread: 1,
            func: 0,
            attr: Attr::Defaults,
            value: 2,
        },
    ];
    let states = replay::<FuncVersion>(&c, &trace).unwrap();
    let last = states.last().unwrap();
    assert_eq!(last.funcs[0].attrs[Attr::Defaults as usize], 2);
    assert_ne!(last.seen & seen::WRITE_WITHOUT_PAUSE, 0);
    // Claiming a pause for a cleared version is refused.
    let mut wrong = trace[..6].to_vec();
    wrong.push(Event::SetAttr {
        thread: 1,
        func: 0,
        attr: Attr::Defaults,
        value: 2,
        pause: true,
    });
    assert!(replay::<FuncVersion>(&c, &wrong).is_err());
}

#[test]
fn a_cache_slot_left_behind_names_a_cleared_function() {
    let trace = vec![
        Event::Detach { thread: 0 },
        Event::SetAttr {
            thread: 1,
            func: 0,
            attr: Attr::Defaults,
            value: 1,
            pause: true,
        },
        Event::RequestStop { thread: 1 },
        CLEAR,
    ];
    let c = cfg(Design {
        clear_cache_slot: false,
        ..Design::CPYTHON
    });
    assert_eq!(
        replay::<FuncVersion>(&c, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 3,
            name: "cache_slot_consistent"
        }
    );
    assert!(replay::<FuncVersion>(&cfg(Design::CPYTHON), &trace).is_ok());
}

#[test]
fn the_counter_saturates_and_new_functions_go_unversioned() {
    let c = cfg(Design::CPYTHON);
    let trace = vec![
        Event::NewCode {
            thread: 0,
            code: 1,
            version: 3,
        },
        Event::NewCode {
            thread: 0,
            code: 2,
            version: 0,
        },
        Event::MakeFunction {
            thread: 0,
            func: 1,
            code: 2,
            version: UNSET,
        },
    ];
    let states = replay::<FuncVersion>(&c, &trace).unwrap();
    let last = states.last().unwrap();
    assert_eq!(last.next_version, 0);
    assert_eq!(last.funcs[1].version, UNSET);
    // The unversioned function cannot be specialized.
    let mut more = trace.clone();
    more.push(Event::Specialize {
        thread: 0,
        func: 1,
        version: 0,
    });
    assert!(replay::<FuncVersion>(&c, &more).is_err());

    // Wrapping instead of saturating hands version 2 out again.
    let wraps = cfg(Design {
        counter_saturates: false,
        ..Design::CPYTHON
    });
    let err = replay::<FuncVersion>(&wraps, &trace[..1]).unwrap_err();
    assert_eq!(
        err,
        TraceError::Invariant {
            index: 0,
            name: "counter_ahead_of_versions"
        }
    );
}

#[test]
fn a_wrapped_counter_reuses_a_version() {
    // Checked state by state (replay stops at the transition invariant).
    let c = cfg(Design {
        counter_saturates: false,
        ..Design::CPYTHON
    });
    let mut s = FuncVersion::init(&c);
    for (code, version) in [(1, 3), (2, 2)] {
        s = FuncVersion::step(
            &c,
            &s,
            &Event::NewCode {
                thread: 0,
                code,
                version,
            },
        )
        .unwrap();
    }
    assert!(!versions_unique(&s));
}

#[test]
fn freeing_a_code_object_empties_its_slot() {
    let c = cfg(Design::CPYTHON);
    let trace = vec![
        Event::NewCode {
            thread: 0,
            code: 1,
            version: 3,
        },
        Event::MakeFunction {
            thread: 0,
            func: 1,
            code: 1,
            version: 3,
        },
        Event::Detach { thread: 0 },
        Event::SetAttr {
            thread: 1,
            func: 1,
            attr: Attr::Code,
            value: 0,
            pause: true,
        },
        Event::RequestStop { thread: 1 },
        Event::ClearVersion { thread: 1, func: 1 },
        Event::StartWorld { thread: 1 },
        Event::WriteAttr {
            thread: 1,
            func: 1,
            attr: Attr::Code,
            value: 0,
        },
        Event::FreeCode { thread: 1, code: 1 },
    ];
    let states = replay::<FuncVersion>(&c, &trace).unwrap();
    // MakeFunction took the only slot from function 0.
    assert_eq!(
        states[2].cache[0],
        Slot {
            func: Some(1),
            code: Some(1)
        }
    );
    assert_eq!(states.last().unwrap().cache[0], Slot::default());
    // Code 0 is still used by both functions: it cannot be freed.
    let mut more = trace.clone();
    more.push(Event::FreeCode { thread: 1, code: 0 });
    assert!(replay::<FuncVersion>(&c, &more).is_err());
}

#[test]
fn enabled_events_are_accepted() {
    // Every event `enabled` offers is one `step` accepts, on bounded
    // pseudo-random walks from the initial state, for every design.
    let designs = [
        Design::CPYTHON,
        Design {
            stop_the_world: false,
            ..Design::CPYTHON
        },
        Design {
            no_safe_point_after_guard: false,
            ..Design::CPYTHON
        },
    ];
    for (k, design) in designs.into_iter().enumerate() {
        let mut c = cfg(design);
        c.threads = 3;
        c.call = if k % 2 == 0 {
            CallKind::General
        } else {
            CallKind::ExactArgs
        };
        c.writable = Attr::ALL.to_vec();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64 + k as u64;
        for _walk in 0..50 {
            let mut s = FuncVersion::init(&c);
            let mut events = Vec::new();
            for _ in 0..200 {
                events.clear();
                FuncVersion::enabled(&c, &s, &mut events);
                if events.is_empty() {
                    break;
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let e = events[(seed % events.len() as u64) as usize];
                s = FuncVersion::step(&c, &s, &e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
            }
        }
    }
}

#[test]
fn config_bounds_are_checked() {
    let mut c = cfg(Design::CPYTHON);
    assert!(c.validate().is_ok());
    c.threads = 0;
    assert!(c.validate().unwrap_err().contains("threads"));
    c.threads = 2;
    c.last_version = 1;
    assert!(c.validate().unwrap_err().contains("last_version"));
}
