//! Hand traces through `take_gil` and `drop_gil`, and the consistency of
//! `enabled`, `step` and the blocked notion `no_deadlock` relies on.

use super::*;
use crate::{TraceError, replay};

fn thread(tstate: u8, program: Vec<Op>, repeat_from: Option<u8>) -> ThreadSpec {
    ThreadSpec {
        daemon: false,
        tstate: Some(tstate),
        gilstate_tstate: None,
        hook_tstate: None,
        main_tstate: None,
        program,
        repeat_from,
    }
}

/// `n` threads of the main interpreter, each with its own thread state.
fn main_interp(threads: Vec<ThreadSpec>) -> Config {
    Config {
        interps: vec![InterpSpec { own_gil: true }],
        tstates: (0..threads.len())
            .map(|_| TstateSpec { interp: 0 })
            .collect(),
        threads,
        shared_main_tstate: None,
        alloc_hook: false,
        spurious_wakeups: false,
        design: Design::CPYTHON,
    }
}

const MUTEX: LockId = LockId::Mutex { gil: 0 };
const SWITCH: LockId = LockId::SwitchMutex { gil: 0 };

/// The uncontended `take_gil` of thread `t` (FORCE_SWITCHING).
fn take(t: u8, switched: bool) -> Vec<Event> {
    vec![
        Event::TakeEnter {
            thread: t,
            exit: false,
        },
        Event::Lock {
            thread: t,
            lock: MUTEX,
        },
        Event::Lock {
            thread: t,
            lock: SWITCH,
        },
        Event::TakeSet {
            thread: t,
            switched,
            woken: None,
        },
        Event::Unlock {
            thread: t,
            lock: SWITCH,
        },
        Event::TakeDone {
            thread: t,
            exit: false,
        },
        Event::Unlock {
            thread: t,
            lock: MUTEX,
        },
    ]
}

/// Thread 0 holds the GIL; thread 1 waits, times out, asks for a drop.
fn holder_and_requesting_waiter() -> Vec<Event> {
    let mut trace = take(0, true);
    trace.extend([
        Event::TakeEnter {
            thread: 1,
            exit: false,
        },
        Event::Lock {
            thread: 1,
            lock: MUTEX,
        },
        Event::Wait {
            thread: 1,
            cond: CondId::Cond { gil: 0 },
        },
        Event::Timeout { thread: 1 },
        Event::Lock {
            thread: 1,
            lock: MUTEX,
        },
        Event::RequestDrop {
            thread: 1,
            holder: 0,
        },
        Event::Wait {
            thread: 1,
            cond: CondId::Cond { gil: 0 },
        },
    ]);
    trace
}

