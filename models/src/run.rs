//! The run engine: explores any stateright [`Model`] with one checker
//! thread, under the bounds of [`RunOptions`], reporting progress, and
//! finds the shortest counterexample for each violated property.
//!
//! Determinism: stateright's BFS and DFS with a single worker visit states
//! in an order fixed by the model (its fingerprints use fixed hash keys),
//! so the same configuration gives the same unique-state count on every
//! run. With several workers the order, and with it which counterexample
//! path stateright keeps, depends on scheduling; cpyrt never uses more
//! than one. Counterexamples do not come from stateright's discovery (it
//! keeps the last violating state it checked, not the first) but from
//! [`shortest_counterexamples`], a breadth-first search that stops at the
//! first violating state, so BFS and DFS runs print the same path.
//!
//! Bounds: stateright's own timeout is only looked at when a worker runs
//! out of local work, which a single worker never does, so both bounds are
//! enforced here by [`Bounded`], a wrapper model that stops offering
//! successors once a bound is hit. The states already queued are still
//! checked (they are reachable), then the run ends and is marked partial.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stateright::{Checker, Expectation, Model, Property};

/// How the state space is walked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Breadth first: `depth` is the length of the longest shortest path.
    #[default]
    Bfs,
    /// Depth first: less memory; `depth` is the deepest path it followed.
    Dfs,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Bfs => "bfs",
            Strategy::Dfs => "dfs",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "bfs" => Some(Strategy::Bfs),
            "dfs" => Some(Strategy::Dfs),
            _ => None,
        }
    }
}

/// Which bound ended a run before it had seen every reachable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    MaxStates,
    Timeout,
}

impl Bound {
    pub fn name(self) -> &'static str {
        match self {
            Bound::MaxStates => "max_states",
            Bound::Timeout => "timeout",
        }
    }
}

/// Everything that shapes one run besides the model. New knobs (symmetry,
/// coverage, liveness) go here with a default that keeps today's result.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub strategy: Strategy,
    /// Stop after generating this many states, revisits included
    /// (stateright's `target_state_count`). Deterministic.
    pub max_states: Option<usize>,
    /// Stop after this much wall time. Not deterministic by nature.
    pub timeout: Option<Duration>,
    /// How many states the counterexample search may visit per run before
    /// it falls back to the path stateright kept. `None`: the larger of the
    /// run's unique-state count and [`DEFAULT_SEARCH_BUDGET`].
    pub search_budget: Option<usize>,
    /// Explore one representative per renaming of threads, on the
    /// checker's own BFS graph instead of stateright (`--symmetry`).
    pub symmetry: bool,
    /// Count transitions per event kind on the state graph (`--coverage`).
    pub coverage: bool,
    /// Do not judge the spec's liveness properties (`--no-liveness`).
    pub skip_liveness: bool,
}

/// Smallest state budget of the shortest-counterexample search.
pub const DEFAULT_SEARCH_BUDGET: usize = 100_000;

/// A snapshot of a running check, for progress display.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub unique_states: usize,
    pub total_states: usize,
    pub depth: usize,
    pub elapsed: Duration,
}

/// How often the engine samples a running checker.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// The raw outcome of exploring a model.
#[derive(Clone, Debug)]
pub struct Exploration<A> {
    pub unique_states: usize,
    pub total_states: usize,
    pub depth: usize,
    pub elapsed: Duration,
    /// `Some` when a bound cut the run short.
    pub bound: Option<Bound>,
    /// Always-properties with a counterexample.
    pub violated: BTreeSet<&'static str>,
    /// Sometimes-properties with an example.
    pub reached: BTreeSet<&'static str>,
    /// The path stateright kept for each violated property (its actions).
    pub paths: BTreeMap<&'static str, Vec<A>>,
}

const NO_BOUND: u8 = 0;
const HIT_MAX_STATES: u8 = 1;
const HIT_TIMEOUT: u8 = 2;

/// A model that stops growing once told to, or once it has generated
/// `max_states` states. Everything else is the inner model's.
pub struct Bounded<M: Model> {
    inner: M,
    props: Vec<Property<M>>,
    max_states: usize,
    generated: AtomicUsize,
    /// Set by a bound: no more successors.
    stop: Arc<AtomicU8>,
    /// Set when stopping actually withheld a successor.
    cut: AtomicBool,
}

impl<M: Model> Bounded<M> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) != NO_BOUND
    }
}

// stateright properties are function pointers taking the model, so each
// inner property gets a forwarding function indexed by a const generic.
fn forward<M: Model, const K: usize>(m: &Bounded<M>, s: &M::State) -> bool {
    (m.props[K].condition)(&m.inner, s)
}

/// Most properties a model run by this engine may have.
pub const MAX_PROPERTIES: usize = 40;

