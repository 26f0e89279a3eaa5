//! Stop-the-world's declarations for the checker: fairness classes and a
//! compact state label. Threads run different programs (roles), so no
//! thread symmetry is declared.

use cpyrt_spec::stw::{At, Cs, Event, Job, Life, Lock, Phase, Scope, State, Stop, TState};

use super::fairness::{FairClass, Strength};
use super::spec::SpecHooks;

/// Fairness under which the pause-stops-world and suspended-thread-resumes
/// properties are checked. What a running thread chooses to do (create its
/// thread state, enter a critical section, make a blocking call, request a
/// pause, exit, finalize) is in no class: a thread may run bytecode
/// forever without doing any of it. An event whose unlock hands a lock to
/// a waiter has the kind [`HAND_OFF`] rather than its own, so the 1 ms
/// rule can be stated as a class of its own.
pub static FAIRNESS: &[FairClass] = &[
    FairClass {
        name: "steps",
        doc: "A thread that can keep taking a step of the protocol it is in (attaching, resuming or retrying a lock, decrementing, stop_the_world and start_the_world, ending a critical section) eventually takes one: the OS runs runnable threads, and critical sections are short.",
        kinds: &[
            "Attach",
            "Hang",
            "Resume",
            "CsLockRetry",
            "EndCs",
            "Countdown",
            "StwLock",
            "StwBegin",
            "StwScan",
            "StwPark",
            "StwUnpark",
            "StwWait",
            "PauseCs",
            "Finalize",
            "StartWorld",
            "StwUnlock",
        ],
        strength: Strength::Weak,
    },
    FairClass {
        name: "hand_off",
        doc: "A thread that can again and again unlock a PyMutex by handing it to a parked waiter eventually does: mutex_unpark hands the lock to a waiter that has waited over 1 ms, so no waiter loses the lock forever.",
        kinds: &[HAND_OFF],
        strength: Strength::Strong,
    },
    FairClass {
        name: "eval_breaker",
        doc: "A running thread whose PLEASE_STOP is set again and again eventually handles it at an eval-breaker check (it does not stay in C code that never checks).",
        kinds: &["HandlePending"],
        strength: Strength::Strong,
    },
];

fn scope(s: Scope) -> String {
    match s {
        Scope::Global => "G".to_string(),
        Scope::Interp(i) => format!("I{i}"),
    }
}

fn lock(l: Lock) -> String {
    match l {
        Lock::Object(o) => format!("o{o}"),
        Lock::StwMutex(s) => format!("m{}", scope(s)),
        Lock::RwMutex => "rw".to_string(),
        Lock::StopEvent(s) => format!("ev{}", scope(s)),
    }
}

