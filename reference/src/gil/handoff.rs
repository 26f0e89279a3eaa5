//! The GIL object and `take_gil` / `drop_gil`, step for step as
//! `cpyrt_spec::gil` splits them (the spec's `TakePc` and `DropPc` name the
//! steps cited here). Each recorded event is produced inside
//! `Recorder::step` together with the writes it describes, and blocking
//! (on a mutex or a condition variable) always happens outside a step.

use std::time::Duration;

use cpyrt_spec::gil::{CondId, Event, LockId, SWITCH_NUMBER_MOD};

use super::{PyThread, Runtime, decode, encode};
use crate::primitive::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::primitive::sync::{Condvar, Mutex, MutexGuard, lock, wait, wait_timeout};
use crate::trace::Recorder;

/// Why a wait on a condition variable ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wake {
    Idle,
    Waiting,
    Signalled,
    Expired,
}

/// The waiters of one condition variable, kept under its mutex, so a
/// signal can name the thread it wakes.
#[derive(Debug)]
struct Waiters {
    /// Oldest first.
    queue: Vec<u8>,
    wake: Vec<Wake>,
}

impl Waiters {
    fn new(threads: usize) -> Self {
        Waiters {
            queue: Vec::new(),
            wake: vec![Wake::Idle; threads],
        }
    }

    fn enter(&mut self, t: u8) {
        self.queue.push(t);
        self.wake[t as usize] = Wake::Waiting;
    }

    /// `COND_SIGNAL`: wakes the oldest waiter, if any.
    fn signal(&mut self) -> Option<u8> {
        if self.queue.is_empty() {
            return None;
        }
        let w = self.queue.remove(0);
        self.wake[w as usize] = Wake::Signalled;
        Some(w)
    }

    /// Takes the reason thread `t`'s wait ended, if it has.
    fn leave(&mut self, t: u8) -> Option<Wake> {
        match self.wake[t as usize] {
            Wake::Waiting => None,
            w => {
                self.wake[t as usize] = Wake::Idle;
                Some(w)
            }
        }
    }

    fn expire(&mut self, t: u8) {
        self.queue.retain(|&w| w != t);
        self.wake[t as usize] = Wake::Expired;
    }
}

/// What `gil->mutex` protects beyond `locked`.
#[derive(Debug)]
struct Guarded {
    /// `gil->switch_number`, kept modulo the spec's bound so traces match.
    switch_number: u8,
    /// Waiters on `gil->cond`.
    cond: Waiters,
}

/// One GIL object (`struct _gil_runtime_state`).
#[derive(Debug)]
pub struct Gil {
    id: u8,
    /// `gil->mutex` and the fields it protects.
    mutex: Mutex<Guarded>,
    cond: Condvar,
    /// `gil->switch_mutex`, protecting the waiters on `switch_cond`.
    switch_mutex: Mutex<Waiters>,
    switch_cond: Condvar,
    /// `gil->locked`: written only with `mutex` held, read without it by
    /// `drop_gil`'s check. Release/acquire pairs with the next taker's read.
    locked: AtomicBool,
    /// `gil->last_holder`, encoded. Written by takers under both mutexes
    /// and by `drop_gil` without a lock (its own thread state).
    last_holder: AtomicU32,
    /// Ghost: threads that set `locked` and have not cleared it.
    holders: AtomicU32,
    /// The switch interval of `std` timed waits.
    interval: Duration,
}

impl Gil {
    pub(super) fn new(id: u8, _owner: u8, threads: usize, interval: Duration) -> Gil {
        Gil {
            id,
            mutex: Mutex::new(Guarded {
                switch_number: 0,
                cond: Waiters::new(threads),
            }),
            cond: Condvar::new(),
            switch_mutex: Mutex::new(Waiters::new(threads)),
            switch_cond: Condvar::new(),
            locked: AtomicBool::new(false),
            last_holder: AtomicU32::new(0),
            holders: AtomicU32::new(0),
            interval,
        }
    }

    /// `gil->locked`.
    pub fn locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }

    /// `gil->switch_number` (modulo the spec's bound).
    pub fn switch_number(&self) -> u8 {
        lock(&self.mutex).switch_number
    }

    /// One switch interval passes for every thread waiting on `cond` now:
    /// each wait ends as timed out. The time source of loom and shuttle
    /// runs, where `wait_timeout` never times out.
    pub fn expire_waiters(&self, trace: &Recorder<Event>) {
        let mut g = lock(&self.mutex);
        trace.step(|log| {
            for w in std::mem::take(&mut g.cond.queue) {
                g.cond.expire(w);
                log.emit(Event::Timeout { thread: w });
            }
        });
        drop(g);
        self.cond.notify_all();
    }

    fn mutex_id(&self) -> LockId {
        LockId::Mutex { gil: self.id }
    }

    fn switch_id(&self) -> LockId {
        LockId::SwitchMutex { gil: self.id }
    }
}

