//! Hand traces through the fork spec: the design CPython ships, and each
//! broken design failing at the step its bug lives in.

use super::*;
use crate::{TraceError, replay};

fn cfg(threads: usize, design: Design) -> Config {
    Config {
        threads,
        gil: false,
        design,
    }
}

const F: u8 = FORKER;

fn child(step: ChildStep) -> Event {
    Event::AfterForkChild { thread: F, step }
}

fn parent(step: ParentStep) -> Event {
    Event::AfterForkParent { thread: F, step }
}

/// The main thread starts thread 1, which attaches.
fn start_worker() -> Vec<Event> {
    vec![
        Event::StartBegin {
            thread: F,
            target: 1,
        },
        Event::StartEnd {
            thread: F,
            target: 1,
        },
        Event::Attach { thread: 1 },
    ]
}

/// `PyOS_BeforeFork` when no other thread has a thread state.
fn before_fork_alone() -> Vec<Event> {
    vec![
        Event::BeforeFork {
            thread: F,
            step: BeforeStep::ImportLock,
        },
        Event::PauseLock {
            thread: F,
            global: true,
        },
        Event::PauseRequest {
            thread: F,
            global: true,
        },
        Event::BeforeFork {
            thread: F,
            step: BeforeStep::HeadLock,
        },
    ]
}

/// `PyOS_BeforeFork` with thread 1 attached: it is asked to stop and
/// suspends at its eval breaker.
fn before_fork_with_worker() -> Vec<Event> {
    vec![
        Event::BeforeFork {
            thread: F,
            step: BeforeStep::ImportLock,
        },
        Event::PauseLock {
            thread: F,
            global: true,
        },
        Event::PauseRequest {
            thread: F,
            global: true,
        },
        Event::Suspend { thread: 1 },
        Event::PausePoll {
            thread: F,
            global: true,
        },
        Event::BeforeFork {
            thread: F,
            step: BeforeStep::HeadLock,
        },
    ]
}

fn fork_to(follow: Process) -> Event {
    Event::Fork { thread: F, follow }
}

fn all_child_steps(d: &Design) -> Vec<Event> {
    d.child_steps().into_iter().map(child).collect()
}

fn last(states: &[State]) -> &State {
    states.last().unwrap()
}

#[test]
fn cpython_child_recovers_and_makes_progress() {
    let c = cfg(2, Design::CPYTHON);
    let mut trace = start_worker();
    trace.extend(before_fork_with_worker());
    trace.push(fork_to(Process::Child));
    trace.extend(all_child_steps(&c.design));
    let states = replay::<Fork>(&c, &trace).unwrap();
    let s = last(&states);
    assert_eq!(s.phase, Phase::Ready);
    assert_eq!((s.head, s.import, s.global), (None, None, Pause::default()));
    assert!(s.threads[1].handle.marked());
    assert_eq!(s.threads[1].os, Os::Lost);
    assert_eq!(s.threads[1].ts, Ts::None);
    assert!(!s.threads[1].slot);

    // Progress: a pause, an import round, a QSBR reclamation and a join of
    // the dead thread's handle, which returns at once.
    trace.extend([
        Event::PauseLock {
            thread: F,
            global: false,
        },
        Event::PauseRequest {
            thread: F,
            global: false,
        },
        Event::PauseStart { thread: F },
        Event::ImportAcquire { thread: F },
        Event::ImportRelease { thread: F },
        Event::Retire { thread: F },
        Event::Quiescent { thread: F },
        Event::Scan {
            thread: F,
            rd_seq: 3,
        },
        Event::Reclaim { thread: F },
        Event::Join {
            thread: F,
            target: 1,
        },
    ]);
    let states = replay::<Fork>(&c, &trace).unwrap();
    assert_eq!(
        last(&states).goals,
        goal::PAUSED | goal::IMPORTED | goal::RECLAIMED | goal::JOINED_DEAD
    );
}

