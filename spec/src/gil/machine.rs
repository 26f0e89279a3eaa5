//! The GIL spec's transition relation: for one OS thread, every event it
//! can take next and the state each leads to. `enabled` and `step` both
//! read it, so they cannot disagree.
//!
//! Each arm cites the CPython step it follows; the step names are those of
//! [`TakePc`], [`DropPc`], [`NewPc`] and [`DelPc`].

use super::*;

pub(super) fn init(cfg: &Config) -> State {
    let mut gils = Vec::new();
    let mut interps = Vec::new();
    for (i, spec) in cfg.interps.iter().enumerate() {
        // _PyEval_InitGIL: init_own_gil for the main interpreter and for
        // PyInterpreterConfig.gil == OWN; init_shared_gil points at the
        // main interpreter's otherwise.
        let gil = if i == 0 || spec.own_gil {
            gils.push(Gil {
                owner: i as u8,
                locked: false,
                last_holder: None,
                switch_number: 0,
                mutex: None,
                switch_mutex: None,
                last_os: None,
                handed_off: false,
            });
            gils.len() - 1
        } else {
            0
        };
        interps.push(Interp {
            gil: gil as u8,
            finalizing: None,
            deleted: false,
        });
    }
    let mut tstates: Vec<Tstate> = cfg
        .tstates
        .iter()
        .enumerate()
        .map(|(i, spec)| Tstate {
            interp: spec.interp,
            exists: cfg.initially_exists(i),
            holds_gil: false,
            drop_request: false,
            bound: 0,
        })
        .collect();
    let threads = cfg
        .threads
        .iter()
        .enumerate()
        .map(|(t, spec)| {
            if let Some(ts) = spec.tstate {
                tstates[ts as usize].bound |= 1 << t;
            }
            Thread {
                daemon: spec.daemon,
                interp: spec.tstate.map(|ts| cfg.tstates[ts as usize].interp),
                op: 0,
                step: Step::Start,
                current: spec.tstate,
                home: None,
                hook: None,
                holding: None,
                done: false,
            }
        })
        .collect();
    let mut s = State {
        gils,
        interps,
        tstates,
        threads,
        head: None,
        use_after_free: false,
    };
    for t in 0..cfg.threads.len() {
        begin_op(cfg, &mut s, t);
    }
    s
}

fn program<'a>(cfg: &'a Config, s: &State, t: usize) -> &'a [Op] {
    if s.threads[t].hook.is_some() {
        HOOK_PROGRAM
    } else {
        &cfg.threads[t].program
    }
}

fn begin_op(cfg: &Config, s: &mut State, t: usize) {
    let op = program(cfg, s, t)[s.threads[t].op as usize];
    s.threads[t].step = match op {
        Op::Take => Step::Take {
            pc: TakePc::Enter,
            then: Then::NextOp,
        },
        Op::Drop => Step::Drop {
            pc: DropPc::Enter,
            final_release: false,
            then: Then::NextOp,
        },
        Op::Exit => Step::Drop {
            pc: DropPc::Enter,
            final_release: true,
            then: Then::NextOp,
        },
        // new_threadstate: since gh-96071 the allocation comes first.
        Op::NewTstate if cfg.design.alloc_before_head_lock => Step::New(NewPc::Alloc),
        Op::NewTstate => Step::New(NewPc::Lock),
        Op::DeleteTstate => Step::Del(DelPc::Lock),
        Op::Join => Step::Join,
        Op::Run | Op::Compute | Op::Finalize | Op::DeleteInterp(_) | Op::BindMain | Op::Unbind => {
            Step::Start
        }
    };
}

fn next_op(cfg: &Config, s: &mut State, t: usize) {
    let next = s.threads[t].op as usize + 1;
    if next < program(cfg, s, t).len() {
        s.threads[t].op = next as u8;
        begin_op(cfg, s, t);
    } else if let Some(resume) = s.threads[t].hook.take() {
        // The hook's PyGILState_Release returned: back inside the
        // allocation of the outer new_threadstate.
        let th = &mut s.threads[t];
        th.op = resume.op;
        th.current = resume.current;
        th.step = Step::New(resume.step);
    } else if let Some(r) = cfg.threads[t].repeat_from {
        s.threads[t].op = r;
        begin_op(cfg, s, t);
    } else {
        s.threads[t].step = Step::Finished;
        s.threads[t].done = true;
    }
}

