//! Strongly connected components of a sub-graph of a [`StateGraph`].
//!
//! Tarjan's algorithm, written iteratively: a state graph of a million states
//! can have DFS paths a million deep, which a recursive version (petgraph's
//! `tarjan_scc` recurses) would overflow the stack on. The tests check it
//! against petgraph's `tarjan_scc` on random graphs.

use stateright::Model;

use super::graph::StateGraph;

const UNVISITED: u32 = u32::MAX;

/// The SCCs of the sub-graph induced by `nodes` (sorted, distinct ids), each
/// as a sorted list of ids, in the order Tarjan's algorithm completes them
/// (a component comes before every component that reaches it). Roots are
/// taken in id order, so the result is deterministic.
pub fn sccs<M: Model>(graph: &StateGraph<M>, nodes: &[u32]) -> Vec<Vec<u32>> {
    debug_assert!(nodes.windows(2).all(|w| w[0] < w[1]));
    let local = |id: u32| nodes.binary_search(&id).ok();
    let n = nodes.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    // Call frames: (local node, position of the next successor to look at).
    let mut calls: Vec<(u32, u32)> = Vec::new();
    let mut counter = 0u32;
    let mut out = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != UNVISITED {
            continue;
        }
        index[root as usize] = counter;
        low[root as usize] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        calls.push((root, 0));
        while let Some(&mut (v, ref mut pos)) = calls.last_mut() {
            let succ = graph.targets(nodes[v as usize]);
            if (*pos as usize) < succ.len() {
                let w = succ[*pos as usize];
                *pos += 1;
                let Some(w) = local(w) else { continue };
                if index[w] == UNVISITED {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w as u32);
                    on_stack[w] = true;
                    calls.push((w as u32, 0));
                } else if on_stack[w] {
                    low[v as usize] = low[v as usize].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u as usize] = low[u as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let mut comp = Vec::new();
                loop {
                    let w = stack.pop().expect("Tarjan stack holds the component");
                    on_stack[w as usize] = false;
                    comp.push(nodes[w as usize]);
                    if w == v {
                        break;
                    }
                }
                comp.sort_unstable();
                out.push(comp);
            }
        }
    }
    out
}

/// Whether the component has an edge inside it (more than one state, or a
/// state with an edge to itself): only such a component holds a cycle.
pub fn has_cycle<M: Model>(graph: &StateGraph<M>, comp: &[u32]) -> bool {
    comp.len() > 1 || graph.targets(comp[0]).contains(&comp[0])
}
