//! The shuttle pass for function versions: random and PCT schedules of
//! three threads (two callers, one of which makes a blocking call, and a
//! writer of `__code__` and `__defaults__`, pausing with the stop-the-world
//! runtime) over sequentially consistent memory. The shipped design holds on every
//! schedule and every traced schedule replays through the spec; each
//! broken design's torn read is found, and shuttle prints the failing
//! schedule in a form `shuttle::replay` reruns.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_shuttle" CARGO_TARGET_DIR=target/shuttle
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test shuttle_func_version`
#![cfg(cpyrt_shuttle)]

mod shuttle_common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cpyrt_reference::func_version::{Config, Op, Runtime, thread as handle};
use cpyrt_reference::primitive::thread;
use cpyrt_spec::func_version::{Attr, CallKind, Design, FuncVersion};
use cpyrt_spec::replay;
use shuttle::scheduler::Scheduler;
use shuttle::{Config as ShuttleConfig, Runner};
use shuttle_common::{KINDS, Kind};

/// Schedules per scheduler for the shipped design. Measured on the
/// project's 2-core machine (loaded), release build: 1,000 traced
/// schedules, each pause log replayed through the stop-the-world spec and
/// the derived events through the function-version spec, take 0.15 to
/// 0.9 s per scheduler; the twins are found within the first 25 schedules.
const SCHEDULES: usize = 1000;
/// Schedules a twin may take before the pass gives up on finding it.
const TWIN_SCHEDULES: usize = 5000;
/// PCT's bug depth.
const PCT_DEPTH: usize = 3;
/// Fixed seed: the same schedules, and the same counterexample, every run.
const SEED: u64 = 0x00c0_ffee;

fn scheduler(kind: Kind, schedules: usize) -> Box<dyn Scheduler + Send> {
    shuttle_common::scheduler(kind, SEED, PCT_DEPTH, schedules)
}

fn config(design: Design, trace: bool) -> Config {
    Config {
        threads: 3,
        last_version: 3,
        cache_size: 0,
        call: CallKind::General,
        design,
        trace,
    }
}

const CALLER: &[Op] = &[Op::Call(0), Op::Call(0), Op::Call(0)];
/// The second caller detaches around a blocking call between its calls.
const BLOCKING_CALLER: &[Op] = &[Op::Call(0), Op::Syscall, Op::Call(0), Op::Call(0)];
const WRITER: &[Op] = &[Op::SetCode(0), Op::Set(0, Attr::Defaults)];

/// Two callers and a writer; with tracing, the trace must replay.
fn model(design: Design, trace: bool) -> impl Fn() + Send + Sync + 'static {
    move || {
        let cfg = config(design, trace);
        let rt = Runtime::new(cfg.clone());
        let c1 = handle(&rt, 1);
        let w = handle(&rt, 2);
        let h1 = thread::spawn(move || c1.run(BLOCKING_CALLER));
        let h2 = thread::spawn(move || w.run(WRITER));
        assert_eq!(handle(&rt, 0).run(CALLER), None);
        assert_eq!(h1.join().unwrap(), None);
        assert_eq!(h2.join().unwrap(), None);
        if trace {
            let events = match rt.traces() {
                Ok(t) => t.events,
                Err(e) => panic!("the stop-the-world spec rejects the pause log: {e}"),
            };
            if let Err(e) = replay::<FuncVersion>(&cfg.spec(), &events) {
                panic!("the spec rejects a reference trace: {e}\n{events:?}");
            }
        }
    }
}

#[test]
fn shipped_design_holds_and_every_trace_replays() {
    for kind in KINDS {
        let start = Instant::now();
        let runs = Runner::new(scheduler(kind, SCHEDULES), ShuttleConfig::default())
            .run(model(Design::CPYTHON, true));
        eprintln!(
            "shipped ({kind:?}): {runs} schedules in {:.2?}",
            start.elapsed()
        );
        assert_eq!(runs, SCHEDULES);
    }
}

fn expect_torn(kind: Kind, name: &str, design: Design) -> usize {
    let start = Instant::now();
    let tried = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&tried);
    let m = model(design, false);
    let found = catch_unwind(AssertUnwindSafe(|| {
        Runner::new(scheduler(kind, TWIN_SCHEDULES), ShuttleConfig::default()).run(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            m();
        })
    }))
    .expect_err("shuttle must find the broken design's torn read");
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
    assert!(message.contains("guarded_reads_match_version"), "{message}");
    tried
}

#[test]
fn without_the_pause_a_guarded_call_reads_the_new_attributes() {
    for kind in KINDS {
        expect_torn(
            kind,
            "no-pause",
            Design {
                stop_the_world: false,
                ..Design::CPYTHON
            },
        );
    }
}

#[test]
fn a_safe_point_after_the_guard_lets_the_change_in() {
    for kind in KINDS {
        expect_torn(
            kind,
            "safe-point-after-guard",
            Design {
                no_safe_point_after_guard: false,
                ..Design::CPYTHON
            },
        );
    }
}
