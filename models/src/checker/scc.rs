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

#[cfg(test)]
mod tests {
    use super::*;

    /// A model whose states are `0..n` and whose actions are the targets.
    struct Random {
        edges: Vec<Vec<u32>>,
    }

    impl Model for Random {
        type State = u32;
        type Action = u32;
        fn init_states(&self) -> Vec<u32> {
            (0..self.edges.len() as u32).collect()
        }
        fn actions(&self, s: &u32, out: &mut Vec<u32>) {
            out.extend(&self.edges[*s as usize]);
        }
        fn next_state(&self, _: &u32, a: u32) -> Option<u32> {
            Some(a)
        }
    }

    fn partition(mut comps: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
        for c in comps.iter_mut() {
            c.sort_unstable();
        }
        comps.sort();
        comps
    }

    #[test]
    fn matches_petgraph_on_random_graphs() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for round in 0..200 {
            let n = 1 + next(40) as usize;
            let degree = next(4);
            let edges: Vec<Vec<u32>> = (0..n)
                .map(|_| {
                    (0..next(degree + 1))
                        .map(|_| next(n as u64) as u32)
                        .collect()
                })
                .collect();
            let model = Random { edges };
            let graph = crate::checker::StateGraph::build(&model, 1000).unwrap();
            // Graph ids are discovery order; map back to states to compare.
            let all: Vec<u32> = (0..graph.len() as u32).collect();
            let ours: Vec<Vec<u32>> = sccs(&graph, &all)
                .into_iter()
                .map(|c| c.into_iter().map(|id| *graph.state(id)).collect())
                .collect();
            let mut pg = petgraph::Graph::<(), ()>::new();
            let nodes: Vec<_> = (0..n).map(|_| pg.add_node(())).collect();
            for (v, succ) in model.edges.iter().enumerate() {
                for &w in succ {
                    pg.update_edge(nodes[v], nodes[w as usize], ());
                }
            }
            let theirs: Vec<Vec<u32>> = petgraph::algo::tarjan_scc(&pg)
                .into_iter()
                .map(|c| c.into_iter().map(|x| x.index() as u32).collect())
                .collect();
            assert_eq!(partition(ours), partition(theirs), "round {round}");
            // A sub-graph: the even states only.
            let even: Vec<u32> = all
                .iter()
                .copied()
                .filter(|&id| graph.state(id).is_multiple_of(2))
                .collect();
            let sub: usize = sccs(&graph, &even).iter().map(|c| c.len()).sum();
            assert_eq!(sub, even.len());
        }
    }

    #[test]
    fn deep_chains_do_not_overflow_the_stack() {
        let n = 200_000u32;
        let edges = (0..n).map(|i| vec![(i + 1) % n]).collect();
        let model = Random { edges };
        let graph = crate::checker::StateGraph::build(&model, n as usize).unwrap();
        let all: Vec<u32> = (0..n).collect();
        let comps = sccs(&graph, &all);
        assert_eq!(comps.len(), 1);
        assert_eq!(comps[0].len(), n as usize);
    }
}
