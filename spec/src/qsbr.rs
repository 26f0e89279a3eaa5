//! QSBR: quiescent-state based reclamation and `_PyMem_FreeDelayed`.
//!
//! # Protocol
//! Follows `Python/qsbr.c` (`_Py_qsbr_advance`, `_Py_qsbr_deferred_advance`,
//! `qsbr_poll_scan`, `_Py_qsbr_poll`, `_Py_qsbr_attach`, `_Py_qsbr_detach`,
//! `_Py_qsbr_reserve`, `_Py_qsbr_register`, `_Py_qsbr_unregister`,
//! `grow_thread_array`), `Include/internal/pycore_qsbr.h`
//! (`_Py_qsbr_quiescent_state`) and the delayed-free queues of
//! `Objects/obmalloc.c` (`free_delayed`, `process_queue`,
//! `process_interp_queue`, `_PyMem_AbandonDelayed`), as of CPython 3.13/3.14.
//! The prose version is `spec/qsbr.md`.
//!
//! # Abstraction
//! Each event is one atomic step under sequential consistency: an atomic
//! instruction, or a section under `shared->mutex`. The memory-ordering
//! argument (the seq_cst store in attach against the seq_cst fence in the
//! scan) is what makes that sound on real hardware; the reference runtime
//! carries it, and its loom runs check it.
//!
//! - Readers are abstracted to one lock-free load of a published pointer
//!   (`Read`) and the end of that read section (`EndRead`); the pointers a
//!   thread holds are the set `holds`.
//! - A writer's unlink, goal computation and enqueue are one `Replace`
//!   event: nothing another thread can do between them changes the goal's
//!   safety, because the goal is computed after the unlink.
//! - Growth of the slot array happens under a stop-the-world pause in
//!   CPython; the spec abstracts the pause to its effect, a guard that no
//!   other thread is attached while `Reserve` grows the array. The pause
//!   protocol itself is the `stw` mechanism's subject.
//! - The "GC advance" (`Advance`) stands for `process_delayed_frees` in
//!   `Python/gc_free_threading.c` and any other caller of
//!   `_Py_qsbr_advance` outside `free_delayed`.
//! - Omitted: chunking of the queues (254 items per chunk: it changes when
//!   processing runs, not what may be freed), the decref-instead-of-free
//!   tag bit, interpreter finalization (`_PyMem_FiniDelayed` frees
//!   everything once no thread can run) and fork (the `fork` mechanism).
//!
//! # Properties
//! See [`INVARIANTS`] and [`TRANSITION_INVARIANTS`]; each carries its
//! one-sentence statement. [`LIVENESS`] states progress (every retired
//! object is eventually freed), checked under the fairness the model
//! declares; its doc says how it treats finalization.

use serde::{Deserialize, Serialize};

use crate::{Invariant, LeadsTo, Rejection, Spec, TransitionInvariant};

/// `QSBR_OFFLINE`: the `seq` of a thread that is not attached.
pub const OFFLINE: u32 = 0;
/// `QSBR_INITIAL`: the first value of `wr_seq` and `rd_seq`.
pub const INITIAL: u32 = 1;
/// `QSBR_INCR`: the step of `wr_seq`, which keeps it odd and never OFFLINE.
pub const INCR: u32 = 2;
/// `QSBR_DEFERRED_LIMIT` in CPython 3.13/3.14.
pub const CPYTHON_DEFERRED_LIMIT: u8 = 10;
/// `MIN_ARRAY_SIZE` in `Python/qsbr.c`.
pub const CPYTHON_MIN_ARRAY_SIZE: u8 = 8;

/// Design switches. [`Design::CPYTHON`] is the design as CPython ships it;
/// each other setting is a broken design from CPython's history or a
/// plausible mistake, and the models pin the counterexample it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Design {
    /// Delayed frees wait until `_Py_qsbr_poll` says the item's goal was
    /// reached. Off: an item is freed as soon as it reaches the queue head.
    pub free_waits_for_goal: bool,
    /// Quiescent states are reported only outside read sections (at the
    /// eval breaker, where no QSBR-protected pointer is live). Off: a thread
    /// may announce a quiescent state while it still holds a pointer.
    pub quiescent_outside_reads: bool,
    /// `_Py_qsbr_unregister` loads `tstate->qsbr` after taking
    /// `shared->mutex` (the gh-115103 fix, PR 116480). Off: it uses the
    /// pointer it loaded before blocking on the mutex, which a concurrent
    /// array growth may have freed.
    pub reload_slot_under_mutex: bool,
    /// Some caller outside `free_delayed` advances `wr_seq`: the free-threaded
    /// GC's `process_delayed_frees` (`Python/gc_free_threading.c`) calls
    /// `_Py_qsbr_advance` in its stop-the-world pause. Off: only a retirement
    /// that reaches the deferral limit advances, so with a limit above the
    /// number of retirements no deferred goal is ever reached (the model's
    /// liveness twin; safety is unaffected).
    pub gc_advances: bool,
}

impl Design {
    /// The design as CPython 3.13/3.14 ships it.
    pub const CPYTHON: Design = Design {
        free_waits_for_goal: true,
        quiescent_outside_reads: true,
        reload_slot_under_mutex: true,
        gc_advances: true,
    };
}

