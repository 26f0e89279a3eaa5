//! What a check reports: the run's numbers, its result, what was expected
//! (from the manifest when it pins the configuration, otherwise from the
//! variant), and one counterexample per violated property, step by step,
//! with a replay token.

use serde::{Deserialize, Serialize};

use crate::run::{Bound, Strategy};

/// The result of a run, judged on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every reachable state was seen and every always-property held.
    Holds,
    /// Some always-property has a counterexample (partial runs included:
    /// a counterexample found is a counterexample).
    Violates,
    /// A bound ended the run before any counterexample and before every
    /// reachable state was seen.
    Incomplete,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Violates => "violates",
            Verdict::Incomplete => "incomplete",
        }
    }
}

/// Where an expectation comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `models/manifest.json` pins this configuration.
    Manifest,
    /// Only the variant's documented expectation is known.
    Variant,
}

/// What a configuration is expected to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// Always-properties with a counterexample; empty means the model holds.
    pub violated: Vec<String>,
    /// Sometimes-properties no reachable state satisfies, when pinned.
    pub unreached: Option<Vec<String>>,
    /// Exact unique-state count of a complete run, when pinned.
    pub unique_states: Option<usize>,
    pub source: Source,
}

impl Expected {
    /// `holds` or `violates: a, b`.
    pub fn summary(&self) -> String {
        if self.violated.is_empty() {
            "holds".to_string()
        } else {
            format!("violates: {}", self.violated.join(", "))
        }
    }
}

/// How a run compares with its expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    AsExpected,
    NotAsExpected,
    /// A bound was hit and nothing found so far contradicts the
    /// expectation.
    Partial,
}

/// One step of a counterexample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The thread that takes the step (the spec's thread index).
    pub thread: usize,
    /// The event, without its thread field.
    pub event: String,
    /// What the step changed, one field per line (`path: old -> new`).
    pub changes: Vec<String>,
}

/// A path from the initial state to a state that violates `property`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterexample {
    pub property: String,
    /// The property's one-sentence statement, from the spec.
    pub doc: String,
    pub steps: Vec<Step>,
    /// Pass to `cpyrt check --replay` to see this path again.
    pub token: String,
    /// True when it is the shortest such path (breadth-first order); false
    /// when the search budget ran out and the path stateright kept is shown.
    pub shortest: bool,
}

/// The report of one configuration's check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    pub variant: String,
    pub threads: usize,
    /// The bounds profile (`default` unless named).
    pub bounds: String,
    pub strategy: Strategy,
    pub unique_states: usize,
    pub total_states: usize,
    pub depth: usize,
    /// Exploration wall time (the counterexample search not included).
    pub seconds: f64,
    pub result: Verdict,
    /// Violated always-properties, by name.
    pub violated: Vec<String>,
    /// Sometimes-properties no state reached (only judged on complete runs).
    pub unreached: Vec<String>,
    /// True when a bound ended the run first.
    pub partial: bool,
    /// Which bound, when `partial`.
    pub bound: Option<Bound>,
    pub expected: Expected,
    pub status: Status,
    /// Why the status is not `AsExpected`, one reason per entry.
    pub mismatches: Vec<String>,
    pub counterexamples: Vec<Counterexample>,
    /// What the graph-based checks added (liveness, coverage, symmetry),
    /// for mechanisms that declare checker hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<crate::checker::registry::Extras>,
}

impl Report {
    /// Compares the run with `expected` and sets `status` and `mismatches`.
    pub fn judge(&mut self, expected: Expected) {
        let mut why = Vec::new();
        // Lists are compared as sets: runs name properties in the spec's
        // order, the manifest in any order.
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        let want = sorted(&expected.violated);
        if self.partial {
            let unexpected: Vec<&String> =
                self.violated.iter().filter(|v| !want.contains(v)).collect();
            if !unexpected.is_empty() {
                why.push(format!(
                    "violates {unexpected:?}, expected {}",
                    expected.summary()
                ));
            }
        } else {
            if sorted(&self.violated) != want {
                why.push(format!(
                    "result {}, expected {}",
                    self.summary(),
                    expected.summary()
                ));
            }
            if let Some(unreached) = &expected.unreached
                && sorted(&self.unreached) != sorted(unreached)
            {
                why.push(format!(
                    "unreached goals {:?}, expected {:?}",
                    self.unreached, unreached
                ));
            }
            if let Some(n) = expected.unique_states
                && n != self.unique_states
            {
                why.push(format!(
                    "{} unique states, manifest pins {n}",
                    self.unique_states
                ));
            }
        }
        self.status = if !why.is_empty() {
            Status::NotAsExpected
        } else if self.partial {
            Status::Partial
        } else {
            Status::AsExpected
        };
        self.mismatches = why;
        self.expected = expected;
    }

    /// `holds`, `violates: a, b` or `incomplete`.
    pub fn summary(&self) -> String {
        match self.result {
            Verdict::Violates => format!("violates: {}", self.violated.join(", ")),
            v => v.name().to_string(),
        }
    }
}