/// Marks a use-after-free when thread state `ts` belongs to a freed
/// interpreter.
fn touch_tstate(n: &mut State, ts: u8) {
    if n.freed(n.tstates[ts as usize].interp) {
        n.use_after_free = true;
    }
}

/// Marks a use-after-free when GIL object `g` was destroyed with its
/// interpreter.
fn touch_gil(n: &mut State, g: u8) {
    if n.freed(n.gils[g as usize].owner) {
        n.use_after_free = true;
    }
}

fn cond_waiters(s: &State, g: u8) -> Vec<u8> {
    waiters(s, g, |step| {
        matches!(
            step,
            Step::Take {
                pc: TakePc::Waiting { .. },
                ..
            }
        )
    })
}

fn switch_waiters(s: &State, g: u8) -> Vec<u8> {
    waiters(s, g, |step| {
        matches!(
            step,
            Step::Drop {
                pc: DropPc::SwitchWaiting,
                ..
            }
        )
    })
}

fn waiters(s: &State, g: u8, on: impl Fn(Step) -> bool) -> Vec<u8> {
    s.threads
        .iter()
        .enumerate()
        .filter(|(_, th)| on(th.step) && th.current.is_some_and(|ts| s.gil_of(ts) == g))
        .map(|(t, _)| t as u8)
        .collect()
}

/// The waiter `w` leaves its wait: it now has to re-take the mutex.
fn wake(th: &mut Thread) {
    th.step = match th.step {
        Step::Take {
            pc: TakePc::Waiting { saved, requested },
            then,
        } => Step::Take {
            pc: TakePc::Relock {
                saved,
                requested,
                timed_out: false,
            },
            then,
        },
        Step::Drop {
            pc: DropPc::SwitchWaiting,
            final_release,
            then,
        } => Step::Drop {
            pc: DropPc::SwitchRelock,
            final_release,
            then,
        },
        other => other,
    };
}

/// `COND_SIGNAL`: one successor per waiter it may wake (pthreads does not
/// say which), or one with nobody woken.
fn signal(
    out: &mut Vec<(Event, State)>,
    n: State,
    waiting: Vec<u8>,
    event: impl Fn(Option<u8>) -> Event,
) {
    if waiting.is_empty() {
        out.push((event(None), n));
        return;
    }
    for w in waiting {
        let mut m = n.clone();
        wake(&mut m.threads[w as usize]);
        out.push((event(Some(w)), m));
    }
}

pub(super) fn moves(cfg: &Config, s: &State, t: usize, out: &mut Vec<(Event, State)>) {
    let thread = t as u8;
    match s.threads[t].step {
        Step::Hung | Step::Finished => {}
        Step::Start => start_moves(cfg, s, t, out),
        Step::Join => {
            if s.joinable(t) {
                let mut n = s.clone();
                next_op(cfg, &mut n, t);
                out.push((Event::Join { thread }, n));
            }
        }
        Step::Take { pc, then } => take_moves(cfg, s, t, pc, then, out),
        Step::Drop {
            pc,
            final_release,
            then,
        } => drop_moves(cfg, s, t, pc, final_release, then, out),
        Step::New(pc) => new_moves(cfg, s, t, pc, out),
        Step::Del(pc) => del_moves(cfg, s, t, pc, out),
    }
}

