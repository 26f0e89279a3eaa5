//! The loom pass for stop-the-world: every interleaving of two threads
//! (three for gh-118332, which needs them) within a preemption bound, over
//! loom's model of C11 orderings. Tracing is off, so no recorder lock adds
//! synchronization. The shipped designs (both lock orders) must finish
//! every execution with every invariant check passing; each broken design
//! must fail: a deadlock (loom reports every thread blocked) or a failed
//! invariant check, whose message names the spec property.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_loom" CARGO_TARGET_DIR=/work/tgt/stw/loom
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test loom_stw`
#![cfg(cpyrt_loom)]

mod stw_common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cpyrt_reference::stw::{Design, Op, Runtime};
use loom::model::Builder;
use stw_common::*;

/// Preemption bound of the two-thread models (`LOOM_MAX_PREEMPTIONS`
/// overrides both bounds).
///
/// Measured on the project's 2-core machine, release build, invariant
/// checks on: executions of the seven shipped-design models (hand-off,
/// two requesters, creation, finalization, lock in pause, exit in pause,
/// syscall in pause), per lock order (both orders give the same counts),
/// and the time for both orders.
///
/// | bound | executions per model                              | time  |
/// |-------|---------------------------------------------------|-------|
/// | 2     | 137, 553, 299, 338, 190, 84, 269                  | 0.3 s |
/// | 3     | 898, 5572, 2195, 2769, 1288, 446, 2142            | 2.6 s |
/// | 4     | 4979, 44831, 12826, 16421, 7458, 2080, 12972      | 13 s  |
///
/// Every twin is found in under 0.2 s at each bound.
const PREEMPTION_BOUND: usize = 4;
/// Preemption bound of the three-thread model (gh-118332's programs on
/// the shipped design): 5,326 executions in 0.6 s at 2; 187,521 in 24 s
/// at 3; 4,587,322 in 495 s at 4. The twin's deadlock is found at 2.
const THREE_THREAD_BOUND: usize = 2;
/// Branch points one execution may take.
const MAX_BRANCHES: usize = 50_000;

fn builder() -> Builder {
    builder_with(PREEMPTION_BOUND)
}

fn builder_with(bound: usize) -> Builder {
    let mut builder = Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(bound);
    }
    builder.max_branches = MAX_BRANCHES;
    builder
}

/// A model: `programs` run under `design` in `interps` interpreters.
fn model(
    interps: u8,
    design: Design,
    programs: fn() -> Vec<Program>,
) -> impl Fn() + Send + Sync + 'static {
    move || {
        let programs = programs();
        let rt = Runtime::new(config(interps, &programs, design, false));
        run(&rt, programs);
    }
}

/// Explores `model` and returns how many executions loom ran.
fn explore(name: &str, model: impl Fn() + Send + Sync + 'static) -> usize {
    explore_with(builder(), name, model)
}

fn explore_with(builder: Builder, name: &str, model: impl Fn() + Send + Sync + 'static) -> usize {
    let runs = StdArc::new(AtomicUsize::new(0));
    let counter = StdArc::clone(&runs);
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    let runs = runs.load(Ordering::Relaxed);
    eprintln!("{name}: {runs} executions in {:.2?}", start.elapsed());
    runs
}

/// Explores `model`, expecting loom to find a failing execution whose
/// message contains `needle`; returns the message.
fn expect_failure(name: &str, needle: &str, model: impl Fn() + Send + Sync + 'static) -> String {
    let start = Instant::now();
    let found = catch_unwind(AssertUnwindSafe(|| builder().check(model)))
        .expect_err("loom must find the broken design's failure");
    let message = panic_message(found);
    eprintln!("{name}: found in {:.2?}: {message}", start.elapsed());
    assert!(
        message.contains(needle),
        "{name}: expected '{needle}', got: {message}"
    );
    message
}

/// Set in the child process that runs a deadlocking model.
const CHILD: &str = "CPYRT_STW_LOOM_CHILD";

/// Expects loom to report a deadlock in `model`. loom reports one by
/// panicking inside a thread's cleanup, which aborts the process, so the
/// model runs in a child process (this test binary, running only `test`)
/// and the parent reads loom's report from its stderr.
fn expect_deadlock(test: &str, name: &str, model: impl Fn() + Send + Sync + 'static) {
    if std::env::var_os(CHILD).is_some() {
        builder_with(THREE_THREAD_BOUND).check(model);
        return;
    }
    let start = Instant::now();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{name}: loom found no deadlock\n{stderr}"
    );
    let report = stderr
        .lines()
        .find(|l| l.starts_with("deadlock; threads"))
        .unwrap_or_else(|| panic!("{name}: the child failed without a deadlock:\n{stderr}"));
    eprintln!("{name}: found in {:.2?}: {report}", start.elapsed());
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

use Op::*;

/// The requester holds a critical section another thread waits for, and
/// the pause's work enters a critical section too: lock hand-off to a
/// thread the pause suspends.
fn hand_off() -> Vec<Program> {
    vec![
        program(
            role(0, true, false),
            &[
                Begin,
                Pause {
                    scope: I0,
                    cs: true,
                },
                End,
                Exit,
            ],
        ),
        program(role(0, true, false), &[Begin, End, Exit]),
    ]
}

/// A global and a per-interpreter request race for the read-write mutex;
/// one thread detaches around a blocking call.
fn two_requesters() -> Vec<Program> {
    vec![
        program(
            role(0, true, false),
            &[
                Pause {
                    scope: G,
                    cs: false,
                },
                Exit,
            ],
        ),
        program(
            role(0, true, false),
            &[
                Syscall,
                Pause {
                    scope: I0,
                    cs: false,
                },
                Exit,
            ],
        ),
    ]
}

/// A thread state created while a pause may be on.
fn creation() -> Vec<Program> {
    vec![
        program(
            role(0, true, false),
            &[
                Pause {
                    scope: I0,
                    cs: false,
                },
                Exit,
            ],
        ),
        program(role(0, false, false), &[Begin, End, Exit]),
    ]
}

/// Finalization with a thread that may hang.
fn finalization() -> Vec<Program> {
    vec![
        program(role(0, true, true), &[Finalize]),
        program(role(0, true, false), &[Begin, Syscall, End, Exit]),
    ]
}

/// gh-144513's shape: the lock is handed to a thread the pause then
/// suspends, and the pause's work locks it.
fn lock_in_pause() -> Vec<Program> {
    vec![
        program(
            role(0, true, false),
            &[
                Begin,
                End,
                Pause {
                    scope: I0,
                    cs: true,
                },
                Exit,
            ],
        ),
        program(role(0, true, false), &[Begin, End, Exit]),
    ]
}

/// A counted thread exits during the pause.
fn exit_in_pause() -> Vec<Program> {
    vec![
        program(
            role(0, true, false),
            &[
                Pause {
                    scope: I0,
                    cs: false,
                },
                Exit,
            ],
        ),
        program(role(0, true, false), &[Check, Exit]),
    ]
}

/// A thread detached in a blocking call while the world stops.
fn syscall_in_pause() -> Vec<Program> {
    vec![
        program(
            role(0, true, false),
            &[
                Pause {
                    scope: I0,
                    cs: false,
                },
                Exit,
            ],
        ),
        program(role(0, true, false), &[Syscall, Check, Exit]),
    ]
}

/// gh-118332: the requester holds the section t1 waits for, and t2 keeps
/// the pause waiting.
fn gh118332() -> Vec<Program> {
    vec![
        program(
            role(0, true, false),
            &[
                Begin,
                Pause {
                    scope: I0,
                    cs: false,
                },
                End,
                Exit,
            ],
        ),
        program(role(0, true, false), &[Begin, End, Exit]),
        program(role(0, true, false), &[Check, Check, Exit]),
    ]
}

#[test]
fn shipped_designs_hold() {
    // Costs: see PREEMPTION_BOUND.
    let mut total = 0;
    for (label, design) in [("3.14", Design::CPYTHON), ("main", Design::CPYTHON_MAIN)] {
        total += explore(&format!("{label} hand_off"), model(1, design, hand_off));
        total += explore(
            &format!("{label} two_requesters"),
            model(1, design, two_requesters),
        );
        total += explore(&format!("{label} creation"), model(1, design, creation));
        total += explore(
            &format!("{label} finalization"),
            model(1, design, finalization),
        );
        total += explore(
            &format!("{label} lock_in_pause"),
            model(1, design, lock_in_pause),
        );
        total += explore(
            &format!("{label} exit_in_pause"),
            model(1, design, exit_in_pause),
        );
        total += explore(
            &format!("{label} syscall_in_pause"),
            model(1, design, syscall_in_pause),
        );
    }
    assert!(total > 14, "every model ran more than one execution");
}

fn twin(f: fn(&mut Design)) -> Design {
    let mut d = Design::CPYTHON;
    f(&mut d);
    d
}

#[test]
fn lock_inside_the_pause_deadlocks_gh144513() {
    expect_deadlock(
        "lock_inside_the_pause_deadlocks_gh144513",
        "cs-lock-in-pause",
        model(
            1,
            twin(|d| d.skip_cs_lock_while_stopped = false),
            lock_in_pause,
        ),
    );
}

#[test]
fn deleting_without_decrementing_deadlocks() {
    expect_deadlock(
        "deleting_without_decrementing_deadlocks",
        "delete-keeps-countdown",
        model(
            1,
            twin(|d| d.delete_decrements_countdown = false),
            exit_in_pause,
        ),
    );
}

#[test]
fn parking_to_detached_lets_a_thread_run_in_the_pause() {
    // The first failing execution ends the pause with the thread still
    // DETACHED: start_the_world's assertion fails before it can attach.
    expect_failure(
        "paused-threads-detached",
        "start_the_world: a thread of the stopped world is not SUSPENDED",
        model(1, twin(|d| d.park_to_suspended = false), syscall_in_pause),
    );
}

#[test]
fn attaching_from_suspended_leaves_the_pause() {
    expect_failure(
        "attach-while-suspended",
        "only_pause_end_unsuspends",
        model(
            1,
            twin(|d| d.suspended_blocks_attach = false),
            syscall_in_pause,
        ),
    );
}

#[test]
fn pauses_without_the_rw_mutex_overlap() {
    expect_failure(
        "no-rw-mutex",
        "pauses_never_overlap",
        model(1, twin(|d| d.pauses_take_rw_mutex = false), two_requesters),
    );
}

#[test]
fn thread_created_detached_runs_in_the_pause() {
    expect_failure(
        "created-detached",
        "stopped_world_has_no_other_attached_thread",
        model(1, twin(|d| d.new_thread_starts_suspended = false), creation),
    );
}

#[test]
fn requester_that_detaches_deadlocks_gh118332() {
    // Three threads: the spec model shows two are not enough.
    expect_deadlock(
        "requester_that_detaches_deadlocks_gh118332",
        "requester-detaches",
        model(1, twin(|d| d.requester_stays_attached = false), gh118332),
    );
}

#[test]
fn shipped_design_runs_the_gh118332_programs() {
    explore_with(
        builder_with(THREE_THREAD_BOUND),
        "3.14 gh118332 programs",
        model(1, Design::CPYTHON, gh118332),
    );
}
