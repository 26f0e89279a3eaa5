//! A published pointer protected by QSBR, and its read sections.
//!
//! [`Published`] stands for any QSBR-protected field CPython reads without
//! locks (a dict's keys, a list's item array): an `AtomicPtr` to a heap
//! node. A reader loads it inside a read section ([`ReadGuard`]); a writer
//! swaps in a new node and queues the old one for delayed free
//! ([`QsbrThread::replace`], `_PyMem_FreeDelayed`). Objects get spec ids in
//! publish order: the initial value is object 0.

use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

use super::domain::Domain;
use super::queue::Retired;
use super::thread::QsbrThread;
use super::{Event, Reclaim, event_seq, event_u8};
use crate::primitive::sync::Arc;
use crate::primitive::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

/// A published heap value.
struct Node<T> {
    /// Spec object id.
    id: u32,
    /// Ghost: set when the node is freed in ghost mode (the memory stays
    /// quarantined), checked before every dereference.
    freed: AtomicBool,
    value: T,
}

/// A pointer to a value that readers load without locks and writers
/// replace, reclaiming the old value through the domain's delayed frees.
pub struct Published<T> {
    domain: Arc<Domain>,
    ptr: AtomicPtr<Node<T>>,
    /// The next object id (the spec's `objects.len()`).
    next_id: AtomicU32,
    _owns: PhantomData<Box<Node<T>>>,
}

impl<T: Send + Sync + 'static> Published<T> {
    /// Publishes `value` as object 0.
    pub fn new(domain: &Arc<Domain>, value: T) -> Self {
        Published {
            domain: Arc::clone(domain),
            ptr: AtomicPtr::new(Box::into_raw(Box::new(Node {
                id: 0,
                freed: AtomicBool::new(false),
                value,
            }))),
            next_id: AtomicU32::new(1),
            _owns: PhantomData,
        }
    }

    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    /// How many objects have been published, the initial one included.
    pub fn published(&self) -> u32 {
        self.next_id.load(Ordering::Relaxed)
    }
}

impl<T> Drop for Published<T> {
    fn drop(&mut self) {
        // Acquire: the node's contents were written by whichever thread
        // published it; `&mut self` already implies that happened before.
        let node = self.ptr.load(Ordering::Acquire);
        // SAFETY: the live node is owned by the cell (retired nodes belong
        // to the delayed-free queues) and no reader remains: every
        // ReadGuard borrows the cell.
        drop(unsafe { Box::from_raw(node) });
    }
}

impl QsbrThread {
    /// Opens a read section and loads the published pointer (a lock-free
    /// read of QSBR-protected memory). The section ends when the guard is
    /// dropped; while it lives, the borrow checker keeps this thread from
    /// reporting a quiescent state, detaching or retiring.
    pub fn read<'a, T: Send + Sync + 'static>(
        &'a mut self,
        cell: &'a Published<T>,
    ) -> ReadGuard<'a, T> {
        self.require_attached("a lock-free read");
        assert!(
            Arc::ptr_eq(&cell.domain, &self.domain),
            "the cell belongs to another domain"
        );
        let tid = self.tid;
        let node = self.domain.trace().step(|log| {
            // Acquire: pairs with the writer's Release swap, so the node's
            // contents are initialized. The load is ordered after this
            // thread's attach by the attach fence (see QsbrThread::attach).
            let node = cell.ptr.load(Ordering::Acquire);
            // SAFETY: the published node is live: only replaced nodes are
            // ever freed, and this one is current at the load.
            let node = unsafe { &*node };
            log.emit_with(|| Event::Read {
                thread: tid,
                object: event_u8(node.id, "objects"),
            });
            NonNull::from(node)
        });
        ReadGuard {
            thread: self,
            node,
            _cell: PhantomData,
        }
    }

    /// Publishes `value`, unlinks the old value and queues it for delayed
    /// free (`_PyMem_FreeDelayed` -> `free_delayed`). Returns the new
    /// object's id.
    pub fn replace<T: Send + Sync + 'static>(&mut self, cell: &Published<T>, value: T) -> u32 {
        self.require_attached("replace");
        assert!(
            Arc::ptr_eq(&cell.domain, &self.domain),
            "the cell belongs to another domain"
        );
        let tid = self.tid;
        let domain = &*self.domain;
        let local = &mut self.local;
        let id = domain.trace().step(|log| {
            // Relaxed: ids only need to be unique; under tracing the step
            // makes them follow publish order.
            let id = cell.next_id.fetch_add(1, Ordering::Relaxed);
            let new = Box::into_raw(Box::new(Node {
                id,
                freed: AtomicBool::new(false),
                value,
            }));
            // Release: publishes the new node's contents to readers' Acquire
            // loads. Acquire: the old node was published by another thread;
            // this thread will free it. The unlink is sequenced before the
            // goal's read-modify-write below, which carries it to readers
            // (see Domain::next_goal and Domain::advance_wr_seq).
            let old = cell.ptr.swap(new, Ordering::AcqRel);
            let old = NonNull::new(old).expect("a published cell is never null");
            // SAFETY: the swap unlinked `old`: the cell no longer owns it, so
            // this thread does, and T: Send.
            let retired = unsafe { node_retired(old) };
            let (goal, advanced) = local.deferred_goal(domain);
            local.enqueue(domain, goal, retired);
            log.emit_with(|| Event::Replace {
                thread: tid,
                new: event_u8(id, "objects"),
                goal: event_seq(goal),
                advanced,
            });
            id
        });
        if self.local.chunk_full(&self.domain) {
            self.process_delayed();
        }
        id
    }
}