#[test]
fn uncontended_take_sets_every_field() {
    let c = main_interp(vec![thread(0, vec![Op::Take, Op::Compute], None)]);
    let states = replay::<GilSpec>(&c, &take(0, true)).unwrap();
    let s = states.last().unwrap();
    assert!(s.gils[0].locked);
    assert_eq!(s.gils[0].last_holder, Some(0));
    assert_eq!(s.gils[0].switch_number, 1);
    assert!(s.tstates[0].holds_gil);
    assert_eq!(s.threads[0].holding, Some(0));
    assert_eq!(s.threads[0].step, Step::Start);
    // A CPU-bound holder nobody asks to drop has nothing to do.
    let mut events = Vec::new();
    GilSpec::enabled(&c, s, &mut events);
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn forced_switch_hands_the_gil_over() {
    let c = main_interp(vec![
        thread(0, vec![Op::Take, Op::Compute], None),
        thread(1, vec![Op::Take, Op::Compute], None),
    ]);
    let mut trace = holder_and_requesting_waiter();
    trace.extend([
        Event::Check { thread: 0 },
        Event::DropEnter {
            thread: 0,
            final_release: false,
        },
        Event::Lock {
            thread: 0,
            lock: MUTEX,
        },
        Event::DropRelease {
            thread: 0,
            woken: Some(1),
        },
        Event::Unlock {
            thread: 0,
            lock: MUTEX,
        },
        Event::DropTail {
            thread: 0,
            wait: true,
        },
        Event::Lock {
            thread: 0,
            lock: SWITCH,
        },
        // last_holder is still thread state 0: wait for the switch.
        Event::Wait {
            thread: 0,
            cond: CondId::SwitchCond { gil: 0 },
        },
    ]);
    let states = replay::<GilSpec>(&c, &trace).unwrap();
    let s = states.last().unwrap();
    assert!(!s.tstates[0].drop_request, "the dropper clears its bit");
    assert!(s.blocked(0));
    // The waiter, woken by the signal, takes the GIL and wakes the dropper.
    trace.extend([
        Event::Lock {
            thread: 1,
            lock: MUTEX,
        },
        Event::Lock {
            thread: 1,
            lock: SWITCH,
        },
        Event::TakeSet {
            thread: 1,
            switched: true,
            woken: Some(0),
        },
        Event::Unlock {
            thread: 1,
            lock: SWITCH,
        },
        Event::TakeDone {
            thread: 1,
            exit: false,
        },
        Event::Unlock {
            thread: 1,
            lock: MUTEX,
        },
        Event::Lock {
            thread: 0,
            lock: SWITCH,
        },
        Event::Unlock {
            thread: 0,
            lock: SWITCH,
        },
    ]);
    let states = replay::<GilSpec>(&c, &trace).unwrap();
    let s = states.last().unwrap();
    assert_eq!(s.gils[0].last_holder, Some(1));
    assert_eq!(s.gils[0].switch_number, 2);
    assert!(s.gils[0].handed_off);
    // Thread 0 goes back to take_gil and finds it locked.
    assert_eq!(
        s.threads[0].step,
        Step::Take {
            pc: TakePc::Enter,
            then: Then::Resume
        }
    );
}

#[test]
fn a_timeout_after_a_switch_requests_nothing() {
    let c = main_interp(vec![
        thread(0, vec![Op::Take, Op::Run, Op::Drop], Some(0)),
        thread(1, vec![Op::Take, Op::Compute], None),
        thread(2, vec![Op::Take, Op::Compute], None),
    ]);
    let wait = |t: u8| Event::Wait {
        thread: t,
        cond: CondId::Cond { gil: 0 },
    };
    let mut trace = take(0, true);
    for t in [1, 2] {
        trace.extend([
            Event::TakeEnter {
                thread: t,
                exit: false,
            },
            Event::Lock {
                thread: t,
                lock: MUTEX,
            },
            wait(t),
        ]);
    }
    trace.extend([
        // Thread 0 blocks: drops, and the signal wakes thread 1.
        Event::Leave { thread: 0 },
        Event::DropEnter {
            thread: 0,
            final_release: false,
        },
        Event::Lock {
            thread: 0,
            lock: MUTEX,
        },
        Event::DropRelease {
            thread: 0,
            woken: Some(1),
        },
        Event::Unlock {
            thread: 0,
            lock: MUTEX,
        },
        Event::DropTail {
            thread: 0,
            wait: false,
        },
        Event::Lock {
            thread: 1,
            lock: MUTEX,
        },
        Event::Lock {
            thread: 1,
            lock: SWITCH,
        },
        Event::TakeSet {
            thread: 1,
            switched: true,
            woken: None,
        },
        Event::Unlock {
            thread: 1,
            lock: SWITCH,
        },
        Event::TakeDone {
            thread: 1,
            exit: false,
        },
        Event::Unlock {
            thread: 1,
            lock: MUTEX,
        },
        // Thread 2 still waits with the switch number it saved before.
        Event::Timeout { thread: 2 },
        Event::Lock {
            thread: 2,
            lock: MUTEX,
        },
        // switch_number moved since the wait began: no request.
        wait(2),
    ]);
    let states = replay::<GilSpec>(&c, &trace).unwrap();
    assert!(
        states
            .last()
            .unwrap()
            .tstates
            .iter()
            .all(|t| !t.drop_request)
    );
    // Without the switch, the same timeout asks the holder to drop.
    let mut bad = trace.clone();
    bad.truncate(trace.len() - 1);
    bad.push(Event::RequestDrop {
        thread: 2,
        holder: 1,
    });
    assert!(matches!(
        replay::<GilSpec>(&c, &bad),
        Err(TraceError::Rejected { .. })
    ));
}

/// gh-96387: the daemon thread set a request, then finalization makes it
/// exit; the holder handles the request and waits for a switch that never
/// comes.
fn daemon_exit_trace(cleared: Option<u8>) -> Vec<Event> {
    let mut trace = holder_and_requesting_waiter();
    trace.extend([
        Event::Finalize { thread: 0 },
        Event::Timeout { thread: 1 },
        Event::Lock {
            thread: 1,
            lock: MUTEX,
        },
        Event::Unlock {
            thread: 1,
            lock: MUTEX,
        },
        Event::WaiterExit { thread: 1, cleared },
    ]);
    trace
}

fn finalizing_main_and_daemon(design: Design) -> Config {
    let mut c = main_interp(vec![
        thread(0, vec![Op::Take, Op::Finalize, Op::Compute], None),
        thread(1, vec![Op::Take, Op::Compute], None),
    ]);
    c.threads[1].daemon = true;
    c.design = design;
    c
}

#[test]
fn exiting_waiter_that_leaves_its_request_deadlocks_the_holder() {
    let c = finalizing_main_and_daemon(Design {
        exiting_waiter_clears_request: false,
        ..Design::CPYTHON
    });
    let mut trace = daemon_exit_trace(None);
    trace.extend([
        Event::Check { thread: 0 },
        Event::DropEnter {
            thread: 0,
            final_release: false,
        },
        Event::Lock {
            thread: 0,
            lock: MUTEX,
        },
        Event::DropRelease {
            thread: 0,
            woken: None,
        },
        Event::Unlock {
            thread: 0,
            lock: MUTEX,
        },
        Event::DropTail {
            thread: 0,
            wait: true,
        },
        Event::Lock {
            thread: 0,
            lock: SWITCH,
        },
        Event::Wait {
            thread: 0,
            cond: CondId::SwitchCond { gil: 0 },
        },
    ]);
    // The waiter hangs with its request still set ...
    let exit_index = daemon_exit_trace(None).len() - 1;
    let err = replay::<GilSpec>(&c, &trace).unwrap_err();
    assert_eq!(
        err,
        TraceError::Invariant {
            index: exit_index,
            name: "exit_clears_own_request"
        }
    );
    // ... and the holder ends up waiting for a switch nobody will make.
    let mut s = GilSpec::init(&c);
    for e in &trace {
        s = GilSpec::step(&c, &s, e).unwrap();
    }
    assert!(!no_deadlock(&s));
    assert!(s.blocked(0) && s.stopped(1));
    // With the gh-96387 fix the request is gone before the holder looks.
    let fixed = finalizing_main_and_daemon(Design::CPYTHON);
    let states = replay::<GilSpec>(&fixed, &daemon_exit_trace(Some(0))).unwrap();
    let s = states.last().unwrap();
    assert!(!s.tstates[0].drop_request);
    assert_eq!(s.threads[1].step, Step::Hung);
}

#[test]
fn allocating_under_head_lock_self_deadlocks_in_the_hook() {
    let mut c = main_interp(vec![ThreadSpec {
        daemon: false,
        tstate: None,
        gilstate_tstate: Some(0),
        hook_tstate: Some(1),
        main_tstate: None,
        program: vec![Op::NewTstate, Op::Take, Op::DeleteTstate, Op::Exit],
        repeat_from: None,
    }]);
    c.tstates.push(TstateSpec { interp: 0 });
    c.alloc_hook = true;
    c.design.alloc_before_head_lock = false;
    let head = LockId::Head;
    let trace = vec![
        Event::Lock {
            thread: 0,
            lock: head,
        },
        Event::Alloc {
            thread: 0,
            hook: true,
        },
    ];
    let err = replay::<GilSpec>(&c, &trace).unwrap_err();
    assert_eq!(
        err,
        TraceError::Invariant {
            index: 1,
            name: "no_self_block"
        }
    );
    // Allocating first, the hook creates and deletes its own thread state
    // and the outer creation goes on.
    c.design = Design::CPYTHON;
    let mut trace = vec![
        Event::Alloc {
            thread: 0,
            hook: true,
        },
        Event::Alloc {
            thread: 0,
            hook: false,
        },
        Event::Lock {
            thread: 0,
            lock: head,
        },
        Event::AddTstate {
            thread: 0,
            tstate: 1,
        },
        Event::Unlock {
            thread: 0,
            lock: head,
        },
    ];
    trace.extend(take(0, true));
    trace.extend([
        Event::Lock {
            thread: 0,
            lock: head,
        },
        Event::RemoveTstate {
            thread: 0,
            tstate: 1,
        },
        Event::Unlock {
            thread: 0,
            lock: head,
        },
        Event::DropEnter {
            thread: 0,
            final_release: true,
        },
        Event::Lock {
            thread: 0,
            lock: MUTEX,
        },
        Event::DropRelease {
            thread: 0,
            woken: None,
        },
        Event::Unlock {
            thread: 0,
            lock: MUTEX,
        },
        Event::Lock {
            thread: 0,
            lock: head,
        },
        Event::AddTstate {
            thread: 0,
            tstate: 0,
        },
        Event::Unlock {
            thread: 0,
            lock: head,
        },
    ]);
    let states = replay::<GilSpec>(&c, &trace).unwrap();
    let s = states.last().unwrap();
    assert_eq!(s.threads[0].current, Some(0));
    assert!(s.tstates[0].exists && !s.tstates[1].exists);
    assert_eq!(
        s.gils[0].last_holder,
        Some(1),
        "the hook's thread state held it last"
    );
}

#[test]
fn a_shared_detached_tstate_is_bound_twice() {
    let prog = vec![Op::Take, Op::Drop, Op::BindMain, Op::Take];
    let mut c = Config {
        interps: vec![
            InterpSpec { own_gil: true },
            InterpSpec { own_gil: true },
            InterpSpec { own_gil: true },
        ],
        tstates: vec![
            TstateSpec { interp: 1 },
            TstateSpec { interp: 2 },
            TstateSpec { interp: 0 },
            TstateSpec { interp: 0 },
            TstateSpec { interp: 0 },
        ],
        threads: vec![thread(0, prog.clone(), None), thread(1, prog, None)],
        shared_main_tstate: Some(4),
        alloc_hook: false,
        spurious_wakeups: false,
        design: Design {
            tstate_per_os_thread: false,
            ..Design::CPYTHON
        },
    };
    c.threads[0].main_tstate = Some(2);
    c.threads[1].main_tstate = Some(3);
    let take_own = |t: u8, g: u8| {
        let m = LockId::Mutex { gil: g };
        let sw = LockId::SwitchMutex { gil: g };
        vec![
            Event::TakeEnter {
                thread: t,
                exit: false,
            },
            Event::Lock { thread: t, lock: m },
            Event::Lock {
                thread: t,
                lock: sw,
            },
            Event::TakeSet {
                thread: t,
                switched: true,
                woken: None,
            },
            Event::Unlock {
                thread: t,
                lock: sw,
            },
            Event::TakeDone {
                thread: t,
                exit: false,
            },
            Event::Unlock { thread: t, lock: m },
            Event::DropEnter {
                thread: t,
                final_release: false,
            },
            Event::Lock { thread: t, lock: m },
            Event::DropRelease {
                thread: t,
                woken: None,
            },
            Event::Unlock { thread: t, lock: m },
            Event::DropTail {
                thread: t,
                wait: false,
            },
        ]
    };
    let mut trace = take_own(0, 1);
    trace.extend(take_own(1, 2));
    trace.push(Event::Bind {
        thread: 0,
        tstate: 4,
    });
    trace.push(Event::Bind {
        thread: 1,
        tstate: 4,
    });
    let err = replay::<GilSpec>(&c, &trace).unwrap_err();
    assert_eq!(
        err,
        TraceError::Invariant {
            index: trace.len() - 1,
            name: "tstate_bound_once"
        }
    );
    // Each OS thread with its own main-interpreter thread state: fine.
    c.design = Design::CPYTHON;
    let mut trace = take_own(0, 1);
    trace.extend(take_own(1, 2));
    trace.push(Event::Bind {
        thread: 0,
        tstate: 2,
    });
    trace.push(Event::Bind {
        thread: 1,
        tstate: 3,
    });
    replay::<GilSpec>(&c, &trace).unwrap();
}

/// Every event `enabled` offers is one `step` accepts; a running thread
/// with nothing to do is blocked, or is a CPU-bound holder nobody asked to
/// drop. Random walks over a few configurations.
#[test]
fn enabled_events_are_accepted_and_idle_threads_are_blocked() {
    let mut configs = vec![main_interp(vec![
        thread(0, vec![Op::Take, Op::Run, Op::Drop], Some(0)),
        thread(1, vec![Op::Take, Op::Compute], None),
        thread(2, vec![Op::Take, Op::Run, Op::Drop], Some(0)),
    ])];
    let mut fin = finalizing_main_and_daemon(Design::CPYTHON);
    fin.spurious_wakeups = true;
    fin.threads[0].program = vec![
        Op::Take,
        Op::Run,
        Op::Finalize,
        Op::Run,
        Op::Exit,
        Op::DeleteInterp(0),
    ];
    configs.push(fin);
    let mut no_force = configs[0].clone();
    no_force.design.force_switching = false;
    configs.push(no_force);
    for c in &configs {
        c.validate().unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _walk in 0..50 {
            let mut s = GilSpec::init(c);
            let mut events = Vec::new();
            for _ in 0..400 {
                events.clear();
                GilSpec::enabled(c, &s, &mut events);
                for t in 0..s.threads.len() {
                    let moves = events.iter().filter(|e| e.thread() as usize == t).count();
                    let idle_compute = s.threads[t].step == Step::Start;
                    assert!(
                        moves > 0 || s.stopped(t) || s.blocked(t) || idle_compute,
                        "thread {t} stuck at {:?} in {s:?}",
                        s.threads[t].step
                    );
                }
                if events.is_empty() {
                    break;
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let e = events[(seed % events.len() as u64) as usize];
                s = GilSpec::step(c, &s, &e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
                assert!(mutual_exclusion(&s), "{s:?}");
            }
        }
    }
}

#[test]
fn bad_configs_are_refused_in_one_line() {
    let mut c = main_interp(vec![thread(0, vec![Op::Take], None)]);
    c.threads[0].tstate = Some(7);
    let e = c.validate().unwrap_err();
    assert!(e.contains("thread 0") && !e.contains('\n'), "{e}");
    c.threads.clear();
    assert!(c.validate().is_err());
}