#[test]
fn child_starts_and_joins_a_thread_never_started_before_the_fork() {
    let c = cfg(2, Design::CPYTHON);
    let mut trace = before_fork_alone();
    trace.push(fork_to(Process::Child));
    trace.extend(all_child_steps(&c.design));
    trace.extend([
        Event::StartBegin {
            thread: F,
            target: 1,
        },
        Event::StartEnd {
            thread: F,
            target: 1,
        },
        Event::Attach { thread: 1 },
        Event::ExitStart { thread: 1 },
        Event::ExitUnlink { thread: 1 },
        Event::ExitDone { thread: 1 },
        Event::Join {
            thread: F,
            target: 1,
        },
    ]);
    let states = replay::<Fork>(&c, &trace).unwrap();
    let s = last(&states);
    assert_eq!(s.goals, goal::STARTED | goal::JOINED_NEW);
    assert_eq!(s.threads[1].os, Os::Released);

    // gh-134381: before PR 134514 the never-started handle was marked done
    // in the child, and starting it failed.
    let old = cfg(
        2,
        Design {
            keep_not_started_handles: false,
            ..Design::CPYTHON
        },
    );
    let err = replay::<Fork>(&old, &trace).unwrap_err();
    let at = before_fork_alone().len() + 1 + old.design.child_steps().len();
    assert!(
        matches!(&err, TraceError::Rejected { index, reason } if *index == at && reason.contains("already started")),
        "{err}"
    );
}

#[test]
fn parent_restarts_the_world() {
    let c = cfg(2, Design::CPYTHON);
    let mut trace = start_worker();
    trace.extend(before_fork_with_worker());
    trace.push(fork_to(Process::Parent));
    // The worker is suspended until the parent restarts the world.
    let states = replay::<Fork>(&c, &trace).unwrap();
    assert_eq!(last(&states).threads[1].ts, Ts::Suspended);
    let mut early = trace.clone();
    early.push(Event::Attach { thread: 1 });
    assert!(replay::<Fork>(&c, &early).is_err());

    trace.extend([
        parent(ParentStep::HeadUnlock),
        parent(ParentStep::StartWorldAll),
        parent(ParentStep::ImportRelease),
        Event::Attach { thread: 1 },
    ]);
    let states = replay::<Fork>(&c, &trace).unwrap();
    let s = last(&states);
    assert_eq!(s.phase, Phase::Ready);
    let resumed = SOMETIMES
        .iter()
        .find(|g| g.name == "parent_resumed")
        .unwrap();
    assert!((resumed.holds)(s));
}

/// Thread 1 starts, finishes and is never joined; the program drops its
/// handle object, which stays garbage until a collection.
fn exited_unjoined_garbage_handle() -> Vec<Event> {
    let mut trace = start_worker();
    trace.extend([
        Event::ExitStart { thread: 1 },
        Event::ExitUnlink { thread: 1 },
        Event::ExitDone { thread: 1 },
        Event::DropHandle {
            thread: F,
            target: 1,
        },
    ]);
    trace.extend(before_fork_alone());
    trace.push(fork_to(Process::Child));
    trace
}

#[test]
fn gh_115035_handle_freed_before_it_is_marked() {
    // CPython: the handle is marked first, so freeing it later does not
    // touch the OS thread.
    let c = cfg(2, Design::CPYTHON);
    let mut trace = exited_unjoined_garbage_handle();
    trace.extend(all_child_steps(&c.design));
    trace.push(Event::Gc {
        thread: F,
        target: 1,
    });
    let states = replay::<Fork>(&c, &trace).unwrap();
    assert!(last(&states).threads[1].handle.freed());
    assert!(!last(&states).touched_lost_thread);

    // Marked by the first after-fork hook: clearing the dead thread states
    // (destructors, refcount merges) can free the handle first.
    let late = cfg(
        2,
        Design {
            mark_handles_before_code: false,
            ..Design::CPYTHON
        },
    );
    let mut trace = exited_unjoined_garbage_handle();
    let prefix = trace.len();
    trace.extend(
        late.design
            .child_steps()
            .into_iter()
            .take_while(|s| *s != ChildStep::ClearThreadStates)
            .map(child),
    );
    trace.push(child(ChildStep::ClearThreadStates));
    let err = replay::<Fork>(&late, &trace).unwrap_err();
    assert_eq!(
        err,
        TraceError::Invariant {
            index: trace.len() - 1,
            name: "child_dead_handles_marked_before_code"
        }
    );
    assert_eq!(prefix + 6, trace.len());

    // The collection then detaches an OS thread the child does not have.
    let mut s = Fork::init(&late);
    for e in &trace {
        s = Fork::step(&late, &s, e).unwrap();
    }
    let s = Fork::step(
        &late,
        &s,
        &Event::Gc {
            thread: F,
            target: 1,
        },
    )
    .unwrap();
    assert!(s.touched_lost_thread);
}

