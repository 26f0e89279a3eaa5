//! The reachable state graph of a stateright [`Model`], built by an explicit
//! breadth-first search in a fixed order.
//!
//! States get ids in discovery order (the initial states first, in
//! `init_states` order, then breadth first with each state's actions in
//! `actions` order), so the same model gives the same graph, the same ids and
//! the same shortest paths on every run.
//!
//! Memory: each state is stored once, in `states`. The search indexes states
//! by a 64-bit fingerprint (`fingerprint -> id`) and compares the stored state
//! on every hit, so a fingerprint collision is an error, never a silent
//! merge; the index is dropped when the search ends. Edges are kept in
//! compressed sparse row form: the successors of state `i` are
//! `targets[offsets[i]..offsets[i + 1]]`, with the index of the action that
//! produced each one in `Model::actions` order (6 bytes per edge). The action
//! values themselves are not stored; [`StateGraph::action`] recomputes one.

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
    states: Vec<M::State>,
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

    /// As [`StateGraph::build_with`], reporting progress to `observe`.
    pub fn build_observed(
        model: &M,
        max_states: usize,
        canon: Option<Canonicalizer<M::State>>,
        observe: &mut dyn FnMut(&BuildProgress),
    ) -> Result<Self, GraphError> {
        let mut g = StateGraph {
            states: Vec::new(),
            init: Vec::new(),
            offsets: vec![0],
            targets: Vec::new(),
            actions: Vec::new(),
            canon,
            depth: 0,
            generated: 0,
        };
        let mut index: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>> = HashMap::default();
        let mut intern =
            |states: &mut Vec<M::State>, s: M::State| -> Result<(u32, bool), GraphError> {
                let fp = fingerprint(&s);
                match index.entry(fp) {
                    Entry::Occupied(e) => {
                        let id = *e.get();
                        if states[id as usize] != s {
                            return Err(GraphError::FingerprintCollision { fingerprint: fp });
                        }
                        Ok((id, false))
                    }
                    Entry::Vacant(e) => {
                        if states.len() >= max_states || states.len() >= u32::MAX as usize {
                            return Err(GraphError::StateCap { cap: max_states });
                        }
                        let id = states.len() as u32;
                        e.insert(id);
                        states.push(s);
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
            let (id, new) = intern(&mut g.states, s)?;
            if new {
                g.init.push((id, i as u32));
            }
        }
        // States before `level_end` are at depth `g.depth`.
        let mut level_end = g.states.len();
        let mut buf = Vec::new();
        let mut succ = Vec::new();
        let mut next = 0usize;
        while next < g.states.len() {
            if next == level_end {
                g.depth += 1;
                level_end = g.states.len();
            }
            if next.is_multiple_of(PROGRESS_EVERY) {
                observe(&BuildProgress {
                    unique_states: g.states.len(),
                    generated: g.generated,
                    depth: g.depth,
                });
            }
            let state = &g.states[next];
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
            g.generated += succ.len();
            for (i, n) in succ.drain(..) {
                let (id, _) = intern(&mut g.states, n)?;
                g.targets.push(id);
                g.actions.push(i);
            }
            let edges = u32::try_from(g.targets.len())
                .map_err(|_| GraphError::StateCap { cap: max_states })?;
            g.offsets.push(edges);
            next += 1;
        }
        g.states.shrink_to_fit();
        g.targets.shrink_to_fit();
        g.actions.shrink_to_fit();
        g.offsets.shrink_to_fit();
        Ok(g)
    }
}

impl<M: Model> StateGraph<M> {
    /// Number of unique states.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
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

    pub fn state(&self, id: u32) -> &M::State {
        &self.states[id as usize]
    }

    pub fn states(&self) -> &[M::State] {
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
        model.actions(&self.states[id as usize], &mut buf);
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
