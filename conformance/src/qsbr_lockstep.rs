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
//! or split into its events (and with `process_delayed` allowed to skip the
//! interpreter's queue, as it does when that queue's lock is contended), and [`classify`] names, for a state the
//! reference missed, which split it needs.

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

/// Why a model state is out of the lock-step reference's reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Missed {
    /// Reached once `process_delayed` may skip the interpreter's queue
    /// although it has work. The reference does that only when its
    /// `try_lock` fails, i.e. while another thread holds that queue's lock
    /// (abandoning or processing it): never in lock-step.
    InterpSkipped,
    /// Reached once a thread may stop `process_delayed` after a free while
    /// the next head's goal is reached. The reference never does:
    /// `process_queue` frees until an unreached goal, and
    /// `process_interp_queue` runs right after it, skipping only when another
    /// thread holds the interpreter queue's lock.
    PartialProcess,
    /// Reached once another thread may step while one holds
    /// `shared->mutex` inside unregister. The reference takes both events
    /// back to back; only a preemption between them (shuttle) gets there.
    InsideUnregister,
    /// Needs both.
    Both,
    /// Reached by none of the three searches: unexplained.
    Unexplained,
}

/// The three searches [`classify`] consults.
pub struct Classifier {
    interp_skip: HashSet<State>,
    process: HashSet<State>,
    unregister: HashSet<State>,
    both: HashSet<State>,
}

impl Classifier {
    pub fn new(cfg: &Config) -> Classifier {
        let search = |process, unregister| {
            lockstep_states(
                cfg,
                Splits {
                    process,
                    unregister,
                    interp_skip: false,
                },
            )
        };
        Classifier {
            interp_skip: lockstep_states(
                cfg,
                Splits {
                    interp_skip: true,
                    ..Splits::NONE
                },
            ),
            process: search(true, false),
            unregister: search(false, true),
            both: search(true, true),
        }
    }

    pub fn classify(&self, s: &State) -> Missed {
        if self.interp_skip.contains(s) {
            Missed::InterpSkipped
        } else if self.process.contains(s) {
            Missed::PartialProcess
        } else if self.unregister.contains(s) {
            Missed::InsideUnregister
        } else if self.both.contains(s) {
            Missed::Both
        } else {
            Missed::Unexplained
        }
    }
}
