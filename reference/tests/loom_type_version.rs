//! The loom pass for type versions: two threads, every interleaving within
//! the preemption bound, over loom's model of C11 orderings, with tracing
//! off so no recorder lock adds happens-before edges. Each workload races
//! lock-free readers (method-cache hits and `LOAD_ATTR` guards) against a
//! modification or a second slow path. The shipped design answers every
//! lookup coherently on every workload; each broken design answers one
//! with a stale value on its workload, which the runtime's
//! `method_cache_coherent` check turns into a failing execution.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_loom" CARGO_TARGET_DIR=target/loom
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test loom_type_version`
#![cfg(cpyrt_loom)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cpyrt_reference::primitive::thread;
use cpyrt_reference::type_version::{Config, Op, Runtime, thread as handle};
use cpyrt_spec::type_version::{Config as SpecConfig, Design, TypeDef};
use loom::model::Builder;

/// Preemption bound (`LOOM_MAX_PREEMPTIONS` overrides). Measured on the
/// project's 2-core machine, release build: at 3 the shipped design takes
/// 14, 11, 22 and 957 executions on the four workloads (0.07 s in all),
/// and each twin is found in under a millisecond. On these workloads loom
/// never let a read return another thread's newer store unless a
/// happens-before edge or a shared read-modify-write led to it (reading
/// the older store is also a legal execution, so the shipped runs lose
/// nothing), so each twin's workload gives the reader such an edge (the setup before the spawn, or a slow path through
/// the type lock after the modification).
const PREEMPTION_BOUND: usize = 3;
/// Branch points one execution may take.
const MAX_BRANCHES: usize = 20_000;

const A: u8 = 1;
const B: u8 = 2;
const S: u8 = 3;

fn builder() -> Builder {
    let mut b = Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(PREEMPTION_BOUND);
    }
    b.max_branches = MAX_BRANCHES;
    b
}

fn ty(name: &str, bases: &[u8], immutable: bool) -> TypeDef {
    TypeDef {
        name: name.into(),
        bases: bases.to_vec(),
        immutable,
        interp: 0,
    }
}

/// The model's hierarchy and bounds: `object`, `S(object)` immutable,
/// `A(object)`, `B(A)` heap; one global tag, heap tags 2 to 4.
fn config(design: Design) -> Config {
    Config {
        spec: SpecConfig {
            threads: 2,
            interps: 1,
            types: vec![
                ty("object", &[], true),
                ty("A", &[0], false),
                ty("B", &[1], false),
                ty("S", &[0], true),
            ],
            global_max: 1,
            interp_last: 4,
            max_versions_per_class: 2,
            max_modifications: 2,
            cache_entries: 2,
            design,
        },
        trace: false,
    }
}

/// A workload: operations thread 0 runs before thread 1 starts, then each
/// thread's script.
#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    setup: &'static [Op],
    t0: &'static [Op],
    t1: &'static [Op],
}

/// A reader of `B` through its `LOAD_ATTR` site against a modification of
/// its base: the subclass-before-base race. The lookup of `S` between the
/// reads takes the type lock (the global range is spent, so `S` is never
/// cached), which orders the modification before the second read.
const READ_B_MODIFY_A: Workload = Workload {
    name: "read B / modify A",
    setup: &[],
    t0: &[Op::LoadAttr(B), Op::Lookup(S), Op::LoadAttr(B)],
    t1: &[Op::Modify(A)],
};

/// After `A` was modified and tagged, one thread tags the static `S`
/// while the other reads `A` through the cache: the global-range race.
const TAG_S_READ_A: Workload = Workload {
    name: "tag S / read A",
    setup: &[Op::Modify(A), Op::Lookup(A)],
    t0: &[Op::Lookup(S)],
    t1: &[Op::LoadAttr(A), Op::LoadAttr(A)],
};

/// After `A` and `B` were tagged, filled and invalidated, both threads
/// look `B` up: one re-tags it (the counter at its end) while the other
/// reads the cache before the fill: the wrapping-counter race.
const RETAG_B_TWICE: Workload = Workload {
    name: "retag B / read B",
    setup: &[Op::Lookup(A), Op::Lookup(B), Op::Modify(A)],
    t0: &[Op::Lookup(B)],
    t1: &[Op::Lookup(B)],
};

/// Both threads read `B` through the cache and the guard while one of
/// them modifies `A` in between (the shipped design's largest workload).
const MIXED: Workload = Workload {
    name: "mixed",
    setup: &[],
    t0: &[Op::LoadAttr(B), Op::LoadAttr(B), Op::LoadAttr(B)],
    t1: &[Op::Lookup(B), Op::Modify(A), Op::LoadAttr(B)],
};

const WORKLOADS: [Workload; 4] = [READ_B_MODIFY_A, TAG_S_READ_A, RETAG_B_TWICE, MIXED];

fn model(design: Design, w: Workload) -> impl Fn() + Send + Sync + 'static {
    move || {
        let rt = Runtime::new(config(design)).unwrap();
        let mut t0 = handle(&rt, 0);
        t0.run(w.setup);
        let mut t1 = handle(&rt, 1);
        let h = thread::spawn(move || t1.run(w.t1));
        t0.run(w.t0);
        h.join().unwrap();
    }
}

#[test]
fn shipped_design_holds() {
    for w in WORKLOADS {
        let runs = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&runs);
        let start = Instant::now();
        let m = model(Design::CPYTHON, w);
        builder().check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            m();
        });
        let runs = runs.load(Ordering::Relaxed);
        eprintln!(
            "shipped design, {}: {runs} executions in {:.2?}",
            w.name,
            start.elapsed()
        );
        assert!(runs > 1, "loom explored a single execution");
    }
}

/// Explores a twin on its workload, expecting a stale answer.
fn expect_stale(name: &str, design: Design, w: Workload) {
    let start = Instant::now();
    let found = catch_unwind(AssertUnwindSafe(|| builder().check(model(design, w))))
        .expect_err("loom must find the broken design's stale answer");
    let message = found
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| found.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    eprintln!("{name}: found in {:.2?}: {message}", start.elapsed());
    assert!(message.contains("method_cache_coherent"), "{message}");
}

#[test]
fn subclass_before_base_keeps_a_stale_guard_passing() {
    expect_stale(
        "subclass-before-base",
        Design {
            bases_first: false,
            ..Design::CPYTHON
        },
        READ_B_MODIFY_A,
    );
}

#[test]
fn an_unbounded_global_range_answers_from_a_heap_type_entry() {
    expect_stale(
        "global-range-unbounded",
        Design {
            global_bound_checked: false,
            ..Design::CPYTHON
        },
        TAG_S_READ_A,
    );
}

#[test]
fn a_wrapping_counter_revives_a_dead_entry() {
    expect_stale(
        "wrapping-counter",
        Design {
            interp_counter_saturates: false,
            ..Design::CPYTHON
        },
        RETAG_B_TWICE,
    );
}
