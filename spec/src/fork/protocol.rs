//! The fork protocol's own steps: `PyOS_BeforeFork`, `fork()`,
//! `PyOS_AfterFork_Parent`, `PyOS_AfterFork_Child`, and the child's use of
//! QSBR afterwards.

use super::step::{lock, mid_start, reject, start_world};
use super::*;

/// Applies a fork-protocol event to `n`, a copy of `s`.
pub(super) fn apply(
    cfg: &Config,
    s: &State,
    mut n: State,
    event: &Event,
) -> Result<State, Rejection> {
    let t = event.thread();
    let ti = t as usize;
    let d = &cfg.design;
    let th = s.threads[ti];
    let attached = th.ts == Ts::Attached;
    match *event {
        Event::BeforeFork { step, .. } => {
            if t != FORKER || !attached {
                return reject("the attached main thread forks");
            }
            match step {
                BeforeStep::ImportLock => {
                    if s.phase != Phase::Running || s.process != Process::Parent || mid_start(s, t)
                    {
                        return reject("one fork per run, from Python code");
                    }
                    if !lock(s, &mut n, t, s.import.map(|(o, _)| o), Blocker::ImportLock)? {
                        return Ok(n);
                    }
                    n.import = Some((t, 1));
                    n.phase = Phase::Preparing;
                }
                BeforeStep::HeadLock => {
                    if s.phase != Phase::Preparing || !d.hold_head_lock_across_fork {
                        return reject("HEAD_LOCK is taken last in PyOS_BeforeFork");
                    }
                    if d.stop_world_across_fork && !s.global.stopped {
                        return reject("the world is not stopped yet");
                    }
                    if s.head.is_some() {
                        return reject("HEAD_LOCK is held");
                    }
                    n.head = Some(t);
                }
            }
        }
        Event::Fork { follow, .. } => {
            if t != FORKER || s.phase != Phase::Preparing {
                return reject("fork() follows PyOS_BeforeFork");
            }
            if (d.stop_world_across_fork && !s.global.stopped)
                || (d.hold_head_lock_across_fork && s.head != Some(t))
            {
                return reject("PyOS_BeforeFork is not finished");
            }
            n.forked_with_garbage_handle = s.threads.iter().any(|th| {
                th.handle.state == HandleState::Running
                    && th.handle.object == Obj::Garbage
                    && !th.handle.thread_ref
            });
            n.phase = Phase::AfterFork { done: 0 };
            if follow == Process::Child {
                n.process = Process::Child;
                n.torn_copy = s.head_mid_update;
                for (u, th) in n.threads.iter_mut().enumerate() {
                    if u != ti {
                        th.alive = false;
                        if th.os == Os::Joinable {
                            th.os = Os::Lost;
                        }
                    }
                }
            }
        }
        Event::AfterForkParent { step, .. } => {
            let Phase::AfterFork { done } = s.phase else {
                return reject("not in PyOS_AfterFork_Parent");
            };
            let steps = d.parent_steps();
            if s.process != Process::Parent
                || steps.iter().find(|p| done & p.bit() == 0) != Some(&step)
            {
                return reject("not the next step of PyOS_AfterFork_Parent");
            }
            match step {
                ParentStep::HeadUnlock => n.head = None,
                ParentStep::StartWorldAll => {
                    if !lock(s, &mut n, t, s.head, Blocker::HeadLock)? {
                        return Ok(n);
                    }
                    start_world(&mut n, true);
                }
                ParentStep::ImportRelease => n.import = None,
            }
            let done = done | step.bit();
            let all = steps.iter().fold(0, |m, p| m | p.bit());
            n.phase = if done == all {
                Phase::Ready
            } else {
                Phase::AfterFork { done }
            };
        }
        Event::AfterForkChild { step, .. } => {
            let Phase::AfterFork { done } = s.phase else {
                return reject("not in PyOS_AfterFork_Child");
            };
            let steps = d.child_steps();
            if s.process != Process::Child
                || steps.iter().find(|c| done & c.bit() == 0) != Some(&step)
            {
                return reject("not the next step of PyOS_AfterFork_Child");
            }
            if !child_step(cfg, s, &mut n, step)? {
                return Ok(n);
            }
            let done = done | step.bit();
            let all = steps.iter().fold(0, |m, c| m | c.bit());
            n.phase = if done == all {
                Phase::Ready
            } else {
                Phase::AfterFork { done }
            };
        }
        Event::Retire { .. } => {
            if !child_qsbr(s, t, attached) || s.goal.is_some() || s.goals & goal::RECLAIMED != 0 {
                return reject("the child retires one object, once");
            }
            n.wr_seq = s.wr_seq + SEQ_INCR;
            n.goal = Some(n.wr_seq);
        }
        Event::Quiescent { .. } => {
            if !child_qsbr(s, t, attached) || th.seq == s.wr_seq {
                return reject("nothing to announce");
            }
            n.threads[ti].seq = s.wr_seq;
        }
        Event::Scan { rd_seq, .. } => {
            let min = s.scan_min();
            if !child_qsbr(s, t, attached) || min <= s.rd_seq {
                return reject("the scan cannot move rd_seq");
            }
            if rd_seq != min {
                return reject(format!("scan left rd_seq {rd_seq}, spec expects {min}"));
            }
            n.rd_seq = min;
        }
        Event::Reclaim { .. } => {
            if !child_qsbr(s, t, attached) || s.goal.is_none_or(|g| g > s.rd_seq) {
                return reject("the goal is not reached");
            }
            n.goal = None;
            n.goals |= goal::RECLAIMED;
        }
        _ => return reject("not a fork-protocol event"),
    }
    Ok(n)
}

