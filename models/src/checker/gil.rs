//! The GIL's declarations for the checker: fairness classes and a compact
//! state label. Threads run different programs, so no thread symmetry is
//! declared.

use cpyrt_spec::gil::{DropPc, EVENT_KINDS, Event, GilSpec, State, Step, TakePc};

use super::fairness::{FairClass, Strength};
use super::spec::SpecHooks;

/// Fairness under which `take_returns_*` and `switch_wait_ends_*` are
/// checked. Spurious wake-ups and `Leave` (a bytecode segment ending) are
/// in no class: a thread may run bytecode forever, and nothing may rely on
/// a spurious wake-up.
pub static FAIRNESS: &[FairClass] = &[
    FairClass {
        name: "steps",
        doc: "A thread that can take a step of take_gil, drop_gil, thread-state creation or finalization, other than acquiring a lock, eventually takes it (the OS scheduler runs runnable threads).",
        kinds: &[
            "TakeEnter",
            "Unlock",
            "Wait",
            "RequestDrop",
            "WaiterExit",
            "TakeSet",
            "TakeDone",
            "DropEnter",
            "DropRelease",
            "DropTail",
            "Join",
            "Finalize",
            "DeleteInterp",
            "Alloc",
            "AddTstate",
            "RemoveTstate",
            "Bind",
            "Unbind",
        ],
        strength: Strength::Weak,
    },
    FairClass {
        name: "lock",
        doc: "A thread that can acquire a lock again and again eventually does (pthread mutexes promise no order, but no thread loses every race forever).",
        kinds: &["Lock"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "timeout",
        doc: "A thread in the timed wait on cond eventually times out (the switch interval passes).",
        kinds: &["Timeout"],
        strength: Strength::Weak,
    },
    FairClass {
        name: "check",
        doc: "A thread running bytecode whose drop request is set eventually reaches an eval-breaker check.",
        kinds: &["Check"],
        strength: Strength::Weak,
    },
];

/// A state in one line: each GIL (`L` locked, last holder, switch number,
/// mutex owners), each thread (step, thread state, holding) and the
/// thread states with a drop request or holds_gil.
pub fn label(s: &State) -> String {
    let mut out = String::new();
    for (g, gil) in s.gils.iter().enumerate() {
        out.push_str(&format!(
            "g{g}{} lh{} sn{}",
            if gil.locked { "L" } else { "" },
            gil.last_holder.map_or("-".into(), |t| t.to_string()),
            gil.switch_number
        ));
        if let Some(m) = gil.mutex {
            out.push_str(&format!(" m{m}"));
        }
        if let Some(m) = gil.switch_mutex {
            out.push_str(&format!(" sm{m}"));
        }
        out.push_str(" | ");
    }
    for (t, th) in s.threads.iter().enumerate() {
        let step = match th.step {
            Step::Start => "run".to_string(),
            Step::Take { pc, .. } => match pc {
                TakePc::Waiting { saved, .. } => format!("wait{saved}"),
                other => format!("take:{other:?}"),
            },
            Step::Drop { pc, .. } => match pc {
                DropPc::SwitchWaiting => "switchwait".to_string(),
                other => format!("drop:{other:?}"),
            },
            other => format!("{other:?}"),
        };
        out.push_str(&format!("t{t} op{} {step}", th.op));
        if let Some(ts) = th.current {
            out.push_str(&format!(" ts{ts}"));
        }
        if th.holding.is_some() {
            out.push_str(" H");
        }
        out.push_str(" | ");
    }
    for (i, ts) in s.tstates.iter().enumerate() {
        if ts.drop_request || ts.holds_gil {
            out.push_str(&format!(
                "ts{i}{}{} ",
                if ts.holds_gil { " holds" } else { "" },
                if ts.drop_request { " drop!" } else { "" }
            ));
        }
    }
    if let Some(h) = s.head {
        out.push_str(&format!("head t{h}"));
    }
    out.trim_end_matches([' ', '|']).to_string()
}

fn kind(e: &Event) -> &'static str {
    e.kind()
}

/// The GIL's checker hooks.
pub static HOOKS: SpecHooks<GilSpec> = SpecHooks {
    fairness: FAIRNESS,
    kind,
    kinds: EVENT_KINDS,
    canonical: None,
    label,
};
