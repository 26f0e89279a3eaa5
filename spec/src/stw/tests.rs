//! Hand traces of the stop-the-world spec: each pins one rule of the
//! protocol, in the shipped design and, where a twin breaks it, in the
//! broken one.

use super::*;
use crate::{TraceError, replay};

const I0: Scope = Scope::Interp(0);

fn role(interp: u8) -> Role {
    Role {
        interp,
        starts_bound: true,
        interp_pauses: false,
        global_pauses: false,
        finalizes: false,
        critical_sections: true,
        blocking_calls: true,
        exits: true,
    }
}

fn requester(interp: u8) -> Role {
    Role {
        interp_pauses: true,
        global_pauses: true,
        ..role(interp)
    }
}

fn cfg(roles: Vec<Role>, interps: u8, design: Design) -> Config {
    let c = Config {
        interps,
        roles,
        max_pauses: 1,
        design,
    };
    c.validate().unwrap();
    c
}

fn lock(thread: u8, scope: Scope, lock: StwLock) -> Event {
    // The first lock of a request starts it.
    Event::StwLock {
        thread,
        scope,
        start: lock == StwLock::Mutex,
        lock,
        parked: false,
        wake: None,
    }
}

/// t0 takes both locks of a pause of `scope` (3.14 order).
fn take_locks(scope: Scope) -> Vec<Event> {
    vec![
        lock(0, scope, StwLock::Mutex),
        lock(0, scope, StwLock::RwMutex),
    ]
}

fn release(scope: Scope) -> Vec<Event> {
    vec![
        Event::StartWorld { thread: 0, scope },
        Event::StwUnlock {
            thread: 0,
            scope,
            lock: StwLock::RwMutex,
            wake: None,
        },
        Event::StwUnlock {
            thread: 0,
            scope,
            lock: StwLock::Mutex,
            wake: None,
        },
    ]
}

fn last(c: &Config, trace: &[Event]) -> State {
    replay::<Stop>(c, trace)
        .unwrap_or_else(|e| panic!("{e}"))
        .pop()
        .unwrap()
}

#[test]
fn detached_thread_is_parked_by_the_requester() {
    let c = cfg(vec![requester(0), role(0)], 1, Design::CPYTHON);
    let mut trace = vec![Event::Syscall {
        thread: 1,
        wake: None,
    }];
    trace.extend(take_locks(I0));
    trace.push(Event::StwBegin {
        thread: 0,
        scope: I0,
        countdown: 0,
        stopped: true,
    });
    let s = last(&c, &trace);
    assert!(s.stw(I0).world_stopped);
    assert_eq!(s.threads[1].state, TState::Suspended);
    // The parked thread cannot attach until the world restarts.
    let mut early = trace.clone();
    early.push(Event::Attach { thread: 1 });
    assert!(matches!(
        replay::<Stop>(&c, &early),
        Err(TraceError::Rejected { index: 4, .. })
    ));
    trace.extend(release(I0));
    trace.push(Event::Attach { thread: 1 });
    let s = last(&c, &trace);
    assert_eq!(s.threads[1].state, TState::Attached);
    assert_eq!(s.stw(I0).mutex, None);
}

#[test]
fn attached_thread_suspends_itself_and_sets_the_event() {
    let c = cfg(vec![requester(0), role(0)], 1, Design::CPYTHON);
    let mut trace = take_locks(I0);
    trace.extend([
        Event::StwBegin {
            thread: 0,
            scope: I0,
            countdown: 1,
            stopped: false,
        },
        Event::HandlePending {
            thread: 1,
            suspend: Some(I0),
            wake: None,
        },
        Event::Countdown {
            thread: 1,
            scope: I0,
            countdown: 0,
        },
        Event::StwWait {
            thread: 0,
            scope: I0,
            stopped: true,
        },
    ]);
    let s = last(&c, &trace);
    assert!(s.stw(I0).world_stopped);
    assert!(s.stw(I0).stop_event);
    assert_eq!(s.threads[1].state, TState::Suspended);
    // A recorded countdown that disagrees with the spec's is refused.
    let mut wrong = trace.clone();
    wrong[3] = Event::Countdown {
        thread: 1,
        scope: I0,
        countdown: 1,
    };
    assert!(matches!(
        replay::<Stop>(&c, &wrong),
        Err(TraceError::Rejected { index: 3, .. })
    ));
}

