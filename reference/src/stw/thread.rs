//! A thread's side of the protocol: attach and detach, critical sections,
//! blocking calls, the eval breaker, exit, and the instruction loop's
//! operations.

use std::ops::ControlFlow;

use cpyrt_spec::stw::{Cs, Scope, Wake};

use super::{ATTACHED, DETACHED, Event, Listed, PLEASE_STOP, Runtime, SHUTTING_DOWN, SUSPENDED};
use crate::eval::Machine;
use crate::primitive::sync::atomic::Ordering;
use crate::primitive::sync::{Arc, lock, wait, wait_timeout};

/// How a thread's program ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It deleted its thread state.
    Exited,
    /// It found SHUTTING_DOWN when attaching (`_PyThreadState_HangThread`).
    Hung,
    /// It finalized the runtime.
    Finalized,
}

/// The operations of a program, one per instruction (see `crate::eval`);
/// an eval-breaker check precedes each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Nothing but the eval-breaker check before it.
    Check,
    /// `Py_BEGIN_CRITICAL_SECTION` on the interpreter's object.
    Begin,
    /// `Py_END_CRITICAL_SECTION`.
    End,
    /// A blocking call between `Py_BEGIN_ALLOW_THREADS` and
    /// `Py_END_ALLOW_THREADS`.
    Syscall,
    /// Stop the world of `scope`, do the pause's work (a critical section
    /// on the interpreter's object when `cs`), start it again.
    Pause { scope: Scope, cs: bool },
    /// Delete the thread state and end the program.
    Exit,
    /// `Py_FinalizeEx`: the global pause that hangs every other thread of
    /// the interpreter; ends the program.
    Finalize,
}

/// A thread's handle: its spec id and its thread-private state. Only the
/// OS thread that owns it uses it.
#[derive(Debug)]
pub struct Thread {
    pub(super) rt: Arc<Runtime>,
    pub(super) tid: u8,
    /// `tstate->critical_section` (at most one, on the interpreter's object).
    pub(super) cs: Cs,
    /// The thread has left the runtime (exited, hung or finalized).
    pub(super) done: Option<Outcome>,
}

impl Runtime {
    /// `new_threadstate` for a thread that starts unbound, then
    /// `_PyThreadState_Attach`. `Err` when finalization made it hang.
    pub fn create(rt: &Arc<Runtime>, tid: u8) -> Result<Thread, Outcome> {
        let this = &**rt;
        let t = tid as usize;
        assert!(!this.cfg.roles[t].starts_bound, "thread {tid} starts bound");
        let created = this.step(|log| {
            let mut head = this.head();
            if head.finalized {
                return false;
            }
            assert_eq!(head.listed[t], Listed::Unborn, "thread {tid} created twice");
            let interp = this.tstates[t].interp;
            // init_threadstate: SUSPENDED while a pause covering the
            // interpreter is requested (it was not counted).
            let in_pause = head.stw[0].requested || head.stw[1 + interp as usize].requested;
            let suspended = in_pause && this.cfg.design.new_thread_starts_suspended;
            let state = if suspended { SUSPENDED } else { DETACHED };
            this.tstates[t].state.store(state, Ordering::SeqCst);
            head.listed[t] = Listed::Alive;
            log.emit(Event::Create {
                thread: tid,
                suspended,
            });
            true
        });
        if !created {
            return Err(Outcome::Hung);
        }
        let mut thread = Thread::new(Arc::clone(rt), tid);
        thread.attach()?;
        Ok(thread)
    }
}

impl Thread {
    pub(super) fn new(rt: Arc<Runtime>, tid: u8) -> Thread {
        Thread {
            rt,
            tid,
            cs: Cs::None,
            done: None,
        }
    }

