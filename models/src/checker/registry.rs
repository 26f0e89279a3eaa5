//! The checker's side of the registry: for each spec mechanism that
//! declares [`SpecHooks`], the runs `cpyrt check` adds to stateright's
//! safety run (liveness under fairness, coverage, the symmetry-reduced run)
//! and the graph `cpyrt graph` exports.
//!
//! # Declaring hooks
//! Write `pub static HOOKS: SpecHooks<YourSpec>` in
//! `models/src/checker/<mech>.rs` (see `qsbr.rs`) and add it to [`HOOKS`].
//! A mechanism without hooks is checked by stateright alone.
//!
//! # Judging
//! A liveness property the spec declares is judged like an always-property:
//! its name goes into the report's `violated` list when a fair run avoids
//! its goal forever, and variants and the manifest list it the same way.
//! When it is not judged (`--no-liveness`, `--symmetry`, a run cut short,
//! a graph over the cap) it is left out of the expectation too, and the
//! report says why.

use std::any::Any;
use std::fmt::Write;
use std::time::Instant;

use cpyrt_spec::Spec;
use serde::{Deserialize, Serialize};

use super::coverage::Coverage;
use super::graph::{DEFAULT_MAX_STATES, GraphError, StateGraph};
use super::properties::{Outcome, check_properties};
use super::spec::{LivenessOutcome, SpecHooks};
use crate::registry::{Mechanism, Token};
use crate::report::{Counterexample, Expected, Report, Status, Verdict};
use crate::run::{Bound, Progress, RunOptions};
use crate::spec_mechanism::{SpecMechanism, model, steps};

/// Every mechanism's hooks, found by type.
static HOOKS: &[&(dyn Any + Sync)] = &[
    &super::qsbr::HOOKS,
    &super::stw::HOOKS,
    &super::fork::HOOKS,
    &super::gil::HOOKS,
];

/// Cap on the unreduced graph built for liveness and coverage. The graph
/// keeps every state (QSBR: about 330 bytes per state at 3 threads), so
/// configurations above it (QSBR at 4 threads) are checked for safety
/// only, and the report says so.
pub const LIVENESS_MAX_STATES: usize = 1_000_000;

/// What the graph-based checks add to a report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Extras {
    /// Verdicts on the spec's liveness properties, when judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub liveness: Vec<LivenessOutcome>,
    /// Liveness properties the spec declares that were not judged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unjudged: Vec<String>,
    /// Why they were not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unjudged_because: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// Set when the run explored one representative per renaming of
    /// threads; `unique_states` then counts representatives.
    #[serde(default)]
    pub symmetry: bool,
    /// In a symmetric run, the representatives and, when the manifest
    /// pins the configuration, the unreduced model's unique states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representatives: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreduced_states: Option<usize>,
    /// Unique states of the unreduced graph, when one was built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_states: Option<usize>,
    /// Seconds spent on the graph-based checks.
    pub seconds: f64,
}

/// A graph export.
pub struct GraphOutput {
    pub text: String,
    pub unique_states: usize,
    pub edges: usize,
}

/// What a mechanism with hooks offers beyond [`Mechanism::check`].
pub trait CheckerEntry {
    /// The safety check on the symmetry-reduced graph, as a full report.
    fn check_reduced(
        &self,
        variant: &str,
        threads: usize,
        bounds: &str,
        opts: &RunOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Report, String>;

    /// Adds liveness verdicts (judged) and coverage to a finished report.
    fn augment(
        &self,
        variant: &str,
        threads: usize,
        bounds: &str,
        opts: &RunOptions,
        report: &mut Report,
    ) -> Result<(), String>;

    /// The state graph in `format` (`dot`, `json` or `svg`).
    #[allow(clippy::too_many_arguments)]
    fn graph(
        &self,
        variant: &str,
        threads: usize,
        bounds: &str,
        format: &str,
        max_states: usize,
        symmetric: bool,
    ) -> Result<GraphOutput, String>;
}

/// A spec mechanism with its hooks.
pub struct SpecChecker<'a, S: Spec + 'static> {
    pub mechanism: &'a SpecMechanism<S>,
    pub hooks: &'static SpecHooks<S>,
}

/// The checker entry of a spec mechanism, if it declares hooks.
pub fn spec_checker<S: Spec + 'static>(
    mechanism: &SpecMechanism<S>,
) -> Option<Box<dyn CheckerEntry + '_>>
where
    S::State: Send + Sync,
    S::Event: Send + Sync,
    S::Config: Send + Sync,
{
    let hooks = HOOKS
        .iter()
        .find_map(|h| (*h as &dyn Any).downcast_ref::<SpecHooks<S>>())?;
    Some(Box::new(SpecChecker { mechanism, hooks }))
}

