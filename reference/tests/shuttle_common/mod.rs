//! The two schedulers every shuttle test target runs: seeded random and
//! PCT. Each target keeps its own seed and PCT depth (the depth is the
//! number of preemptions its twins need).
#![allow(dead_code)]

use shuttle::scheduler::{PctScheduler, RandomScheduler, Scheduler};

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Random,
    Pct,
}

pub const KINDS: [Kind; 2] = [Kind::Random, Kind::Pct];

/// A scheduler of `kind` that runs `schedules` schedules from `seed`; the
/// same arguments give the same schedules, and the same counterexample,
/// every run.
pub fn scheduler(
    kind: Kind,
    seed: u64,
    pct_depth: usize,
    schedules: usize,
) -> Box<dyn Scheduler + Send> {
    match kind {
        Kind::Random => Box::new(RandomScheduler::new_from_seed(seed, schedules)),
        Kind::Pct => Box::new(PctScheduler::new_from_seed(seed, pct_depth, schedules)),
    }
}
