//! Hand-written traces through the isolation spec: the shipped design
//! keeping shared strings and containers valid past a subinterpreter's
//! end, the cross-interpreter release in the owner, and the four broken
//! twins.

use super::*;
use crate::{TraceError, replay};

const SUB: u8 = 1;

fn cfg(design: Design) -> Config {
    Config { interps: 2, design }
}

fn create(interp: u8, own_obmalloc: bool) -> Event {
    Event::Create {
        interp,
        own_obmalloc,
    }
}

fn import(interp: u8) -> Event {
    Event::Import { interp }
}

fn end(interp: u8) -> [Event; 3] {
    [
        Event::EndClear { interp },
        Event::EndInterned { interp },
        Event::EndDelete { interp },
    ]
}

fn run(c: &Config, events: &[Event]) -> State {
    let mut s = Isolation::init(c);
    for e in events {
        s = Isolation::step(c, &s, e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
    }
    s
}

/// gh-116510's order of events: a legacy subinterpreter imports first, the
/// main interpreter copies the cached dict, the subinterpreter ends, the
/// main interpreter keeps using the module.
fn shared_module_outlives_first_importer() -> Vec<Event> {
    let mut t = vec![create(SUB, false), import(SUB), import(MAIN)];
    t.extend(end(SUB));
    t
}

#[test]
fn a_legacy_subinterpreter_interns_into_the_main_dict() {
    let c = cfg(Design::CPYTHON);
    let mut trace = shared_module_outlives_first_importer();
    trace.push(Event::Untrack {
        interp: MAIN,
        obj: 1,
    });
    let states = replay::<Isolation>(&c, &trace).unwrap();
    let last = states.last().unwrap();
    let string = last.objects[0];
    assert_eq!(string.kind, Kind::Str);
    assert_eq!(string.maker, SUB);
    assert_eq!(string.interned_in, Some(MAIN), "has_shared_intern_dict");
    assert!(!string.freed);
    assert_eq!(last.interps[SUB as usize].gc_head, Head::Unlinked);
    assert_ne!(last.seen & seen::COPIED, 0);
    assert_ne!(last.seen & seen::UNTRACKED_FROM_ENDED, 0);
    let goal = SOMETIMES
        .iter()
        .find(|g| g.name == "string_outlives_its_interner")
        .unwrap();
    assert!((goal.holds)(last));
}

#[test]
fn an_own_interned_dict_frees_strings_the_main_interpreter_uses() {
    let c = cfg(Design {
        shared_intern_dict: false,
        ..Design::CPYTHON
    });
    let trace = shared_module_outlives_first_importer();
    assert_eq!(
        replay::<Isolation>(&c, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 4,
            name: "no_use_after_free"
        }
    );
    let s = run(&c, &trace[..5]);
    assert!(s.objects[0].freed);
    assert_eq!(
        s.objects[0].allocator, MAIN,
        "a use after free, not a wrong free"
    );
    assert!(!s.wrong_allocator);
    // Without the main interpreter's copy only the cache dangles.
    let alone = [create(SUB, false), import(SUB), end(SUB)[0], end(SUB)[1]];
    assert_eq!(
        replay::<Isolation>(&c, &alone).unwrap_err(),
        TraceError::Invariant {
            index: 3,
            name: "extension_cache_valid"
        }
    );
}

#[test]
fn gc_heads_left_linked_are_written_after_they_are_freed() {
    let mut trace = shared_module_outlives_first_importer();
    trace.push(Event::Untrack {
        interp: MAIN,
        obj: 1,
    });
    let c = cfg(Design {
        gc_fini: GcFini::Nothing,
        ..Design::CPYTHON
    });
    assert_eq!(
        replay::<Isolation>(&c, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 6,
            name: "no_write_to_freed_gc_node"
        }
    );
    // bpo-46070's fix untracks at the end: nothing is left to untrack.
    let c = cfg(Design {
        gc_fini: GcFini::UntrackAll,
        ..Design::CPYTHON
    });
    let s = run(&c, &trace[..6]);
    assert_eq!(s.objects[1].gc, None);
    assert_eq!(s.interps[SUB as usize].gc_head, Head::Freed);
    assert!(Isolation::step(&c, &s, &trace[6]).is_err());
}

#[test]
fn data_is_released_by_its_owner_through_a_pending_call() {
    let trace = [
        create(SUB, true),
        Event::Share {
            from: MAIN,
            to: SUB,
        },
        Event::Drop {
            interp: MAIN,
            obj: 0,
        },
        Event::Receive { interp: SUB },
        Event::RunPending { interp: MAIN },
    ];
    let c = cfg(Design::CPYTHON);
    let states = replay::<Isolation>(&c, &trace).unwrap();
    assert_eq!(
        states[4].xid,
        Xid::Pending {
            obj: 0,
            owner: MAIN
        }
    );
    assert!(!states[4].objects[0].freed);
    assert!(states[5].objects[0].freed);
    assert_ne!(states[5].seen & seen::XID_FREED_BY_OWNER, 0);

    let c = cfg(Design {
        xid_release_in_owner: false,
        ..Design::CPYTHON
    });
    assert_eq!(
        replay::<Isolation>(&c, &trace[..4]).unwrap_err(),
        TraceError::Invariant {
            index: 3,
            name: "freed_by_owning_allocator"
        }
    );
    // Between two interpreters of the main obmalloc the same free is
    // harmless.
    let mut legacy = trace[..4].to_vec();
    legacy[0] = create(SUB, false);
    let s = run(&c, &legacy);
    assert!(s.objects[0].freed && !s.wrong_allocator);
}

#[test]
fn a_release_after_the_owner_ended_leaks_and_keeps_its_arenas() {
    let mut trace = vec![
        create(SUB, true),
        Event::Share {
            from: SUB,
            to: MAIN,
        },
    ];
    trace.extend(end(SUB));
    trace.push(Event::Receive { interp: MAIN });
    let states = replay::<Isolation>(&cfg(Design::CPYTHON), &trace).unwrap();
    let last = states.last().unwrap();
    assert_ne!(last.seen & seen::ARENAS_KEPT, 0);
    assert_ne!(last.seen & seen::XID_OWNER_GONE, 0);
    assert!(!last.objects[0].freed, "the reference is leaked");
}

#[test]
fn an_isolated_subinterpreter_is_refused_single_phase_modules() {
    let trace = [create(SUB, true), import(SUB), import(MAIN)];
    let states = replay::<Isolation>(&cfg(Design::CPYTHON), &trace).unwrap();
    assert_eq!(states[2].interps[SUB as usize].import, Import::Refused);
    assert!(states[2].objects.is_empty());
    assert_eq!(states[3].objects[0].maker, MAIN);

    let c = cfg(Design {
        single_phase_check: false,
        ..Design::CPYTHON
    });
    assert_eq!(
        replay::<Isolation>(&c, &trace).unwrap_err(),
        TraceError::Invariant {
            index: 1,
            name: "isolated_heap_not_shared"
        }
    );
    let mut later = trace.to_vec();
    later.extend(&end(SUB)[..2]);
    let s = run(&c, &later);
    assert!(s.objects[0].freed && s.objects[0].holders & 1 != 0);
}

#[test]
fn steps_out_of_order_are_rejected() {
    let c = Config {
        interps: 3,
        design: Design::CPYTHON,
    };
    let s = Isolation::init(&c);
    assert!(Isolation::step(&c, &s, &create(2, false)).is_err());
    assert!(Isolation::step(&c, &s, &Event::EndClear { interp: MAIN }).is_err());
    assert!(Isolation::step(&c, &s, &Event::EndInterned { interp: 1 }).is_err());
    assert!(Isolation::step(&c, &s, &Event::Receive { interp: MAIN }).is_err());
    assert!(Isolation::step(&c, &s, &import(3)).is_err());
    assert!(c.validate().is_ok());
    assert!(cfg(Design::CPYTHON).validate().is_ok());
    assert!(
        Config {
            interps: 4,
            design: Design::CPYTHON
        }
        .validate()
        .unwrap_err()
        .contains("interps")
    );
}

#[test]
fn enabled_events_are_accepted() {
    for design in [
        Design::CPYTHON,
        Design {
            shared_intern_dict: false,
            gc_fini: GcFini::Nothing,
            xid_release_in_owner: false,
            single_phase_check: false,
        },
        Design {
            gc_fini: GcFini::UntrackAll,
            ..Design::CPYTHON
        },
    ] {
        let c = Config { interps: 3, design };
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _walk in 0..50 {
            let mut s = Isolation::init(&c);
            let mut events = Vec::new();
            for _ in 0..60 {
                events.clear();
                Isolation::enabled(&c, &s, &mut events);
                if events.is_empty() {
                    break;
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let e = events[(seed % events.len() as u64) as usize];
                s = Isolation::step(&c, &s, &e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
            }
        }
    }
}
