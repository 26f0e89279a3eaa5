//! GIL liveness under the fairness the model declares: a waiter's
//! `take_gil` returns and a `switch_cond` wait ends; without
//! FORCE_SWITCHING the starvation lasso appears.

use cpyrt_models::SpecModel;
use cpyrt_models::checker::gil::HOOKS;
use cpyrt_models::checker::{DEFAULT_MAX_STATES, StateGraph};
use cpyrt_models::gil::{VARIANTS, finalize, handoff};
use cpyrt_spec::gil::{Config, Design, GilSpec};

type M = SpecModel<GilSpec>;

/// Names of the liveness properties that fail, with each lasso's prefix
/// and cycle lengths.
fn failing(cfg: Config) -> Vec<(String, usize, usize)> {
    let model = M::new(cfg);
    let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
    HOOKS
        .liveness(&model, &graph, &HOOKS.fairness())
        .unwrap()
        .into_iter()
        .filter(|o| !o.holds)
        .map(|o| {
            let l = o.lasso.expect("a failing property has a lasso");
            (o.name, l.prefix.len(), l.cycle.len())
        })
        .collect()
}

fn names(f: &[(String, usize, usize)]) -> Vec<&str> {
    f.iter().map(|(n, _, _)| n.as_str()).collect()
}

#[test]
fn forced_switching_lets_every_waiter_in() {
    for threads in 1..=2 {
        let f = failing(handoff(threads, Design::CPYTHON));
        assert!(f.is_empty(), "{threads} threads: {f:?}");
    }
}

#[test]
fn without_forced_switching_the_dropper_starves_the_waiter() {
    let f = failing(handoff(
        2,
        Design {
            force_switching: false,
            ..Design::CPYTHON
        },
    ));
    // One CPU-bound thread drops on request and takes the GIL straight
    // back, forever, while the other times out again and again.
    assert!(names(&f).contains(&"take_returns_0"), "{f:?}");
    assert!(names(&f).contains(&"take_returns_1"), "{f:?}");
    assert!(f.iter().all(|(_, _, cycle)| *cycle > 0), "{f:?}");
}

#[test]
fn the_finalize_deadlock_is_a_switch_wait_that_never_ends() {
    let f = failing(finalize(2, Design::CPYTHON));
    assert!(names(&f).contains(&"switch_wait_ends_0"), "{f:?}");
    let closed = failing(finalize(
        2,
        Design {
            clear_request_before_unlock: true,
            ..Design::CPYTHON
        },
    ));
    assert!(closed.is_empty(), "{closed:?}");
}

#[test]
fn every_variant_builds_a_graph_at_two_threads() {
    for v in VARIANTS {
        let model = M::new((v.config)(2));
        let graph = StateGraph::build(&model, DEFAULT_MAX_STATES).unwrap();
        assert!(graph.len() > 1, "{}", v.name);
    }
}

#[test]
fn a_voluntary_releaser_or_a_second_waiter_can_starve_a_waiter() {
    // Thread 2 blocks and wakes: each release wakes a CPU-bound waiter,
    // which restarts its interval and never times out, and thread 2 takes
    // the GIL back before the woken waiter re-takes the mutex. With two
    // waiters, the one the signals never pick can starve too. CPython's
    // GIL bounds neither.
    let f = failing(handoff(3, Design::CPYTHON));
    assert_eq!(
        names(&f),
        ["take_returns_0", "take_returns_1", "take_returns_2"],
        "{f:?}"
    );
}