fn start_moves(cfg: &Config, s: &State, t: usize, out: &mut Vec<(Event, State)>) {
    let thread = t as u8;
    let th = &s.threads[t];
    let op = program(cfg, s, t)[th.op as usize];
    match op {
        Op::Run | Op::Compute => {
            // _Py_HandlePending: the GIL drop request branch detaches
            // (drop_gil) and attaches (take_gil) again.
            if let Some(ts) = th.current
                && s.tstates[ts as usize].drop_request
            {
                let mut n = s.clone();
                n.threads[t].step = Step::Drop {
                    pc: DropPc::Enter,
                    final_release: false,
                    then: Then::Retake,
                };
                out.push((Event::Check { thread }, n));
            }
            if op == Op::Run {
                let mut n = s.clone();
                next_op(cfg, &mut n, t);
                out.push((Event::Leave { thread }, n));
            }
        }
        Op::Finalize => {
            let Some(ts) = th.current else { return };
            let mut n = s.clone();
            let interp = s.tstates[ts as usize].interp as usize;
            n.interps[interp].finalizing = Some(ts);
            next_op(cfg, &mut n, t);
            out.push((Event::Finalize { thread }, n));
        }
        Op::DeleteInterp(interp) => {
            // Py_EndInterpreter refuses while another thread state is
            // linked; the main interpreter's deletion does not wait.
            let own = cfg.threads[t].tstate;
            let alone = interp == 0
                || s.tstates
                    .iter()
                    .enumerate()
                    .all(|(k, ts)| ts.interp != interp || !ts.exists || own == Some(k as u8));
            if !alone {
                return;
            }
            let mut n = s.clone();
            n.interps[interp as usize].deleted = true;
            for ts in n.tstates.iter_mut().filter(|ts| ts.interp == interp) {
                ts.exists = false;
            }
            next_op(cfg, &mut n, t);
            out.push((Event::DeleteInterp { thread, interp }, n));
        }
        Op::BindMain => {
            let target = if cfg.design.tstate_per_os_thread {
                cfg.threads[t].main_tstate
            } else {
                cfg.shared_main_tstate
            };
            let Some(ts) = target else { return };
            let mut n = s.clone();
            n.tstates[ts as usize].bound |= 1 << t;
            n.threads[t].home = th.current;
            n.threads[t].current = Some(ts);
            next_op(cfg, &mut n, t);
            out.push((Event::Bind { thread, tstate: ts }, n));
        }
        Op::Unbind => {
            let Some(ts) = th.current else { return };
            let mut n = s.clone();
            n.tstates[ts as usize].bound &= !(1 << t);
            n.threads[t].current = th.home;
            n.threads[t].home = None;
            next_op(cfg, &mut n, t);
            out.push((Event::Unbind { thread }, n));
        }
        Op::Take | Op::Drop | Op::Exit | Op::Join | Op::NewTstate | Op::DeleteTstate => {}
    }
}

