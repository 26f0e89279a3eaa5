//! Symmetry reduction under BFS: fewer states, the same verdicts, and
//! counterexamples that are real runs with real thread numbers.

use cpyrt_models::checker::properties::{Outcome, PropertyResult, check_properties};
use cpyrt_models::checker::qsbr::HOOKS;
use cpyrt_models::checker::trace::Trace;
use cpyrt_models::checker::{DEFAULT_MAX_STATES, Fairness, StateGraph, build_reduced, leads_to};
use cpyrt_models::{Checked, SpecModel};
use cpyrt_spec::qsbr::{Config, LIVENESS, Qsbr, State};
use stateright::Model;

type M = SpecModel<Qsbr>;

/// Every QSBR variant the registry lists: the shipped design and its twins.
fn designs(threads: usize) -> Vec<(&'static str, Config)> {
    cpyrt_models::qsbr::VARIANTS
        .iter()
        .map(|v| (v.name, (v.config)(threads)))
        .collect()
}

fn design(name: &str, threads: usize) -> Config {
    designs(threads)
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("a registered variant")
        .1
}

/// (failed, reached) property names.
fn verdicts(results: &[PropertyResult<M>]) -> (Vec<&'static str>, Vec<&'static str>) {
    let failed = results
        .iter()
        .filter(|r| r.outcome.is_failure())
        .map(|r| r.name)
        .collect();
    let reached = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Reached(_)))
        .map(|r| r.name)
        .collect();
    (failed, reached)
}

#[test]
fn reduced_runs_find_what_plain_runs_find() {
    for threads in 1..=2 {
        for (name, cfg) in designs(threads) {
            let model = M::new(cfg);
            let plain = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
            let reduced = build_reduced(&model, DEFAULT_MAX_STATES).unwrap();
            let at = format!("{name} at {threads} threads");
            assert!(reduced.len() <= plain.len(), "{at}");
            if threads == 2 {
                // Close to 2! fewer: only states whose two threads are in the
                // same state are their own renaming.
                assert!(
                    reduced.len() * 19 <= plain.len() * 10,
                    "{at}: {} vs {}",
                    reduced.len(),
                    plain.len()
                );
            }
            let (p, r) = (
                check_properties(&model, &plain).unwrap(),
                check_properties(&model, &reduced).unwrap(),
            );
            assert_eq!(verdicts(&p), verdicts(&r), "{at}");
            if name != "base" && name != "no-gc-advance" && threads == 2 {
                assert!(!verdicts(&r).0.is_empty(), "{at}: the twin must fail");
            }
            for (a, b) in p.iter().zip(&r) {
                let (Outcome::Violated(tp), Outcome::Violated(tr)) = (&a.outcome, &b.outcome)
                else {
                    continue;
                };
                // Shortest up to renaming, so just as long; and a real run:
                // its indices replay in the plain model to a state that
                // breaks the property.
                assert_eq!(tp.steps.len(), tr.steps.len(), "{at}: {}", a.name);
                let again = Trace::from_indices(&model, &tr.indices()).unwrap();
                let prop = model.property(a.name);
                assert!(!(prop.condition)(&model, again.last()), "{at}: {}", a.name);
            }
        }
    }
}

#[test]
fn counterexamples_keep_real_thread_numbers() {
    // The stale-slot-pointer twin needs two threads that do different
    // things; the representative may number them the other way round, and
    // the printed run must still be a run of the real model.
    let cfg = design("stale-slot-pointer", 2);
    let model = M::new(cfg);
    let reduced = build_reduced(&model, DEFAULT_MAX_STATES).unwrap();
    let results = check_properties(&model, &reduced).unwrap();
    let trace = results
        .iter()
        .find_map(|r| match &r.outcome {
            Outcome::Violated(t) => Some(t),
            _ => None,
        })
        .expect("the twin fails");
    let events: Vec<_> = trace.actions().copied().collect();
    let threads: std::collections::BTreeSet<u8> = events.iter().map(|e| e.thread()).collect();
    assert_eq!(threads.len(), 2);
    assert!(cpyrt_spec::replay::<Qsbr>(&model.cfg, &events).is_err());
    let states: Vec<&Checked<State>> = (0..=trace.steps.len()).map(|k| trace.state_at(k)).collect();
    assert_eq!(states[0], &model.init_states()[0]);
}

#[test]
fn liveness_without_fairness_works_on_the_reduced_graph() {
    // Without fairness the quotient is exact: the reduced graph finds a
    // lasso, and following its cycle in the real model closes it.
    let cfg = design("no-gc-advance", 2);
    let model = M::new(cfg);
    let reduced = build_reduced(&model, DEFAULT_MAX_STATES).unwrap();
    let p = |s: &Checked<State>| (LIVENESS[0].p)(&s.state);
    let q = |s: &Checked<State>| (LIVENESS[0].q)(&s.state);
    let lasso = leads_to(&model, &reduced, &Fairness::none(), p, q)
        .unwrap()
        .lasso
        .expect("starves");
    lasso.verify(&model, &Fairness::none(), q).unwrap();
    // With per-thread fairness the reduced graph is refused.
    let err = leads_to(&model, &reduced, &HOOKS.fairness(), p, q)
        .err()
        .unwrap();
    assert!(err.to_string().contains("unreduced"), "{err}");
}
