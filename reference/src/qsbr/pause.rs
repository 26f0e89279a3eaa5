//! The growth pause: a minimal stand-in for stop-the-world.
//!
//! `_Py_qsbr_reserve` grows the slot array under `_PyEval_StopTheWorld`,
//! which waits until every other thread of the interpreter has left the
//! ATTACHED state, keeps them from attaching until `_PyEval_StartTheWorld`,
//! and makes attached threads park at their next eval-breaker check. The
//! spec abstracts that to "growth waits until no thread is attached"; this
//! module implements exactly that abstraction and nothing more:
//!
//! - [`Pause::enter`] (attach) waits while a pause is on, then counts the
//!   thread as attached;
//! - [`Pause::leave`] (detach) uncounts it and wakes the pauser;
//! - [`Pause::stop`] sets the request and waits until the count is zero;
//!   the returned guard ends the pause;
//! - [`Pause::requested`] is the eval-breaker bit: an attached thread reads
//!   it at its quiescent state and parks (detach, wait, attach).
//!
//! The `stw` mechanism replaces this module with the real protocol
//! (per-thread states, the countdown, the requester's detach rules).
//!
//! Memory: the mutex is also what makes growth safe for lock-free scanners.
//! An attached thread may read the slot array without `shared->mutex`; its
//! last access happens before its `leave` (mutex release), which happens
//! before the pauser's `stop` returns (mutex acquire), so freeing the old
//! array after `stop` races with nobody. Symmetrically the new array pointer
//! and the rewritten slot pointers, stored before the guard's release, are
//! visible to every thread whose `enter` acquires the mutex afterwards.

use crate::primitive::sync::atomic::{AtomicBool, Ordering};
use crate::primitive::sync::{Condvar, Mutex, lock, wait};

#[derive(Debug)]
struct State {
    /// A pause is requested or in force.
    requested: bool,
    /// Threads between `enter` and `leave`.
    attached: usize,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Pause {
    state: Mutex<State>,
    changed: Condvar,
    /// Mirror of `state.requested`, read without the mutex at quiescent
    /// states. Relaxed: it is a hint; every decision is taken under the
    /// mutex, and a thread that misses it parks at a later check.
    requested: AtomicBool,
}

/// The world is paused while this guard lives.
#[must_use = "the pause ends when the guard is dropped"]
pub(crate) struct Stopped<'a> {
    pause: &'a Pause,
}

impl Pause {
    pub(crate) fn new() -> Self {
        Pause {
            state: Mutex::new(State {
                requested: false,
                attached: 0,
            }),
            changed: Condvar::new(),
            requested: AtomicBool::new(false),
        }
    }

    /// Counts the caller as attached, first waiting out any pause
    /// (`tstate_wait_attach`).
    pub(crate) fn enter(&self) {
        let mut state = lock(&self.state);
        while state.requested {
            state = wait(&self.changed, state);
        }
        state.attached += 1;
    }

    /// Uncounts the caller; wakes a pauser waiting for the last one.
    pub(crate) fn leave(&self) {
        let mut state = lock(&self.state);
        invariant!(state.attached > 0, "leave without enter");
        state.attached -= 1;
        if state.requested && state.attached == 0 {
            self.changed.notify_all();
        }
    }

    /// Requests a pause and waits until no thread is attached. The caller
    /// must not be attached itself (it would wait for itself).
    pub(crate) fn stop(&self) -> Stopped<'_> {
        let mut state = lock(&self.state);
        // Growers are serialized by `shared->mutex`, so no pause is on.
        invariant!(!state.requested, "nested pause");
        state.requested = true;
        self.requested.store(true, Ordering::Relaxed);
        while state.attached > 0 {
            state = wait(&self.changed, state);
        }
        Stopped { pause: self }
    }

    /// After `fork()`, in the child: only the forker survives, so the
    /// count of attached threads is its own (`attached`, 0 or 1).
    pub(crate) fn after_fork(&self, attached: usize) {
        let mut state = lock(&self.state);
        state.attached = attached;
    }

    /// The eval-breaker bit: a pause wants attached threads to park.
    #[inline]
    pub(crate) fn requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }
}

impl Drop for Stopped<'_> {
    /// `_PyEval_StartTheWorld`: lets waiting attachers in.
    fn drop(&mut self) {
        let mut state = lock(&self.pause.state);
        invariant_eq!(state.attached, 0, "a thread attached during a pause");
        state.requested = false;
        self.pause.requested.store(false, Ordering::Relaxed);
        self.pause.changed.notify_all();
    }
}
