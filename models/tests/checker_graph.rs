//! The state graph: deterministic ids, and its DOT, JSON and SVG exports.

use cpyrt_models::SpecModel;
use cpyrt_models::checker::qsbr::HOOKS;
use cpyrt_models::checker::{DEFAULT_MAX_STATES, StateGraph};
use cpyrt_spec::qsbr::{Design, Qsbr};

type M = SpecModel<Qsbr>;

fn model(threads: usize, design: Design) -> M {
    M::new(cpyrt_models::qsbr::config(threads, design))
}

#[test]
fn ids_and_edges_are_the_same_on_every_build() {
    let m = model(2, Design::CPYTHON);
    let (a, b) = (
        StateGraph::build(&m, DEFAULT_MAX_STATES).unwrap(),
        StateGraph::build(&m, DEFAULT_MAX_STATES).unwrap(),
    );
    assert_eq!(a.states(), b.states());
    for id in 0..a.len() as u32 {
        assert!(a.edges(id).eq(b.edges(id)));
    }
    // Ids follow BFS order: the initial state first, and every state's
    // shortest path is no longer than that of any state with a higher id.
    assert_eq!(a.init(), &[(0, 0)]);
    let mut depth = vec![usize::MAX; a.len()];
    depth[0] = 0;
    for id in 0..a.len() as u32 {
        for &w in a.targets(id) {
            depth[w as usize] = depth[w as usize].min(depth[id as usize] + 1);
        }
    }
    assert!(depth.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn dot_labels_states_and_edges() {
    let m = model(1, Design::CPYTHON);
    let g = StateGraph::build(&m, DEFAULT_MAX_STATES).unwrap();
    let dot = HOOKS.export(&m, &g, "dot").unwrap();
    assert!(dot.starts_with("digraph {"), "{dot}");
    assert_eq!(dot.matches("peripheries = 2").count(), 1);
    // One node line per state, one edge line per transition.
    assert_eq!(
        dot.lines().filter(|l| l.contains(" -> ")).count(),
        g.edge_count()
    );
    assert!(dot.contains("wr1 rd1 cur0 [L] | t0 new | g0[]"), "{dot}");
    assert!(dot.contains("t0 Reserve index=0"), "{dot}");
    // A twin's bad states are red.
    let m = model(
        2,
        Design {
            free_waits_for_goal: false,
            ..Design::CPYTHON
        },
    );
    let g = StateGraph::build(&m, DEFAULT_MAX_STATES).unwrap();
    assert!(HOOKS.export(&m, &g, "dot").unwrap().contains("color = red"));
}

#[test]
fn json_lists_states_and_replayable_transitions() {
    let m = model(1, Design::CPYTHON);
    let g = StateGraph::build(&m, DEFAULT_MAX_STATES).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&HOOKS.export(&m, &g, "json").unwrap()).unwrap();
    assert_eq!(v["unique_states"], g.len());
    assert_eq!(v["transitions"].as_array().unwrap().len(), g.edge_count());
    assert_eq!(v["states"][0]["init"], true);
    let first = &v["transitions"][0];
    assert_eq!(
        (first["from"].as_u64(), first["action_index"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(first["action"], "t0 Reserve index=0");
}

#[test]
fn svg_renders_through_graphviz_or_says_how_to_install_it() {
    let m = model(1, Design::CPYTHON);
    let g = StateGraph::build(&m, DEFAULT_MAX_STATES).unwrap();
    match HOOKS.export(&m, &g, "svg") {
        Ok(svg) => assert!(svg.contains("<svg"), "{svg}"),
        Err(e) => assert!(e.contains("apt-get install graphviz"), "{e}"),
    }
    let err = HOOKS.export(&m, &g, "png").unwrap_err();
    assert!(err.contains("dot, json or svg"), "{err}");
}

#[test]
fn a_reduced_graph_holds_representatives_only() {
    use cpyrt_models::checker::Symmetric;
    let m = model(2, Design::CPYTHON);
    let g = HOOKS.graph(&m, DEFAULT_MAX_STATES, true).unwrap();
    assert!(g.canonicalizer().is_some());
    assert!(g.states().iter().all(|s| s.representative() == *s));
    let plain = HOOKS.graph(&m, DEFAULT_MAX_STATES, false).unwrap();
    assert!(plain.states().iter().any(|s| s.representative() != *s));
}