/// gh-118332: the requester (t0) holds a critical section on the object
/// that t1 waits for; a third thread keeps the pause waiting.
fn gh118332_trace() -> Vec<Event> {
    let mut trace = vec![
        Event::BeginCs {
            thread: 0,
            object: 0,
            retry: false,
            parked: false,
        },
        Event::BeginCs {
            thread: 1,
            object: 0,
            retry: false,
            parked: true,
        },
    ];
    trace.extend(take_locks(I0));
    trace.extend([
        // Counts t1 and t2; parks t1 (detached), asks t2 to stop.
        Event::StwBegin {
            thread: 0,
            scope: I0,
            countdown: 1,
            stopped: false,
        },
        // The broken wait detaches: t0's critical section is released and
        // the lock is handed to t1, which is SUSPENDED.
        Event::StwPark {
            thread: 0,
            scope: I0,
            wake: Some(Wake {
                thread: 1,
                handed: true,
            }),
        },
        Event::HandlePending {
            thread: 2,
            suspend: Some(I0),
            wake: None,
        },
        Event::Countdown {
            thread: 2,
            scope: I0,
            countdown: 0,
        },
        Event::StwUnpark {
            thread: 0,
            scope: I0,
        },
        Event::Attach { thread: 0 },
        // Resuming the critical section finds the lock owned by t1.
        Event::Resume {
            thread: 0,
            object: 0,
            parked: true,
        },
    ]);
    trace
}

#[test]
fn requester_that_detaches_deadlocks_gh118332() {
    let roles = vec![requester(0), role(0), role(0)];
    let twin = cfg(
        roles.clone(),
        1,
        Design {
            requester_stays_attached: false,
            ..Design::CPYTHON
        },
    );
    let trace = gh118332_trace();
    let err = replay::<Stop>(&twin, &trace).unwrap_err();
    assert_eq!(
        err,
        TraceError::Invariant {
            index: trace.len() - 1,
            name: "no_deadlock"
        }
    );
    let mut states = replay::<Stop>(&twin, &trace[..trace.len() - 1]).unwrap();
    let mut s = states.pop().unwrap();
    s = Stop::step(&twin, &s, trace.last().unwrap()).unwrap();
    assert_eq!(deadlocked(&s), 0b111);
    // The shipped requester never parks on the event.
    let shipped = cfg(roles, 1, Design::CPYTHON);
    assert!(matches!(
        replay::<Stop>(&shipped, &trace),
        Err(TraceError::Rejected { index: 5, .. })
    ));
}

#[test]
fn critical_section_inside_a_pause_deadlocks_without_the_skip() {
    // gh-144513: t1's lock attempt waited long enough that t0's unlock
    // hands it the lock; t1 is parked (detached) by the pause before it
    // runs, so it owns the lock while SUSPENDED.
    let mut trace = vec![
        Event::BeginCs {
            thread: 0,
            object: 0,
            retry: false,
            parked: false,
        },
        Event::BeginCs {
            thread: 1,
            object: 0,
            retry: false,
            parked: true,
        },
        Event::EndCs {
            thread: 0,
            object: 0,
            wake: Some(Wake {
                thread: 1,
                handed: true,
            }),
        },
    ];
    trace.extend(take_locks(I0));
    trace.push(Event::StwBegin {
        thread: 0,
        scope: I0,
        countdown: 0,
        stopped: true,
    });
    let roles = vec![requester(0), role(0)];
    let shipped = cfg(roles.clone(), 1, Design::CPYTHON);
    let s = last(&shipped, &trace);
    assert_eq!(s.objects[0], Some(1));
    assert_eq!(s.threads[1].state, TState::Suspended);
    trace.push(Event::PauseCs {
        thread: 0,
        object: 0,
        parked: true,
    });
    assert!(matches!(
        replay::<Stop>(&shipped, &trace),
        Err(TraceError::Rejected { index: 6, .. })
    ));
    let twin = cfg(
        roles,
        1,
        Design {
            skip_cs_lock_while_stopped: false,
            ..Design::CPYTHON
        },
    );
    assert_eq!(
        replay::<Stop>(&twin, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 6,
            name: "no_deadlock"
        }
    );
}

