//! The requester's side: `stop_the_world`, the pause, `start_the_world`,
//! and finalization's pause.

use cpyrt_spec::stw::{Cs, Scope, StwLock};

use super::thread::{Outcome, Thread};
use super::{ATTACHED, DETACHED, Event, Head, Listed, PLEASE_STOP, SHUTTING_DOWN, SUSPENDED};
use crate::primitive::sync::atomic::Ordering;
use crate::primitive::sync::{Arc, lock};

/// The world of a scope is stopped while this lives; [`Paused::start`]
/// starts it again. Dropping it without starting leaves the world stopped
/// (no destructor may touch the runtime: a model checker drops the stacks
/// of a failed execution outside it).
#[must_use = "the pause ends only when started"]
pub struct Paused<'a> {
    thread: &'a mut Thread,
    scope: Scope,
}

impl Paused<'_> {
    /// The pause's work may enter a critical section on the interpreter's
    /// object. With the shipped design, `_PyCriticalSection_BeginSlow`
    /// skips the lock while the interpreter's world is stopped (gh-144513)
    /// and nothing is recorded; otherwise the requester locks it, waiting
    /// (detached) while another thread owns it.
    pub fn critical_section(&mut self) -> Result<(), Outcome> {
        let th = &mut *self.thread;
        let rt = Arc::clone(&th.rt);
        let (tid, o) = (th.tid, th.interp());
        if th.cs == Cs::Held(o) {
            // The requester already holds it: `_PyCriticalSection_BeginSlow`
            // skips a mutex the top-most section holds.
            return Ok(());
        }
        if self.scope != Scope::Interp(o) {
            // Global pauses take none (the spec's restriction).
            return Ok(());
        }
        if rt.cfg.design.skip_cs_lock_while_stopped
            && rt.world_stopped[self.scope.index()].load(Ordering::Relaxed)
        {
            return Ok(());
        }
        loop {
            let acquired = rt.step(|log| {
                let acquired = rt.objects[o as usize].try_lock_or_park(tid);
                if acquired {
                    th.cs = Cs::Held(o);
                } else {
                    th.detach_in_step(DETACHED);
                }
                log.emit(Event::PauseCs {
                    thread: tid,
                    object: o,
                    parked: !acquired,
                });
                acquired
            });
            if acquired {
                break;
            }
            th.wait_lock(rt.objects[o as usize].wait(tid))?;
            th.attach()?;
        }
        th.end_critical_section();
        Ok(())
    }

    /// `start_the_world`.
    pub fn start(self) {
        self.thread.start_the_world(self.scope, false);
    }
}

impl Thread {
    /// Stops the world, runs the pause's work (a critical section when
    /// `cs`), starts it again.
    pub fn pause(&mut self, scope: Scope, cs: bool) -> Result<(), Outcome> {
        let mut paused = self.stop_the_world(scope, true)?;
        if cs {
            paused.critical_section()?;
        }
        paused.start();
        Ok(())
    }