fn take_moves(
    cfg: &Config,
    s: &State,
    t: usize,
    pc: TakePc,
    then: Then,
    out: &mut Vec<(Event, State)>,
) {
    let thread = t as u8;
    let Some(ts) = s.threads[t].current else {
        return;
    };
    let g = s.gil_of(ts);
    let gil = &s.gils[g as usize];
    let mutex = LockId::Mutex { gil: g };
    let at = |n: &mut State, pc: TakePc| n.threads[t].step = Step::Take { pc, then };
    match pc {
        TakePc::Enter => {
            // take_gil: if (_PyThreadState_MustExit(tstate)) hang.
            let exit = s.must_exit(ts);
            let mut n = s.clone();
            if exit {
                n.threads[t].step = Step::Hung;
            } else {
                at(&mut n, TakePc::LockMutex);
            }
            out.push((Event::TakeEnter { thread, exit }, n));
        }
        TakePc::LockMutex => {
            if gil.mutex.is_none() {
                let mut n = s.clone();
                n.gils[g as usize].mutex = Some(thread);
                touch_gil(&mut n, g);
                at(&mut n, TakePc::Loop { requested: false });
                out.push((
                    Event::Lock {
                        thread,
                        lock: mutex,
                    },
                    n,
                ));
            }
        }
        TakePc::Loop { requested } => {
            if gil.locked {
                // saved_switchnum = switch_number; COND_TIMED_WAIT(cond, mutex).
                let mut n = s.clone();
                n.gils[g as usize].mutex = None;
                at(
                    &mut n,
                    TakePc::Waiting {
                        saved: gil.switch_number,
                        requested,
                    },
                );
                out.push((
                    Event::Wait {
                        thread,
                        cond: CondId::Cond { gil: g },
                    },
                    n,
                ));
            } else if cfg.design.force_switching {
                // MUTEX_LOCK(gil->switch_mutex), still holding mutex.
                if gil.switch_mutex.is_none() {
                    let mut n = s.clone();
                    n.gils[g as usize].switch_mutex = Some(thread);
                    at(&mut n, TakePc::Set);
                    out.push((
                        Event::Lock {
                            thread,
                            lock: LockId::SwitchMutex { gil: g },
                        },
                        n,
                    ));
                }
            } else {
                take_set(cfg, s, t, then, out);
            }
        }
        TakePc::Waiting { saved, requested } => {
            let mut n = s.clone();
            at(
                &mut n,
                TakePc::Relock {
                    saved,
                    requested,
                    timed_out: true,
                },
            );
            out.push((Event::Timeout { thread }, n));
            if cfg.spurious_wakeups {
                let mut n = s.clone();
                wake(&mut n.threads[t]);
                out.push((Event::Spurious { thread }, n));
            }
        }
        TakePc::Relock {
            saved,
            requested,
            timed_out,
        } => {
            if gil.mutex.is_some() {
                return;
            }
            let mut n = s.clone();
            n.gils[g as usize].mutex = Some(thread);
            touch_gil(&mut n, g);
            // if (timed_out && locked && switch_number == saved_switchnum)
            let next = if timed_out && gil.locked && gil.switch_number == saved {
                if s.must_exit(ts) {
                    let holder = gil.last_holder;
                    if cfg.design.clear_request_before_unlock {
                        TakePc::ExitClear { requested, holder }
                    } else {
                        TakePc::ExitUnlock { requested, holder }
                    }
                } else if let Some(holder) = gil.last_holder {
                    TakePc::Request { holder }
                } else {
                    TakePc::Loop { requested }
                }
            } else {
                TakePc::Loop { requested }
            };
            at(&mut n, next);
            out.push((
                Event::Lock {
                    thread,
                    lock: mutex,
                },
                n,
            ));
        }
        TakePc::Request { holder } => {
            // _Py_set_eval_breaker_bit(holder_tstate, _PY_GIL_DROP_REQUEST_BIT)
            let mut n = s.clone();
            n.tstates[holder as usize].drop_request = true;
            touch_tstate(&mut n, holder);
            at(&mut n, TakePc::Loop { requested: true });
            out.push((Event::RequestDrop { thread, holder }, n));
        }
        TakePc::ExitUnlock { requested, holder } => {
            let mut n = s.clone();
            n.gils[g as usize].mutex = None;
            if cfg.design.clear_request_before_unlock {
                n.threads[t].step = Step::Hung;
            } else {
                at(&mut n, TakePc::ExitClear { requested, holder });
            }
            out.push((
                Event::Unlock {
                    thread,
                    lock: mutex,
                },
                n,
            ));
        }
        TakePc::ExitClear { requested, holder } => {
            // gh-96387: if (drop_requested) unset the holder's bit; hang.
            let mut n = s.clone();
            let cleared = holder.filter(|_| requested && cfg.design.exiting_waiter_clears_request);
            if let Some(h) = cleared {
                n.tstates[h as usize].drop_request = false;
                touch_tstate(&mut n, h);
            }
            if cfg.design.clear_request_before_unlock {
                at(&mut n, TakePc::ExitUnlock { requested, holder });
            } else {
                n.threads[t].step = Step::Hung;
            }
            out.push((Event::WaiterExit { thread, cleared }, n));
        }
        TakePc::Set => take_set(cfg, s, t, then, out),
        TakePc::UnlockSwitch => {
            let mut n = s.clone();
            n.gils[g as usize].switch_mutex = None;
            at(&mut n, TakePc::Finish);
            out.push((
                Event::Unlock {
                    thread,
                    lock: LockId::SwitchMutex { gil: g },
                },
                n,
            ));
        }
        TakePc::Finish => {
            // if (_PyThreadState_MustExit(tstate)): unlock, final drop, hang.
            // Else holds_gil = 1 and the thread's own drop request is
            // cleared.
            let exit = s.must_exit(ts);
            let mut n = s.clone();
            if exit {
                at(&mut n, TakePc::ExitRelease);
            } else {
                n.tstates[ts as usize].holds_gil = true;
                n.tstates[ts as usize].drop_request = false;
                touch_tstate(&mut n, ts);
                at(&mut n, TakePc::Unlock);
            }
            out.push((Event::TakeDone { thread, exit }, n));
        }
        TakePc::ExitRelease => {
            let mut n = s.clone();
            n.gils[g as usize].mutex = None;
            n.threads[t].step = Step::Drop {
                pc: DropPc::Enter,
                final_release: true,
                then: Then::Hang,
            };
            out.push((
                Event::Unlock {
                    thread,
                    lock: mutex,
                },
                n,
            ));
        }
        TakePc::Unlock => {
            let mut n = s.clone();
            n.gils[g as usize].mutex = None;
            match then {
                Then::Resume => n.threads[t].step = Step::Start,
                _ => next_op(cfg, &mut n, t),
            }
            out.push((
                Event::Unlock {
                    thread,
                    lock: mutex,
                },
                n,
            ));
        }
    }
}

