//! One interpreter's QSBR state (`_qsbr_shared`) and delayed-free queue,
//! the write-sequence advance and the reclamation poll.

use std::ptr;

use super::pause::Pause;
use super::queue::{InterpQueue, Retired};
use super::slots::{Registry, SlotArray};
use super::{Config, Event, INCR, INITIAL, OFFLINE, Reclaim, event_seq, seq_leq, seq_lt};
use crate::primitive::sync::atomic::{AtomicPtr, AtomicU64, Ordering, fence};
use crate::primitive::sync::{Arc, Mutex, lock};
use crate::trace::Recorder;

/// One QSBR domain: `interp->qsbr` and `interp->mem_free_queue`.
pub struct Domain {
    cfg: Config,
    reclaim: Reclaim,
    /// `shared->wr_seq`: odd, advanced by `INCR`. Written only by
    /// read-modify-writes, so every later value continues the release
    /// sequence of every earlier one (see `QsbrThread::replace`).
    wr_seq: AtomicU64,
    /// `shared->rd_seq`: the cached minimum of the attached threads' `seq`.
    rd_seq: AtomicU64,
    /// `shared->array`: never null; read without the mutex by attached
    /// scanners.
    array: AtomicPtr<SlotArray>,
    /// `shared->mutex` and what it guards besides the slots' books.
    registry: Mutex<Registry>,
    /// The growth pause (stand-in for stop-the-world).
    pause: Pause,
    /// `interp->mem_free_queue`.
    interp: InterpQueue,
    /// Ghost mode: values freed by exited threads, kept until the domain
    /// is dropped.
    quarantine: Mutex<Vec<Retired>>,
    trace: Recorder<Event>,
}

