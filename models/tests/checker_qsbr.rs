//! QSBR progress ("every retired object is eventually freed") under the
//! fairness the model declares, the twin whose deferred goals are never
//! followed by a real advance, and coverage.

use cpyrt_models::checker::fairness::{Fairness, Strength};
use cpyrt_models::checker::qsbr::{FAIRNESS, HOOKS};
use cpyrt_models::checker::{DEFAULT_MAX_STATES, Lasso, StateGraph, eventually, leads_to};
use cpyrt_models::{Checked, SpecModel};
use cpyrt_spec::qsbr::{
    CPYTHON_DEFERRED_LIMIT, Config, Design, Event, LIVENESS, Life, Object, Qsbr,
};
use stateright::{Checker, Model, Property};

type M = SpecModel<Qsbr>;

fn base(threads: usize) -> Config {
    cpyrt_models::qsbr::config(threads, Design::CPYTHON)
}

/// The `no-gc-advance` twin: GC never advances and the deferral limit
/// (CPython's 10) is above the number of retirements, so no real advance
/// ever comes.
fn no_gc_advance(threads: usize) -> Config {
    let v = cpyrt_models::qsbr::VARIANTS
        .iter()
        .find(|v| v.name == "no-gc-advance")
        .expect("the liveness twin is registered");
    let cfg = (v.config)(threads);
    assert!(!cfg.design.gc_advances && cfg.deferral_limit == CPYTHON_DEFERRED_LIMIT);
    cfg
}

fn p(s: &Checked<cpyrt_spec::qsbr::State>) -> bool {
    (LIVENESS[0].p)(&s.state)
}

fn q(s: &Checked<cpyrt_spec::qsbr::State>) -> bool {
    (LIVENESS[0].q)(&s.state)
}

fn check(cfg: Config, fairness: &Fairness<Event>) -> (M, Option<Lasso<M>>) {
    let model = M::new(cfg);
    let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
    let report = leads_to(&model, &graph, fairness, p, q).unwrap();
    (model, report.lasso)
}

fn kinds(lasso: &Lasso<M>, range: std::ops::Range<usize>) -> Vec<&'static str> {
    lasso.trace.steps[range]
        .iter()
        .map(|s| s.action.kind())
        .collect()
}

#[test]
fn graph_counts_the_same_states_as_stateright() {
    for threads in 1..=2 {
        let model = M::new(base(threads));
        let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
        let bfs = model.clone().checker().threads(1).spawn_bfs().join();
        assert_eq!(graph.len(), bfs.unique_state_count(), "{threads} threads");
    }
}

#[test]
fn base_design_frees_every_retired_object_under_the_declared_fairness() {
    for threads in 1..=2 {
        let (_, lasso) = check(base(threads), &HOOKS.fairness());
        assert!(lasso.is_none(), "{threads} threads");
    }
}

#[test]
fn every_fairness_assumption_is_needed() {
    // Dropping any class, or weakening a strong one, lets a fair run keep
    // an object retired forever: each lasso is checked against the model.
    let declared = HOOKS.fairness();
    let mut weaker = Vec::new();
    for class in FAIRNESS {
        weaker.push((
            format!("without {}", class.name),
            declared.without(class.name),
        ));
        if class.strength == Strength::Strong {
            weaker.push((
                format!("weak {}", class.name),
                declared.with_strength(class.name, Strength::Weak),
            ));
        }
    }
    for (name, fairness) in weaker {
        let (model, lasso) = check(base(2), &fairness);
        let lasso = lasso.unwrap_or_else(|| panic!("{name}: the property still holds"));
        lasso
            .verify(&model, &fairness, q)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(lasso.verify(&model, &declared, q).is_err(), "{name}");
    }
}

#[test]
fn without_a_real_advance_deferred_goals_starve() {
    let fairness = HOOKS.fairness();
    let (model, lasso) = check(no_gc_advance(2), &fairness);
    let lasso = lasso.expect("deferred goals are never reached");
    lasso.verify(&model, &fairness, q).unwrap();
    // Thread 0 retires object 0 with the deferred goal 3, then attaches
    // and detaches forever: wr_seq stays 1, so nothing can free it.
    assert_eq!(
        kinds(&lasso, 0..lasso.cycle_start),
        ["Reserve", "Register", "Attach", "Replace"]
    );
    assert_eq!(
        kinds(&lasso, lasso.cycle_start..lasso.trace.steps.len()),
        ["Detach", "Attach"]
    );
    assert_eq!(lasso.p_at, 4);
    assert_eq!(lasso.indices(), [0, 0, 0, 0, 2, 1, 0]);
    let last = &lasso.trace.last().state;
    assert_eq!(
        (last.wr_seq, last.objects[0]),
        (1, Object::Retired { goal: 3 })
    );
    // The events replay through the spec itself.
    let events: Vec<Event> = lasso.trace.actions().copied().collect();
    let states = cpyrt_spec::replay::<Qsbr>(&model.cfg, &events).unwrap();
    assert_eq!(states.last().unwrap(), last);
    // The same run twice gives the same lasso.
    let (_, again) = check(no_gc_advance(2), &fairness);
    assert_eq!(again.unwrap().indices(), lasso.indices());
}

/// The twin with stateright's own `eventually`: object 0 is freed or every
/// thread exits.
struct WithEventually(M);

