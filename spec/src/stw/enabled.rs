//! `enabled` of the stop-the-world spec: every choice of every thread,
//! each kept only if [`apply`] accepts it, with the observed fields it
//! computes, so `enabled` and `step` cannot drift apart.

use super::step::{apply, detach_wakes, wake_choices};
use super::*;

/// Candidate events of thread `t`: every choice, observed fields blank.
fn candidates(s: &State, t: usize, out: &mut Vec<Event>) {
    let thread = t as u8;
    let th = &s.threads[t];
    let o = th.interp;
    match th.life {
        Life::Unborn => out.push(Event::Create {
            thread,
            suspended: false,
        }),
        Life::Removed => out.push(Event::Hang { thread }),
        Life::Alive => {}
        Life::Exited | Life::Hung => return,
    }
    if th.life != Life::Alive {
        return;
    }
    match th.at {
        At::Attach => {
            out.push(Event::Attach { thread });
            out.push(Event::Hang { thread });
        }
        At::Resume => out.push(Event::Resume {
            thread,
            object: o,
            parked: false,
        }),
        At::Parked(Lock::StopEvent(scope)) => out.push(Event::StwUnpark { thread, scope }),
        At::Parked(_) => {}
        At::Go => {
            let wakes = detach_wakes(s, t);
            let (countdown, stopped) = (0i8, false);
            match th.job {
                Job::Run => {
                    out.push(Event::BeginCs {
                        thread,
                        object: o,
                        retry: false,
                        parked: false,
                    });
                    for &wake in &wakes {
                        out.push(Event::EndCs {
                            thread,
                            object: o,
                            wake,
                        });
                        out.push(Event::Syscall { thread, wake });
                        out.push(Event::HandlePending {
                            thread,
                            suspend: None,
                            wake,
                        });
                        for scope in [Scope::Interp(o), Scope::Global] {
                            out.push(Event::StwLock {
                                thread,
                                scope,
                                start: false,
                                lock: StwLock::Mutex,
                                parked: false,
                                wake,
                            });
                        }
                    }
                    out.push(Event::Exit { thread });
                    out.push(Event::Shutdown { thread });
                }
                Job::Lock(_) => out.push(Event::BeginCs {
                    thread,
                    object: o,
                    retry: false,
                    parked: false,
                }),
                Job::Countdown(scope) => out.push(Event::Countdown {
                    thread,
                    scope,
                    countdown: 0,
                }),
                Job::Done => {}
                Job::Stw { scope, phase, .. } => {
                    match phase {
                        Phase::Lock(_) => {
                            for &wake in &wakes {
                                out.push(Event::StwLock {
                                    thread,
                                    scope,
                                    start: false,
                                    lock: StwLock::Mutex,
                                    parked: false,
                                    wake,
                                });
                            }
                        }
                        Phase::Begin => out.push(Event::StwBegin {
                            thread,
                            scope,
                            countdown,
                            stopped,
                        }),
                        Phase::Scan => out.push(Event::StwScan {
                            thread,
                            scope,
                            countdown,
                            stopped,
                        }),
                        Phase::Wait | Phase::Woken => {
                            out.push(Event::StwWait {
                                thread,
                                scope,
                                stopped,
                            });
                            for &wake in &wakes {
                                out.push(Event::StwPark {
                                    thread,
                                    scope,
                                    wake,
                                });
                            }
                        }
                        Phase::Stopped | Phase::PauseLock(_) => {
                            out.push(Event::PauseCs {
                                thread,
                                object: o,
                                parked: false,
                            });
                            out.push(Event::Finalize { thread });
                            out.push(Event::StartWorld { thread, scope });
                        }
                        Phase::PauseDone => out.push(Event::StartWorld { thread, scope }),
                        Phase::InPauseCs(_) => {
                            for &wake in &wakes {
                                out.push(Event::EndCs {
                                    thread,
                                    object: o,
                                    wake,
                                });
                            }
                        }
                        Phase::Unlock(_) => {
                            // The read-write mutex wakes everyone: no choice.
                            let mut wakes = wake_choices(s, Lock::StwMutex(scope));
                            if !wakes.contains(&None) {
                                wakes.push(None);
                            }
                            for wake in wakes {
                                out.push(Event::StwUnlock {
                                    thread,
                                    scope,
                                    lock: StwLock::Mutex,
                                    wake,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn enabled(cfg: &Config, s: &State, out: &mut Vec<Event>) {
    let mut cands = Vec::new();
    for t in 0..s.threads.len() {
        cands.clear();
        candidates(s, t, &mut cands);
        for c in &cands {
            if let Ok((full, _)) = apply(cfg, s, c)
                && !out.contains(&full)
            {
                out.push(full);
            }
        }
    }
}
