//! The GIL under loom: every interleaving of two GIL threads (plus the
//! timer thread that stands for time passing) within a preemption bound,
//! over loom's model of C11 orderings. Tracing is off, so no recorder lock
//! hides an ordering bug. The ghost checks (`mutual_exclusion`,
//! `drop_only_when_locked`, `tstate_bound_once`, `no_self_block`,
//! `no_use_after_free`) panic with the invariant's name; loom itself
//! reports a deadlock when every thread is blocked.
//!
//! Timed waits: loom's `wait_timeout` never times out, so the timer thread
//! calls `Runtime::expire_waiters` [`TICKS`] times: each call ends the wait
//! of every thread then waiting on `cond`, at whatever point of the other
//! threads loom schedules it. Waits that begin after the last tick end only
//! by a signal.
//!
//! Not here: the `final-release-tail` twin (gh-104341). Its failure needs
//! the worker to stay descheduled between its final unlock and the tail's
//! read while the other thread takes the GIL, finalizes, releases and
//! deletes the interpreter; loom's bounded search does not reach that
//! schedule at this bound (345,738 executions at bound 3, none with the
//! tail after the deletion; at bound 5 the search had not finished after
//! 25 minutes). The shuttle pass finds it on its first PCT schedule.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_loom" CARGO_TARGET_DIR=/work/tgt/gil-loom
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test loom_gil`
#![cfg(cpyrt_loom)]

mod gil_common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use cpyrt_reference::gil::{Config, Design, RunLimits};
use gil_common::*;
use loom::model::Builder;

/// Preemption bound (`LOOM_MAX_PREEMPTIONS` overrides).
///
/// Measured at bound 3 on the project's 2-core machine (shared with other
/// jobs), release build, two GIL threads plus the timer:
///
/// | test | executions | time |
/// |------|-----------:|-----:|
/// | handoff | 99,556 | 4.6 s |
/// | no-force-switching | 67,431 | 3.1 s |
/// | clear-under-mutex (finalize) | 383,359 | 27.9 s |
/// | end-interpreter | 330,408 | 22.2 s |
/// | detached | 232,911 | 28.6 s |
/// | gilstate (one thread) | 154 | 0.01 s |
///
/// Found: waiter-leaves-request and the shipped finalize window (deadlock)
/// in 0.8 s each, shared-detached-tstate in 0.3 s, alloc-under-head-lock
/// at once.
const PREEMPTION_BOUND: usize = 3;

/// Switch intervals the timer lets pass: two are needed for a waiter to
/// ask for a drop and later find it must exit.
const TICKS: usize = 2;

fn builder() -> Builder {
    let mut builder = Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTION_BOUND);
    }
    builder.max_branches = 50_000;
    builder
}

/// One pass through each program, one eval-breaker check per `Run`.
const ONCE: RunLimits = RunLimits {
    checks_per_run: 1,
    rounds: 1,
    spin: 0,
};

fn how() -> Run {
    Run {
        limits: ONCE,
        ticks: TICKS,
        ..Run::default()
    }
}

/// Explores `cfg`; returns the executions.
fn holds(name: &str, cfg: Config) -> usize {
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&runs);
    let start = Instant::now();
    builder().check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        run(&cfg, how());
    });
    let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{name}: holds, {runs} executions in {:.2?}",
        start.elapsed()
    );
    assert!(runs > 1, "{name}: loom explored one execution only");
    runs
}

/// Explores `cfg`, expecting loom to find a failure whose message starts
/// with `expected`; returns the message.
fn fails(name: &str, cfg: Config, expected: &str) -> String {
    let start = Instant::now();
    let found = catch_unwind(AssertUnwindSafe(|| {
        builder().check(move || {
            run(&cfg, how());
        })
    }))
    .expect_err("loom must find the broken design's failure");
    let message = panic_message(found);
    eprintln!("{name}: found in {:.2?}: {message}", start.elapsed());
    assert!(message.starts_with(expected), "{name}: {message}");
    message
}

fn with(design: impl FnOnce(&mut Design)) -> Design {
    let mut d = Design::CPYTHON;
    design(&mut d);
    d
}

#[test]
fn handoff_holds() {
    holds("handoff", handoff(2, Design::CPYTHON));
}

#[test]
fn handoff_without_forced_switching_is_still_safe() {
    holds(
        "no-force-switching",
        handoff(2, with(|d| d.force_switching = false)),
    );
}

#[test]
fn finalize_waiter_leaves_request_deadlocks() {
    fails(
        "waiter-leaves-request",
        finalize(2, with(|d| d.exiting_waiter_clears_request = false)),
        "deadlock",
    );
}

#[test]
fn finalize_in_the_shipped_design_deadlocks_in_the_window() {
    // What the model found: the waiter clears its request after unlocking
    // gil->mutex, and the holder reads it in between.
    fails("finalize", finalize(2, Design::CPYTHON), "deadlock");
}

#[test]
fn finalize_clearing_under_the_mutex_holds() {
    holds(
        "clear-under-mutex",
        finalize(2, with(|d| d.clear_request_before_unlock = true)),
    );
}

#[test]
fn end_interpreter_holds() {
    holds("end-interpreter", end_interpreter(2, Design::CPYTHON));
}

#[test]
fn gilstate_holds() {
    // One C thread: the hook's nested Ensure/Release against the outer
    // creation, with the timer. Two threads cost 6.1 M executions (379 s)
    // at bound 3; the shuttle pass runs three.
    holds("gilstate", gilstate(1, Design::CPYTHON));
}

#[test]
fn alloc_under_head_lock_blocks_on_itself() {
    fails(
        "alloc-under-head-lock",
        gilstate(1, with(|d| d.alloc_before_head_lock = false)),
        "no_self_block",
    );
}

#[test]
fn detached_holds() {
    holds("detached", detached(2, Design::CPYTHON));
}

#[test]
fn shared_detached_tstate_is_bound_twice() {
    fails(
        "shared-detached-tstate",
        detached(2, with(|d| d.tstate_per_os_thread = false)),
        "tstate_bound_once",
    );
}
