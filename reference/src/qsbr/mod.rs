//! QSBR and `_PyMem_FreeDelayed` as a library over real heap memory.
//!
//! # Protocol
//! One [`Domain`] is one interpreter's `_qsbr_shared` plus its delayed-free
//! queue (`interp->mem_free_queue`). It follows `Python/qsbr.c`,
//! `Include/internal/pycore_qsbr.h` and the delayed-free part of
//! `Objects/obmalloc.c` as of CPython 3.13/3.14, function by function:
//!
//! | CPython | here |
//! |---|---|
//! | `_Py_qsbr_reserve`, `qsbr_allocate`, `grow_thread_array`, `initialize_new_array` | [`Domain::reserve`] (`slots.rs`) |
//! | `_Py_qsbr_register` | [`Reservation::register`] |
//! | `_Py_qsbr_unregister` | the last step of [`QsbrThread::exit`] |
//! | `_Py_qsbr_attach`, `_Py_qsbr_detach` | [`QsbrThread::attach`], [`QsbrThread::detach`] |
//! | `_Py_qsbr_quiescent_state` (at the eval breaker) | [`QsbrThread::quiescent_state`] |
//! | `_Py_qsbr_advance` (the GC's `process_delayed_frees`) | [`QsbrThread::advance`] |
//! | `_Py_qsbr_deferred_advance` | the goal of [`QsbrThread::replace`] and [`QsbrThread::free_delayed`] |
//! | `_Py_qsbr_poll`, `qsbr_poll_scan` | [`QsbrThread::poll`] (`domain.rs`) |
//! | `free_delayed`, `_PyMem_FreeDelayed` | [`QsbrThread::free_delayed`], [`QsbrThread::replace`] |
//! | `_PyMem_ProcessDelayed`, `process_queue`, `process_interp_queue` | [`QsbrThread::process_delayed`] (`queue.rs`) |
//! | `_PyMem_AbandonDelayed` | the first step of [`QsbrThread::exit`] |
//! | `_PyMem_FiniDelayed`, `_Py_qsbr_fini` | `Drop for Domain` |
//! | `_Py_qsbr_after_fork` | [`Domain::after_fork`] (`slots.rs`) |
//!
//! Readers load a pointer published in a [`Published`] cell inside a read
//! section ([`QsbrThread::read`]); a writer swaps in a new value and queues
//! the old one for delayed free with a QSBR goal ([`QsbrThread::replace`]).
//! Dropping the owned value is the free.
//!
//! # Abstraction and departures
//! - Stop-the-world is replaced by a minimal pause inside the domain
//!   (`pause.rs`): growth of the slot array waits until no thread is
//!   attached, attached threads park at their next quiescent state, and
//!   attach waits while a pause is on. This is the spec's abstraction of
//!   `_PyEval_StopTheWorld`; the `stw` mechanism will replace it.
//! - Queues are `VecDeque`s, not chunk lists; processing on enqueue still
//!   happens every [`Config::chunk_items`] items, like a chunk filling up.
//! - The freelist hands out the lowest free slot index (CPython pops a LIFO
//!   list): the spec pins the index, and which slot a thread gets affects no
//!   property.
//! - Omitted: the decref-instead-of-free tag bit, immediate frees while the
//!   world is stopped or the interpreter finalizes, and allocation failure.
//!   Fork's `_Py_qsbr_after_fork` is [`Domain::after_fork`], which the
//!   `fork` module's child handler calls.
//! - Orderings: the reader side of the store-buffer argument is a `SeqCst`
//!   fence after the attach store, and deferred goals are read with a
//!   read-modify-write; both are explained where they happen (`thread.rs`).
//!
//! # Properties
//! The spec's invariants (`cpyrt_spec::qsbr::INVARIANTS`) are asserted in
//! debug builds and under loom and shuttle, where the runtime can see them: `seq != OFFLINE` exactly
//! while attached, `wr_seq` odd, `rd_seq <= wr_seq`, goals odd and at most
//! one step ahead, FIFO goals non-decreasing. `no_use_after_free` and
//! `no_write_to_freed_slot_array` are checked by ghost state in
//! [`Reclaim::Ghost`] mode (freed memory is quarantined and flagged, and a
//! dereference of flagged memory panics with a message naming the bug), and
//! by Miri over real frees in [`Reclaim::Real`] mode. With tracing on, the
//! recorded events replay through `cpyrt_spec::replay::<Qsbr>`.
//!
//! # Limits
//! - A traced domain retires values only through one [`Published`] cell
//!   (the spec has one published pointer) and at most 255 objects and 255
//!   slots (the spec's events carry `u8`s); the spec itself bounds objects
//!   to `cpyrt_spec::qsbr::MAX_OBJECTS`.
//! - [`Domain::reserve`] must be called by a thread that is not attached to
//!   the domain (the spec's reserving thread is a new one): growth waits for
//!   every attached thread.

/// Whether the spec's invariants are asserted: in debug builds, and in
/// every loom and shuttle build (those passes run in release mode, and the
/// invariants are half of what they check).
pub(crate) const CHECK_INVARIANTS: bool = cfg!(debug_assertions) || crate::primitive::MODEL_CHECKED;

/// `assert!` when [`CHECK_INVARIANTS`]; compiled out otherwise. Loads made
/// only for a check are Relaxed, so checking adds no synchronization that
/// could hide an ordering bug from loom.
macro_rules! invariant {
    ($($arg:tt)+) => {
        if $crate::qsbr::CHECK_INVARIANTS {
            assert!($($arg)+);
        }
    };
}

