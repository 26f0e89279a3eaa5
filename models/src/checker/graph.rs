//! The reachable state graph of a stateright [`Model`], built by an explicit
//! breadth-first search in a fixed order.
//!
//! States get ids in discovery order (the initial states first, in
//! `init_states` order, then breadth first with each state's actions in
//! `actions` order), so the same model gives the same graph, the same ids and
//! the same shortest paths on every run.
//!
//! Memory: [`StateGraph::build`] stores each state once, in `states`;
//! [`StateGraph::build_compact`] stores none (only each state's BFS-tree
//! parent) and [`StateGraph::for_each_state`] recomputes them in id order,
//! which is what liveness, coverage and safety on the graph use: at QSBR's 3
//! threads that keeps the liveness run's peak near 1.5 times a plain
//! breadth-first search's, against 3.6 times with stored states. The search
//! indexes states by a 64-bit fingerprint (`fingerprint -> id`) and, when it
//! stores states, compares the stored state on every hit, so a fingerprint
//! collision is an error, never a silent merge (a compact build compares only
//! while the earlier state is in the frontier); the index is dropped when the
//! search ends. Edges are kept in compressed sparse row form: the successors
//! of state `i` are `targets[offsets[i]..offsets[i + 1]]`, with the index of
//! the action that produced each one in `Model::actions` order (6 bytes per
//! edge). The action values themselves are not stored; [`StateGraph::action`]
//! recomputes one.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use stateright::Model;

/// Default cap on unique states for the graph. Large enough for every
/// manifest configuration at 3 threads; a run that needs more says so.
pub const DEFAULT_MAX_STATES: usize = 4_000_000;

/// Why a graph could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    /// More unique states than the cap allows.
    StateCap { cap: usize },
    /// A state offers more actions than an edge can index.
    TooManyActions { state: u32, count: usize },
    /// Two different states share a fingerprint.
    FingerprintCollision { fingerprint: u64 },
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::StateCap { cap } => write!(
                f,
                "the state graph has more than {cap} unique states (the --max-states cap); \
                 raise --max-states or choose a smaller configuration"
            ),
            GraphError::TooManyActions { state, count } => write!(
                f,
                "state {state} offers {count} actions, more than the {} an edge can index",
                u16::MAX
            ),
            GraphError::FingerprintCollision { fingerprint } => write!(
                f,
                "two different states share fingerprint {fingerprint:#018x}; \
                 the graph cannot tell them apart"
            ),
        }
    }
}

impl std::error::Error for GraphError {}

/// The fingerprint is already a hash: index it as is.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A deterministic 64-bit fingerprint: `DefaultHasher::new()` is SipHash
/// with fixed zero keys, so the value does not change from run to run.
fn fingerprint<T: Hash>(value: &T) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Maps a state to its representative (symmetry reduction), or `None` for
/// the plain graph.
pub type Canonicalizer<S> = fn(&S) -> S;

/// One edge: the index of the action in `Model::actions` order and the
/// successor's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    pub action: u16,
    pub to: u32,
}

/// The reachable state graph.
pub struct StateGraph<M: Model> {
    /// Every state by id, or empty for a compact graph (see
    /// [`StateGraph::build_compact`]).
    states: Vec<M::State>,
    /// Whether `states` holds every state.
    keeps_states: bool,
    /// Number of unique states.
    count: usize,
    /// For a compact graph, each state's BFS-tree parent and the index of
    /// the action that first reached it (`u32::MAX` for an initial state).
    parent: Vec<(u32, u16)>,
    /// Unique initial states: `(id, index in Model::init_states)`.
    init: Vec<(u32, u32)>,
    offsets: Vec<u32>,
    targets: Vec<u32>,
    actions: Vec<u16>,
    canon: Option<Canonicalizer<M::State>>,
    /// Length of the longest shortest path from an initial state.
    depth: usize,
    /// Successors generated, revisits included (stateright's state count).
    generated: usize,
}

/// How far a build has got, reported every [`PROGRESS_EVERY`] states.
#[derive(Clone, Copy, Debug)]
pub struct BuildProgress {
    pub unique_states: usize,
    pub generated: usize,
    pub depth: usize,
}

/// States between two progress reports.
pub const PROGRESS_EVERY: usize = 1 << 14;

