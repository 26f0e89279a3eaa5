//! QSBR coverage by the guided lock-step explorer (std): which of the
//! model's reachable states the reference reaches when every operation is
//! issued in every state the spec makes safe for it, and why the rest are
//! out of reach.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

use std::collections::{BTreeMap, HashSet};

use cpyrt_conformance::coverage::{compare, model_states};
use cpyrt_conformance::qsbr_guided::Explorer;
use cpyrt_conformance::qsbr_lockstep::{Classifier, Missed, Splits, lockstep_states};
use cpyrt_spec::qsbr::{Design, Qsbr, State};

/// Model states the guided explorer reached when this bound was set
/// (6,752 of 6,879: 98.2%). A drop below it is a regression of the
/// explorer or of the reference.
const MIN_REACHED: usize = 6_740;

/// How many missed states each class holds (2 threads, base design). A
/// changed count is a change of the reference, the spec or the model that
/// someone must explain.
const EXPECTED_CLASSES: &[(Missed, usize)] = &[
    (Missed::Interleaved, 16),
    (Missed::InterpSkipped, 14),
    (Missed::StoppedProcess, 97),
];

#[test]
fn guided_exploration_reaches_the_models_states() {
    let cfg = cpyrt_models::qsbr::config(2, Design::CPYTHON);
    let model = model_states::<Qsbr>(&cfg, 1_000_000).expect("model graph");
    // Unbounded: the whole lock-step space takes about 90,000 operations
    // (about 1.5 s in a debug build).
    let found = Explorer::new(&cfg).explore(usize::MAX);
    let cov = compare(&model, &found.visited);
    println!(
        "guided: {} of {} model states ({:.1}%), {} outside; {} branch points, {} runs, {} operations",
        cov.reached,
        cov.model,
        100.0 * cov.fraction(),
        cov.outside.len(),
        found.branch_points,
        found.runs,
        found.ops,
    );
    assert!(
        cov.outside.is_empty(),
        "{} reference states the model lacks, e.g. {:?}",
        cov.outside.len(),
        cov.outside[0]
    );

    // The explorer reaches exactly what the lock-step abstraction allows:
    // no operation the spec makes safe was left untried, and the reference
    // took no step the abstraction does not predict.
    let lockstep = lockstep_states(&cfg, Splits::NONE);
    let reached: HashSet<State> = found.visited.intersection(&model).cloned().collect();
    let predicted: HashSet<State> = lockstep.intersection(&model).cloned().collect();
    assert_eq!(
        reached.len(),
        predicted.len(),
        "the explorer and the lock-step abstraction disagree"
    );
    assert!(
        reached == predicted,
        "the explorer and the lock-step abstraction disagree"
    );

    // Every missed state needs an interruption the lock-step reference
    // never makes.
    let classifier = Classifier::new(&cfg);
    let mut classes: BTreeMap<Missed, Vec<&State>> = BTreeMap::new();
    for s in &cov.missed {
        classes.entry(classifier.classify(s)).or_default().push(s);
    }
    for (class, states) in &classes {
        println!("missed, {class:?}: {}", states.len());
    }
    if let Some(states) = classes.get(&Missed::Unexplained) {
        panic!(
            "{} missed states no lock-step split explains, e.g. {:?}",
            states.len(),
            states[0]
        );
    }
    let counts: Vec<(Missed, usize)> = classes.iter().map(|(c, v)| (*c, v.len())).collect();
    assert_eq!(counts, EXPECTED_CLASSES, "missed-state classes changed");
    shuttle_union(&model, &reached, &classes);
    assert!(
        cov.reached >= MIN_REACHED,
        "guided coverage fell to {} (bound {MIN_REACHED})",
        cov.reached
    );
}

/// With `CPYRT_QSBR_SHUTTLE_STATES` naming the file the shuttle coverage run
/// wrote (see `conformance/tests/shuttle_qsbr.rs`), reports the union of
/// both runs and which missed classes shuttle's preemptions reach.
fn shuttle_union(
    model: &HashSet<State>,
    guided: &HashSet<State>,
    classes: &BTreeMap<Missed, Vec<&State>>,
) {
    let Some(path) = std::env::var_os("CPYRT_QSBR_SHUTTLE_STATES") else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("read the shuttle run's states");
    let shuttle: HashSet<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let by_name: HashSet<String> = model.iter().map(|s| format!("{s:?}")).collect();
    assert!(
        shuttle.iter().all(|l| by_name.contains(*l)),
        "the shuttle file lists states the model lacks"
    );
    let union = model
        .iter()
        .filter(|s| guided.contains(*s) || shuttle.contains(format!("{s:?}").as_str()))
        .count();
    println!(
        "shuttle: {} model states; union with guided: {} of {} ({:.1}%)",
        shuttle.len(),
        union,
        model.len(),
        100.0 * union as f64 / model.len() as f64
    );
    for (class, states) in classes {
        let hit = states
            .iter()
            .filter(|s| shuttle.contains(format!("{s:?}").as_str()))
            .count();
        println!("  {class:?}: shuttle reaches {hit} of {}", states.len());
        // No schedule stops process_delayed at a reached head.
        if *class == Missed::StoppedProcess {
            assert_eq!(
                hit, 0,
                "shuttle reached a state the classes call unreachable"
            );
        }
    }
}
