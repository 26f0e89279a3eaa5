//! Liveness on the whole reachable graph: `eventually Q` and `P leads to Q`
//! under weak and strong fairness, judged on cycles and joins, not only at
//! path ends as stateright's `Property::eventually` is.
//!
//! # Algorithm
//! `P leads to Q` fails iff some reachable state satisfies `P` and not `Q`,
//! and from it a fair run avoids `Q` forever. Such a run stays in the
//! *region*: the `¬Q` states reachable from a `P ∧ ¬Q` state through `¬Q`
//! states. In the region's sub-graph:
//!
//! 1. a state with no successor at all is a violation (the run stops there
//!    without reaching `Q`);
//! 2. otherwise the run ends in a strongly connected component with an
//!    edge, and a fair run exists in it iff (Emerson-Lei for Streett
//!    conditions): for every weak constraint, some edge inside is that
//!    thread's action of that class or some state inside has none enabled;
//!    for every strong constraint, some edge inside takes it, or else the
//!    component is cut down to the states where it is not enabled and its
//!    SCCs are checked again. Enabled means enabled in the full graph, so an
//!    action that would leave the region (to a `Q` state) counts as enabled.
//!
//! `eventually Q` is `init leads to Q`.
//!
//! The reported lasso is deterministic: the prefix is the shortest path
//! from an initial state, through a `P ∧ ¬Q` state and then `¬Q` states
//! only, to the first violating state in breadth-first order (a 0-1 BFS on
//! the product of the graph with "P seen"); the cycle starts there, visits
//! one witness per constraint (the nearest edge of the class, or the nearest
//! state where it is disabled) and returns. The cycle is re-checked for
//! fairness before it is reported.
//!
//! # Limits
//! Liveness under fairness needs the unreduced graph: per-thread fairness
//! does not survive the quotient by thread renaming (a cycle there may move
//! a thread from one position to another, so "position 1 never scans" says
//! nothing about any one thread), and a reduced graph is refused. Without
//! fairness the quotient is exact for properties that name no thread, and
//! a cycle found there is followed in the real model until the real state
//! repeats.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;

use stateright::Model;

use super::fairness::{Fairness, Strength};
use super::graph::{Edge, StateGraph};
use super::scc::{has_cycle, sccs};
use super::trace::{Trace, TraceError, format_indices};

/// Why a liveness check could not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LivenessError {
    /// The graph is symmetry-reduced.
    Symmetric,
    /// Too many (thread, class) pairs.
    Constraints(String),
    /// The lasso could not be replayed in the model.
    Trace(TraceError),
    /// The cycle built for a fair component failed its own fairness check.
    Internal(String),
}

impl fmt::Display for LivenessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LivenessError::Symmetric => f.write_str(
                "liveness needs the unreduced graph: per-thread fairness does not survive symmetry reduction",
            ),
            LivenessError::Constraints(s) => write!(f, "fairness: {s}"),
            LivenessError::Trace(e) => write!(f, "lasso replay: {e}"),
            LivenessError::Internal(s) => write!(f, "internal: {s}"),
        }
    }
}

impl std::error::Error for LivenessError {}

/// A counterexample to a liveness property: a prefix from an initial state
/// and a cycle that repeats forever (or, when `terminal`, a run that stops
/// in a state with no successor).
pub struct Lasso<M: Model> {
    /// Prefix then cycle, as one replayable trace.
    pub trace: Trace<M>,
    /// Steps after which `P ∧ ¬Q` holds (0: in the initial state).
    pub p_at: usize,
    /// Steps before the cycle: `trace.state_at(cycle_start)` is the state
    /// the cycle leaves from and returns to.
    pub cycle_start: usize,
    /// The run ends in a state with no successor; the cycle is empty.
    pub terminal: bool,
}

impl<M: Model> Lasso<M> {
    /// Number of steps in the cycle.
    pub fn cycle_len(&self) -> usize {
        self.trace.steps.len() - self.cycle_start
    }

    /// `[init index, action index, ...]` of prefix and one turn of the cycle.
    pub fn indices(&self) -> Vec<usize> {
        self.trace.indices()
    }

