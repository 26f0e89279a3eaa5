//! The named properties of the stop-the-world spec, and the wait-for
//! relation behind `no_deadlock`.

use super::*;

/// Named state invariants.
pub static INVARIANTS: &[Invariant<State>] = &[
    Invariant {
        name: "stopped_world_has_no_other_attached_thread",
        doc: "While the world is stopped for a scope, no thread in that scope other than the requester is ATTACHED.",
        holds: stopped_world_quiet,
    },
    Invariant {
        name: "countdown_nonnegative",
        doc: "No pause's thread countdown is ever negative.",
        holds: |s| s.stw.iter().all(|w| w.countdown >= 0),
    },
    Invariant {
        name: "countdown_matches_threads_to_park",
        doc: "While a pause is requested, its countdown equals the number of live threads in its scope, other than the requester, that are neither parked nor suspended with their decrement done.",
        holds: countdown_matches,
    },
    Invariant {
        name: "pauses_never_overlap",
        doc: "No interpreter is covered by a requested global pause and a requested pause of its own at once.",
        holds: |s| (1..s.stw.len()).all(|i| !(s.stw[0].requested && s.stw[i].requested)),
    },
    Invariant {
        name: "no_deadlock",
        doc: "No non-empty set of live threads is blocked with only threads of the same set able to release them.",
        holds: |s| deadlocked(s) == 0,
    },
];

/// Named transition invariants.
pub static TRANSITION_INVARIANTS: &[TransitionInvariant<State>] = &[TransitionInvariant {
    name: "only_pause_end_unsuspends",
    doc: "A thread leaves SUSPENDED only in the step that ends a pause covering it (start_the_world) or that marks it SHUTTING_DOWN at finalization.",
    holds: only_pause_end_unsuspends,
}];

/// Liveness, checked under the fairness the model declares
/// (`models/src/checker/stw.rs`): every request eventually stops the world,
/// and every suspended thread is eventually released and attaches again
/// (or is removed by finalization, whose threads are meant to hang). Pause requests are
/// bounded per thread, so a run cannot postpone the second goal forever by
/// pausing again and again.
pub static LIVENESS: &[LeadsTo<State>] = &[
    LeadsTo {
        name: "global_pause_stops_world",
        doc: "A requested global pause eventually stops the world.",
        p: |s| requested_not_stopped(s, 0),
        q: |s| s.stw[0].world_stopped,
    },
    LeadsTo {
        name: "interp0_pause_stops_world",
        doc: "A requested pause of interpreter 0 eventually stops its world.",
        p: |s| requested_not_stopped(s, 1),
        q: |s| s.stw[1].world_stopped,
    },
    LeadsTo {
        name: "interp1_pause_stops_world",
        doc: "A requested pause of interpreter 1 eventually stops its world.",
        p: |s| requested_not_stopped(s, 2),
        q: |s| s.stw.get(2).is_none_or(|w| w.world_stopped),
    },
    LeadsTo {
        name: "suspended_thread_0_resumes",
        doc: "Thread 0, once SUSPENDED, eventually attaches again, waits DETACHED for a lock, or leaves its interpreter's thread list.",
        p: |s| suspended(s, 0),
        q: |s| resumed_or_gone(s, 0),
    },
    LeadsTo {
        name: "suspended_thread_1_resumes",
        doc: "Thread 1, once SUSPENDED, eventually attaches again, waits DETACHED for a lock, or leaves its interpreter's thread list.",
        p: |s| suspended(s, 1),
        q: |s| resumed_or_gone(s, 1),
    },
    LeadsTo {
        name: "suspended_thread_2_resumes",
        doc: "Thread 2, once SUSPENDED, eventually attaches again, waits DETACHED for a lock, or leaves its interpreter's thread list.",
        p: |s| suspended(s, 2),
        q: |s| resumed_or_gone(s, 2),
    },
];

fn requested_not_stopped(s: &State, i: usize) -> bool {
    s.stw
        .get(i)
        .is_some_and(|w| w.requested && !w.world_stopped)
}

fn suspended(s: &State, t: usize) -> bool {
    s.threads
        .get(t)
        .is_some_and(|th| th.life == Life::Alive && th.state == TState::Suspended)
}

