//! Running a thread's spec program ([`Op`]s) on the reference runtime:
//! thread-state creation and deletion under HEAD_LOCK (with the allocation
//! hook that re-enters `PyGILState_Ensure`), binding a main-interpreter
//! thread state, joining, finalization, and bytecode as eval-breaker checks.

use cpyrt_spec::gil::{HOOK_PROGRAM, LockId};

use std::ops::ControlFlow;

use super::handoff::Taken;
use super::{Event, Op, PyThread};
use crate::eval::{self, Machine};
use crate::primitive::sync::atomic::Ordering;
use crate::primitive::sync::{Arc, MutexGuard, lock, wait};

/// How a program run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The program (or its last allowed round) ran to its end.
    Finished,
    /// The thread had to exit in `take_gil` and hangs (in CPython it
    /// blocks forever; here it returns, so a checker can tell it from a
    /// deadlock).
    Hung,
    /// The thread was about to wait for HEAD_LOCK, which it holds
    /// (`no_self_block`): CPython deadlocks there. The runtime returns
    /// instead, releasing what it holds, so the report happens outside
    /// every lock (under loom a panic while a guard is alive aborts).
    SelfBlocked,
}

/// Bounds that make a looping or CPU-bound spec program finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    /// Eval-breaker checks per `Run` op before it leaves.
    pub checks_per_run: usize,
    /// Passes through a program that repeats (`repeat_from`).
    pub rounds: usize,
    /// Spin-loop iterations of "bytecode" before each check (0 under a
    /// model checker, where only the interleaving matters).
    pub spin: u32,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            checks_per_run: 2,
            rounds: 2,
            spin: 0,
        }
    }
}

/// One instruction of the bytecode a `Run` op executes: `spin` iterations
/// of work (none under a model checker, where only the interleaving
/// matters).
#[derive(Clone, Copy, Debug)]
pub struct Bytecode {
    pub spin: u32,
}

/// A GIL thread on the shared instruction loop (`crate::eval`): its
/// eval-breaker check handles the drop request (`_Py_HandlePending`).
impl Machine for PyThread {
    type Op = Bytecode;
    type Exit = Outcome;

    fn eval_breaker(&mut self) -> ControlFlow<Outcome> {
        match self.eval_breaker_check() {
            Some(Taken::Hung) => ControlFlow::Break(Outcome::Hung),
            _ => ControlFlow::Continue(()),
        }
    }

    fn exec(&mut self, op: &Bytecode) -> ControlFlow<Outcome> {
        for i in 0..op.spin {
            std::hint::black_box(i);
            std::hint::spin_loop();
        }
        ControlFlow::Continue(())
    }
}

impl PyThread {
    /// Runs this thread's program from the configuration. `Compute` never
    /// ends in the spec and is refused: use `Run`.
    pub fn run(&mut self, limits: RunLimits) -> Outcome {
        let spec = self.rt.cfg.threads[self.id as usize].clone();
        let mut rounds = 0;
        let mut op = 0;
        loop {
            if op == spec.program.len() {
                match spec.repeat_from {
                    // A guided run repeats until the gate aborts it, as the
                    // spec's program does.
                    Some(r) if rounds + 1 < limits.rounds || self.rt.guided_run() => {
                        rounds += 1;
                        op = r as usize;
                    }
                    _ => {
                        self.rt.threads[self.id as usize]
                            .done
                            .store(true, Ordering::Release);
                        let _g = lock(&self.rt.joined);
                        self.rt.join_cond.notify_all();
                        return Outcome::Finished;
                    }
                }
            }
            match self.op(spec.program[op], limits) {
                Outcome::Finished => {}
                stopped => return stopped,
            }
            op += 1;
        }
    }

    /// Runs one op of a program (the caller keeps to the program's order,
    /// or the trace will not replay).
    pub fn run_op(&mut self, op: Op, limits: RunLimits) -> Outcome {
        self.op(op, limits)
    }