    /// Re-checks the lasso against the model alone, not the graph: the
    /// action indices replay to the same states, the goal `q` fails from
    /// the premise on, the cycle returns to its first state, and the cycle
    /// is fair (each weak constraint taken in it or disabled in one of its
    /// states; each strong one taken in it or disabled in all of them). A
    /// terminal lasso must end in a state with no enabled action.
    pub fn verify(
        &self,
        model: &M,
        fairness: &Fairness<M::Action>,
        q: impl Fn(&M::State) -> bool,
    ) -> Result<(), String>
    where
        M::State: Clone + Hash + Eq + fmt::Debug,
        M::Action: Clone,
    {
        let again = Trace::from_indices(model, &self.indices()).map_err(|e| e.to_string())?;
        let steps = self.trace.steps.len();
        for k in 0..=steps {
            if again.state_at(k) != self.trace.state_at(k) {
                return Err(format!("replay differs after {k} steps"));
            }
            if k >= self.p_at && q(self.trace.state_at(k)) {
                return Err(format!("the goal holds after {k} steps"));
            }
        }
        let enabled = |s: &M::State| -> Result<(u64, usize), String> {
            let mut buf = Vec::new();
            model.actions(s, &mut buf);
            let mut mask = 0u64;
            let mut count = 0;
            for a in buf {
                let bit = fairness.constraint(&a)?;
                if model.next_state(s, a).is_some() {
                    count += 1;
                    if let Some(b) = bit {
                        mask |= 1 << b;
                    }
                }
            }
            Ok((mask, count))
        };
        if self.terminal {
            let (_, count) = enabled(self.trace.last())?;
            return if count == 0 {
                Ok(())
            } else {
                Err("a terminal lasso ends in a state with enabled actions".into())
            };
        }
        if self.cycle_len() == 0 || self.trace.state_at(self.cycle_start) != self.trace.last() {
            return Err("the cycle does not return to its first state".into());
        }
        let (mut taken, mut all, mut any) = (0u64, !0u64, 0u64);
        for k in self.cycle_start..steps {
            let (mask, _) = enabled(self.trace.state_at(k))?;
            all &= mask;
            any |= mask;
            if let Some(b) = fairness.constraint(&self.trace.steps[k].action)? {
                taken |= 1 << b;
            }
        }
        let unfair =
            (fairness.mask(Strength::Weak) & all | fairness.mask(Strength::Strong) & any) & !taken;
        if unfair != 0 {
            let b = unfair.trailing_zeros() as u8;
            return Err(format!("the cycle is unfair to {}", fairness.describe(b)));
        }
        Ok(())
    }

    /// The lasso as lines a user reads and replays.
    pub fn render(&self, model: &M, fairness: &Fairness<M::Action>) -> String
    where
        M::Action: fmt::Debug,
    {
        let mut out = String::new();
        let line = |out: &mut String, k: usize, a: &M::Action| {
            let who = fairness
                .thread(a)
                .map(|t| format!("thread {t}: "))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {:>3}. {who}{}\n",
                k + 1,
                model.format_action(a)
            ));
        };
        out.push_str("prefix:\n");
        for (k, s) in self.trace.steps[..self.cycle_start].iter().enumerate() {
            if k == self.p_at {
                out.push_str("       -- the premise holds from here --\n");
            }
            line(&mut out, k, &s.action);
        }
        if self.terminal {
            out.push_str("then no action is enabled: the run stops without reaching the goal\n");
        } else {
            out.push_str("cycle (repeats forever, back to the state after the prefix):\n");
            for (k, s) in self.trace.steps.iter().enumerate().skip(self.cycle_start) {
                line(&mut out, k, &s.action);
            }
        }
        out.push_str(&format!(
            "replay: {} (cycle from step {})\n",
            format_indices(&self.indices()),
            self.cycle_start + 1
        ));
        out
    }
}

/// What a liveness check found, with the sizes it worked on.
pub struct LivenessReport<M: Model> {
    pub lasso: Option<Lasso<M>>,
    /// `¬Q` states reachable from a `P ∧ ¬Q` state through `¬Q` states.
    pub region_states: usize,
    /// Components of the region in which a fair run avoids `Q` forever.
    pub fair_components: usize,
}

impl<M: Model> LivenessReport<M> {
    pub fn holds(&self) -> bool {
        self.lasso.is_none()
    }
}

/// Checks `P leads to Q`: from every reachable state where `p` holds, every
/// fair run reaches a state where `q` holds.
pub fn leads_to<M: Model>(
    model: &M,
    graph: &StateGraph<M>,
    fairness: &Fairness<M::Action>,
    p: impl Fn(&M::State) -> bool,
    q: impl Fn(&M::State) -> bool,
) -> Result<LivenessReport<M>, LivenessError>
where
    M::State: Clone + Hash + Eq,
    M::Action: Clone,
{
    let mut p_bits = vec![false; graph.len()];
    graph.for_each_state(model, |id, s| p_bits[id as usize] = p(s));
    let p = p_bits;
    check(model, graph, fairness, &|id| p[id as usize], q)
}

