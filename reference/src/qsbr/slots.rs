//! The slot array (`shared->array`), its growth, and thread registration.
//!
//! Each registered thread owns one padded slot whose `seq` the scan reads
//! without locks. The bookkeeping (`allocated`, the owning thread) is
//! guarded by `shared->mutex` ([`Registry`]). The array is reallocated when
//! no slot is free, under the growth pause, and every registered thread's
//! slot pointer (`tstate->qsbr`) is rewritten to the new array.

use std::ptr;

use super::domain::Domain;
use super::thread::QsbrThread;
use super::{Event, OFFLINE, Reclaim, event_u8};
use crate::primitive::cell::UnsafeCell;
use crate::primitive::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use crate::primitive::sync::{Arc, MutexGuard, lock};

/// `_qsbr_thread_state` inside `_qsbr_pad`: padded to a cache line so that
/// one thread's `seq` stores do not slow down the others.
#[repr(align(64))]
pub(crate) struct Slot {
    /// `qsbr->seq`: OFFLINE, or the `wr_seq` the thread last observed.
    pub(crate) seq: AtomicU64,
    /// Guarded by `shared->mutex`.
    book: UnsafeCell<Book>,
}

/// The mutex-guarded fields of a slot.
#[derive(Default)]
struct Book {
    /// `qsbr->allocated`.
    allocated: bool,
    /// `qsbr->tstate`: the owning thread's record.
    thread: Option<Arc<ThreadRecord>>,
    /// Ghost: this slot belongs to an array that growth replaced (and, in
    /// ghost mode, quarantined instead of freeing).
    retired: bool,
}

/// The part of a thread state that growth rewrites: `tstate->qsbr`.
pub(crate) struct ThreadRecord {
    /// Pointer to the thread's slot in the live array. Relaxed everywhere:
    /// it is written under `shared->mutex` during a pause and read either
    /// under the mutex or by its attached owner after `Pause::enter`, and
    /// both locks order the accesses.
    pub(crate) slot: AtomicPtr<Slot>,
}

/// One allocation of `shared->array`.
pub(crate) struct SlotArray {
    /// Which allocation this is (the spec's `array_generation`).
    pub(crate) generation: u32,
    pub(crate) slots: Box<[Slot]>,
}

impl SlotArray {
    pub(crate) fn new(generation: u32, size: usize) -> Self {
        SlotArray {
            generation,
            slots: (0..size)
                .map(|_| Slot {
                    seq: AtomicU64::new(OFFLINE),
                    book: UnsafeCell::new(Book::default()),
                })
                .collect(),
        }
    }
}

/// What `shared->mutex` guards besides the slots' books.
#[derive(Default)]
pub(crate) struct Registry {
    /// Ghost mode: arrays replaced by growth, kept alive so that a write
    /// through a stale slot pointer is caught instead of corrupting memory.
    quarantined: Vec<SlotArray>,
}

/// A reserved slot, not yet bound to a thread (`_Py_qsbr_reserve`'s index).
pub struct Reservation {
    domain: Option<Arc<Domain>>,
    thread: u8,
    index: usize,
}

impl Domain {
    /// The live array.
    ///
    /// # Safety
    /// The caller holds `shared->mutex` or is attached; either keeps growth
    /// from freeing the array while the reference lives.
    pub(crate) unsafe fn array(&self) -> &SlotArray {
        // Acquire: pairs with the Release store in `grow`, so the slots of a
        // new array are initialized for a reader that sees its pointer (the
        // pause and the mutex already order it; this keeps it local).
        let array = self.array_ptr().load(Ordering::Acquire);
        // SAFETY: the pointer is never null and, per the caller's promise,
        // the array is not freed while the reference lives.
        unsafe { &*array }
    }

    /// `_Py_qsbr_reserve`: allocates a slot for spec thread `thread`,
    /// growing the array (under the pause) when none is free. The caller
    /// must not be attached to this domain.
    ///
    /// An associated function (`Domain::reserve(&domain, t)`) because
    /// loom's `Arc` cannot be a method receiver.
    pub fn reserve(this: &Arc<Self>, thread: u8) -> Reservation {
        let mut registry = lock(this.registry());
        // SAFETY: we hold shared->mutex.
        let needs_growth = unsafe { this.lowest_free() }.is_none();
        // _PyEval_StopTheWorld: outside the recorder's step, because it
        // blocks until every attached thread detaches or parks.
        let stopped = needs_growth.then(|| this.pause().stop());
        let index = this.trace().step(|log| {
            if stopped.is_some() {
                this.grow(&mut registry);
            }
            // SAFETY: we hold shared->mutex.
            let index = unsafe { this.lowest_free() }.expect("growth left a free slot");
            // SAFETY: shared->mutex guards the books; growth is finished.
            let array = unsafe { this.array() };
            array.slots[index].book.with_mut(|book| {
                // SAFETY: shared->mutex is held: no other access to books.
                let book = unsafe { &mut *book };
                invariant!(book.thread.is_none());
                book.allocated = true;
            });
            log.emit_with(|| Event::Reserve {
                thread,
                index: event_u8(index, "slots"),
            });
            index
        });
        drop(stopped);
        drop(registry);
        Reservation {
            domain: Some(Arc::clone(this)),
            thread,
            index,
        }
    }