/// take_gil step 6: `locked = 1`; a new `last_holder` bumps
/// `switch_number`; FORCE_SWITCHING signals `switch_cond`.
fn take_set(cfg: &Config, s: &State, t: usize, then: Then, out: &mut Vec<(Event, State)>) {
    let thread = t as u8;
    let ts = s.threads[t].current.expect("take_gil has a thread state");
    let g = s.gil_of(ts);
    let gil = &s.gils[g as usize];
    let mut n = s.clone();
    let switched = gil.last_holder != Some(ts);
    {
        let ng = &mut n.gils[g as usize];
        ng.locked = true;
        if switched {
            ng.last_holder = Some(ts);
            ng.switch_number = (ng.switch_number + 1) % SWITCH_NUMBER_MOD;
        }
        if ng.last_os.is_some_and(|o| o != thread) {
            ng.handed_off = true;
        }
        ng.last_os = Some(thread);
    }
    n.threads[t].holding = Some(g);
    touch_gil(&mut n, g);
    if cfg.design.force_switching {
        n.threads[t].step = Step::Take {
            pc: TakePc::UnlockSwitch,
            then,
        };
        let waiting = switch_waiters(s, g);
        signal(out, n, waiting, |woken| Event::TakeSet {
            thread,
            switched,
            woken,
        });
    } else {
        n.threads[t].step = Step::Take {
            pc: TakePc::Finish,
            then,
        };
        out.push((
            Event::TakeSet {
                thread,
                switched,
                woken: None,
            },
            n,
        ));
    }
}

