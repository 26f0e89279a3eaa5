//! QSBR's declarations for the checker: fairness classes, symmetry and a
//! compact state label.
//!
//! # Fairness
//! `retired_eventually_freed` (spec/src/qsbr.rs) holds only if the threads
//! and the GC keep doing their part, which for QSBR means: `wr_seq`
//! eventually reaches the goal, every attached thread eventually
//! passes a quiescent state or detaches, and someone eventually scans and
//! processes the queues. [`FAIRNESS`] says exactly that and no more, and
//! `models/tests/checker_qsbr.rs` shows each class is needed: without any
//! one of them, or with a strong one made weak, a fair run keeps an object
//! retired forever.
//!
//! Four classes are strong because a thread switches them off itself: it
//! can scan, advance and process only while attached, and pass a quiescent
//! state only outside a read section, so a thread that attaches and
//! detaches (or reads and stops reading) forever never has them enabled
//! continuously, and weak fairness would let it skip them forever. Strong
//! fairness stands for what CPython relies on: an attached thread reaches
//! the eval breaker, its chunk fills or the GC runs. The two weak classes
//! are the thread's own progress: a read section ends, and a detached
//! thread comes back or exits (while it sleeps detached, only it could
//! process its own queue; CPython's GC would splice it into its own).
//!
//! Threads are interchangeable, so the hooks declare symmetry
//! (`State::canonical` in the spec).

use cpyrt_spec::qsbr::{EVENT_KINDS, Event, Life, Object, Qsbr, Slot, State};

use super::fairness::{FairClass, Strength};
use super::spec::SpecHooks;
use super::symmetry::representative;
use crate::spec_model::Checked;

/// Fairness under which `retired_eventually_freed` is checked.
pub static FAIRNESS: &[FairClass] = &[
    FairClass {
        name: "quiescent",
        doc: "An attached thread that again and again could pass a quiescent state or detach eventually does one of them.",
        kinds: &["Quiescent", "Detach"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "scan",
        doc: "A thread that again and again could move rd_seq eventually scans.",
        kinds: &["Scan"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "advance",
        doc: "While a goal is ahead of wr_seq, a thread that again and again could advance it (the GC's pause) eventually does.",
        kinds: &["Advance"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "process",
        doc: "A thread that again and again could free a queued item eventually does.",
        kinds: &["FreeOwn", "FreeInterp"],
        strength: Strength::Strong,
    },
    FairClass {
        name: "end_read",
        doc: "A read section eventually ends.",
        kinds: &["EndRead"],
        strength: Strength::Weak,
    },
    FairClass {
        name: "resume",
        doc: "A detached thread eventually attaches again or exits.",
        kinds: &["Attach", "Abandon"],
        strength: Strength::Weak,
    },
];

/// A state in one line: sequences, objects (`L` live, `R3` retired with
/// goal 3, `F` freed), then each thread and the shared parts that are not
/// empty.
pub fn label(s: &State) -> String {
    let objects: Vec<String> = s
        .objects
        .iter()
        .map(|o| match o {
            Object::Live => "L".to_string(),
            Object::Retired { goal } => format!("R{goal}"),
            Object::Freed => "F".to_string(),
        })
        .collect();
    let item = |i: &cpyrt_spec::qsbr::Item| format!("{}@{}", i.object, i.goal);
    let mut out = format!(
        "wr{} rd{} cur{} [{}]",
        s.wr_seq,
        s.rd_seq,
        s.current,
        objects.join(" ")
    );
    for (t, th) in s.threads.iter().enumerate() {
        let life = match th.life {
            Life::New => "new".to_string(),
            Life::Reserved(i) => format!("rsv{i}"),
            Life::Running if th.attached => format!("att s{}", th.seq),
            Life::Running => "det".to_string(),
            Life::Exiting { stale } => {
                format!("exit{}", if stale.is_some() { " stale" } else { "" })
            }
            Life::Unregistering { .. } => "unreg".to_string(),
            Life::Exited => "gone".to_string(),
        };
        out.push_str(&format!(" | t{t} {life}"));
        if th.reading {
            out.push_str(&format!(" read{:b}", th.holds));
        }
        if th.deferrals > 0 {
            out.push_str(&format!(" d{}", th.deferrals));
        }
        if !th.queue.is_empty() {
            let q: Vec<String> = th.queue.iter().map(item).collect();
            out.push_str(&format!(" q[{}]", q.join(",")));
        }
    }
    if !s.interp_queue.is_empty() {
        let q: Vec<String> = s.interp_queue.iter().map(item).collect();
        out.push_str(&format!(" | iq[{}]", q.join(",")));
    }
    if let Some(m) = s.mutex {
        out.push_str(&format!(" | mutex t{m}"));
    }
    let slots: Vec<String> = s
        .array
        .iter()
        .map(|slot| match slot {
            Slot::Free => "-".to_string(),
            Slot::Reserved => "r".to_string(),
            Slot::Bound(t) => format!("t{t}"),
        })
        .collect();
    out.push_str(&format!(" | g{}[{}]", s.array_generation, slots.join(" ")));
    if s.wrote_freed_array {
        out.push_str(" | wrote freed array");
    }
    out
}

fn kind(e: &Event) -> &'static str {
    e.kind()
}

/// QSBR's checker hooks.
pub static HOOKS: SpecHooks<Qsbr> = SpecHooks {
    fairness: FAIRNESS,
    kind,
    kinds: EVENT_KINDS,
    canonical: Some(representative::<Checked<State>>),
    label,
};
