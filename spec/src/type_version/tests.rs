//! Hand-written traces through the type-version spec: tagging bases first,
//! the harmless stale fill, exhaustion, the per-class limit, and the three
//! broken twins.

use super::*;
use crate::{TraceError, replay};

fn ty(name: &str, bases: &[u8], immutable: bool) -> TypeDef {
    TypeDef {
        name: name.into(),
        bases: bases.to_vec(),
        immutable,
        interp: 0,
    }
}

/// `object` (static), `A(object)`, `B(A)` (heap), `S(object)` (static).
fn cfg(design: Design) -> Config {
    Config {
        threads: 2,
        interps: 1,
        types: vec![
            ty("object", &[], true),
            ty("A", &[0], false),
            ty("B", &[1], false),
            ty("S", &[0], true),
        ],
        global_max: 1,
        interp_last: 6,
        max_versions_per_class: 3,
        max_modifications: 3,
        cache_entries: 2,
        design,
    }
}

const A: u8 = 1;
const B: u8 = 2;

fn lookup(thread: u8, ty: u8, tag: u32, value: u8) -> Event {
    Event::Lookup {
        thread,
        ty,
        tag,
        value,
    }
}

fn modify(thread: u8, ty: u8, value: u8) -> Event {
    Event::Modify { thread, ty, value }
}

