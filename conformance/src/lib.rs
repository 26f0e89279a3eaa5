//! Conformance between the reference runtime and the models, in both
//! directions:
//!
//! - **Reference traces are spec traces.** Workloads drive the reference
//!   under loom, shuttle and quickcheck with tracing on; every recorded trace
//!   must replay through the spec's `step` with every invariant holding
//!   (`cpyrt_spec::replay`).
//! - **The model's states are reached by the reference.** The abstract states
//!   those replays visit are collected and compared with the model's
//!   reachable set ([`coverage`]); the report names the fraction and lists
//!   what was missed, so each unreached state is explained or closed.
//!
//! This is the only crate that sees both the reference and the models.
//! Workloads live here, one module per mechanism (`qsbr.rs`), shared by the
//! std, loom and shuttle test targets in `conformance/tests/`.

pub mod coverage;
#[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
pub mod gil;
pub mod qsbr;
#[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
pub mod qsbr_guided;
pub mod qsbr_lockstep;
#[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
pub mod stw_guided;

/// A source of choices for a workload: shuttle's scheduler-controlled
/// random numbers, a quickcheck-generated script, or a fixed script for loom.
pub trait Choose {
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize;
}

/// Choices read from a script, wrapping around; an empty script always
/// chooses 0.
pub struct Script {
    choices: Vec<u8>,
    next: usize,
}

impl Script {
    pub fn new(choices: Vec<u8>) -> Script {
        Script { choices, next: 0 }
    }
}

impl Choose for Script {
    fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        let c = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        if self.next >= self.choices.len() {
            self.next = 0;
        }
        c as usize % n
    }
}

/// A small deterministic generator (xorshift64*), for std runs that need
/// many choices from one seed.
pub struct Seeded(pub u64);

impl Choose for Seeded {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}