#[allow(clippy::too_many_arguments)]
fn drop_moves(
    cfg: &Config,
    s: &State,
    t: usize,
    pc: DropPc,
    final_release: bool,
    then: Then,
    out: &mut Vec<(Event, State)>,
) {
    let thread = t as u8;
    let Some(ts) = s.threads[t].current else {
        return;
    };
    let g = s.gil_of(ts);
    let gil = &s.gils[g as usize];
    let mutex = LockId::Mutex { gil: g };
    let switch_mutex = LockId::SwitchMutex { gil: g };
    let at = |n: &mut State, pc: DropPc| {
        n.threads[t].step = Step::Drop {
            pc,
            final_release,
            then,
        }
    };
    match pc {
        DropPc::Enter => {
            // if (!final_release) last_holder = tstate ("threads might have
            // been switched under our feet").
            let mut n = s.clone();
            if !final_release {
                n.gils[g as usize].last_holder = Some(ts);
            }
            // The hook's PyGILState_Release is not the thread's end.
            if final_release && then == Then::NextOp && s.threads[t].hook.is_none() {
                n.threads[t].done = true;
            }
            touch_gil(&mut n, g);
            at(&mut n, DropPc::LockMutex);
            out.push((
                Event::DropEnter {
                    thread,
                    final_release,
                },
                n,
            ));
        }
        DropPc::LockMutex => {
            if gil.mutex.is_none() {
                let mut n = s.clone();
                n.gils[g as usize].mutex = Some(thread);
                touch_gil(&mut n, g);
                at(&mut n, DropPc::Release);
                out.push((
                    Event::Lock {
                        thread,
                        lock: mutex,
                    },
                    n,
                ));
            }
        }
        DropPc::Release => {
            // drop_gil_impl: locked = 0; holds_gil = 0; COND_SIGNAL(cond).
            // The must-exit path passes no thread state (then == Hang).
            let mut n = s.clone();
            n.gils[g as usize].locked = false;
            n.threads[t].holding = None;
            if then != Then::Hang {
                n.tstates[ts as usize].holds_gil = false;
            }
            at(&mut n, DropPc::UnlockMutex);
            let waiting = cond_waiters(s, g);
            signal(out, n, waiting, |woken| Event::DropRelease {
                thread,
                woken,
            });
        }
        DropPc::UnlockMutex => {
            let mut n = s.clone();
            n.gils[g as usize].mutex = None;
            let skip = final_release && cfg.design.final_release_skips_switch_wait;
            if cfg.design.force_switching && !skip && then != Then::Hang {
                at(&mut n, DropPc::Tail);
            } else {
                finish_drop(cfg, &mut n, t, final_release, then);
            }
            out.push((
                Event::Unlock {
                    thread,
                    lock: mutex,
                },
                n,
            ));
        }
        DropPc::Tail => {
            // if (_Py_eval_breaker_bit_is_set(tstate, DROP_REQUEST)): reads
            // the thread state after the unlock.
            let wait = s.tstates[ts as usize].drop_request;
            let mut n = s.clone();
            touch_tstate(&mut n, ts);
            if wait {
                at(&mut n, DropPc::LockSwitch);
            } else {
                finish_drop(cfg, &mut n, t, final_release, then);
            }
            out.push((Event::DropTail { thread, wait }, n));
        }
        DropPc::LockSwitch | DropPc::SwitchRelock => {
            if gil.switch_mutex.is_none() {
                let mut n = s.clone();
                n.gils[g as usize].switch_mutex = Some(thread);
                touch_gil(&mut n, g);
                let next = if pc == DropPc::LockSwitch {
                    DropPc::SwitchCheck
                } else {
                    DropPc::SwitchUnlock
                };
                at(&mut n, next);
                out.push((
                    Event::Lock {
                        thread,
                        lock: switch_mutex,
                    },
                    n,
                ));
            }
        }
        DropPc::SwitchCheck => {
            // if (last_holder == tstate) { unset bit; COND_WAIT(switch_cond) }
            let mut n = s.clone();
            n.gils[g as usize].switch_mutex = None;
            if gil.last_holder == Some(ts) {
                n.tstates[ts as usize].drop_request = false;
                touch_tstate(&mut n, ts);
                at(&mut n, DropPc::SwitchWaiting);
                out.push((
                    Event::Wait {
                        thread,
                        cond: CondId::SwitchCond { gil: g },
                    },
                    n,
                ));
            } else {
                finish_drop(cfg, &mut n, t, final_release, then);
                out.push((
                    Event::Unlock {
                        thread,
                        lock: switch_mutex,
                    },
                    n,
                ));
            }
        }
        DropPc::SwitchWaiting => {
            if cfg.spurious_wakeups {
                let mut n = s.clone();
                wake(&mut n.threads[t]);
                out.push((Event::Spurious { thread }, n));
            }
        }
        DropPc::SwitchUnlock => {
            let mut n = s.clone();
            n.gils[g as usize].switch_mutex = None;
            finish_drop(cfg, &mut n, t, final_release, then);
            out.push((
                Event::Unlock {
                    thread,
                    lock: switch_mutex,
                },
                n,
            ));
        }
    }
}

fn finish_drop(cfg: &Config, n: &mut State, t: usize, final_release: bool, then: Then) {
    match then {
        Then::NextOp => {
            if final_release {
                // _PyThreadState_DeleteCurrent: the thread state is
                // unlinked, unbound and freed.
                if let Some(ts) = n.threads[t].current.take() {
                    let ts = &mut n.tstates[ts as usize];
                    ts.exists = false;
                    ts.bound &= !(1 << t);
                }
            }
            next_op(cfg, n, t);
        }
        Then::Retake => {
            n.threads[t].step = Step::Take {
                pc: TakePc::Enter,
                then: Then::Resume,
            }
        }
        Then::Resume => n.threads[t].step = Step::Start,
        Then::Hang => n.threads[t].step = Step::Hung,
    }
}

