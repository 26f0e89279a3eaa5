//! `enabled` and `step` of the stop-the-world spec.
//!
//! One function, [`apply`], computes an event's effect: it reads the
//! event's choices (which pause a request is for, which waiter an unlock
//! wakes) and computes everything the step observes. `step` accepts an
//! event only if its observed fields agree with what `apply` computed;
//! `enabled` (in `enabled.rs`) offers every event `apply` accepts, so the
//! two cannot drift.

use super::*;

fn reject<T>(reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason))
}

/// The countdown after subtracting `k`, stopping at [`COUNTDOWN_FLOOR`].
fn sub(countdown: i8, k: i8) -> i8 {
    countdown.saturating_sub(k).max(COUNTDOWN_FLOOR)
}

fn owner(s: &State, lock: Lock) -> Option<u8> {
    match lock {
        Lock::Object(o) => s.objects[o as usize],
        Lock::StwMutex(sc) => s.stw(sc).mutex,
        Lock::RwMutex | Lock::StopEvent(_) => None,
    }
}

fn set_owner(n: &mut State, lock: Lock, to: Option<u8>) {
    match lock {
        Lock::Object(o) => n.objects[o as usize] = to,
        Lock::StwMutex(sc) => n.stw[sc.index()].mutex = to,
        Lock::RwMutex | Lock::StopEvent(_) => unreachable!("not a PyMutex"),
    }
}

/// The wake choices of an unlock of PyMutex `lock`: none without parked
/// waiters, else one of them, handed the lock or not.
pub(super) fn wake_choices(s: &State, lock: Lock) -> Vec<Option<Wake>> {
    let mut out: Vec<Option<Wake>> = s
        .parked_on(lock)
        .flat_map(|w| [true, false].map(|handed| Some(Wake { thread: w, handed })))
        .collect();
    if out.is_empty() {
        out.push(None);
    }
    out
}

/// `_PyMutex_TryUnlock` and `mutex_unpark`: a lock with parked waiters
/// unparks exactly one of them.
fn unlock_mutex(n: &mut State, lock: Lock, wake: Option<Wake>) -> Result<(), Rejection> {
    let waiters = n.parked_on(lock).next().is_some();
    match wake {
        None if waiters => reject(format!("unlocking {lock:?} must unpark one of its waiters")),
        None => {
            set_owner(n, lock, None);
            Ok(())
        }
        Some(w) => {
            let Some(th) = n.threads.get_mut(w.thread as usize) else {
                return reject(format!("no thread {} to wake", w.thread));
            };
            if th.at != At::Parked(lock) {
                return reject(format!("thread {} is not parked on {lock:?}", w.thread));
            }
            // PyEval_RestoreThread after _PyParkingLot_Park: re-attach.
            th.at = At::Attach;
            set_owner(n, lock, w.handed.then_some(w.thread));
            Ok(())
        }
    }
}

/// The wake choices of a detach by thread `t`: its critical section's lock
/// is the one released.
pub(super) fn detach_wakes(s: &State, t: usize) -> Vec<Option<Wake>> {
    match s.threads[t].cs {
        Cs::Held(o) => wake_choices(s, Lock::Object(o)),
        _ => vec![None],
    }
}

/// `detach_thread`: `_PyCriticalSection_SuspendAll`, then store `target`.
fn detach(n: &mut State, t: usize, target: TState, wake: Option<Wake>) -> Result<(), Rejection> {
    if n.threads[t].state != TState::Attached {
        return reject("detach needs an attached thread");
    }
    match n.threads[t].cs {
        Cs::Held(o) => {
            unlock_mutex(n, Lock::Object(o), wake)?;
            n.threads[t].cs = Cs::Released(o);
        }
        _ if wake.is_some() => {
            return reject("detach releases no lock: no critical section is held");
        }
        _ => {}
    }
    n.threads[t].state = target;
    Ok(())
}

