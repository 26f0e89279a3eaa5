//! QSBR workloads: each thread of a run registers with one traced
//! [`Domain`], then takes operations chosen by a [`Choose`] until it exits
//! or its budget runs out. The same program runs under shuttle (random and
//! PCT schedules, choices from shuttle's scheduler-controlled generator),
//! loom (fixed scripts) and std (quickcheck scripts, one OS thread driving
//! every spec thread in turn).
//!
//! The workload stays inside the model's bounds where it can, so its states
//! are comparable with the model's: at most `max_objects - 1` retirements in
//! all (a shared ticket counter, taken before the replace) and GC advances
//! only while some queued goal is ahead of `wr_seq`, as the model allows.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use cpyrt_reference::primitive::sync::Arc;
use cpyrt_reference::primitive::thread;
use cpyrt_reference::qsbr::{Config as RefConfig, Domain, INCR, Published, QsbrThread};
use cpyrt_spec::qsbr::{Config, Event};

use crate::Choose;

/// One run's shared objects.
pub struct Run {
    pub domain: Arc<Domain>,
    pub cell: Published<u64>,
    /// Retirement tickets left (std atomic: bookkeeping of the workload,
    /// not part of the system under test).
    tickets: AtomicU32,
    /// The largest goal a retirement has taken (approximately: `wr_seq`
    /// before the replace plus one step), so GC advances happen only while a
    /// queued goal is ahead, as in the model.
    max_goal: AtomicU64,
    /// Whether the design lets a workload report a quiescent state inside a
    /// read section (the `quiescent-in-read` twin).
    qs_in_read: bool,
}

impl Run {
    pub fn new(spec: &Config) -> Run {
        let domain = Domain::new(RefConfig::from_spec(spec));
        let cell = Published::new(&domain, 0u64);
        Run {
            domain,
            cell,
            tickets: AtomicU32::new(u32::from(spec.max_objects.saturating_sub(1))),
            max_goal: AtomicU64::new(0),
            qs_in_read: !spec.design.quiescent_outside_reads,
        }
    }

    fn ticket(&self) -> bool {
        self.tickets
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1))
            .is_ok()
    }

    /// The recorded trace so far.
    pub fn trace(&self) -> Vec<Event> {
        self.domain.take_trace()
    }
}

/// What one operation of a registered thread may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Attach,
    /// Leave: detach if attached, abandon the queue, unregister.
    Exit,
    /// A read section: load, dereference, (in the twin, maybe a quiescent
    /// state while holding the pointer), dereference again, end.
    Read,
    Quiescent,
    Replace,
    Advance,
    /// `_Py_qsbr_poll` for the current write sequence (a scan when needed).
    Poll,
    Process,
    Detach,
    /// Run code that takes no QSBR step for a while (yields), so the other
    /// threads can get far ahead of this one.
    Idle,
}

/// Choose the next operation for a registered thread.
pub fn choose(th: &QsbrThread, rng: &mut dyn Choose) -> Op {
    if !th.is_attached() {
        // Exits are rarer than attaches so threads live long enough to
        // interleave.
        return match rng.below(8) {
            0 | 1 => Op::Exit,
            2 => Op::Idle,
            _ => Op::Attach,
        };
    }
    const ATTACHED: [Op; 9] = [
        Op::Read,
        Op::Quiescent,
        Op::Replace,
        Op::Advance,
        Op::Poll,
        Op::Process,
        Op::Detach,
        Op::Exit,
        Op::Idle,
    ];
    ATTACHED[rng.below(ATTACHED.len())]
}

/// Runs one operation. Returns false when the thread has exited (the
/// handle is consumed then).
pub fn perform(run: &Run, th: &mut Option<QsbrThread>, op: Op, rng: &mut dyn Choose) -> bool {
    let Some(t) = th.as_mut() else { return false };
    match op {
        Op::Attach => t.attach(),
        Op::Detach => t.detach(),
        Op::Exit => {
            let mut t = th.take().expect("checked above");
            if t.is_attached() {
                t.detach();
            }
            // Abandon and unregister are separate steps in CPython
            // (PyThreadState_Clear, then tstate_delete_common).
            let exiting = t.abandon();
            thread::yield_now();
            exiting.unregister();
            return false;
        }
        Op::Read => {
            let qs_in_read = run.qs_in_read && rng.below(2) == 0;
            // Yields inside the section give other threads room to replace,
            // retire and free while the pointer is held.
            let pauses = rng.below(4);
            let mut guard = t.read(&run.cell);
            let _ = *guard.get();
            if qs_in_read {
                guard.quiescent_state_inside_read();
            }
            for _ in 0..pauses {
                thread::yield_now();
                let _ = *guard.get();
            }
            guard.end();
        }
        Op::Quiescent => t.quiescent_state(),
        Op::Replace => {
            if run.ticket() {
                let goal = run.domain.wr_seq() + INCR;
                t.replace(&run.cell, 1);
                run.max_goal.fetch_max(goal, Ordering::Relaxed);
            }
        }
        Op::Advance => {
            // The model advances only while a queued goal is ahead.
            if run.max_goal.load(Ordering::Relaxed) > run.domain.wr_seq() {
                t.advance();
            }
        }
        Op::Poll => {
            let goal = run.domain.wr_seq();
            t.poll(goal);
        }
        Op::Process => {
            t.process_delayed();
        }
        Op::Idle => {
            for _ in 0..1 + rng.below(6) {
                thread::yield_now();
            }
        }
    }
    true
}

/// One thread's whole program: register, take up to `budget` operations,
/// then leave.
pub fn thread_program(run: &Run, tid: u8, budget: usize, rng: &mut dyn Choose) {
    let mut th = Some(Domain::reserve(&run.domain, tid).register());
    for _ in 0..budget {
        let op = choose(th.as_ref().expect("live"), rng);
        if !perform(run, &mut th, op, rng) {
            return;
        }
    }
    perform(run, &mut th, Op::Exit, rng);
}

/// A fixed program (for loom, which explores schedules, not choices):
/// register, then each operation in turn, then leave. Read sections hold
/// their pointer across one yield.
pub fn scripted(run: &Run, tid: u8, ops: &[Op]) {
    let mut th = Some(Domain::reserve(&run.domain, tid).register());
    // Choices inside an operation: one pause in each read section, no
    // quiescent state inside it.
    let mut rng = crate::Script::new(vec![1]);
    for &op in ops {
        if !perform(run, &mut th, op, &mut rng) {
            return;
        }
    }
    perform(run, &mut th, Op::Exit, &mut rng);
}
