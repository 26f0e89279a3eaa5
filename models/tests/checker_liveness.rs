//! Liveness on small hand-written models: the shapes stateright 0.31's own
//! tests mark as missed by `Property::eventually` (a cycle back to an
//! earlier state, two paths joining at a state), and models whose property
//! holds only because of weak or strong fairness.

use std::collections::{BTreeMap, BTreeSet};

use cpyrt_models::checker::fairness::{FairClass, Fairness, Strength};
use cpyrt_models::checker::properties::{Outcome, check_properties};
use cpyrt_models::checker::{StateGraph, eventually, leads_to};
use stateright::{Checker, Model, Property};

/// A directed graph over `u8` states, the shape of stateright's private
/// `test_util::dgraph`: each path given adds its first state as initial and
/// its edges; the action is the target state.
#[derive(Clone, Default)]
struct DGraph {
    inits: BTreeSet<u8>,
    edges: BTreeMap<u8, BTreeSet<u8>>,
}

impl DGraph {
    fn path(mut self, path: &[u8]) -> Self {
        self.inits.insert(path[0]);
        for w in path.windows(2) {
            self.edges.entry(w[0]).or_default().insert(w[1]);
        }
        self
    }
}

impl Model for DGraph {
    type State = u8;
    type Action = u8;

    fn init_states(&self) -> Vec<u8> {
        self.inits.iter().copied().collect()
    }

    fn actions(&self, s: &u8, out: &mut Vec<u8>) {
        out.extend(self.edges.get(s).into_iter().flatten());
    }

    fn next_state(&self, _: &u8, a: u8) -> Option<u8> {
        Some(a)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::eventually("odd", |_, s| s % 2 == 1)]
    }
}

fn odd(s: &u8) -> bool {
    s % 2 == 1
}

/// What stateright's BFS and DFS report for `odd`.
fn stateright_finds(model: &DGraph) -> (bool, bool) {
    let bfs = model.clone().checker().spawn_bfs().join();
    let dfs = model.clone().checker().spawn_dfs().join();
    (
        bfs.discovery("odd").is_some(),
        dfs.discovery("odd").is_some(),
    )
}

fn states(trace: &cpyrt_models::checker::Trace<DGraph>) -> Vec<u8> {
    (0..=trace.steps.len())
        .map(|k| *trace.state_at(k))
        .collect()
}

#[test]
fn cycle_back_to_an_earlier_state_is_a_violation() {
    let model = DGraph::default().path(&[0, 2, 4, 2]);
    // stateright's own FIXME: "should be [0, 2, 4, 2]", and it finds nothing.
    assert_eq!(stateright_finds(&model), (false, false));

    let graph = StateGraph::build(&model, 100).unwrap();
    let report = eventually(&model, &graph, &Fairness::none(), odd).unwrap();
    let lasso = report
        .lasso
        .expect("the cycle 2 -> 4 -> 2 never reaches an odd state");
    assert!(!lasso.terminal);
    assert_eq!(states(&lasso.trace), vec![0, 2, 4, 2]);
    assert_eq!(lasso.cycle_start, 1);
    lasso.verify(&model, &Fairness::none(), odd).unwrap();
}

#[test]
fn two_paths_joining_at_a_state_is_a_violation() {
    let model = DGraph::default().path(&[0, 2, 4]).path(&[1, 4, 6]);
    // stateright's own FIXME: "should be [0, 2, 4, 6]", and it finds nothing.
    assert_eq!(stateright_finds(&model), (false, false));

    let graph = StateGraph::build(&model, 100).unwrap();
    let results = check_properties(&model, &graph).unwrap();
    let Outcome::Never(lasso) = &results[0].outcome else {
        panic!("eventually odd must fail from 0");
    };
    assert!(lasso.terminal);
    assert_eq!(states(&lasso.trace), vec![0, 2, 4, 6]);
    lasso.verify(&model, &Fairness::none(), odd).unwrap();
}

#[test]
fn paths_that_all_reach_the_goal_hold() {
    // stateright's can_validate shapes, in one graph.
    let model = DGraph::default()
        .path(&[1])
        .path(&[2, 3])
        .path(&[2, 6, 7])
        .path(&[4, 9, 10]);
    let graph = StateGraph::build(&model, 100).unwrap();
    assert!(
        eventually(&model, &graph, &Fairness::none(), odd)
            .unwrap()
            .holds()
    );
    // And a cycle that passes an odd state on every turn.
    let model = DGraph::default().path(&[0, 2, 3, 0]);
    let graph = StateGraph::build(&model, 100).unwrap();
    assert!(
        eventually(&model, &graph, &Fairness::none(), odd)
            .unwrap()
            .holds()
    );
}

