//! A minimal instruction loop: runs a program of operations, checking the
//! eval breaker before each one, as `_PyEval_EvalFrameDefault` checks it
//! at `RESUME`, back edges and calls (`_CHECK_PERIODIC`).
//!
//! A mechanism makes its thread type a [`Machine`]: its operations, what
//! happens at an eval-breaker check, and how one operation runs. The loop
//! knows nothing else, so the GIL (drop requests), function versions (a
//! specialized `CALL` whose guard and reads have no check between them),
//! fork and stop-the-world share it; a machine that needs several
//! eval-breaker bits handles them all in its one [`Machine::eval_breaker`],
//! in `_Py_HandlePending`'s order.

use std::ops::ControlFlow;

/// A thread that runs programs.
pub trait Machine {
    /// One instruction.
    type Op;
    /// Why a program ends early (the thread exited, hung, ...).
    type Exit;

    /// An eval-breaker check (`_Py_HandlePending` when a bit is set).
    fn eval_breaker(&mut self) -> ControlFlow<Self::Exit>;

    /// Runs one instruction.
    fn exec(&mut self, op: &Self::Op) -> ControlFlow<Self::Exit>;
}

/// Runs `program` on `machine`: an eval-breaker check, then the
/// instruction, for each instruction in order. Returns why it ended early,
/// or `None` when it ran to the end.
pub fn run<M: Machine>(machine: &mut M, program: &[M::Op]) -> Option<M::Exit> {
    for op in program {
        if let ControlFlow::Break(exit) = machine.eval_breaker() {
            return Some(exit);
        }
        if let ControlFlow::Break(exit) = machine.exec(op) {
            return Some(exit);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the loop does, and stops where told.
    struct Log {
        seen: Vec<String>,
        stop_at_check: Option<usize>,
    }

    impl Machine for Log {
        type Op = u8;
        type Exit = &'static str;

        fn eval_breaker(&mut self) -> ControlFlow<&'static str> {
            self.seen.push("check".into());
            let checks = self.seen.iter().filter(|s| *s == "check").count();
            if Some(checks) == self.stop_at_check {
                ControlFlow::Break("stopped at a check")
            } else {
                ControlFlow::Continue(())
            }
        }

        fn exec(&mut self, op: &u8) -> ControlFlow<&'static str> {
            self.seen.push(format!("op{op}"));
            if *op == 9 {
                ControlFlow::Break("op 9 ends the program")
            } else {
                ControlFlow::Continue(())
            }
        }
    }

    #[test]
    fn a_check_precedes_every_instruction_and_a_break_ends_the_program() {
        let mut m = Log {
            seen: Vec::new(),
            stop_at_check: None,
        };
        assert_eq!(run(&mut m, &[1, 2]), None);
        assert_eq!(m.seen, ["check", "op1", "check", "op2"]);
        let mut m = Log {
            seen: Vec::new(),
            stop_at_check: None,
        };
        assert_eq!(run(&mut m, &[1, 9, 2]), Some("op 9 ends the program"));
        assert_eq!(m.seen, ["check", "op1", "check", "op9"]);
        let mut m = Log {
            seen: Vec::new(),
            stop_at_check: Some(2),
        };
        assert_eq!(run(&mut m, &[1, 2, 3]), Some("stopped at a check"));
        assert_eq!(m.seen, ["check", "op1", "check"]);
    }
}
