//! A registered thread: its QSBR slot, its delayed-free queue, and the
//! operations CPython performs on `_PyThreadStateImpl`.

use std::collections::VecDeque;
use std::mem;

use super::domain::Domain;
use super::queue::{Item, Retired, Which, process_interp_queue, process_queue};
use super::slots::{Slot, ThreadRecord};
use super::{Event, INCR, OFFLINE, event_seq, seq_leq};
use crate::primitive::sync::atomic::{Ordering, fence};
use crate::primitive::sync::{Arc, lock};

/// A registered thread of a [`Domain`], driven by the thread that owns it.
///
/// It knows its spec thread index ([`QsbrThread::tid`]); every event it
/// records names it. Dropping it runs [`QsbrThread::exit`] (unless the
/// thread is panicking).
pub struct QsbrThread {
    pub(super) domain: Arc<Domain>,
    pub(super) tid: u8,
    /// `tstate->qsbr`, shared with growth, which rewrites it.
    record: Arc<ThreadRecord>,
    /// `_Py_THREAD_ATTACHED`.
    attached: bool,
    pub(super) local: Local,
    exited: bool,
}

/// The thread-private delayed-free state (only its owner touches it).
#[derive(Default)]
pub(super) struct Local {
    /// `qsbr->deferrals`.
    deferrals: u32,
    /// Retirements since the last chunk-full processing.
    enqueued: usize,
    /// `tstate->mem_free_queue`.
    queue: VecDeque<Item>,
    /// Ghost mode: values this thread freed, handed to the domain at exit.
    quarantine: Vec<Retired>,
}

impl Local {
    /// `_Py_qsbr_deferred_advance`: the goal for memory unlinked before the
    /// call, and whether it came from a real advance.
    pub(super) fn deferred_goal(&mut self, domain: &Domain) -> (u64, bool) {
        self.deferrals += 1;
        if self.deferrals < domain.config().deferral_limit {
            (domain.next_goal(), false)
        } else {
            self.deferrals = 0;
            (domain.advance_wr_seq(), true)
        }
    }

    /// Appends an item to the FIFO queue, checking the goal invariants
    /// (`goals_bounded`, and goals non-decreasing along the queue).
    pub(super) fn enqueue(&mut self, domain: &Domain, goal: u64, value: Retired) {
        invariant_eq!(goal % 2, 1, "goals_bounded: goal {goal} is even");
        invariant!(
            seq_leq(goal, domain.wr_seq_relaxed() + INCR),
            "goals_bounded: goal {goal} is more than one step ahead"
        );
        invariant!(
            self.queue
                .back()
                .is_none_or(|last| seq_leq(last.goal, goal)),
            "goals of one thread's queue are non-decreasing"
        );
        self.queue.push_back(Item { goal, value });
        self.enqueued += 1;
    }

    /// `free_delayed` processes when its chunk fills.
    pub(super) fn chunk_full(&self, domain: &Domain) -> bool {
        let chunk = domain.config().chunk_items;
        chunk != 0 && self.enqueued.is_multiple_of(chunk)
    }
}

impl QsbrThread {
    pub(super) fn new(domain: Arc<Domain>, tid: u8, record: Arc<ThreadRecord>) -> Self {
        QsbrThread {
            domain,
            tid,
            record,
            attached: false,
            local: Local::default(),
            exited: false,
        }
    }

    /// The spec thread index this thread records events as.
    pub fn tid(&self) -> u8 {
        self.tid
    }

    /// The index of this thread's slot in the live array (what
    /// [`Domain::after_fork`] keeps).
    pub fn slot_index(&self) -> usize {
        let _registry = lock(self.domain.registry());
        let slot = self.record.slot.load(Ordering::Relaxed);
        // SAFETY: we hold shared->mutex.
        let array = unsafe { self.domain.array() };
        array
            .slots
            .iter()
            .position(|s| std::ptr::eq(s, slot))
            .expect("a registered thread's slot is in the live array")
    }

    pub fn domain(&self) -> &Arc<Domain> {
        &self.domain
    }

    pub fn is_attached(&self) -> bool {
        self.attached
    }

    /// Items waiting in this thread's queue.
    pub fn pending(&self) -> usize {
        self.local.queue.len()
    }

    /// The thread's slot. Valid while attached: growth waits until no
    /// thread is attached, so the pointer is stable and the array alive.
    pub(super) fn slot(&self) -> &Slot {
        invariant!(self.attached, "slot access while detached");
        let slot = self.record.slot.load(Ordering::Relaxed);
        // SAFETY: registered threads have a non-null slot pointer; attached
        // means no growth runs (see above), and the pointer was rewritten
        // before the pause ended, which this thread's `Pause::enter` observed.
        unsafe { &*slot }
    }

    /// Checks `seq_nonzero_iff_attached` on the thread's own slot.
    #[inline]
    fn check_attached(&self) {
        if super::CHECK_INVARIANTS && self.attached {
            invariant!(
                self.slot().seq.load(Ordering::Relaxed) != OFFLINE,
                "seq_nonzero_iff_attached: attached thread {} is OFFLINE",
                self.tid
            );
        }
    }