    pub fn tid(&self) -> u8 {
        self.tid
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    pub(super) fn interp(&self) -> u8 {
        self.rt.tstates[self.tid as usize].interp
    }

    /// Inside a step: `detach_thread(tstate, target)`. Releases the
    /// critical section (`_PyCriticalSection_SuspendAll`), then stores the
    /// state. Returns the waiter the release woke.
    pub(super) fn detach_in_step(&mut self, target: u32) -> Option<Wake> {
        let rt = &self.rt;
        let ts = &rt.tstates[self.tid as usize];
        assert_eq!(
            ts.state.load(Ordering::Relaxed),
            ATTACHED,
            "detach while not attached"
        );
        let wake = match self.cs {
            Cs::Held(o) => {
                self.cs = Cs::Released(o);
                rt.objects[o as usize].unlock(self.tid)
            }
            _ => None,
        };
        // SeqCst as `_Py_atomic_store_int`: a requester's CAS that parks
        // this thread must see every access it made while attached, which
        // the requester's HEAD_LOCK acquire and this store's order provide.
        ts.state.store(target, Ordering::SeqCst);
        rt.note_detach();
        wake
    }

    /// `_PyThreadState_Attach`: CAS to ATTACHED, waiting while SUSPENDED
    /// (`tstate_wait_attach`), then resume the critical section released
    /// on detach, parking (detached) while its lock is held elsewhere.
    pub fn attach(&mut self) -> Result<(), Outcome> {
        loop {
            self.attach_cas()?;
            let Cs::Released(o) = self.cs else {
                return Ok(());
            };
            if self.resume(o)? {
                return Ok(());
            }
        }
    }

    /// The CAS of `tstate_try_attach`, after waiting out SUSPENDED.
    fn attach_cas(&mut self) -> Result<(), Outcome> {
        let tid = self.tid;
        let t = tid as usize;
        loop {
            let rt = &self.rt;
            let ts = &rt.tstates[t];
            let design = rt.cfg.design;
            let result = rt.step(|log| {
                let state = ts.state.load(Ordering::Relaxed);
                let from = match state {
                    DETACHED => DETACHED,
                    SUSPENDED if !design.suspended_blocks_attach => SUSPENDED,
                    SUSPENDED => return Err(SUSPENDED),
                    SHUTTING_DOWN => {
                        log.emit(Event::Hang { thread: tid });
                        return Err(SHUTTING_DOWN);
                    }
                    other => panic!("attach from state {other}"),
                };
                // A failed CAS means a requester parked us meanwhile.
                if ts
                    .state
                    .compare_exchange(from, ATTACHED, Ordering::SeqCst, Ordering::Relaxed)
                    .is_err()
                {
                    return Err(DETACHED);
                }
                rt.check(
                    from != SUSPENDED,
                    "only_pause_end_unsuspends: a thread attached out of SUSPENDED by itself",
                );
                let head = rt.head();
                let stopped = (0..head.stw.len()).any(|i| {
                    let scope = if i == 0 { Scope::Global } else { Scope::Interp(i as u8 - 1) };
                    head.stw[i].world_stopped
                        && scope.covers(ts.interp)
                        && head.stw[i].requester != Some(tid)
                });
                rt.check(
                    !stopped,
                    "stopped_world_has_no_other_attached_thread: a thread attached in a stopped world",
                );
                log.emit(Event::Attach { thread: tid });
                Ok(())
            });
            match result {
                Ok(()) => return Ok(()),
                Err(SHUTTING_DOWN) => {
                    self.done = Some(Outcome::Hung);
                    return Err(Outcome::Hung);
                }
                Err(SUSPENDED) => {
                    // Park on the state until a requester changes it.
                    let mut guard = lock(&ts.park);
                    while ts.state.load(Ordering::Relaxed) == SUSPENDED {
                        guard = wait(&ts.unparked, guard);
                    }
                }
                Err(_) => {}
            }
        }
    }

    /// `_PyCriticalSection_Resume`: true when the lock is held again; false
    /// when the thread parked, was woken, and must attach again.
    fn resume(&mut self, o: u8) -> Result<bool, Outcome> {
        let rt = Arc::clone(&self.rt);
        let tid = self.tid;
        let acquired = rt.step(|log| {
            let acquired = rt.objects[o as usize].try_lock_or_park(tid);
            if acquired {
                self.cs = Cs::Held(o);
            } else {
                // Parking detaches; the section is already released.
                self.detach_in_step(DETACHED);
            }
            log.emit(Event::Resume {
                thread: tid,
                object: o,
                parked: !acquired,
            });
            acquired
        });
        if !acquired {
            self.wait_lock(rt.objects[o as usize].wait(tid))?;
        }
        Ok(acquired)
    }

    /// After a lock wait: `Err(Hung)` when the process exited meanwhile.
    pub(super) fn wait_lock(&mut self, woken: bool) -> Result<(), Outcome> {
        if woken {
            Ok(())
        } else {
            self.done = Some(Outcome::Hung);
            Err(Outcome::Hung)
        }
    }

    /// `Py_BEGIN_CRITICAL_SECTION` on the interpreter's object.
    pub fn begin_critical_section(&mut self) -> Result<(), Outcome> {
        assert_eq!(self.cs, Cs::None, "one critical section at a time");
        let rt = Arc::clone(&self.rt);
        let (tid, o) = (self.tid, self.interp());
        let mut retry = false;
        loop {
            let acquired = rt.step(|log| {
                let acquired = rt.objects[o as usize].try_lock_or_park(tid);
                if acquired {
                    self.cs = Cs::Held(o);
                } else {
                    self.detach_in_step(DETACHED);
                }
                log.emit(Event::BeginCs {
                    thread: tid,
                    object: o,
                    retry,
                    parked: !acquired,
                });
                acquired
            });
            if acquired {
                return Ok(());
            }
            self.wait_lock(rt.objects[o as usize].wait(tid))?;
            self.attach()?;
            retry = true;
        }
    }

    /// `Py_END_CRITICAL_SECTION`.
    pub fn end_critical_section(&mut self) {
        let Cs::Held(o) = self.cs else {
            panic!("no critical section to end");
        };
        let rt = Arc::clone(&self.rt);
        let tid = self.tid;
        rt.step(|log| {
            let wake = rt.objects[o as usize].unlock(tid);
            self.cs = Cs::None;
            log.emit(Event::EndCs {
                thread: tid,
                object: o,
                wake,
            });
        });
    }

    /// A blocking call: detach, block (outside the runtime), attach.
    pub fn blocking_call(&mut self, call: impl FnOnce()) -> Result<(), Outcome> {
        let rt = Arc::clone(&self.rt);
        let tid = self.tid;
        rt.step(|log| {
            let wake = self.detach_in_step(DETACHED);
            log.emit(Event::Syscall { thread: tid, wake });
        });
        call();
        self.attach()
    }

    /// An eval-breaker check: `_Py_HandlePending`'s PLEASE_STOP branch.
    pub fn eval_breaker(&mut self) -> Result<(), Outcome> {
        let t = self.tid as usize;
        // Relaxed, as `_Py_HandlePending` loads it: a missed bit is seen at
        // a later check, and the requester rescans meanwhile.
        if self.rt.tstates[t].eval_breaker.load(Ordering::Relaxed) & PLEASE_STOP == 0 {
            return Ok(());
        }
        let (tid, interp) = (self.tid, self.interp());
        let rt = Arc::clone(&self.rt);
        let target = rt.step(|log| {
            rt.tstates[t]
                .eval_breaker
                .fetch_and(!PLEASE_STOP, Ordering::SeqCst);
            // _PyThreadState_Suspend: the global request first.
            let target = {
                let head = rt.head();
                [Scope::Global, Scope::Interp(interp)]
                    .into_iter()
                    .find(|s| head.stw[s.index()].requested)
            };
            let to = if target.is_some() && rt.cfg.design.park_to_suspended {
                SUSPENDED
            } else {
                DETACHED
            };
            let wake = self.detach_in_step(to);
            log.emit(Event::HandlePending {
                thread: tid,
                suspend: target,
                wake,
            });
            target
        });
        if let Some(scope) = target {
            rt.step(|log| {
                let mut head = rt.head();
                let countdown = rt.decrement(&mut head, scope);
                log.emit(Event::Countdown {
                    thread: tid,
                    scope,
                    countdown: countdown.max(-1) as i8,
                });
            });
        }
        self.attach()
    }

    /// `_PyThreadState_DeleteCurrent`: unlink the thread state and, if it
    /// was counted and never suspended, release the pauses waiting for it.
    pub fn exit(mut self) {
        self.exit_here();
    }

    fn exit_here(&mut self) {
        assert_eq!(self.cs, Cs::None, "exit inside a critical section");
        let rt = Arc::clone(&self.rt);
        let (tid, interp) = (self.tid, self.interp());
        rt.step(|log| {
            let mut head = rt.head();
            head.listed[tid as usize] = Listed::Gone;
            if rt.cfg.design.delete_decrements_countdown {
                for scope in [Scope::Interp(interp), Scope::Global] {
                    if head.stw[scope.index()].requested {
                        rt.decrement(&mut head, scope);
                    }
                }
            }
            log.emit(Event::Exit { thread: tid });
        });
        self.done = Some(Outcome::Exited);
    }

    /// The requester's stop-event wait: until the event is set, a thread
    /// detached since `seen`, or (std only) 1 ms passed.
    pub(super) fn wait_event(&self, scope: Scope, seen: u64) {
        // Under a step gate the gate is the wait: the requester stops at
        // the gate of its next step (`StwWait`), and the driver lets it
        // through when it chooses the wait to end, with the event set or
        // after a timeout (the spec's choice), instead of after 1 ms.
        #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
        if self.rt.gate.get().is_some() {
            return;
        }
        let mut ev = lock(&self.rt.events);
        while !ev.set[scope.index()] && ev.detaches == seen {
            let (guard, timed_out) = wait_timeout(
                &self.rt.events_changed,
                ev,
                std::time::Duration::from_millis(1),
            );
            ev = guard;
            if timed_out && !crate::primitive::MODEL_CHECKED {
                break;
            }
        }
    }
}

impl Machine for Thread {
    type Op = Op;
    type Exit = Outcome;

    fn eval_breaker(&mut self) -> ControlFlow<Outcome> {
        match Thread::eval_breaker(self) {
            Ok(()) => ControlFlow::Continue(()),
            Err(o) => ControlFlow::Break(o),
        }
    }

    fn exec(&mut self, op: &Op) -> ControlFlow<Outcome> {
        let result = match *op {
            Op::Check => Ok(()),
            Op::Begin => self.begin_critical_section(),
            Op::End => {
                self.end_critical_section();
                Ok(())
            }
            Op::Syscall => self.blocking_call(crate::primitive::thread::yield_now),
            Op::Pause { scope, cs } => self.pause(scope, cs),
            Op::Exit => {
                self.exit_here();
                Err(Outcome::Exited)
            }
            Op::Finalize => self.finalize().and(Err(Outcome::Finalized)),
        };
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(o) => ControlFlow::Break(o),
        }
    }
}
