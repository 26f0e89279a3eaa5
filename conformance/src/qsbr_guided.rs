//! A guided, lock-step explorer of the QSBR reference runtime (std only).
//!
//! One real OS thread per spec thread holds that thread's handles (its
//! `Reservation`, `QsbrThread`, live `ReadGuard` or `Exiting`) and runs
//! commands sent over a channel, one at a time: the driver waits for each
//! command to finish before sending the next, so a run is a sequence of
//! reference operations and its trace is a function of that sequence.
//!
//! The explorer searches spec states. Each state it reaches as a
//! *branching point* (the state after a whole operation) keeps the first
//! operation sequence that reached it and the operations still untried from
//! it: one per event kind the spec's `enabled` offers there, mapped to the
//! reference call that takes it. The spec never offers a step that would
//! block (a growth while someone is attached, a register while the mutex is
//! held), so no command ever waits on another thread. A run replays a
//! stored sequence on a fresh traced `Domain` (checking it lands on the same
//! state: the reference is deterministic under lock-step), then keeps
//! taking untried operations from wherever it stands until it reaches a
//! state with none left. Every spec state the recorded events visit is
//! collected, including the states inside multi-event operations
//! (`process_delayed` frees several items; `unregister` is
//! `UnregisterLock` then `UnregisterRelease`), which are visited but never
//! branched from: no blocking point of the reference lies between their
//! events.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use cpyrt_reference::qsbr::{Domain, Exiting, QsbrThread, Reservation};
use cpyrt_spec::Spec;
use cpyrt_spec::qsbr::{Config, Event, Qsbr, State};

use crate::qsbr::Run;

/// One reference operation of one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// `Domain::reserve` (grows the array when no slot is free).
    Reserve,
    /// `Reservation::register`.
    Register,
    Attach,
    Detach,
    /// `QsbrThread::quiescent_state` (outside read sections).
    Quiescent,
    /// Open a read section and keep its guard across commands.
    Read,
    /// End the open read section.
    End,
    Replace,
    /// `advance`, from inside the read section when one is open.
    Advance,
    /// `scan`, from inside the read section when one is open.
    Scan,
    /// `process_delayed`, from inside the read section when one is open.
    Process,
    /// `QsbrThread::abandon`: the first half of exit.
    Abandon,
    /// `Exiting::unregister`: the second half.
    Unregister,
}