fn object_0_freed(_: &WithEventually, s: &Checked<cpyrt_spec::qsbr::State>) -> bool {
    s.state.objects[0] == Object::Freed || s.state.threads.iter().all(|t| t.life == Life::Exited)
}

impl Model for WithEventually {
    type State = Checked<cpyrt_spec::qsbr::State>;
    type Action = Event;
    fn init_states(&self) -> Vec<Self::State> {
        self.0.init_states()
    }
    fn actions(&self, s: &Self::State, out: &mut Vec<Event>) {
        self.0.actions(s, out)
    }
    fn next_state(&self, s: &Self::State, a: Event) -> Option<Self::State> {
        self.0.next_state(s, a)
    }
    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::eventually("object_0_freed", object_0_freed)]
    }
}

#[test]
fn stateright_eventually_misses_the_starving_twin() {
    // Every run that stops has all threads exited (the goal holds there);
    // the runs that starve object 0 are cycles, which stateright does not
    // judge.
    let model = WithEventually(M::new(no_gc_advance(2)));
    let checker = model.checker().threads(1).spawn_bfs().join();
    checker.assert_no_discovery("object_0_freed");
    let model = WithEventually(M::new(no_gc_advance(2)));
    let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
    let goal = |s: &Checked<cpyrt_spec::qsbr::State>| object_0_freed(&model, s);
    let lasso = eventually(&model, &graph, &Fairness::none(), goal)
        .unwrap()
        .lasso
        .expect("the graph sees the cycle");
    lasso.verify(&model, &Fairness::none(), goal).unwrap();
}

#[test]
fn coverage_counts_every_kind_and_flags_the_ones_that_never_fire() {
    let model = M::new(base(2));
    let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
    let cov = HOOKS.coverage(&model, &graph);
    assert!(cov.never_fired.is_empty(), "{:?}", cov.never_fired);
    let total: u64 = cov.kinds.iter().map(|k| k.transitions).sum();
    assert_eq!(total as usize, graph.edge_count());
    // With one object nothing is ever retired: the safety properties hold
    // vacuously, and coverage says which part of the protocol never ran
    // (wr_seq never moves, so neither do quiescent states nor scans).
    let mut cfg = base(2);
    cfg.max_objects = 1;
    let model = M::new(cfg);
    let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
    let bfs = model.clone().checker().threads(1).spawn_bfs().join();
    for prop in model.properties() {
        if prop.expectation == stateright::Expectation::Always {
            bfs.assert_no_discovery(prop.name);
        }
    }
    let cov = HOOKS.coverage(&model, &graph);
    let never = [
        "Quiescent",
        "Replace",
        "Advance",
        "Scan",
        "FreeOwn",
        "FreeInterp",
    ];
    assert_eq!(cov.never_fired, never);
    assert!(
        cov.render()
            .contains(&format!("never fired: {}", never.join(", ")))
    );
    let warning = cov.vacuity_warning(true).expect("a holding run is flagged");
    assert!(warning.contains("Replace"), "{warning}");
    assert_eq!(cov.vacuity_warning(false), None);
}

#[test]
fn the_state_cap_is_named_in_the_error() {
    let model = M::new(base(2));
    let err = StateGraph::build(&model, 100)
        .err()
        .expect("more than 100 states");
    let text = err.to_string();
    assert!(
        text.contains("100") && text.contains("--max-states"),
        "{text}"
    );
}

#[test]
fn cpyrt_check_judges_liveness_and_reports_it() {
    use cpyrt_models::registry::{self, Token};
    use cpyrt_models::report::{Status, Verdict};
    use cpyrt_models::run::RunOptions;
    let qsbr = registry::find("qsbr").unwrap();
    let check = |variant: &str, opts: &RunOptions| {
        registry::check(qsbr, variant, 2, "default", opts, &mut |_| {}).unwrap()
    };
    let r = check("no-gc-advance", &RunOptions::default());
    assert_eq!(r.result, Verdict::Violates);
    assert_eq!(r.violated, ["retired_eventually_freed"]);
    assert_eq!(r.status, Status::AsExpected, "{:?}", r.mismatches);
    let x = r.checker.as_ref().unwrap();
    assert!(!x.liveness[0].holds && x.unjudged.is_empty());
    // The lasso is a counterexample whose token replays prefix and cycle.
    let token = Token::parse(&r.counterexamples[0].token).unwrap();
    assert_eq!(token.steps, [0, 0, 0, 2, 1, 0]);
    assert_eq!(qsbr.replay(&token).unwrap().steps.len(), 6);
    // Not judged: left out of the expectation, and said so.
    let opts = RunOptions {
        skip_liveness: true,
        ..RunOptions::default()
    };
    let r = check("no-gc-advance", &opts);
    assert_eq!((r.result, r.status), (Verdict::Holds, Status::AsExpected));
    assert_eq!(r.checker.unwrap().unjudged, ["retired_eventually_freed"]);
    // A symmetric run counts representatives against the manifest's count.
    let opts = RunOptions {
        symmetry: true,
        coverage: true,
        ..RunOptions::default()
    };
    let r = check("base", &opts);
    assert_eq!(r.status, Status::AsExpected, "{:?}", r.mismatches);
    let x = r.checker.unwrap();
    assert_eq!(
        (x.representatives, x.unreduced_states),
        (Some(3471), Some(6879))
    );
    assert!(x.coverage.unwrap().symmetric);
}