    /// `stop_the_world`: take the locks, count, park and wait.
    pub fn stop_the_world(&mut self, scope: Scope, start: bool) -> Result<Paused<'_>, Outcome> {
        self.take_locks(scope, start)?;
        self.stop(scope)?;
        Ok(Paused {
            thread: self,
            scope,
        })
    }

    /// The instance's mutex and the read-write mutex, in the design's
    /// order; each failed attempt parks the thread detached.
    fn take_locks(&mut self, scope: Scope, mut start: bool) -> Result<(), Outcome> {
        let rt = Arc::clone(&self.rt);
        let tid = self.tid;
        for &which in rt.cfg.design.lock_order() {
            loop {
                let acquired = rt.step(|log| {
                    let acquired = match which {
                        StwLock::Mutex => rt.stw_mutex[scope.index()].try_lock_or_park(tid),
                        StwLock::RwMutex => rt.rw.try_lock_or_park(tid, scope == Scope::Global),
                    };
                    let wake = if acquired {
                        None
                    } else {
                        self.detach_in_step(DETACHED)
                    };
                    log.emit(Event::StwLock {
                        thread: tid,
                        scope,
                        start,
                        lock: which,
                        parked: !acquired,
                        wake,
                    });
                    acquired
                });
                start = false;
                if acquired {
                    break;
                }
                let woken = match which {
                    StwLock::Mutex => rt.stw_mutex[scope.index()].wait(tid),
                    StwLock::RwMutex => rt.rw.wait(tid),
                };
                self.wait_lock(woken)?;
                self.attach()?;
            }
        }
        Ok(())
    }

    /// Counting, parking and waiting, with the locks held.
    fn stop(&mut self, scope: Scope) -> Result<(), Outcome> {
        let rt = Arc::clone(&self.rt);
        let tid = self.tid;
        // `seen` is the detach count read *before* each scan: a detach
        // counted after that read wakes the wait, and one counted before
        // it stored its state before the scan loads it (the store precedes
        // the count, and the count's lock orders the two threads).
        let (mut stopped, mut seen) = rt.step(|log| {
            let mut head = rt.head();
            let seen = lock(&rt.events).detaches;
            let others = (0..rt.tstates.len())
                .filter(|&u| u != tid as usize && rt.in_scope(&head, u, scope))
                .count() as i32;
            let conflict = match scope {
                Scope::Global => head.stw[1..].iter().any(|w| w.requested),
                Scope::Interp(_) => head.stw[0].requested,
            };
            rt.check(
                !conflict,
                "pauses_never_overlap: a global and a per-interpreter pause are requested at once",
            );
            let stw = &mut head.stw[scope.index()];
            stw.requested = true;
            stw.countdown = others;
            stw.requester = Some(tid);
            rt.set_event(scope, false);
            let stopped = if others == 0 {
                self.set_stopped(&mut head, scope);
                true
            } else {
                self.park_detached_threads(&mut head, scope)
            };
            log.emit(Event::StwBegin {
                thread: tid,
                scope,
                countdown: head.stw[scope.index()].countdown.max(-1) as i8,
                stopped,
            });
            (stopped, seen)
        });
        while !stopped {
            if !rt.cfg.design.requester_stays_attached {
                // The gh-118332 design: PyEvent_WaitTimed(..., detach=1).
                let parked = rt.step(|log| {
                    if lock(&rt.events).set[scope.index()] {
                        return None;
                    }
                    let before = lock(&rt.events).detaches;
                    let wake = self.detach_in_step(DETACHED);
                    log.emit(Event::StwPark {
                        thread: tid,
                        scope,
                        wake,
                    });
                    // Its own detach is no reason to rescan; one by another
                    // thread since the scan is.
                    Some(if before == seen {
                        lock(&rt.events).detaches
                    } else {
                        seen
                    })
                });
                if let Some(seen) = parked {
                    self.wait_event(scope, seen);
                    rt.step(|log| log.emit(Event::StwUnpark { thread: tid, scope }));
                    self.attach()?;
                }
            } else {
                // PyEvent_WaitTimed(..., detach=0): stays attached.
                self.wait_event(scope, seen);
            }
            let set = rt.step(|log| {
                let mut head = rt.head();
                let set = lock(&rt.events).set[scope.index()];
                if set {
                    self.set_stopped(&mut head, scope);
                }
                log.emit(Event::StwWait {
                    thread: tid,
                    scope,
                    stopped: set,
                });
                set
            });
            if set {
                break;
            }
            (stopped, seen) = rt.step(|log| {
                let mut head = rt.head();
                let seen = lock(&rt.events).detaches;
                let stopped = self.park_detached_threads(&mut head, scope);
                log.emit(Event::StwScan {
                    thread: tid,
                    scope,
                    countdown: head.stw[scope.index()].countdown.max(-1) as i8,
                    stopped,
                });
                (stopped, seen)
            });
        }
        Ok(())
    }

    /// `park_detached_threads` (HEAD_LOCK held); sets `world_stopped` when
    /// it parked the last ones.
    fn park_detached_threads(&self, head: &mut Head, scope: Scope) -> bool {
        let rt = &self.rt;
        let mut parked = 0;
        for u in 0..rt.tstates.len() {
            if !rt.in_scope(head, u, scope) {
                continue;
            }
            let ts = &rt.tstates[u];
            match ts.state.load(Ordering::Relaxed) {
                DETACHED => {
                    if !rt.cfg.design.park_to_suspended {
                        // The two-state design: counted, left DETACHED.
                        parked += 1;
                    } else if ts
                        .state
                        .compare_exchange(DETACHED, SUSPENDED, Ordering::SeqCst, Ordering::Relaxed)
                        .is_ok()
                    {
                        parked += 1;
                    }
                }
                ATTACHED if u != self.tid as usize => {
                    ts.eval_breaker.fetch_or(PLEASE_STOP, Ordering::SeqCst);
                }
                _ => {}
            }
        }
        let stw = &mut head.stw[scope.index()];
        stw.countdown -= parked;
        rt.check(
            stw.countdown >= 0,
            "countdown_nonnegative: a pause's countdown went negative",
        );
        let stopped = parked > 0 && stw.countdown == 0;
        if stopped {
            self.set_stopped(head, scope);
        }
        stopped
    }

    /// `world_stopped = 1`, checking that no other thread in scope runs.
    fn set_stopped(&self, head: &mut Head, scope: Scope) {
        let rt = &self.rt;
        head.stw[scope.index()].world_stopped = true;
        rt.world_stopped[scope.index()].store(true, Ordering::Relaxed);
        let quiet = (0..rt.tstates.len()).all(|u| {
            u == self.tid as usize
                || !rt.in_scope(head, u, scope)
                || rt.tstates[u].state.load(Ordering::Relaxed) != ATTACHED
        });
        rt.check(
            quiet,
            "stopped_world_has_no_other_attached_thread: the world stopped with a thread attached",
        );
    }

    /// `start_the_world`, then the locks in reverse order. `finalizing`:
    /// finalization's pause, after which the thread state is deleted.
    pub(super) fn start_the_world(&mut self, scope: Scope, finalizing: bool) {
        let rt = Arc::clone(&self.rt);
        let tid = self.tid;
        rt.step(|log| {
            let mut head = rt.head();
            let stw = &mut head.stw[scope.index()];
            stw.requested = false;
            stw.world_stopped = false;
            stw.requester = None;
            rt.world_stopped[scope.index()].store(false, Ordering::Relaxed);
            for u in 0..rt.tstates.len() {
                if u == tid as usize || !rt.in_scope(&head, u, scope) {
                    continue;
                }
                let state = rt.tstates[u].state.load(Ordering::Relaxed);
                rt.check(
                    state == SUSPENDED,
                    "start_the_world: a thread of the stopped world is not SUSPENDED",
                );
                if state == SUSPENDED {
                    rt.store_and_unpark(u, DETACHED);
                }
            }
            log.emit(Event::StartWorld { thread: tid, scope });
        });
        let order = rt.cfg.design.lock_order();
        for (k, &which) in order.iter().rev().enumerate() {
            rt.step(|log| {
                if finalizing && k + 1 == order.len() {
                    // Py_FinalizeEx deletes the finalizer's thread state
                    // next; the spec ends it with this step.
                    rt.head().listed[tid as usize] = Listed::Gone;
                }
                let wake = match which {
                    StwLock::Mutex => rt.stw_mutex[scope.index()].unlock(tid),
                    StwLock::RwMutex => {
                        rt.rw.unlock(tid, scope == Scope::Global);
                        None
                    }
                };
                log.emit(Event::StwUnlock {
                    thread: tid,
                    scope,
                    lock: which,
                    wake,
                });
            });
        }
        if finalizing {
            self.done = Some(Outcome::Finalized);
        }
    }

    /// `Py_FinalizeEx`'s pause: stop the world globally, unlink every other
    /// thread state of the interpreter and set it SHUTTING_DOWN (those
    /// waiting to attach wake and hang), start the world.
    pub fn finalize(&mut self) -> Result<(), Outcome> {
        assert_eq!(self.cs, Cs::None, "finalization outside critical sections");
        let rt = Arc::clone(&self.rt);
        let (tid, interp) = (self.tid, self.interp());
        rt.step(|log| log.emit(Event::Shutdown { thread: tid }));
        self.take_locks(Scope::Global, false)?;
        self.stop(Scope::Global)?;
        rt.step(|log| {
            let mut head = rt.head();
            for u in 0..rt.tstates.len() {
                if u != tid as usize
                    && head.listed[u] == Listed::Alive
                    && rt.tstates[u].interp == interp
                {
                    head.listed[u] = Listed::Gone;
                    rt.store_and_unpark(u, SHUTTING_DOWN);
                }
            }
            head.finalized = true;
            log.emit(Event::Finalize { thread: tid });
        });
        self.start_the_world(Scope::Global, true);
        rt.exit_process();
        Ok(())
    }
}
