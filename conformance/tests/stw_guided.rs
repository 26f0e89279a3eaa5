//! Stop-the-world coverage by the step-gated guided explorer (std).
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

use cpyrt_conformance::coverage::{compare, model_states};
use cpyrt_conformance::stw_guided::Explorer;
use cpyrt_reference::stw::HandOff;
use cpyrt_spec::stw::{Design, Stop};

fn measure(threads: usize, interps: u8, hand_off: HandOff, max: usize) {
    let cfg = cpyrt_models::stw::config(threads, interps, Design::CPYTHON);
    let model = model_states::<Stop>(&cfg, 10_000_000).expect("model graph");
    let t0 = std::time::Instant::now();
    let found = Explorer::new(&cfg, hand_off).explore(max);
    let cov = compare(&model, &found.visited);
    println!(
        "{threads}t {interps}i {hand_off:?}: {} of {} ({:.1}%), {} outside; {} nodes, {} runs, {} actions, {} steps, complete {} in {:.1?}",
        cov.reached,
        cov.model,
        100.0 * cov.fraction(),
        cov.outside.len(),
        found.nodes,
        found.runs,
        found.actions,
        found.steps,
        found.complete,
        t0.elapsed()
    );
    assert!(cov.outside.is_empty());
}

#[test]
fn probe() {
    let n: usize = std::env::var("PROBE_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let t: usize = std::env::var("PROBE_T")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let i: u8 = std::env::var("PROBE_I")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let m: u8 = std::env::var("PROBE_M")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    measure(t, i, HandOff { misses: m }, n);
}