/// Checks `eventually Q`: every fair run from an initial state reaches a
/// state where `q` holds.
pub fn eventually<M: Model>(
    model: &M,
    graph: &StateGraph<M>,
    fairness: &Fairness<M::Action>,
    q: impl Fn(&M::State) -> bool,
) -> Result<LivenessReport<M>, LivenessError>
where
    M::State: Clone + Hash + Eq,
    M::Action: Clone,
{
    check(model, graph, fairness, &|id| graph.is_init(id), q)
}

/// Per state of a component: the constraints enabled (in the full graph)
/// and the constraint each out-edge serves (`NONE` for none).
struct FairInfo<'a, M: Model> {
    model: &'a M,
    graph: &'a StateGraph<M>,
    fairness: &'a Fairness<M::Action>,
    cache: HashMap<u32, (u64, Box<[u8]>)>,
}

const NONE: u8 = u8::MAX;

impl<M: Model> FairInfo<'_, M> {
    fn get(&mut self, id: u32) -> Result<&(u64, Box<[u8]>), LivenessError> {
        if !self.cache.contains_key(&id) {
            let f = self.facts(id, self.graph.state(id))?;
            self.cache.insert(id, f);
        }
        Ok(&self.cache[&id])
    }

    /// Computes the facts of state `id` from the state itself.
    fn facts(&self, id: u32, state: &M::State) -> Result<(u64, Box<[u8]>), LivenessError> {
        let mut buf = Vec::new();
        self.model.actions(state, &mut buf);
        let mut enabled = 0u64;
        let mut bits = Vec::with_capacity(self.graph.targets(id).len());
        for e in self.graph.edges(id) {
            let c = self
                .fairness
                .constraint(&buf[e.action as usize])
                .map_err(LivenessError::Constraints)?;
            if let Some(b) = c {
                enabled |= 1 << b;
            }
            bits.push(c.unwrap_or(NONE));
        }
        Ok((enabled, bits.into_boxed_slice()))
    }

    /// (constraints taken by edges inside, enabled in every state, enabled
    /// in some state) over a sorted component.
    fn summary(&mut self, comp: &[u32]) -> Result<(u64, u64, u64), LivenessError> {
        let (mut taken, mut all, mut any) = (0u64, !0u64, 0u64);
        for &v in comp {
            let targets = self.graph.targets(v);
            let (enabled, bits) = self.get(v)?;
            all &= enabled;
            any |= enabled;
            for (k, w) in targets.iter().enumerate() {
                if bits[k] != NONE && comp.binary_search(w).is_ok() {
                    taken |= 1 << bits[k];
                }
            }
        }
        Ok((taken, all, any))
    }
}