impl Runtime {
    /// Ends one switch interval on GIL object `gil` (see
    /// [`Gil::expire_waiters`]), recording the timeouts.
    pub fn expire_waiters(&self, gil: u8) {
        self.gils[gil as usize].expire_waiters(&self.trace);
    }
}

/// How `take_gil` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    Held,
    /// The thread must exit: it hangs (the caller returns instead).
    Hung,
}

/// What the loop decided after re-taking `mutex` (the spec's `Relock`).
enum AfterWait {
    Loop,
    Request(u8),
    Exit(Option<u8>),
}

impl PyThread {
    pub(super) fn emit(&self, event: Event) {
        self.rt.trace.step(|log| log.emit(event));
    }

    /// `take_gil` for the current thread state.
    pub fn take_gil(&mut self) -> Taken {
        let rt = &*self.rt;
        let t = self.id;
        let ts = self.current.expect("take_gil needs a thread state");
        let gil = rt.gil_of(ts);
        let design = rt.cfg.design;
        // Enter: if (_PyThreadState_MustExit(tstate)) hang.
        rt.pass(t);
        let exit = rt.trace.step(|log| {
            let exit = rt.must_exit(ts);
            log.emit(Event::TakeEnter { thread: t, exit });
            exit
        });
        if exit {
            return Taken::Hung;
        }
        rt.touch_interp(rt.tstates[ts as usize].interp, "the GIL");
        rt.pass(t);
        let mut g = lock(&gil.mutex);
        self.emit(Event::Lock {
            thread: t,
            lock: gil.mutex_id(),
        });
        let mut requested = false;
        // Loop: while (locked) { timed wait; maybe request a drop }.
        while gil.locked.load(Ordering::Acquire) {
            let saved = g.switch_number;
            rt.pass(t);
            rt.trace.step(|log| {
                g.cond.enter(t);
                log.emit(Event::Wait {
                    thread: t,
                    cond: CondId::Cond { gil: gil.id },
                });
            });
            g = self.cond_wait(gil, g);
            if let Some(gate) = &rt.gate {
                // Woken: let the mutex go and re-take it when let through
                // (the spec's Relock, then Lock).
                drop(g);
                gate.pass(t);
                g = lock(&gil.mutex);
            }
            // Relock: the mutex is ours again; decide under it.
            let after = rt.trace.step(|log| {
                log.emit(Event::Lock {
                    thread: t,
                    lock: gil.mutex_id(),
                });
                let timed_out = g.cond.leave(t) == Some(Wake::Expired);
                let holder = decode(gil.last_holder.load(Ordering::Acquire));
                if timed_out && gil.locked.load(Ordering::Acquire) && g.switch_number == saved {
                    if rt.must_exit(ts) {
                        AfterWait::Exit(holder)
                    } else {
                        holder.map_or(AfterWait::Loop, AfterWait::Request)
                    }
                } else {
                    AfterWait::Loop
                }
            });
            match after {
                AfterWait::Loop => {}
                AfterWait::Request(holder) => {
                    // _Py_set_eval_breaker_bit(holder_tstate, DROP_REQUEST)
                    rt.pass(t);
                    rt.trace.step(|log| {
                        rt.touch_interp(rt.tstates[holder as usize].interp, "a thread state");
                        rt.tstates[holder as usize]
                            .drop_request
                            .store(true, Ordering::Release);
                        log.emit(Event::RequestDrop { thread: t, holder });
                    });
                    requested = true;
                }
                AfterWait::Exit(holder) => {
                    self.exit_waiter(g, requested, holder);
                    return Taken::Hung;
                }
            }
        }
        if design.force_switching {
            // MUTEX_LOCK(gil->switch_mutex), still holding mutex.
            rt.pass(t);
            let mut sw = lock(&gil.switch_mutex);
            self.emit(Event::Lock {
                thread: t,
                lock: gil.switch_id(),
            });
            rt.pass(t);
            self.take_set(gil, &mut g, Some(&mut sw));
            rt.pass(t);
            rt.trace.step(|log| {
                log.emit(Event::Unlock {
                    thread: t,
                    lock: gil.switch_id(),
                });
                drop(sw);
            });
            gil.switch_cond.notify_all();
        } else {
            rt.pass(t);
            self.take_set(gil, &mut g, None);
        }
        // Finish: the second must-exit check, then holds_gil = 1.
        rt.pass(t);
        let exit = rt.trace.step(|log| {
            let exit = rt.must_exit(ts);
            if !exit {
                let tstate = &rt.tstates[ts as usize];
                tstate.holds_gil.store(true, Ordering::Release);
                tstate.drop_request.store(false, Ordering::Release);
            }
            log.emit(Event::TakeDone { thread: t, exit });
            exit
        });
        rt.pass(t);
        rt.trace.step(|log| {
            log.emit(Event::Unlock {
                thread: t,
                lock: gil.mutex_id(),
            });
            drop(g);
        });
        if exit {
            // drop_gil(interp, NULL, 1), then hang.
            self.drop_impl(true, false);
            return Taken::Hung;
        }
        Taken::Held
    }

