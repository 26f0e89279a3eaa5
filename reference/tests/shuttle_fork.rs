//! The shuttle pass for fork: random and PCT schedules of the main thread
//! running `PyOS_BeforeFork` (the import lock, the global pause,
//! `HEAD_LOCK`) and then, since a model checker's scheduler cannot fork,
//! the parent's side of `os.fork()` (`Runtime::fork_parent_only`: the
//! parent's `Fork` event and `PyOS_AfterFork_Parent`), while two workers
//! run Python code with eval-breaker checks, imports, the runtime mutex
//! held across a blocking call, an interpreter pause, and exit. Every
//! schedule is traced and its trace replays through `cpyrt_spec::fork`
//! under the configuration of three threads, the GIL disabled and
//! `Design::CPYTHON` (the one `conformance/tests/fork.rs` replays real
//! parents under, with one thread more), which checks the spec's
//! invariants and transition invariants after every event.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_shuttle" CARGO_TARGET_DIR=target/shuttle
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test shuttle_fork`
#![cfg(cpyrt_shuttle)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use cpyrt_reference::fork::{Event, Options, Runtime, ThreadCtx, ThreadHandle};
use cpyrt_spec::fork::{Config, Design, Fork, GC_THREAD};
use shuttle::scheduler::{PctScheduler, RandomScheduler, Scheduler};
use shuttle::{Config as ShuttleConfig, Runner};

/// Schedules per scheduler (see the test for what they cost).
const SCHEDULES: usize = 10_000;
/// PCT's bug depth.
const PCT_DEPTH: usize = 3;
/// Fixed seed: the same schedules every run.
const SEED: u64 = 0xf0_7e57;

fn schedulers() -> [(&'static str, Box<dyn Scheduler + Send>); 2] {
    [
        (
            "random",
            Box::new(RandomScheduler::new_from_seed(SEED, SCHEDULES)),
        ),
        (
            "pct",
            Box::new(PctScheduler::new_from_seed(SEED, PCT_DEPTH, SCHEDULES)),
        ),
    ]
}

/// The spec configuration the traces replay under.
fn spec_config() -> Config {
    Config {
        threads: 3,
        gil: false,
        design: Design::CPYTHON,
    }
}

/// One round of Python code: a safe point, an import, the runtime mutex
/// held across a safe point and a blocking call, and, for the spec's GC
/// thread, an interpreter pause.
fn round(ctx: &ThreadCtx) {
    ctx.eval_breaker();
    ctx.rt.import_acquire(ctx);
    ctx.rt.import_release(ctx);
    ctx.rt.mutex_lock(ctx);
    ctx.eval_breaker();
    ctx.blocking(shuttle::thread::yield_now);
    ctx.rt.mutex_unlock(ctx);
    if ctx.index() == GC_THREAD {
        ctx.rt.stop_the_world(ctx);
        ctx.rt.start_the_world(ctx);
    }
    ctx.eval_breaker();
}

/// One schedule: the main thread starts worker 1, which runs a round,
/// starts worker 2 (in the parent the spec's thread `k` starts thread
/// `k + 1`) and runs another; worker 2 runs one round. Meanwhile the main
/// thread forks (the parent's side) and then joins both. Returns the
/// trace.
fn program() -> Vec<Event> {
    let main = Runtime::start_with(Options {
        trace: true,
        ..Options::CPYTHON
    });
    // The spec creates every handle up front; the main thread keeps both
    // handle objects until the trace is taken.
    let h1 = ThreadHandle::new(&main);
    let h2 = Arc::new(ThreadHandle::new(&main));
    let h2_for_1 = Arc::clone(&h2);
    h1.start(&main, move |ctx| {
        round(ctx);
        h2_for_1.start(ctx, round).unwrap();
        round(ctx);
    })
    .unwrap();
    main.rt.fork_parent_only(&main);
    h1.join(&main).unwrap();
    h2.join(&main).unwrap();
    main.rt.take_trace()
}

/// Event kinds the schedules recorded, and whether some schedule had a
/// worker's event inside the before-fork window (bookkeeping outside the
/// scheduled program, hence std's mutex).
static SEEN: std::sync::Mutex<(BTreeSet<&'static str>, usize)> =
    std::sync::Mutex::new((BTreeSet::new(), 0));

/// Whether a worker recorded an event after the forker's first before-fork
/// step: it was waiting, suspended or parked inside the protocol.
fn worker_inside_before_fork(events: &[Event]) -> bool {
    let start = events
        .iter()
        .position(|e| matches!(e, Event::BeforeFork { .. }))
        .expect("the trace has PyOS_BeforeFork");
    let fork = events
        .iter()
        .position(|e| matches!(e, Event::Fork { .. }))
        .expect("the trace has the fork");
    events[start..fork].iter().any(|e| e.thread() != 0)
}

#[test]
fn parent_side_of_fork_replays_in_every_schedule() {
    let cfg = spec_config();
    let mut total = 0;
    for (name, scheduler) in schedulers() {
        let start = Instant::now();
        let cfg = cfg.clone();
        let runs = Runner::new(scheduler, ShuttleConfig::default()).run(move || {
            let events = program();
            if let Err(e) = cpyrt_spec::replay::<Fork>(&cfg, &events) {
                panic!("trace left the spec: {e}\ntrace: {events:?}");
            }
            let mut seen = SEEN.lock().unwrap();
            seen.0.extend(events.iter().map(|e| e.kind()));
            seen.1 += usize::from(worker_inside_before_fork(&events));
        });
        eprintln!(
            "fork parent ({name}): {runs} schedules in {:.2?}",
            start.elapsed()
        );
        assert_eq!(runs, SCHEDULES);
        total += runs;
    }
    let seen = SEEN.lock().unwrap();
    eprintln!(
        "fork parent: {} of {total} schedules had a worker step inside PyOS_BeforeFork",
        seen.1
    );
    assert!(seen.1 > 0, "no worker ever stepped inside PyOS_BeforeFork");
    for kind in [
        "Attach",
        "Detach",
        "Suspend",
        "ImportAcquire",
        "MutexLock",
        "PauseLock",
        "PauseRequest",
        "PausePoll",
        "BeforeFork",
        "Fork",
        "AfterForkParent",
        "StartBegin",
        "StartEnd",
        "ExitStart",
        "ExitDone",
        "Join",
    ] {
        assert!(
            seen.0.contains(kind),
            "no {kind} in any schedule: {:?}",
            seen.0
        );
    }
}