/// Bounds and design of one QSBR instance (one interpreter's `_qsbr_shared`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Number of threads (1 to [`MAX_THREADS`]).
    pub threads: usize,
    /// How many objects may ever be published, the initial one included.
    /// Bounds `wr_seq` and so the state space.
    pub max_objects: u8,
    /// `QSBR_DEFERRED_LIMIT`: every this-many retirements of one thread do a
    /// real advance; the others take goal `wr_seq + 2` without advancing.
    /// 1 means every retirement advances (the strict scheme).
    pub deferral_limit: u8,
    /// `MIN_ARRAY_SIZE`: the size of the first slot array. Below the thread
    /// count, registration has to grow the array.
    pub min_array_size: u8,
    pub design: Design,
}

/// Largest thread count a configuration may use (holds are a `u8` bitset
/// over objects and thread ids index small vectors; 4 keeps models small).
pub const MAX_THREADS: usize = 4;
/// Largest object bound (`holds` is an 8-bit set).
pub const MAX_OBJECTS: u8 = 8;

impl Config {
    /// Checks the bounds; the error names the bound and its range.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(format!(
                "threads must be between 1 and {MAX_THREADS}, got {}",
                self.threads
            ));
        }
        if self.max_objects == 0 || self.max_objects > MAX_OBJECTS {
            return Err(format!(
                "max_objects must be between 1 and {MAX_OBJECTS}, got {}",
                self.max_objects
            ));
        }
        if self.deferral_limit == 0 {
            return Err("deferral_limit must be at least 1".into());
        }
        if self.min_array_size == 0 {
            return Err("min_array_size must be at least 1".into());
        }
        Ok(())
    }
}

/// Where a thread is in its life (`new_threadstate` .. `tstate_delete_common`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Life {
    /// Not created yet.
    New,
    /// `_Py_qsbr_reserve` returned this slot index; not registered yet.
    Reserved(u8),
    /// Registered: may attach, read, retire and process.
    Running,
    /// `_PyMem_AbandonDelayed` ran; unregistering. `stale` is the slot
    /// pointer loaded before the mutex (only when the design loads early).
    Exiting { stale: Option<SlotRef> },
    /// Holding `shared->mutex` inside `_Py_qsbr_unregister` with the slot
    /// pointer it will write through.
    Unregistering { ptr: SlotRef },
    /// Gone.
    Exited,
}

/// A pointer into the slot array: which array allocation and which index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SlotRef {
    pub generation: u8,
    pub index: u8,
}

/// One slot of `_qsbr_shared.array` (`allocated` and `tstate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    Free,
    /// Allocated by `qsbr_allocate`, no thread state bound yet.
    Reserved,
    /// Bound to this thread.
    Bound(u8),
}

/// A delayed-free work item: `{ptr, qsbr_goal}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Item {
    pub object: u8,
    pub goal: u32,
}

/// Lifetime of a published object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Object {
    /// Currently published.
    Live,
    /// Unlinked and queued for delayed free with this goal.
    Retired { goal: u32 },
    /// Returned to the allocator.
    Freed,
}

/// Per-thread state: the thread state's QSBR fields and its queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thread {
    pub life: Life,
    /// `_Py_THREAD_ATTACHED`.
    pub attached: bool,
    /// `qsbr->seq`: OFFLINE or the `wr_seq` it last observed.
    pub seq: u32,
    /// Inside a read section.
    pub reading: bool,
    /// Objects loaded in the current read section (bit i = object i).
    pub holds: u8,
    /// `qsbr->deferrals`.
    pub deferrals: u8,
    /// `tstate->mem_free_queue`, FIFO.
    pub queue: Vec<Item>,
    /// `tstate->qsbr`, the pointer to its slot.
    pub slot: Option<SlotRef>,
}

/// The abstract state of one interpreter's QSBR and delayed-free queues.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    /// `shared->wr_seq`.
    pub wr_seq: u32,
    /// `shared->rd_seq`, the cached minimum.
    pub rd_seq: u32,
    /// Index of the currently published object.
    pub current: u8,
    pub objects: Vec<Object>,
    pub threads: Vec<Thread>,
    /// `interp->mem_free_queue`, FIFO.
    pub interp_queue: Vec<Item>,
    /// Owner of `shared->mutex`, when it is held across events.
    pub mutex: Option<u8>,
    /// Which allocation of the slot array is live.
    pub array_generation: u8,
    /// `shared->array`.
    pub array: Vec<Slot>,
    /// Set when a thread wrote through a pointer into a freed slot array.
    pub wrote_freed_array: bool,
}

/// One step of the protocol. Every event names the thread that takes it.
/// Events that observe a value carry it, so a recorded trace is checked
/// against what the spec computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    /// `_Py_qsbr_reserve`: allocate a slot, growing the array (under a pause)
    /// when the freelist is empty. Carries the index returned.
    Reserve { thread: u8, index: u8 },
    /// `_Py_qsbr_register`: bind the reserved slot and the thread state.
    Register { thread: u8 },
    /// `_Py_qsbr_attach`: `seq = wr_seq`.
    Attach { thread: u8, seq: u32 },
    /// `_Py_qsbr_detach`: `seq = OFFLINE`.
    Detach { thread: u8 },
    /// `_Py_qsbr_quiescent_state`: `seq = wr_seq`.
    Quiescent { thread: u8, seq: u32 },
    /// A lock-free load of the published pointer.
    Read { thread: u8, object: u8 },
    /// The end of the read section: no loaded pointer survives it.
    EndRead { thread: u8 },
    /// Publish object `new`, unlink the old one and queue it for delayed
    /// free with `goal` (`_PyMem_FreeDelayed` -> `free_delayed`).
    /// `advanced` says whether the goal came from a real advance.
    Replace {
        thread: u8,
        new: u8,
        goal: u32,
        advanced: bool,
    },
    /// `_Py_qsbr_advance` outside `free_delayed` (the GC's pause).
    Advance { thread: u8, wr_seq: u32 },
    /// `qsbr_poll_scan`: the minimum over attached threads, and the CAS of
    /// `rd_seq`. Carries `rd_seq` after the scan.
    Scan { thread: u8, rd_seq: u32 },
    /// `process_queue` frees the head of the thread's own queue.
    FreeOwn { thread: u8, object: u8 },
    /// `process_interp_queue` frees the head of the interpreter's queue.
    FreeInterp { thread: u8, object: u8 },
    /// `_PyMem_AbandonDelayed` at thread exit: the thread's queue moves to
    /// the interpreter's queue.
    Abandon { thread: u8 },
    /// `_Py_qsbr_unregister`: `shared->mutex` acquired.
    UnregisterLock { thread: u8 },
    /// `_Py_qsbr_unregister`: the slot is cleared through the pointer and
    /// pushed on the freelist; the mutex is released.
    UnregisterRelease { thread: u8 },
}

