//! The manifest against fresh runs: every configuration small enough for
//! a debug build is re-checked here, exactly (result, violated properties,
//! unreached goals, unique-state count). The larger ones are re-checked by
//! `cpyrt check`, which reports any disagreement as not as expected.

use std::collections::BTreeSet;

use cpyrt_models::manifest::{self, Entry};
use cpyrt_models::registry::{self, DEFAULT_BOUNDS};
use cpyrt_models::report::{Source, Status};
use cpyrt_models::run::RunOptions;

/// Largest pinned configuration this test re-runs. A debug build explores
/// about 30,000 states a second (qsbr's base design at 3 threads, 437,020
/// states, takes about 15 s), so with every mechanism's manifest entries
/// this bound keeps the test near 0.7 M states in all. The larger
/// configurations are left to `cpyrt check`.
const DEBUG_MAX_UNIQUE_STATES: usize = 100_000;

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn entries() -> Vec<Entry> {
    manifest::entries().expect("models/manifest.json parses and is consistent")
}

#[test]
fn every_entry_names_a_known_configuration() {
    for e in entries() {
        let m = registry::find(&e.model).unwrap();
        m.variant(&e.variant).unwrap();
        m.check_threads(e.threads).unwrap();
        m.check_bounds(&e.bounds).unwrap();
        let props: BTreeSet<&str> = m.properties().iter().map(|p| p.name).collect();
        for name in e.violated.iter().chain(&e.unreached) {
            assert!(props.contains(name.as_str()), "{e:?}: no property {name}");
        }
    }
}

/// A twin's counterexample is only evidence when a fixed design holds at
/// the same bounds: wherever a configuration is pinned to violate, some
/// variant of the same model is pinned to hold at the same thread count
/// and bounds.
#[test]
fn every_violation_has_a_holding_design_at_the_same_bounds() {
    let all = entries();
    let holds: BTreeSet<(&str, usize, &str)> = all
        .iter()
        .filter(|e| e.violated.is_empty())
        .map(|e| (e.model.as_str(), e.threads, e.bounds.as_str()))
        .collect();
    for e in all.iter().filter(|e| !e.violated.is_empty()) {
        let key = (e.model.as_str(), e.threads, e.bounds.as_str());
        assert!(
            holds.contains(&key),
            "{}/{} is pinned to violate at {key:?} but nothing holds there",
            e.model,
            e.variant
        );
    }
}

/// QSBR is pinned at 1, 2 and 3 threads with the default bounds, and at
/// 4 with the `small` ones, and every twin fails somewhere.
#[test]
fn qsbr_thread_counts_and_twins_are_pinned() {
    let all = entries();
    let qsbr: Vec<&Entry> = all.iter().filter(|e| e.model == "qsbr").collect();
    for t in 1..=3 {
        assert!(
            qsbr.iter()
                .any(|e| e.variant == "base" && e.threads == t && e.bounds == DEFAULT_BOUNDS)
        );
    }
    assert!(
        qsbr.iter()
            .any(|e| e.variant == "base" && e.threads == 4 && e.bounds == "small")
    );
    for v in registry::find("qsbr").unwrap().variants() {
        if v.name == "base" {
            assert!(
                qsbr.iter()
                    .all(|e| e.variant != "base" || e.violated.is_empty())
            );
        } else {
            assert!(
                qsbr.iter()
                    .any(|e| e.variant == v.name && !e.violated.is_empty()),
                "twin {} fails nowhere in the manifest",
                v.name
            );
        }
    }
}

#[test]
fn small_configurations_match_fresh_runs() {
    let small: Vec<Entry> = entries()
        .into_iter()
        .filter(|e| e.unique_states <= DEBUG_MAX_UNIQUE_STATES)
        .collect();
    assert!(
        small.iter().filter(|e| e.model == "qsbr").count() >= 8,
        "the cutoff should keep qsbr's 1- and 2-thread configurations"
    );
    for e in small {
        let m = registry::find(&e.model).unwrap();
        let opts = RunOptions {
            strategy: e.strategy,
            ..RunOptions::default()
        };
        let r = registry::check(m, &e.variant, e.threads, &e.bounds, &opts, &mut |_| {}).unwrap();
        let name = format!("{}/{}/{}/{}", e.model, e.variant, e.threads, e.bounds);
        assert_eq!(r.expected.source, Source::Manifest, "{name}");
        assert!(!r.partial, "{name}");
        assert_eq!(r.unique_states, e.unique_states, "{name}: unique states");
        assert_eq!(sorted(&r.violated), sorted(&e.violated), "{name}: violated");
        assert_eq!(
            sorted(&r.unreached),
            sorted(&e.unreached),
            "{name}: unreached"
        );
        assert_eq!(r.result.name(), e.expected, "{name}: result");
        assert_eq!(r.status, Status::AsExpected, "{name}: {:?}", r.mismatches);
        assert_eq!(r.counterexamples.len(), e.violated.len(), "{name}");
    }
}