/// Wraps an unlinked node as a retired value.
///
/// # Safety
/// `node` came from `Box::into_raw` and the caller owns it.
unsafe fn node_retired<T: Send + 'static>(node: NonNull<Node<T>>) -> Retired {
    unsafe fn free<T>(ptr: NonNull<()>) {
        // SAFETY: `ptr` is the node's Box pointer, released exactly once.
        drop(unsafe { Box::from_raw(ptr.cast::<Node<T>>().as_ptr()) });
    }
    unsafe fn mark<T>(ptr: NonNull<()>) {
        // SAFETY: ghost mode keeps the node allocated until `free`.
        let node = unsafe { ptr.cast::<Node<T>>().as_ref() };
        // Relaxed: ghost state adds no synchronization (it must not hide
        // the orderings under test); a checker explores the flag's values.
        node.freed.store(true, Ordering::Relaxed);
    }
    // SAFETY: `node` is a Box allocation the caller owns.
    let id = unsafe { node.as_ref() }.id;
    // SAFETY: per this function's contract; `free` and `mark` take a node
    // of the same `T`.
    unsafe { Retired::from_raw(node.cast(), free::<T>, mark::<T>, id) }
}

/// A read section holding one loaded pointer.
pub struct ReadGuard<'a, T> {
    thread: &'a mut QsbrThread,
    node: NonNull<Node<T>>,
    _cell: PhantomData<&'a Published<T>>,
}

impl<T> ReadGuard<'_, T> {
    fn node(&self) -> &Node<T> {
        // SAFETY: in real mode QSBR keeps the node allocated while this
        // thread has not passed a quiescent state since loading it, which
        // the guard's borrow of the thread rules out. Ghost mode (forced for
        // the broken designs) never deallocates before the domain drops, and
        // the guard keeps the domain alive.
        unsafe { self.node.as_ref() }
    }

    /// Ghost check: panics if the node was freed.
    #[inline]
    fn check(&self, when: &str) {
        if self.thread.domain.reclaim() == Reclaim::Ghost {
            let node = self.node();
            if node.freed.load(Ordering::Relaxed) {
                panic!(
                    "use-after-free: thread {} {when} object {}, which was freed",
                    self.thread.tid, node.id
                );
            }
        }
    }

    /// The spec id of the loaded object.
    pub fn object(&self) -> u32 {
        self.node().id
    }

    /// Dereferences the loaded pointer (after the ghost check).
    pub fn get(&self) -> &T {
        self.check("dereferenced");
        &self.node().value
    }

    /// Ends the read section (same as dropping the guard).
    pub fn end(self) {}

    /// [`QsbrThread::advance`] from inside the read section (the spec lets
    /// a reading thread advance, scan and free).
    pub fn advance(&mut self) -> u64 {
        self.thread.advance()
    }

    /// [`QsbrThread::scan`] from inside the read section.
    pub fn scan(&mut self) -> u64 {
        self.thread.scan()
    }

    /// [`QsbrThread::poll`] from inside the read section.
    pub fn poll(&mut self, goal: u64) -> bool {
        self.thread.poll(goal)
    }

    /// [`QsbrThread::process_delayed`] from inside the read section: the
    /// reader's own seq keeps what it holds from being freed.
    pub fn process_delayed(&mut self) -> usize {
        self.thread.process_delayed()
    }

    /// The reading thread's spec index.
    pub fn tid(&self) -> u8 {
        self.thread.tid
    }

    /// API misuse that only the broken design `quiescent_outside_reads =
    /// false` allows: report a quiescent state while still holding the
    /// loaded pointer. Panics under any other design.
    pub fn quiescent_state_inside_read(&mut self) {
        assert!(
            !self.thread.domain.config().design.quiescent_outside_reads,
            "API misuse: a quiescent state inside a read section (allowed only \
             in the design quiescent_outside_reads = false)"
        );
        self.thread.store_quiescent();
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.get()
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    /// Ends the read section: no loaded pointer survives it.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.check("still held, at the end of its read section,");
        let tid = self.thread.tid;
        self.thread.domain.trace().step(|log| {
            log.emit(Event::EndRead { thread: tid });
        });
    }
}
