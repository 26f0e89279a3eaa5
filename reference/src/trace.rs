//! Recording spec events from a running runtime.
//!
//! A [`Recorder`] collects the events of one mechanism (generic over the
//! event type, so every mechanism reuses it) into one log that a test or the
//! conformance suite takes at the end and replays through
//! `cpyrt_spec::replay`.
//!
//! # Why the recorded order is an execution order
//! A spec event is one atomic step, but in the runtime it is several
//! instructions: the attach step loads `wr_seq` and stores the thread's
//! `seq`; a scan loads every slot and then CASes `rd_seq`. Recording each
//! event *after* its instructions, under an unrelated lock, would let two
//! threads' instructions interleave while the log shows them one after the
//! other, and the log would then describe an execution that never happened.
//!
//! So the runtime produces each event inside [`Recorder::step`]: the
//! recorder's lock is held across every instruction that makes up the event
//! *and* the append to the log. Every write to state that some event
//! observes happens inside such a step, so steps exclude each other on
//! everything the spec can see, and the log order is a real order of atomic
//! spec steps: the execution the runtime actually took, linearized at the
//! steps. Blocking (waiting for a mutex, a pause or a condition) always
//! happens *outside* a step, so holding the recorder's lock never deadlocks;
//! a step only ever takes the recorder's lock last, and never blocks inside.
//!
//! The price is that tracing serializes the steps: with tracing on, the
//! recorder's lock adds happens-before edges between all steps and hides
//! weak-memory behaviour. Memory-ordering checks (the loom pass) therefore
//! run with tracing off; traced runs check the protocol, not the orderings.
//!
//! # Cost when off
//! A disabled recorder holds no lock and no log: [`Recorder::step`] is one
//! branch on an `Option` and then the bare closure, and
//! [`Emit::emit_with`] is one more branch that never builds the event. The
//! `trace_overhead` bench measures the ratio.

use crate::primitive::sync::{Mutex, lock};

/// One mechanism's event log, or nothing when tracing is off.
#[derive(Debug)]
pub struct Recorder<E> {
    log: Option<Mutex<Vec<E>>>,
}

impl<E> Recorder<E> {
    /// A recorder that records when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Recorder {
            log: enabled.then(|| Mutex::new(Vec::new())),
        }
    }

    /// Whether events are being recorded.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.log.is_some()
    }

    /// Runs the instructions of one atomic spec step. When recording, the
    /// recorder's lock is held across all of `op`, including the events it
    /// emits; when not, `op` runs bare. `op` must not block.
    #[inline]
    pub fn step<R>(&self, op: impl FnOnce(&mut Emit<'_, E>) -> R) -> R {
        match &self.log {
            None => op(&mut Emit { log: None }),
            Some(log) => {
                let mut log = lock(log);
                op(&mut Emit {
                    log: Some(&mut log),
                })
            }
        }
    }

    /// Takes the events recorded so far, leaving the log empty.
    pub fn take(&self) -> Vec<E> {
        self.log
            .as_ref()
            .map(|log| std::mem::take(&mut *lock(log)))
            .unwrap_or_default()
    }

    /// How many events are in the log.
    pub fn len(&self) -> usize {
        self.log.as_ref().map(|log| lock(log).len()).unwrap_or(0)
    }

    /// True when nothing is in the log.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The handle a step uses to append its events.
pub struct Emit<'a, E> {
    log: Option<&'a mut Vec<E>>,
}

impl<E> Emit<'_, E> {
    /// Appends `event` when recording.
    #[inline]
    pub fn emit(&mut self, event: E) {
        if let Some(log) = self.log.as_deref_mut() {
            log.push(event);
        }
    }

    /// Builds and appends an event only when recording.
    #[inline]
    pub fn emit_with(&mut self, event: impl FnOnce() -> E) {
        if let Some(log) = self.log.as_deref_mut() {
            log.push(event());
        }
    }

    /// Whether this step is being recorded.
    #[inline]
    pub fn is_recording(&self) -> bool {
        self.log.is_some()
    }

    /// How many events the log held before this step's own (0 when not
    /// recording). A mechanism that runs its steps inside another
    /// recorder's step (function versions inside the stop-the-world
    /// runtime's) notes it to place its events in that log's order.
    #[inline]
    pub fn position(&self) -> usize {
        self.log.as_deref().map_or(0, Vec::len)
    }
}
