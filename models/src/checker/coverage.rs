//! Action coverage: how many transitions of each action kind the reachable
//! graph holds, and which kinds never fire.
//!
//! A kind that never fires in a configuration whose properties hold is a
//! warning sign: the model may hold only because part of the protocol is
//! unreachable (a guard too strong, a bound too small).

use serde::{Deserialize, Serialize};
use stateright::Model;

use super::graph::StateGraph;

/// Transitions per action kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Every declared kind in declaration order, then any undeclared kind
    /// the model produced, with its transition count.
    pub kinds: Vec<KindCount>,
    /// Declared kinds with no transition.
    pub never_fired: Vec<String>,
    /// Whether the graph was symmetry-reduced (counts are then transitions
    /// between representatives).
    pub symmetric: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    pub kind: String,
    pub transitions: u64,
}

impl Coverage {
    /// Counts the graph's edges by `kind`; `all` lists every kind the model
    /// declares, so kinds that never fire are reported.
    pub fn of<M: Model>(
        model: &M,
        graph: &StateGraph<M>,
        kind: impl Fn(&M::Action) -> &'static str,
        all: &[&'static str],
    ) -> Self
    where
        M::State: Clone,
    {
        let mut kinds: Vec<KindCount> = all
            .iter()
            .map(|&k| KindCount {
                kind: k.to_string(),
                transitions: 0,
            })
            .collect();
        let mut buf = Vec::new();
        graph.for_each_state(model, |id, state| {
            if graph.is_terminal(id) {
                return;
            }
            buf.clear();
            model.actions(state, &mut buf);
            for e in graph.edges(id) {
                let k = kind(&buf[e.action as usize]);
                match kinds.iter_mut().find(|c| c.kind == k) {
                    Some(c) => c.transitions += 1,
                    None => kinds.push(KindCount {
                        kind: k.to_string(),
                        transitions: 1,
                    }),
                }
            }
        });
        let never_fired = kinds
            .iter()
            .filter(|c| c.transitions == 0)
            .map(|c| c.kind.clone())
            .collect();
        Coverage {
            kinds,
            never_fired,
            symmetric: graph.canonicalizer().is_some(),
        }
    }

    /// Transitions of `kind` (0 when unknown).
    pub fn count(&self, kind: &str) -> u64 {
        self.kinds
            .iter()
            .find(|c| c.kind == kind)
            .map_or(0, |c| c.transitions)
    }

    /// For a configuration whose properties all hold: a warning naming
    /// the kinds that never fired, since the properties may hold only
    /// because that part of the protocol never ran.
    pub fn vacuity_warning(&self, holds: bool) -> Option<String> {
        (holds && !self.never_fired.is_empty()).then(|| {
            format!(
                "holds, but {} never fired: check that the properties do not hold only because that part of the protocol never ran",
                self.never_fired.join(", ")
            )
        })
    }

    /// One line per kind, then the never-fired warning if any.
    pub fn render(&self) -> String {
        let width = self.kinds.iter().map(|c| c.kind.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.kinds {
            out.push_str(&format!("  {:<width$}  {:>10}\n", c.kind, c.transitions));
        }
        if !self.never_fired.is_empty() {
            out.push_str(&format!("  never fired: {}\n", self.never_fired.join(", ")));
        }
        out
    }
}
