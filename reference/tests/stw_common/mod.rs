//! Stop-the-world workloads shared by the std, loom and shuttle targets:
//! they use only `cpyrt_reference::primitive`, so they run under whichever
//! scheduler the build selects.
#![allow(dead_code)]

use cpyrt_reference::eval;
use cpyrt_reference::primitive::sync::Arc;
use cpyrt_reference::primitive::thread;
use cpyrt_reference::stw::{Config, Design, HandOff, Op, Outcome, Role, Runtime, Scope};

pub const I0: Scope = Scope::Interp(0);
pub const I1: Scope = Scope::Interp(1);
pub const G: Scope = Scope::Global;

/// A thread's role: it may do everything; `bound` threads exist at start.
pub fn role(interp: u8, bound: bool, finalizes: bool) -> Role {
    Role {
        interp,
        starts_bound: bound,
        interp_pauses: true,
        global_pauses: true,
        finalizes,
        critical_sections: true,
        blocking_calls: true,
        exits: true,
    }
}

/// One thread's program and role.
pub struct Program {
    pub role: Role,
    pub ops: Vec<Op>,
}

pub fn program(role: Role, ops: &[Op]) -> Program {
    Program {
        role,
        ops: ops.to_vec(),
    }
}

pub fn config(interps: u8, programs: &[Program], design: Design, trace: bool) -> Config {
    Config {
        interps,
        roles: programs.iter().map(|p| p.role).collect(),
        design,
        hand_off: HandOff::ALWAYS,
        trace,
    }
}

/// Runs every program on its own thread (the last on the calling thread)
/// and returns how each ended (`None`: it ran to the end).
pub fn run(rt: &Arc<Runtime>, programs: Vec<Program>) -> Vec<Option<Outcome>> {
    let mut programs: Vec<(u8, Program)> = programs
        .into_iter()
        .enumerate()
        .map(|(t, p)| (t as u8, p))
        .collect();
    let (last_tid, last) = programs.pop().expect("at least one program");
    let handles: Vec<_> = programs
        .into_iter()
        .map(|(tid, p)| {
            let rt = Arc::clone(rt);
            thread::spawn(move || run_one(&rt, tid, p))
        })
        .collect();
    let mine = run_one(rt, last_tid, last);
    let mut out: Vec<Option<Outcome>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    out.push(mine);
    out
}

fn run_one(rt: &Arc<Runtime>, tid: u8, p: Program) -> Option<Outcome> {
    let mut thread = if p.role.starts_bound {
        Runtime::bound(rt, tid)
    } else {
        match Runtime::create(rt, tid) {
            Ok(t) => t,
            Err(o) => return Some(o),
        }
    };
    eval::run(&mut thread, &p.ops)
}
