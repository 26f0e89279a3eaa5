//! The type-version runtime on `std` threads: scripted runs whose traces
//! replay through the spec and reach its goals, each broken design's stale
//! answer caught by the runtime's own check and by the spec on the same
//! trace, and a stress run of three threads whose every trace the spec
//! accepts.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cpyrt_reference::primitive::sync::Arc;
use cpyrt_reference::primitive::thread;
use cpyrt_reference::type_version::{Config, Found, Op, Runtime, thread as handle};
use cpyrt_spec::type_version::{
    Config as SpecConfig, Design, Event, SOMETIMES, State, TypeDef, TypeVersion,
};
use cpyrt_spec::{TraceError, replay};

const OBJECT: u8 = 0;
const A: u8 = 1;
const B: u8 = 2;
const S: u8 = 3;

fn ty(name: &str, bases: &[u8], immutable: bool) -> TypeDef {
    TypeDef {
        name: name.into(),
        bases: bases.to_vec(),
        immutable,
        interp: 0,
    }
}

/// The model's hierarchy and bounds (`cpyrt_models::type_version::config`):
/// `object` and `S(object)` immutable, `A(object)` and `B(A)` heap; one
/// global tag, heap tags 2 to 4, two tags per class, two modifications,
/// two cache entries.
fn spec(threads: usize, design: Design) -> SpecConfig {
    SpecConfig {
        threads,
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
    }
}

fn runtime(spec: SpecConfig) -> Arc<Runtime> {
    Runtime::new(Config { spec, trace: true }).unwrap()
}

fn replay_ok(cfg: &SpecConfig, trace: &[Event]) -> Vec<State> {
    replay::<TypeVersion>(cfg, trace)
        .unwrap_or_else(|e| panic!("the spec rejects a reference trace: {e}\n{trace:#?}"))
}

fn goals(states: &[State], reached: &mut BTreeSet<&'static str>) {
    for s in states {
        for g in SOMETIMES {
            if (g.holds)(s) {
                reached.insert(g.name);
            }
        }
    }
}

#[test]
fn one_thread_tags_bases_first_hits_invalidates_and_runs_out() {
    use Op::*;
    let cfg = spec(1, Design::CPYTHON);
    let rt = runtime(cfg.clone());
    let mut t = handle(&rt, 0);
    assert_eq!(t.lookup(B), (0, 3), "object takes 1, A 2, B 3");
    assert_eq!((rt.tag(OBJECT), rt.tag(A)), (1, 2));
    assert_eq!(
        t.load_attr(B),
        (0, false),
        "the first execution specializes"
    );
    assert_eq!(t.load_attr(B), (0, true), "the guard passes");
    t.modify(A);
    assert_eq!((rt.tag(A), rt.tag(B)), (0, 0), "invalidated down to B");
    assert_eq!(
        t.load_attr(B),
        (1, false),
        "the guard fails, B is re-tagged"
    );
    assert_eq!((rt.tag(A), rt.tag(B)), (4, 0), "A took the last heap tag");
    assert_eq!(t.lookup(S), (0, 0), "the global range is spent");
    t.run(&[Modify(A), LoadAttr(B), LoadAttr(A)]);
    let trace = rt.trace();
    let kinds: Vec<&str> = trace.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        [
            "Lookup", "Fill", "Hit", // lookup(B), load_attr(B) specializes
            "Modify", "Lookup", // the guard fails; B cannot be tagged
            "Lookup", // S
            "Modify", "Lookup", "Lookup" // A is out of tags for its class
        ]
    );
    let states = replay_ok(&cfg, &trace);
    let mut reached = BTreeSet::new();
    goals(&states, &mut reached);
    for g in [
        "cache_hit",
        "interp_tags_exhausted",
        "class_out_of_versions",
    ] {
        assert!(reached.contains(g), "{g} not reached: {reached:?}");
    }
}

#[test]
fn a_modification_before_the_fill_leaves_a_dead_entry_and_tags_come_back() {
    // Two handles driven from one OS thread, so the interleaving is fixed:
    // thread 0's lookup of A releases the lock, thread 1 modifies A, and
    // thread 0 fills an entry under a tag no type holds any more.
    let mut cfg = spec(2, Design::CPYTHON);
    cfg.interp_last = 8;
    cfg.max_versions_per_class = 3;
    let rt = runtime(cfg.clone());
    let (mut t0, mut t1) = (handle(&rt, 0), handle(&rt, 1));
    assert_eq!(t0.start_lookup(A), Found::Walked { tag: 2, value: 0 });
    t1.modify(A);
    t0.fill();
    assert_eq!(t0.lookup(A), (1, 3), "the dead entry does not match");
    assert_eq!(t1.lookup(A), (1, 3), "the new entry does");
    let states = replay_ok(&cfg, &rt.trace());
    let mut reached = BTreeSet::new();
    goals(&states, &mut reached);
    for g in ["stale_fill", "tag_reassigned", "cache_hit"] {
        assert!(reached.contains(g), "{g} not reached: {reached:?}");
    }
}