fn check<M: Model>(
    model: &M,
    graph: &StateGraph<M>,
    fairness: &Fairness<M::Action>,
    start: &dyn Fn(u32) -> bool,
    q: impl Fn(&M::State) -> bool,
) -> Result<LivenessReport<M>, LivenessError>
where
    M::State: Clone + Hash + Eq,
    M::Action: Clone,
{
    if graph.canonicalizer().is_some() && !fairness.classes().is_empty() {
        return Err(LivenessError::Symmetric);
    }
    let n = graph.len();
    let mut not_q = vec![false; n];
    graph.for_each_state(model, |id, s| not_q[id as usize] = !q(s));
    let not_q = not_q;
    let trigger = |id: u32| start(id) && not_q[id as usize];

    // The region: ¬Q states reachable from a P ∧ ¬Q state through ¬Q states.
    let mut region = vec![false; n];
    let mut queue: VecDeque<u32> = (0..n as u32).filter(|&id| trigger(id)).collect();
    for &id in &queue {
        region[id as usize] = true;
    }
    while let Some(v) = queue.pop_front() {
        for &w in graph.targets(v) {
            if not_q[w as usize] && !region[w as usize] {
                region[w as usize] = true;
                queue.push_back(w);
            }
        }
    }
    let nodes: Vec<u32> = (0..n as u32).filter(|&id| region[id as usize]).collect();

    let mut info = FairInfo {
        model,
        graph,
        fairness,
        cache: HashMap::new(),
    };
    let weak = fairness.mask(Strength::Weak);
    let strong = fairness.mask(Strength::Strong);
    let mut work: Vec<Vec<u32>> = sccs(graph, &nodes)
        .into_iter()
        .filter(|c| has_cycle(graph, c))
        .collect();
    work.reverse();
    if !graph.keeps_states() {
        // A compact graph keeps no state: compute the facts of every state
        // the components may ask for in one replay of the graph.
        let mut wanted = vec![false; n];
        for c in &work {
            for &v in c {
                wanted[v as usize] = true;
            }
        }
        let mut failed = None;
        let mut facts = HashMap::new();
        graph.for_each_state(model, |id, s| {
            if wanted[id as usize] && failed.is_none() {
                match info.facts(id, s) {
                    Ok(f) => {
                        facts.insert(id, f);
                    }
                    Err(e) => failed = Some(e),
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        info.cache = facts;
    }
    let mut fair_sets: Vec<Vec<u32>> = Vec::new();
    while let Some(comp) = work.pop() {
        if !has_cycle(graph, &comp) {
            continue;
        }
        let (taken, all, any) = info.summary(&comp)?;
        if weak & all & !taken != 0 {
            // A weak constraint enabled everywhere and taken nowhere: no
            // cycle inside is fair either.
            continue;
        }
        let unmet = strong & any & !taken;
        if unmet != 0 {
            let mut rest = Vec::new();
            for &v in &comp {
                if info.get(v)?.0 & unmet == 0 {
                    rest.push(v);
                }
            }
            if !rest.is_empty() {
                let mut subs = sccs(graph, &rest);
                subs.reverse();
                work.extend(subs);
            }
            continue;
        }
        fair_sets.push(comp);
    }

    // Violating states: terminal region states, and members of fair sets.
    const NO: u32 = u32::MAX;
    const TERMINAL: u32 = u32::MAX - 1;
    let mut violating: HashMap<u32, u32> = HashMap::new();
    for &v in &nodes {
        if graph.is_terminal(v) {
            violating.insert(v, TERMINAL);
        }
    }
    for (k, comp) in fair_sets.iter().enumerate() {
        for &v in comp {
            violating.insert(v, k as u32);
        }
    }
    let region_states = nodes.len();
    let fair_components = fair_sets.len();
    if violating.is_empty() {
        return Ok(LivenessReport {
            lasso: None,
            region_states,
            fair_components,
        });
    }

    // Shortest prefix: 0-1 BFS on (state, premise seen). Entering phase 1
    // at a trigger state costs nothing; phase 1 stays inside the region.
    const SOURCE: u32 = u32::MAX - 1;
    const SWITCH: u32 = u32::MAX - 2;
    let mut par = [vec![NO; n], vec![NO; n]];
    let mut via = [vec![0u16; n], vec![0u16; n]];
    let mut dq: VecDeque<(u32, usize)> = VecDeque::new();
    for &(id, _) in graph.init() {
        if par[0][id as usize] == NO {
            par[0][id as usize] = SOURCE;
            dq.push_back((id, 0));
        }
    }
    let mut found = None;
    while let Some((v, phase)) = dq.pop_front() {
        if phase == 1 && violating.contains_key(&v) {
            found = Some(v);
            break;
        }
        if phase == 0 && trigger(v) && par[1][v as usize] == NO {
            par[1][v as usize] = SWITCH;
            dq.push_front((v, 1));
        }
        for e in graph.edges(v) {
            let w = e.to as usize;
            if (phase == 0 || region[w]) && par[phase][w] == NO {
                par[phase][w] = v;
                via[phase][w] = e.action;
                dq.push_back((e.to, phase));
            }
        }
    }
    let entry = found.ok_or_else(|| LivenessError::Internal("no path to a violation".into()))?;
    let mut hops = Vec::new();
    let (mut cur, mut phase) = (entry, 1usize);
    let mut after_switch = 0;
    loop {
        let p = par[phase][cur as usize];
        if p == SOURCE {
            break;
        }
        if p == SWITCH {
            after_switch = hops.len();
            phase = 0;
            continue;
        }
        hops.push((
            p,
            Edge {
                action: via[phase][cur as usize],
                to: cur,
            },
        ));
        cur = p;
    }
    hops.reverse();
    let start_id = cur;
    let p_at = hops.len() - after_switch;

    let kind = violating[&entry];
    let terminal = kind == TERMINAL;
    let cycle = if terminal {
        Vec::new()
    } else {
        build_cycle(&mut info, &fair_sets[kind as usize], entry, weak, strong)?
    };
    let (trace, cycle_start) = Trace::from_graph_lasso(model, graph, start_id, &hops, &cycle)
        .map_err(LivenessError::Trace)?;
    Ok(LivenessReport {
        lasso: Some(Lasso {
            trace,
            p_at,
            cycle_start,
            terminal,
        }),
        region_states,
        fair_components,
    })
}

/// A cycle from `entry` inside the fair component `comp` that meets every
/// constraint: for each one that needs it, a detour to the nearest edge of
/// the class or the nearest state where it is disabled, then back.
fn build_cycle<M: Model>(
    info: &mut FairInfo<'_, M>,
    comp: &[u32],
    entry: u32,
    weak: u64,
    strong: u64,
) -> Result<Vec<(u32, Edge)>, LivenessError> {
    let graph = info.graph;
    let (taken, all, any) = info.summary(comp)?;
    let inside = |id: u32| comp.binary_search(&id).is_ok();
    // Facts per state, so the searches below need no mutable borrow.
    let mut facts: HashMap<u32, (u64, Box<[u8]>)> = HashMap::new();
    for &v in comp {
        facts.insert(v, info.get(v)?.clone());
    }
    let edge_of = |v: u32, b: u8| -> Option<Edge> {
        let bits = &facts[&v].1;
        graph
            .edges(v)
            .enumerate()
            .find(|(k, e)| bits[*k] == b && inside(e.to))
            .map(|(_, e)| e)
    };
    let mut hops: Vec<(u32, Edge)> = Vec::new();
    let mut cur = entry;
    let visited_disabled = |hops: &[(u32, Edge)], b: u64| {
        std::iter::once(entry)
            .chain(hops.iter().map(|h| h.1.to))
            .any(|v| facts[&v].0 & b == 0)
    };
    for bit in 0..64u8 {
        let m = 1u64 << bit;
        let is_weak = weak & m != 0;
        let is_strong = strong & m != 0;
        if !(is_weak || is_strong) || any & m == 0 {
            continue; // never enabled in the component: any cycle meets it
        }
        let took = |hops: &[(u32, Edge)]| {
            hops.iter().any(|(from, e)| {
                let k = graph
                    .edges(*from)
                    .position(|x| x == *e)
                    .expect("hop is an edge");
                facts[from].1[k] == bit
            })
        };
        if took(&hops) || (is_weak && visited_disabled(&hops, m)) {
            continue;
        }
        let need_edge = is_strong || all & m != 0;
        if need_edge && taken & m == 0 {
            return Err(LivenessError::Internal(format!(
                "fair component never takes constraint {bit}"
            )));
        }
        let (_, path) = graph
            .bfs_path(&[cur], inside, |v| {
                edge_of(v, bit).is_some() || (!need_edge && facts[&v].0 & m == 0)
            })
            .ok_or_else(|| LivenessError::Internal("witness unreachable in component".into()))?;
        hops.extend(path);
        cur = hops.last().map(|h| h.1.to).unwrap_or(cur);
        if need_edge || facts[&cur].0 & m != 0 {
            let e = edge_of(cur, bit).expect("search stopped at a witness edge");
            hops.push((cur, e));
            cur = e.to;
        }
    }
    if hops.is_empty() {
        let e = graph
            .edges(entry)
            .find(|e| inside(e.to))
            .ok_or_else(|| LivenessError::Internal("component without an edge".into()))?;
        hops.push((entry, e));
        cur = e.to;
    }
    let (_, back) = graph
        .bfs_path(&[cur], inside, |v| v == entry)
        .ok_or_else(|| LivenessError::Internal("entry unreachable in component".into()))?;
    hops.extend(back);

    // Re-check the cycle itself.
    let (mut c_taken, mut c_all, mut c_any) = (0u64, !0u64, 0u64);
    for (from, e) in &hops {
        let k = graph.edges(*from).position(|x| x == *e).expect("edge");
        if facts[from].1[k] != NONE {
            c_taken |= 1 << facts[from].1[k];
        }
        let en = facts[&e.to].0;
        c_all &= en;
        c_any |= en;
    }
    if weak & c_all & !c_taken != 0 || strong & c_any & !c_taken != 0 {
        return Err(LivenessError::Internal(
            "constructed cycle is unfair".into(),
        ));
    }
    Ok(hops)
}
