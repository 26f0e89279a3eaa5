//! A stateright [`Model`] built from any [`Spec`]: the spec's events are the
//! actions, its `step` is `next_state`, and its named invariants, transition
//! invariants and reachability goals become properties under the same names.
//!
//! stateright properties look at states, not transitions, so a transition
//! invariant is checked inside `next_state`: the successor carries the name
//! of the first transition invariant its step broke, and the property
//! `always(name)` fails on it. Such a state has no successors, so the
//! counterexample ends at the broken step.

use std::fmt::Debug;
use std::hash::Hash;

use cpyrt_spec::Spec;
use stateright::{Model, Property};

/// A spec state plus the name of the transition invariant (if any) that the
/// step into it broke.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Checked<St> {
    pub state: St,
    pub broken: Option<&'static str>,
}

/// The stateright model of a spec under one configuration.
pub struct SpecModel<S: Spec> {
    pub cfg: S::Config,
}

impl<S: Spec> SpecModel<S> {
    pub fn new(cfg: S::Config) -> Self {
        SpecModel { cfg }
    }
}

impl<S: Spec> Clone for SpecModel<S> {
    fn clone(&self) -> Self {
        SpecModel {
            cfg: self.cfg.clone(),
        }
    }
}

/// Property names in the order [`SpecModel::properties`] returns them.
pub fn property_names<S: Spec>() -> Vec<&'static str> {
    S::invariants()
        .iter()
        .map(|i| i.name)
        .chain(S::transition_invariants().iter().map(|i| i.name))
        .chain(S::sometimes().iter().map(|i| i.name))
        .collect()
}

// stateright properties take plain function pointers, so each named
// predicate gets a monomorphised function indexed by a const generic.
fn invariant<S: Spec, const K: usize>(_: &SpecModel<S>, s: &Checked<S::State>) -> bool {
    (S::invariants()[K].holds)(&s.state)
}

fn transition<S: Spec, const K: usize>(_: &SpecModel<S>, s: &Checked<S::State>) -> bool {
    s.broken != Some(S::transition_invariants()[K].name)
}

fn sometimes<S: Spec, const K: usize>(_: &SpecModel<S>, s: &Checked<S::State>) -> bool {
    (S::sometimes()[K].holds)(&s.state)
}

type Cond<S> = fn(&SpecModel<S>, &Checked<<S as Spec>::State>) -> bool;

/// Most named predicates one spec may declare in each class.
pub const MAX_PREDICATES: usize = 12;

fn table<S: Spec>(which: u8) -> [Cond<S>; MAX_PREDICATES] {
    macro_rules! t {
        ($f:ident) => {
            [
                $f::<S, 0>,
                $f::<S, 1>,
                $f::<S, 2>,
                $f::<S, 3>,
                $f::<S, 4>,
                $f::<S, 5>,
                $f::<S, 6>,
                $f::<S, 7>,
                $f::<S, 8>,
                $f::<S, 9>,
                $f::<S, 10>,
                $f::<S, 11>,
            ]
        };
    }
    match which {
        0 => t!(invariant),
        1 => t!(transition),
        _ => t!(sometimes),
    }
}

impl<S: Spec> Model for SpecModel<S>
where
    S::State: Debug + Hash + Eq + Clone + Send + Sync,
    S::Event: Debug + Hash + Eq + Clone + Send + Sync,
    S::Config: Send + Sync,
{
    type State = Checked<S::State>;
    type Action = S::Event;

    fn init_states(&self) -> Vec<Self::State> {
        vec![Checked {
            state: S::init(&self.cfg),
            broken: None,
        }]
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        if state.broken.is_none() {
            S::enabled(&self.cfg, &state.state, actions);
        }
    }

    fn next_state(&self, last: &Self::State, action: Self::Action) -> Option<Self::State> {
        let next = S::step(&self.cfg, &last.state, &action).ok()?;
        let broken = S::transition_invariants()
            .iter()
            .find(|inv| !(inv.holds)(&last.state, &next))
            .map(|inv| inv.name);
        Some(Checked {
            state: next,
            broken,
        })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        assert!(
            S::invariants().len() <= MAX_PREDICATES
                && S::transition_invariants().len() <= MAX_PREDICATES
                && S::sometimes().len() <= MAX_PREDICATES,
            "raise MAX_PREDICATES"
        );
        let mut props = Vec::new();
        let (inv, tr, so) = (table::<S>(0), table::<S>(1), table::<S>(2));
        for (k, i) in S::invariants().iter().enumerate() {
            props.push(Property::always(i.name, inv[k]));
        }
        for (k, i) in S::transition_invariants().iter().enumerate() {
            props.push(Property::always(i.name, tr[k]));
        }
        for (k, i) in S::sometimes().iter().enumerate() {
            props.push(Property::sometimes(i.name, so[k]));
        }
        props
    }
}
