//! Lock-step control of a GIL runtime's threads, for guided exploration.
//!
//! A runtime built with [`Runtime::guided`](super::Runtime::guided) makes
//! every thread pass its gate once before each spec event it records, and
//! before the lock acquire an event follows, so that a thread never holds
//! a mutex the recorded trace does not give it. A driver lets one thread
//! through at a time ([`Gate::permit`]) and waits for its event, so a run
//! is a sequence of the driver's choices and its trace a function of that
//! sequence.
//!
//! Two waits would otherwise decide something on their own, and under a
//! gate they do not:
//! - A woken waiter on `cond` or `switch_cond` comes back holding the
//!   mutex. Under a gate it lets the mutex go at once and re-takes it only
//!   when let through, which is the spec's split (`Relock`, then `Lock`):
//!   whether it or another thread gets the mutex first is the driver's
//!   choice, not the OS scheduler's.
//! - Time does not pass on its own: the switch interval is an hour, and
//!   the driver ends a timed wait with `Runtime::expire_waiters`.
//!
//! [`Gate::abort`] ends a run: a thread at its gate or in a gated wait
//! unwinds with an [`Aborted`] payload (without running the panic hook),
//! which the driver's thread catches.
//!
//! The gate uses `std` synchronisation directly: it is a test harness
//! around the runtime, not part of what the model checkers explore.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// The payload a gated thread unwinds with when its run is aborted.
#[derive(Debug)]
pub struct Aborted;

#[derive(Debug)]
struct Permits {
    /// The step each thread may take next: `Some(alt)`, `alt` choosing
    /// the other branch where the spec offers two (see [`Gate::permit_alt`]).
    next: Vec<Option<bool>>,
    aborted: bool,
}

/// The gate every thread of a guided runtime passes before each event.
#[derive(Debug)]
pub struct Gate {
    permits: Mutex<Permits>,
    cond: Condvar,
}

/// How often a gated wait looks for an abort.
pub(super) const POLL: Duration = Duration::from_millis(1);

impl Gate {
    /// A closed gate for `threads` threads.
    pub fn new(threads: usize) -> Gate {
        Gate {
            permits: Mutex::new(Permits {
                next: vec![None; threads],
                aborted: false,
            }),
            cond: Condvar::new(),
        }
    }

    /// Lets thread `t` take its next step.
    pub fn permit(&self, t: u8) {
        self.grant(t, false);
    }

    /// Lets thread `t` take its next step on the other branch, where the
    /// spec offers two that the runtime would otherwise decide: leaving a
    /// `Run` segment instead of an eval-breaker check, and an allocation
    /// whose hook does not run.
    pub fn permit_alt(&self, t: u8) {
        self.grant(t, true);
    }

    fn grant(&self, t: u8, alt: bool) {
        let mut p = self.permits.lock().unwrap_or_else(PoisonError::into_inner);
        assert!(
            p.next[t as usize].is_none(),
            "thread {t} has not taken its last step"
        );
        p.next[t as usize] = Some(alt);
        drop(p);
        self.cond.notify_all();
    }

    /// Ends the run: every gated thread unwinds at its gate or wait.
    pub fn abort(&self) {
        let mut p = self.permits.lock().unwrap_or_else(PoisonError::into_inner);
        p.aborted = true;
        drop(p);
        self.cond.notify_all();
    }

    /// Whether the run was aborted.
    pub fn aborted(&self) -> bool {
        self.permits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .aborted
    }

    /// Unwinds with [`Aborted`] when the run was aborted.
    pub(super) fn check_abort(&self) {
        if self.aborted() {
            std::panic::resume_unwind(Box::new(Aborted));
        }
    }

    /// Thread `t` waits until it may take its next step; true when it is
    /// to take the other branch.
    pub(super) fn pass(&self, t: u8) -> bool {
        let mut p = self.permits.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if p.aborted {
                drop(p);
                std::panic::resume_unwind(Box::new(Aborted));
            }
            if let Some(alt) = p.next[t as usize].take() {
                return alt;
            }
            p = self.cond.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
    }
}
