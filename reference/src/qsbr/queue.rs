//! Delayed-free work items and their queues (`Objects/obmalloc.c`).
//!
//! A [`Retired`] value is a type-erased owned allocation: dropping it is the
//! free. A work [`Item`] pairs it with its QSBR goal (`_mem_work_item`). Each
//! thread owns a FIFO queue (`tstate->mem_free_queue`); the interpreter's
//! queue ([`InterpQueue`]) receives the queues of exiting threads.

use std::collections::VecDeque;
use std::ptr::NonNull;

use super::domain::Domain;
use super::{Event, Reclaim, event_u8};
use crate::primitive::sync::atomic::{AtomicBool, Ordering};
use crate::primitive::sync::{Mutex, try_lock};

/// An owned, type-erased heap value queued for delayed free.
pub(crate) struct Retired {
    ptr: NonNull<()>,
    /// Drops the value and frees its allocation.
    free: unsafe fn(NonNull<()>),
    /// Sets the value's ghost "freed" flag, when it has one.
    mark: Option<unsafe fn(NonNull<()>)>,
    /// The spec object id of a published node.
    object: Option<u32>,
}

// SAFETY: a Retired is built only from `Box<V>` with `V: Send` (or a node
// whose payload is `Send`); moving it to another thread moves that owner.
unsafe impl Send for Retired {}

impl Retired {
    /// Takes ownership of a boxed value.
    pub(crate) fn boxed<V: Send + 'static>(value: Box<V>) -> Self {
        unsafe fn free<V>(ptr: NonNull<()>) {
            // SAFETY: `ptr` came from `Box::<V>::into_raw` in `boxed` and
            // `Retired` frees it exactly once (in its drop).
            drop(unsafe { Box::from_raw(ptr.cast::<V>().as_ptr()) });
        }
        let ptr = NonNull::from(Box::leak(value)).cast::<()>();
        Retired {
            ptr,
            free: free::<V>,
            mark: None,
            object: None,
        }
    }

    /// Takes ownership of a raw allocation that `free` releases and `mark`
    /// flags.
    ///
    /// # Safety
    /// `ptr` must be uniquely owned by the caller, stay valid until `free`
    /// runs, and `free`/`mark` must accept it; the pointee must be `Send`.
    pub(crate) unsafe fn from_raw(
        ptr: NonNull<()>,
        free: unsafe fn(NonNull<()>),
        mark: unsafe fn(NonNull<()>),
        object: u32,
    ) -> Self {
        Retired {
            ptr,
            free,
            mark: Some(mark),
            object: Some(object),
        }
    }

    /// The spec object id, for values retired from a published cell.
    pub(crate) fn object(&self) -> Option<u32> {
        self.object
    }

    /// Ghost free: flag the value so that later dereferences panic. The
    /// allocation stays alive (quarantined) until `self` is dropped.
    fn mark_freed(&self) {
        if let Some(mark) = self.mark {
            // SAFETY: the allocation is alive while `self` owns it.
            unsafe { mark(self.ptr) }
        }
    }
}

impl Drop for Retired {
    fn drop(&mut self) {
        // SAFETY: `self` owns the allocation and this is its only release.
        unsafe { (self.free)(self.ptr) }
    }
}

/// `_mem_work_item`: a value and the goal `rd_seq` must reach before it may
/// be freed.
pub(crate) struct Item {
    pub(crate) goal: u64,
    pub(crate) value: Retired,
}

/// `interp->mem_free_queue`: the queues abandoned by exited threads.
pub(crate) struct InterpQueue {
    pub(crate) items: Mutex<VecDeque<Item>>,
    /// `has_work`: a hint read without the lock. Relaxed as in CPython: the
    /// items themselves are published by the mutex.
    pub(crate) has_work: AtomicBool,
}

impl InterpQueue {
    pub(crate) fn new() -> Self {
        InterpQueue {
            items: Mutex::new(VecDeque::new()),
            has_work: AtomicBool::new(false),
        }
    }
}

/// Frees a value whose goal was reached (`free_work_item`): a real drop, or
/// a ghost mark with the value kept in the freeing thread's quarantine.
/// Returns the value when the caller must drop it (a real free), so that
/// user drop code runs outside the recorder's lock.
pub(crate) fn release(
    reclaim: Reclaim,
    value: Retired,
    quarantine: &mut Vec<Retired>,
) -> Option<Retired> {
    match reclaim {
        Reclaim::Real => Some(value),
        Reclaim::Ghost => {
            value.mark_freed();
            quarantine.push(value);
            None
        }
    }
}

/// Which queue `process_queue` drains, for the event it records.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Own,
    Interp,
}

/// `process_queue`: frees items from the head of `queue` while their goals
/// are reached, stopping at the first that is not (goals are non-decreasing
/// along a thread's queue, so the rest wait too). The broken design
/// `free_waits_for_goal = false` frees without polling. Returns how many
/// items were freed.
pub(crate) fn process_queue(
    domain: &Domain,
    thread: u8,
    which: Which,
    queue: &mut VecDeque<Item>,
    quarantine: &mut Vec<Retired>,
) -> usize {
    let mut freed = 0;
    while let Some(head) = queue.front() {
        if domain.config().design.free_waits_for_goal && !domain.poll(thread, head.goal) {
            break;
        }
        let reclaim = domain.reclaim();
        let to_drop = domain.trace().step(|log| {
            let item = queue.pop_front().expect("the head is still there");
            if let Some(object) = item.value.object() {
                log.emit_with(|| {
                    let object = event_u8(object, "objects");
                    match which {
                        Which::Own => Event::FreeOwn { thread, object },
                        Which::Interp => Event::FreeInterp { thread, object },
                    }
                });
            }
            release(reclaim, item.value, quarantine)
        });
        // A real free runs the value's destructor outside the recorder's
        // lock: it is arbitrary code (`free_work_item` may re-enter).
        drop(to_drop);
        freed += 1;
    }
    freed
}

/// `process_interp_queue`: processes the interpreter's queue if it has work
/// and its lock is free, never blocking.
pub(crate) fn process_interp_queue(
    domain: &Domain,
    thread: u8,
    quarantine: &mut Vec<Retired>,
) -> usize {
    let interp = domain.interp_queue();
    if !interp.has_work.load(Ordering::Relaxed) {
        return 0;
    }
    let Some(mut items) = try_lock(&interp.items) else {
        return 0;
    };
    let freed = process_queue(domain, thread, Which::Interp, &mut items, quarantine);
    interp.has_work.store(!items.is_empty(), Ordering::Relaxed);
    freed
}