impl Event {
    pub fn thread(&self) -> u8 {
        use Event::*;
        match *self {
            Reserve { thread, .. }
            | Register { thread }
            | Attach { thread, .. }
            | Detach { thread }
            | Quiescent { thread, .. }
            | Read { thread, .. }
            | EndRead { thread }
            | Replace { thread, .. }
            | Advance { thread, .. }
            | Scan { thread, .. }
            | FreeOwn { thread, .. }
            | FreeInterp { thread, .. }
            | Abandon { thread }
            | UnregisterLock { thread }
            | UnregisterRelease { thread } => thread,
        }
    }

    /// The event's kind, without its values (for coverage and fairness).
    pub fn kind(&self) -> &'static str {
        use Event::*;
        match self {
            Reserve { .. } => "Reserve",
            Register { .. } => "Register",
            Attach { .. } => "Attach",
            Detach { .. } => "Detach",
            Quiescent { .. } => "Quiescent",
            Read { .. } => "Read",
            EndRead { .. } => "EndRead",
            Replace { .. } => "Replace",
            Advance { .. } => "Advance",
            Scan { .. } => "Scan",
            FreeOwn { .. } => "FreeOwn",
            FreeInterp { .. } => "FreeInterp",
            Abandon { .. } => "Abandon",
            UnregisterLock { .. } => "UnregisterLock",
            UnregisterRelease { .. } => "UnregisterRelease",
        }
    }
}

/// Every event kind, in declaration order.
pub const EVENT_KINDS: &[&str] = &[
    "Reserve",
    "Register",
    "Attach",
    "Detach",
    "Quiescent",
    "Read",
    "EndRead",
    "Replace",
    "Advance",
    "Scan",
    "FreeOwn",
    "FreeInterp",
    "Abandon",
    "UnregisterLock",
    "UnregisterRelease",
];

/// `QSBR_LEQ` (wrap-safe in CPython; the spec's sequences never wrap).
fn reached(goal: u32, rd_seq: u32) -> bool {
    goal <= rd_seq
}

impl State {
    /// Objects that are queued for delayed free but not freed yet.
    pub fn pending(&self) -> impl Iterator<Item = &Item> {
        self.threads
            .iter()
            .flat_map(|t| t.queue.iter())
            .chain(self.interp_queue.iter())
    }

    /// What `qsbr_poll_scan` would compute: the minimum of `wr_seq` and the
    /// `seq` of every slot that is not OFFLINE.
    pub fn scan_min(&self) -> u32 {
        self.threads
            .iter()
            .filter(|t| t.seq != OFFLINE)
            .map(|t| t.seq)
            .fold(self.wr_seq, u32::min)
    }

    /// The goal `free_delayed` would take for thread `t` now, and whether
    /// it advances (`_Py_qsbr_deferred_advance`).
    pub fn next_goal(&self, cfg: &Config, t: usize) -> (u32, bool) {
        if self.threads[t].deferrals + 1 < cfg.deferral_limit {
            (self.wr_seq + INCR, false)
        } else {
            (self.wr_seq + INCR, true)
        }
    }

    /// The representative of this state under renaming threads, and the
    /// renaming: `perm[new] = old`. Threads are interchangeable (no rule of
    /// the protocol looks at a thread's number), and a thread's number
    /// appears only in its position in `threads`, in `array` (`Bound`) and
    /// in `mutex`. Threads are sorted by their state together with those two
    /// mentions, so two threads that compare equal can be swapped without
    /// changing the state: the result does not depend on the original
    /// numbering. Slot indices and objects are not renamed (which slot is
    /// free first and which object is published next are protocol facts).
    pub fn canonical(&self) -> (State, Vec<u8>) {
        let n = self.threads.len();
        let mentions: Vec<(bool, Vec<u8>)> = (0..n)
            .map(|t| {
                let bound = self
                    .array
                    .iter()
                    .enumerate()
                    .filter(|(_, slot)| **slot == Slot::Bound(t as u8))
                    .map(|(i, _)| i as u8)
                    .collect();
                (self.mutex == Some(t as u8), bound)
            })
            .collect();
        let mut perm: Vec<u8> = (0..n as u8).collect();
        perm.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            (&self.threads[a], &mentions[a]).cmp(&(&self.threads[b], &mentions[b]))
        });
        let mut inverse = vec![0u8; n];
        for (new, &old) in perm.iter().enumerate() {
            inverse[old as usize] = new as u8;
        }
        let state = State {
            threads: perm
                .iter()
                .map(|&old| self.threads[old as usize].clone())
                .collect(),
            mutex: self.mutex.map(|t| inverse[t as usize]),
            array: self
                .array
                .iter()
                .map(|slot| match *slot {
                    Slot::Bound(t) => Slot::Bound(inverse[t as usize]),
                    other => other,
                })
                .collect(),
            objects: self.objects.clone(),
            interp_queue: self.interp_queue.clone(),
            ..*self
        };
        (state, perm)
    }

    fn free_slot(&self) -> Option<u8> {
        // qsbr_allocate pops the freelist; initialize_new_array pushes slots
        // in index order, so the lowest free index is on top after a grow
        // only in reverse. The spec takes the lowest free index; which free
        // slot a thread gets does not affect any property.
        self.array
            .iter()
            .position(|s| *s == Slot::Free)
            .map(|i| i as u8)
    }
}