    pub(super) fn require_attached(&self, what: &str) {
        assert!(self.attached, "{what} needs an attached thread");
        self.check_attached();
    }

    /// `_PyThreadState_Attach` + `_Py_qsbr_attach`: waits out a growth
    /// pause, then `seq = wr_seq`.
    pub fn attach(&mut self) {
        assert!(!self.attached, "already attached");
        assert!(!self.exited, "attach after exit");
        self.domain.pause().enter();
        self.attached = true;
        let slot = self.slot();
        invariant_eq!(
            slot.seq.load(Ordering::Relaxed),
            OFFLINE,
            "already attached"
        );
        let tid = self.tid;
        let domain = &*self.domain;
        domain.trace().step(|log| {
            let seq = domain.wr_seq();
            // The store-buffer argument, reader side. CPython stores seq
            // with seq_cst and relies on readers' seq_cst pointer loads. The
            // readers here load with Acquire, so the ordering comes from a
            // SeqCst fence F_A between this store and every later pointer
            // load; against the scan's fence F_S (Domain::scan) either the
            // scan sees this seq, or this thread's loads see the unlink. The
            // store stays SeqCst as in CPython; the fence is what loom
            // models (it treats SeqCst stores as Release).
            slot.seq.store(seq, Ordering::SeqCst);
            if domain.config().attach_fence {
                fence(Ordering::SeqCst);
            }
            invariant_eq!(seq % 2, 1, "wr_seq_odd");
            log.emit_with(|| Event::Attach {
                thread: tid,
                seq: event_seq(seq),
            });
        });
    }

    /// `_Py_qsbr_detach` + leaving ATTACHED: `seq = OFFLINE`.
    pub fn detach(&mut self) {
        self.require_attached("detach");
        let slot = self.slot();
        let tid = self.tid;
        self.domain.trace().step(|log| {
            // Release: every access this thread made to QSBR-protected
            // memory happens before a scanner's Acquire load of OFFLINE, and
            // so before any free that scan allows.
            slot.seq.store(OFFLINE, Ordering::Release);
            log.emit(Event::Detach { thread: tid });
        });
        self.attached = false;
        self.domain.pause().leave();
    }

    /// `_Py_qsbr_quiescent_state` at the eval breaker: the thread holds no
    /// pointer to QSBR-protected memory. Parks (detach, wait, attach) if a
    /// growth pause is requested. The borrow checker keeps it outside read
    /// sections; see [`super::ReadGuard::quiescent_state_inside_read`] for
    /// the broken design.
    pub fn quiescent_state(&mut self) {
        self.require_attached("a quiescent state");
        if self.domain.pause().requested() {
            self.detach();
            self.attach();
            return;
        }
        self.store_quiescent();
    }

    /// `seq = wr_seq` with Release (shared with the misuse path).
    pub(super) fn store_quiescent(&self) {
        let slot = self.slot();
        let tid = self.tid;
        let domain = &*self.domain;
        domain.trace().step(|log| {
            // Acquire: pairs with the advance that produced this value (see
            // Domain::advance_wr_seq), so the unlinks it protects are
            // visible to this thread's later pointer loads.
            let seq = domain.wr_seq();
            // Release: this thread's accesses before the quiescent state
            // happen before a scanner's Acquire load of the new seq.
            slot.seq.store(seq, Ordering::Release);
            log.emit_with(|| Event::Quiescent {
                thread: tid,
                seq: event_seq(seq),
            });
        });
    }

    /// `_Py_qsbr_advance` outside `free_delayed` (the GC's
    /// `process_delayed_frees`). Returns the new `wr_seq`. Refused by the
    /// design `gc_advances = false`, which has no such caller.
    pub fn advance(&mut self) -> u64 {
        self.require_attached("advance");
        assert!(
            self.domain.config().design.gc_advances,
            "no caller outside free_delayed advances in this design (gc_advances = false)"
        );
        let tid = self.tid;
        let domain = &*self.domain;
        domain.trace().step(|log| {
            let wr_seq = domain.advance_wr_seq();
            log.emit_with(|| Event::Advance {
                thread: tid,
                wr_seq: event_seq(wr_seq),
            });
            wr_seq
        })
    }

    /// `_Py_qsbr_poll`: has `goal` been reached? May scan the slots.
    pub fn poll(&mut self, goal: u64) -> bool {
        self.require_attached("_Py_qsbr_poll");
        self.domain.poll(self.tid, goal)
    }

    /// `qsbr_poll_scan` on its own (the spec's `Scan` event): recomputes
    /// `rd_seq` from the slots and returns it.
    pub fn scan(&mut self) -> u64 {
        self.require_attached("a scan");
        self.domain.scan(self.tid)
    }

