//! The function-version spec's pause events, derived from the
//! stop-the-world runtime's log.
//!
//! The function-version spec abstracts the pause to one requester at a
//! time, attached threads suspending at safe points, and detached threads
//! that may not attach while a pause is requested. The stop-the-world
//! runtime runs the full protocol (`Python/pystate.c`), so its log is first
//! replayed through `cpyrt_spec::stw` (the log must be a valid run of that
//! spec), and each thread's state change between consecutive spec states
//! is mapped to the abstraction:
//!
//! | stop-the-world step | function-version events |
//! |---|---|
//! | `StwBegin` (HEAD_LOCK section setting `requested`) | `RequestStop` |
//! | ATTACHED -> SUSPENDED at an eval-breaker check | `Suspend` |
//! | DETACHED -> SUSPENDED (`park_detached_threads`) of a thread parked on the pause's mutex | `Suspend` (the spec keeps a thread waiting for the pause attached, at a safe point) |
//! | `start_the_world` | `StartWorld` |
//! | DETACHED -> ATTACHED after a `StartWorld` | `Attach` |
//! | ATTACHED -> DETACHED for a blocking call, a stale eval-breaker bit, or exit | `Detach`, placed lazily (below) |
//! | a thread parking on or leaving the pause's mutex without being suspended | nothing (its detach is invisible to the abstraction) |
//!
//! A thread that detaches and attaches again while a pause is requested
//! but before the requester parked it is legal in CPython (nothing counted
//! it as stopped) but not in the abstraction. Such a detach is therefore
//! placed when something observes it: when the requester parks the
//! thread, when the world stops, when the thread attaches with no pause
//! requested, or at the end of the log; a detach and attach that nothing
//! observed, inside one requested pause, map to nothing. Moving a step of
//! one thread later, past steps of other threads that do not read that
//! thread's state, gives an equivalent execution, so the derived log is a
//! linearization of the same run.

use cpyrt_spec::func_version::{Event, Run};
use cpyrt_spec::replay;
use cpyrt_spec::stw::{Event as StwEvent, State as StwState, Stop, TState};

use super::{Config, Placed, SCOPE};

/// Merges the runtime's own events (`mine`, each placed at the pause log's
/// length when it ran) with the pause events derived from `pause`.
pub(super) fn translate(
    cfg: &Config,
    pause: &[StwEvent],
    mine: &[Placed],
) -> Result<Vec<Event>, String> {
    let states = replay::<Stop>(&cfg.stw().spec(), pause).map_err(|e| e.to_string())?;
    let mut t = Translator {
        run: vec![Run::Attached; cfg.threads],
        pending: vec![false; cfg.threads],
        requester: None,
        out: Vec::with_capacity(mine.len() + pause.len()),
    };
    let mut next = 0;
    for (i, e) in pause.iter().enumerate() {
        while next < mine.len() && mine[next].0 <= i {
            t.out.push(mine[next].1);
            next += 1;
        }
        t.step(e, &states[i], &states[i + 1]);
    }
    t.out.extend(mine[next..].iter().map(|&(_, e)| e));
    t.flush();
    Ok(t.out)
}

struct Translator {
    /// Each thread's state in the abstraction.
    run: Vec<Run>,
    /// A detach not placed yet.
    pending: Vec<bool>,
    requester: Option<u8>,
    out: Vec<Event>,
}

impl Translator {
    fn step(&mut self, e: &StwEvent, a: &StwState, b: &StwState) {
        match *e {
            StwEvent::StwBegin { thread, .. } => {
                self.out.push(Event::RequestStop { thread });
                self.requester = Some(thread);
            }
            StwEvent::StartWorld { thread, .. } => {
                self.out.push(Event::StartWorld { thread });
                self.requester = None;
                for r in &mut self.run {
                    if *r == Run::Suspended {
                        *r = Run::Detached;
                    }
                }
            }
            _ => {}
        }
        for u in 0..self.run.len() {
            let thread = u as u8;
            if let StwEvent::Exit { thread: x } = *e
                && x == thread
            {
                self.pending[u] = true;
                continue;
            }
            match (a.threads[u].state, b.threads[u].state) {
                (TState::Attached, TState::Suspended) => {
                    self.out.push(Event::Suspend { thread });
                    self.run[u] = Run::Suspended;
                }
                (TState::Detached, TState::Suspended) => {
                    if self.pending[u] {
                        self.place_detach(u);
                    } else if self.run[u] == Run::Attached {
                        // Parked while waiting for the pause's mutex.
                        self.out.push(Event::Suspend { thread });
                        self.run[u] = Run::Suspended;
                    }
                }
                (TState::Attached, TState::Detached) => {
                    if matches!(
                        *e,
                        StwEvent::Syscall { .. } | StwEvent::HandlePending { .. }
                    ) && e.thread() == thread
                    {
                        self.pending[u] = true;
                    }
                }
                (TState::Detached, TState::Attached) => {
                    if self.pending[u] {
                        self.pending[u] = false;
                        if self.requester.is_none() {
                            self.out.push(Event::Detach { thread });
                            self.out.push(Event::Attach { thread });
                        }
                    } else if self.run[u] == Run::Detached {
                        self.out.push(Event::Attach { thread });
                        self.run[u] = Run::Attached;
                    }
                }
                _ => {}
            }
        }
        let stopped = |s: &StwState| s.stw(SCOPE).world_stopped;
        if stopped(b) && !stopped(a) {
            self.flush();
        }
    }

    fn place_detach(&mut self, u: usize) {
        self.pending[u] = false;
        self.out.push(Event::Detach { thread: u as u8 });
        self.run[u] = Run::Detached;
    }

    /// Places every pending detach.
    fn flush(&mut self) {
        for u in 0..self.pending.len() {
            if self.pending[u] {
                self.place_detach(u);
            }
        }
    }
}