type Fwd<M> = fn(&Bounded<M>, &<M as Model>::State) -> bool;

fn forwarders<M: Model>() -> [Fwd<M>; MAX_PROPERTIES] {
    macro_rules! f {
        ($($k:literal)*) => { [$(forward::<M, $k>),*] };
    }
    f!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
       20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39)
}

impl<M: Model> Model for Bounded<M> {
    type State = M::State;
    type Action = M::Action;

    fn init_states(&self) -> Vec<M::State> {
        self.inner.init_states()
    }

    fn actions(&self, state: &M::State, actions: &mut Vec<M::Action>) {
        if self.stopped() {
            let mut withheld = Vec::new();
            self.inner.actions(state, &mut withheld);
            if !withheld.is_empty() {
                self.cut.store(true, Ordering::Relaxed);
            }
            return;
        }
        self.inner.actions(state, actions)
    }

    fn next_state(&self, last: &M::State, action: M::Action) -> Option<M::State> {
        self.inner.next_state(last, action)
    }

    fn within_boundary(&self, state: &M::State) -> bool {
        if self.stopped() {
            self.cut.store(true, Ordering::Relaxed);
            return false;
        }
        if !self.inner.within_boundary(state) {
            return false;
        }
        // Called once per generated state (init states included), before
        // stateright counts it: this is its `state_count`.
        if self.generated.fetch_add(1, Ordering::Relaxed) >= self.max_states {
            let _ = self.stop.compare_exchange(
                NO_BOUND,
                HIT_MAX_STATES,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            self.cut.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn properties(&self) -> Vec<Property<Self>> {
        assert!(
            self.props.len() <= MAX_PROPERTIES,
            "raise run::MAX_PROPERTIES"
        );
        let fwd = forwarders::<M>();
        self.props
            .iter()
            .enumerate()
            .map(|(k, p)| Property {
                expectation: p.expectation.clone(),
                name: p.name,
                condition: fwd[k],
            })
            .collect()
    }
}

/// Explores `model` under `opts` with one checker thread, calling
/// `progress` about every [`PROGRESS_INTERVAL`] while it runs.
pub fn explore<M>(
    model: M,
    opts: &RunOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Exploration<M::Action>
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + PartialEq + Send + Sync + 'static,
{
    let stop = Arc::new(AtomicU8::new(NO_BOUND));
    let bounded = Bounded {
        props: model.properties(),
        inner: model,
        max_states: opts.max_states.unwrap_or(usize::MAX),
        generated: AtomicUsize::new(0),
        stop: Arc::clone(&stop),
        cut: AtomicBool::new(false),
    };
    let start = Instant::now();
    let builder = bounded.checker().threads(1);
    let mut checker = match opts.strategy {
        Strategy::Bfs => Box::new(builder.spawn_bfs()) as Box<dyn Checker<Bounded<M>>>,
        Strategy::Dfs => Box::new(builder.spawn_dfs()),
    };
    let handles = checker.handles();
    let mut wait = Duration::from_millis(2);
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(wait);
        // Start with short sleeps so small runs end promptly.
        wait = (wait * 2).min(PROGRESS_INTERVAL);
        let elapsed = start.elapsed();
        if opts.timeout.is_some_and(|t| elapsed >= t) {
            let _ =
                stop.compare_exchange(NO_BOUND, HIT_TIMEOUT, Ordering::Relaxed, Ordering::Relaxed);
        }
        progress(&Progress {
            unique_states: checker.unique_state_count(),
            total_states: checker.state_count(),
            depth: checker.max_depth(),
            elapsed,
        });
    }
    for h in handles {
        if let Err(panic) = h.join() {
            std::panic::resume_unwind(panic);
        }
    }
    let elapsed = start.elapsed();
    let model = checker.model();
    let bound = if model.cut.load(Ordering::Relaxed) {
        match stop.load(Ordering::Relaxed) {
            HIT_TIMEOUT => Some(Bound::Timeout),
            _ => Some(Bound::MaxStates),
        }
    } else {
        None
    };
    // stateright rebuilds discovery paths by walking the model again: let
    // it offer every successor now that the workers are gone.
    stop.store(NO_BOUND, Ordering::Relaxed);
    model.generated.store(0, Ordering::Relaxed);
    let properties = model.properties();
    let expectation = |name: &str| {
        properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.expectation.clone())
    };
    let mut violated = BTreeSet::new();
    let mut reached = BTreeSet::new();
    let mut paths = BTreeMap::new();
    for (name, path) in checker.discoveries() {
        match expectation(name) {
            Some(Expectation::Always) => {
                violated.insert(name);
                paths.insert(name, path.into_actions());
            }
            // A partial run makes every cut state look terminal, which is
            // where stateright judges `eventually`: ignore those then.
            Some(Expectation::Eventually) if bound.is_none() => {
                violated.insert(name);
                paths.insert(name, path.into_actions());
            }
            Some(Expectation::Sometimes) => {
                reached.insert(name);
            }
            _ => {}
        }
    }
    Exploration {
        unique_states: checker.unique_state_count(),
        total_states: checker.state_count(),
        depth: checker.max_depth(),
        elapsed,
        bound,
        violated,
        reached,
        paths,
    }
}

fn fingerprint<T: Hash>(value: &T) -> u64 {
    // DefaultHasher::new() has fixed keys: the same on every run.
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// For each named always-property, the action indices of a shortest path
/// from an initial state to a state that violates it: the first such
/// state in breadth-first order, actions taken in the order the model
/// offers them. Visits at most `budget` states; properties not found by
/// then are missing from the result.
pub fn shortest_counterexamples<M: Model>(
    model: &M,
    names: &BTreeSet<&'static str>,
    budget: usize,
) -> BTreeMap<&'static str, Vec<usize>>
where
    M::State: Hash,
{
    let wanted: Vec<Property<M>> = model
        .properties()
        .into_iter()
        .filter(|p| p.expectation == Expectation::Always && names.contains(p.name))
        .collect();
    let mut found = BTreeMap::new();
    // Each node: the state, its parent's index and the action index taken
    // from the parent (init states: their own index and usize::MAX).
    let mut nodes: Vec<(M::State, usize, usize)> = Vec::new();
    let mut seen = HashSet::new();
    for (i, s) in model.init_states().into_iter().enumerate() {
        if seen.insert(fingerprint(&s)) {
            nodes.push((s, usize::MAX, i));
        }
    }
    let path_to = |nodes: &Vec<(M::State, usize, usize)>, mut at: usize| {
        let mut path = Vec::new();
        while nodes[at].1 != usize::MAX {
            path.push(nodes[at].2);
            at = nodes[at].1;
        }
        path.reverse();
        path
    };
    let mut actions = Vec::new();
    let mut next = 0;
    while next < nodes.len() && found.len() < wanted.len() {
        for p in &wanted {
            if !found.contains_key(p.name) && !(p.condition)(model, &nodes[next].0) {
                found.insert(p.name, path_to(&nodes, next));
            }
        }
        if nodes.len() < budget {
            model.actions(&nodes[next].0, &mut actions);
            for (k, action) in actions.drain(..).enumerate() {
                let Some(succ) = model.next_state(&nodes[next].0, action) else {
                    continue;
                };
                if model.within_boundary(&succ) && seen.insert(fingerprint(&succ)) {
                    nodes.push((succ, next, k));
                }
            }
        }
        next += 1;
    }
    found
}

/// Turns a path given as actions back into action indices.
pub fn action_indices<M: Model>(model: &M, actions: &[M::Action]) -> Option<Vec<usize>>
where
    M::Action: Clone + PartialEq,
{
    let mut state = model.init_states().into_iter().next()?;
    let mut offered = Vec::new();
    let mut out = Vec::new();
    for a in actions {
        offered.clear();
        model.actions(&state, &mut offered);
        let k = offered.iter().position(|o| o == a)?;
        out.push(k);
        state = model.next_state(&state, a.clone())?;
    }
    Some(out)
}

/// Why a list of action indices is not a path of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathError {
    /// 1-based step number.
    pub step: usize,
    pub index: usize,
    /// How many actions the state offered.
    pub offered: usize,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offered {
            0 => write!(
                f,
                "step {} does not exist: the state before it has no successor",
                self.step
            ),
            n => write!(
                f,
                "step {} takes action {}, but the state before it offers only {n} (0 to {})",
                self.step,
                self.index,
                n - 1
            ),
        }
    }
}

/// The states along a path (the initial one first) and the actions taken
/// between them: `states.len() == actions.len() + 1`.
pub type Walk<S, A> = (Vec<S>, Vec<A>);

/// Follows action indices from the (first) initial state.
pub fn follow<M: Model>(
    model: &M,
    indices: &[usize],
) -> Result<Walk<M::State, M::Action>, PathError>
where
    M::State: Clone,
    M::Action: Clone,
{
    let mut states = vec![model.init_states().into_iter().next().ok_or(PathError {
        step: 0,
        index: 0,
        offered: 0,
    })?];
    let mut taken = Vec::new();
    let mut offered = Vec::new();
    for (i, &k) in indices.iter().enumerate() {
        let last = states.last().expect("non-empty");
        offered.clear();
        model.actions(last, &mut offered);
        let err = PathError {
            step: i + 1,
            index: k,
            offered: offered.len(),
        };
        let action = offered.get(k).cloned().ok_or(err.clone())?;
        let next = model.next_state(last, action.clone()).ok_or(err)?;
        taken.push(action);
        states.push(next);
    }
    Ok((states, taken))
}
