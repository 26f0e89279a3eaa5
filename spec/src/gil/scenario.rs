//! The GIL's named scenarios: which OS threads run, in which interpreters,
//! sharing or owning a GIL object, and with which programs. The models'
//! variants, the reference runtime's std, loom and shuttle tests and the
//! conformance tests all build their configurations here, so one name
//! means one setup everywhere.
//!
//! Each scenario takes a thread count (1 to 3; below a scenario's full
//! size the later threads are left out) and a [`Design`].
//!
//! A CPU-bound thread (`Take, Compute`) never releases the GIL on its own,
//! so a reference thread, which must end, cannot run it on free-running
//! threads. [`finite`] is the one agreed rendering of a scenario for such
//! runs: every CPU-bound thread becomes a thread that runs, releases and
//! takes the GIL again, in a loop the reference bounds by its run limits.
//! The guided conformance driver runs the scenarios as they are, `Compute`
//! included.

use super::{Config, Design, InterpSpec, Op, ThreadSpec, TstateSpec};

/// A named scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Threads 0 and 1 are CPU-bound; thread 2 blocks and wakes forever
    /// (the benchmark's shape).
    Handoff,
    /// The main thread joins, finalizes, runs and releases for the last
    /// time; thread 1 is a CPU-bound daemon, thread 2 a non-daemon that
    /// exits.
    Finalize,
    /// Thread 0 in the main interpreter, the others in a subinterpreter
    /// sharing the main GIL; all block and wake forever.
    SubinterpretersShared,
    /// As `SubinterpretersShared`, the subinterpreter owning its GIL.
    SubinterpretersOwn,
    /// A subinterpreter (own GIL) ends while its worker's final release may
    /// still run; thread 2 is a bystander of the main interpreter.
    EndInterpreter,
    /// Fresh C threads call `PyGILState_Ensure`/`Release` under an
    /// allocation hook that calls `PyGILState_Ensure`; thread 2 is a
    /// CPU-bound main thread.
    Gilstate,
    /// Threads of two own-GIL subinterpreters borrow a main-interpreter
    /// thread state to run under the main GIL; thread 2 is the main thread.
    Detached,
}

impl Scenario {
    /// Every scenario, in the order the models list them.
    pub const ALL: &'static [Scenario] = &[
        Scenario::Handoff,
        Scenario::Finalize,
        Scenario::SubinterpretersShared,
        Scenario::SubinterpretersOwn,
        Scenario::EndInterpreter,
        Scenario::Gilstate,
        Scenario::Detached,
    ];

    /// The scenario's name (the models' variant name for its CPython
    /// design, `base` for `Handoff`).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Handoff => "handoff",
            Scenario::Finalize => "finalize",
            Scenario::SubinterpretersShared => "subinterpreters-shared",
            Scenario::SubinterpretersOwn => "subinterpreters-own",
            Scenario::EndInterpreter => "end-interpreter",
            Scenario::Gilstate => "gilstate",
            Scenario::Detached => "detached",
        }
    }

    /// The configuration at `threads` OS threads under `design`.
    pub fn config(self, threads: usize, design: Design) -> Config {
        match self {
            Scenario::Handoff => handoff(threads, design),
            Scenario::Finalize => finalize(threads, design),
            Scenario::SubinterpretersShared => subinterpreters(threads, false, design),
            Scenario::SubinterpretersOwn => subinterpreters(threads, true, design),
            Scenario::EndInterpreter => end_interpreter(threads, design),
            Scenario::Gilstate => gilstate(threads, design),
            Scenario::Detached => detached(threads, design),
        }
    }
}

fn thread(tstate: Option<u8>, program: Vec<Op>, repeat_from: Option<u8>) -> ThreadSpec {
    ThreadSpec {
        daemon: false,
        tstate,
        gilstate_tstate: None,
        hook_tstate: None,
        main_tstate: None,
        program,
        repeat_from,
    }
}

/// Blocks and wakes forever: `Take, Run, Drop`, repeated.
fn io_loop(tstate: u8) -> ThreadSpec {
    thread(Some(tstate), vec![Op::Take, Op::Run, Op::Drop], Some(0))
}

/// Releases only when asked: `Take, Compute`.
fn cpu_bound(tstate: u8) -> ThreadSpec {
    thread(Some(tstate), vec![Op::Take, Op::Compute], None)
}

fn config(
    interps: Vec<bool>,
    tstates: Vec<u8>,
    threads: Vec<ThreadSpec>,
    design: Design,
) -> Config {
    Config {
        interps: interps
            .into_iter()
            .map(|own_gil| InterpSpec { own_gil })
            .collect(),
        tstates: tstates
            .into_iter()
            .map(|interp| TstateSpec { interp })
            .collect(),
        threads,
        shared_main_tstate: None,
        alloc_hook: false,
        spurious_wakeups: false,
        design,
    }
}

/// [`Scenario::Handoff`].
pub fn handoff(threads: usize, design: Design) -> Config {
    let programs = (0..threads)
        .map(|t| {
            if t == 2 {
                io_loop(2)
            } else {
                cpu_bound(t as u8)
            }
        })
        .collect();
    config(vec![true], vec![0; threads], programs, design)
}