/// Two threads: thread 0 toggles a flag forever; thread 1 finishes, either
/// at any time or (when `needs_flag`) only while the flag is set.
#[derive(Clone)]
struct Spinner {
    needs_flag: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Act {
    Toggle,
    Finish,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct St {
    flag: bool,
    done: bool,
}

impl Model for Spinner {
    type State = St;
    type Action = Act;

    fn init_states(&self) -> Vec<St> {
        vec![St {
            flag: false,
            done: false,
        }]
    }

    fn actions(&self, s: &St, out: &mut Vec<Act>) {
        if !s.done {
            out.push(Act::Toggle);
            if s.flag || !self.needs_flag {
                out.push(Act::Finish);
            }
        }
    }

    fn next_state(&self, s: &St, a: Act) -> Option<St> {
        Some(match a {
            Act::Toggle => St {
                flag: !s.flag,
                ..s.clone()
            },
            Act::Finish => St {
                done: true,
                ..s.clone()
            },
        })
    }
}

const FINISH: &[FairClass] = &[FairClass {
    name: "finish",
    doc: "Thread 1 eventually finishes.",
    kinds: &["Finish"],
    strength: Strength::Weak,
}];

fn spinner_fairness(strength: Strength) -> Fairness<Act> {
    Fairness::by_kind(
        FINISH,
        |a| (*a == Act::Finish) as usize,
        |a| match a {
            Act::Toggle => "Toggle",
            Act::Finish => "Finish",
        },
    )
    .with_strength("finish", strength)
}

fn done(s: &St) -> bool {
    s.done
}

#[test]
fn weak_fairness_makes_a_property_hold_that_fails_without_it() {
    let model = Spinner { needs_flag: false };
    let graph = StateGraph::build(&model, 100).unwrap();
    let unfair = eventually(&model, &graph, &Fairness::none(), done).unwrap();
    let lasso = unfair.lasso.expect("thread 0 may toggle forever");
    assert!(lasso.trace.actions().all(|a| *a == Act::Toggle));
    lasso.verify(&model, &Fairness::none(), done).unwrap();
    // The same lasso is unfair to thread 1 once its finishing is fair.
    let weak = spinner_fairness(Strength::Weak);
    assert!(lasso.verify(&model, &weak, done).is_err());
    assert!(eventually(&model, &graph, &weak, done).unwrap().holds());
}

#[test]
fn strong_fairness_is_needed_when_the_class_flickers() {
    let model = Spinner { needs_flag: true };
    let graph = StateGraph::build(&model, 100).unwrap();
    // Finishing is enabled only every other state: weak fairness does not
    // force it, strong fairness does.
    let weak = spinner_fairness(Strength::Weak);
    let report = eventually(&model, &graph, &weak, done).unwrap();
    let lasso = report.lasso.expect("toggling forever is weakly fair");
    lasso.verify(&model, &weak, done).unwrap();
    assert_eq!(lasso.cycle_len(), 2);
    let strong = spinner_fairness(Strength::Strong);
    assert!(lasso.verify(&model, &strong, done).is_err());
    assert!(eventually(&model, &graph, &strong, done).unwrap().holds());
}

#[test]
fn leads_to_is_judged_from_every_premise_state() {
    // 0 -> 1 -> 2 -> 3 (goal), and 1 -> 4 -> 4 (a self-loop without the
    // goal). "2 leads to 3" holds; "1 leads to 3" does not, through 4.
    let model = DGraph::default().path(&[0, 1, 2, 3]).path(&[0, 1, 4, 4]);
    let graph = StateGraph::build(&model, 100).unwrap();
    let none = Fairness::none();
    assert!(
        leads_to(&model, &graph, &none, |s| *s == 2, |s| *s == 3)
            .unwrap()
            .holds()
    );
    let report = leads_to(&model, &graph, &none, |s| *s == 1, |s| *s == 3).unwrap();
    let lasso = report.lasso.expect("1 -> 4 -> 4 avoids 3");
    assert_eq!(states(&lasso.trace), vec![0, 1, 4, 4]);
    assert_eq!((lasso.p_at, lasso.cycle_start), (1, 2));
    lasso.verify(&model, &none, |s| *s == 3).unwrap();
}

#[test]
fn lassos_are_deterministic() {
    let model = Spinner { needs_flag: true };
    let weak = spinner_fairness(Strength::Weak);
    let run = || {
        let graph = StateGraph::build(&model, 100).unwrap();
        eventually(&model, &graph, &weak, done)
            .unwrap()
            .lasso
            .unwrap()
            .indices()
    };
    assert_eq!(run(), run());
}
