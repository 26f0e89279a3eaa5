//! Fork's declarations for the checker: the fairness under which the
//! child's progress is judged, and a compact state label. Threads are not
//! interchangeable (the forker is special and each worker is started by
//! its predecessor), so there is no symmetry.

use cpyrt_spec::fork::{
    EVENT_KINDS, Event, Fork, Gil, HandleState, Life, Obj, Os, Phase, Process, State, Ts,
};

use super::fairness::{FairClass, Strength};
use super::spec::SpecHooks;

/// Fairness under which the child's progress (`LIVENESS`) is checked. Each
/// class applies to every thread; strong where a thread can disable the
/// class itself (by detaching, or by being in another round).
pub static FAIRNESS: &[FairClass] = &[
    FairClass {
        name: "handler",
        doc: "A process inside its after-fork handler eventually takes its next step.",
        kinds: &["AfterForkChild", "AfterForkParent"],
        strength: Strength::Weak,
    },
    FairClass {
        name: "pause",
        doc: "A thread that can keep requesting or finishing a pause eventually does.",
        kinds: &["PauseLock", "PauseRequest", "PausePoll", "PauseStart"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "import",
        doc: "A thread that can take or release the import lock again and again eventually does.",
        kinds: &["ImportAcquire", "ImportRelease"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "reclaim",
        doc: "A thread that can retire, pass a quiescent state, scan or free again and again eventually does.",
        kinds: &["Retire", "Quiescent", "Scan", "Reclaim"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "suspend",
        doc: "A thread asked to stop eventually reaches its eval-breaker check.",
        kinds: &["Suspend"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "attach",
        doc: "A detached thread that can attach again and again eventually does.",
        kinds: &["Attach"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "start",
        doc: "ThreadHandle_start, once the OS thread exists, eventually marks the handle RUNNING.",
        kinds: &["StartEnd"],
        strength: Strength::Weak,
    },
    FairClass {
        name: "yield",
        doc: "An attached thread eventually detaches (a blocking call, or the GIL's drop request).",
        kinds: &["Detach"],
        strength: Strength::Weak,
    },
    FairClass {
        name: "unlock",
        doc: "A thread holding the runtime mutex eventually releases it.",
        kinds: &["MutexUnlock"],
        strength: Strength::Weak,
    },
    FairClass {
        name: "exit",
        doc: "A thread leaving thread_run eventually finishes.",
        kinds: &["ExitUnlink", "ExitDone"],
        strength: Strength::Weak,
    },
];

/// A state in one line: process and phase, then each thread
/// (`t1 run att s1 h=R exit` ...), then the locks and pauses that are not
/// free.
pub fn label(s: &State) -> String {
    let phase = match s.phase {
        Phase::Running => "running".to_string(),
        Phase::Preparing => "before-fork".to_string(),
        Phase::AfterFork { done } => format!("after-fork {done:#x}"),
        Phase::Ready => "ready".to_string(),
    };
    let mut out = format!("{:?} {phase}", s.process).to_lowercase();
    for (t, th) in s.threads.iter().enumerate() {
        let life = match th.life {
            Life::Unstarted => "new",
            Life::Starting => "starting",
            Life::Running => "run",
            Life::Exiting => "exiting",
            Life::Unlinking => "unlinking",
            Life::Exited => "exited",
        };
        let ts = match th.ts {
            Ts::None => "-",
            Ts::Detached => "det",
            Ts::Attached => "att",
            Ts::Suspended => "susp",
        };
        let h = th.handle;
        let hs = match h.state {
            HandleState::NotStarted => "N",
            HandleState::Starting => "S",
            HandleState::Running => "R",
            HandleState::Done => "D",
        };
        out.push_str(&format!(
            " | t{t}{} {life} {ts} s{} h={hs}",
            if th.alive { "" } else { " dead" },
            th.seq
        ));
        if h.once {
            out.push_str(" once");
        }
        if h.exiting {
            out.push_str(" exiting");
        }
        match h.object {
            Obj::Held => {}
            Obj::Garbage => out.push_str(" garbage"),
            Obj::Freed => out.push_str(" freed"),
        }
        if th.os == Os::Lost {
            out.push_str(" lost");
        }
        if th.please_stop {
            out.push_str(" stop!");
        }
    }
    let owner = |name: &str, o: Option<u8>| o.map(|o| format!(" | {name} t{o}"));
    for part in [
        owner("head", s.head),
        owner("mutex", s.runtime_mutex),
        owner("import", s.import.map(|(o, _)| o)),
        owner("global", s.global.owner),
        owner("interp", s.interp.owner),
    ]
    .into_iter()
    .flatten()
    {
        out.push_str(&part);
    }
    if let Gil::Held(o) = s.gil {
        out.push_str(&format!(" | gil t{o}"));
    }
    if s.torn_copy {
        out.push_str(" | torn copy");
    }
    if let Some((t, b)) = s.blocked {
        out.push_str(&format!(" | t{t} blocked on {b:?}"));
    }
    if s.process == Process::Child && s.goals != 0 {
        out.push_str(&format!(" | goals {:#x}", s.goals));
    }
    out
}

fn kind(e: &Event) -> &'static str {
    e.kind()
}

/// Fork's checker hooks.
pub static HOOKS: SpecHooks<Fork> = SpecHooks {
    fairness: FAIRNESS,
    kind,
    kinds: EVENT_KINDS,
    canonical: None,
    label,
};
