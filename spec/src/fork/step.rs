//! The transition function of the fork spec: which events a thread may
//! take and what each does. Comments name the CPython function a step
//! follows; `reject` means the thread waits (or the protocol forbids the
//! event), `forever` means it waits for something no live thread will do.

use super::protocol;
use super::*;

pub(super) fn reject<T>(reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason))
}

/// The result of trying to take a lock.
enum Acquire {
    Free,
    /// Held by a live thread: wait.
    Wait,
    /// Held by a dead thread, or by the caller (none of the modelled locks
    /// but the import lock is recursive): the wait never ends.
    Forever,
}

fn acquire(s: &State, t: u8, owner: Option<u8>) -> Acquire {
    match owner {
        None => Acquire::Free,
        Some(o) if o == t || !s.alive(o) => Acquire::Forever,
        Some(_) => Acquire::Wait,
    }
}

/// Takes `owner`'s lock for `t`, or waits, or blocks `t` forever.
pub(super) fn lock(
    s: &State,
    n: &mut State,
    t: u8,
    owner: Option<u8>,
    what: Blocker,
) -> Result<bool, Rejection> {
    match acquire(s, t, owner) {
        Acquire::Free => Ok(true),
        Acquire::Wait => reject(format!("{what:?} is held by a live thread")),
        Acquire::Forever => {
            n.blocked = Some((t, what));
            Ok(false)
        }
    }
}

/// Appends every event thread `t` could conceivably take; `apply` decides.
pub(super) fn candidates(cfg: &Config, s: &State, t: u8, out: &mut Vec<Event>) {
    let thread = t;
    out.extend([
        Event::Attach { thread },
        Event::Detach { thread },
        Event::Suspend { thread },
        Event::ImportAcquire { thread },
        Event::ImportRelease { thread },
        Event::MutexLock { thread },
        Event::MutexUnlock { thread },
    ]);
    for global in [true, false] {
        out.extend([
            Event::PauseLock { thread, global },
            Event::PauseRequest { thread, global },
            Event::PausePoll { thread, global },
        ]);
    }
    out.push(Event::PauseStart { thread });
    for target in 1..cfg.threads as u8 {
        out.extend([
            Event::StartBegin { thread, target },
            Event::StartEnd { thread, target },
            Event::DropHandle { thread, target },
            Event::Gc { thread, target },
            Event::Join { thread, target },
        ]);
    }
    out.extend([
        Event::ExitStart { thread },
        Event::ExitUnlink { thread },
        Event::ExitDone { thread },
    ]);
    if t == FORKER {
        out.extend([
            Event::BeforeFork {
                thread,
                step: BeforeStep::ImportLock,
            },
            Event::BeforeFork {
                thread,
                step: BeforeStep::HeadLock,
            },
            Event::Fork {
                thread,
                follow: Process::Parent,
            },
            Event::Fork {
                thread,
                follow: Process::Child,
            },
        ]);
        if let Phase::AfterFork { done } = s.phase {
            match s.process {
                Process::Parent => {
                    if let Some(&step) = cfg
                        .design
                        .parent_steps()
                        .iter()
                        .find(|p| done & p.bit() == 0)
                    {
                        out.push(Event::AfterForkParent { thread, step });
                    }
                }
                Process::Child => {
                    if let Some(&step) = cfg
                        .design
                        .child_steps()
                        .iter()
                        .find(|c| done & c.bit() == 0)
                    {
                        out.push(Event::AfterForkChild { thread, step });
                    }
                }
            }
        }
        out.extend([
            Event::Retire { thread },
            Event::Quiescent { thread },
            Event::Scan {
                thread,
                rd_seq: s.scan_min(),
            },
            Event::Reclaim { thread },
        ]);
    }
}

/// Where the forker may run ordinary Python code.
pub(super) fn forker_runs_code(s: &State) -> bool {
    matches!(s.phase, Phase::Running | Phase::Ready)
}

