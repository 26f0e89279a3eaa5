//! The lock-step abstraction of the QSBR reference, on spec states: which
//! states a reference can reach when each operation runs to completion
//! before the next starts, and why the model's other states need more.
//!
//! Two reference operations take several spec events with no blocking
//! point between them:
//!
//! - `process_delayed` (`process_queue`, then `process_interp_queue`):
//!   it frees its own queue's head while the goal is reached, scanning
//!   (`_Py_qsbr_poll`) when the cached `rd_seq` is behind, stops at the first
//!   unreached goal, then does the same for the interpreter's queue when
//!   that has work. The spec frees one item per event, so a thread may free
//!   one item and stop while the next one's goal is reached.
//! - `unregister` (`_Py_qsbr_unregister`): `UnregisterLock` and
//!   `UnregisterRelease` are taken back to back under `shared->mutex`. The
//!   spec lets other threads step between them.
//!
//! [`lockstep_states`] searches the spec with either operation kept whole
//! or split into its events (and with `process_delayed` allowed to skip
//! the interpreter's queue, as it does when that queue's lock is
//! contended); [`interleaved_states`] lets other threads step inside both
//! operations, as real threads can. [`Classifier::classify`] names, for a
//! state the lock-step reference missed, what it takes to get there
//! ([`Missed`]).

use std::collections::{HashSet, VecDeque};

use cpyrt_spec::Spec;
use cpyrt_spec::qsbr::{Config, Event, Qsbr, State};

/// Which multi-event operations the search may interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Splits {
    /// Each free is its own branching point.
    pub process: bool,
    /// Other threads may step while the mutex is held in unregister.
    pub unregister: bool,
    /// `process_delayed` may skip the interpreter's queue although it has
    /// work (its `try_lock` failed: another thread holds the queue's lock).
    pub interp_skip: bool,
}

impl Splits {
    /// The lock-step reference: every operation whole.
    pub const NONE: Splits = Splits {
        process: false,
        unregister: false,
        interp_skip: false,
    };
}

/// The events `process_delayed` of thread `t` takes from `s` (mirrors
/// `QsbrThread::process_delayed` and `process_queue` in the reference);
/// `with_interp` false when its `try_lock` of the interpreter's queue fails.
pub fn process_events(cfg: &Config, s: &State, t: u8, with_interp: bool) -> Vec<Event> {
    let mut out = Vec::new();
    let mut s = s.clone();
    for interp in [false, true] {
        if interp && !with_interp {
            break;
        }
        loop {
            let queue = if interp {
                &s.interp_queue
            } else {
                &s.threads[t as usize].queue
            };
            let Some(head) = queue.first().copied() else {
                break;
            };
            if head.goal > s.rd_seq {
                // _Py_qsbr_poll scans when the cached rd_seq is behind.
                let scan = Event::Scan {
                    thread: t,
                    rd_seq: s.rd_seq.max(s.scan_min()),
                };
                s = Qsbr::step(cfg, &s, &scan).expect("a scan is always accepted");
                out.push(scan);
                if head.goal > s.rd_seq {
                    break;
                }
            }
            let free = if interp {
                Event::FreeInterp {
                    thread: t,
                    object: head.object,
                }
            } else {
                Event::FreeOwn {
                    thread: t,
                    object: head.object,
                }
            };
            s = Qsbr::step(cfg, &s, &free).expect("a reached head is freed");
            out.push(free);
        }
    }
    out
}

/// The event sequences one branching step may take from `s`.
fn operations(cfg: &Config, s: &State, splits: Splits) -> Vec<Vec<Event>> {
    let mut enabled = Vec::new();
    Qsbr::enabled(cfg, s, &mut enabled);
    let mut out: Vec<Vec<Event>> = Vec::new();
    for e in enabled {
        let op = match e {
            Event::FreeOwn { thread, .. } | Event::FreeInterp { thread, .. } if !splits.process => {
                if splits.interp_skip {
                    let own = process_events(cfg, s, thread, false);
                    if !own.is_empty() && !out.contains(&own) {
                        out.push(own);
                    }
                }
                process_events(cfg, s, thread, true)
            }
            Event::UnregisterLock { thread } if !splits.unregister => {
                vec![e, Event::UnregisterRelease { thread }]
            }
            _ => vec![e],
        };
        if !out.contains(&op) {
            out.push(op);
        }
    }
    out
}

/// Every spec state visited (branching points and the states inside
/// multi-event operations) when only the operations `splits` names may be
/// interrupted.
pub fn lockstep_states(cfg: &Config, splits: Splits) -> HashSet<State> {
    let init = Qsbr::init(cfg);
    let mut visited = HashSet::from([init.clone()]);
    let mut branched = HashSet::from([init.clone()]);
    let mut todo = VecDeque::from([init]);
    while let Some(s) = todo.pop_front() {
        for op in operations(cfg, &s, splits) {
            let mut n = s.clone();
            for e in &op {
                n = Qsbr::step(cfg, &n, e)
                    .unwrap_or_else(|r| panic!("lock-step {op:?} from {s:?}: {r}"));
                visited.insert(n.clone());
            }
            if branched.insert(n.clone()) {
                todo.push_back(n);
            }
        }
    }
    visited
}

