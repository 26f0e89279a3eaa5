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
//! Attach and detach are one atomic read-modify-write each when no pause is
//! on: the request bit and the attached count share one word, so `enter` is
//! a compare-and-swap that succeeds only while the bit is clear, and `leave`
//! is a subtraction. Only a thread that finds the bit set takes the mutex
//! (to wait, or to wake the pauser when it was the last attached thread).
//! This mirrors CPython, whose attach is a compare-and-swap of the thread
//! state from DETACHED to ATTACHED (`tstate_try_attach` in
//! `Python/pystate.c`) and only falls back to waiting on the stop event
//! when a pause is requested.
//!
//! Memory: the word is also what makes growth safe for lock-free scanners.
//! An attached thread may read the slot array without `shared->mutex`; its
//! last access happens before its `leave` (a Release subtraction), which
//! happens before the pauser's Acquire load that sees the count at zero, so
//! freeing the old array after `stop` races with nobody. Symmetrically the
//! new array pointer and the rewritten slot pointers, stored before the
//! guard clears the bit with Release, are visible to every thread whose
//! `enter` compare-and-swap (Acquire) reads the cleared word afterwards.

use crate::primitive::sync::atomic::{AtomicUsize, Ordering};
use crate::primitive::sync::{Condvar, Mutex, lock, wait};

/// The request bit of [`Pause::word`]; the bits below it count attached
/// threads.
const REQUESTED: usize = 1 << (usize::BITS - 1);

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Pause {
    /// `REQUESTED` while a pause is requested or in force, plus the number
    /// of threads between `enter` and `leave`.
    word: AtomicUsize,
    /// Held by the pauser while it sets the request and waits, and by
    /// threads that wait out a pause or wake the pauser, so no wake-up is
    /// lost between a check of `word` and a wait.
    mutex: Mutex<()>,
    changed: Condvar,
}

/// The world is paused while this guard lives.
#[must_use = "the pause ends when the guard is dropped"]
pub(crate) struct Stopped<'a> {
    pause: &'a Pause,
}

impl Pause {
    pub(crate) fn new() -> Self {
        Pause {
            word: AtomicUsize::new(0),
            mutex: Mutex::new(()),
            changed: Condvar::new(),
        }
    }

    /// Counts the caller as attached, first waiting out any pause
    /// (`tstate_wait_attach`).
    pub(crate) fn enter(&self) {
        let word = self.word.load(Ordering::Relaxed);
        if word & REQUESTED == 0
            && self
                .word
                .compare_exchange(word, word + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
        self.enter_slow();
    }

    #[cold]
    fn enter_slow(&self) {
        let mut guard = lock(&self.mutex);
        loop {
            let word = self.word.load(Ordering::Relaxed);
            if word & REQUESTED != 0 {
                // The pauser clears the bit under the mutex, so the wake-up
                // cannot fall between this check and the wait.
                guard = wait(&self.changed, guard);
                continue;
            }
            if self
                .word
                .compare_exchange(word, word + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Uncounts the caller; wakes a pauser waiting for the last one.
    pub(crate) fn leave(&self) {
        let before = self.word.fetch_sub(1, Ordering::Release);
        invariant!(before & !REQUESTED > 0, "leave without enter");
        if before == REQUESTED | 1 {
            // The last attached thread of a requested pause: the pauser
            // checks the count under the mutex before it waits, so taking
            // the mutex here orders this wake-up after that check.
            let _guard = lock(&self.mutex);
            self.changed.notify_all();
        }
    }

    /// Requests a pause and waits until no thread is attached. The caller
    /// must not be attached itself (it would wait for itself).
    pub(crate) fn stop(&self) -> Stopped<'_> {
        let mut guard = lock(&self.mutex);
        let before = self.word.fetch_or(REQUESTED, Ordering::Relaxed);
        // Growers are serialized by `shared->mutex`, so no pause is on.
        invariant!(before & REQUESTED == 0, "nested pause");
        while self.word.load(Ordering::Acquire) != REQUESTED {
            guard = wait(&self.changed, guard);
        }
        Stopped { pause: self }
    }

    /// After `fork()`, in the child: only the forker survives, so the
    /// count of attached threads is its own (`attached`, 0 or 1); the
    /// request bit is left as the parent had it.
    pub(crate) fn after_fork(&self, attached: usize) {
        let _guard = lock(&self.mutex);
        let word = self.word.load(Ordering::Relaxed);
        self.word
            .store((word & REQUESTED) | attached, Ordering::Relaxed);
    }

    /// The eval-breaker bit: a pause wants attached threads to park.
    /// Relaxed: it is a hint; a thread that misses it parks at a later
    /// check.
    #[inline]
    pub(crate) fn requested(&self) -> bool {
        self.word.load(Ordering::Relaxed) & REQUESTED != 0
    }
}

impl Drop for Stopped<'_> {
    /// `_PyEval_StartTheWorld`: lets waiting attachers in.
    fn drop(&mut self) {
        let _guard = lock(&self.pause.mutex);
        let before = self.pause.word.fetch_and(!REQUESTED, Ordering::Release);
        invariant_eq!(before, REQUESTED, "a thread attached during a pause");
        self.pause.changed.notify_all();
    }
}