pub struct Qsbr;

fn reject<T>(reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason))
}

impl Spec for Qsbr {
    type Config = Config;
    type State = State;
    type Event = Event;
    const NAME: &'static str = "qsbr";

    fn init(cfg: &Config) -> State {
        let mut objects = vec![Object::Live];
        objects.reserve(cfg.max_objects as usize);
        State {
            wr_seq: INITIAL,
            rd_seq: INITIAL,
            current: 0,
            objects,
            threads: vec![
                Thread {
                    life: Life::New,
                    attached: false,
                    seq: OFFLINE,
                    reading: false,
                    holds: 0,
                    deferrals: 0,
                    queue: Vec::new(),
                    slot: None,
                };
                cfg.threads
            ],
            interp_queue: Vec::new(),
            mutex: None,
            array_generation: 0,
            // CPython starts with an empty array; the first reserve grows it
            // to MIN_ARRAY_SIZE.
            array: Vec::new(),
            wrote_freed_array: false,
        }
    }

    fn enabled(cfg: &Config, s: &State, out: &mut Vec<Event>) {
        for (t, th) in s.threads.iter().enumerate() {
            let thread = t as u8;
            match th.life {
                Life::New => {
                    if s.mutex.is_none() {
                        let index = match s.free_slot() {
                            Some(i) => Some(i),
                            // Growth pauses the world: wait until no other
                            // thread is attached.
                            None if !s.threads.iter().any(|o| o.attached) => {
                                Some(s.array.len() as u8)
                            }
                            None => None,
                        };
                        if let Some(index) = index {
                            out.push(Event::Reserve { thread, index });
                        }
                    }
                }
                Life::Reserved(_) => {
                    if s.mutex.is_none() {
                        out.push(Event::Register { thread });
                    }
                }
                Life::Running if !th.attached => {
                    out.push(Event::Attach {
                        thread,
                        seq: s.wr_seq,
                    });
                    out.push(Event::Abandon { thread });
                }
                Life::Running => {
                    if th.reading {
                        out.push(Event::EndRead { thread });
                    } else {
                        out.push(Event::Read {
                            thread,
                            object: s.current,
                        });
                        out.push(Event::Detach { thread });
                    }
                    if (!th.reading || !cfg.design.quiescent_outside_reads) && th.seq != s.wr_seq {
                        out.push(Event::Quiescent {
                            thread,
                            seq: s.wr_seq,
                        });
                    }
                    if !th.reading && (s.objects.len() as u8) < cfg.max_objects {
                        let (goal, advanced) = s.next_goal(cfg, t);
                        out.push(Event::Replace {
                            thread,
                            new: s.objects.len() as u8,
                            goal,
                            advanced,
                        });
                    }
                    // Only advance when a pending goal needs it: this bounds
                    // wr_seq, and an advance nobody waits for changes no
                    // property.
                    if cfg.design.gc_advances && s.pending().any(|i| i.goal > s.wr_seq) {
                        out.push(Event::Advance {
                            thread,
                            wr_seq: s.wr_seq + INCR,
                        });
                    }
                    let min = s.scan_min();
                    if min > s.rd_seq {
                        out.push(Event::Scan {
                            thread,
                            rd_seq: min,
                        });
                    }
                    if let Some(item) = th.queue.first()
                        && (!cfg.design.free_waits_for_goal || reached(item.goal, s.rd_seq))
                    {
                        out.push(Event::FreeOwn {
                            thread,
                            object: item.object,
                        });
                    }
                    if let Some(item) = s.interp_queue.first()
                        && (!cfg.design.free_waits_for_goal || reached(item.goal, s.rd_seq))
                    {
                        out.push(Event::FreeInterp {
                            thread,
                            object: item.object,
                        });
                    }
                }
                Life::Exiting { .. } => {
                    if s.mutex.is_none() {
                        out.push(Event::UnregisterLock { thread });
                    }
                }
                Life::Unregistering { .. } => out.push(Event::UnregisterRelease { thread }),
                Life::Exited => {}
            }
        }
    }