    /// take_gil step 6 (the spec's `Set`): `locked = 1`, a new
    /// `last_holder` bumps `switch_number`, signal `switch_cond`.
    fn take_set(
        &self,
        gil: &Gil,
        g: &mut MutexGuard<'_, Guarded>,
        sw: Option<&mut MutexGuard<'_, Waiters>>,
    ) {
        let rt = &*self.rt;
        let t = self.id;
        let ts = self.current.expect("take_gil has a thread state");
        rt.trace.step(|log| {
            if gil.holders.fetch_add(1, Ordering::AcqRel) != 0 {
                panic!(
                    "mutual_exclusion: thread {t} sets locked on GIL {} while another holds it",
                    gil.id
                );
            }
            // Release: the next thread to see locked clear (under mutex)
            // sees everything this holder wrote before dropping.
            gil.locked.store(true, Ordering::Release);
            let switched = decode(gil.last_holder.load(Ordering::Acquire)) != Some(ts);
            if switched {
                gil.last_holder.store(encode(Some(ts)), Ordering::Release);
                g.switch_number = (g.switch_number + 1) % SWITCH_NUMBER_MOD;
            }
            let woken = sw.and_then(|sw| sw.signal());
            log.emit(Event::TakeSet {
                thread: t,
                switched,
                woken,
            });
        });
    }