/// A failed PyMutex or RW-mutex attempt: `_PyParkingLot_Park` with
/// `detach = 1` detaches before sleeping.
fn park(n: &mut State, t: usize, lock: Lock, wake: Option<Wake>) -> Result<(), Rejection> {
    detach(n, t, TState::Detached, wake)?;
    n.threads[t].at = At::Parked(lock);
    Ok(())
}

/// `decrement_stoptheworld_countdown`.
fn decrement(n: &mut State, scope: Scope) -> i8 {
    let stw = &mut n.stw[scope.index()];
    stw.countdown = sub(stw.countdown, 1);
    if stw.countdown == 0 {
        stw.stop_event = true;
    }
    stw.countdown
}

/// `park_detached_threads` by requester `t`, then `world_stopped = 1` if it
/// parked the last ones. Returns the countdown and whether it stopped.
fn park_scan(cfg: &Config, n: &mut State, t: usize, scope: Scope) -> (i8, bool) {
    let mut parked = 0i8;
    for u in 0..n.threads.len() {
        if !n.in_scope(u, scope) {
            continue;
        }
        let th = &mut n.threads[u];
        match th.state {
            TState::Detached => {
                if cfg.design.park_to_suspended {
                    th.state = TState::Suspended;
                }
                parked += 1;
            }
            TState::Attached if u != t => th.please_stop = true,
            _ => {}
        }
    }
    let stw = &mut n.stw[scope.index()];
    stw.countdown = sub(stw.countdown, parked);
    let stopped = parked > 0 && stw.countdown == 0;
    if stopped {
        stw.world_stopped = true;
    }
    (stw.countdown, stopped)
}

/// The phase after a pause's stop decision.
fn stopped_or_wait(stopped: bool) -> Phase {
    if stopped { Phase::Stopped } else { Phase::Wait }
}

/// Sets the phase of thread `t`'s pause job.
fn set_phase(n: &mut State, t: usize, to: Phase) {
    if let Job::Stw { phase, .. } = &mut n.threads[t].job {
        *phase = to;
    }
}

