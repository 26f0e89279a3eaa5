//! The locks a pause involves: PyMutex with parking and the fairness
//! hand-off, the runtime read-write mutex, and a pause's stop event.
//!
//! Each lock keeps its state under a short internal `Mutex` and its parked
//! threads as data, so the unlocking step can record which waiter it woke
//! (the spec's [`Wake`]). The `try_*` and `unlock*` methods are the
//! instructions of one spec step and never block; [`PyMutex::wait`] and
//! [`RwMutex::wait`] block, and are only called between steps (see
//! `crate::trace`: a step never blocks).

use std::collections::VecDeque;

use cpyrt_spec::stw::Wake;

use crate::primitive::sync::{Condvar, Mutex, lock, wait};

/// When an unlock hands the lock to the waiter it wakes.
///
/// CPython hands it over once the waiter has waited longer than
/// `TIME_TO_BE_FAIR_NS` (1 ms, `mutex_unpark`). loom and shuttle have no
/// time, so the runtime counts instead: a waiter gets the lock handed to it
/// once it has been woken without it `misses` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandOff {
    pub misses: u8,
}

impl HandOff {
    /// Every unlock with a waiter hands the lock over (the waiter always
    /// waited "long enough"): the setting that exposes hand-off bugs.
    pub const ALWAYS: HandOff = HandOff { misses: 0 };
}

#[derive(Debug, Default)]
struct MutexState {
    owner: Option<u8>,
    /// Parked waiters, first parked first (`_PyParkingLot_Unpark` wakes the
    /// oldest).
    parked: VecDeque<u8>,
    /// Times each thread was woken without the lock, by thread id.
    misses: [u8; super::MAX_THREADS],
    /// The process exited: parked threads stop waiting.
    abandoned: bool,
}

/// `PyMutex` (`Python/lock.c`): an owner, FIFO parked waiters, and the
/// fairness hand-off.
#[derive(Debug)]
pub(crate) struct PyMutex {
    state: Mutex<MutexState>,
    woken: Condvar,
    hand_off: HandOff,
}

impl PyMutex {
    pub(crate) fn new(hand_off: HandOff) -> Self {
        PyMutex {
            state: Mutex::new(MutexState::default()),
            woken: Condvar::new(),
            hand_off,
        }
    }

    /// One attempt of `_PyMutex_LockTimed`: takes the lock if it is free
    /// or was handed to `me`; otherwise parks `me` (the caller detaches in
    /// the same step) and returns false.
    pub(crate) fn try_lock_or_park(&self, me: u8) -> bool {
        let mut s = lock(&self.state);
        match s.owner {
            None => {
                s.owner = Some(me);
                s.misses[me as usize] = 0;
                true
            }
            Some(o) if o == me => {
                // Handed to us while we were parked.
                s.misses[me as usize] = 0;
                true
            }
            Some(_) => {
                assert!(!s.parked.contains(&me), "thread {me} parked twice");
                s.parked.push_back(me);
                false
            }
        }
    }

    /// `_PyMutex_TryUnlock` / `mutex_unpark`: unparks the oldest waiter,
    /// handing it the lock when it has missed it often enough.
    pub(crate) fn unlock(&self, me: u8) -> Option<Wake> {
        let mut s = lock(&self.state);
        assert_eq!(
            s.owner,
            Some(me),
            "thread {me} unlocks a PyMutex it does not own"
        );
        let wake = s.parked.pop_front().map(|w| {
            let handed = s.misses[w as usize] >= self.hand_off.misses;
            if handed {
                s.misses[w as usize] = 0;
            } else {
                s.misses[w as usize] = s.misses[w as usize].saturating_add(1);
            }
            Wake { thread: w, handed }
        });
        s.owner = wake.filter(|w| w.handed).map(|w| w.thread);
        if wake.is_some() {
            self.woken.notify_all();
        }
        wake
    }

    /// Blocks until `me` is no longer parked (an unlock woke it): true; or
    /// until the process exited: false.
    #[must_use]
    pub(crate) fn wait(&self, me: u8) -> bool {
        let mut s = lock(&self.state);
        while s.parked.contains(&me) && !s.abandoned {
            s = wait(&self.woken, s);
        }
        !s.parked.contains(&me)
    }

    /// The process exits: wake every parked thread, for good.
    pub(crate) fn abandon(&self) {
        lock(&self.state).abandoned = true;
        self.woken.notify_all();
    }
}

#[derive(Debug, Default)]
struct RwState {
    writer: Option<u8>,
    readers: u8,
    /// `_Py_HAS_PARKED`.
    has_parked: bool,
    /// Parked threads (bitmask).
    parked: u8,
    /// The process exited: parked threads stop waiting.
    abandoned: bool,
}

/// `_PyRWMutex`: not fair, not reentrant, a parked waiter turns new readers
/// away, and every unlock that can matter wakes everyone.
#[derive(Debug, Default)]
pub(crate) struct RwMutex {
    state: Mutex<RwState>,
    woken: Condvar,
}

impl RwMutex {
    /// One attempt of `_PyRWMutex_Lock` (`write`) or `_PyRWMutex_RLock`;
    /// parks `me` and returns false when it must wait.
    pub(crate) fn try_lock_or_park(&self, me: u8, write: bool) -> bool {
        let mut s = lock(&self.state);
        let free = if write {
            s.writer.is_none() && s.readers == 0
        } else {
            s.writer.is_none() && !s.has_parked
        };
        if free {
            if write {
                s.writer = Some(me);
            } else {
                s.readers |= 1 << me;
            }
        } else {
            s.has_parked = true;
            s.parked |= 1 << me;
        }
        free
    }

    /// `_PyRWMutex_Unlock` / `_PyRWMutex_RUnlock`.
    pub(crate) fn unlock(&self, me: u8, write: bool) {
        let mut s = lock(&self.state);
        let wake_all = if write {
            assert_eq!(s.writer, Some(me), "write unlock by a non-writer");
            s.writer = None;
            let parked = s.has_parked;
            s.has_parked = false;
            parked
        } else {
            assert!(s.readers & (1 << me) != 0, "read unlock by a non-reader");
            s.readers &= !(1 << me);
            s.readers == 0 && s.has_parked
        };
        if wake_all {
            s.parked = 0;
            self.woken.notify_all();
        }
    }

    /// Blocks until `me` is no longer parked: true; or until the process
    /// exited: false.
    #[must_use]
    pub(crate) fn wait(&self, me: u8) -> bool {
        let mut s = lock(&self.state);
        while s.parked & (1 << me) != 0 && !s.abandoned {
            s = wait(&self.woken, s);
        }
        s.parked & (1 << me) == 0
    }

    /// The process exits: wake every parked thread, for good.
    pub(crate) fn abandon(&self) {
        lock(&self.state).abandoned = true;
        self.woken.notify_all();
    }
}