    /// `_PyMem_FreeDelayed` for an owned value the caller has just made
    /// unreachable to new readers: queue it with a QSBR goal; it is dropped
    /// once every thread has passed a quiescent state since.
    ///
    /// Not traced: a traced domain retires only through
    /// [`QsbrThread::replace`], whose event carries the object.
    pub fn free_delayed<V: Send + 'static>(&mut self, value: Box<V>) {
        self.require_attached("free_delayed");
        assert!(
            !self.domain.trace().is_enabled(),
            "a traced domain retires values only through Published::replace"
        );
        let domain = &*self.domain;
        let (goal, _) = self.local.deferred_goal(domain);
        self.local.enqueue(domain, goal, Retired::boxed(value));
        if self.local.chunk_full(domain) {
            self.process_delayed();
        }
    }

    /// `_PyMem_ProcessDelayed`: frees what this thread's queue and then the
    /// interpreter's queue (if its lock is free) may free. Returns how many
    /// values were freed.
    pub fn process_delayed(&mut self) -> usize {
        self.require_attached("processing delayed frees");
        let local = &mut self.local;
        let freed = process_queue(
            &self.domain,
            self.tid,
            Which::Own,
            &mut local.queue,
            &mut local.quarantine,
        );
        freed + process_interp_queue(&self.domain, self.tid, &mut local.quarantine)
    }

    /// Thread exit: [`QsbrThread::abandon`], then [`Exiting::unregister`].
    pub fn exit(self) {
        self.abandon().unregister();
    }

    /// The first half of thread exit (`PyThreadState_Clear`): detach if
    /// attached, then `_PyMem_AbandonDelayed` moves the queue to the
    /// interpreter's queue. The thread can no longer attach;
    /// [`Exiting::unregister`] finishes the exit. Split so that a workload
    /// can interleave other threads between the two halves.
    pub fn abandon(mut self) -> Exiting {
        self.leave()
    }

    fn leave(&mut self) -> Exiting {
        assert!(!self.exited, "a thread exits once");
        if self.attached {
            self.detach();
        }
        let stale = self.abandon_queue();
        self.exited = true;
        Exiting {
            domain: Arc::clone(&self.domain),
            tid: self.tid,
            record: Arc::clone(&self.record),
            stale: stale.map(StaleSlot),
            quarantine: mem::take(&mut self.local.quarantine),
            done: false,
        }
    }

    /// `_PyMem_AbandonDelayed`. The broken design that loads the slot
    /// pointer before `_Py_qsbr_unregister` takes the mutex loads it in this
    /// step (the spec's `Abandon` records it), returning it.
    fn abandon_queue(&mut self) -> Option<*mut Slot> {
        invariant!(!self.attached);
        let early_load = !self.domain.config().design.reload_slot_under_mutex;
        let record = &self.record;
        let tid = self.tid;
        let load_early = || early_load.then(|| record.slot.load(Ordering::Relaxed));
        let moved = mem::take(&mut self.local.queue);
        let domain = &*self.domain;
        if moved.is_empty() {
            return domain.trace().step(|log| {
                log.emit(Event::Abandon { thread: tid });
                load_early()
            });
        }
        let interp = domain.interp_queue();
        // Blocking on the queue's mutex happens outside the step.
        let mut items = lock(&interp.items);
        domain.trace().step(|log| {
            items.extend(moved);
            interp.has_work.store(true, Ordering::Relaxed);
            log.emit(Event::Abandon { thread: tid });
            load_early()
        })
    }
}

impl Drop for QsbrThread {
    /// Exits the thread, unless it is panicking: then it leaks rather than
    /// frees (its queue's goals may not be reached, and in ghost mode other
    /// threads may still hold what it quarantined) and its slot stays
    /// registered.
    fn drop(&mut self) {
        if self.exited {
            return;
        }
        if std::thread::panicking() {
            mem::forget(mem::take(&mut self.local.queue));
            mem::forget(mem::take(&mut self.local.quarantine));
            return;
        }
        self.leave().unregister();
    }
}

/// A slot pointer loaded before `shared->mutex` (the broken design).
struct StaleSlot(*mut Slot);

// SAFETY: the pointer is only dereferenced by `Domain::unregister` under
// shared->mutex, on whichever thread finishes the exit.
unsafe impl Send for StaleSlot {}

/// A thread between `_PyMem_AbandonDelayed` and `_Py_qsbr_unregister`.
pub struct Exiting {
    domain: Arc<Domain>,
    tid: u8,
    record: Arc<ThreadRecord>,
    stale: Option<StaleSlot>,
    quarantine: Vec<Retired>,
    done: bool,
}

impl Exiting {
    /// `_Py_qsbr_unregister`: gives the slot back under `shared->mutex`.
    pub fn unregister(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.done = true;
        let stale = self.stale.take().map(|s| s.0);
        self.domain.unregister(self.tid, &self.record, stale);
        if !self.quarantine.is_empty() {
            lock(self.domain.quarantine()).append(&mut self.quarantine);
        }
    }
}

impl Drop for Exiting {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if std::thread::panicking() {
            mem::forget(mem::take(&mut self.quarantine));
            return;
        }
        self.finish();
    }
}

impl std::fmt::Debug for QsbrThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QsbrThread")
            .field("tid", &self.tid)
            .field("attached", &self.attached)
            .field("deferrals", &self.local.deferrals)
            .field("pending", &self.local.queue.len())
            .finish()
    }
}
