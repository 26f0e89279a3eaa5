//! Stop-the-world progress under the fairness the model declares: every
//! request stops the world and every suspended thread resumes, in the
//! shipped design; each fairness assumption is needed; the deadlocking
//! twins also lose progress; and coverage of the event kinds.

use cpyrt_models::checker::fairness::{Fairness, Strength};
use cpyrt_models::checker::stw::{FAIRNESS, HAND_OFF, HOOKS, KINDS};
use cpyrt_models::checker::{DEFAULT_MAX_STATES, Lasso, StateGraph, leads_to};
use cpyrt_models::{Checked, SpecModel};
use cpyrt_spec::stw::{Config, Design, EVENT_KINDS, Event, LIVENESS, State, Stop};

type M = SpecModel<Stop>;

fn config(threads: usize, interps: u8, design: Design) -> Config {
    cpyrt_models::stw::config(threads, interps, design)
}

/// The first liveness property with a fair counterexample, and its lasso
/// (checked against the model before it is returned).
fn first_failure(cfg: Config, fairness: &Fairness<Event>) -> Option<(&'static str, Lasso<M>)> {
    let model = M::new(cfg);
    let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
    for prop in LIVENESS {
        let p = |s: &Checked<State>| (prop.p)(&s.state);
        let q = |s: &Checked<State>| (prop.q)(&s.state);
        let report = leads_to(&model, &graph, fairness, p, q).unwrap();
        if let Some(lasso) = report.lasso {
            lasso
                .verify(&model, fairness, q)
                .unwrap_or_else(|e| panic!("{}: {e}", prop.name));
            return Some((prop.name, lasso));
        }
    }
    None
}

#[test]
fn shipped_designs_make_progress_under_the_declared_fairness() {
    for design in [Design::CPYTHON, Design::CPYTHON_MAIN] {
        for (threads, interps) in [(2, 1), (2, 2), (3, 1), (3, 2)] {
            let failure = first_failure(config(threads, interps, design), &HOOKS.fairness());
            assert!(
                failure.is_none(),
                "{threads} threads, {interps} interpreters: {:?}",
                failure.map(|(name, l)| (name, l.indices()))
            );
        }
    }
}

#[test]
fn every_fairness_assumption_is_needed() {
    // Dropping a class, or weakening a strong one, admits a fair run in
    // which a pause never completes. The hand-off rule matters where the
    // requester detaches while it waits: without it, the requester can
    // release and retake its lock every millisecond while the waiter,
    // woken each time without the lock, never gets to an eval breaker.
    let declared = HOOKS.fairness();
    let mut weaker = Vec::new();
    for class in FAIRNESS {
        weaker.push((
            format!("without {}", class.name),
            class.name,
            declared.without(class.name),
        ));
        if class.strength == Strength::Strong {
            weaker.push((
                format!("weak {}", class.name),
                class.name,
                declared.with_strength(class.name, Strength::Weak),
            ));
        }
    }
    for (name, class, fairness) in weaker {
        let design = if class == "hand_off" {
            Design {
                requester_stays_attached: false,
                ..Design::CPYTHON
            }
        } else {
            Design::CPYTHON
        };
        let (prop, _) = first_failure(config(2, 1, design), &fairness)
            .unwrap_or_else(|| panic!("{name}: every property still holds"));
        assert!(prop.ends_with("_stops_world"), "{name}: {prop}");
    }
}

#[test]
fn hand_off_fairness_ends_the_detaching_requesters_livelock() {
    // With two threads the gh-118332 design only livelocks, and the hand-off
    // rule ends that: its deadlock needs a third thread.
    let design = Design {
        requester_stays_attached: false,
        ..Design::CPYTHON
    };
    assert!(first_failure(config(2, 1, design), &HOOKS.fairness()).is_none());
}

#[test]
fn kinds_are_the_spec_kinds_and_hand_off() {
    let mut spec: Vec<&str> = EVENT_KINDS.to_vec();
    spec.push(HAND_OFF);
    assert_eq!(KINDS, spec.as_slice());
}

#[test]
fn deadlocking_twins_lose_progress() {
    let fairness = HOOKS.fairness();
    let twin = |f: fn(&mut Design)| {
        let mut d = Design::CPYTHON;
        f(&mut d);
        d
    };
    for (name, design, property, last) in [
        // The requester parks on the lock handed to the thread it
        // suspended: that thread is never released.
        (
            "cs-lock-in-pause",
            twin(|d| d.skip_cs_lock_while_stopped = false),
            "suspended_thread_0_resumes",
            "PauseCs",
        ),
        // The requester rescans forever for a thread that exited.
        (
            "delete-keeps-countdown",
            twin(|d| d.delete_decrements_countdown = false),
            "global_pause_stops_world",
            "StwScan",
        ),
        // Two requesters of overlapping pauses each wait for the other.
        (
            "no-rw-mutex",
            twin(|d| d.pauses_take_rw_mutex = false),
            "global_pause_stops_world",
            "StwScan",
        ),
    ] {
        let cfg = config(2, 1, design);
        let (prop, lasso) = first_failure(cfg.clone(), &fairness)
            .unwrap_or_else(|| panic!("{name}: progress holds"));
        assert_eq!(prop, property, "{name}");
        let events: Vec<Event> = lasso.trace.actions().copied().collect();
        assert_eq!(events.last().map(|e| e.kind()), Some(last), "{name}");
        // The lasso's events are a run of the spec (invariants aside).
        let mut s = <Stop as cpyrt_spec::Spec>::init(&cfg);
        for e in &events {
            s = <Stop as cpyrt_spec::Spec>::step(&cfg, &s, e).unwrap();
        }
        assert_eq!(&s, &lasso.trace.last().state, "{name}");
    }
}

#[test]
fn coverage_fires_every_kind_of_the_shipped_design() {
    let model = M::new(config(2, 1, Design::CPYTHON));
    let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
    let cov = HOOKS.coverage(&model, &graph);
    // Only the broken designs park a requester on its event or lock inside
    // a pause; creation needs the third thread.
    assert_eq!(
        cov.never_fired,
        ["Create", "StwPark", "StwUnpark", "PauseCs"]
    );
}