impl<M: Model> StateGraph<M>
where
    M::State: Hash + Eq + Clone,
{
    /// Explores every reachable state, failing once more than `max_states`
    /// unique states are found.
    pub fn build(model: &M, max_states: usize) -> Result<Self, GraphError> {
        Self::build_with(model, max_states, None)
    }

    /// As [`StateGraph::build`], storing only representatives when `canon`
    /// is given: every initial state and successor is canonicalised before
    /// it is looked up.
    pub fn build_with(
        model: &M,
        max_states: usize,
        canon: Option<Canonicalizer<M::State>>,
    ) -> Result<Self, GraphError> {
        Self::build_observed(model, max_states, canon, &mut |_| {})
    }

    /// As [`StateGraph::build`], keeping no state: only the edges and each
    /// state's BFS-tree parent (6 bytes a state), with the search frontier
    /// as the only full states alive. States are recomputed in id order by
    /// [`StateGraph::for_each_state`]. Without stored states a fingerprint
    /// collision is detected only while the earlier state is still in the
    /// frontier, as in stateright's own search.
    pub fn build_compact(model: &M, max_states: usize) -> Result<Self, GraphError> {
        Self::build_inner(model, max_states, None, false, &mut |_| {})
    }

    /// As [`StateGraph::build_with`], reporting progress to `observe`.
    pub fn build_observed(
        model: &M,
        max_states: usize,
        canon: Option<Canonicalizer<M::State>>,
        observe: &mut dyn FnMut(&BuildProgress),
    ) -> Result<Self, GraphError> {
        Self::build_inner(model, max_states, canon, true, observe)
    }

    fn build_inner(
        model: &M,
        max_states: usize,
        canon: Option<Canonicalizer<M::State>>,
        keep: bool,
        observe: &mut dyn FnMut(&BuildProgress),
    ) -> Result<Self, GraphError> {
        let mut g = StateGraph {
            states: Vec::new(),
            keeps_states: keep,
            count: 0,
            parent: Vec::new(),
            init: Vec::new(),
            offsets: vec![0],
            targets: Vec::new(),
            actions: Vec::new(),
            canon,
            depth: 0,
            generated: 0,
        };
        let mut index: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>> = HashMap::default();
        // States not yet expanded, ids `front..count`; with `keep` they
        // are `states[front..]` instead.
        let mut frontier: std::collections::VecDeque<M::State> = std::collections::VecDeque::new();
        let mut front = 0usize;
        let mut count = 0usize;
        let mut intern = |states: &mut Vec<M::State>,
                          frontier: &mut std::collections::VecDeque<M::State>,
                          parent: &mut Vec<(u32, u16)>,
                          front: usize,
                          count: &mut usize,
                          s: M::State,
                          via: (u32, u16)|
         -> Result<(u32, bool), GraphError> {
            let fp = fingerprint(&s);
            match index.entry(fp) {
                Entry::Occupied(e) => {
                    let id = *e.get();
                    let same = if keep {
                        states[id as usize] == s
                    } else if (id as usize) >= front {
                        frontier[id as usize - front] == s
                    } else {
                        true
                    };
                    if !same {
                        return Err(GraphError::FingerprintCollision { fingerprint: fp });
                    }
                    Ok((id, false))
                }
                Entry::Vacant(e) => {
                    if *count >= max_states || *count >= u32::MAX as usize {
                        return Err(GraphError::StateCap { cap: max_states });
                    }
                    let id = *count as u32;
                    *count += 1;
                    e.insert(id);
                    if keep {
                        states.push(s);
                    } else {
                        frontier.push_back(s);
                        parent.push(via);
                    }
                    Ok((id, true))
                }
            }
        };
        for (i, s) in model.init_states().into_iter().enumerate() {
            let s = match canon {
                Some(c) => c(&s),
                None => s,
            };
            if !model.within_boundary(&s) {
                continue;
            }
            g.generated += 1;
            let (id, new) = intern(
                &mut g.states,
                &mut frontier,
                &mut g.parent,
                front,
                &mut count,
                s,
                (u32::MAX, 0),
            )?;
            if new {
                g.init.push((id, i as u32));
            }
        }
        // States before `level_end` are at depth `g.depth`.
        let mut level_end = count;
        let mut buf = Vec::new();
        let mut succ = Vec::new();
        let mut next = 0usize;
        while next < count {
            if next == level_end {
                g.depth += 1;
                level_end = count;
            }
            if next.is_multiple_of(PROGRESS_EVERY) {
                observe(&BuildProgress {
                    unique_states: count,
                    generated: g.generated,
                    depth: g.depth,
                });
            }
            {
                let state = if keep { &g.states[next] } else { &frontier[0] };
                model.actions(state, &mut buf);
                if buf.len() > u16::MAX as usize {
                    return Err(GraphError::TooManyActions {
                        state: next as u32,
                        count: buf.len(),
                    });
                }
                for (i, action) in buf.drain(..).enumerate() {
                    if let Some(n) = model.next_state(state, action) {
                        let n = match canon {
                            Some(c) => c(&n),
                            None => n,
                        };
                        if model.within_boundary(&n) {
                            succ.push((i as u16, n));
                        }
                    }
                }
            }
            g.generated += succ.len();
            for (i, n) in succ.drain(..) {
                let (id, _) = intern(
                    &mut g.states,
                    &mut frontier,
                    &mut g.parent,
                    front,
                    &mut count,
                    n,
                    (next as u32, i),
                )?;
                g.targets.push(id);
                g.actions.push(i);
            }
            let edges = u32::try_from(g.targets.len())
                .map_err(|_| GraphError::StateCap { cap: max_states })?;
            g.offsets.push(edges);
            if !keep {
                frontier.pop_front();
                front += 1;
            }
            next += 1;
        }
        g.count = count;
        drop(index);
        g.parent.shrink_to_fit();
        g.states.shrink_to_fit();
        g.targets.shrink_to_fit();
        g.actions.shrink_to_fit();
        g.offsets.shrink_to_fit();
        Ok(g)
    }
}