/// Released by the pause: attached again, or back to waiting DETACHED on
/// the lock it was parked on (when that lock wakes it is the lock's
/// business: the spec lets an unlock wake any waiter, where CPython's
/// parking lot is FIFO, so starvation there would be the model's, not
/// CPython's), or gone.
fn resumed_or_gone(s: &State, t: usize) -> bool {
    s.threads.get(t).is_none_or(|th| {
        th.life != Life::Alive
            || th.state == TState::Attached
            || (th.state == TState::Detached && matches!(th.at, At::Parked(_)))
    })
}

/// Reachability goals: without them a model whose invariants hold could be
/// holding vacuously. In name order, the order reports list them in.
pub static SOMETIMES: &[Invariant<State>] = &[
    Invariant {
        name: "interp_pauses_overlap",
        doc: "Two interpreters' worlds are stopped at the same time by their own pauses.",
        holds: |s| s.stw.len() > 2 && s.stw[1..].iter().all(|w| w.world_stopped),
    },
    Invariant {
        name: "lock_handed_to_suspended_thread",
        doc: "An object's lock is owned, through a fairness hand-off, by a SUSPENDED thread.",
        holds: |s| {
            s.objects
                .iter()
                .any(|o| o.is_some_and(|u| s.threads[u as usize].state == TState::Suspended))
        },
    },
    Invariant {
        name: "thread_created_during_pause",
        doc: "A thread state is created while a pause covering its interpreter is requested.",
        holds: |s| s.threads.iter().any(|t| t.created_in_pause),
    },
    Invariant {
        name: "thread_hung_at_shutdown",
        doc: "A thread removed by finalization attaches and hangs.",
        holds: |s| s.threads.iter().any(|t| t.life == Life::Hung),
    },
    Invariant {
        name: "thread_suspended_itself",
        doc: "An attached thread sees PLEASE_STOP and suspends itself at an eval-breaker check.",
        holds: |s| s.threads.iter().any(|t| matches!(t.job, Job::Countdown(_))),
    },
    Invariant {
        name: "world_stopped_globally",
        doc: "A global pause stops the world.",
        holds: |s| s.stw[0].world_stopped,
    },
];

fn stopped_world_quiet(s: &State) -> bool {
    [Scope::Global]
        .into_iter()
        .chain((0..s.stw.len() as u8 - 1).map(Scope::Interp))
        .filter(|&sc| s.stw(sc).world_stopped)
        .all(|sc| {
            (0..s.threads.len()).all(|u| {
                !s.in_scope(u, sc)
                    || s.stw(sc).requester == Some(u as u8)
                    || s.threads[u].state != TState::Attached
            })
        })
}

fn countdown_matches(s: &State) -> bool {
    [Scope::Global]
        .into_iter()
        .chain((0..s.stw.len() as u8 - 1).map(Scope::Interp))
        .all(|sc| {
            let stw = s.stw(sc);
            if !stw.requested {
                return true;
            }
            let to_park = (0..s.threads.len())
                .filter(|&u| {
                    let th = &s.threads[u];
                    s.in_scope(u, sc)
                        && stw.requester != Some(u as u8)
                        && !(th.state == TState::Suspended && th.job != Job::Countdown(sc))
                })
                .count();
            stw.countdown >= 0 && stw.countdown as usize == to_park
        })
}

fn only_pause_end_unsuspends(a: &State, b: &State) -> bool {
    a.threads.iter().zip(&b.threads).all(|(x, y)| {
        let ended = [Scope::Global, Scope::Interp(x.interp)]
            .into_iter()
            .any(|sc| a.stw(sc).requested && !b.stw(sc).requested);
        x.state != TState::Suspended
            || y.state == TState::Suspended
            || ended
            || (y.state == TState::ShuttingDown && !a.finalized && b.finalized)
    })
}

/// Whether thread `u` can still take steps that release others (a live
/// thread with work left).
fn can_act(s: &State, u: usize) -> bool {
    let th = &s.threads[u];
    th.life == Life::Alive && th.job != Job::Done
}

