//! The run engine's promises: same configuration, same counts and same
//! counterexample; BFS and DFS agree; bounds stop a run exactly where they
//! say and mark it partial; a counterexample's token replays to the same
//! violation, in the model and in the spec's own trace checker.

use cpyrt_models::SpecModel;
use cpyrt_models::qsbr;
use cpyrt_models::registry::{self, Mechanism, Token};
use cpyrt_models::report::{Report, Status, Verdict};
use cpyrt_models::run::{self, Bound, RunOptions, Strategy};
use cpyrt_spec::qsbr::{Design, Qsbr};
use cpyrt_spec::{TraceError, replay};

fn qsbr_mech() -> &'static dyn Mechanism {
    registry::find("qsbr").unwrap()
}

fn check(variant: &str, threads: usize, opts: &RunOptions) -> Report {
    qsbr_mech()
        .check(variant, threads, "default", opts, &mut |_| {})
        .unwrap()
}

#[test]
fn same_configuration_same_result() {
    let opts = RunOptions::default();
    let a = check("free-before-goal", 2, &opts);
    let b = check("free-before-goal", 2, &opts);
    assert_eq!(a.result, Verdict::Violates);
    assert_eq!(
        (a.unique_states, a.total_states, a.depth),
        (b.unique_states, b.total_states, b.depth)
    );
    assert_eq!(a.counterexamples, b.counterexamples);
}

#[test]
fn bfs_and_dfs_see_the_same_states_and_print_the_same_path() {
    let bfs = check("stale-slot-pointer", 2, &RunOptions::default());
    let dfs = check(
        "stale-slot-pointer",
        2,
        &RunOptions {
            strategy: Strategy::Dfs,
            ..RunOptions::default()
        },
    );
    assert_eq!(bfs.unique_states, dfs.unique_states);
    assert_eq!(bfs.violated, dfs.violated);
    assert_eq!(bfs.counterexamples, dfs.counterexamples);
    assert!(bfs.counterexamples.iter().all(|c| c.shortest));
}

#[test]
fn max_states_stops_exactly_and_is_partial() {
    let opts = RunOptions {
        max_states: Some(1_000),
        ..RunOptions::default()
    };
    let a = check("base", 2, &opts);
    let b = check("base", 2, &opts);
    assert!(a.partial);
    assert_eq!(a.bound, Some(Bound::MaxStates));
    assert_eq!(a.total_states, 1_000);
    assert_eq!(a.result, Verdict::Incomplete);
    assert_eq!(a.status, Status::Partial);
    assert!(
        a.unreached.is_empty(),
        "goals are not judged on partial runs"
    );
    assert_eq!(a.unique_states, b.unique_states);
    // A bound above the state space changes nothing.
    let full = check(
        "base",
        2,
        &RunOptions {
            max_states: Some(1_000_000),
            ..RunOptions::default()
        },
    );
    assert!(!full.partial);
    assert_eq!(
        full.unique_states,
        check("base", 2, &RunOptions::default()).unique_states
    );
}

#[test]
fn timeout_stops_a_large_run() {
    let r = check(
        "base",
        4,
        &RunOptions {
            timeout: Some(std::time::Duration::from_millis(200)),
            ..RunOptions::default()
        },
    );
    assert!(r.partial);
    assert_eq!(r.bound, Some(Bound::Timeout));
    assert_eq!(r.result, Verdict::Incomplete);
}

#[test]
fn a_twin_below_its_thread_count_holds() {
    let r = check("quiescent-in-read", 1, &RunOptions::default());
    assert_eq!(r.result, Verdict::Holds);
    assert_eq!(r.status, Status::AsExpected);
    assert!(r.expected.violated.is_empty());
}

#[test]
fn tokens_replay_in_the_model_and_in_the_spec() {
    for variant in [
        "free-before-goal",
        "quiescent-in-read",
        "stale-slot-pointer",
    ] {
        let r = check(variant, 2, &RunOptions::default());
        assert!(!r.counterexamples.is_empty(), "{variant}");
        for c in &r.counterexamples {
            let token = Token::parse(&c.token).unwrap();
            assert_eq!(token.to_string(), c.token);
            let replayed = qsbr_mech().replay(&token).unwrap();
            assert_eq!(replayed.steps, c.steps);
            assert!(replayed.violated.contains(&c.property), "{variant}");
            // The same events, checked by the spec's trace replay, leave
            // the spec at the last step with an invariant the twin breaks.
            let info = qsbr_mech().variant(variant).unwrap();
            let cfg = (qsbr::VARIANTS
                .iter()
                .find(|v| v.name == variant)
                .unwrap()
                .config)(2);
            let model = SpecModel::<Qsbr>::new(cfg.clone());
            let (_, events) = run::follow(&model, &token.steps).unwrap();
            match replay::<Qsbr>(&cfg, &events) {
                Err(TraceError::Invariant { index, name }) => {
                    assert_eq!(index, events.len() - 1);
                    assert!(info.violates.contains(&name), "{variant}: {name}");
                }
                other => panic!("{variant}: spec replay gave {other:?}"),
            }
            // The base design refuses or survives the same schedule.
            let base = qsbr::config(2, Design::CPYTHON);
            assert!(!matches!(
                replay::<Qsbr>(&base, &events),
                Err(TraceError::Invariant { .. })
            ));
        }
    }
}

#[test]
fn bad_tokens_are_one_line_errors() {
    let m = qsbr_mech();
    for text in [
        "",
        "qsbr",
        "qsbr/base/2",
        "qsbr/base/x/0",
        "qsbr/base/2/0..1",
        "qsbr/base/2/-1",
        "a/b/c/d/e/f",
    ] {
        let e = Token::parse(text).unwrap_err();
        assert!(e.starts_with("malformed replay token"), "{text}: {e}");
        assert!(!e.contains('\n'));
    }
    let not_a_path = Token::parse("qsbr/base/2/0.0.99").unwrap();
    let e = m.replay(&not_a_path).unwrap_err();
    assert!(e.contains("step 3 takes action 99"), "{e}");
    let e = m
        .replay(&Token::parse("qsbr/base/7/0").unwrap())
        .unwrap_err();
    assert!(e.contains("1 to 4 threads"), "{e}");
    let e = m
        .replay(&Token::parse("qsbr/base/2/tiny/0").unwrap())
        .unwrap_err();
    assert!(e.contains("known bounds: default, small"), "{e}");
    let empty = m.replay(&Token::parse("qsbr/base/2/-").unwrap()).unwrap();
    assert!(empty.steps.is_empty() && empty.violated.is_empty());
}