    fn op(&mut self, op: Op, limits: RunLimits) -> Outcome {
        let rt = Arc::clone(&self.rt);
        let t = self.id;
        let hung = |taken: Taken| match taken {
            Taken::Held => Outcome::Finished,
            Taken::Hung => Outcome::Hung,
        };
        match op {
            Op::Take => return hung(self.take_gil()),
            Op::Run if rt.guided_run() => {
                // Guided: each eval-breaker check that finds the drop
                // request is one step, and the gate says when the segment
                // ends (a check that finds nothing records nothing).
                loop {
                    if rt.pass(t) {
                        self.emit(Event::Leave { thread: t });
                        break;
                    }
                    if let Some(Taken::Hung) = self.eval_breaker_check() {
                        return Outcome::Hung;
                    }
                }
            }
            Op::Run => {
                // The shared instruction loop: an eval-breaker check before
                // each instruction.
                let code = vec![Bytecode { spin: limits.spin }; limits.checks_per_run];
                if let Some(exit) = eval::run(self, &code) {
                    return exit;
                }
                self.emit(Event::Leave { thread: t });
            }
            Op::Compute => {
                // A CPU-bound thread: eval-breaker checks forever. Only a
                // guided run, which lets each check through when the spec
                // has it find the drop request, and aborts the run at its
                // end, can drive it.
                let Some(gate) = rt.gate.clone() else {
                    panic!(
                        "Compute never ends; a free-running program uses Run (scenario::finite)"
                    );
                };
                loop {
                    gate.pass(t);
                    if let Some(Taken::Hung) = self.eval_breaker_check() {
                        return Outcome::Hung;
                    }
                }
            }
            Op::Drop => self.drop_gil(false),
            Op::Exit => {
                // _PyThreadState_DeleteCurrent: the final release, then the
                // thread state is gone.
                self.drop_gil(true);
                if let Some(ts) = self.current.take() {
                    rt.tstates[ts as usize]
                        .bound
                        .fetch_and(!(1 << t), Ordering::AcqRel);
                }
            }
            Op::Join => {
                let mine = rt.threads[t as usize].interp;
                let all_done = || {
                    rt.threads.iter().enumerate().all(|(u, th)| {
                        u == t as usize
                            || th.interp != mine
                            || th.daemon
                            || th.done.load(Ordering::Acquire)
                    })
                };
                rt.pass(t);
                let mut g = lock(&rt.joined);
                while !all_done() {
                    g = wait(&rt.join_cond, g);
                }
                drop(g);
                self.emit(Event::Join { thread: t });
            }
            Op::Finalize => {
                let ts = self.current.expect("Finalize needs a thread state");
                let interp = rt.tstates[ts as usize].interp;
                rt.pass(t);
                rt.trace.step(|log| {
                    rt.interps[interp as usize]
                        .finalizing
                        .store(super::encode(Some(ts)), Ordering::Release);
                    log.emit(Event::Finalize { thread: t });
                });
            }
            Op::DeleteInterp(interp) => {
                rt.pass(t);
                rt.trace.step(|log| {
                    rt.interps[interp as usize]
                        .deleted
                        .store(true, Ordering::Release);
                    log.emit(Event::DeleteInterp { thread: t, interp });
                });
            }
            Op::NewTstate => return self.new_threadstate(limits),
            Op::DeleteTstate => {
                let ts = self.current.expect("DeleteTstate needs a thread state");
                let Some(head) = self.head_lock(&rt) else {
                    return Outcome::SelfBlocked;
                };
                rt.pass(t);
                self.emit(Event::RemoveTstate {
                    thread: t,
                    tstate: ts,
                });
                self.head_unlock(&rt, head);
            }
            Op::BindMain => {
                let spec = &rt.cfg.threads[t as usize];
                let ts = if rt.cfg.design.tstate_per_os_thread {
                    spec.main_tstate
                } else {
                    rt.cfg.shared_main_tstate
                }
                .expect("BindMain needs a main-interpreter thread state");
                rt.pass(t);
                rt.trace.step(|log| {
                    let before = rt.tstates[ts as usize]
                        .bound
                        .fetch_or(1 << t, Ordering::AcqRel);
                    log.emit(Event::Bind { thread: t, tstate: ts });
                    if before & !(1 << t) != 0 {
                        panic!("tstate_bound_once: thread state {ts} bound to threads {before:#b} and {t}");
                    }
                });
                self.home = self.current;
                self.current = Some(ts);
            }
            Op::Unbind => {
                let ts = self.current.expect("Unbind needs a bound thread state");
                rt.pass(t);
                rt.trace.step(|log| {
                    rt.tstates[ts as usize]
                        .bound
                        .fetch_and(!(1 << t), Ordering::AcqRel);
                    log.emit(Event::Unbind { thread: t });
                });
                self.current = self.home.take();
            }
        }
        Outcome::Finished
    }