/// Where a thread may run its program's code and take its locks: workers
/// in the parent, the forker outside the fork protocol. Threads started in
/// the child only attach, detach, suspend and exit: the child's own
/// progress is the subject there.
fn runs_code(s: &State, t: u8) -> bool {
    if t == FORKER {
        forker_runs_code(s)
    } else {
        s.process == Process::Parent
    }
}

/// The thread is inside `ThreadHandle_start` for some handle: it holds no
/// eval-breaker check until the handle is RUNNING.
pub(super) fn mid_start(s: &State, t: u8) -> bool {
    s.threads
        .iter()
        .enumerate()
        .any(|(u, th)| th.handle.state == HandleState::Starting && starter(s, u as u8) == t)
}

/// Who starts thread `target`: its predecessor in the parent, the forker
/// in the child.
fn starter(s: &State, target: u8) -> u8 {
    match s.process {
        Process::Parent => target - 1,
        Process::Child => FORKER,
    }
}

pub(super) fn pause(s: &State, global: bool) -> &Pause {
    if global { &s.global } else { &s.interp }
}

pub(super) fn pause_mut(n: &mut State, global: bool) -> &mut Pause {
    if global { &mut n.global } else { &mut n.interp }
}

/// Detaches `t` into `target` state: QSBR offline, GIL released, the
/// PLEASE_STOP bit handled. Mirrors `detach_thread` in `Python/pystate.c`.
fn detach(n: &mut State, t: u8, target: Ts) {
    let th = &mut n.threads[t as usize];
    th.ts = target;
    th.seq = OFFLINE;
    th.please_stop = false;
    if n.gil == Gil::Held(t) {
        n.gil = Gil::Free;
    }
}

/// `park_detached_threads`: DETACHED threads in scope become SUSPENDED and
/// are subtracted; ATTACHED ones get PLEASE_STOP. Then, as the requester's
/// loop does, the world is stopped once the countdown is 0. Returns
/// `false` if the countdown can never reach 0 (it counts threads that are
/// gone).
fn park(n: &mut State, requester: u8, global: bool) -> bool {
    let mut parked = 0;
    for (u, th) in n.threads.iter_mut().enumerate() {
        if u as u8 == requester {
            continue;
        }
        match th.ts {
            Ts::Detached => {
                th.ts = Ts::Suspended;
                parked += 1;
            }
            Ts::Attached => th.please_stop = true,
            _ => {}
        }
    }
    let p = pause_mut(n, global);
    p.countdown -= parked;
    if p.countdown == 0 {
        p.stopped = true;
        return true;
    }
    // Only a live, attached thread in scope can still decrement.
    n.threads
        .iter()
        .enumerate()
        .any(|(u, th)| u as u8 != requester && th.alive && th.ts == Ts::Attached)
}

/// `start_the_world`: SUSPENDED threads in scope back to DETACHED.
pub(super) fn start_world(n: &mut State, global: bool) {
    let requester = pause(n, global).owner;
    for (u, th) in n.threads.iter_mut().enumerate() {
        if Some(u as u8) != requester && th.ts == Ts::Suspended {
            th.ts = Ts::Detached;
        }
    }
    *pause_mut(n, global) = Pause::default();
}

/// `ThreadHandle_decref` dropping the last reference: unlink from the
/// handle list and, if the handle is still RUNNING, detach the OS thread.
fn final_decref(n: &mut State, target: u8) {
    let h = &mut n.threads[target as usize];
    h.handle.listed = false;
    if h.handle.state == HandleState::Running {
        match h.os {
            Os::Lost => n.touched_lost_thread = true,
            _ => h.os = Os::Released,
        }
        h.handle.state = HandleState::Done;
    }
}