#[test]
fn thread_created_during_a_pause_starts_suspended() {
    let unborn = Role {
        starts_bound: false,
        ..role(0)
    };
    let mut trace = take_locks(I0);
    trace.extend([
        Event::StwBegin {
            thread: 0,
            scope: I0,
            countdown: 0,
            stopped: true,
        },
        Event::Create {
            thread: 1,
            suspended: true,
        },
    ]);
    let shipped = cfg(vec![requester(0), unborn], 1, Design::CPYTHON);
    let s = last(&shipped, &trace);
    assert_eq!(s.threads[1].state, TState::Suspended);
    assert!(s.threads[1].created_in_pause);
    let mut after = trace.clone();
    after.extend(release(I0));
    after.push(Event::Attach { thread: 1 });
    assert_eq!(last(&shipped, &after).threads[1].state, TState::Attached);

    let twin = cfg(
        vec![requester(0), unborn],
        1,
        Design {
            new_thread_starts_suspended: false,
            ..Design::CPYTHON
        },
    );
    trace[3] = Event::Create {
        thread: 1,
        suspended: false,
    };
    // The uncounted DETACHED thread already puts the countdown off; once
    // it attaches, the stopped world has a running thread.
    assert_eq!(
        replay::<Stop>(&twin, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 3,
            name: "countdown_matches_threads_to_park"
        }
    );
    let mut s = Stop::init(&twin);
    trace.push(Event::Attach { thread: 1 });
    for e in &trace {
        s = Stop::step(&twin, &s, e).unwrap();
    }
    assert!(!(INVARIANTS[0].holds)(&s), "{}", INVARIANTS[0].name);
}

#[test]
fn exiting_thread_releases_the_pause() {
    let mut trace = take_locks(I0);
    trace.extend([
        Event::StwBegin {
            thread: 0,
            scope: I0,
            countdown: 1,
            stopped: false,
        },
        Event::Exit { thread: 1 },
    ]);
    let roles = vec![requester(0), role(0)];
    let shipped = cfg(roles.clone(), 1, Design::CPYTHON);
    let s = last(&shipped, &trace);
    assert_eq!((s.stw(I0).countdown, s.stw(I0).stop_event), (0, true));
    let twin = cfg(
        roles,
        1,
        Design {
            delete_decrements_countdown: false,
            ..Design::CPYTHON
        },
    );
    assert_eq!(
        replay::<Stop>(&twin, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 3,
            name: "countdown_matches_threads_to_park"
        }
    );
}

#[test]
fn global_pause_waits_for_per_interpreter_readers() {
    // t0 (interpreter 0) pauses its interpreter; t1 (interpreter 1) asks
    // for a global pause and must wait for the read lock to go.
    let c = cfg(vec![requester(0), requester(1)], 2, Design::CPYTHON);
    let g = Scope::Global;
    let mut trace = take_locks(I0);
    trace.extend([
        lock(1, g, StwLock::Mutex),
        Event::StwLock {
            thread: 1,
            scope: g,
            start: false,
            lock: StwLock::RwMutex,
            parked: true,
            wake: None,
        },
    ]);
    let s = last(&c, &trace);
    assert!(s.rw.has_parked);
    assert_eq!(s.threads[1].at, At::Parked(Lock::RwMutex));
    // A new reader is turned away while a writer is parked.
    let d = cfg(
        vec![requester(0), requester(1), requester(1)],
        2,
        Design::CPYTHON,
    );
    let mut more = trace.clone();
    more.extend([
        lock(2, Scope::Interp(1), StwLock::Mutex),
        Event::StwLock {
            thread: 2,
            scope: Scope::Interp(1),
            start: false,
            lock: StwLock::RwMutex,
            parked: true,
            wake: None,
        },
    ]);
    last(&d, &more);
    // Without the read-write mutex both pauses are requested at once.
    let twin = cfg(
        vec![requester(0), requester(1)],
        2,
        Design {
            pauses_take_rw_mutex: false,
            ..Design::CPYTHON
        },
    );
    let trace = vec![
        lock(0, I0, StwLock::Mutex),
        Event::StwBegin {
            thread: 0,
            scope: I0,
            countdown: 0,
            stopped: true,
        },
        lock(1, g, StwLock::Mutex),
        Event::StwBegin {
            thread: 1,
            scope: g,
            countdown: 1,
            stopped: false,
        },
    ];
    assert_eq!(
        replay::<Stop>(&twin, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 3,
            name: "pauses_never_overlap"
        }
    );
}

