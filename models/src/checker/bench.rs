//! The runs `cargo xtask bench` times, and a counting allocator to measure
//! their memory.
//!
//! Each function runs QSBR's base design at a thread count and returns the
//! state count, the time and, when the calling binary installed
//! [`CountingAlloc`] as its global allocator, the peak heap bytes of the run
//! per unique state. Compare runs by ratios; absolute figures depend on the
//! machine.
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: cpyrt_models::checker::bench::CountingAlloc =
//!     cpyrt_models::checker::bench::CountingAlloc;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use cpyrt_spec::qsbr::{Design, Qsbr};
use stateright::{Checker, Model};

use super::graph::{DEFAULT_MAX_STATES, StateGraph};
use super::properties::check_properties;
use super::qsbr::HOOKS;
use crate::spec_model::SpecModel;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting live and peak heap bytes.
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's layout and
// pointer unchanged; the counters are plain atomics that do not allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grow(new_size);
        }
        p
    }
}

fn grow(size: usize) {
    ACTIVE.store(true, Ordering::Relaxed);
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// Live heap bytes, if [`CountingAlloc`] is the global allocator.
pub fn current_bytes() -> Option<usize> {
    ACTIVE
        .load(Ordering::Relaxed)
        .then(|| CURRENT.load(Ordering::Relaxed))
}

/// Runs `f` and returns its result with the peak heap bytes above the
/// level at its start (`None` without [`CountingAlloc`]).
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Option<usize>) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (out, ACTIVE.load(Ordering::Relaxed).then_some(peak))
}

/// One timed run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchRun {
    pub name: &'static str,
    pub threads: usize,
    pub unique_states: usize,
    pub seconds: f64,
    /// Peak heap bytes of the run divided by its unique states.
    pub peak_bytes_per_state: Option<f64>,
    /// What the run found, in a few words (for a sanity check of the line).
    pub outcome: String,
}

fn model(threads: usize) -> SpecModel<Qsbr> {
    SpecModel::new(crate::qsbr::config(threads, Design::CPYTHON))
}

fn run(name: &'static str, threads: usize, f: impl FnOnce() -> (usize, String)) -> BenchRun {
    let start = Instant::now();
    let ((unique_states, outcome), peak) = measure(f);
    BenchRun {
        name,
        threads,
        unique_states,
        seconds: start.elapsed().as_secs_f64(),
        peak_bytes_per_state: peak.map(|b| b as f64 / unique_states.max(1) as f64),
        outcome,
    }
}

/// Safety only, with stateright's BFS (one worker).
pub fn qsbr_safety_bfs(threads: usize) -> BenchRun {
    run("safety (stateright bfs)", threads, || {
        let checker = model(threads).checker().threads(1).spawn_bfs().join();
        let failed = model(threads)
            .properties()
            .iter()
            .filter(|p| p.expectation == stateright::Expectation::Always)
            .filter(|p| checker.discovery(p.name).is_some())
            .count();
        (
            checker.unique_state_count(),
            format!("{failed} always-properties fail"),
        )
    })
}

/// Safety on the state graph (graph build included).
pub fn qsbr_safety_graph(threads: usize) -> BenchRun {
    run("safety (graph)", threads, || {
        let m = model(threads);
        let g = StateGraph::build_compact(&m, DEFAULT_MAX_STATES).expect("fits the cap");
        let failed = check_properties(&m, &g)
            .expect("checks run")
            .iter()
            .filter(|r| r.outcome.is_failure())
            .count();
        (g.len(), format!("{failed} properties fail"))
    })
}