/// `assert_eq!` when [`CHECK_INVARIANTS`].
macro_rules! invariant_eq {
    ($($arg:tt)+) => {
        if $crate::qsbr::CHECK_INVARIANTS {
            assert_eq!($($arg)+);
        }
    };
}

mod domain;
mod pause;
mod published;
mod queue;
mod slots;
mod thread;

pub use cpyrt_spec::qsbr::{Design, Event};
pub use domain::Domain;
pub use published::{Published, ReadGuard};
pub use slots::Reservation;
pub use thread::{Exiting, QsbrThread};

/// `QSBR_OFFLINE`: the `seq` of a thread that is not attached.
pub const OFFLINE: u64 = cpyrt_spec::qsbr::OFFLINE as u64;
/// `QSBR_INITIAL`: the first value of `wr_seq` and `rd_seq`.
pub const INITIAL: u64 = cpyrt_spec::qsbr::INITIAL as u64;
/// `QSBR_INCR`: the step of `wr_seq`, which keeps it odd and never OFFLINE.
pub const INCR: u64 = cpyrt_spec::qsbr::INCR as u64;
/// `WORK_ITEMS_PER_CHUNK` in `Objects/obmalloc.c`.
pub const CPYTHON_CHUNK_ITEMS: usize = 254;

/// `QSBR_LT`: wrap-safe `a < b`.
#[inline]
pub(crate) fn seq_lt(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) < 0
}

/// `QSBR_LEQ`: wrap-safe `a <= b`.
#[inline]
pub(crate) fn seq_leq(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) <= 0
}

/// How a delayed free returns memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaim {
    /// Drop the value: the memory really goes back to the allocator.
    /// Only the shipped design ([`Design::CPYTHON`]) on `std` runs this way.
    Real,
    /// Flag the value as freed and quarantine it until the domain is
    /// dropped. Every dereference checks the flag first and panics with a
    /// `use-after-free` message, so a broken design's bug is reported
    /// without undefined behaviour. Forced under loom and shuttle and for
    /// every broken design.
    Ghost,
}

/// Bounds and design of one domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The design switches; [`Design::CPYTHON`] is the shipped design.
    pub design: Design,
    /// `QSBR_DEFERRED_LIMIT`: every this-many retirements of one thread do a
    /// real advance; 1 advances on every retirement.
    pub deferral_limit: u32,
    /// `MIN_ARRAY_SIZE`: the size of the first slot array.
    pub min_array_size: usize,
    /// `WORK_ITEMS_PER_CHUNK`: a thread processes its delayed frees every
    /// this-many retirements, as when a chunk fills. 0 never processes on
    /// enqueue (only when asked).
    pub chunk_items: usize,
    /// How frees return memory; see [`Reclaim`] for when `Real` is
    /// downgraded to `Ghost`.
    pub reclaim: Reclaim,
    /// Record spec events (see [`crate::trace`]).
    pub trace: bool,
    /// The SeqCst fence after the attach store: the reader's half of the
    /// store-buffer argument (see `QsbrThread::attach`). Not a CPython
    /// design switch (the spec is sequentially consistent and cannot see
    /// it): `false` is the broken ordering the loom pass must catch.
    pub attach_fence: bool,
}

impl Config {
    /// The constants CPython 3.13/3.14 ships, real frees, no tracing.
    pub const CPYTHON: Config = Config {
        design: Design::CPYTHON,
        deferral_limit: cpyrt_spec::qsbr::CPYTHON_DEFERRED_LIMIT as u32,
        min_array_size: cpyrt_spec::qsbr::CPYTHON_MIN_ARRAY_SIZE as usize,
        chunk_items: CPYTHON_CHUNK_ITEMS,
        reclaim: Reclaim::Real,
        trace: false,
        attach_fence: true,
    };

    /// The runtime configuration matching a spec configuration, traced.
    /// Processing happens only when the workload asks for it (the spec
    /// abstracts chunking away), so each workload action maps to the events
    /// it asked for.
    pub fn from_spec(spec: &cpyrt_spec::qsbr::Config) -> Config {
        Config {
            design: spec.design,
            deferral_limit: u32::from(spec.deferral_limit),
            min_array_size: usize::from(spec.min_array_size),
            chunk_items: 0,
            reclaim: Reclaim::Real,
            trace: true,
            attach_fence: true,
        }
    }

    /// Checks the bounds; the error names the bound.
    pub fn validate(&self) -> Result<(), String> {
        if self.deferral_limit == 0 {
            return Err("deferral_limit must be at least 1".into());
        }
        if self.min_array_size == 0 {
            return Err("min_array_size must be at least 1".into());
        }
        Ok(())
    }

    /// The reclaim mode a domain actually uses: `Ghost` whenever a real free
    /// could be a real use-after-free (a broken design) or would happen
    /// inside a model checker.
    pub fn effective_reclaim(&self) -> Reclaim {
        // Every switch but `gc_advances` (a liveness switch: fewer advances
        // only delay frees) can break safety.
        let safety_design = Design {
            gc_advances: true,
            ..self.design
        };
        if crate::primitive::MODEL_CHECKED || safety_design != Design::CPYTHON || !self.attach_fence
        {
            Reclaim::Ghost
        } else {
            self.reclaim
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::CPYTHON
    }
}

/// Converts a runtime value to the `u8` a spec event carries.
#[inline]
pub(crate) fn event_u8(value: impl TryInto<u8>, what: &str) -> u8 {
    value
        .try_into()
        .unwrap_or_else(|_| panic!("a traced run exceeded 255 {what}"))
}

/// Converts a sequence number to the `u32` a spec event carries.
#[inline]
pub(crate) fn event_seq(value: u64) -> u32 {
    u32::try_from(value).expect("a traced run's sequence numbers exceed u32")
}
