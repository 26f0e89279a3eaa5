//! The state graph as DOT, JSON and SVG.
//!
//! DOT goes through petgraph's `Dot` (printed with `{}`, so labels are
//! escaped once): states are labelled with their abstract values in a
//! compact form, edges with the thread and the action. Initial states have
//! a double border; states where `bad` holds are red. SVG is DOT piped
//! through Graphviz's `dot -Tsvg`.

use std::io::Write;
use std::process::{Command, Stdio};

use petgraph::dot::Dot;
use petgraph::graph::NodeIndex;
use serde::Serialize;
use stateright::Model;

use super::graph::StateGraph;

/// How states and actions are labelled.
pub struct Labels<'a, M: Model> {
    pub state: &'a dyn Fn(&M::State) -> String,
    pub action: &'a dyn Fn(&M::Action) -> String,
    /// States drawn in red (for example, those breaking an invariant).
    pub bad: &'a dyn Fn(&M::State) -> bool,
}

/// The graph in Graphviz DOT.
pub fn to_dot<M: Model>(model: &M, graph: &StateGraph<M>, labels: &Labels<'_, M>) -> String {
    let mut g = petgraph::Graph::<String, String>::new();
    for s in graph.states() {
        g.add_node((labels.state)(s));
    }
    let mut buf = Vec::new();
    for id in 0..graph.len() as u32 {
        buf.clear();
        model.actions(graph.state(id), &mut buf);
        for e in graph.edges(id) {
            g.add_edge(
                NodeIndex::new(id as usize),
                NodeIndex::new(e.to as usize),
                (labels.action)(&buf[e.action as usize]),
            );
        }
    }
    let node_attrs = |_, (n, _): (NodeIndex, &String)| {
        let id = n.index() as u32;
        let mut attrs = Vec::new();
        if graph.is_init(id) {
            attrs.push("peripheries = 2");
        }
        if (labels.bad)(graph.state(id)) {
            attrs.push("color = red, fontcolor = red");
        }
        attrs.join(", ")
    };
    format!(
        "{}",
        Dot::with_attr_getters(&g, &[], &|_, _| String::new(), &node_attrs)
    )
}

#[derive(Serialize)]
struct JsonState {
    id: u32,
    label: String,
    init: bool,
    bad: bool,
}

#[derive(Serialize)]
struct JsonEdge {
    from: u32,
    to: u32,
    /// Index in `Model::actions` order of `from`: a replay step.
    action_index: u16,
    action: String,
}

#[derive(Serialize)]
struct JsonGraph {
    unique_states: usize,
    edges: usize,
    symmetric: bool,
    states: Vec<JsonState>,
    transitions: Vec<JsonEdge>,
}

/// The graph as a JSON value: states (id, label, initial, bad) and
/// transitions (from, to, action index, action label).
pub fn to_json<M: Model>(
    model: &M,
    graph: &StateGraph<M>,
    labels: &Labels<'_, M>,
) -> serde_json::Value {
    let states = (0..graph.len() as u32)
        .map(|id| JsonState {
            id,
            label: (labels.state)(graph.state(id)),
            init: graph.is_init(id),
            bad: (labels.bad)(graph.state(id)),
        })
        .collect();
    let mut transitions = Vec::with_capacity(graph.edge_count());
    let mut buf = Vec::new();
    for id in 0..graph.len() as u32 {
        buf.clear();
        model.actions(graph.state(id), &mut buf);
        for e in graph.edges(id) {
            transitions.push(JsonEdge {
                from: id,
                to: e.to,
                action_index: e.action,
                action: (labels.action)(&buf[e.action as usize]),
            });
        }
    }
    serde_json::to_value(JsonGraph {
        unique_states: graph.len(),
        edges: graph.edge_count(),
        symmetric: graph.canonicalizer().is_some(),
        states,
        transitions,
    })
    .expect("the graph serialises")
}

/// Renders DOT to SVG with Graphviz. The error says how to install it.
pub fn to_svg(dot: &str) -> Result<String, String> {
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(
                "SVG needs Graphviz's `dot`, which is not installed: apt-get install graphviz \
                 (or use --format dot)"
                    .into(),
            );
        }
        Err(e) => return Err(format!("cannot run Graphviz's dot: {e}")),
    };
    // Write from another thread: dot may fill its stdout pipe before it
    // has read all of its input.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = dot.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("Graphviz's dot failed: {e}"))?;
    writer
        .join()
        .map_err(|_| "writing to Graphviz's dot panicked".to_string())?
        .map_err(|e| format!("writing to Graphviz's dot: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "Graphviz's dot failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| "Graphviz's dot wrote invalid UTF-8".into())
}