fn new_moves(cfg: &Config, s: &State, t: usize, pc: NewPc, out: &mut Vec<(Event, State)>) {
    let thread = t as u8;
    let th = &s.threads[t];
    let slot = if th.hook.is_some() {
        cfg.threads[t].hook_tstate
    } else {
        cfg.threads[t].gilstate_tstate
    };
    let Some(slot) = slot else { return };
    let early = cfg.design.alloc_before_head_lock;
    let at = |n: &mut State, pc: NewPc| n.threads[t].step = Step::New(pc);
    match pc {
        NewPc::Alloc => {
            // alloc_threadstate(): PyMem_RawCalloc, whose hook may run.
            let next = if early { NewPc::Lock } else { NewPc::Add };
            let mut n = s.clone();
            at(&mut n, next);
            out.push((
                Event::Alloc {
                    thread,
                    hook: false,
                },
                n,
            ));
            if cfg.alloc_hook && th.hook.is_none() && cfg.threads[t].hook_tstate.is_some() {
                // The hook calls PyGILState_Ensure: the thread has no
                // thread state yet, so it creates one, all over again.
                let mut n = s.clone();
                n.threads[t].hook = Some(Resume {
                    op: th.op,
                    step: next,
                    current: th.current,
                });
                n.threads[t].op = 0;
                n.threads[t].current = None;
                begin_op(cfg, &mut n, t);
                out.push((Event::Alloc { thread, hook: true }, n));
            }
        }
        NewPc::Lock => {
            if s.head.is_none() {
                let mut n = s.clone();
                n.head = Some(thread);
                at(&mut n, if early { NewPc::Add } else { NewPc::Alloc });
                out.push((
                    Event::Lock {
                        thread,
                        lock: LockId::Head,
                    },
                    n,
                ));
            }
        }
        NewPc::Add => {
            // init_threadstate + add_threadstate; then bind_tstate and
            // bind_gilstate_tstate (after the unlock in CPython, merged:
            // binding touches only this thread's own state).
            let mut n = s.clone();
            let ts = &mut n.tstates[slot as usize];
            ts.exists = true;
            ts.bound |= 1 << t;
            n.threads[t].current = Some(slot);
            at(&mut n, NewPc::Unlock);
            out.push((
                Event::AddTstate {
                    thread,
                    tstate: slot,
                },
                n,
            ));
        }
        NewPc::Unlock => {
            let mut n = s.clone();
            n.head = None;
            next_op(cfg, &mut n, t);
            out.push((
                Event::Unlock {
                    thread,
                    lock: LockId::Head,
                },
                n,
            ));
        }
    }
}

fn del_moves(cfg: &Config, s: &State, t: usize, pc: DelPc, out: &mut Vec<(Event, State)>) {
    let thread = t as u8;
    let Some(ts) = s.threads[t].current else {
        return;
    };
    match pc {
        DelPc::Lock => {
            if s.head.is_none() {
                let mut n = s.clone();
                n.head = Some(thread);
                n.threads[t].step = Step::Del(DelPc::Remove);
                out.push((
                    Event::Lock {
                        thread,
                        lock: LockId::Head,
                    },
                    n,
                ));
            }
        }
        DelPc::Remove => {
            let mut n = s.clone();
            n.tstates[ts as usize].exists = false;
            touch_tstate(&mut n, ts);
            n.threads[t].step = Step::Del(DelPc::Unlock);
            out.push((Event::RemoveTstate { thread, tstate: ts }, n));
        }
        DelPc::Unlock => {
            let mut n = s.clone();
            n.head = None;
            next_op(cfg, &mut n, t);
            out.push((
                Event::Unlock {
                    thread,
                    lock: LockId::Head,
                },
                n,
            ));
        }
    }
}
