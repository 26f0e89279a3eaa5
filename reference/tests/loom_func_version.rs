//! The loom pass for function versions: two threads, every interleaving
//! within the preemption bound, over loom's model of C11 orderings, with
//! tracing off so no recorder lock adds happens-before edges. A reader
//! specializes its call site and runs the specialized call; a writer
//! assigns `__code__`, stopping the world with the stop-the-world
//! runtime's pause; both run their programs on the instruction loop. The shipped design must hold; the design without
//! the pause (gh-115999) and the design with a safe point after the guard
//! must each produce a torn read.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_loom" CARGO_TARGET_DIR=target/loom
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test loom_func_version`
#![cfg(cpyrt_loom)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cpyrt_reference::func_version::{Config, Op, Runtime, thread as handle};
use cpyrt_reference::primitive::thread;
use cpyrt_spec::func_version::{CallKind, Design};
use loom::model::Builder;

/// Preemption bound (`LOOM_MAX_PREEMPTIONS` overrides). The pause is the
/// stop-the-world runtime's, whose locks and parking make the models
/// larger than the old minimal pause's. Measured on the project's 2-core
/// machine (loaded), release build: the shipped design takes 159
/// executions (0.02 s) at 2, 1,480 (0.3 s) at 3 and 12,957 (3.0 s) at 4;
/// the twins are found in at most 0.45 s at each of those bounds.
const PREEMPTION_BOUND: usize = 4;
/// Branch points one execution may take.
const MAX_BRANCHES: usize = 50_000;

fn builder() -> Builder {
    let mut b = Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(PREEMPTION_BOUND);
    }
    b.max_branches = MAX_BRANCHES;
    b
}

fn config(design: Design) -> Config {
    Config {
        threads: 2,
        last_version: 3,
        cache_size: 0,
        call: CallKind::ExactArgs,
        design,
        trace: false,
    }
}

const READER: &[Op] = &[Op::Call(0), Op::Call(0)];
const WRITER: &[Op] = &[Op::SetCode(0)];

/// Reader on thread 0 (the model's main thread), writer on thread 1.
fn model(design: Design) -> impl Fn() + Send + Sync + 'static {
    move || {
        let rt = Runtime::new(config(design));
        let w = handle(&rt, 1);
        let h = thread::spawn(move || w.run(WRITER));
        assert_eq!(handle(&rt, 0).run(READER), None);
        assert_eq!(h.join().unwrap(), None);
    }
}

#[test]
fn shipped_design_holds() {
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&runs);
    let start = Instant::now();
    let m = model(Design::CPYTHON);
    builder().check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        m();
    });
    let runs = runs.load(Ordering::Relaxed);
    eprintln!(
        "shipped design: {runs} executions in {:.2?}",
        start.elapsed()
    );
    assert!(runs > 1, "loom explored a single execution");
}

/// Explores a twin, expecting a torn read; returns the panic message.
fn expect_torn(name: &str, design: Design) -> String {
    let start = Instant::now();
    let found = catch_unwind(AssertUnwindSafe(|| builder().check(model(design))))
        .expect_err("loom must find the broken design's torn read");
    let message = found
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| found.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    eprintln!("{name}: found in {:.2?}: {message}", start.elapsed());
    assert!(message.contains("guarded_reads_match_version"), "{message}");
    message
}

#[test]
fn without_the_pause_a_guarded_call_reads_the_new_code() {
    expect_torn(
        "no-pause",
        Design {
            stop_the_world: false,
            ..Design::CPYTHON
        },
    );
}

#[test]
fn a_safe_point_after_the_guard_lets_the_change_in() {
    expect_torn(
        "safe-point-after-guard",
        Design {
            no_safe_point_after_guard: false,
            ..Design::CPYTHON
        },
    );
}