#[test]
fn parking_to_detached_counts_a_thread_twice() {
    let twin = cfg(
        vec![requester(0), role(0), role(0)],
        1,
        Design {
            park_to_suspended: false,
            ..Design::CPYTHON
        },
    );
    let mut trace = vec![Event::Syscall {
        thread: 1,
        wake: None,
    }];
    trace.extend(take_locks(I0));
    // Counts t1 and t2; "parks" t1 but leaves it DETACHED.
    trace.push(Event::StwBegin {
        thread: 0,
        scope: I0,
        countdown: 1,
        stopped: false,
    });
    assert_eq!(
        replay::<Stop>(&twin, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 3,
            name: "countdown_matches_threads_to_park"
        }
    );
}

#[test]
fn attaching_from_suspended_leaves_the_pause_early() {
    let twin = cfg(
        vec![requester(0), role(0)],
        1,
        Design {
            suspended_blocks_attach: false,
            ..Design::CPYTHON
        },
    );
    let mut trace = vec![Event::Syscall {
        thread: 1,
        wake: None,
    }];
    trace.extend(take_locks(I0));
    trace.extend([
        Event::StwBegin {
            thread: 0,
            scope: I0,
            countdown: 0,
            stopped: true,
        },
        Event::Attach { thread: 1 },
    ]);
    assert_eq!(
        replay::<Stop>(&twin, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 4,
            name: "stopped_world_has_no_other_attached_thread"
        }
    );
}

#[test]
fn finalization_makes_the_other_threads_hang() {
    let c = cfg(
        vec![
            Role {
                finalizes: true,
                ..requester(0)
            },
            role(0),
        ],
        1,
        Design::CPYTHON,
    );
    let g = Scope::Global;
    let mut trace = vec![Event::Shutdown { thread: 0 }];
    // Py_FinalizeEx started the request: its first lock is no start.
    trace.extend(take_locks(g).into_iter().map(|e| match e {
        Event::StwLock {
            thread,
            scope,
            lock,
            parked,
            wake,
            ..
        } => Event::StwLock {
            thread,
            scope,
            start: false,
            lock,
            parked,
            wake,
        },
        e => e,
    }));
    trace.extend([
        Event::StwBegin {
            thread: 0,
            scope: g,
            countdown: 1,
            stopped: false,
        },
        Event::HandlePending {
            thread: 1,
            suspend: Some(g),
            wake: None,
        },
        Event::Countdown {
            thread: 1,
            scope: g,
            countdown: 0,
        },
        Event::StwWait {
            thread: 0,
            scope: g,
            stopped: true,
        },
        Event::Finalize { thread: 0 },
    ]);
    trace.extend(release(g));
    trace.push(Event::Hang { thread: 1 });
    let s = last(&c, &trace);
    assert_eq!(s.threads[1].life, Life::Hung);
    assert_eq!(s.threads[0].life, Life::Exited);
    assert_eq!(deadlocked(&s), 0);
}

#[test]
fn enabled_events_are_accepted() {
    // Every event `enabled` offers is one `step` accepts, on bounded
    // random walks, in the shipped design and every single-switch twin.
    let unborn = Role {
        starts_bound: false,
        ..requester(0)
    };
    let designs = [
        Design::CPYTHON,
        Design::CPYTHON_MAIN,
        Design {
            requester_stays_attached: false,
            ..Design::CPYTHON
        },
        Design {
            park_to_suspended: false,
            ..Design::CPYTHON
        },
        Design {
            skip_cs_lock_while_stopped: false,
            ..Design::CPYTHON
        },
        Design {
            pauses_take_rw_mutex: false,
            ..Design::CPYTHON
        },
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for design in designs {
        for (roles, interps) in [
            (
                vec![
                    Role {
                        finalizes: true,
                        ..requester(0)
                    },
                    requester(0),
                    unborn,
                ],
                1,
            ),
            (
                vec![
                    requester(0),
                    requester(1),
                    Role {
                        interp: 1,
                        ..unborn
                    },
                ],
                2,
            ),
        ] {
            let c = cfg(roles, interps, design);
            for _ in 0..20 {
                let mut s = Stop::init(&c);
                let mut events = Vec::new();
                for _ in 0..200 {
                    events.clear();
                    Stop::enabled(&c, &s, &mut events);
                    if events.is_empty() {
                        break;
                    }
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let e = events[(seed % events.len() as u64) as usize];
                    s = Stop::step(&c, &s, &e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
                    for inv in INVARIANTS {
                        let _ = (inv.holds)(&s);
                    }
                }
            }
        }
    }
}