    fn step(cfg: &Config, s: &State, event: &Event) -> Result<State, Rejection> {
        let t = event.thread() as usize;
        if t >= s.threads.len() {
            return reject(format!(
                "no thread {t} in a {}-thread configuration",
                s.threads.len()
            ));
        }
        let mut n = s.clone();
        let th = &s.threads[t];
        let running_attached = th.life == Life::Running && th.attached;
        match *event {
            Event::Reserve { index, .. } => {
                if th.life != Life::New {
                    return reject("only a new thread reserves a slot");
                }
                if s.mutex.is_some() {
                    return reject("shared->mutex is held");
                }
                if s.free_slot().is_none() {
                    // grow_thread_array under _PyEval_StopTheWorld.
                    if s.threads.iter().any(|o| o.attached) {
                        return reject("growing the slot array needs the world stopped");
                    }
                    let new_size = (s.array.len() * 2).max(cfg.min_array_size as usize);
                    n.array.resize(new_size, Slot::Free);
                    n.array_generation = s.array_generation + 1;
                    // initialize_new_array rewrites every bound tstate->qsbr.
                    for other in n.threads.iter_mut() {
                        if let Some(slot) = other.slot.as_mut() {
                            slot.generation = n.array_generation;
                        }
                    }
                }
                let Some(free) = n.free_slot() else {
                    return reject("no free slot after growth");
                };
                if free != index {
                    return reject(format!(
                        "reserve returned slot {index}, spec expects {free}"
                    ));
                }
                n.array[index as usize] = Slot::Reserved;
                n.threads[t].life = Life::Reserved(index);
            }
            Event::Register { .. } => {
                let Life::Reserved(index) = th.life else {
                    return reject("register needs a reserved slot");
                };
                if s.mutex.is_some() {
                    return reject("shared->mutex is held");
                }
                if s.array[index as usize] != Slot::Reserved {
                    return reject("the reserved slot is not allocated");
                }
                n.array[index as usize] = Slot::Bound(t as u8);
                n.threads[t].slot = Some(SlotRef {
                    generation: s.array_generation,
                    index,
                });
                n.threads[t].life = Life::Running;
            }
            Event::Attach { seq, .. } => {
                if th.life != Life::Running || th.attached {
                    return reject("attach needs a registered, detached thread");
                }
                if th.seq != OFFLINE {
                    return reject("already attached: seq is not OFFLINE");
                }
                if seq != s.wr_seq {
                    return reject(format!("attach stored seq {seq}, wr_seq is {}", s.wr_seq));
                }
                n.threads[t].attached = true;
                n.threads[t].seq = seq;
            }
            Event::Detach { .. } => {
                if !running_attached {
                    return reject("detach needs an attached thread");
                }
                if th.reading {
                    return reject("a thread detaches only outside read sections");
                }
                n.threads[t].attached = false;
                n.threads[t].seq = OFFLINE;
            }
            Event::Quiescent { seq, .. } => {
                if !running_attached {
                    return reject("a quiescent state needs an attached thread");
                }
                if th.reading && cfg.design.quiescent_outside_reads {
                    return reject("quiescent state reported inside a read section");
                }
                if seq != s.wr_seq {
                    return reject(format!(
                        "quiescent stored seq {seq}, wr_seq is {}",
                        s.wr_seq
                    ));
                }
                n.threads[t].seq = seq;
            }
            Event::Read { object, .. } => {
                if !running_attached {
                    return reject("lock-free reads need an attached thread");
                }
                if th.reading {
                    return reject("already inside a read section");
                }
                if object != s.current {
                    return reject(format!("read object {object}, published is {}", s.current));
                }
                n.threads[t].reading = true;
                n.threads[t].holds |= 1 << object;
            }
            Event::EndRead { .. } => {
                if !running_attached || !th.reading {
                    return reject("no read section to end");
                }
                n.threads[t].reading = false;
                n.threads[t].holds = 0;
            }
            Event::Replace {
                new,
                goal,
                advanced,
                ..
            } => {
                if !running_attached || th.reading {
                    return reject("a writer replaces the object attached and outside reads");
                }
                if new as usize != s.objects.len() || new >= cfg.max_objects {
                    return reject(format!(
                        "new object must be {} (bound {})",
                        s.objects.len(),
                        cfg.max_objects
                    ));
                }
                let (expected, must_advance) = s.next_goal(cfg, t);
                if (goal, advanced) != (expected, must_advance) {
                    return reject(format!(
                        "goal {goal} (advanced {advanced}), spec expects {expected} (advanced {must_advance})"
                    ));
                }
                if advanced {
                    n.wr_seq = s.wr_seq + INCR;
                    n.threads[t].deferrals = 0;
                } else {
                    n.threads[t].deferrals = th.deferrals + 1;
                }
                let old = s.current;
                n.objects.push(Object::Live);
                n.current = new;
                n.objects[old as usize] = Object::Retired { goal };
                n.threads[t].queue.push(Item { object: old, goal });
            }
            Event::Advance { wr_seq, .. } => {
                if !cfg.design.gc_advances {
                    return reject("no caller outside free_delayed advances in this design");
                }
                if !running_attached {
                    return reject("advance needs an attached thread");
                }
                if wr_seq != s.wr_seq + INCR {
                    return reject(format!(
                        "advance to {wr_seq}, spec expects {}",
                        s.wr_seq + INCR
                    ));
                }
                n.wr_seq = wr_seq;
            }
            Event::Scan { rd_seq, .. } => {
                if !running_attached {
                    return reject("_Py_qsbr_poll needs an attached thread");
                }
                let expected = s.rd_seq.max(s.scan_min());
                if rd_seq != expected {
                    return reject(format!(
                        "scan left rd_seq {rd_seq}, spec expects {expected}"
                    ));
                }
                n.rd_seq = expected;
            }
            Event::FreeOwn { object, .. } | Event::FreeInterp { object, .. } => {
                if !running_attached {
                    return reject("processing delayed frees needs an attached thread");
                }
                let own = matches!(event, Event::FreeOwn { .. });
                let queue = if own { &th.queue } else { &s.interp_queue };
                let Some(head) = queue.first() else {
                    return reject("the queue is empty");
                };
                if head.object != object {
                    return reject(format!(
                        "freed object {object}, queue head is {}",
                        head.object
                    ));
                }
                if cfg.design.free_waits_for_goal && !reached(head.goal, s.rd_seq) {
                    return reject(format!(
                        "goal {} not reached (rd_seq {})",
                        head.goal, s.rd_seq
                    ));
                }
                if own {
                    n.threads[t].queue.remove(0);
                } else {
                    n.interp_queue.remove(0);
                }
                n.objects[object as usize] = Object::Freed;
            }
            Event::Abandon { .. } => {
                if th.life != Life::Running || th.attached {
                    return reject("a thread abandons its queue detached, at exit");
                }
                let queue = std::mem::take(&mut n.threads[t].queue);
                n.interp_queue.extend(queue);
                let stale = if cfg.design.reload_slot_under_mutex {
                    None
                } else {
                    th.slot
                };
                n.threads[t].life = Life::Exiting { stale };
            }
            Event::UnregisterLock { .. } => {
                let Life::Exiting { stale } = th.life else {
                    return reject("unregister follows abandon");
                };
                if s.mutex.is_some() {
                    return reject("shared->mutex is held");
                }
                let Some(ptr) = stale.or(th.slot) else {
                    return reject("thread has no slot");
                };
                n.mutex = Some(t as u8);
                n.threads[t].life = Life::Unregistering { ptr };
            }
            Event::UnregisterRelease { .. } => {
                let Life::Unregistering { ptr } = th.life else {
                    return reject("release needs the mutex taken in unregister");
                };
                if s.mutex != Some(t as u8) {
                    return reject("the thread does not hold shared->mutex");
                }
                if th.seq != OFFLINE {
                    return reject("unregister needs seq == OFFLINE");
                }
                if ptr.generation == s.array_generation {
                    n.array[ptr.index as usize] = Slot::Free;
                } else {
                    // The write lands in an array grow_thread_array freed;
                    // the live array keeps the slot bound to a dead thread.
                    n.wrote_freed_array = true;
                }
                n.mutex = None;
                n.threads[t].slot = None;
                n.threads[t].life = Life::Exited;
            }
        }
        Ok(n)
    }

