//! Registry entries for mechanisms given by a [`Spec`]: the variants'
//! configurations and bounds profiles ([`SpecMechanism`]), and the one
//! generic implementation of [`Mechanism`] that checks them, renders
//! counterexamples and replays tokens for every spec alike.

use std::ops::RangeInclusive;

use cpyrt_spec::Spec;

use crate::registry::{
    BoundsInfo, DEFAULT_BOUNDS, Mechanism, PropertyInfo, PropertyKind, Replay, Token, VariantInfo,
};
use crate::render::{diff, event_label};
use crate::report::{Counterexample, Report, Status, Step, Verdict};
use crate::run::{self, Progress, RunOptions};
use crate::spec_model::{Checked, SpecModel};

/// One variant of a spec-backed mechanism.
pub struct SpecVariant<S: Spec + 'static> {
    /// Kebab-case: `base`, `stale-slot-pointer`.
    pub name: &'static str,
    /// One line: the design, and for a twin the bug it reproduces.
    pub doc: &'static str,
    /// Properties a complete run violates; empty for `base`.
    pub violates: &'static [&'static str],
    /// Fewest threads the violation needs.
    pub violates_from: usize,
    /// The spec configuration of this variant at a thread count, under
    /// the default bounds.
    pub config: fn(usize) -> S::Config,
}

/// A bounds profile other than the default.
pub struct SpecBounds<S: Spec + 'static> {
    pub name: &'static str,
    /// One line: what the profile changes and why.
    pub doc: &'static str,
    /// Turns a variant's configuration into this profile's.
    pub apply: fn(S::Config) -> S::Config,
}

/// A mechanism given by a [`Spec`] and its variants' configurations.
pub struct SpecMechanism<S: Spec + 'static> {
    /// One line, for `cpyrt list`.
    pub about: &'static str,
    pub threads: RangeInclusive<usize>,
    pub default_threads: usize,
    pub variants: &'static [SpecVariant<S>],
    /// What the default bounds (those the variants' `config` set) are, in
    /// one line.
    pub default_bounds_doc: &'static str,
    /// Further bounds profiles, often none (`&[]`).
    pub bounds: &'static [SpecBounds<S>],
}

/// The field of a spec event that names its thread; counterexample steps
/// already say which thread moves, so labels leave it out.
const THREAD_FIELD: &str = "thread";

pub(crate) fn model<S: Spec + 'static>(
    m: &SpecMechanism<S>,
    variant: &str,
    threads: usize,
    bounds: &str,
) -> Result<SpecModel<S>, String>
where
    SpecMechanism<S>: Mechanism,
{
    m.check_threads(threads)?;
    m.check_bounds(bounds)?;
    m.variant(variant)?;
    let v = m
        .variants
        .iter()
        .find(|v| v.name == variant)
        .expect("variant() found it");
    let cfg = (v.config)(threads);
    Ok(SpecModel::new(
        match m.bounds.iter().find(|b| b.name == bounds) {
            Some(b) => (b.apply)(cfg),
            None => cfg,
        },
    ))
}

/// Counterexample steps: each event with its thread and what it changed.
pub(crate) fn steps<S: Spec>(states: &[Checked<S::State>], events: &[S::Event]) -> Vec<Step> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (before, after) = (&states[i], &states[i + 1]);
            let mut changes = diff(
                &format!("{:#?}", before.state),
                &format!("{:#?}", after.state),
            );
            if let Some(name) = after.broken {
                changes.push(format!("breaks {name}"));
            }
            Step {
                thread: S::actor(e),
                event: event_label(&format!("{e:#?}"), THREAD_FIELD),
                changes,
            }
        })
        .collect()
}