impl<M: Model> StateGraph<M>
where
    M::State: Clone,
{
    /// Calls `f` on every state in id order. A compact graph recomputes
    /// them by replaying its BFS tree from the initial states, with one
    /// BFS level of states alive at a time.
    pub fn for_each_state(&self, model: &M, mut f: impl FnMut(u32, &M::State)) {
        if self.keeps_states {
            for (id, s) in self.states.iter().enumerate() {
                f(id as u32, s);
            }
            return;
        }
        let inits = model.init_states();
        let mut queue: std::collections::VecDeque<M::State> = std::collections::VecDeque::new();
        for &(_, k) in &self.init {
            let s = inits[k as usize].clone();
            queue.push_back(match self.canon {
                Some(c) => c(&s),
                None => s,
            });
        }
        let mut buf = Vec::new();
        let mut opts: Vec<Option<M::Action>> = Vec::new();
        for id in 0..self.count as u32 {
            let state = queue.pop_front().expect("every state is reached");
            let mut listed = false;
            let (a, b) = self.range(id);
            for k in a..b {
                let to = self.targets[k];
                let act = self.actions[k];
                // Tree children of `id` follow it in id order.
                // (An action index occurs once among a state's edges.)
                if to > id && self.parent[to as usize] == (id, act) {
                    if !listed {
                        model.actions(&state, &mut buf);
                        opts.clear();
                        opts.extend(buf.drain(..).map(Some));
                        listed = true;
                    }
                    let action = opts[act as usize].take().expect("each action once");
                    let n = model
                        .next_state(&state, action)
                        .expect("a recorded edge replays");
                    queue.push_back(match self.canon {
                        Some(c) => c(&n),
                        None => n,
                    });
                }
            }
            f(id, &state);
        }
    }
}

impl<M: Model> StateGraph<M> {
    /// Number of unique states.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the graph stores every state (built by anything but
    /// [`StateGraph::build_compact`]).
    pub fn keeps_states(&self) -> bool {
        self.keeps_states
    }

    /// Length of the longest shortest path from an initial state.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Initial states and successors generated, revisits included.
    pub fn generated(&self) -> usize {
        self.generated
    }

    /// Number of edges (transitions between unique states, one per action
    /// that produced a successor).
    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// The state with id `id`; panics on a compact graph, which keeps
    /// none (use [`StateGraph::for_each_state`]).
    pub fn state(&self, id: u32) -> &M::State {
        assert!(self.keeps_states, "a compact graph keeps no state");
        &self.states[id as usize]
    }

    /// Every state by id; panics on a compact graph.
    pub fn states(&self) -> &[M::State] {
        assert!(self.keeps_states, "a compact graph keeps no state");
        &self.states
    }

