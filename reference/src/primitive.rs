//! The one module that names `std`, `loom` and `shuttle`.
//!
//! Every other module of the reference runtime imports its atomics, fences,
//! locks, condition variables, `Arc`, threads and `UnsafeCell` from here, so
//! one build flag swaps the whole runtime onto a model checker's primitives:
//!
//! - default: `std`;
//! - `--cfg cpyrt_loom`: `loom` (exhaustive within a preemption bound, with
//!   its own model of C11 orderings: `SeqCst` fences are modelled, `SeqCst`
//!   loads and stores are treated as `AcqRel`);
//! - `--cfg cpyrt_shuttle`: `shuttle` (randomized and PCT schedules over
//!   sequentially consistent memory).
//!
//! The pattern is crossbeam-epoch's `primitive` module. Under loom or shuttle
//! every primitive panics outside a model run, so the passes are built as
//! their own test targets (see `reference/tests/`), and the plain `std` tests
//! are gated out of those builds.
//!
//! `UnsafeCell` has loom's closure API (`with`, `with_mut`) everywhere, so
//! loom can check the accesses it guards for causality.

#[cfg(all(cpyrt_loom, cpyrt_shuttle))]
compile_error!("cpyrt_loom and cpyrt_shuttle select different schedulers; set at most one");

/// Locks, condition variables and `Arc`.
pub mod sync {
    #[cfg(cpyrt_loom)]
    pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    #[cfg(cpyrt_shuttle)]
    pub use shuttle::sync::{Arc, Condvar, Mutex, MutexGuard};
    #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
    pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};

    use std::sync::{PoisonError, TryLockError};

    /// Atomics and fences.
    pub mod atomic {
        #[cfg(cpyrt_loom)]
        pub use loom::sync::atomic::{
            AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, fence,
        };
        #[cfg(cpyrt_shuttle)]
        pub use shuttle::sync::atomic::{
            AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, fence,
        };
        #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
        pub use std::sync::atomic::{
            AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, fence,
        };

        pub use std::sync::atomic::Ordering;
    }

    /// Locks `mutex`, ignoring poisoning.
    ///
    /// A panic inside a critical section is how the ghost checks report a
    /// use-after-free; the data the runtime's mutexes guard is left
    /// consistent at every panic point, so later lockers may proceed.
    pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tries to lock `mutex` without blocking (`_PyMutex_LockTimed(m, 0, 0)`).
    pub fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
        match mutex.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Waits on `condvar`, ignoring poisoning (see [`lock`]).
    pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits on `condvar` for at most `timeout`, ignoring poisoning; true
    /// when the wait timed out. loom 0.7.3 and shuttle 0.9.10 never time
    /// out (their `wait_timeout` is a plain `wait`), so code that relies on
    /// a timeout firing must model time itself under them (the GIL's
    /// `expire_waiters`).
    pub fn wait_timeout<'a, T>(
        condvar: &Condvar,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        let (guard, result) = condvar
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        (guard, result.timed_out())
    }
}

/// Threads.
pub mod thread {
    #[cfg(cpyrt_loom)]
    pub use loom::thread::{JoinHandle, spawn, yield_now};
    #[cfg(cpyrt_shuttle)]
    pub use shuttle::thread::{JoinHandle, spawn, yield_now};
    #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
    pub use std::thread::{JoinHandle, spawn, yield_now};

    // Thread-locals of the scheduler's threads (shuttle's and loom's
    // threads share OS threads, so `std::thread_local!` would be shared).
    #[cfg(cpyrt_loom)]
    pub use loom::thread_local;
    #[cfg(cpyrt_shuttle)]
    pub use shuttle::thread_local;
    #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
    pub use std::thread_local;
}

/// `UnsafeCell` with loom's closure API.
pub mod cell {
    #[cfg(cpyrt_loom)]
    pub use loom::cell::UnsafeCell;

    /// `std`'s `UnsafeCell` behind loom's `with` / `with_mut` API.
    #[cfg(not(cpyrt_loom))]
    #[derive(Debug, Default)]
    pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    #[cfg(not(cpyrt_loom))]
    impl<T> UnsafeCell<T> {
        pub fn new(value: T) -> Self {
            UnsafeCell(core::cell::UnsafeCell::new(value))
        }

        /// Calls `f` with a shared raw pointer to the contents. The caller
        /// promises no concurrent `with_mut`.
        #[inline]
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Calls `f` with a unique raw pointer to the contents. The caller
        /// promises exclusive access for the duration of `f`.
        #[inline]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

/// Which scheduler this build runs under.
pub const SCHEDULER: &str = if cfg!(cpyrt_loom) {
    "loom"
} else if cfg!(cpyrt_shuttle) {
    "shuttle"
} else {
    "std"
};

/// True when the build runs on a model checker's primitives, where a real
/// use-after-free would be undefined behaviour inside the checker itself.
pub const MODEL_CHECKED: bool = cfg!(any(cpyrt_loom, cpyrt_shuttle));

/// Runs `f` under the active scheduler with its default exploration: once on
/// `std`, `loom::model` (whose bounds follow `LOOM_MAX_PREEMPTIONS` and the
/// other `LOOM_*` variables) under loom, and [`SHUTTLE_DEFAULT_ITERATIONS`]
/// random schedules under shuttle. Tests that pin their own bounds use the
/// checker's builder directly.
pub fn run_model<F>(f: F)
where
    F: Fn() + Send + Sync + 'static,
{
    #[cfg(cpyrt_loom)]
    loom::model(f);
    #[cfg(cpyrt_shuttle)]
    shuttle::check_random(f, SHUTTLE_DEFAULT_ITERATIONS);
    #[cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
    f();
}

/// Schedules [`run_model`] explores under shuttle.
pub const SHUTTLE_DEFAULT_ITERATIONS: usize = 1000;