fn run(c: &Config, events: &[Event]) -> State {
    let mut s = TypeVersion::init(c);
    for e in events {
        s = TypeVersion::step(c, &s, e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
    }
    s
}

#[test]
fn a_lookup_tags_the_bases_first_and_a_hit_follows() {
    let c = cfg(Design::CPYTHON);
    let trace = [
        lookup(0, B, 3, 0),
        Event::Fill { thread: 0 },
        Event::Hit {
            thread: 1,
            ty: B,
            value: 0,
        },
    ];
    let states = replay::<TypeVersion>(&c, &trace).unwrap();
    let tags: Vec<u32> = states[1].types.iter().map(|t| t.tag).collect();
    assert_eq!(tags, vec![1, 2, 3, 0], "object, A, B; S untouched");
    assert_ne!(states[3].seen & seen::HIT, 0);
}

#[test]
fn a_modification_between_lookup_and_fill_leaves_a_dead_entry() {
    let c = cfg(Design::CPYTHON);
    let trace = [
        lookup(0, B, 3, 0),
        modify(1, A, 1),
        Event::Fill { thread: 0 },
        lookup(1, B, 5, 1),
        Event::Fill { thread: 1 },
        Event::Hit {
            thread: 0,
            ty: B,
            value: 1,
        },
    ];
    let states = replay::<TypeVersion>(&c, &trace).unwrap();
    // The modification of A cleared A and its subclass B.
    assert_eq!(states[2].types[A as usize].tag, 0);
    assert_eq!(states[2].types[B as usize].tag, 0);
    // The fill wrote tag 3, which no type holds any more.
    assert_ne!(states[3].seen & seen::STALE_FILL, 0);
    assert!(!states.last().unwrap().stale_hit);
}

#[test]
fn without_bases_first_a_modified_base_leaves_its_subclass_stale() {
    let c = cfg(Design {
        bases_first: false,
        ..Design::CPYTHON
    });
    let trace = [
        lookup(0, B, 2, 0),
        Event::Fill { thread: 0 },
        modify(1, A, 1),
        Event::Hit {
            thread: 0,
            ty: B,
            value: 0,
        },
    ];
    assert_eq!(
        replay::<TypeVersion>(&c, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 0,
            name: "bases_tagged_first"
        }
    );
    // A had no tag, so type_modified_unlocked returned before reaching B.
    let s = run(&c, &trace);
    assert_eq!(s.types[B as usize].tag, 2);
    assert!(s.stale_hit);
}

#[test]
fn a_wrapping_counter_reuses_a_tag_and_serves_a_stale_value() {
    let mut c = cfg(Design {
        interp_counter_saturates: false,
        ..Design::CPYTHON
    });
    c.interp_last = 3;
    let trace = [
        lookup(0, A, 2, 0),
        Event::Fill { thread: 0 },
        modify(1, A, 1),
        lookup(0, A, 3, 1),
        Event::Fill { thread: 0 },
        modify(1, A, 2),
        lookup(0, A, 2, 2),
        Event::Hit {
            thread: 1,
            ty: A,
            value: 0,
        },
    ];
    assert_eq!(
        replay::<TypeVersion>(&c, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 6,
            name: "tags_never_reused"
        }
    );
    assert!(run(&c, &trace).stale_hit);
    // CPython's counter stays at 0: the third tag cannot be given.
    c.design = Design::CPYTHON;
    let mut fixed = trace[..6].to_vec();
    fixed.push(lookup(0, A, 0, 2));
    let s = run(&c, &fixed);
    assert_eq!(s.interp_next, vec![0]);
    assert_eq!(s.types[A as usize].tag, 0);
}

#[test]
fn the_global_range_ends_where_the_interpreter_range_begins() {
    let trace = [lookup(0, 3, 0, 0)];
    let s = run(&cfg(Design::CPYTHON), &trace);
    assert_eq!(s.types[0].tag, 1);
    assert_eq!(s.types[3].tag, 0, "the global range is exhausted");

    let c = cfg(Design {
        global_bound_checked: false,
        ..Design::CPYTHON
    });
    let trace = [lookup(0, 3, 2, 0)];
    assert_eq!(
        replay::<TypeVersion>(&c, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 0,
            name: "ranges_disjoint"
        }
    );
}

#[test]
fn a_class_is_retagged_only_up_to_its_limit() {
    let mut c = cfg(Design::CPYTHON);
    c.max_versions_per_class = 2;
    let trace = [
        lookup(0, A, 2, 0),
        Event::Fill { thread: 0 },
        modify(0, A, 1),
        lookup(0, A, 3, 1),
        Event::Fill { thread: 0 },
        modify(0, A, 2),
        lookup(0, A, 0, 2),
    ];
    let states = replay::<TypeVersion>(&c, &trace).unwrap();
    let last = states.last().unwrap();
    assert_eq!(last.types[A as usize].versions_used, 2);
    assert_eq!(last.types[A as usize].tag, 0);
    assert_eq!(last.threads[0], Pc::Idle, "nothing to cache without a tag");
    assert_ne!(last.seen & seen::CLASS_LIMIT, 0);
    assert_eq!(states[5].seen & seen::CLASS_LIMIT, 0);
}

#[test]
fn mro_is_the_c3_linearization() {
    let c = Config {
        types: vec![
            ty("object", &[], true),
            ty("A", &[0], false),
            ty("B", &[1], false),
            ty("C", &[1], false),
            ty("D", &[2, 3], false),
        ],
        ..cfg(Design::CPYTHON)
    };
    assert_eq!(mro(&c, 4), Some(vec![4, 2, 3, 1, 0]));
    assert!(c.validate().is_ok());
    let bad = Config {
        types: vec![
            ty("object", &[], true),
            ty("A", &[0], false),
            ty("X", &[0, 1], false),
        ],
        ..cfg(Design::CPYTHON)
    };
    assert!(bad.validate().unwrap_err().contains("MRO"));
}

#[test]
fn enabled_events_are_accepted() {
    for design in [
        Design::CPYTHON,
        Design {
            bases_first: false,
            ..Design::CPYTHON
        },
        Design {
            interp_counter_saturates: false,
            ..Design::CPYTHON
        },
    ] {
        let mut c = cfg(design);
        c.threads = 3;
        c.interps = 2;
        c.types.push(TypeDef {
            name: "H".into(),
            bases: vec![0],
            immutable: false,
            interp: 1,
        });
        c.validate().unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _walk in 0..50 {
            let mut s = TypeVersion::init(&c);
            let mut events = Vec::new();
            for _ in 0..100 {
                events.clear();
                TypeVersion::enabled(&c, &s, &mut events);
                if events.is_empty() {
                    break;
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let e = events[(seed % events.len() as u64) as usize];
                s = TypeVersion::step(&c, &s, &e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
            }
        }
    }
}