/// Computes `event`'s effect: the event with its observed fields filled in,
/// and the next state.
pub(super) fn apply(cfg: &Config, s: &State, event: &Event) -> Result<(Event, State), Rejection> {
    let t = event.thread() as usize;
    if t >= s.threads.len() {
        return reject(format!(
            "no thread {t} in a {}-thread configuration",
            s.threads.len()
        ));
    }
    let thread = t as u8;
    let role = cfg.roles[t];
    let th = s.threads[t].clone();
    let mut n = s.clone();
    let attached_at_go = th.life == Life::Alive && th.at == At::Go && th.state == TState::Attached;
    let out = match *event {
        Event::Create { .. } => {
            if th.life != Life::Unborn {
                return reject("only a thread without a thread state creates one");
            }
            if s.finalized {
                return reject("the runtime is finalized");
            }
            let in_pause = s.pauses_covering(th.interp).next().is_some();
            let suspended = in_pause && cfg.design.new_thread_starts_suspended;
            let nt = &mut n.threads[t];
            nt.life = Life::Alive;
            nt.state = if suspended {
                TState::Suspended
            } else {
                TState::Detached
            };
            nt.at = At::Attach;
            nt.created_in_pause = in_pause;
            Event::Create { thread, suspended }
        }
        Event::Attach { .. } => {
            if th.life != Life::Alive || th.at != At::Attach {
                return reject("attach needs a thread in _PyThreadState_Attach");
            }
            match th.state {
                TState::Detached => {}
                TState::Suspended if !cfg.design.suspended_blocks_attach => {}
                TState::Suspended => {
                    return reject("a SUSPENDED thread waits in tstate_wait_attach");
                }
                TState::ShuttingDown => return reject("a SHUTTING_DOWN thread hangs"),
                TState::Attached => return reject("already attached"),
            }
            let nt = &mut n.threads[t];
            nt.state = TState::Attached;
            nt.at = if matches!(th.cs, Cs::Released(_)) {
                At::Resume
            } else {
                At::Go
            };
            Event::Attach { thread }
        }
        Event::Hang { .. } => {
            if th.at != At::Attach || th.state != TState::ShuttingDown {
                return reject("only a SHUTTING_DOWN thread that attaches hangs");
            }
            n.threads[t].life = Life::Hung;
            Event::Hang { thread }
        }
        Event::Resume { .. } => {
            let Cs::Released(o) = th.cs else {
                return reject("no released critical section to resume");
            };
            if th.life != Life::Alive || th.at != At::Resume || th.state != TState::Attached {
                return reject("resume runs attached, at the end of _PyThreadState_Attach");
            }
            let lock = Lock::Object(o);
            let parked = owner(s, lock).is_some_and(|u| u != thread);
            if parked {
                park(&mut n, t, lock, None)?;
            } else {
                set_owner(&mut n, lock, Some(thread));
                n.threads[t].cs = Cs::Held(o);
                n.threads[t].at = At::Go;
            }
            Event::Resume {
                thread,
                object: o,
                parked,
            }
        }
        Event::BeginCs { .. } => {
            let o = th.interp;
            let starting = th.job == Job::Run && th.cs == Cs::None;
            if !attached_at_go || !role.critical_sections || !(starting || th.job == Job::Lock(o)) {
                return reject("a critical section begins in running code without one held");
            }
            let lock = Lock::Object(o);
            let retry = !starting;
            let parked = owner(s, lock).is_some_and(|u| u != thread);
            if parked {
                n.threads[t].job = Job::Lock(o);
                park(&mut n, t, lock, None)?;
            } else {
                set_owner(&mut n, lock, Some(thread));
                n.threads[t].cs = Cs::Held(o);
                n.threads[t].job = Job::Run;
            }
            Event::BeginCs {
                thread,
                object: o,
                retry,
                parked,
            }
        }
        Event::EndCs { wake, .. } => {
            let Cs::Held(o) = th.cs else {
                return reject("no critical section is held");
            };
            let in_pause_cs =
                matches!(th.job, Job::Stw { phase: Phase::InPauseCs(p), .. } if p == o);
            if !attached_at_go || !(th.job == Job::Run || in_pause_cs) {
                return reject("a critical section ends in the code that began it");
            }
            if s.objects[o as usize] != Some(thread) {
                return reject("the thread does not own the object's lock");
            }
            unlock_mutex(&mut n, Lock::Object(o), wake)?;
            n.threads[t].cs = Cs::None;
            if in_pause_cs {
                set_phase(&mut n, t, Phase::PauseDone);
            }
            Event::EndCs {
                thread,
                object: o,
                wake,
            }
        }
        Event::Syscall { wake, .. } => {
            if !attached_at_go || th.job != Job::Run || !role.blocking_calls {
                return reject("a blocking call is made from running code");
            }
            detach(&mut n, t, TState::Detached, wake)?;
            n.threads[t].at = At::Attach;
            Event::Syscall { thread, wake }
        }
        Event::HandlePending { wake, .. } => {
            if !attached_at_go || th.job != Job::Run || !th.please_stop {
                return reject("_Py_HandlePending acts on PLEASE_STOP in running code");
            }
            n.threads[t].please_stop = false;
            // _PyThreadState_Suspend: the global request first.
            let target = s.pauses_covering(th.interp).next();
            match target {
                Some(scope) => {
                    let to = if cfg.design.park_to_suspended {
                        TState::Suspended
                    } else {
                        TState::Detached
                    };
                    detach(&mut n, t, to, wake)?;
                    n.threads[t].job = Job::Countdown(scope);
                }
                None => {
                    detach(&mut n, t, TState::Detached, wake)?;
                    n.threads[t].at = At::Attach;
                }
            }
            Event::HandlePending {
                thread,
                suspend: target,
                wake,
            }
        }
        Event::Countdown { .. } => {
            let Job::Countdown(scope) = th.job else {
                return reject("no countdown to decrement");
            };
            if th.life != Life::Alive || th.at != At::Go {
                return reject("the countdown is decremented right after the detach");
            }
            let countdown = decrement(&mut n, scope);
            n.threads[t].job = Job::Run;
            n.threads[t].at = At::Attach;
            Event::Countdown {
                thread,
                scope,
                countdown,
            }
        }
        Event::Exit { .. } => {
            if !attached_at_go || th.job != Job::Run || !role.exits || th.cs != Cs::None {
                return reject("a thread exits from running code outside critical sections");
            }
            n.threads[t].life = Life::Exited;
            // tstate_delete_common: the state is not SUSPENDED here.
            if cfg.design.delete_decrements_countdown {
                for scope in [Scope::Interp(th.interp), Scope::Global] {
                    if s.stw(scope).requested {
                        decrement(&mut n, scope);
                    }
                }
            }
            Event::Exit { thread }
        }
        Event::Shutdown { .. } => {
            if !attached_at_go
                || th.job != Job::Run
                || !role.finalizes
                || th.cs != Cs::None
                || s.finalized
            {
                return reject(
                    "Py_FinalizeEx runs once, from running code outside critical sections",
                );
            }
            n.threads[t].job = Job::Stw {
                scope: Scope::Global,
                phase: Phase::Lock(0),
                finalizing: true,
            };
            Event::Shutdown { thread }
        }
        Event::StwLock { scope, wake, .. } => {
            if !attached_at_go {
                return reject("stop_the_world runs attached");
            }
            let start = th.job == Job::Run;
            let (scope, k) = match th.job {
                Job::Run => {
                    let allowed = match scope {
                        Scope::Global => role.global_pauses,
                        Scope::Interp(i) => role.interp_pauses && i == th.interp,
                    };
                    if !allowed || th.pauses >= cfg.max_pauses {
                        return reject(format!(
                            "thread {t} may not request a pause of {scope:?} now"
                        ));
                    }
                    n.threads[t].pauses += 1;
                    n.threads[t].job = Job::Stw {
                        scope,
                        phase: Phase::Lock(0),
                        finalizing: false,
                    };
                    (scope, 0)
                }
                Job::Stw {
                    scope,
                    phase: Phase::Lock(k),
                    ..
                } => (scope, k),
                _ => return reject("not taking stop_the_world's locks"),
            };
            let order = cfg.design.lock_order();
            let lock = order[k as usize];
            let next = if (k as usize) + 1 < order.len() {
                Phase::Lock(k + 1)
            } else {
                Phase::Begin
            };
            let parked = match lock {
                StwLock::Mutex => {
                    let m = Lock::StwMutex(scope);
                    if owner(s, m).is_some_and(|u| u != thread) {
                        park(&mut n, t, m, wake)?;
                        true
                    } else {
                        set_owner(&mut n, m, Some(thread));
                        false
                    }
                }
                StwLock::RwMutex => {
                    let rw = &s.rw;
                    let write = scope == Scope::Global;
                    let free = if write {
                        rw.writer.is_none() && rw.readers == 0
                    } else {
                        rw.writer.is_none() && !rw.has_parked
                    };
                    if free {
                        if write {
                            n.rw.writer = Some(thread);
                        } else {
                            n.rw.readers |= 1 << t;
                        }
                        false
                    } else {
                        n.rw.has_parked = true;
                        park(&mut n, t, Lock::RwMutex, wake)?;
                        true
                    }
                }
            };
            if !parked {
                set_phase(&mut n, t, next);
            }
            let wake = if parked { wake } else { None };
            Event::StwLock {
                thread,
                scope,
                start,
                lock,
                parked,
                wake,
            }
        }
        Event::StwBegin { .. } => {
            let Job::Stw {
                scope,
                phase: Phase::Begin,
                ..
            } = th.job
            else {
                return reject("the pause begins once its locks are held");
            };
            if !attached_at_go {
                return reject("stop_the_world runs attached");
            }
            let others = (0..s.threads.len())
                .filter(|&u| u != t && s.in_scope(u, scope))
                .count() as i8;
            let stw = &mut n.stw[scope.index()];
            stw.requested = true;
            stw.countdown = others;
            stw.stop_event = false;
            stw.requester = Some(thread);
            let (countdown, stopped) = if others == 0 {
                stw.world_stopped = true;
                (0, true)
            } else {
                park_scan(cfg, &mut n, t, scope)
            };
            set_phase(&mut n, t, stopped_or_wait(stopped));
            Event::StwBegin {
                thread,
                scope,
                countdown,
                stopped,
            }
        }
        Event::StwScan { .. } => {
            let Job::Stw {
                scope,
                phase: Phase::Scan,
                ..
            } = th.job
            else {
                return reject("no scan is due");
            };
            if !attached_at_go {
                return reject("stop_the_world runs attached");
            }
            let (countdown, stopped) = park_scan(cfg, &mut n, t, scope);
            set_phase(&mut n, t, stopped_or_wait(stopped));
            Event::StwScan {
                thread,
                scope,
                countdown,
                stopped,
            }
        }
        Event::StwWait { .. } => {
            let Job::Stw { scope, phase, .. } = th.job else {
                return reject("not waiting for a pause");
            };
            if !attached_at_go || !matches!(phase, Phase::Wait | Phase::Woken) {
                return reject("not waiting for the stop event");
            }
            let stopped = s.stw(scope).stop_event;
            if !stopped && phase == Phase::Wait && !cfg.design.requester_stays_attached {
                return reject("this requester parks on the stop event before it can time out");
            }
            if stopped {
                n.stw[scope.index()].world_stopped = true;
                set_phase(&mut n, t, Phase::Stopped);
            } else {
                set_phase(&mut n, t, Phase::Scan);
            }
            Event::StwWait {
                thread,
                scope,
                stopped,
            }
        }
        Event::StwPark { wake, .. } => {
            let Job::Stw {
                scope,
                phase: Phase::Wait,
                ..
            } = th.job
            else {
                return reject("not waiting for a pause");
            };
            if !attached_at_go || cfg.design.requester_stays_attached || s.stw(scope).stop_event {
                return reject(
                    "only a detaching requester parks, and only while the event is unset",
                );
            }
            park(&mut n, t, Lock::StopEvent(scope), wake)?;
            set_phase(&mut n, t, Phase::Woken);
            Event::StwPark {
                thread,
                scope,
                wake,
            }
        }
        Event::StwUnpark { .. } => {
            let At::Parked(Lock::StopEvent(scope)) = th.at else {
                return reject("not parked on a stop event");
            };
            n.threads[t].at = At::Attach;
            Event::StwUnpark { thread, scope }
        }
        Event::PauseCs { .. } => {
            let o = th.interp;
            let Job::Stw {
                scope,
                phase,
                finalizing,
            } = th.job
            else {
                return reject("not inside a pause");
            };
            let ready = match phase {
                Phase::Stopped => th.cs == Cs::None,
                Phase::PauseLock(p) => p == o,
                _ => false,
            };
            if !attached_at_go
                || !ready
                || finalizing
                || scope != Scope::Interp(o)
                || !role.critical_sections
                || cfg.design.skip_cs_lock_while_stopped
            {
                return reject(
                    "only a per-interpreter requester locks a critical section inside its pause, when locking is not skipped",
                );
            }
            let lock = Lock::Object(o);
            let parked = owner(s, lock).is_some_and(|u| u != thread);
            if parked {
                park(&mut n, t, lock, None)?;
                set_phase(&mut n, t, Phase::PauseLock(o));
            } else {
                set_owner(&mut n, lock, Some(thread));
                n.threads[t].cs = Cs::Held(o);
                set_phase(&mut n, t, Phase::InPauseCs(o));
            }
            Event::PauseCs {
                thread,
                object: o,
                parked,
            }
        }
        Event::Finalize { .. } => {
            let Job::Stw {
                phase: Phase::Stopped,
                finalizing: true,
                ..
            } = th.job
            else {
                return reject("finalization runs inside Py_FinalizeEx's pause");
            };
            if !attached_at_go || s.finalized {
                return reject("finalization runs once, attached");
            }
            for (u, other) in n.threads.iter_mut().enumerate() {
                if u != t && other.life == Life::Alive && other.interp == th.interp {
                    other.life = Life::Removed;
                    other.state = TState::ShuttingDown;
                }
            }
            n.finalized = true;
            Event::Finalize { thread }
        }
        Event::StartWorld { .. } => {
            let Job::Stw {
                scope,
                phase: Phase::Stopped | Phase::PauseDone,
                finalizing,
            } = th.job
            else {
                return reject("start_the_world ends a stopped world");
            };
            if !attached_at_go || (finalizing && !s.finalized) {
                return reject("start_the_world runs attached, after the pause's work");
            }
            let stw = &mut n.stw[scope.index()];
            stw.requested = false;
            stw.world_stopped = false;
            stw.requester = None;
            for u in 0..n.threads.len() {
                if u != t && n.in_scope(u, scope) && n.threads[u].state == TState::Suspended {
                    n.threads[u].state = TState::Detached;
                }
            }
            set_phase(&mut n, t, Phase::Unlock(0));
            Event::StartWorld { thread, scope }
        }
        Event::StwUnlock { wake, .. } => {
            let Job::Stw {
                scope,
                phase: Phase::Unlock(k),
                finalizing,
            } = th.job
            else {
                return reject("not releasing stop_the_world's locks");
            };
            if !attached_at_go {
                return reject("start_the_world runs attached");
            }
            let order = cfg.design.lock_order();
            let lock = order[order.len() - 1 - k as usize];
            match lock {
                StwLock::Mutex => {
                    let m = Lock::StwMutex(scope);
                    if owner(s, m) != Some(thread) {
                        return reject("the requester does not own the pause's mutex");
                    }
                    unlock_mutex(&mut n, m, wake)?;
                }
                StwLock::RwMutex => {
                    if wake.is_some() {
                        return reject("the read-write mutex wakes every waiter");
                    }
                    let wake_all = if scope == Scope::Global {
                        if s.rw.writer != Some(thread) {
                            return reject("the requester does not hold the write lock");
                        }
                        n.rw.writer = None;
                        let parked = n.rw.has_parked;
                        n.rw.has_parked = false;
                        parked
                    } else {
                        if s.rw.readers & (1 << t) == 0 {
                            return reject("the requester does not hold a read lock");
                        }
                        n.rw.readers &= !(1 << t);
                        n.rw.readers == 0 && n.rw.has_parked
                    };
                    if wake_all {
                        for other in n.threads.iter_mut() {
                            if other.at == At::Parked(Lock::RwMutex) {
                                other.at = At::Attach;
                            }
                        }
                    }
                }
            }
            if (k as usize) + 1 < order.len() {
                set_phase(&mut n, t, Phase::Unlock(k + 1));
            } else if finalizing {
                // Py_FinalizeEx goes on to delete the finalizer's own
                // thread state; nothing after that is modelled.
                n.threads[t].job = Job::Done;
                n.threads[t].life = Life::Exited;
            } else {
                n.threads[t].job = Job::Run;
            }
            Event::StwUnlock {
                thread,
                scope,
                lock,
                wake,
            }
        }
    };
    Ok((out, n))
}

pub(super) fn step(cfg: &Config, s: &State, event: &Event) -> Result<State, Rejection> {
    let (full, next) = apply(cfg, s, event)?;
    if full != *event {
        return reject(format!("the step observed {full:?}"));
    }
    Ok(next)
}