    /// `new_threadstate` for the gilstate slot (or the hook's): allocate,
    /// HEAD_LOCK, link, HEAD_UNLOCK; the allocation's hook may run
    /// `PyGILState_Ensure`/`Release` on a thread state of its own.
    fn new_threadstate(&mut self, limits: RunLimits) -> Outcome {
        let rt = Arc::clone(&self.rt);
        let t = self.id;
        let spec = &rt.cfg.threads[t as usize];
        let slot = if self.in_hook {
            spec.hook_tstate
        } else {
            spec.gilstate_tstate
        }
        .expect("NewTstate needs a thread-state slot");
        let hookable = rt.cfg.alloc_hook && !self.in_hook && spec.hook_tstate.is_some();
        let early = rt.cfg.design.alloc_before_head_lock;
        let mut head = None;
        if !early {
            match self.head_lock(&rt) {
                Some(g) => head = Some(g),
                None => return Outcome::SelfBlocked,
            }
        }
        // alloc_threadstate(): PyMem_RawCalloc, whose hook runs here (a
        // guided run may say this allocation is one the hook lets pass).
        let hook = !rt.pass(t) && hookable;
        self.emit(Event::Alloc { thread: t, hook });
        if hook {
            match self.run_hook(limits) {
                Outcome::Finished => {}
                stopped => return stopped,
            }
        }
        let head = match head {
            Some(g) => g,
            None => match self.head_lock(&rt) {
                Some(g) => g,
                None => return Outcome::SelfBlocked,
            },
        };
        rt.pass(t);
        rt.trace.step(|log| {
            rt.tstates[slot as usize]
                .bound
                .fetch_or(1 << t, Ordering::AcqRel);
            log.emit(Event::AddTstate {
                thread: t,
                tstate: slot,
            });
        });
        self.current = Some(slot);
        self.head_unlock(&rt, head);
        Outcome::Finished
    }

    /// tracemalloc's hook: `PyGILState_Ensure` and `PyGILState_Release` on
    /// a thread that has no thread state yet.
    fn run_hook(&mut self, limits: RunLimits) -> Outcome {
        let outer = self.current.take();
        self.in_hook = true;
        let mut outcome = Outcome::Finished;
        for &op in HOOK_PROGRAM {
            outcome = self.op(op, limits);
            if outcome != Outcome::Finished {
                break;
            }
        }
        self.in_hook = false;
        self.current = outer;
        outcome
    }

    /// HEAD_LOCK. Blocking on it while holding it would deadlock; the
    /// runtime returns `None` instead (see [`Outcome::SelfBlocked`]).
    fn head_lock<'a>(&self, rt: &'a super::Runtime) -> Option<MutexGuard<'a, ()>> {
        if rt.head_owner.load(Ordering::Acquire) == super::encode(Some(self.id)) {
            return None;
        }
        rt.pass(self.id);
        let guard = lock(&rt.head);
        rt.head_owner
            .store(super::encode(Some(self.id)), Ordering::Release);
        self.emit(Event::Lock {
            thread: self.id,
            lock: LockId::Head,
        });
        Some(guard)
    }

    fn head_unlock(&self, rt: &super::Runtime, guard: MutexGuard<'_, ()>) {
        rt.pass(self.id);
        rt.trace.step(|log| {
            log.emit(Event::Unlock {
                thread: self.id,
                lock: LockId::Head,
            });
            rt.head_owner.store(0, Ordering::Release);
            drop(guard);
        });
    }
}