/// Judges `report` against `expected`, leaving out what the graph-based
/// checks did not judge: unjudged liveness properties, and the pinned
/// state count when the run was symmetry-reduced.
pub fn judge(report: &mut Report, mut expected: Expected) {
    if let Some(x) = &mut report.checker {
        expected.violated.retain(|v| !x.unjudged.contains(v));
        if x.symmetry {
            x.unreduced_states = expected.unique_states.or(x.unreduced_states);
            expected.unique_states = None;
        }
    }
    report.judge(expected);
}

impl<S: Spec + 'static> SpecChecker<'_, S>
where
    S::State: Send + Sync,
    S::Event: Send + Sync,
    S::Config: Send + Sync,
{
    fn token(&self, variant: &str, threads: usize, bounds: &str, steps: Vec<usize>) -> String {
        Token {
            model: S::NAME.to_string(),
            variant: variant.to_string(),
            threads,
            bounds: bounds.to_string(),
            steps,
        }
        .to_string()
    }
}

impl<S: Spec + 'static> CheckerEntry for SpecChecker<'_, S>
where
    S::State: Send + Sync,
    S::Event: Send + Sync,
    S::Config: Send + Sync,
{
    fn check_reduced(
        &self,
        variant: &str,
        threads: usize,
        bounds: &str,
        opts: &RunOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Report, String> {
        let canon = self.hooks.canonical.ok_or_else(|| {
            format!(
                "{} declares no thread symmetry; run without --symmetry",
                S::NAME
            )
        })?;
        if opts.strategy != crate::run::Strategy::Bfs {
            return Err("--symmetry runs breadth first; drop --strategy dfs".into());
        }
        if opts.timeout.is_some() {
            return Err("--timeout does not bound --symmetry runs; use --max-states".into());
        }
        let model = model(self.mechanism, variant, threads, bounds)?;
        let expected = self.mechanism.variant(variant)?.expected(threads);
        let start = Instant::now();
        let cap = opts.max_states.unwrap_or(DEFAULT_MAX_STATES);
        let built = StateGraph::build_observed(&model, cap, Some(canon), &mut |p| {
            progress(&Progress {
                unique_states: p.unique_states,
                total_states: p.generated,
                depth: p.depth,
                elapsed: start.elapsed(),
            })
        });
        let mut report = Report {
            model: S::NAME.to_string(),
            variant: variant.to_string(),
            threads,
            bounds: bounds.to_string(),
            strategy: opts.strategy,
            unique_states: 0,
            total_states: 0,
            depth: 0,
            seconds: 0.0,
            result: Verdict::Holds,
            violated: Vec::new(),
            unreached: Vec::new(),
            partial: false,
            bound: None,
            expected: expected.clone(),
            status: Status::AsExpected,
            mismatches: Vec::new(),
            counterexamples: Vec::new(),
            checker: Some(Extras {
                symmetry: true,
                ..Extras::default()
            }),
        };
        let graph = match built {
            Ok(g) => g,
            Err(GraphError::StateCap { cap }) => {
                // Nothing is judged on a partial graph: it is not known
                // which states are missing.
                report.unique_states = cap;
                report.total_states = cap;
                report.result = Verdict::Incomplete;
                report.partial = true;
                report.bound = Some(Bound::MaxStates);
                report.seconds = start.elapsed().as_secs_f64();
                judge(&mut report, expected);
                return Ok(report);
            }
            Err(e) => return Err(e.to_string()),
        };
        let results = check_properties(&model, &graph).map_err(|e| e.to_string())?;
        report.unique_states = graph.len();
        report.total_states = graph.generated();
        report.depth = graph.depth();
        report.seconds = start.elapsed().as_secs_f64();
        let docs = self.mechanism.properties();
        for r in &results {
            match &r.outcome {
                Outcome::Violated(trace) => {
                    let states: Vec<_> = (0..=trace.steps.len())
                        .map(|k| trace.state_at(k).clone())
                        .collect();
                    let events: Vec<_> = trace.actions().cloned().collect();
                    report.violated.push(r.name.to_string());
                    report.counterexamples.push(Counterexample {
                        property: r.name.to_string(),
                        doc: docs
                            .iter()
                            .find(|p| p.name == r.name)
                            .map(|p| p.doc.to_string())
                            .unwrap_or_default(),
                        steps: steps::<S>(&states, &events),
                        token: self.token(variant, threads, bounds, trace.indices()[1..].to_vec()),
                        shortest: true,
                    });
                }
                Outcome::Unreached => report.unreached.push(r.name.to_string()),
                _ => {}
            }
        }
        report.violated.sort();
        report
            .counterexamples
            .sort_by(|a, b| a.property.cmp(&b.property));
        report.unreached.sort();
        if !report.violated.is_empty() {
            report.result = Verdict::Violates;
        }
        let x = report.checker.as_mut().expect("set above");
        x.representatives = Some(graph.len());
        if opts.coverage {
            x.coverage = Some(self.hooks.coverage(&model, &graph));
        }
        judge(&mut report, expected);
        Ok(report)
    }

    fn augment(
        &self,
        variant: &str,
        threads: usize,
        bounds: &str,
        opts: &RunOptions,
        report: &mut Report,
    ) -> Result<(), String> {
        let mut x = report.checker.take().unwrap_or_default();
        let start = Instant::now();
        let names: Vec<String> = S::liveness().iter().map(|l| l.name.to_string()).collect();
        let skip = if names.is_empty() {
            None
        } else if opts.skip_liveness {
            Some("--no-liveness".to_string())
        } else if x.symmetry {
            Some(
                "liveness under per-thread fairness needs the unreduced graph; run without --symmetry"
                    .to_string(),
            )
        } else if report.partial {
            Some("the run was cut short by a bound".to_string())
        } else if report.unique_states > LIVENESS_MAX_STATES {
            Some(format!(
                "{} states are more than the {LIVENESS_MAX_STATES} the liveness graph holds",
                report.unique_states
            ))
        } else {
            None
        };
        let want_liveness = !names.is_empty() && skip.is_none();
        let want_coverage = opts.coverage && !x.symmetry;
        let mut skip = skip;
        if want_liveness || want_coverage {
            let model = model(self.mechanism, variant, threads, bounds)?;
            match StateGraph::build_compact(&model, LIVENESS_MAX_STATES) {
                Ok(graph) => {
                    x.graph_states = Some(graph.len());
                    if want_coverage {
                        x.coverage = Some(self.hooks.coverage(&model, &graph));
                    }
                    if want_liveness {
                        let fairness = self.hooks.fairness();
                        let mut outcomes = self.hooks.liveness(&model, &graph, &fairness)?;
                        for o in outcomes.iter_mut() {
                            let Some(l) = o.lasso.as_mut() else { continue };
                            l.token = self.token(variant, threads, bounds, l.steps.clone());
                            if report.violated.contains(&o.name) {
                                continue;
                            }
                            // The lasso is also an ordinary counterexample:
                            // its steps, with what each changed, and a token.
                            let (states, events) = crate::run::follow(&model, &l.steps)
                                .map_err(|e| format!("lasso replay: {e}"))?;
                            report.violated.push(o.name.clone());
                            report.counterexamples.push(Counterexample {
                                property: o.name.clone(),
                                doc: o.doc.clone(),
                                steps: steps::<S>(&states, &events),
                                token: l.token.clone(),
                                shortest: true,
                            });
                        }
                        report.violated.sort();
                        report
                            .counterexamples
                            .sort_by(|a, b| a.property.cmp(&b.property));
                        if !report.violated.is_empty() {
                            report.result = Verdict::Violates;
                        }
                        x.liveness = outcomes;
                    }
                }
                Err(e) => {
                    if want_liveness {
                        skip = Some(e.to_string());
                    }
                    if want_coverage && !want_liveness {
                        return Err(format!("coverage: {e}"));
                    }
                }
            }
        }
        if let Some(why) = skip
            && !names.is_empty()
        {
            x.unjudged = names;
            x.unjudged_because = Some(why);
        }
        x.seconds += start.elapsed().as_secs_f64();
        report.checker = Some(x);
        let expected = report.expected.clone();
        judge(report, expected);
        Ok(())
    }

    fn graph(
        &self,
        variant: &str,
        threads: usize,
        bounds: &str,
        format: &str,
        max_states: usize,
        symmetric: bool,
    ) -> Result<GraphOutput, String> {
        let model = model(self.mechanism, variant, threads, bounds)?;
        let graph = self.hooks.graph(&model, max_states, symmetric)?;
        Ok(GraphOutput {
            text: self.hooks.export(&model, &graph, format)?,
            unique_states: graph.len(),
            edges: graph.edge_count(),
        })
    }
}

/// The lines `cpyrt check` prints after a report's counterexamples:
/// liveness verdicts with their lassos, coverage (with a warning when a
/// configuration that `holds` never fired some event kind), and what was
/// not judged.
pub fn render(name: &str, holds: bool, x: &Extras) -> String {
    let mut out = String::new();
    for o in &x.liveness {
        if o.holds {
            let _ = writeln!(
                out,
                "\n{name}: liveness {} holds under the declared fairness",
                o.name
            );
            continue;
        }
        let Some(l) = &o.lasso else { continue };
        let _ = writeln!(
            out,
            "\n{name}: {} is a liveness property: its counterexample above is a lasso",
            o.name
        );
        if l.terminal {
            let _ = writeln!(
                out,
                "  the run stops after step {} with no action enabled",
                l.steps.len()
            );
        } else {
            let _ = writeln!(
                out,
                "  steps 1 to {} lead to the cycle; steps {} to {} repeat forever",
                l.cycle_start,
                l.cycle_start + 1,
                l.steps.len()
            );
        }
        let when = match l.p_at {
            0 => "in the initial state".to_string(),
            k => format!("after step {k}"),
        };
        let _ = writeln!(
            out,
            "  the premise holds {when}, and the goal never holds from there on"
        );
        let _ = writeln!(out, "  under fairness: {}", o.fairness.join("; "));
    }
    if let Some(n) = x.representatives {
        let _ = write!(out, "\n{name}: symmetry: {n} representatives");
        match x.unreduced_states {
            Some(m) => {
                let _ = writeln!(
                    out,
                    " of {m} states, {:.1} times fewer",
                    m as f64 / n.max(1) as f64
                );
            }
            None => out.push('\n'),
        }
    }
    if let Some(why) = &x.unjudged_because {
        let _ = writeln!(
            out,
            "\n{name}: liveness not judged ({}): {why}",
            x.unjudged.join(", ")
        );
    }
    if let Some(c) = &x.coverage
        && let Some(w) = c.vacuity_warning(holds)
    {
        let _ = writeln!(out, "\n{name}: warning: {w}");
    }
    if let Some(c) = &x.coverage {
        let what = if c.symmetric {
            "transitions between representatives"
        } else {
            "transitions"
        };
        let _ = writeln!(out, "\n{name}: coverage ({what} per event kind)");
        out.push_str(&c.render());
    }
    out
}
