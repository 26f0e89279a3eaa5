//! The shuttle pass: random and PCT schedules of three threads over
//! sequentially consistent memory. The shipped design holds on every
//! schedule, and every traced schedule replays through the spec; each
//! broken design's use-after-free is found, and shuttle prints the failing
//! schedule in a form `shuttle::replay` reruns.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_shuttle" CARGO_TARGET_DIR=/work/tgt/reference-shuttle
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test shuttle_qsbr`
#![cfg(cpyrt_shuttle)]

mod shuttle_common;

mod common;

use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cpyrt_reference::primitive::sync::Arc;
use cpyrt_reference::primitive::thread;
use cpyrt_reference::qsbr::{Config, Design, Domain, Published, Reclaim};
use cpyrt_spec::qsbr::{self as spec, Qsbr};
use shuttle::scheduler::Scheduler;
use shuttle::{Config as ShuttleConfig, Runner};
use shuttle_common::{KINDS, Kind};

/// Schedules per scheduler for the shipped design (three threads each).
///
/// Measured on the project's 2-core machine, release build: 5,000 random
/// and 5,000 PCT schedules per shipped-design model take 1.2 s + 0.9 s
/// (traced workload, every trace replayed), 0.6 s + 0.3 s (untraced
/// workload) and 0.3 s + 0.2 s (readers and writer). At these seeds the
/// twins are found on schedules 1336/10 (free before goal), 10/11
/// (quiescent inside read) and 1/3 (stale slot pointer), random/PCT. The
/// whole target runs in 3.5 s.
const SCHEDULES: usize = 5000;
/// Budget per scheduler for finding a broken design's bug; a run stops at
/// the first failing schedule.
const TWIN_SCHEDULES: usize = 20_000;
/// PCT's bug depth: how many priority changes a schedule may take. The
/// twins need up to four (reader, writer, reader, writer, reader).
const PCT_DEPTH: usize = 5;
/// Fixed seeds: the same schedules, and the same counterexample, every run.
const SEED: u64 = 0x00c0_ffee;

fn scheduler(kind: Kind, schedules: usize) -> Box<dyn Scheduler + Send> {
    shuttle_common::scheduler(kind, SEED, PCT_DEPTH, schedules)
}

/// Runs `model` on `SCHEDULES` schedules; returns how many ran.
fn check(kind: Kind, name: &str, model: impl Fn() + Send + Sync + 'static) -> usize {
    let start = Instant::now();
    let runs = Runner::new(scheduler(kind, SCHEDULES), ShuttleConfig::default()).run(model);
    eprintln!(
        "{name} ({kind:?}): {runs} schedules in {:.2?}",
        start.elapsed()
    );
    runs
}

/// Runs `model` until shuttle finds a schedule that panics with a
/// use-after-free (shuttle prints that schedule); returns on which
/// schedule it was found.
fn expect_uaf(kind: Kind, name: &str, model: impl Fn() + Send + Sync + 'static) -> usize {
    let start = Instant::now();
    let tried = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&tried);
    let found = catch_unwind(AssertUnwindSafe(|| {
        Runner::new(scheduler(kind, TWIN_SCHEDULES), ShuttleConfig::default()).run(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            model();
        })
    }))
    .expect_err("shuttle must find the broken design's use-after-free");
    let message = common::panic_message(found);
    let tried = tried.load(Ordering::Relaxed);
    eprintln!(
        "{name} ({kind:?}): found on schedule {tried} in {:.2?}: {message}",
        start.elapsed()
    );
    assert!(message.contains("use-after-free"), "{message}");
    tried
}

fn spec_config(design: Design) -> spec::Config {
    spec::Config {
        threads: 3,
        max_objects: 6,
        deferral_limit: 2,
        min_array_size: 1,
        design,
    }
}

fn workload() -> common::Workload {
    common::Workload {
        threads: 3,
        ops: 12,
        seed: SEED,
        replacements: 5,
    }
}

#[test]
fn shipped_design_holds_and_every_trace_replays() {
    for kind in KINDS {
        let runs = check(kind, "traced workload", || {
            let cfg = spec_config(Design::CPYTHON);
            let out = common::run(Config::from_spec(&cfg), workload());
            if let Err(e) = cpyrt_spec::replay::<Qsbr>(&cfg, &out.events) {
                panic!("trace left the spec: {e}\ntrace: {:?}", out.events);
            }
            assert_eq!(out.drops, out.published as usize);
        });
        assert_eq!(runs, SCHEDULES);
    }
}

#[test]
fn shipped_design_holds_untraced() {
    for kind in KINDS {
        let runs = check(kind, "untraced workload", || {
            let mut cfg = Config::from_spec(&spec_config(Design::CPYTHON));
            cfg.trace = false;
            let out = common::run(cfg, workload());
            assert_eq!(out.drops, out.published as usize);
        });
        assert_eq!(runs, SCHEDULES);
    }
}

/// An untraced configuration with ghost frees, every retirement advancing,
/// and no growth unless the model asks for it.
fn ghost(design: Design, min_array_size: usize) -> Config {
    let mut cfg = Config::from_spec(&spec_config(design));
    cfg.trace = false;
    cfg.deferral_limit = 1;
    cfg.min_array_size = min_array_size;
    // Under shuttle every design frees in ghost mode.
    assert_eq!(cfg.effective_reclaim(), Reclaim::Ghost);
    cfg
}

/// Quiescent states a misusing reader reports while holding the pointer.
const MISUSE_ROUNDS: usize = 3;

/// One writer and two readers. All three register before any runs (no
/// growth pause, which would hold the writer until the readers' quiescent
/// states and so close the window the bugs need).
fn readers_and_writer(cfg: Config, misuse: bool) {
    let domain = Domain::new(cfg);
    let cell = Arc::new(Published::new(&domain, 0u64));
    let mut writer = Domain::register(&domain, 0);
    let handles: Vec<_> = (1..=2u8)
        .map(|tid| {
            let mut reader = Domain::register(&domain, tid);
            let cell = Arc::clone(&cell);
            thread::spawn(move || {
                reader.attach();
                let mut guard = reader.read(&cell);
                black_box(*guard);
                if misuse {
                    // A long read section that keeps passing eval-breaker
                    // checks while it holds the pointer.
                    for _ in 0..MISUSE_ROUNDS {
                        guard.quiescent_state_inside_read();
                        black_box(*guard);
                    }
                }
                drop(guard);
                reader.quiescent_state();
                reader.process_delayed();
                reader.exit();
            })
        })
        .collect();
    writer.attach();
    for value in 1..=2 {
        writer.replace(&cell, value);
        writer.quiescent_state();
        writer.process_delayed();
    }
    writer.exit();
    for handle in handles {
        handle.join().unwrap();
    }
}

#[test]
fn shipped_design_holds_where_the_twins_break() {
    for kind in KINDS {
        let mut cfg = ghost(Design::CPYTHON, 4);
        cfg.deferral_limit = 1;
        let runs = check(kind, "readers and writer", move || {
            readers_and_writer(cfg.clone(), false)
        });
        assert_eq!(runs, SCHEDULES);
    }
}

#[test]
fn free_before_goal_is_found() {
    let mut design = Design::CPYTHON;
    design.free_waits_for_goal = false;
    for kind in KINDS {
        expect_uaf(kind, "free before goal", move || {
            readers_and_writer(ghost(design, 4), false)
        });
    }
}

#[test]
fn quiescent_inside_read_is_found() {
    let mut design = Design::CPYTHON;
    design.quiescent_outside_reads = false;
    for kind in KINDS {
        expect_uaf(kind, "quiescent inside read", move || {
            readers_and_writer(ghost(design, 4), true)
        });
    }
}

#[test]
fn stale_slot_pointer_is_found() {
    let mut design = Design::CPYTHON;
    design.reload_slot_under_mutex = false;
    for kind in KINDS {
        expect_uaf(kind, "stale slot pointer", move || {
            let domain = Domain::new(ghost(design, 1));
            let exiting = Domain::register(&domain, 0);
            let handles: Vec<_> = (1..=2u8)
                .map(|tid| {
                    let domain = Arc::clone(&domain);
                    thread::spawn(move || {
                        let mut t = Domain::register(&domain, tid);
                        t.attach();
                        t.quiescent_state();
                        t.exit();
                    })
                })
                .collect();
            exiting.exit();
            for handle in handles {
                handle.join().unwrap();
            }
        });
    }
}