/// Runs `script` on a runtime of `design`, expecting the runtime's
/// coherence check to fire; returns the panic message and the trace up to
/// the stale answer.
fn expect_stale(design: Design, script: impl FnOnce(&Arc<Runtime>)) -> (String, Vec<Event>) {
    let rt = runtime(spec(2, design));
    let found = catch_unwind(AssertUnwindSafe(|| script(&rt)))
        .expect_err("the broken design must answer a lookup with a stale value");
    let message = found.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("method_cache_coherent"), "{message}");
    (message, rt.trace())
}

/// The spec under `design` accepts `trace` until the invariant `name`
/// breaks; under the shipped design it refuses the trace.
fn spec_agrees(design: Design, trace: &[Event], names: &[&str]) {
    match replay::<TypeVersion>(&spec(2, design), trace) {
        Err(TraceError::Invariant { name, .. }) => {
            assert!(names.contains(&name), "{name}")
        }
        other => panic!("the twin's spec must break an invariant, got {other:?}"),
    }
    let stale = trace.len() - 1;
    let prefix = replay::<TypeVersion>(&spec(2, design), &trace[..stale]);
    match replay::<TypeVersion>(&spec(2, Design::CPYTHON), trace) {
        Err(TraceError::Rejected { .. }) => {}
        other => {
            panic!("the shipped design must refuse the trace, got {other:?} (prefix {prefix:?})")
        }
    }
}

#[test]
fn subclass_before_base_answers_from_a_stale_entry() {
    let design = Design {
        bases_first: false,
        ..Design::CPYTHON
    };
    let (message, trace) = expect_stale(design, |rt| {
        let mut t = handle(rt, 0);
        assert_eq!(t.lookup(B), (0, 2), "B is tagged, A is not");
        assert_eq!(rt.tag(A), 0);
        t.modify(A);
        assert_eq!(rt.tag(B), 2, "invalidation stopped at the untagged A");
        t.lookup(B);
    });
    eprintln!("subclass-before-base: {message}");
    spec_agrees(
        design,
        &trace,
        &["bases_tagged_first", "method_cache_coherent"],
    );
}

#[test]
fn a_wrapping_counter_revives_a_dead_entry() {
    let design = Design {
        interp_counter_saturates: false,
        ..Design::CPYTHON
    };
    let (message, trace) = expect_stale(design, |rt| {
        let (mut t0, mut t1) = (handle(rt, 0), handle(rt, 1));
        t0.lookup(A); // A 2, entry 0 = (2, 0)
        t0.lookup(B); // B 3
        t0.modify(A); // A and B invalidated
        // A takes 4, the counter wraps, B takes 2 again.
        assert_eq!(t0.start_lookup(B), Found::Walked { tag: 2, value: 1 });
        t1.lookup(B); // before thread 0's fill: A's old entry matches
    });
    eprintln!("wrapping-counter: {message}");
    spec_agrees(
        design,
        &trace,
        &["tags_never_reused", "method_cache_coherent"],
    );
}

#[test]
fn an_unbounded_global_range_shares_a_tag_with_a_heap_type() {
    let design = Design {
        global_bound_checked: false,
        ..Design::CPYTHON
    };
    let (message, trace) = expect_stale(design, |rt| {
        let mut t = handle(rt, 0);
        assert_eq!(t.lookup(S), (0, 2), "S took a tag past the global range");
        t.modify(A);
        assert_eq!(t.lookup(A), (1, 2), "A took the same tag as S");
        t.lookup(S);
    });
    eprintln!("global-range-unbounded: {message}");
    spec_agrees(
        design,
        &trace,
        &["ranges_disjoint", "method_cache_coherent"],
    );
}

#[test]
fn three_threads_stress_replays_and_reaches_the_goals() {
    use Op::*;
    const ROUNDS: usize = 300;
    let mut cfg = spec(3, Design::CPYTHON);
    cfg.interp_last = 20;
    cfg.max_versions_per_class = 4;
    cfg.max_modifications = 3;
    cfg.cache_entries = 4;
    let scripts: [&'static [Op]; 3] = [
        &[
            LoadAttr(B),
            LoadAttr(B),
            LoadAttr(B),
            LoadAttr(S),
            LoadAttr(B),
        ],
        &[Lookup(A), Modify(A), Lookup(B), Modify(B), Lookup(B)],
        &[Lookup(B), LoadAttr(A), Modify(A), LoadAttr(A), LoadAttr(B)],
    ];
    let mut reached = BTreeSet::new();
    for _ in 0..ROUNDS {
        let rt = runtime(cfg.clone());
        let hs: Vec<_> = (1..3)
            .map(|k| {
                let mut t = handle(&rt, k);
                let ops = scripts[k];
                thread::spawn(move || t.run(ops))
            })
            .collect();
        handle(&rt, 0).run(scripts[0]);
        for h in hs {
            h.join().unwrap();
        }
        goals(&replay_ok(&cfg, &rt.trace()), &mut reached);
    }
    eprintln!("goals reached over {ROUNDS} rounds: {reached:?}");
    for g in ["cache_hit", "tag_reassigned"] {
        assert!(reached.contains(g), "no run reached {g}: {reached:?}");
    }
}