    /// Reserves and registers in one call: the usual way to start a thread.
    pub fn register(this: &Arc<Self>, thread: u8) -> QsbrThread {
        Domain::reserve(this, thread).register()
    }

    /// The lowest unallocated slot of the live array.
    ///
    /// # Safety
    /// The caller holds `shared->mutex`.
    unsafe fn lowest_free(&self) -> Option<usize> {
        // SAFETY: the mutex keeps the array alive and guards the books.
        let array = unsafe { self.array() };
        array.slots.iter().position(|slot| {
            // SAFETY: the caller holds shared->mutex.
            slot.book.with(|book| !unsafe { &*book }.allocated)
        })
    }

    /// `grow_thread_array` + `initialize_new_array`: double the array (at
    /// least `min_array_size`), copy the slots, rewrite every registered
    /// thread's slot pointer, and retire the old array. Runs under
    /// shared->mutex with the world paused.
    fn grow(&self, registry: &mut MutexGuard<'_, Registry>) {
        let old_ptr = self.array_ptr().load(Ordering::Relaxed);
        // SAFETY: shared->mutex is held; only growth frees arrays.
        let old = unsafe { &*old_ptr };
        let size = (old.slots.len() * 2).max(self.config().min_array_size);
        let new = Box::new(SlotArray::new(old.generation + 1, size));
        for (index, (from, to)) in old.slots.iter().zip(new.slots.iter()).enumerate() {
            // No thread is attached during the pause: every seq is OFFLINE.
            let seq = from.seq.load(Ordering::Relaxed);
            invariant_eq!(seq, OFFLINE, "slot {index} attached during growth");
            to.seq.store(seq, Ordering::Relaxed);
            from.book.with_mut(|book| {
                // SAFETY: shared->mutex guards the books of both arrays, and
                // the new array is not published yet.
                let book = unsafe { &mut *book };
                to.book.with_mut(|copy| {
                    // SAFETY: as above.
                    let copy = unsafe { &mut *copy };
                    copy.allocated = book.allocated;
                    copy.thread = book.thread.clone();
                });
                if let Some(thread) = &book.thread {
                    // initialize_new_array: tstate->qsbr = &new[index].
                    thread
                        .slot
                        .store(ptr::from_ref(to).cast_mut(), Ordering::Relaxed);
                }
                book.retired = true;
            });
        }
        // Release: publishes the initialized slots to scanners (see
        // `array`); attachers also get them through the pause's mutex.
        self.array_ptr()
            .store(Box::into_raw(new), Ordering::Release);
        // SAFETY: `old_ptr` came from Box::into_raw and is no longer the live
        // array. No scanner holds it: scanners are attached, and the pause
        // made every attached thread leave (release) before `stop` returned
        // (acquire). No registered thread's pointer names it any more. In
        // the shipped design nobody else holds a slot pointer; the broken
        // design's stale pointer is exactly the bug, which is why broken
        // designs run in ghost mode and keep the old array alive here.
        let old = unsafe { Box::from_raw(old_ptr) };
        match self.reclaim() {
            Reclaim::Real => drop(old),
            Reclaim::Ghost => registry.quarantined.push(*old),
        }
    }
}

impl Domain {
    /// `_Py_qsbr_after_fork` (`Python/qsbr.c`), in a child after `fork()`
    /// as its only thread: every allocated slot but `keep` (the forking
    /// thread's, [`QsbrThread::slot_index`]) is released, its thread
    /// record dropped, and the growth pause's count of attached threads
    /// reset to the forker's. Returns how many slots it released.
    ///
    /// Departures, each because this domain is not under the runtime's
    /// stop-the-world: CPython leaves a released slot's `seq` as copied,
    /// relying on `PyOS_BeforeFork`'s pause having made every other thread
    /// OFFLINE; a thread here may be attached to the domain while detached
    /// from the runtime (or belong to no runtime), so the slot is set
    /// OFFLINE too, without which its `seq` would hold `rd_seq` back for
    /// good. CPython also re-initialises `shared->mutex`; the domain's
    /// mutex is a library mutex that cannot be reset in place, so a dead
    /// thread that held it at the fork (inside a reservation or an
    /// unregistration) would make this wait forever.
    pub fn after_fork(&self, keep: usize) -> usize {
        let _registry = lock(self.registry());
        // SAFETY: we hold shared->mutex.
        let array = unsafe { self.array() };
        let mut released = 0;
        for (index, slot) in array.slots.iter().enumerate() {
            if index == keep {
                continue;
            }
            slot.book.with_mut(|book| {
                // SAFETY: shared->mutex guards the books.
                let book = unsafe { &mut *book };
                if book.allocated {
                    book.allocated = false;
                    book.thread = None;
                    slot.seq.store(OFFLINE, Ordering::Release);
                    released += 1;
                }
            });
        }
        let forker_attached = array
            .slots
            .get(keep)
            .is_some_and(|s| s.seq.load(Ordering::Relaxed) != OFFLINE);
        self.pause().after_fork(usize::from(forker_attached));
        released
    }
}