/// Where a thread is inside `process_delayed` in [`interleaved_states`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Idle,
    Own,
    Interp,
}

/// The next step of a thread inside `process_delayed` (mirrors
/// `process_queue`: poll the head, scanning when the cached `rd_seq` is
/// behind, free it if reached, else stop), and the phase after it.
fn process_next(s: &State, t: u8, phase: Phase) -> (Option<Event>, Phase) {
    let interp = phase == Phase::Interp;
    let (head, stop) = if interp {
        (s.interp_queue.first(), Phase::Idle)
    } else {
        (s.threads[t as usize].queue.first(), Phase::Interp)
    };
    let Some(head) = head.copied() else {
        return (None, stop);
    };
    if head.goal <= s.rd_seq {
        let free = if interp {
            Event::FreeInterp {
                thread: t,
                object: head.object,
            }
        } else {
            Event::FreeOwn {
                thread: t,
                object: head.object,
            }
        };
        return (Some(free), phase);
    }
    let rd_seq = s.rd_seq.max(s.scan_min());
    let next = if head.goal <= rd_seq { phase } else { stop };
    (Some(Event::Scan { thread: t, rd_seq }), next)
}

/// Every spec state the reference can reach under real concurrency with
/// its operations as they are: other threads step between the events of a
/// `process_delayed` (which itself never stops before an unreached goal and
/// never skips the interpreter's queue) and inside unregister's critical
/// section.
pub fn interleaved_states(cfg: &Config) -> HashSet<State> {
    let init = (Qsbr::init(cfg), vec![Phase::Idle; cfg.threads]);
    let mut visited = HashSet::from([init.0.clone()]);
    let mut seen = HashSet::from([init.clone()]);
    let mut todo = VecDeque::from([init]);
    let mut enabled = Vec::new();
    while let Some((s, phases)) = todo.pop_front() {
        let mut next: Vec<(State, Vec<Phase>)> = Vec::new();
        enabled.clear();
        Qsbr::enabled(cfg, &s, &mut enabled);
        for e in &enabled {
            let t = e.thread() as usize;
            if phases[t] != Phase::Idle {
                continue;
            }
            let mut p = phases.clone();
            let n = match e {
                Event::FreeOwn { .. } | Event::FreeInterp { .. } => {
                    p[t] = Phase::Own;
                    s.clone()
                }
                _ => Qsbr::step(cfg, &s, e).expect("an enabled event is accepted"),
            };
            next.push((n, p));
        }
        for (t, &phase) in phases.iter().enumerate() {
            if phase == Phase::Idle {
                continue;
            }
            let (event, after) = process_next(&s, t as u8, phase);
            let mut p = phases.clone();
            p[t] = after;
            let n = match event {
                Some(e) => Qsbr::step(cfg, &s, &e)
                    .unwrap_or_else(|r| panic!("inside process_delayed, {e:?}: {r}")),
                None => s.clone(),
            };
            next.push((n, p));
        }
        for n in next {
            visited.insert(n.0.clone());
            if seen.insert(n.clone()) {
                todo.push_back(n);
            }
        }
    }
    visited
}

/// Why a model state is out of the lock-step reference's reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Missed {
    /// Reached once another thread may step inside a multi-event operation:
    /// between the frees (and polls) of a `process_delayed`, or while a
    /// thread holds `shared->mutex` between `UnregisterLock` and
    /// `UnregisterRelease`. The lock-step driver never interleaves there;
    /// a real schedule can (the shuttle run reaches some of these).
    Interleaved,
    /// Reached once `process_delayed` may skip the interpreter's queue
    /// although it has work. The reference does that only when its
    /// `try_lock` fails, i.e. while another thread holds that queue's lock
    /// (abandoning or processing it).
    InterpSkipped,
    /// Reached only if a thread stops `process_delayed` while the head of
    /// the queue it is processing has a reached goal, and then takes another
    /// step. The reference never does, in any schedule: `process_queue`
    /// frees until a poll finds an unreached goal (and `rd_seq` only grows),
    /// and moves on to the interpreter's queue without returning.
    StoppedProcess,
    /// Reached by none of the searches: unexplained.
    Unexplained,
}

/// The searches [`Classifier::classify`] consults.
pub struct Classifier {
    interleaved: HashSet<State>,
    interp_skip: HashSet<State>,
    split: HashSet<State>,
}

impl Classifier {
    pub fn new(cfg: &Config) -> Classifier {
        Classifier {
            interleaved: interleaved_states(cfg),
            interp_skip: lockstep_states(
                cfg,
                Splits {
                    interp_skip: true,
                    ..Splits::NONE
                },
            ),
            split: lockstep_states(
                cfg,
                Splits {
                    process: true,
                    unregister: true,
                    interp_skip: false,
                },
            ),
        }
    }

    pub fn classify(&self, s: &State) -> Missed {
        if self.interleaved.contains(s) {
            Missed::Interleaved
        } else if self.interp_skip.contains(s) {
            Missed::InterpSkipped
        } else if self.split.contains(s) {
            Missed::StoppedProcess
        } else {
            Missed::Unexplained
        }
    }
}
