//! The checker for spec-backed models: what a mechanism declares beyond its
//! [`Spec`] (fairness, action kinds, symmetry, a compact state label), and
//! the checks that use it, with results as plain data for the CLI.

use cpyrt_spec::Spec;
use serde::{Deserialize, Serialize};

use super::coverage::Coverage;
use super::export::{self, Labels};
use super::fairness::{FairClass, Fairness};
use super::graph::StateGraph;
use super::liveness;
use crate::spec_model::{Checked, SpecModel};

/// Maps a spec model's state to its representative.
pub type Canonical<S> = fn(&Checked<<S as Spec>::State>) -> Checked<<S as Spec>::State>;

/// What the checker needs to know about a spec-backed model.
pub struct SpecHooks<S: Spec + 'static> {
    /// Fairness classes (over event kinds), each applying to every thread.
    pub fairness: &'static [FairClass],
    /// The kind of an event (its variant name).
    pub kind: fn(&S::Event) -> &'static str,
    /// Every event kind, in declaration order.
    pub kinds: &'static [&'static str],
    /// The representative of a state under renaming threads, when threads
    /// are interchangeable.
    pub canonical: Option<Canonical<S>>,
    /// A one-line label of a state for graph export.
    pub label: fn(&S::State) -> String,
}

/// A spec model's graph.
pub type SpecGraph<S> = StateGraph<SpecModel<S>>;

impl<S: Spec + 'static> SpecHooks<S>
where
    S::State: Send + Sync,
    S::Event: Send + Sync,
    S::Config: Send + Sync,
{
    /// The declared fairness over the spec's events.
    pub fn fairness(&self) -> Fairness<S::Event> {
        Fairness::by_kind(self.fairness, S::actor, self.kind)
    }

    /// Builds the graph, reduced by symmetry when asked (an error when the
    /// mechanism declares no symmetry).
    pub fn graph(
        &self,
        model: &SpecModel<S>,
        max_states: usize,
        symmetric: bool,
    ) -> Result<SpecGraph<S>, String> {
        let canon = match (symmetric, self.canonical) {
            (false, _) => None,
            (true, Some(c)) => Some(c),
            (true, None) => {
                return Err(format!(
                    "{} declares no thread symmetry; run without --symmetry",
                    S::NAME
                ));
            }
        };
        StateGraph::build_with(model, max_states, canon).map_err(|e| e.to_string())
    }

    /// Transitions per event kind.
    pub fn coverage(&self, model: &SpecModel<S>, graph: &SpecGraph<S>) -> Coverage {
        Coverage::of(model, graph, self.kind, self.kinds)
    }

    /// Every liveness property of the spec under `fairness`.
    pub fn liveness(
        &self,
        model: &SpecModel<S>,
        graph: &SpecGraph<S>,
        fairness: &Fairness<S::Event>,
    ) -> Result<Vec<LivenessOutcome>, String> {
        let mut out = Vec::new();
        for prop in S::liveness() {
            let report = liveness::leads_to(
                model,
                graph,
                fairness,
                |s: &Checked<S::State>| (prop.p)(&s.state),
                |s: &Checked<S::State>| (prop.q)(&s.state),
            )
            .map_err(|e| e.to_string())?;
            let lasso = report.lasso.as_ref().map(|l| {
                let label = |a: &S::Event| {
                    format!(
                        "T{} {}",
                        S::actor(a),
                        crate::render::event_label(&format!("{a:#?}"), "thread")
                    )
                };
                let steps: Vec<String> = l.trace.actions().map(label).collect();
                LassoSummary {
                    steps: l.indices()[1..].to_vec(),
                    p_at: l.p_at,
                    cycle_start: l.cycle_start,
                    terminal: l.terminal,
                    text: render_lasso(&steps, l.p_at, l.cycle_start, l.terminal),
                    prefix: steps[..l.cycle_start].to_vec(),
                    cycle: steps[l.cycle_start..].to_vec(),
                    token: String::new(),
                }
            });
            out.push(LivenessOutcome {
                name: prop.name.to_string(),
                doc: prop.doc.to_string(),
                holds: report.holds(),
                fairness: fairness.classes().iter().map(describe).collect(),
                region_states: report.region_states,
                fair_components: report.fair_components,
                lasso,
            });
        }
        Ok(out)
    }

    /// The graph in `format` (`dot`, `json` or `svg`).
    pub fn export(
        &self,
        model: &SpecModel<S>,
        graph: &SpecGraph<S>,
        format: &str,
    ) -> Result<String, String> {
        let state = |s: &Checked<S::State>| match s.broken {
            Some(name) => format!("{} (breaks {name})", (self.label)(&s.state)),
            None => (self.label)(&s.state),
        };
        let action = |e: &S::Event| format!("t{} {}", S::actor(e), compact_event(e));
        let bad = |s: &Checked<S::State>| {
            s.broken.is_some() || S::invariants().iter().any(|i| !(i.holds)(&s.state))
        };
        let labels = Labels::<SpecModel<S>> {
            state: &state,
            action: &action,
            bad: &bad,
        };
        match format {
            "dot" => Ok(export::to_dot(model, graph, &labels)),
            "json" => Ok(
                serde_json::to_string_pretty(&export::to_json(model, graph, &labels))
                    .expect("JSON serialises"),
            ),
            "svg" => export::to_svg(&export::to_dot(model, graph, &labels)),
            other => Err(format!(
                "unknown graph format '{other}'; use dot, json or svg"
            )),
        }
    }
}