/// The commands a spec state makes safe to issue: one per kind of event the
/// spec enables for each thread (both frees map to `process_delayed`;
/// `UnregisterRelease` is never a branching point in lock-step).
pub fn commands(cfg: &Config, s: &State) -> Vec<(u8, Cmd)> {
    let mut events = Vec::new();
    Qsbr::enabled(cfg, s, &mut events);
    let mut out: Vec<(u8, Cmd)> = Vec::new();
    for e in events {
        let cmd = match e {
            Event::Reserve { .. } => Cmd::Reserve,
            Event::Register { .. } => Cmd::Register,
            Event::Attach { .. } => Cmd::Attach,
            Event::Detach { .. } => Cmd::Detach,
            Event::Quiescent { .. } => Cmd::Quiescent,
            Event::Read { .. } => Cmd::Read,
            Event::EndRead { .. } => Cmd::End,
            Event::Replace { .. } => Cmd::Replace,
            Event::Advance { .. } => Cmd::Advance,
            Event::Scan { .. } => Cmd::Scan,
            Event::FreeOwn { .. } | Event::FreeInterp { .. } => Cmd::Process,
            Event::Abandon { .. } => Cmd::Abandon,
            Event::UnregisterLock { .. } => Cmd::Unregister,
            Event::UnregisterRelease { .. } => continue,
        };
        let c = (e.thread(), cmd);
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

enum Msg {
    Start(Arc<Run>),
    Do(Cmd),
    /// Drop every handle of the current run.
    Reset,
}

/// A persistent OS thread playing one spec thread, run after run.
struct Worker {
    tx: Sender<Msg>,
    ack: Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(tid: u8) -> Worker {
        let (tx, rx) = channel();
        let (ack_tx, ack) = channel();
        let handle = std::thread::Builder::new()
            .name(format!("qsbr-guided-{tid}"))
            .spawn(move || {
                while let Ok(Msg::Start(run)) = rx.recv() {
                    if ack_tx.send(()).is_err() {
                        return;
                    }
                    serve(&run, tid, &rx, &ack_tx);
                    if ack_tx.send(()).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn a worker thread");
        Worker {
            tx,
            ack,
            handle: Some(handle),
        }
    }

    /// Sends a message and waits until the worker has finished it.
    fn call(&self, msg: Msg, what: &str) {
        self.tx
            .send(msg)
            .unwrap_or_else(|_| panic!("worker gone before {what}"));
        self.ack
            .recv()
            .unwrap_or_else(|_| panic!("worker panicked during {what}"));
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the channel ends the worker's loop.
        let (tx, _) = channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A worker's side of one run: returns on `Reset` (dropping its handles,
/// which exits a registered thread) or when the driver hangs up.
fn serve(run: &Run, tid: u8, rx: &Receiver<Msg>, ack: &Sender<()>) {
    let mut reservation: Option<Reservation> = None;
    let mut thread: Option<QsbrThread> = None;
    let mut exiting: Option<Exiting> = None;
    let fail = |cmd: Cmd| -> ! { panic!("thread {tid}: {cmd:?} issued in the wrong phase") };
    loop {
        let cmd = match rx.recv() {
            Ok(Msg::Do(cmd)) => cmd,
            _ => return,
        };
        match cmd {
            Cmd::Reserve => reservation = Some(Domain::reserve(&run.domain, tid)),
            Cmd::Register => {
                let r = reservation.take().unwrap_or_else(|| fail(cmd));
                thread = Some(r.register());
            }
            Cmd::Abandon => {
                let t = thread.take().unwrap_or_else(|| fail(cmd));
                exiting = Some(t.abandon());
            }
            Cmd::Unregister => exiting.take().unwrap_or_else(|| fail(cmd)).unregister(),
            Cmd::Read => {
                let t = thread.as_mut().unwrap_or_else(|| fail(cmd));
                if !read_section(run, t, rx, ack) {
                    return;
                }
            }
            _ => {
                let t = thread.as_mut().unwrap_or_else(|| fail(cmd));
                match cmd {
                    Cmd::Attach => t.attach(),
                    Cmd::Detach => t.detach(),
                    Cmd::Quiescent => t.quiescent_state(),
                    Cmd::Replace => {
                        t.replace(&run.cell, 1);
                    }
                    Cmd::Advance => {
                        t.advance();
                    }
                    Cmd::Scan => {
                        t.scan();
                    }
                    Cmd::Process => {
                        t.process_delayed();
                    }
                    _ => fail(cmd),
                }
            }
        }
        if ack.send(()).is_err() {
            return;
        }
    }
}

/// Holds a read guard across commands until `End`. Returns false when the
/// run ends inside the section.
fn read_section(run: &Run, t: &mut QsbrThread, rx: &Receiver<Msg>, ack: &Sender<()>) -> bool {
    let tid = t.tid();
    let mut guard = t.read(&run.cell);
    let _ = *guard.get();
    loop {
        if ack.send(()).is_err() {
            return false;
        }
        let cmd = match rx.recv() {
            Ok(Msg::Do(cmd)) => cmd,
            _ => return false,
        };
        match cmd {
            Cmd::End => {
                let _ = *guard.get();
                guard.end();
                return true;
            }
            Cmd::Advance => {
                guard.advance();
            }
            Cmd::Scan => {
                guard.scan();
            }
            Cmd::Process => {
                guard.process_delayed();
            }
            _ => panic!("thread {tid}: {cmd:?} issued inside a read section"),
        }
    }
}

/// A branching point: how to get there and what is left to try.
struct Node {
    path: Vec<(u8, Cmd)>,
    untried: Vec<(u8, Cmd)>,
}

/// What an exploration found.
pub struct Explored {
    /// Every spec state a recorded event led to (and the initial state).
    pub visited: HashSet<State>,
    /// States after a whole operation (the branching points).
    pub branch_points: usize,
    /// Runs (fresh domains) and operations executed.
    pub runs: usize,
    pub ops: usize,
}

/// The explorer: one worker per spec thread, reused across runs.
pub struct Explorer {
    cfg: Config,
    workers: Vec<Worker>,
}

impl Explorer {
    pub fn new(cfg: &Config) -> Explorer {
        Explorer {
            cfg: cfg.clone(),
            workers: (0..cfg.threads as u8).map(Worker::spawn).collect(),
        }
    }

    /// Explores until no branching point has an untried operation, or
    /// `max_ops` operations have run (a bound for slow builds; `usize::MAX`
    /// for the whole space).
    pub fn explore(&mut self, max_ops: usize) -> Explored {
        let init = Qsbr::init(&self.cfg);
        let mut nodes: HashMap<State, Node> = HashMap::new();
        let mut queue: VecDeque<State> = VecDeque::new();
        let mut out = Explored {
            visited: HashSet::from([init.clone()]),
            branch_points: 0,
            runs: 0,
            ops: 0,
        };
        nodes.insert(
            init.clone(),
            Node {
                path: Vec::new(),
                untried: commands(&self.cfg, &init),
            },
        );
        queue.push_back(init);
        while let Some(start) = queue.pop_front() {
            if nodes[&start].untried.is_empty() {
                continue;
            }
            if out.ops >= max_ops {
                break;
            }
            out.runs += 1;
            let run = Arc::new(Run::new(&self.cfg));
            for w in &self.workers {
                w.call(Msg::Start(Arc::clone(&run)), "start");
            }
            let mut state = Qsbr::init(&self.cfg);
            let mut path = nodes[&start].path.clone();
            for &(t, cmd) in &path {
                state = self.step(&run, state, t, cmd, &mut out.visited);
                out.ops += 1;
            }
            assert_eq!(
                state, start,
                "replaying {path:?} reached another state: the reference is not deterministic under lock-step"
            );
            // Walk on from wherever the run stands while something is untried.
            while let Some((t, cmd)) = nodes.get_mut(&state).and_then(|n| n.untried.pop()) {
                // A node left with operations untried goes back on the queue.
                if !nodes[&state].untried.is_empty() {
                    queue.push_back(state.clone());
                }
                state = self.step(&run, state, t, cmd, &mut out.visited);
                out.ops += 1;
                path.push((t, cmd));
                if !nodes.contains_key(&state) {
                    let untried = commands(&self.cfg, &state);
                    queue.push_back(state.clone());
                    nodes.insert(
                        state.clone(),
                        Node {
                            path: path.clone(),
                            untried,
                        },
                    );
                }
            }
            for w in &self.workers {
                w.call(Msg::Reset, "reset");
            }
            // Exits at reset record events of a finished run; drop them.
            drop(run);
        }
        out.branch_points = nodes.len();
        out
    }

    /// Runs one command and steps the spec through the events it recorded.
    fn step(
        &self,
        run: &Run,
        state: State,
        t: u8,
        cmd: Cmd,
        visited: &mut HashSet<State>,
    ) -> State {
        self.workers[t as usize].call(Msg::Do(cmd), "a command");
        let events = run.trace();
        assert!(!events.is_empty(), "thread {t}: {cmd:?} recorded no event");
        let mut s = state;
        for e in &events {
            s = Qsbr::step(&self.cfg, &s, e).unwrap_or_else(|r| {
                panic!("the spec rejects {e:?} after thread {t} ran {cmd:?}: {r}")
            });
            if let Some(inv) = Qsbr::invariants().iter().find(|i| !(i.holds)(&s)) {
                panic!("{} violated after {e:?} (thread {t} ran {cmd:?})", inv.name);
            }
            visited.insert(s.clone());
        }
        s
    }
}