/// Bitmask of the live threads other than `t` for which `pred` holds.
fn others(s: &State, t: usize, pred: impl Fn(&Thread) -> bool) -> u8 {
    (0..s.threads.len())
        .filter(|&u| u != t && can_act(s, u) && pred(&s.threads[u]))
        .fold(0, |m, u| m | 1 << u)
}

/// Whether `park_detached_threads` by requester `t` would change nothing:
/// no thread in scope to park and every attached one already asked to stop.
fn scan_is_idle(s: &State, t: usize, scope: Scope) -> bool {
    (0..s.threads.len()).all(|u| {
        let th = &s.threads[u];
        !s.in_scope(u, scope)
            || match th.state {
                TState::Detached => false,
                TState::Attached => u == t || th.please_stop,
                _ => true,
            }
    })
}

/// If thread `t` is blocked, the bitmask of the threads whose steps can
/// release it; `None` when `t` can take a step that changes the state by
/// itself, or is not a live thread.
///
/// Blocked means: parked on a PyMutex or the read-write mutex (released by
/// the owner, or by whoever takes and drops a free one), waiting to attach
/// while SUSPENDED when the design makes that wait (released by the
/// requesters of the pauses covering it), or a requester of the attached
/// design waiting on an unset stop event whose next scan would change
/// nothing (released by the threads of its scope that can still decrement
/// its countdown). A detaching requester parked on its stop event can
/// always time out and is never counted as blocked, so its own timeout
/// loops are not judged here.
pub fn blocked_on(s: &State, t: usize) -> Option<u8> {
    let th = &s.threads[t];
    if !can_act(s, t) {
        return None;
    }
    match th.at {
        At::Parked(Lock::StopEvent(_)) => None,
        At::Parked(lock @ (Lock::Object(_) | Lock::StwMutex(_))) => {
            let owner = match lock {
                Lock::Object(o) => s.objects[o as usize],
                Lock::StwMutex(sc) => s.stw(sc).mutex,
                _ => unreachable!(),
            };
            Some(match owner {
                Some(u) => 1 << u,
                None => others(s, t, |o| o.at != At::Parked(lock)),
            })
        }
        At::Parked(Lock::RwMutex) => {
            let holders = s.rw.readers | s.rw.writer.map_or(0, |u| 1 << u);
            Some(if holders != 0 {
                holders
            } else {
                others(s, t, |o| o.at != At::Parked(Lock::RwMutex))
            })
        }
        At::Attach if th.state == TState::Suspended && s.design.suspended_blocks_attach => Some(
            s.pauses_covering(th.interp)
                .filter_map(|sc| s.stw(sc).requester)
                .fold(0, |m, u| m | 1 << u),
        ),
        At::Go => match th.job {
            Job::Stw {
                scope,
                phase: Phase::Wait,
                ..
            } if s.design.requester_stays_attached
                && !s.stw(scope).stop_event
                && scan_is_idle(s, t, scope) =>
            {
                Some(others(s, t, |o| {
                    scope.covers(o.interp)
                        && (o.state != TState::Suspended || o.job == Job::Countdown(scope))
                }))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The deadlocked threads, as a bitmask: the largest set of blocked threads
/// each of which only threads of the set (or threads that can no longer
/// act) can release. Empty when no thread is deadlocked.
pub fn deadlocked(s: &State) -> u8 {
    let n = s.threads.len();
    let wakers: Vec<Option<u8>> = (0..n).map(|t| blocked_on(s, t)).collect();
    let mut set = wakers
        .iter()
        .enumerate()
        .filter(|(_, w)| w.is_some())
        .fold(0u8, |m, (t, _)| m | 1 << t);
    loop {
        // A blocked thread escapes when some thread that can release it
        // is neither blocked in the set nor unable to act.
        let free = (0..n)
            .filter(|&u| can_act(s, u) && set & (1 << u) == 0)
            .fold(0u8, |m, u| m | 1 << u);
        let escaped = wakers
            .iter()
            .enumerate()
            .filter(|(t, w)| set & (1 << t) != 0 && w.is_some_and(|w| w & free != 0))
            .fold(0u8, |m, (t, _)| m | 1 << t);
        if escaped == 0 {
            return set;
        }
        set &= !escaped;
    }
}