    /// Unique initial states as `(id, index in Model::init_states)`.
    pub fn init(&self) -> &[(u32, u32)] {
        &self.init
    }

    pub fn is_init(&self, id: u32) -> bool {
        self.init.iter().any(|&(i, _)| i == id)
    }

    /// Whether the graph holds representatives only (symmetry reduction).
    pub fn canonicalizer(&self) -> Option<Canonicalizer<M::State>> {
        self.canon
    }

    /// The successors of `id`, in action order.
    pub fn edges(&self, id: u32) -> impl ExactSizeIterator<Item = Edge> + '_ {
        let (a, b) = self.range(id);
        self.targets[a..b]
            .iter()
            .zip(&self.actions[a..b])
            .map(|(&to, &action)| Edge { action, to })
    }

    /// Successor ids of `id`, in action order.
    pub fn targets(&self, id: u32) -> &[u32] {
        let (a, b) = self.range(id);
        &self.targets[a..b]
    }

    /// Whether `id` has no successor.
    pub fn is_terminal(&self, id: u32) -> bool {
        let (a, b) = self.range(id);
        a == b
    }

    fn range(&self, id: u32) -> (usize, usize) {
        (
            self.offsets[id as usize] as usize,
            self.offsets[id as usize + 1] as usize,
        )
    }

    /// The action at `index` in `Model::actions` order of state `id`.
    pub fn action(&self, model: &M, id: u32, index: u16) -> M::Action {
        let mut buf = Vec::new();
        model.actions(self.state(id), &mut buf);
        buf.swap_remove(index as usize)
    }

    /// Bytes the graph holds on the heap for its own tables (states'
    /// inline size included, their own heap allocations not).
    pub fn table_bytes(&self) -> usize {
        self.states.capacity() * std::mem::size_of::<M::State>()
            + self.offsets.capacity() * 4
            + self.targets.capacity() * 4
            + self.actions.capacity() * 2
            + self.init.capacity() * 8
            + self.parent.capacity() * std::mem::size_of::<(u32, u16)>()
    }

    /// Breadth-first search from `sources` over states `allowed` admits,
    /// stopping at the first state `target` admits (a source may be it).
    /// Returns the path as hops `(from, edge)`, shortest and, among the
    /// shortest, first in id and action order.
    pub fn bfs_path(
        &self,
        sources: &[u32],
        allowed: impl Fn(u32) -> bool,
        target: impl Fn(u32) -> bool,
    ) -> Option<(u32, Vec<(u32, Edge)>)> {
        const NONE: u32 = u32::MAX;
        const SOURCE: u32 = u32::MAX - 1;
        let mut parent = vec![NONE; self.len()];
        let mut via = vec![0u16; self.len()];
        let mut queue = std::collections::VecDeque::new();
        for &s in sources {
            if allowed(s) && parent[s as usize] == NONE {
                parent[s as usize] = SOURCE;
                queue.push_back(s);
            }
        }
        while let Some(v) = queue.pop_front() {
            if target(v) {
                let mut hops = Vec::new();
                let mut cur = v;
                while parent[cur as usize] != SOURCE {
                    let from = parent[cur as usize];
                    hops.push((
                        from,
                        Edge {
                            action: via[cur as usize],
                            to: cur,
                        },
                    ));
                    cur = from;
                }
                hops.reverse();
                return Some((cur, hops));
            }
            for e in self.edges(v) {
                if allowed(e.to) && parent[e.to as usize] == NONE {
                    parent[e.to as usize] = v;
                    via[e.to as usize] = e.action;
                    queue.push_back(e.to);
                }
            }
        }
        None
    }

    /// Shortest path from an initial state to the first state (in BFS
    /// order) that `target` admits.
    pub fn path_to(&self, target: impl Fn(u32) -> bool) -> Option<(u32, Vec<(u32, Edge)>)> {
        let sources: Vec<u32> = self.init.iter().map(|&(id, _)| id).collect();
        self.bfs_path(&sources, |_| true, target)
    }

    /// Index in `Model::init_states` of the initial state with graph id `id`.
    pub fn init_index(&self, id: u32) -> Option<u32> {
        self.init.iter().find(|&&(i, _)| i == id).map(|&(_, k)| k)
    }
}