/// A lasso's steps, numbered, with where the premise starts to hold and
/// where the cycle begins.
fn render_lasso(steps: &[String], p_at: usize, cycle_start: usize, terminal: bool) -> String {
    let mut out = String::new();
    for (k, step) in steps.iter().enumerate() {
        if k == p_at {
            out.push_str("  -- the premise holds from here --\n");
        }
        if k == cycle_start {
            out.push_str("  -- the cycle: repeats forever from here --\n");
        }
        out.push_str(&format!("  {:>3}. {step}\n", k + 1));
    }
    if p_at == steps.len() {
        out.push_str("  -- the premise holds from here --\n");
    }
    if terminal {
        out.push_str("  -- no action is enabled: the run stops here --\n");
    }
    out
}

fn describe(c: &FairClass) -> String {
    let strength = match c.strength {
        super::fairness::Strength::Weak => "weak",
        super::fairness::Strength::Strong => "strong",
    };
    format!("{strength} {} ({})", c.name, c.kinds.join(", "))
}

/// `Read { thread: 1, object: 0 }` as `Read object=0` (the thread is shown
/// apart).
pub fn compact_event<E: std::fmt::Debug>(e: &E) -> String {
    let text = format!("{e:?}");
    let Some((name, rest)) = text.split_once(" { ") else {
        return text;
    };
    let fields: Vec<String> = rest
        .trim_end_matches(" }")
        .split(", ")
        .filter(|f| !f.starts_with("thread:"))
        .map(|f| f.replacen(": ", "=", 1))
        .collect();
    if fields.is_empty() {
        name.to_string()
    } else {
        format!("{name} {}", fields.join(" "))
    }
}

/// The verdict on one liveness property.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LivenessOutcome {
    pub name: String,
    pub doc: String,
    pub holds: bool,
    /// The fairness it was judged under.
    pub fairness: Vec<String>,
    pub region_states: usize,
    pub fair_components: usize,
    pub lasso: Option<LassoSummary>,
}

/// A lasso as data: replayable action indices (the initial state is the
/// model's only one), where the premise starts and the cycle begins.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LassoSummary {
    pub steps: Vec<usize>,
    pub p_at: usize,
    pub cycle_start: usize,
    pub terminal: bool,
    pub prefix: Vec<String>,
    pub cycle: Vec<String>,
    /// The lasso printed for a reader.
    #[serde(skip)]
    pub text: String,
    /// The replay token (prefix and one turn of the cycle), when the run
    /// that found it knows its configuration's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
}