    fn actor(event: &Event) -> usize {
        event.thread() as usize
    }

    fn invariants() -> &'static [Invariant<State>] {
        INVARIANTS
    }

    fn transition_invariants() -> &'static [TransitionInvariant<State>] {
        TRANSITION_INVARIANTS
    }

    fn sometimes() -> &'static [Invariant<State>] {
        SOMETIMES
    }

    fn liveness() -> &'static [LeadsTo<State>] {
        LIVENESS
    }
}

/// Liveness, checked under the fairness the model declares
/// (`models/src/qsbr.rs`). Retirements are bounded (`max_objects`), so
/// "a state with no retired object follows" is the same as "each retired
/// object is eventually freed": a run that never reaches such a state has a
/// last retirement, after which some retired object is never freed.
///
/// Interpreter finalization (`_PyMem_FiniDelayed`) frees whatever is left
/// once no thread runs; the spec omits it, so the goal also holds once
/// every thread has exited. Without that, items abandoned to the
/// interpreter's queue by the last threads to exit, which only an attached
/// thread processes, would count as leaks CPython does not have.
pub static LIVENESS: &[LeadsTo<State>] = &[LeadsTo {
    name: "retired_eventually_freed",
    doc: "Every retired object is eventually freed, or every thread exits and finalization frees it.",
    p: |s| {
        s.objects
            .iter()
            .any(|o| matches!(o, Object::Retired { .. }))
    },
    q: |s| {
        s.objects
            .iter()
            .all(|o| !matches!(o, Object::Retired { .. }))
            || s.threads.iter().all(|t| t.life == Life::Exited)
    },
}];

/// Reachability goals: without them a model whose invariants hold could be
/// holding vacuously.
pub static SOMETIMES: &[Invariant<State>] = &[
    Invariant {
        name: "item_freed",
        doc: "Some retired object is really returned to the allocator.",
        holds: |s| s.objects.iter().any(|o| *o == Object::Freed),
    },
    Invariant {
        name: "array_grown",
        doc: "The slot array is reallocated while a thread is registered in it.",
        holds: |s| s.array_generation >= 2,
    },
    Invariant {
        name: "thread_exited",
        doc: "Some thread completes unregistration.",
        holds: |s| s.threads.iter().any(|t| t.life == Life::Exited),
    },
];

/// Named state invariants. The first is the reason QSBR exists.
pub static INVARIANTS: &[Invariant<State>] = &[
    Invariant {
        name: "no_use_after_free",
        doc: "No thread holds a pointer, loaded in its current read section, to memory that has been freed.",
        holds: no_use_after_free,
    },
    Invariant {
        name: "wr_seq_odd",
        doc: "The write sequence is odd, so it never equals OFFLINE.",
        holds: |s| s.wr_seq % 2 == 1,
    },
    Invariant {
        name: "rd_seq_bounded",
        doc: "The cached read sequence never runs ahead of the write sequence.",
        holds: |s| s.rd_seq <= s.wr_seq && s.rd_seq % 2 == 1,
    },
    Invariant {
        name: "seq_nonzero_iff_attached",
        doc: "A thread's seq is non-zero exactly while it is attached.",
        holds: |s| s.threads.iter().all(|t| (t.seq != OFFLINE) == t.attached),
    },
    Invariant {
        name: "goals_bounded",
        doc: "Every queued goal is odd and at most one step ahead of the write sequence.",
        holds: |s| {
            s.pending()
                .all(|i| i.goal % 2 == 1 && i.goal <= s.wr_seq + INCR)
        },
    },
    Invariant {
        name: "slot_owned_by_at_most_one_thread",
        doc: "Each slot of the live array is bound to at most one running thread, and that thread's pointer names it.",
        holds: slot_ownership,
    },
    Invariant {
        name: "no_write_to_freed_slot_array",
        doc: "No thread writes through a pointer into a slot array that growth has freed.",
        holds: |s| !s.wrote_freed_array,
    },
];