    /// Waits on `cond` until signalled or expired; returns with the mutex
    /// re-taken. On `std` a real timeout expires the wait and records it.
    fn cond_wait<'a>(
        &self,
        gil: &'a Gil,
        mut g: MutexGuard<'a, Guarded>,
    ) -> MutexGuard<'a, Guarded> {
        let t = self.id;
        loop {
            if g.cond.wake[t as usize] != Wake::Waiting {
                return g;
            }
            if let Some(gate) = &self.rt.gate {
                // Guided: no real timeouts; the driver expires the wait.
                gate.check_abort();
                (g, _) = wait_timeout(&gil.cond, g, super::gate::POLL);
                continue;
            }
            let timed_out;
            (g, timed_out) = wait_timeout(&gil.cond, g, gil.interval);
            if timed_out && g.cond.wake[t as usize] == Wake::Waiting {
                self.rt.trace.step(|log| {
                    g.cond.expire(t);
                    log.emit(Event::Timeout { thread: t });
                });
            }
        }
    }

    /// A waiter that must exit: unlock, clear the request it set
    /// (gh-96387), hang. The design decides whether the clear comes before
    /// the unlock.
    fn exit_waiter(&self, g: MutexGuard<'_, Guarded>, requested: bool, holder: Option<u8>) {
        let rt = &*self.rt;
        let t = self.id;
        let gil_id = rt.gil_of(self.current.expect("in take_gil")).mutex_id();
        let design = rt.cfg.design;
        let clear = || {
            rt.pass(t);
            rt.trace.step(|log| {
                let cleared = holder.filter(|_| requested && design.exiting_waiter_clears_request);
                if let Some(h) = cleared {
                    rt.touch_interp(rt.tstates[h as usize].interp, "a thread state");
                    rt.tstates[h as usize]
                        .drop_request
                        .store(false, Ordering::Release);
                }
                log.emit(Event::WaiterExit { thread: t, cleared });
            })
        };
        if design.clear_request_before_unlock {
            clear();
        }
        rt.pass(t);
        rt.trace.step(|log| {
            log.emit(Event::Unlock {
                thread: t,
                lock: gil_id,
            });
            drop(g);
        });
        if !design.clear_request_before_unlock {
            clear();
        }
    }

    /// `drop_gil` with the current thread state, final or not.
    pub fn drop_gil(&mut self, final_release: bool) {
        self.drop_impl(final_release, true);
    }

    /// `drop_gil`; `with_tstate` is false on take_gil's must-exit path,
    /// which passes no thread state.
    pub(super) fn drop_impl(&self, final_release: bool, with_tstate: bool) {
        let rt = &*self.rt;
        let t = self.id;
        let ts = self.current.expect("drop_gil has a thread state");
        let gil = rt.gil_of(ts);
        let design = rt.cfg.design;
        // Enter: the locked check; last_holder = tstate unless final.
        rt.pass(t);
        rt.trace.step(|log| {
            if !gil.locked.load(Ordering::Acquire) {
                panic!(
                    "drop_only_when_locked: drop_gil: GIL {} is not locked",
                    gil.id
                );
            }
            if !final_release {
                gil.last_holder.store(encode(Some(ts)), Ordering::Release);
            }
            if final_release && with_tstate && !self.in_hook {
                rt.threads[t as usize].done.store(true, Ordering::Release);
            }
            log.emit(Event::DropEnter {
                thread: t,
                final_release,
            });
        });
        if final_release && with_tstate {
            let _g = lock(&rt.joined);
            rt.join_cond.notify_all();
        }
        // drop_gil_impl.
        rt.pass(t);
        let mut g = lock(&gil.mutex);
        self.emit(Event::Lock {
            thread: t,
            lock: gil.mutex_id(),
        });
        rt.pass(t);
        rt.trace.step(|log| {
            gil.holders.fetch_sub(1, Ordering::AcqRel);
            gil.locked.store(false, Ordering::Release);
            if with_tstate {
                rt.tstates[ts as usize]
                    .holds_gil
                    .store(false, Ordering::Release);
            }
            let woken = g.cond.signal();
            log.emit(Event::DropRelease { thread: t, woken });
        });
        gil.cond.notify_all();
        rt.pass(t);
        rt.trace.step(|log| {
            log.emit(Event::Unlock {
                thread: t,
                lock: gil.mutex_id(),
            });
            drop(g);
        });
        let skip = final_release && design.final_release_skips_switch_wait;
        if !design.force_switching || skip || !with_tstate {
            return;
        }
        // Tail: reads the thread state after the unlock. On a final release
        // the interpreter may be gone by now (gh-104341).
        rt.pass(t);
        let requested = rt.trace.step(|log| {
            let wait = rt.tstates[ts as usize].drop_request.load(Ordering::Acquire);
            log.emit(Event::DropTail { thread: t, wait });
            rt.touch_interp(
                rt.tstates[ts as usize].interp,
                "a thread state's eval breaker",
            );
            wait
        });
        if !requested {
            return;
        }
        rt.pass(t);
        let mut sw = lock(&gil.switch_mutex);
        self.emit(Event::Lock {
            thread: t,
            lock: gil.switch_id(),
        });
        // SwitchCheck (one gate: when it does not wait, its event is the
        // unlock below): not switched yet => clear the bit and wait.
        rt.pass(t);
        let must_wait = rt.trace.step(|log| {
            if decode(gil.last_holder.load(Ordering::Acquire)) == Some(ts) {
                rt.tstates[ts as usize]
                    .drop_request
                    .store(false, Ordering::Release);
                sw.enter(t);
                log.emit(Event::Wait {
                    thread: t,
                    cond: CondId::SwitchCond { gil: gil.id },
                });
                true
            } else {
                false
            }
        });
        if must_wait {
            while sw.leave(t).is_none() {
                match &rt.gate {
                    Some(gate) => {
                        gate.check_abort();
                        (sw, _) = wait_timeout(&gil.switch_cond, sw, super::gate::POLL);
                    }
                    None => sw = wait(&gil.switch_cond, sw),
                }
            }
            if let Some(gate) = &rt.gate {
                drop(sw);
                gate.pass(t);
                sw = lock(&gil.switch_mutex);
            }
            self.emit(Event::Lock {
                thread: t,
                lock: gil.switch_id(),
            });
            rt.pass(t);
        }
        rt.trace.step(|log| {
            log.emit(Event::Unlock {
                thread: t,
                lock: gil.switch_id(),
            });
            drop(sw);
        });
    }

    /// An eval-breaker check (`_Py_HandlePending`'s drop-request branch):
    /// when the current thread state's drop request is set, detach and
    /// attach again. Returns what the re-take did, or `None` when there
    /// was nothing to do.
    pub fn eval_breaker_check(&mut self) -> Option<Taken> {
        let rt = &*self.rt;
        let t = self.id;
        let ts = self.current?;
        let set = rt.trace.step(|log| {
            let set = rt.tstates[ts as usize].drop_request.load(Ordering::Acquire);
            if set {
                log.emit(Event::Check { thread: t });
            }
            set
        });
        if !set {
            return None;
        }
        self.drop_gil(false);
        Some(self.take_gil())
    }
}