fn child_qsbr(s: &State, t: u8, attached: bool) -> bool {
    t == FORKER && attached && s.process == Process::Child && s.phase == Phase::Ready
}

/// One step of `PyOS_AfterFork_Child`. Returns `false` if the forker
/// blocked forever in it.
fn child_step(cfg: &Config, s: &State, n: &mut State, step: ChildStep) -> Result<bool, Rejection> {
    let d = &cfg.design;
    let t = FORKER;
    match step {
        ChildStep::ReinitLocks => {
            // _PyParkingLot_AfterFork, then _PyMutex_at_fork_reinit on each
            // of LOCKS_INIT: unlocked, whoever held it.
            n.head = None;
            n.head_mid_update = false;
            n.runtime_mutex = None;
        }
        ChildStep::MarkHandles => {
            // _PyThread_AfterFork: every handle whose ident is not the
            // current thread's (gh-134381 keeps those never started).
            for (u, th) in n.threads.iter_mut().enumerate() {
                let h = &mut th.handle;
                if u == t as usize
                    || h.freed()
                    || (h.state == HandleState::NotStarted && d.keep_not_started_handles)
                {
                    continue;
                }
                h.state = HandleState::Done;
                h.once = true;
                h.exiting = true;
                h.listed = false;
            }
        }
        ChildStep::QsbrAfterFork => {
            // Slots of other threads go back on the freelist; their `seq`
            // is left as it was copied.
            for (u, th) in n.threads.iter_mut().enumerate() {
                if u != t as usize {
                    th.slot = false;
                }
            }
        }
        ChildStep::ReinitGil => match s.gil {
            Gil::Disabled => {}
            _ if d.recreate_gil_in_child => n.gil = Gil::Held(t),
            Gil::Free => n.gil = Gil::Held(t),
            Gil::Held(_) => {
                // take_gil on the copied GIL: its holder will never drop it.
                n.blocked = Some((t, Blocker::Gil));
                return Ok(false);
            }
        },
        ChildStep::RemoveThreadStates => {
            if !lock(s, n, t, s.head, Blocker::HeadLock)? {
                return Ok(false);
            }
            for (u, th) in n.threads.iter_mut().enumerate() {
                if u != t as usize {
                    th.ts = Ts::None;
                }
            }
        }
        ChildStep::StartWorldAll => {
            if s.global.owner != Some(t) {
                return reject("start_the_world needs the global pause's mutex");
            }
            if !lock(s, n, t, s.head, Blocker::HeadLock)? {
                return Ok(false);
            }
            start_world(n, true);
        }
        ChildStep::ClearThreadStates => {
            // PyThreadState_Clear runs destructors.
            if s.global.stopped || s.interp.stopped {
                n.code_ran_while_stopped = true;
            }
        }
        ChildStep::ImportReinit => {
            // gh-126688: the owner is re-read, then released once.
            let Some((_, level)) = s.import else {
                return reject("the import lock is held across fork");
            };
            n.import = if level > 1 {
                Some((t, level - 1))
            } else {
                None
            };
        }
    }
    Ok(true)
}
