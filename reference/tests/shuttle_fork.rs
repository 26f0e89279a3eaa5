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
//! invariants and transition invariants after every event; then the
//! spec's child branch of the recorded `fork()` is taken from the state
//! the parent forked in, and its invariants are checked too. The broken
//! twin that does not hold `HEAD_LOCK` across `fork()` is caught: a
//! random schedule has a worker half-way through the handle list at the
//! fork, and the child branch breaks `child_lists_consistent`.
//!
//! Run with:
//! `RUSTFLAGS="--cfg cpyrt_shuttle" CARGO_TARGET_DIR=target/shuttle
//!  RUST_BACKTRACE=0 cargo test -p cpyrt-reference --release --test shuttle_fork`
#![cfg(cpyrt_shuttle)]

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cpyrt_reference::fork::{Event, Options, Runtime, ThreadCtx, ThreadHandle};
use cpyrt_spec::Spec;
use cpyrt_spec::fork::{Config, Design, Fork, GC_THREAD, Process};
use shuttle::scheduler::{PctScheduler, RandomScheduler, Scheduler};
use shuttle::{Config as ShuttleConfig, Runner};

/// Schedules per scheduler: 10,000 random and 10,000 PCT schedules take
/// about 1.5 s on the project's 2-core machine, release build.
const SCHEDULES: usize = 10_000;
/// Blocking calls the main thread makes before it forks.
const LEAD: usize = 6;
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

/// The spec configuration the traces replay under: `design`'s.
fn spec_config(design: Design) -> Config {
    Config {
        threads: 3,
        gil: false,
        design,
    }
}

/// The broken twin that does not hold `HEAD_LOCK` across `fork()`.
const NO_HEAD_LOCK: Design = Design {
    hold_head_lock_across_fork: false,
    ..Design::CPYTHON
};

/// Replays `events` through the spec (which checks every invariant after
/// every event), then takes the spec's other branch of the recorded
/// `fork()`: the child's, from the state the parent forked in, and checks
/// the invariants there too. That is the memory a real child would have
/// been copied from, so a failure names the child property this schedule
/// would break.
fn check(cfg: &Config, events: &[Event]) -> Result<(), String> {
    let states = cpyrt_spec::replay::<Fork>(cfg, events)
        .map_err(|e| format!("trace left the spec: {e}\ntrace: {events:?}"))?;
    let at = events
        .iter()
        .position(|e| matches!(e, Event::Fork { .. }))
        .ok_or("the trace has no fork")?;
    let before = &states[at];
    let child = Fork::step(
        cfg,
        before,
        &Event::Fork {
            thread: 0,
            follow: Process::Child,
        },
    )
    .map_err(|r| format!("the child's branch is refused: {}", r.reason))?;
    if let Some(inv) = Fork::invariants().iter().find(|i| !(i.holds)(&child)) {
        return Err(format!(
            "the child forked at event {at} breaks {}\ntrace: {events:?}",
            inv.name
        ));
    }
    if let Some(inv) = Fork::transition_invariants()
        .iter()
        .find(|i| !(i.holds)(before, &child))
    {
        return Err(format!(
            "the child forked at event {at} breaks {}\ntrace: {events:?}",
            inv.name
        ));
    }
    Ok(())
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
fn program(hold_head_lock_across_fork: bool, lead: usize) -> Vec<Event> {
    let main = Runtime::start_with(Options {
        trace: true,
        hold_head_lock_across_fork,
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
    // `lead` blocking calls before os.fork(): the workers get further.
    for _ in 0..lead {
        main.blocking(shuttle::thread::yield_now);
    }
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
    let cfg = spec_config(Design::CPYTHON);
    let mut total = 0;
    for (name, scheduler) in schedulers() {
        let start = Instant::now();
        let cfg = cfg.clone();
        let runs = Runner::new(scheduler, ShuttleConfig::default()).run(move || {
            let events = program(true, LEAD);
            if let Err(e) = check(&cfg, &events) {
                panic!("{e}");
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

/// The twin without `HEAD_LOCK` across `fork()`: its traces are traces of
/// the twin's spec, but in some schedule a worker finishing `thread_run`
/// is half-way through the handle list when the parent forks, and the
/// child's branch of that fork breaks `child_lists_consistent` (the
/// model's counterexample for the spec's twin).
#[test]
fn fork_without_head_lock_copies_a_torn_list() {
    let cfg = spec_config(NO_HEAD_LOCK);
    // Random schedules only: PCT (depth 3 and 6, 10,000 schedules each)
    // found no torn copy in this program.
    let scheduler = RandomScheduler::new_from_seed(SEED, SCHEDULES);
    let start = Instant::now();
    let tried = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&tried);
    let cfg = cfg.clone();
    let found = catch_unwind(AssertUnwindSafe(|| {
        Runner::new(scheduler, ShuttleConfig::default()).run(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            let events = program(false, LEAD);
            if let Err(e) = check(&cfg, &events) {
                panic!("{e}");
            }
        })
    }))
    .expect_err("shuttle must find the twin's torn copy");
    let message = found.downcast_ref::<String>().cloned().unwrap_or_default();
    eprintln!(
        "fork without HEAD_LOCK (random): found on schedule {} in {:.2?}: {}",
        tried.load(Ordering::Relaxed),
        start.elapsed(),
        message.lines().next().unwrap_or_default()
    );
    assert!(
        message.contains("breaks child_lists_consistent"),
        "expected child_lists_consistent, got: {message}"
    );
}