/// Named transition invariants.
pub static TRANSITION_INVARIANTS: &[TransitionInvariant<State>] = &[
    TransitionInvariant {
        name: "wr_seq_monotone",
        doc: "The write sequence never decreases.",
        holds: |a, b| b.wr_seq >= a.wr_seq,
    },
    TransitionInvariant {
        name: "rd_seq_monotone",
        doc: "The cached read sequence never decreases.",
        holds: |a, b| b.rd_seq >= a.rd_seq,
    },
];

fn no_use_after_free(s: &State) -> bool {
    s.threads.iter().all(|t| {
        (0..s.objects.len()).all(|o| t.holds & (1 << o) == 0 || s.objects[o] != Object::Freed)
    })
}

fn slot_ownership(s: &State) -> bool {
    let bound_ok = s.array.iter().enumerate().all(|(i, slot)| match *slot {
        Slot::Bound(t) => {
            let th = &s.threads[t as usize];
            !matches!(th.life, Life::Exited)
                && th.slot
                    == Some(SlotRef {
                        generation: s.array_generation,
                        index: i as u8,
                    })
        }
        _ => true,
    });
    let unique = s.threads.iter().enumerate().all(|(t, th)| {
        s.threads
            .iter()
            .enumerate()
            .all(|(u, other)| t == u || th.slot.is_none() || th.slot != other.slot)
    });
    bound_ok && unique
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TraceError, replay};

    fn cfg(threads: usize) -> Config {
        Config {
            threads,
            max_objects: 3,
            deferral_limit: 2,
            min_array_size: 1,
            design: Design::CPYTHON,
        }
    }

    fn start(t: u8, index: u8) -> Vec<Event> {
        vec![
            Event::Reserve { thread: t, index },
            Event::Register { thread: t },
            Event::Attach { thread: t, seq: 1 },
        ]
    }

    #[test]
    fn deferred_goal_waits_for_a_real_advance() {
        let c = cfg(1);
        let mut trace = start(0, 0);
        trace.extend([
            Event::Replace {
                thread: 0,
                new: 1,
                goal: 3,
                advanced: false,
            },
            // wr_seq is still 1: the scan cannot reach goal 3.
            Event::FreeOwn {
                thread: 0,
                object: 0,
            },
        ]);
        let err = replay::<Qsbr>(&c, &trace).unwrap_err();
        assert!(
            matches!(err, TraceError::Rejected { index: 4, .. }),
            "{err}"
        );

        let mut trace = start(0, 0);
        trace.extend([
            Event::Replace {
                thread: 0,
                new: 1,
                goal: 3,
                advanced: false,
            },
            Event::Advance {
                thread: 0,
                wr_seq: 3,
            },
            Event::Quiescent { thread: 0, seq: 3 },
            Event::Scan {
                thread: 0,
                rd_seq: 3,
            },
            Event::FreeOwn {
                thread: 0,
                object: 0,
            },
        ]);
        let states = replay::<Qsbr>(&c, &trace).unwrap();
        assert_eq!(states.last().unwrap().objects[0], Object::Freed);
    }

    #[test]
    fn reader_holds_back_the_scan() {
        let c = cfg(2);
        let mut trace = vec![
            Event::Reserve {
                thread: 0,
                index: 0,
            },
            Event::Reserve {
                thread: 1,
                index: 1,
            },
            Event::Register { thread: 0 },
            Event::Register { thread: 1 },
            Event::Attach { thread: 0, seq: 1 },
        ];
        trace.extend([
            Event::Attach { thread: 1, seq: 1 },
            Event::Read {
                thread: 1,
                object: 0,
            },
            // The second retirement of thread 0 advances (limit 2).
            Event::Replace {
                thread: 0,
                new: 1,
                goal: 3,
                advanced: false,
            },
            Event::Replace {
                thread: 0,
                new: 2,
                goal: 3,
                advanced: true,
            },
            Event::Quiescent { thread: 0, seq: 3 },
        ]);
        let states = replay::<Qsbr>(&c, &trace).unwrap();
        let s = states.last().unwrap();
        // Thread 1 is still at seq 1, so the scan cannot pass it.
        assert_eq!(s.scan_min(), 1);
        let mut more = trace.clone();
        more.push(Event::Scan {
            thread: 0,
            rd_seq: 3,
        });
        assert!(replay::<Qsbr>(&c, &more).is_err());
    }

    #[test]
    fn broken_free_is_a_use_after_free() {
        let mut c = cfg(2);
        c.design.free_waits_for_goal = false;
        let mut trace = vec![
            Event::Reserve {
                thread: 0,
                index: 0,
            },
            Event::Reserve {
                thread: 1,
                index: 1,
            },
            Event::Register { thread: 0 },
            Event::Register { thread: 1 },
            Event::Attach { thread: 0, seq: 1 },
        ];
        trace.extend([
            Event::Attach { thread: 1, seq: 1 },
            Event::Read {
                thread: 1,
                object: 0,
            },
            Event::Replace {
                thread: 0,
                new: 1,
                goal: 3,
                advanced: false,
            },
            Event::FreeOwn {
                thread: 0,
                object: 0,
            },
        ]);
        let err = replay::<Qsbr>(&c, &trace).unwrap_err();
        assert_eq!(
            err,
            TraceError::Invariant {
                index: 8,
                name: "no_use_after_free"
            }
        );
    }

    #[test]
    fn growth_rewrites_registered_pointers() {
        let c = cfg(2);
        let mut trace = start(0, 0);
        trace.extend([
            Event::Detach { thread: 0 },
            Event::Reserve {
                thread: 1,
                index: 1,
            },
            Event::Register { thread: 1 },
        ]);
        let states = replay::<Qsbr>(&c, &trace).unwrap();
        let s = states.last().unwrap();
        assert_eq!(s.array.len(), 2);
        assert_eq!(
            s.threads[0].slot,
            Some(SlotRef {
                generation: 2,
                index: 0
            })
        );
        // Growth needs the world stopped: with thread 0 attached it waits.
        let mut blocked = start(0, 0);
        blocked.push(Event::Reserve {
            thread: 1,
            index: 1,
        });
        assert!(replay::<Qsbr>(&c, &blocked).is_err());
    }

    #[test]
    fn stale_slot_pointer_writes_a_freed_array() {
        let mut c = cfg(2);
        c.design.reload_slot_under_mutex = false;
        let trace = vec![
            Event::Reserve {
                thread: 0,
                index: 0,
            },
            Event::Register { thread: 0 },
            Event::Abandon { thread: 0 },
            Event::Reserve {
                thread: 1,
                index: 1,
            },
            Event::UnregisterLock { thread: 0 },
            Event::UnregisterRelease { thread: 0 },
        ];
        let err = replay::<Qsbr>(&c, &trace).unwrap_err();
        assert!(
            matches!(err, TraceError::Invariant { index: 5, name } if name == "no_write_to_freed_slot_array" || name == "slot_owned_by_at_most_one_thread"),
            "{err}"
        );
        c.design = Design::CPYTHON;
        let states = replay::<Qsbr>(&c, &trace).unwrap();
        assert_eq!(
            states.last().unwrap().array,
            vec![Slot::Free, Slot::Reserved]
        );
    }

    /// Every state reachable under `c` (a small exhaustive search).
    fn reachable(c: &Config) -> Vec<State> {
        let mut seen = std::collections::HashSet::new();
        let mut todo = vec![Qsbr::init(c)];
        let mut out = Vec::new();
        let mut events = Vec::new();
        while let Some(s) = todo.pop() {
            if !seen.insert(s.clone()) {
                continue;
            }
            events.clear();
            Qsbr::enabled(c, &s, &mut events);
            for e in &events {
                todo.push(Qsbr::step(c, &s, e).unwrap());
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn without_gc_advance_deferred_goals_are_never_reached() {
        // Deferral limit above the number of retirements: no retirement
        // advances, so only the GC's advance could reach a goal.
        let mut c = cfg(1);
        c.deferral_limit = CPYTHON_DEFERRED_LIMIT;
        let freed = |c: &Config| {
            reachable(c)
                .iter()
                .any(|s| s.objects.contains(&Object::Freed))
        };
        assert!(freed(&c));
        c.design.gc_advances = false;
        assert!(!freed(&c));
        let mut trace = start(0, 0);
        trace.push(Event::Replace {
            thread: 0,
            new: 1,
            goal: 3,
            advanced: false,
        });
        trace.push(Event::Advance {
            thread: 0,
            wr_seq: 3,
        });
        let err = replay::<Qsbr>(&c, &trace).unwrap_err();
        assert!(
            matches!(err, TraceError::Rejected { index: 4, .. }),
            "{err}"
        );
    }

    #[test]
    fn canonical_forgets_thread_numbers() {
        let c = cfg(3);
        let run = |t: u8, u: u8| {
            let trace = vec![
                Event::Reserve {
                    thread: t,
                    index: 0,
                },
                Event::Register { thread: t },
                Event::Abandon { thread: t },
                Event::Reserve {
                    thread: u,
                    index: 1,
                },
                Event::UnregisterLock { thread: t },
            ];
            replay::<Qsbr>(&c, &trace).unwrap().pop().unwrap()
        };
        let (a, b) = (run(0, 1), run(2, 0));
        assert_ne!(a, b);
        let ((ca, pa), (cb, _)) = (a.canonical(), b.canonical());
        assert_eq!(ca, cb);
        // The renaming is consistent: each thread keeps its own mentions.
        for (new, &old) in pa.iter().enumerate() {
            assert_eq!(ca.threads[new], a.threads[old as usize]);
        }
        let owner = ca.mutex.expect("the unregistering thread holds the mutex");
        assert!(matches!(
            ca.threads[owner as usize].life,
            Life::Unregistering { .. }
        ));
        // Canonical forms are fixed points and keep every invariant's value.
        for s in reachable(&cfg(2)) {
            let (r, _) = s.canonical();
            assert_eq!(r.canonical().0, r);
            for inv in INVARIANTS {
                assert_eq!((inv.holds)(&s), (inv.holds)(&r), "{}", inv.name);
            }
        }
    }

    #[test]
    fn enabled_events_are_accepted() {
        // Every event `enabled` offers is one `step` accepts, on a bounded
        // random walk from the initial state.
        let c = cfg(3);
        let mut s = Qsbr::init(&c);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut events = Vec::new();
        for _ in 0..2000 {
            events.clear();
            Qsbr::enabled(&c, &s, &mut events);
            if events.is_empty() {
                break;
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let e = events[(seed % events.len() as u64) as usize];
            s = Qsbr::step(&c, &s, &e).unwrap_or_else(|r| panic!("{e:?}: {r}"));
        }
    }
}