pub(super) fn apply(cfg: &Config, s: &State, event: &Event) -> Result<State, Rejection> {
    let t = event.thread();
    let ti = t as usize;
    if ti >= s.threads.len() {
        return reject(format!(
            "no thread {t} in a {}-thread configuration",
            s.threads.len()
        ));
    }
    if !s.alive(t) {
        return reject(format!("thread {t} does not exist in this process"));
    }
    if s.blocked.is_some_and(|(b, _)| b == t) {
        return reject(format!("thread {t} waits forever"));
    }
    let in_pause = [s.global, s.interp]
        .iter()
        .any(|p| p.owner == Some(t) && p.requested);
    if mid_start(s, t) && !matches!(event, Event::StartEnd { .. }) {
        // ThreadHandle_start holds its thread until the handle is RUNNING.
        return reject("the thread is inside ThreadHandle_start");
    }
    if in_pause && runs_code_event(event) {
        // A requester runs no code and takes no lock another thread may
        // hold until it restarts the world.
        return reject("the pause's requester runs no code until the world restarts");
    }
    let d = &cfg.design;
    let th = s.threads[ti];
    let mut n = s.clone();
    let attached = th.ts == Ts::Attached;
    match *event {
        Event::Attach { .. } => {
            if th.ts != Ts::Detached {
                return reject("attach needs a DETACHED thread state (SUSPENDED waits)");
            }
            match th.life {
                Life::Starting if th.handle.state == HandleState::Running => {}
                Life::Running => {}
                _ => return reject("thread is not running or handle_ready is not set"),
            }
            if t == FORKER && matches!(s.phase, Phase::AfterFork { .. }) {
                return reject("the forker stays attached through the after-fork handler");
            }
            match s.gil {
                Gil::Disabled => {}
                Gil::Free => n.gil = Gil::Held(t),
                Gil::Held(_) => return reject("take_gil waits for the GIL"),
            }
            let me = &mut n.threads[ti];
            me.life = Life::Running;
            me.ts = Ts::Attached;
            me.seq = s.wr_seq;
        }
        Event::Detach { .. } => {
            if !attached || th.life != Life::Running {
                return reject("detach needs an attached, running thread");
            }
            if t == FORKER && !forker_runs_code(s) {
                return reject("the forker stays attached through the fork protocol");
            }
            if s.global.owner == Some(t) || s.interp.owner == Some(t) || mid_start(s, t) {
                // A requester stays attached (gh-118332); ThreadHandle_start
                // does not detach.
                return reject("a pause requester or a starter stays attached");
            }
            // The eval-breaker bit stays set: the thread suspends (or, if
            // the pause is over, detaches once more) at its next check.
            let stop = th.please_stop;
            detach(&mut n, t, Ts::Detached);
            n.threads[ti].please_stop = stop;
        }
        Event::Suspend { .. } => {
            // _Py_HandlePending -> _PyThreadState_Suspend.
            if !attached || !th.please_stop {
                return reject("suspend needs an attached thread with PLEASE_STOP");
            }
            if t == FORKER && !matches!(s.phase, Phase::Running | Phase::Preparing | Phase::Ready) {
                return reject("the after-fork handler runs no eval-breaker check");
            }
            if mid_start(s, t) || in_pause {
                return reject("ThreadHandle_start and stop_the_world run no eval-breaker check");
            }
            if t == FORKER && s.phase == Phase::Preparing && s.global.owner == Some(t) {
                // PyOS_BeforeFork waits for its locks detached (and can be
                // parked there), but once it holds the pause's mutexes it
                // runs no eval-breaker check until after fork().
                return reject("PyOS_BeforeFork runs no eval-breaker check");
            }
            if !lock(s, &mut n, t, s.head, Blocker::HeadLock)? {
                return Ok(n);
            }
            let chosen = if s.global.requested {
                Some(true)
            } else if s.interp.requested {
                Some(false)
            } else {
                None
            };
            match chosen {
                None => detach(&mut n, t, Ts::Detached),
                Some(global) => {
                    detach(&mut n, t, Ts::Suspended);
                    let p = pause_mut(&mut n, global);
                    if p.countdown == 0 {
                        return reject("countdown would go negative");
                    }
                    p.countdown -= 1;
                    if s.dead_owner(pause(s, global).owner) {
                        n.blocked = Some((t, Blocker::SuspendedByDeadPause));
                    }
                }
            }
        }
        Event::ImportAcquire { .. } => {
            if !attached || !runs_code(s, t) || (t == FORKER && s.phase != Phase::Ready) {
                return reject("imports run attached, in Python code");
            }
            if t == FORKER && s.process == Process::Parent {
                return reject("the forker takes the import lock only in PyOS_BeforeFork");
            }
            if s.import.is_some_and(|(o, _)| o == t) {
                return reject("workers hold the import lock one level deep");
            }
            if !lock(s, &mut n, t, s.import.map(|(o, _)| o), Blocker::ImportLock)? {
                return Ok(n);
            }
            n.import = Some((t, 1));
        }
        Event::ImportRelease { .. } => {
            if s.import != Some((t, 1)) || !attached || !runs_code(s, t) {
                return reject("release needs the import lock held once, attached");
            }
            n.import = None;
            if s.process == Process::Child && t == FORKER {
                n.goals |= goal::IMPORTED;
            }
        }
        Event::MutexLock { .. } => {
            let ok = if t == FORKER {
                s.phase == Phase::Ready && s.process == Process::Child && attached
            } else {
                th.life == Life::Running && runs_code(s, t)
            };
            if !ok {
                return reject("this thread does not take the runtime mutex here");
            }
            if s.runtime_mutex == Some(t) {
                return reject("the thread already holds the runtime mutex");
            }
            if !lock(s, &mut n, t, s.runtime_mutex, Blocker::RuntimeMutex)? {
                return Ok(n);
            }
            n.runtime_mutex = Some(t);
        }
        Event::MutexUnlock { .. } => {
            if s.runtime_mutex != Some(t) {
                return reject("the thread does not hold the runtime mutex");
            }
            n.runtime_mutex = None;
        }
        Event::PauseLock { global, .. } => {
            if !attached {
                return reject("a requester is attached");
            }
            let allowed = if global {
                t == FORKER && s.phase == Phase::Preparing && d.stop_world_across_fork
            } else if t == FORKER {
                s.process == Process::Child && s.phase == Phase::Ready
            } else {
                t == GC_THREAD && s.process == Process::Parent && th.life == Life::Running
            };
            if !allowed || mid_start(s, t) || pause(s, global).owner == Some(t) {
                return reject("this thread does not request this pause here");
            }
            // The pause's mutex, then the read-write mutex (write for the
            // global pause, read for an interpreter's).
            let other = pause(s, !global).owner;
            for owner in [pause(s, global).owner, other] {
                if !lock(s, &mut n, t, owner, Blocker::PauseMutex)? {
                    return Ok(n);
                }
            }
            pause_mut(&mut n, global).owner = Some(t);
        }
        Event::PauseRequest { global, .. } => {
            let p = pause(s, global);
            if p.owner != Some(t) || p.requested || !attached {
                return reject("request needs the pause's mutexes and no request yet");
            }
            if !lock(s, &mut n, t, s.head, Blocker::HeadLock)? {
                return Ok(n);
            }
            let others = s
                .threads
                .iter()
                .enumerate()
                .filter(|&(u, th)| u != ti && th.ts != Ts::None)
                .count();
            let p = pause_mut(&mut n, global);
            p.requested = true;
            p.countdown = others as u8;
            if !park(&mut n, t, global) {
                n.blocked = Some((t, Blocker::PauseCountsDeadThread));
            }
        }
        Event::PausePoll { global, .. } => {
            let p = pause(s, global);
            if p.owner != Some(t) || !p.requested || p.stopped {
                return reject("poll needs a pending request of this thread");
            }
            let parkable = s
                .threads
                .iter()
                .enumerate()
                .any(|(u, th)| u != ti && th.ts == Ts::Detached);
            if p.countdown != 0 && !parkable {
                return reject("nothing to park: the wait goes on");
            }
            if !lock(s, &mut n, t, s.head, Blocker::HeadLock)? {
                return Ok(n);
            }
            if !park(&mut n, t, global) {
                n.blocked = Some((t, Blocker::PauseCountsDeadThread));
            }
        }
        Event::PauseStart { .. } => {
            if s.interp.owner != Some(t) || !s.interp.stopped {
                return reject("start needs this thread's stopped interpreter pause");
            }
            if !lock(s, &mut n, t, s.head, Blocker::HeadLock)? {
                return Ok(n);
            }
            start_world(&mut n, false);
            if s.process == Process::Child && t == FORKER {
                n.goals |= goal::PAUSED;
            }
        }
        Event::StartBegin { target, .. } => {
            let ok = match s.process {
                Process::Parent => starter(s, target) == t && runs_code(s, t),
                Process::Child => t == FORKER && s.phase == Phase::Ready,
            };
            if !ok || !attached || mid_start(s, t) {
                return reject("this thread does not start that thread here");
            }
            let h = s.threads[target as usize].handle;
            if h.state != HandleState::NotStarted || h.freed() {
                return reject("thread already started");
            }
            // _PyThreadState_New (new_threadstate under HEAD_LOCK,
            // init_threadstate, QSBR reserve and register), then
            // PyThread_start_joinable_thread.
            if !lock(s, &mut n, t, s.head, Blocker::HeadLock)? {
                return Ok(n);
            }
            let paused = s.global.requested || s.interp.requested;
            let new = &mut n.threads[target as usize];
            new.alive = true;
            new.life = Life::Starting;
            new.ts = if paused { Ts::Suspended } else { Ts::Detached };
            new.please_stop = false;
            new.os = Os::Joinable;
            new.slot = true;
            new.seq = OFFLINE;
            new.born_in_child = s.process == Process::Child;
            new.handle.state = HandleState::Starting;
            new.handle.thread_ref = true;
        }
        Event::StartEnd { target, .. } => {
            let h = s.threads[target as usize].handle;
            if h.state != HandleState::Starting || starter(s, target) != t {
                return reject("this thread is not starting that handle");
            }
            n.threads[target as usize].handle.state = HandleState::Running;
            if s.process == Process::Child {
                n.goals |= goal::STARTED;
            }
        }
        Event::ExitStart { .. } => {
            if t == FORKER || !attached || th.life != Life::Running {
                return reject("a running, attached worker exits");
            }
            let holds = s.import.is_some_and(|(o, _)| o == t)
                || s.runtime_mutex == Some(t)
                || s.global.owner == Some(t)
                || s.interp.owner == Some(t);
            if holds || mid_start(s, t) {
                return reject("a thread releases its locks before it exits");
            }
            // _PyThreadState_DeleteCurrent: QSBR detach, then
            // tstate_delete_common under HEAD_LOCK (a counted thread that
            // never parks is subtracted), QSBR unregister, GIL released.
            if !lock(s, &mut n, t, s.head, Blocker::HeadLock)? {
                return Ok(n);
            }
            for global in [true, false] {
                let p = pause_mut(&mut n, global);
                if p.requested {
                    if p.countdown == 0 {
                        return reject("countdown would go negative");
                    }
                    p.countdown -= 1;
                }
            }
            detach(&mut n, t, Ts::None);
            let me = &mut n.threads[ti];
            me.slot = false;
            me.life = Life::Exiting;
        }
        Event::ExitUnlink { .. } => {
            if th.life != Life::Exiting {
                return reject("the thread is not exiting");
            }
            // remove_from_shutdown_handles / ThreadHandle_decref run with no
            // thread state: a pause does not stop them.
            if !lock(s, &mut n, t, s.head, Blocker::HeadLock)? {
                return Ok(n);
            }
            n.head = Some(t);
            n.head_mid_update = true;
            n.threads[ti].life = Life::Unlinking;
        }
        Event::ExitDone { .. } => {
            if th.life != Life::Unlinking || s.head != Some(t) {
                return reject("the thread is not updating the handle lists");
            }
            n.head = None;
            n.head_mid_update = false;
            let me = &mut n.threads[ti];
            me.handle.exiting = true;
            me.handle.thread_ref = false;
            me.life = Life::Exited;
            me.alive = false;
            if me.handle.object == Obj::Freed {
                final_decref(&mut n, t);
            }
        }
        Event::DropHandle { target, .. } => {
            if t != FORKER || !attached || s.phase != Phase::Running {
                return reject("the main thread drops handle objects before the fork");
            }
            if s.threads[target as usize].handle.object != Obj::Held {
                return reject("the handle object is not referenced");
            }
            n.threads[target as usize].handle.object = Obj::Garbage;
        }
        Event::Gc { target, .. } => {
            let may = match s.process {
                Process::Parent => forker_runs_code(s),
                Process::Child => s.child_code_may_run(),
            };
            if t != FORKER || !attached || !may {
                return reject("no code runs here");
            }
            let h = s.threads[target as usize].handle;
            if h.object != Obj::Garbage {
                return reject("the handle object is not garbage");
            }
            if h.thread_ref {
                // PyThreadHandleObject_dealloc: not the last reference.
                n.threads[target as usize].handle.object = Obj::Freed;
            } else {
                if !lock(s, &mut n, t, s.head, Blocker::HeadLock)? {
                    return Ok(n);
                }
                n.threads[target as usize].handle.object = Obj::Freed;
                final_decref(&mut n, target);
            }
            if s.global.stopped || s.interp.stopped {
                n.code_ran_while_stopped = true;
            }
        }
        Event::Join { target, .. } => {
            let may = match s.process {
                Process::Parent => forker_runs_code(s),
                Process::Child => s.phase == Phase::Ready,
            };
            if t != FORKER || !attached || !may {
                return reject("the main thread joins from Python code");
            }
            let other = s.threads[target as usize];
            let h = other.handle;
            if h.object != Obj::Held {
                return reject("no live reference to the handle object");
            }
            match h.state {
                HandleState::NotStarted | HandleState::Starting => {
                    return reject("thread not started");
                }
                HandleState::Done => {
                    // The once-flag is set: join returns at once.
                    let dead = s.process == Process::Child && !other.born_in_child;
                    if !h.once || !dead || s.goals & goal::JOINED_DEAD != 0 {
                        return reject("nothing left to observe");
                    }
                    n.goals |= goal::JOINED_DEAD;
                }
                HandleState::Running => {
                    if !h.exiting {
                        if other.alive {
                            return reject("join waits for thread_is_exiting");
                        }
                        n.blocked = Some((t, Blocker::JoinDeadThread));
                        return Ok(n);
                    }
                    // _PyOnceFlag_CallOnce(join_thread): the OS join.
                    let me = &mut n.threads[target as usize];
                    match me.os {
                        Os::Lost => n.touched_lost_thread = true,
                        _ => me.os = Os::Released,
                    }
                    let me = &mut n.threads[target as usize];
                    me.handle.state = HandleState::Done;
                    me.handle.once = true;
                    if s.process == Process::Child && other.born_in_child {
                        n.goals |= goal::JOINED_NEW;
                    }
                }
            }
        }
        Event::BeforeFork { .. }
        | Event::Fork { .. }
        | Event::AfterForkParent { .. }
        | Event::AfterForkChild { .. }
        | Event::Retire { .. }
        | Event::Quiescent { .. }
        | Event::Scan { .. }
        | Event::Reclaim { .. } => return protocol::apply(cfg, s, n, event),
    }
    Ok(n)
}

/// Events that run Python code or take locks other threads may hold.
fn runs_code_event(e: &Event) -> bool {
    matches!(
        e,
        Event::ImportAcquire { .. }
            | Event::MutexLock { .. }
            | Event::StartBegin { .. }
            | Event::ExitStart { .. }
            | Event::DropHandle { .. }
            | Event::Gc { .. }
            | Event::Join { .. }
            | Event::Retire { .. }
            | Event::Reclaim { .. }
    )
}
