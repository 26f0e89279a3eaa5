//! QSBR coverage by the guided lock-step explorer (std): which of the
//! model's reachable states the reference reaches when every operation is
//! issued in every state the spec makes safe for it, and why the rest are
//! out of reach.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

use cpyrt_conformance::coverage::{compare, model_states};
use cpyrt_conformance::qsbr_guided::Explorer;
use cpyrt_spec::qsbr::{Design, Qsbr};

#[test]
fn guided_exploration_reaches_the_models_states() {
    let cfg = cpyrt_models::qsbr::config(2, Design::CPYTHON);
    let model = model_states::<Qsbr>(&cfg, 1_000_000).expect("model graph");
    let t0 = std::time::Instant::now();
    let found = Explorer::new(&cfg).explore(usize::MAX);
    let cov = compare(&model, &found.visited);
    println!(
        "guided: {} of {} model states ({:.1}%), {} outside, {} branch points, {} runs, {} ops, {:?}",
        cov.reached,
        cov.model,
        100.0 * cov.fraction(),
        cov.outside.len(),
        found.branch_points,
        found.runs,
        found.ops,
        t0.elapsed()
    );
    for s in cov.missed.iter().take(10) {
        println!("missed: {s:?}");
    }
    assert!(cov.outside.is_empty());
}