/// [`Scenario::Finalize`].
pub fn finalize(threads: usize, design: Design) -> Config {
    let main = thread(
        Some(0),
        vec![
            Op::Take,
            Op::Run,
            Op::Drop,
            Op::Join,
            Op::Take,
            Op::Finalize,
            Op::Run,
            Op::Exit,
            Op::DeleteInterp(0),
        ],
        None,
    );
    let mut daemon = cpu_bound(1);
    daemon.daemon = true;
    let worker = thread(Some(2), vec![Op::Take, Op::Run, Op::Exit], None);
    let all = [main, daemon, worker];
    config(
        vec![true],
        vec![0; threads],
        all[..threads].to_vec(),
        design,
    )
}

/// [`Scenario::SubinterpretersShared`] (`own_gil` false) and
/// [`Scenario::SubinterpretersOwn`] (true).
pub fn subinterpreters(threads: usize, own_gil: bool, design: Design) -> Config {
    let tstates = (0..threads).map(|t| u8::from(t > 0)).collect();
    let programs = (0..threads).map(|t| io_loop(t as u8)).collect();
    config(vec![true, own_gil], tstates, programs, design)
}

/// [`Scenario::EndInterpreter`].
pub fn end_interpreter(threads: usize, design: Design) -> Config {
    let sub_main = thread(
        Some(0),
        vec![
            Op::Take,
            Op::Run,
            Op::Drop,
            Op::Join,
            Op::Take,
            Op::Finalize,
            Op::Exit,
            Op::DeleteInterp(1),
        ],
        None,
    );
    let worker = thread(
        Some(1),
        vec![Op::Take, Op::Run, Op::DeleteTstate, Op::Exit],
        None,
    );
    let all = [sub_main, worker, io_loop(2)];
    config(
        vec![true, true],
        vec![1, 1, 0][..threads].to_vec(),
        all[..threads].to_vec(),
        design,
    )
}

/// [`Scenario::Gilstate`].
pub fn gilstate(threads: usize, design: Design) -> Config {
    let c_thread = |t: u8| ThreadSpec {
        gilstate_tstate: Some(2 * t),
        hook_tstate: Some(2 * t + 1),
        ..thread(
            None,
            vec![Op::NewTstate, Op::Take, Op::Run, Op::DeleteTstate, Op::Exit],
            None,
        )
    };
    let all = [c_thread(0), c_thread(1), cpu_bound(4)];
    let mut c = config(vec![true], vec![0; 5], all[..threads].to_vec(), design);
    c.alloc_hook = true;
    c
}

/// [`Scenario::Detached`].
pub fn detached(threads: usize, design: Design) -> Config {
    let borrower = |t: u8| ThreadSpec {
        main_tstate: Some(2 + t),
        ..thread(
            Some(t),
            vec![
                Op::Take,
                Op::Run,
                Op::Drop,
                Op::BindMain,
                Op::Take,
                Op::Run,
                Op::Drop,
                Op::Unbind,
            ],
            Some(0),
        )
    };
    // Thread states: 0, 1 home (subinterpreters 1, 2); 2, 3 each thread's
    // own main-interpreter one; 4 the shared detached one; 5 the main
    // thread's.
    let all = [borrower(0), borrower(1), io_loop(5)];
    let mut c = config(
        vec![true, true, true],
        vec![1, 2, 0, 0, 0, 0],
        all[..threads].to_vec(),
        design,
    );
    c.shared_main_tstate = Some(4);
    c
}

/// The scenario as free-running reference threads run it: each CPU-bound
/// thread (a program ending in `Take, Compute`) becomes one that blocks
/// and wakes (`Take, Run, Drop`, repeated from that `Take`), so every
/// thread ends. Other threads are unchanged.
pub fn finite(mut cfg: Config) -> Config {
    for th in &mut cfg.threads {
        if th.program.last() == Some(&Op::Compute) {
            let n = th.program.len();
            th.program[n - 1] = Op::Run;
            th.program.push(Op::Drop);
            let take = th.program[..n - 1]
                .iter()
                .rposition(|op| *op == Op::Take)
                .expect("a CPU-bound thread takes the GIL before it computes");
            th.repeat_from = Some(take as u8);
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_valid_at_every_thread_count() {
        for s in Scenario::ALL {
            for t in 1..=3 {
                s.config(t, Design::CPYTHON)
                    .validate()
                    .unwrap_or_else(|e| panic!("{} at {t}: {e}", s.name()));
                finite(s.config(t, Design::CPYTHON))
                    .validate()
                    .unwrap_or_else(|e| panic!("finite {} at {t}: {e}", s.name()));
            }
        }
    }

    #[test]
    fn finite_turns_cpu_bound_threads_into_blocking_loops() {
        let cfg = finite(handoff(3, Design::CPYTHON));
        for th in &cfg.threads {
            assert_eq!(th.program, vec![Op::Take, Op::Run, Op::Drop]);
            assert_eq!(th.repeat_from, Some(0));
        }
        assert!(
            finite(finalize(3, Design::CPYTHON))
                .threads
                .iter()
                .all(|th| !th.program.contains(&Op::Compute))
        );
        // Scenarios without CPU-bound threads are unchanged.
        let sub = subinterpreters(3, true, Design::CPYTHON);
        assert_eq!(finite(sub.clone()), sub);
    }
}