#[test]
fn bpo_30395_list_copied_mid_update() {
    // Thread 1 finishes while the world is being stopped (its thread state
    // is gone, so the pause no longer waits for it) and is half-way through
    // the handle lists under HEAD_LOCK when fork() copies memory.
    let mut trace = start_worker();
    trace.extend([
        Event::BeforeFork {
            thread: F,
            step: BeforeStep::ImportLock,
        },
        Event::PauseLock {
            thread: F,
            global: true,
        },
        Event::PauseRequest {
            thread: F,
            global: true,
        },
        Event::ExitStart { thread: 1 },
        Event::PausePoll {
            thread: F,
            global: true,
        },
        Event::ExitUnlink { thread: 1 },
    ]);
    // CPython: HEAD_LOCK is taken before fork(), so the fork waits.
    let c = cfg(2, Design::CPYTHON);
    let mut cp = trace.clone();
    cp.push(Event::BeforeFork {
        thread: F,
        step: BeforeStep::HeadLock,
    });
    assert!(matches!(
        replay::<Fork>(&c, &cp),
        Err(TraceError::Rejected { .. })
    ));

    let d = cfg(
        2,
        Design {
            hold_head_lock_across_fork: false,
            ..Design::CPYTHON
        },
    );
    trace.push(fork_to(Process::Child));
    assert_eq!(
        replay::<Fork>(&d, &trace).unwrap_err(),
        TraceError::Invariant {
            index: trace.len() - 1,
            name: "child_lists_consistent"
        }
    );

    // Without re-initialised locks as well (3.6), the child's first use of
    // HEAD_LOCK waits forever for the dead thread.
    let old = cfg(
        2,
        Design {
            hold_head_lock_across_fork: false,
            reinit_locks_in_child: false,
            ..Design::CPYTHON
        },
    );
    let mut s = Fork::init(&old);
    for e in &trace {
        s = Fork::step(&old, &s, e).unwrap();
    }
    for step in old.design.child_steps() {
        s = Fork::step(&old, &s, &child(step)).unwrap();
        if s.blocked.is_some() {
            assert_eq!(step, ChildStep::RemoveThreadStates);
            break;
        }
    }
    assert_eq!(s.blocked, Some((F, Blocker::HeadLock)));
}

#[test]
fn no_pause_leaves_a_dead_thread_online_and_a_dead_request() {
    let d = cfg(
        2,
        Design {
            stop_world_across_fork: false,
            ..Design::CPYTHON
        },
    );
    // Thread 1 is attached (QSBR seq 1) when fork() copies memory.
    let mut trace = start_worker();
    trace.extend([
        Event::BeforeFork {
            thread: F,
            step: BeforeStep::ImportLock,
        },
        Event::BeforeFork {
            thread: F,
            step: BeforeStep::HeadLock,
        },
        fork_to(Process::Child),
    ]);
    assert_eq!(
        replay::<Fork>(&d, &trace).unwrap_err(),
        TraceError::Invariant {
            index: trace.len() - 1,
            name: "child_no_dead_qsbr_seq"
        }
    );

    // Thread 1 is in the middle of a GC pause that counts the forker.
    let mut trace = start_worker();
    trace.extend([
        Event::PauseLock {
            thread: 1,
            global: false,
        },
        Event::PauseRequest {
            thread: 1,
            global: false,
        },
        Event::BeforeFork {
            thread: F,
            step: BeforeStep::ImportLock,
        },
        Event::BeforeFork {
            thread: F,
            step: BeforeStep::HeadLock,
        },
        fork_to(Process::Child),
    ]);
    assert_eq!(
        replay::<Fork>(&d, &trace).unwrap_err(),
        TraceError::Invariant {
            index: trace.len() - 1,
            name: "child_no_dead_pause"
        }
    );
    // The forker has PLEASE_STOP set; at its first eval-breaker check it
    // suspends for a requester that will never restart the world.
    let mut s = Fork::init(&d);
    for e in trace.iter().chain(&all_child_steps(&d.design)) {
        s = Fork::step(&d, &s, e).unwrap();
    }
    let s = Fork::step(&d, &s, &Event::Suspend { thread: F }).unwrap();
    assert_eq!(s.blocked, Some((F, Blocker::SuspendedByDeadPause)));

    // With the pause before fork(), the forker's global pause cannot start
    // while thread 1's pause holds the read-write mutex.
    let c = cfg(2, Design::CPYTHON);
    let mut cp: Vec<Event> = trace[..6].to_vec();
    cp.push(Event::PauseLock {
        thread: F,
        global: true,
    });
    assert!(matches!(
        replay::<Fork>(&c, &cp),
        Err(TraceError::Rejected { index: 6, .. })
    ));
}