/// Safety and liveness under the declared fairness (graph build included).
pub fn qsbr_liveness(threads: usize) -> BenchRun {
    run("safety + liveness (graph)", threads, || {
        let m = model(threads);
        let g = StateGraph::build_compact(&m, DEFAULT_MAX_STATES).expect("fits the cap");
        let failed = check_properties(&m, &g)
            .expect("checks run")
            .iter()
            .filter(|r| r.outcome.is_failure())
            .count();
        let live = HOOKS
            .liveness(&m, &g, &HOOKS.fairness())
            .expect("liveness runs");
        let holds = live.iter().filter(|l| l.holds).count();
        (
            g.len(),
            format!("{failed} safety fail, {holds}/{} liveness hold", live.len()),
        )
    })
}

/// Safety on the symmetry-reduced graph.
pub fn qsbr_symmetry(threads: usize) -> BenchRun {
    run("safety (graph, symmetry)", threads, || {
        let m = model(threads);
        let g = HOOKS
            .graph(&m, DEFAULT_MAX_STATES, true)
            .expect("fits the cap");
        let failed = check_properties(&m, &g)
            .expect("checks run")
            .iter()
            .filter(|r| r.outcome.is_failure())
            .count();
        (g.len(), format!("{failed} properties fail"))
    })
}

/// Every run at `threads`, in the order the bench prints them.
pub fn qsbr_all(threads: usize) -> Vec<BenchRun> {
    vec![
        qsbr_safety_bfs(threads),
        qsbr_safety_graph(threads),
        qsbr_liveness(threads),
        qsbr_symmetry(threads),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::properties::Outcome;

    type M = SpecModel<Qsbr>;

    fn key(o: &Outcome<M>) -> (u8, usize, Vec<usize>) {
        let steps = |t: &crate::checker::trace::Trace<M>| {
            t.steps.iter().map(|s| s.action_index).collect::<Vec<_>>()
        };
        match o {
            Outcome::Holds => (0, 0, vec![]),
            Outcome::Violated(t) => (1, t.init_index, steps(t)),
            Outcome::Reached(t) => (2, t.init_index, steps(t)),
            Outcome::Unreached => (3, 0, vec![]),
            Outcome::Never(l) => (4, 0, l.indices()),
        }
    }

    /// The compact graph (no stored state) gives the same graph, states in
    /// the same order, and the same property, liveness and coverage results
    /// as the graph that keeps every state, on every QSBR variant.
    #[test]
    fn compact_graph_matches_full_graph() {
        for v in crate::qsbr::VARIANTS {
            let m = SpecModel::new((v.config)(2));
            let full = StateGraph::build(&m, DEFAULT_MAX_STATES).unwrap();
            let compact = StateGraph::build_compact(&m, DEFAULT_MAX_STATES).unwrap();
            assert!(full.keeps_states() && !compact.keeps_states());
            assert_eq!(full.len(), compact.len(), "{}", v.name);
            assert_eq!(full.edge_count(), compact.edge_count());
            assert_eq!(full.depth(), compact.depth());
            assert_eq!(full.generated(), compact.generated());
            let mut n = 0;
            compact.for_each_state(&m, |id, s| {
                assert_eq!(s, full.state(id), "{} state {id}", v.name);
                n += 1;
            });
            assert_eq!(n, full.len());
            let a: Vec<_> = check_properties(&m, &full).unwrap();
            let b: Vec<_> = check_properties(&m, &compact).unwrap();
            let ka: Vec<_> = a.iter().map(|r| (r.name, key(&r.outcome))).collect();
            let kb: Vec<_> = b.iter().map(|r| (r.name, key(&r.outcome))).collect();
            assert_eq!(ka, kb, "{}", v.name);
            let fairness = HOOKS.fairness();
            let la = HOOKS.liveness(&m, &full, &fairness).unwrap();
            let lb = HOOKS.liveness(&m, &compact, &fairness).unwrap();
            assert_eq!(
                serde_json::to_string(&la).unwrap(),
                serde_json::to_string(&lb).unwrap(),
                "{}",
                v.name
            );
            assert_eq!(HOOKS.coverage(&m, &full), HOOKS.coverage(&m, &compact));
        }
    }
}