impl Domain {
    /// A domain with no threads: `wr_seq = rd_seq = QSBR_INITIAL` and an
    /// empty slot array (the first reservation grows it).
    ///
    /// Panics on a configuration [`Config::validate`] refuses.
    pub fn new(cfg: Config) -> Arc<Domain> {
        if let Err(e) = cfg.validate() {
            panic!("invalid QSBR configuration: {e}");
        }
        Arc::new(Domain {
            reclaim: cfg.effective_reclaim(),
            trace: Recorder::new(cfg.trace),
            cfg,
            wr_seq: AtomicU64::new(INITIAL),
            rd_seq: AtomicU64::new(INITIAL),
            array: AtomicPtr::new(Box::into_raw(Box::new(SlotArray::new(0, 0)))),
            registry: Mutex::new(Registry::default()),
            pause: Pause::new(),
            interp: InterpQueue::new(),
            quarantine: Mutex::new(Vec::new()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The reclaim mode in force ([`Config::effective_reclaim`]).
    pub fn reclaim(&self) -> Reclaim {
        self.reclaim
    }

    /// The event recorder.
    pub fn trace(&self) -> &Recorder<Event> {
        &self.trace
    }

    /// Takes the events recorded so far (empty when tracing is off).
    pub fn take_trace(&self) -> Vec<Event> {
        self.trace.take()
    }

    /// The current `wr_seq`.
    pub fn wr_seq(&self) -> u64 {
        self.wr_seq.load(Ordering::Acquire)
    }

    /// `wr_seq` for invariant checks: Relaxed, so a check adds no
    /// synchronization.
    pub(crate) fn wr_seq_relaxed(&self) -> u64 {
        self.wr_seq.load(Ordering::Relaxed)
    }

    /// The current cached `rd_seq`.
    pub fn rd_seq(&self) -> u64 {
        self.rd_seq.load(Ordering::Acquire)
    }

    /// How many items wait in the interpreter's queue.
    pub fn interp_pending(&self) -> usize {
        lock(&self.interp.items).len()
    }

    /// The size of the live slot array.
    pub fn array_size(&self) -> usize {
        let _registry = lock(&self.registry);
        // SAFETY: we hold shared->mutex.
        unsafe { self.array() }.slots.len()
    }

    pub(crate) fn array_ptr(&self) -> &AtomicPtr<SlotArray> {
        &self.array
    }

    pub(crate) fn registry(&self) -> &Mutex<Registry> {
        &self.registry
    }

    pub(crate) fn pause(&self) -> &Pause {
        &self.pause
    }

    pub(crate) fn interp_queue(&self) -> &InterpQueue {
        &self.interp
    }

    pub(crate) fn quarantine(&self) -> &Mutex<Vec<Retired>> {
        &self.quarantine
    }

    /// `_Py_qsbr_advance`: `wr_seq += INCR`, returning the new value (the
    /// goal for memory unlinked before the call).
    pub(crate) fn advance_wr_seq(&self) -> u64 {
        // SeqCst as in CPython (it includes the Release that matters):
        // everything the caller did before, in particular unlinking the
        // retired value, happens before any thread's Acquire load that
        // returns this value or a later one (later values come from RMWs,
        // which continue this release sequence). A reader that observes the
        // new value at a quiescent state therefore cannot load the unlinked
        // pointer afterwards.
        let new = self.wr_seq.fetch_add(INCR, Ordering::SeqCst) + INCR;
        invariant_eq!(new % 2, 1, "wr_seq_odd");
        new
    }

    /// The goal for memory unlinked before the call without advancing:
    /// `_Py_qsbr_shared_current(shared) + QSBR_INCR`.
    pub(crate) fn next_goal(&self) -> u64 {
        // CPython loads wr_seq with Acquire. That is enough only when the
        // unlink is itself SeqCst and readers' pointer loads are SeqCst (the
        // SC total order then puts the unlink before any later advance that
        // a reader observes). Readers here load with Acquire, so the goal is
        // read with a read-modify-write instead: the unlink, sequenced
        // before this Release RMW, happens before every Acquire load that
        // returns a later wr_seq (all later values are RMWs in this RMW's
        // release sequence). A reader whose quiescent state or attach
        // observes wr_seq >= goal therefore sees the unlink, and a reader
        // that does not keeps its seq below the goal. The RMW returns the
        // latest value, so the goal is never stale either.
        let current = self.wr_seq.fetch_add(0, Ordering::AcqRel);
        invariant_eq!(current % 2, 1, "wr_seq_odd");
        current + INCR
    }

    /// `_Py_qsbr_poll`: has `rd_seq` reached `goal`? Consults the cached
    /// `rd_seq` first and scans the slots only when it is behind. The
    /// caller (spec thread `thread`) must be attached: that is what keeps
    /// the slot array from being freed under the scan.
    pub(crate) fn poll(&self, thread: u8, goal: u64) -> bool {
        // _Py_qbsr_goal_reached. Acquire: pairs with the scanner's AcqRel
        // CAS, which acquired every slot's Release store of its seq; so
        // every access a reader made to the retired value before its
        // quiescent state or detach happens before our free.
        if seq_leq(goal, self.rd_seq.load(Ordering::Acquire)) {
            return true;
        }
        seq_leq(goal, self.scan(thread))
    }

    /// `qsbr_poll_scan`: the minimum of `wr_seq` and every attached slot's
    /// `seq`, CASed into `rd_seq`. Returns the read sequence it leaves.
    pub(crate) fn scan(&self, thread: u8) -> u64 {
        self.trace.step(|log| {
            // The store-buffer argument, scanner side. SeqCst fence F_S,
            // sequenced after the unlink (or ordered after it by the mutex
            // of the interpreter's queue). The attaching reader stores its
            // seq and then runs its own SeqCst fence F_A before loading the
            // pointer (QsbrThread::attach). The fences are totally ordered:
            // if F_A precedes F_S, the loads below see the reader's seq (or
            // a later store), so the reader holds the scan back; if F_S
            // precedes F_A, the reader's pointer load sees the unlink and
            // cannot return the retired value. Either way no reader keeps a
            // retired pointer that the scan misses.
            fence(Ordering::SeqCst);
            // Acquire: see `next_goal`; a wr_seq at or past a goal carries
            // the unlink that goal protects.
            let wr_seq = self.wr_seq.load(Ordering::Acquire);
            let mut min = wr_seq;
            // SAFETY: the caller is attached, so growth cannot free the
            // array (it waits until no thread is attached).
            let array = unsafe { self.array() };
            for slot in array.slots.iter() {
                // Acquire: pairs with the Release store of the slot's seq in
                // quiescent_state/detach, so the reader's accesses to any
                // value it held happen before a free this scan allows.
                let seq = slot.seq.load(Ordering::Acquire);
                if seq != OFFLINE && seq_lt(seq, min) {
                    min = seq;
                }
            }
            let mut rd_seq = self.rd_seq.load(Ordering::Acquire);
            if seq_lt(rd_seq, min) {
                // AcqRel: Release passes what this scan acquired on to
                // pollers that read rd_seq; Acquire for the same reason on
                // the failure path. A failed CAS is fine: another scanner
                // moved rd_seq (to a value it proved); CPython then returns
                // its own minimum, and so does this.
                let _ =
                    self.rd_seq
                        .compare_exchange(rd_seq, min, Ordering::AcqRel, Ordering::Acquire);
                rd_seq = min;
            }
            invariant_eq!(rd_seq % 2, 1, "rd_seq_bounded: rd_seq is odd");
            invariant!(
                seq_leq(rd_seq, self.wr_seq.load(Ordering::Relaxed)),
                "rd_seq_bounded: rd_seq {rd_seq} ran ahead of wr_seq"
            );
            log.emit_with(|| Event::Scan {
                thread,
                rd_seq: event_seq(rd_seq),
            });
            rd_seq
        })
    }
}

impl Drop for Domain {
    /// `_PyMem_FiniDelayed` and `_Py_qsbr_fini`. Every thread handle and
    /// every published cell holds an `Arc` of the domain, so no reader is
    /// left: the interpreter's queue is freed unconditionally.
    fn drop(&mut self) {
        drop(std::mem::take(&mut *lock(&self.interp.items)));
        drop(std::mem::take(&mut *lock(&self.quarantine)));
        let array = self.array.swap(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: the array pointer always comes from Box::into_raw and is
        // freed only here or in growth (which replaces it first); `&mut
        // self` means no thread can read it.
        drop(unsafe { Box::from_raw(array) });
    }
}