#[test]
fn runtime_mutex_held_by_a_dead_thread_without_reinit() {
    let mut trace = start_worker();
    trace.push(Event::MutexLock { thread: 1 });
    trace.extend(before_fork_with_worker());
    trace.push(fork_to(Process::Child));
    let c = cfg(2, Design::CPYTHON);
    let mut cp = trace.clone();
    cp.extend(all_child_steps(&c.design));
    cp.extend([
        Event::MutexLock { thread: F },
        Event::MutexUnlock { thread: F },
    ]);
    replay::<Fork>(&c, &cp).unwrap();

    let d = cfg(
        2,
        Design {
            reinit_locks_in_child: false,
            ..Design::CPYTHON
        },
    );
    trace.push(child(d.design.child_steps()[0]));
    assert_eq!(
        replay::<Fork>(&d, &trace).unwrap_err(),
        TraceError::Invariant {
            index: trace.len() - 1,
            name: "child_locks_free_or_live"
        }
    );
}

#[test]
fn clearing_before_the_restart_runs_code_in_a_stopped_world() {
    let d = cfg(
        1,
        Design {
            start_world_before_clearing: false,
            ..Design::CPYTHON
        },
    );
    let mut trace = before_fork_alone();
    trace.push(fork_to(Process::Child));
    trace.extend(all_child_steps(&d.design));
    let at = trace
        .iter()
        .position(|e| *e == child(ChildStep::ClearThreadStates))
        .unwrap();
    assert_eq!(
        replay::<Fork>(&d, &trace).unwrap_err(),
        TraceError::Invariant {
            index: at,
            name: "no_code_while_world_stopped"
        }
    );
}

#[test]
fn gil_is_recreated_before_the_child_takes_it() {
    let mut c = cfg(1, Design::CPYTHON);
    c.gil = true;
    let mut trace = before_fork_alone();
    trace.push(fork_to(Process::Child));
    trace.extend(all_child_steps(&c.design));
    let states = replay::<Fork>(&c, &trace).unwrap();
    assert_eq!(last(&states).gil, Gil::Held(F));

    c.design.recreate_gil_in_child = false;
    let at = trace
        .iter()
        .position(|e| *e == child(ChildStep::ReinitGil))
        .unwrap();
    assert_eq!(
        replay::<Fork>(&c, &trace[..=at]).unwrap_err(),
        TraceError::Invariant {
            index: at,
            name: "no_wait_forever"
        }
    );
}

#[test]
fn child_steps_follow_the_design() {
    use ChildStep::*;
    assert_eq!(
        Design::CPYTHON.child_steps(),
        vec![
            ReinitLocks,
            MarkHandles,
            QsbrAfterFork,
            ReinitGil,
            RemoveThreadStates,
            StartWorldAll,
            ClearThreadStates,
            ImportReinit
        ]
    );
    let late = Design {
        mark_handles_before_code: false,
        ..Design::CPYTHON
    };
    assert_eq!(late.child_steps().last(), Some(&MarkHandles));
    // Out-of-order steps are refused.
    let c = cfg(1, Design::CPYTHON);
    let mut trace = before_fork_alone();
    trace.extend([fork_to(Process::Child), child(MarkHandles)]);
    assert!(matches!(
        replay::<Fork>(&c, &trace),
        Err(TraceError::Rejected { .. })
    ));
}

#[test]
fn random_walks_keep_the_invariants() {
    // Every event `enabled` offers is one `step` accepts, and on random
    // walks of the shipped design no invariant fails.
    for (threads, gil) in [(2, false), (3, false), (2, true)] {
        let c = Config {
            threads,
            gil,
            design: Design::CPYTHON,
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ threads as u64;
        let mut events = Vec::new();
        for _ in 0..200 {
            let mut s = Fork::init(&c);
            for _ in 0..120 {
                events.clear();
                Fork::enabled(&c, &s, &mut events);
                if events.is_empty() {
                    break;
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let e = events[(seed % events.len() as u64) as usize];
                let next = Fork::step(&c, &s, &e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
                for inv in INVARIANTS {
                    assert!((inv.holds)(&next), "{} after {e:?}: {next:?}", inv.name);
                }
                s = next;
            }
        }
    }
}