impl Reservation {
    /// The reserved slot's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// `_Py_qsbr_register`: binds the reserved slot and a new thread state.
    pub fn register(mut self) -> QsbrThread {
        let domain = self.domain.take().expect("a reservation registers once");
        let record = Arc::new(ThreadRecord {
            slot: AtomicPtr::new(ptr::null_mut()),
        });
        let registry = lock(domain.registry());
        domain.trace().step(|log| {
            // SAFETY: we hold shared->mutex.
            let array = unsafe { domain.array() };
            let slot = &array.slots[self.index];
            slot.book.with_mut(|book| {
                // SAFETY: shared->mutex guards the books.
                let book = unsafe { &mut *book };
                assert!(book.allocated && book.thread.is_none(), "slot not reserved");
                book.thread = Some(Arc::clone(&record));
            });
            record
                .slot
                .store(ptr::from_ref(slot).cast_mut(), Ordering::Relaxed);
            log.emit(Event::Register {
                thread: self.thread,
            });
        });
        drop(registry);
        QsbrThread::new(domain, self.thread, record)
    }
}

impl Drop for Reservation {
    /// A reservation dropped unregistered gives its slot back. This path has
    /// no spec event; traced workloads always register.
    fn drop(&mut self) {
        if let Some(domain) = self.domain.take() {
            let _registry = lock(domain.registry());
            // SAFETY: we hold shared->mutex.
            let array = unsafe { domain.array() };
            array.slots[self.index].book.with_mut(|book| {
                // SAFETY: shared->mutex guards the books.
                unsafe { &mut *book }.allocated = false;
            });
        }
    }
}

impl Domain {
    /// `_Py_qsbr_unregister`: under shared->mutex, clear the slot through
    /// the thread's slot pointer and push it on the freelist. `stale` is the
    /// pointer the broken design loaded before taking the mutex; the shipped
    /// design loads it here, under the mutex (gh-115103, PR 116480).
    pub(crate) fn unregister(&self, thread: u8, record: &ThreadRecord, stale: Option<*mut Slot>) {
        let registry = lock(self.registry());
        let slot_ptr = self.trace().step(|log| {
            let ptr = stale.unwrap_or_else(|| record.slot.load(Ordering::Relaxed));
            log.emit(Event::UnregisterLock { thread });
            ptr
        });
        self.trace().step(move |log| {
            // SAFETY: a pointer loaded under shared->mutex names a slot of
            // the live array, which only growth (also under the mutex)
            // frees. A stale pointer from the broken design may name a slot
            // of a replaced array: broken designs run in ghost mode, where
            // replaced arrays stay allocated in the registry's quarantine,
            // so the reference is valid and the ghost check below reports
            // the bug.
            let slot = unsafe { &*slot_ptr };
            slot.book.with_mut(|book| {
                // SAFETY: shared->mutex guards the books.
                let book = unsafe { &mut *book };
                if book.retired {
                    // The event is the write; record it before reporting, so
                    // the trace shows the step the spec flags.
                    log.emit(Event::UnregisterRelease { thread });
                    panic!(
                        "use-after-free: thread {thread} unregistered through a stale slot \
                         pointer into a slot array that growth freed (gh-115103)"
                    );
                }
                assert_eq!(
                    slot.seq.load(Ordering::Relaxed),
                    OFFLINE,
                    "thread state must be detached"
                );
                assert!(
                    book.allocated
                        && book
                            .thread
                            .as_ref()
                            .is_some_and(|t| ptr::eq(Arc::as_ptr(t), record)),
                    "slot not owned by the unregistering thread"
                );
                book.thread = None;
                book.allocated = false;
            });
            record.slot.store(ptr::null_mut(), Ordering::Relaxed);
            log.emit(Event::UnregisterRelease { thread });
            // The release is part of the step: the next locker's step must
            // come after this one in the log.
            drop(registry);
        });
    }
}
