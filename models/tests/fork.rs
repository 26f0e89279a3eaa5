//! The fork model: the child's progress under the declared fairness, what
//! each twin breaks and how long its shortest counterexample is, and the
//! events that must fire in the shipped design.

use cpyrt_models::checker::fairness::Fairness;
use cpyrt_models::checker::fork::{FAIRNESS, HOOKS};
use cpyrt_models::checker::{DEFAULT_MAX_STATES, StateGraph, leads_to};
use cpyrt_models::registry::{self, DEFAULT_BOUNDS};
use cpyrt_models::report::Verdict;
use cpyrt_models::run::RunOptions;
use cpyrt_models::{Checked, SpecModel};
use cpyrt_spec::fork::{Config, Design, EVENT_KINDS, Event, Fork, LIVENESS, State};

type M = SpecModel<Fork>;

fn variant(name: &str, threads: usize) -> Config {
    let v = cpyrt_models::fork::VARIANTS
        .iter()
        .find(|v| v.name == name)
        .unwrap();
    (v.config)(threads)
}

/// The liveness properties that fail, by name.
fn failing_liveness(cfg: Config, fairness: &Fairness<Event>) -> Vec<&'static str> {
    let model = M::new(cfg);
    let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
    LIVENESS
        .iter()
        .filter(|prop| {
            let report = leads_to(
                &model,
                &graph,
                fairness,
                |s: &Checked<State>| (prop.p)(&s.state),
                |s: &Checked<State>| (prop.q)(&s.state),
            )
            .unwrap();
            !report.holds()
        })
        .map(|prop| prop.name)
        .collect()
}

#[test]
fn shipped_child_makes_progress_under_the_declared_fairness() {
    for (name, threads) in [("base", 1), ("base", 2), ("gil", 1), ("gil", 2)] {
        assert_eq!(
            failing_liveness(variant(name, threads), &HOOKS.fairness()),
            Vec::<&str>::new(),
            "{name} at {threads} threads"
        );
    }
}

#[test]
fn without_a_pause_before_fork_the_child_cannot_pause_or_reclaim() {
    // A dead thread's QSBR sequence holds rd_seq back for good, and a dead
    // thread's pause suspends the forker forever.
    assert_eq!(
        failing_liveness(variant("no-stop-the-world", 2), &HOOKS.fairness()),
        vec![
            "child_eventually_pauses",
            "child_eventually_imports",
            "child_eventually_reclaims"
        ]
    );
}

#[test]
fn each_progress_goal_needs_its_fairness_class() {
    // Without fairness for its class, a run may ignore the goal forever:
    // the assumptions are not vacuous.
    let declared = HOOKS.fairness();
    for (class, goal) in [
        ("pause", "child_eventually_pauses"),
        ("import", "child_eventually_imports"),
        ("reclaim", "child_eventually_reclaims"),
    ] {
        let failing = failing_liveness(variant("base", 1), &declared.without(class));
        assert!(failing.contains(&goal), "without {class}: {failing:?}");
    }
    assert!(FAIRNESS.iter().any(|c| c.name == "handler"));
}

/// `(variant, threads, property, shortest counterexample length)`: what each
/// twin breaks, at the fewest threads it needs.
const TWINS: &[(&str, usize, &str, usize)] = &[
    (
        "handles-marked-late",
        2,
        "child_dead_handles_marked_before_code",
        13,
    ),
    ("handles-marked-late", 2, "no_os_call_on_lost_thread", 19),
    ("head-unlocked-across-fork", 2, "child_lists_consistent", 9),
    ("no-stop-the-world", 2, "child_no_dead_qsbr_seq", 6),
    ("no-stop-the-world", 2, "child_no_dead_pause", 8),
    ("no-stop-the-world", 2, "child_locks_free_or_live", 8),
    ("no-stop-the-world", 2, "no_wait_forever", 8),
    ("no-lock-reinit", 1, "no_wait_forever", 9),
    ("no-lock-reinit", 2, "child_locks_free_or_live", 11),
    ("clear-before-restart", 1, "no_code_while_world_stopped", 11),
    ("gil-not-recreated", 1, "no_wait_forever", 9),
];

#[test]
fn twins_fail_with_their_pinned_counterexamples() {
    let fork = registry::find("fork").unwrap();
    let opts = RunOptions::default();
    let mut runs = std::collections::BTreeMap::new();
    for &(name, threads, property, len) in TWINS {
        let report = runs.entry((name, threads)).or_insert_with(|| {
            fork.check(name, threads, DEFAULT_BOUNDS, &opts, &mut |_| {})
                .unwrap()
        });
        assert_eq!(report.result, Verdict::Violates, "{name}");
        let cx = report
            .counterexamples
            .iter()
            .find(|c| c.property == property)
            .unwrap_or_else(|| panic!("{name} at {threads} threads does not violate {property}"));
        assert!(cx.shortest, "{name}: {property}");
        assert_eq!(cx.steps.len(), len, "{name}: {property}: {}", cx.token);
        // The token replays to a state that violates the property.
        let replay = fork
            .replay(&registry::Token::parse(&cx.token).unwrap())
            .unwrap();
        assert!(
            replay.violated.iter().any(|v| v == property),
            "{}",
            cx.token
        );
    }
}

#[test]
fn every_twin_holds_at_its_switch_in_the_shipped_position() {
    // Each twin differs from the shipped design in one switch, so the base
    // design's clean run at the same bounds is the contrast.
    for v in cpyrt_models::fork::VARIANTS {
        let c = (v.config)(2);
        let differing = [
            c.design.stop_world_across_fork != Design::CPYTHON.stop_world_across_fork,
            c.design.hold_head_lock_across_fork != Design::CPYTHON.hold_head_lock_across_fork,
            c.design.reinit_locks_in_child != Design::CPYTHON.reinit_locks_in_child,
            c.design.mark_handles_before_code != Design::CPYTHON.mark_handles_before_code,
            c.design.keep_not_started_handles != Design::CPYTHON.keep_not_started_handles,
            c.design.start_world_before_clearing != Design::CPYTHON.start_world_before_clearing,
            c.design.recreate_gil_in_child != Design::CPYTHON.recreate_gil_in_child,
        ]
        .iter()
        .filter(|d| **d)
        .count();
        let expected = usize::from(!matches!(v.name, "base" | "gil"));
        assert_eq!(differing, expected, "{}", v.name);
    }
}

#[test]
fn every_event_kind_fires_in_the_shipped_design() {
    let model = M::new(variant("base", 2));
    let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
    let coverage = HOOKS.coverage(&model, &graph);
    assert!(coverage.never_fired.is_empty(), "{}", coverage.render());
    for kind in EVENT_KINDS {
        assert!(coverage.count(kind) > 0, "{kind}");
    }
}