/// A state in one line: each thread (life, state, `!` for PLEASE_STOP,
/// critical section, job, where it is), then each requested pause and the
/// locks that are held.
pub fn label(s: &State) -> String {
    let mut out = Vec::new();
    for (t, th) in s.threads.iter().enumerate() {
        let life = match th.life {
            Life::Unborn => {
                out.push(format!("t{t} -"));
                continue;
            }
            Life::Alive => "",
            Life::Exited => "exited ",
            Life::Removed => "removed ",
            Life::Hung => "hung ",
        };
        let state = match th.state {
            TState::Detached => "DET",
            TState::Attached => "ATT",
            TState::Suspended => "SUS",
            TState::ShuttingDown => "SHD",
        };
        let mut line = format!("t{t} {life}{state}");
        if th.please_stop {
            line.push('!');
        }
        match th.cs {
            Cs::None => {}
            Cs::Held(o) => line.push_str(&format!(" cs{o}")),
            Cs::Released(o) => line.push_str(&format!(" cs{o}~")),
        }
        let job = match th.job {
            Job::Run => String::new(),
            Job::Lock(o) => format!(" lock{o}"),
            Job::Countdown(sc) => format!(" dec{}", scope(sc)),
            Job::Done => " done".to_string(),
            Job::Stw {
                scope: sc, phase, ..
            } => format!(
                " stw{}:{}",
                scope(sc),
                match phase {
                    Phase::Lock(k) => format!("lock{k}"),
                    Phase::Begin => "begin".to_string(),
                    Phase::Scan => "scan".to_string(),
                    Phase::Wait => "wait".to_string(),
                    Phase::Woken => "woken".to_string(),
                    Phase::Stopped => "stopped".to_string(),
                    Phase::PauseLock(o) => format!("pauselock{o}"),
                    Phase::InPauseCs(o) => format!("pausecs{o}"),
                    Phase::PauseDone => "done".to_string(),
                    Phase::Unlock(k) => format!("unlock{k}"),
                }
            ),
        };
        line.push_str(&job);
        match th.at {
            At::Go => {}
            At::Attach => line.push_str(" @attach"),
            At::Resume => line.push_str(" @resume"),
            At::Parked(l) => line.push_str(&format!(" @park:{}", lock(l))),
        }
        out.push(line);
    }
    for (i, w) in s.stw.iter().enumerate() {
        let sc = if i == 0 {
            Scope::Global
        } else {
            Scope::Interp(i as u8 - 1)
        };
        if w.requested || w.mutex.is_some() {
            let mut line = format!("{} cd{}", scope(sc), w.countdown);
            if w.requested {
                line.push_str(" req");
            }
            if w.world_stopped {
                line.push_str(" STOPPED");
            }
            if w.stop_event {
                line.push_str(" ev");
            }
            if let Some(m) = w.mutex {
                line.push_str(&format!(" mutex t{m}"));
            }
            out.push(line);
        }
    }
    if let Some(w) = s.rw.writer {
        out.push(format!("rw W t{w}"));
    } else if s.rw.readers != 0 {
        out.push(format!("rw R {:b}", s.rw.readers));
    }
    for (o, owner) in s.objects.iter().enumerate() {
        if let Some(u) = owner {
            out.push(format!("o{o} t{u}"));
        }
    }
    if s.finalized {
        out.push("finalized".to_string());
    }
    out.join(" | ")
}

/// The kind of every event whose unlock hands the lock to the waiter it
/// wakes, whatever the event: the 1 ms rule is a promise about unlocks,
/// not about any one step.
pub const HAND_OFF: &str = "HandOff";

/// Every kind [`kind`] returns: the spec's, then [`HAND_OFF`].
pub static KINDS: &[&str] = &[
    "Create",
    "Attach",
    "Hang",
    "Resume",
    "BeginCs",
    "CsLockRetry",
    "EndCs",
    "Syscall",
    "HandlePending",
    "Countdown",
    "Exit",
    "Shutdown",
    "StwRequest",
    "StwLock",
    "StwBegin",
    "StwScan",
    "StwPark",
    "StwUnpark",
    "StwWait",
    "PauseCs",
    "Finalize",
    "StartWorld",
    "StwUnlock",
    HAND_OFF,
];

/// The lock hand-off an event makes, if any.
fn hands_off(e: &Event) -> bool {
    let wake = match *e {
        Event::EndCs { wake, .. }
        | Event::Syscall { wake, .. }
        | Event::HandlePending { wake, .. }
        | Event::StwLock { wake, .. }
        | Event::StwPark { wake, .. }
        | Event::StwUnlock { wake, .. } => wake,
        _ => None,
    };
    wake.is_some_and(|w| w.handed)
}

/// The event's kind for fairness and coverage: [`HAND_OFF`] when it hands
/// a lock on, else the spec's kind.
pub fn kind(e: &Event) -> &'static str {
    if hands_off(e) { HAND_OFF } else { e.kind() }
}

/// Stop-the-world's checker hooks.
pub static HOOKS: SpecHooks<Stop> = SpecHooks {
    fairness: FAIRNESS,
    kind,
    kinds: KINDS,
    canonical: None,
    label,
};