impl<S: Spec + 'static> Mechanism for SpecMechanism<S>
where
    S::State: Send + Sync,
    S::Event: Send + Sync,
    S::Config: Send + Sync,
{
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn about(&self) -> &'static str {
        self.about
    }

    fn threads(&self) -> RangeInclusive<usize> {
        self.threads.clone()
    }

    fn default_threads(&self) -> usize {
        self.default_threads
    }

    fn variants(&self) -> Vec<VariantInfo> {
        self.variants
            .iter()
            .map(|v| VariantInfo {
                name: v.name,
                doc: v.doc,
                violates: v.violates,
                violates_from: v.violates_from,
            })
            .collect()
    }

    fn bounds(&self) -> Vec<BoundsInfo> {
        let mut out = vec![BoundsInfo {
            name: DEFAULT_BOUNDS,
            doc: self.default_bounds_doc,
        }];
        out.extend(self.bounds.iter().map(|b| BoundsInfo {
            name: b.name,
            doc: b.doc,
        }));
        out
    }

    fn properties(&self) -> Vec<PropertyInfo> {
        let s = |kind| {
            move |i: &cpyrt_spec::Invariant<S::State>| PropertyInfo {
                name: i.name,
                doc: i.doc,
                kind,
            }
        };
        let mut out: Vec<PropertyInfo> = S::invariants()
            .iter()
            .map(s(PropertyKind::Always))
            .collect();
        out.extend(S::transition_invariants().iter().map(|i| PropertyInfo {
            name: i.name,
            doc: i.doc,
            kind: PropertyKind::AlwaysTransition,
        }));
        out.extend(S::sometimes().iter().map(s(PropertyKind::Sometimes)));
        out.extend(S::liveness().iter().map(|l| PropertyInfo {
            name: l.name,
            doc: l.doc,
            kind: PropertyKind::Eventually,
        }));
        out
    }

    fn check(
        &self,
        variant: &str,
        threads: usize,
        bounds: &str,
        opts: &RunOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Report, String> {
        let model = model(self, variant, threads, bounds)?;
        let expected = self.variant(variant)?.expected(threads);
        let explored = run::explore(model.clone(), opts, progress);
        let partial = explored.bound.is_some();
        let budget = opts
            .search_budget
            .unwrap_or(explored.unique_states.max(run::DEFAULT_SEARCH_BUDGET));
        let shortest = run::shortest_counterexamples(&model, &explored.violated, budget);
        let props = self.properties();
        let mut counterexamples = Vec::new();
        for &name in &explored.violated {
            let (indices, is_shortest) = match shortest.get(name) {
                Some(p) => (p.clone(), true),
                None => {
                    let p = run::action_indices(&model, &explored.paths[name])
                        .expect("stateright's path is a path of the model");
                    (p, false)
                }
            };
            let (states, events) = run::follow(&model, &indices).expect("a found path replays");
            let token = Token {
                model: S::NAME.to_string(),
                variant: variant.to_string(),
                threads,
                bounds: bounds.to_string(),
                steps: indices,
            };
            counterexamples.push(Counterexample {
                property: name.to_string(),
                doc: props
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| p.doc.to_string())
                    .unwrap_or_default(),
                steps: steps::<S>(&states, &events),
                token: token.to_string(),
                shortest: is_shortest,
            });
        }
        let violated: Vec<String> = explored.violated.iter().map(|s| s.to_string()).collect();
        // Unreached goals mean something only when every state was seen.
        let unreached = if partial {
            Vec::new()
        } else {
            S::sometimes()
                .iter()
                .map(|i| i.name)
                .filter(|n| !explored.reached.contains(n))
                .map(str::to_string)
                .collect()
        };
        let result = if !violated.is_empty() {
            Verdict::Violates
        } else if partial {
            Verdict::Incomplete
        } else {
            Verdict::Holds
        };
        let mut report = Report {
            model: S::NAME.to_string(),
            variant: variant.to_string(),
            threads,
            bounds: bounds.to_string(),
            strategy: opts.strategy,
            unique_states: explored.unique_states,
            total_states: explored.total_states,
            depth: explored.depth,
            seconds: explored.elapsed.as_secs_f64(),
            result,
            violated,
            unreached,
            partial,
            bound: explored.bound,
            expected: expected.clone(),
            status: Status::AsExpected,
            mismatches: Vec::new(),
            counterexamples,
            checker: None,
        };
        report.judge(expected);
        Ok(report)
    }

    fn checker(&self) -> Option<Box<dyn crate::checker::registry::CheckerEntry + '_>> {
        crate::checker::registry::spec_checker(self)
    }

    fn replay(&self, token: &Token) -> Result<Replay, String> {
        if token.model != S::NAME {
            return Err(format!(
                "replay token is for model '{}', not {}",
                token.model,
                S::NAME
            ));
        }
        let model = model(self, &token.variant, token.threads, &token.bounds)?;
        let (states, events) = run::follow(&model, &token.steps)
            .map_err(|e| format!("replay token '{token}' is not a path of the model: {e}"))?;
        let last = states.last().expect("follow returns the initial state");
        let mut violated: Vec<String> = S::invariants()
            .iter()
            .filter(|i| !(i.holds)(&last.state))
            .map(|i| i.name.to_string())
            .collect();
        violated.extend(last.broken.map(str::to_string));
        Ok(Replay {
            model: S::NAME.to_string(),
            variant: token.variant.clone(),
            threads: token.threads,
            bounds: token.bounds.clone(),
            token: token.to_string(),
            steps: steps::<S>(&states, &events),
            violated,
        })
    }
}
