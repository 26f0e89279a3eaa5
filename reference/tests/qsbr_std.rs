//! QSBR reference runtime on `std`: API behaviour, recorded traces replayed
//! through the spec, the broken designs' bugs, and multi-thread stress.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

mod common;

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cpyrt_reference::qsbr::{Config, Design, Domain, Event, Published, QsbrThread, Reclaim};
use cpyrt_spec::qsbr::{self as spec, Object, Qsbr};
use cpyrt_spec::{TraceError, replay};

/// A payload that counts its drops (the real frees).
struct Counted {
    value: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn counted(value: u64, drops: &Arc<AtomicUsize>) -> Counted {
    Counted {
        value,
        drops: Arc::clone(drops),
    }
}

fn spec_cfg(threads: usize, deferral_limit: u8, design: Design) -> spec::Config {
    spec::Config {
        threads,
        max_objects: 8,
        deferral_limit,
        min_array_size: 1,
        design,
    }
}

fn replay_states(cfg: &spec::Config, events: &[Event]) -> Vec<spec::State> {
    replay::<Qsbr>(cfg, events)
        .unwrap_or_else(|e| panic!("trace left the spec: {e}\ntrace: {events:#?}"))
}

fn replay_ok(cfg: &spec::Config, events: &[Event]) -> spec::State {
    replay_states(cfg, events)
        .pop()
        .expect("replay returns the initial state")
}

#[test]
fn deferred_goal_waits_for_an_advance() {
    let cfg = spec_cfg(1, 2, Design::CPYTHON);
    let domain = Domain::new(Config::from_spec(&cfg));
    let drops = Arc::new(AtomicUsize::new(0));
    let cell = Published::new(&domain, counted(0, &drops));
    let mut t = Domain::register(&domain, 0);
    t.attach();
    // First retirement defers: goal wr_seq + 2 = 3 without advancing.
    assert_eq!(t.replace(&cell, counted(1, &drops)), 1);
    assert_eq!(domain.wr_seq(), 1);
    assert_eq!(
        t.process_delayed(),
        0,
        "goal 3 cannot be reached at wr_seq 1"
    );
    // Second retirement reaches the limit and advances.
    assert_eq!(t.replace(&cell, counted(2, &drops)), 2);
    assert_eq!(domain.wr_seq(), 3);
    assert_eq!(t.process_delayed(), 0, "this thread's seq is still 1");
    t.quiescent_state();
    assert_eq!(t.process_delayed(), 2);
    assert_eq!(drops.load(Ordering::Relaxed), 2);
    assert_eq!(domain.rd_seq(), 3);
    assert_eq!(t.read(&cell).value, 2);
    t.exit();

    let events = domain.take_trace();
    let end = replay_ok(&cfg, &events);
    assert_eq!(end.objects, [Object::Freed, Object::Freed, Object::Live]);
    assert!(events.contains(&Event::Replace {
        thread: 0,
        new: 1,
        goal: 3,
        advanced: false
    }));
    assert!(events.contains(&Event::Replace {
        thread: 0,
        new: 2,
        goal: 3,
        advanced: true
    }));
    assert!(events.contains(&Event::Scan {
        thread: 0,
        rd_seq: 3
    }));
    drop(cell);
    assert_eq!(drops.load(Ordering::Relaxed), 3);
}

#[test]
fn a_reader_holds_back_the_free_until_its_quiescent_state() {
    let cfg = spec_cfg(2, 1, Design::CPYTHON);
    let domain = Domain::new(Config::from_spec(&cfg));
    let drops = Arc::new(AtomicUsize::new(0));
    let cell = Published::new(&domain, counted(0, &drops));
    let mut writer = Domain::register(&domain, 0);
    let mut reader = Domain::register(&domain, 1);
    writer.attach();
    reader.attach();
    {
        let mut guard = reader.read(&cell);
        assert_eq!(guard.object(), 0);
        writer.replace(&cell, counted(1, &drops));
        assert_eq!(
            writer.process_delayed(),
            0,
            "the reader is at seq 1 < goal 3"
        );
        assert_eq!(guard.scan(), 1, "a reader may scan; it holds itself back");
        assert_eq!(guard.value, 0, "the retired value is still readable");
    }
    assert_eq!(
        writer.process_delayed(),
        0,
        "ending the read is not a quiescent state"
    );
    reader.quiescent_state();
    writer.quiescent_state();
    assert_eq!(writer.process_delayed(), 1);
    assert_eq!(drops.load(Ordering::Relaxed), 1);
    reader.detach();
    writer.exit();
    reader.exit();
    let end = replay_ok(&cfg, &domain.take_trace());
    assert_eq!(end.objects[0], Object::Freed);
}

#[test]
fn detached_threads_do_not_hold_back_the_scan() {
    let cfg = spec_cfg(2, 1, Design::CPYTHON);
    let domain = Domain::new(Config::from_spec(&cfg));
    let cell = Published::new(&domain, 0u64);
    let mut writer = Domain::register(&domain, 0);
    let mut idle = Domain::register(&domain, 1);
    idle.attach();
    idle.detach();
    writer.attach();
    writer.replace(&cell, 1);
    writer.quiescent_state();
    assert!(writer.poll(3));
    assert_eq!(writer.process_delayed(), 1);
    writer.exit();
    idle.exit();
    replay_ok(&cfg, &domain.take_trace());
}

#[test]
fn growth_moves_registered_threads_to_the_new_array() {
    let cfg = spec_cfg(4, 1, Design::CPYTHON);
    let domain = Domain::new(Config::from_spec(&cfg));
    let cell = Published::new(&domain, 0u64);
    let mut a = Domain::register(&domain, 0);
    assert_eq!(domain.array_size(), 1);
    a.attach();
    a.detach();
    let mut b = Domain::register(&domain, 1);
    assert_eq!(domain.array_size(), 2);
    let c = Domain::reserve(&domain, 2);
    assert_eq!(c.index(), 2);
    assert_eq!(domain.array_size(), 4);
    let mut c = c.register();
    for t in [&mut a, &mut b, &mut c] {
        t.attach();
    }
    a.replace(&cell, 1);
    for t in [&mut a, &mut b, &mut c] {
        t.quiescent_state();
    }
    assert_eq!(
        a.process_delayed(),
        1,
        "scan reads every thread in the new array"
    );
    // A freed slot is reused, lowest index first.
    b.exit();
    let mut d = Domain::register(&domain, 3);
    assert_eq!(domain.array_size(), 4);
    d.attach();
    drop((a, c, d));
    let end = replay_ok(&cfg, &domain.take_trace());
    assert_eq!(end.array_generation, 3);
}

#[test]
fn exit_abandons_the_queue_to_the_interpreter() {
    let cfg = spec_cfg(2, 1, Design::CPYTHON);
    let domain = Domain::new(Config::from_spec(&cfg));
    let drops = Arc::new(AtomicUsize::new(0));
    let cell = Published::new(&domain, counted(0, &drops));
    let mut a = Domain::register(&domain, 0);
    let mut b = Domain::register(&domain, 1);
    b.attach();
    a.attach();
    a.replace(&cell, counted(1, &drops));
    assert_eq!(a.pending(), 1);
    a.exit();
    assert_eq!(domain.interp_pending(), 1);
    b.quiescent_state();
    assert_eq!(b.process_delayed(), 1);
    assert_eq!(domain.interp_pending(), 0);
    assert_eq!(drops.load(Ordering::Relaxed), 1);
    b.exit();
    let events = domain.take_trace();
    assert!(events.contains(&Event::FreeInterp {
        thread: 1,
        object: 0
    }));
    replay_ok(&cfg, &events);
}

#[test]
fn chunk_full_processing_frees_on_enqueue() {
    let mut cfg = Config::CPYTHON;
    cfg.chunk_items = 4;
    cfg.deferral_limit = 1;
    let domain = Domain::new(cfg);
    let drops = Arc::new(AtomicUsize::new(0));
    let cell = Published::new(&domain, counted(0, &drops));
    let mut t = Domain::register(&domain, 0);
    t.attach();
    for i in 1..=3 {
        t.replace(&cell, counted(i, &drops));
        t.quiescent_state();
    }
    assert_eq!(drops.load(Ordering::Relaxed), 0);
    t.replace(&cell, counted(4, &drops));
    assert_eq!(
        drops.load(Ordering::Relaxed),
        3,
        "the fourth retirement processes"
    );
    t.exit();
    drop(cell);
    drop(domain);
    assert_eq!(
        drops.load(Ordering::Relaxed),
        5,
        "the domain frees what is left"
    );
}

#[test]
fn free_delayed_takes_any_owned_value() {
    let domain = Domain::new(Config::CPYTHON);
    let drops = Arc::new(AtomicUsize::new(0));
    let mut t = Domain::register(&domain, 0);
    t.attach();
    for i in 0..10 {
        t.free_delayed(Box::new(counted(i, &drops)));
    }
    assert_eq!(domain.wr_seq(), 3, "the tenth deferral advances");
    t.quiescent_state();
    assert_eq!(t.process_delayed(), 10);
    assert_eq!(drops.load(Ordering::Relaxed), 10);
}

#[test]
fn ghost_mode_is_forced_for_broken_designs() {
    let mut cfg = Config::CPYTHON;
    assert_eq!(cfg.effective_reclaim(), Reclaim::Real);
    cfg.design.gc_advances = false;
    assert_eq!(
        cfg.effective_reclaim(),
        Reclaim::Real,
        "a liveness switch keeps real frees"
    );
    cfg.design.free_waits_for_goal = false;
    assert_eq!(cfg.effective_reclaim(), Reclaim::Ghost);
    cfg = Config::CPYTHON;
    cfg.attach_fence = false;
    assert_eq!(cfg.effective_reclaim(), Reclaim::Ghost);
}

#[test]
fn without_gc_advances_only_the_deferral_limit_advances() {
    let mut cfg = Config::CPYTHON;
    cfg.design.gc_advances = false;
    let domain = Domain::new(cfg);
    let cell = Published::new(&domain, 0u64);
    let mut t = Domain::register(&domain, 0);
    t.attach();
    t.replace(&cell, 1);
    t.quiescent_state();
    assert_eq!(
        t.process_delayed(),
        0,
        "goal 3 waits for a tenth retirement"
    );
    let err = catch_unwind(AssertUnwindSafe(|| t.advance())).expect_err("refused");
    assert!(common::panic_message(err).contains("gc_advances"));
}

#[test]
fn quiescent_inside_a_read_is_refused_by_the_shipped_design() {
    let domain = Domain::new(Config::CPYTHON);
    let cell = Published::new(&domain, 0u64);
    let mut t = Domain::register(&domain, 0);
    t.attach();
    let mut guard = t.read(&cell);
    let err = catch_unwind(AssertUnwindSafe(|| guard.quiescent_state_inside_read()))
        .expect_err("the shipped design refuses the misuse");
    assert!(common::panic_message(err).contains("API misuse"));
}

/// Runs `scenario` on a traced domain of the broken `design`, expects the
/// ghost check to panic with a use-after-free, and returns the trace.
fn expect_ghost_uaf(
    cfg: &spec::Config,
    scenario: impl FnOnce(&Arc<Domain>, &mut Vec<QsbrThread>),
) -> Vec<Event> {
    let domain = Domain::new(Config::from_spec(cfg));
    assert_eq!(domain.reclaim(), Reclaim::Ghost);
    let mut threads = Vec::new();
    let err = catch_unwind(AssertUnwindSafe(|| scenario(&domain, &mut threads)))
        .expect_err("the ghost check reports the bug");
    let message = common::panic_message(err);
    assert!(message.contains("use-after-free"), "{message}");
    domain.take_trace()
}

#[test]
fn free_before_goal_is_a_use_after_free() {
    let mut cfg = spec_cfg(2, 2, Design::CPYTHON);
    cfg.design.free_waits_for_goal = false;
    let events = expect_ghost_uaf(&cfg, |domain, _| {
        let cell = Published::new(domain, 0u64);
        let mut writer = Domain::register(domain, 0);
        let mut reader = Domain::register(domain, 1);
        writer.attach();
        reader.attach();
        let guard = reader.read(&cell);
        writer.replace(&cell, 1);
        assert_eq!(writer.process_delayed(), 1, "freed without waiting");
        std::hint::black_box(guard.get());
    });
    let err = replay::<Qsbr>(&cfg, &events).expect_err("the spec sees the bug too");
    assert!(
        matches!(
            err,
            TraceError::Invariant {
                name: "no_use_after_free",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn quiescent_inside_a_read_is_a_use_after_free() {
    let mut cfg = spec_cfg(2, 1, Design::CPYTHON);
    cfg.design.quiescent_outside_reads = false;
    let events = expect_ghost_uaf(&cfg, |domain, _| {
        let cell = Published::new(domain, 0u64);
        let mut writer = Domain::register(domain, 0);
        let mut reader = Domain::register(domain, 1);
        writer.attach();
        reader.attach();
        let mut guard = reader.read(&cell);
        writer.replace(&cell, 1);
        guard.quiescent_state_inside_read();
        writer.quiescent_state();
        assert_eq!(writer.process_delayed(), 1);
        drop(guard);
    });
    let err = replay::<Qsbr>(&cfg, &events).expect_err("the spec sees the bug too");
    assert!(
        matches!(
            err,
            TraceError::Invariant {
                name: "no_use_after_free",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn stale_slot_pointer_writes_a_freed_array() {
    let mut cfg = spec_cfg(3, 1, Design::CPYTHON);
    cfg.design.reload_slot_under_mutex = false;
    let events = expect_ghost_uaf(&cfg, |domain, threads| {
        let exiting = Domain::register(domain, 0).abandon();
        // Thread 1 finds the array full and grows it while thread 0 waits
        // for shared->mutex with the pointer it loaded before.
        threads.push(Domain::register(domain, 1));
        exiting.unregister();
    });
    let err = replay::<Qsbr>(&cfg, &events).expect_err("the spec sees the bug too");
    assert!(
        matches!(err, TraceError::Invariant { name, .. }
            if name == "no_write_to_freed_slot_array" || name == "slot_owned_by_at_most_one_thread"),
        "{err}"
    );

    // The shipped design reloads the pointer under the mutex.
    cfg.design = Design::CPYTHON;
    let domain = Domain::new(Config::from_spec(&cfg));
    let exiting = Domain::register(&domain, 0).abandon();
    let b = Domain::register(&domain, 1);
    exiting.unregister();
    let c = Domain::register(&domain, 2);
    assert_eq!(domain.array_size(), 2, "the freed slot is reused");
    drop((b, c));
    replay_ok(&cfg, &domain.take_trace());
}

/// Traced runs of the random workload, each replayed through the spec.
const TRACED_RUNS: u64 = 300;

#[test]
fn traced_stress_runs_replay_through_the_spec() {
    let cfg = spec_cfg(3, 2, Design::CPYTHON);
    let mut kinds = BTreeSet::new();
    let mut goals = BTreeSet::new();
    let mut freed = 0;
    // On a loaded machine the random runs' threads may register one after
    // another, each exiting before the next arrives, and never grow a full
    // array. One staged run registers all three from this thread first, so
    // the `array_grown` goal does not depend on the scheduler.
    {
        let domain = Domain::new(Config::from_spec(&cfg));
        let staged: Vec<_> = (0..3).map(|t| Domain::register(&domain, t)).collect();
        drop(staged);
        let states = replay_states(&cfg, &domain.take_trace());
        for goal in spec::SOMETIMES {
            if states.iter().any(goal.holds) {
                goals.insert(goal.name);
            }
        }
    }
    for seed in 0..TRACED_RUNS {
        let workload = common::Workload {
            threads: 3,
            ops: 40,
            seed,
            replacements: u32::from(cfg.max_objects) - 1,
        };
        let out = common::run(Config::from_spec(&cfg), workload);
        let states = replay_states(&cfg, &out.events);
        for goal in spec::SOMETIMES {
            if states.iter().any(goal.holds) {
                goals.insert(goal.name);
            }
        }
        let end = states.last().expect("replay returns the initial state");
        assert_eq!(
            out.drops, out.published as usize,
            "every payload dropped once"
        );
        assert_eq!(
            end.objects.iter().filter(|o| **o == Object::Freed).count(),
            out.processed,
            "the spec frees what the runtime freed"
        );
        freed += out.processed;
        kinds.extend(out.events.iter().map(|e| e.kind()));
    }
    assert!(freed > 0);
    for kind in spec::EVENT_KINDS {
        assert!(kinds.contains(kind), "no run recorded a {kind} event");
    }
    for goal in spec::SOMETIMES {
        assert!(goals.contains(goal.name), "no run reached {}", goal.name);
    }
}

/// Large untraced runs with real frees: 4 threads, many replacements; the
/// canary catches reads of dropped payloads, the count double frees.
#[test]
fn real_free_stress() {
    for seed in 0..4 {
        let mut cfg = Config::CPYTHON;
        cfg.chunk_items = 16;
        let workload = common::Workload {
            threads: 4,
            ops: 20_000,
            seed,
            replacements: 20_000,
        };
        let out = common::run(cfg, workload);
        assert_eq!(out.drops, out.published as usize);
        assert!(
            out.processed > 0,
            "some delayed frees happened before the end"
        );
    }
}

/// The shipped design in ghost mode under real concurrency: no ghost check
/// fires.
#[test]
fn ghost_stress_of_the_shipped_design() {
    let mut cfg = Config::CPYTHON;
    cfg.reclaim = Reclaim::Ghost;
    cfg.deferral_limit = 2;
    cfg.min_array_size = 1;
    let workload = common::Workload {
        threads: 4,
        ops: 20_000,
        seed: 7,
        replacements: 20_000,
    };
    let out = common::run(cfg, workload);
    assert_eq!(out.drops, out.published as usize);
}
