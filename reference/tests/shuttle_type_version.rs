//! The shuttle pass for type versions: random and PCT schedules of three
//! threads (readers through the method cache and `LOAD_ATTR` guards, a
//! modifier, and slow paths that tag types) over sequentially consistent
//! memory. The shipped design answers every lookup coherently on every
//! schedule of every workload, and every traced schedule replays through
//! the spec; each broken design's stale answer is found on its workload,
//! and shuttle prints the failing schedule in a form `shuttle::replay`
//! reruns.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_shuttle" CARGO_TARGET_DIR=target/shuttle
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test shuttle_type_version`
#![cfg(cpyrt_shuttle)]

mod shuttle_common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cpyrt_reference::primitive::thread;
use cpyrt_reference::type_version::{Config, Op, Runtime, thread as handle};
use cpyrt_spec::replay;
use cpyrt_spec::type_version::{Config as SpecConfig, Design, TypeDef, TypeVersion};
use shuttle::scheduler::Scheduler;
use shuttle::{Config as ShuttleConfig, Runner};
use shuttle_common::{KINDS, Kind};

/// Schedules per scheduler and workload for the shipped design. Measured
/// on the project's 2-core machine, release build: 2,000 traced and
/// replayed schedules take 0.13 to 0.21 s per workload and scheduler
/// (1.0 s in all); every twin is found within its first 4 schedules.
const SCHEDULES: usize = 2000;
/// Schedules a twin may take before the pass gives up on finding it.
const TWIN_SCHEDULES: usize = 5000;
/// PCT's bug depth.
const PCT_DEPTH: usize = 3;
/// Fixed seed: the same schedules, and the same counterexample, every run.
const SEED: u64 = 0x00c0_ffee;

const A: u8 = 1;
const B: u8 = 2;
const S: u8 = 3;

fn scheduler(kind: Kind, schedules: usize) -> Box<dyn Scheduler + Send> {
    shuttle_common::scheduler(kind, SEED, PCT_DEPTH, schedules)
}

fn ty(name: &str, bases: &[u8], immutable: bool) -> TypeDef {
    TypeDef {
        name: name.into(),
        bases: bases.to_vec(),
        immutable,
        interp: 0,
    }
}

/// The model's hierarchy and bounds at three threads.
fn config(design: Design, trace: bool) -> Config {
    Config {
        spec: SpecConfig {
            threads: 3,
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
        trace,
    }
}

/// Operations thread 0 runs before the others start, then one script per
/// thread.
#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    setup: &'static [Op],
    scripts: [&'static [Op]; 3],
}

/// Readers of `B` against a modification of its base.
const READ_B_MODIFY_A: Workload = Workload {
    name: "read B / modify A",
    setup: &[],
    scripts: [
        &[Op::LoadAttr(B), Op::LoadAttr(B)],
        &[Op::Modify(A), Op::LoadAttr(B)],
        &[Op::Lookup(B), Op::Lookup(S)],
    ],
};

/// `S` tagged while `A`, modified and re-tagged, is read.
const TAG_S_READ_A: Workload = Workload {
    name: "tag S / read A",
    setup: &[Op::Modify(A)],
    scripts: [
        &[Op::Lookup(S), Op::Lookup(S)],
        &[Op::LoadAttr(A), Op::LoadAttr(A)],
        &[Op::Lookup(A), Op::LoadAttr(S)],
    ],
};

/// `B` re-tagged with the heap counter at its end while others read it.
const RETAG_B: Workload = Workload {
    name: "retag B",
    setup: &[Op::Lookup(A), Op::Lookup(B), Op::Modify(A)],
    scripts: [
        &[Op::Lookup(B)],
        &[Op::Lookup(B), Op::Lookup(B)],
        &[Op::LoadAttr(B), Op::LoadAttr(B)],
    ],
};

const WORKLOADS: [Workload; 3] = [READ_B_MODIFY_A, TAG_S_READ_A, RETAG_B];

/// Three threads on `w`; with tracing, the trace must replay.
fn model(design: Design, trace: bool, w: Workload) -> impl Fn() + Send + Sync + 'static {
    move || {
        let cfg = config(design, trace);
        let rt = Runtime::new(cfg.clone()).unwrap();
        let mut t0 = handle(&rt, 0);
        t0.run(w.setup);
        let hs: Vec<_> = (1..3)
            .map(|k| {
                let mut t = handle(&rt, k);
                let ops = w.scripts[k];
                thread::spawn(move || t.run(ops))
            })
            .collect();
        t0.run(w.scripts[0]);
        for h in hs {
            h.join().unwrap();
        }
        if trace {
            let events = rt.trace();
            if let Err(e) = replay::<TypeVersion>(&cfg.spec, &events) {
                panic!("the spec rejects a reference trace: {e}\n{events:?}");
            }
        }
    }
}

#[test]
fn shipped_design_holds_and_every_trace_replays() {
    for kind in KINDS {
        for w in WORKLOADS {
            let start = Instant::now();
            let runs = Runner::new(scheduler(kind, SCHEDULES), ShuttleConfig::default())
                .run(model(Design::CPYTHON, true, w));
            eprintln!(
                "shipped ({kind:?}), {}: {runs} schedules in {:.2?}",
                w.name,
                start.elapsed()
            );
            assert_eq!(runs, SCHEDULES);
        }
    }
}

fn expect_stale(kind: Kind, name: &str, design: Design, w: Workload) -> usize {
    let start = Instant::now();
    let tried = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&tried);
    let m = model(design, false, w);
    let found = catch_unwind(AssertUnwindSafe(|| {
        Runner::new(scheduler(kind, TWIN_SCHEDULES), ShuttleConfig::default()).run(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            m();
        })
    }))
    .expect_err("shuttle must find the broken design's stale answer");
    let message = found
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| found.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let tried = tried.load(Ordering::Relaxed);
    eprintln!(
        "{name} ({kind:?}): found on schedule {tried} in {:.2?}: {message}",
        start.elapsed()
    );
    assert!(message.contains("method_cache_coherent"), "{message}");
    tried
}

#[test]
fn subclass_before_base_keeps_a_stale_entry_valid() {
    for kind in KINDS {
        expect_stale(
            kind,
            "subclass-before-base",
            Design {
                bases_first: false,
                ..Design::CPYTHON
            },
            READ_B_MODIFY_A,
        );
    }
}

#[test]
fn an_unbounded_global_range_answers_from_a_heap_type_entry() {
    for kind in KINDS {
        expect_stale(
            kind,
            "global-range-unbounded",
            Design {
                global_bound_checked: false,
                ..Design::CPYTHON
            },
            TAG_S_READ_A,
        );
    }
}

#[test]
fn a_wrapping_counter_revives_a_dead_entry() {
    for kind in KINDS {
        expect_stale(
            kind,
            "wrapping-counter",
            Design {
                interp_counter_saturates: false,
                ..Design::CPYTHON
            },
            RETAG_B,
        );
    }
}
