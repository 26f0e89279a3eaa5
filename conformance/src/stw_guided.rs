//! A guided, step-gated explorer of the stop-the-world reference runtime
//! (std only).
//!
//! One real OS thread per spec thread holds that thread's handle
//! (`cpyrt_reference::stw::Thread`) and runs operations of the instruction
//! loop (`cpyrt_reference::eval::run`, one eval-breaker check and one
//! instruction) sent to it over a channel. Unlike QSBR's lock-step
//! explorer (`qsbr_guided.rs`), a stop-the-world operation blocks in the
//! middle: a thread parks on a busy lock, waits in `tstate_wait_attach`
//! while SUSPENDED, and the requester waits for the countdown. So the
//! driver does not run whole operations: it installs a
//! [`StepGate`] on the runtime, and every spec step of every thread waits at
//! the gate until the driver lets exactly that step run. Blocking happens
//! only between steps, on conditions that only steps change, so one step at
//! a time decides the whole execution whatever the OS scheduler does: a
//! thread is either at the gate, waiting for a command, or blocked until a
//! step of another thread releases it (the requester's 1 ms stop-event
//! timeout also brings it back to the gate).
//!
//! The driver has two kinds of action:
//! - **issue** an operation to a thread that waits for one (or `Create` to
//!   a thread without a thread state): the thread makes its eval-breaker
//!   check at once and stops at the gate of the operation's first step, so
//!   whether it saw PLEASE_STOP is fixed when it is issued;
//! - **grant** one step to a thread whose spec state has an enabled event:
//!   the driver waits for it at the gate, lets it through, steps the spec by
//!   the event it recorded, and waits until the thread is at its next gate
//!   or has finished its operation (or, when the spec says the thread is
//!   now blocked, does not wait: it comes back to the gate when released).
//!
//! The explorer searches the pairs (spec state, what each thread is doing)
//! breadth-first, as `qsbr_guided.rs` does: each node keeps the first
//! action sequence that reached it and its untried actions; a run replays a
//! stored sequence on a fresh runtime (checking it lands on the same node:
//! the gated reference is deterministic), takes untried actions until it
//! reaches a node with none left, and then winds the run down (finishes
//! every pause and operation, so that every thread can be reset). Every
//! spec state the recorded events visit is collected, the wind-down's
//! included; every event must be accepted by the spec with every invariant
//! holding.
//!
//! # Limits
//! A node is what the spec state and the threads' activities say. State
//! the reference keeps beyond them breaks the search's determinism, and
//! the explorer reports it (a replay or a known action lands elsewhere):
//! the fairness hand-off's wake counts are such state, so only
//! `HandOff::ALWAYS` (every woken waiter is handed the lock) explores
//! cleanly, and wakes that leave the lock free are never taken. The
//! parking lot wakes its oldest waiter, where the spec may wake any.

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpyrt_reference::eval;
use cpyrt_reference::stw::{Config as RefConfig, HandOff, Op, Runtime, Scope, StepGate, Thread};
use cpyrt_spec::Spec;
use cpyrt_spec::stw::{At, Config, Cs, Event, Job, Life, State, Stop, TState};

/// How long the driver waits for a thread before calling the run stuck.
const PATIENCE: Duration = Duration::from_secs(20);

/// One operation issued to one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// `new_threadstate` and the first attach (`Runtime::create`).
    Create,
    /// An instruction with nothing but its eval-breaker check.
    Check,
    /// `Py_BEGIN_CRITICAL_SECTION`.
    Begin,
    /// `Py_END_CRITICAL_SECTION`.
    End,
    /// A blocking call.
    Syscall,
    /// A pause of `scope`, its work a critical section when `cs`.
    Pause { scope: Scope, cs: bool },
    /// Delete the thread state.
    Exit,
    /// `Py_FinalizeEx`.
    Finalize,
}

impl Cmd {
    fn op(self) -> Option<Op> {
        Some(match self {
            Cmd::Create => return None,
            Cmd::Check => Op::Check,
            Cmd::Begin => Op::Begin,
            Cmd::End => Op::End,
            Cmd::Syscall => Op::Syscall,
            Cmd::Pause { scope, cs } => Op::Pause { scope, cs },
            Cmd::Exit => Op::Exit,
            Cmd::Finalize => Op::Finalize,
        })
    }
}

/// What a thread is doing, as the driver knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// No thread state yet, waiting for `Create`.
    Unborn,
    /// Attached between instructions, waiting for an operation.
    Idle,
    /// Inside an operation. `handling`: it was issued while PLEASE_STOP was
    /// set and is still in `_Py_HandlePending` (suspending, counting down,
    /// attaching again); the operation starts once it is back in running
    /// code. The spec state alone cannot tell the two apart: a thread
    /// re-attached by its eval breaker and one done with its operation
    /// look the same.
    Busy { cmd: Cmd, handling: bool },
    /// Its program ended (exited, hung, finalized).
    Ended,
}

/// One driver action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// An operation for a thread; `checked`: after an eval-breaker check,
    /// as the instruction loop runs it (`eval::run`). Unchecked, it runs as
    /// code between two checks does (a C function that locks, calls and
    /// unlocks within one instruction): offered only while PLEASE_STOP is
    /// set, since otherwise the check does nothing.
    Issue {
        thread: u8,
        cmd: Cmd,
        checked: bool,
    },
    Grant(u8),
}

/// What a worker reports about its current operation.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Report {
    Working,
    Idle,
    Ended,
    Panicked(String),
}

/// The gate's shared state, one slot per thread.
#[derive(Debug, Default)]
struct Slots {
    at_gate: Vec<bool>,
    go: Vec<bool>,
    stepped: Vec<u64>,
    report: Vec<Report>,
}

/// The slots, a condition variable per worker (woken by the driver) and
/// one for the driver (woken by the workers), so a hand-off wakes only the
/// thread it concerns.
#[derive(Debug)]
struct Shared {
    slots: Mutex<Slots>,
    workers: Vec<Condvar>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `done` holds, panicking after [`PATIENCE`] or when a
    /// worker panicked.
    fn wait_for<'a>(
        &'a self,
        mut g: MutexGuard<'a, Slots>,
        what: &dyn Fn() -> String,
        done: impl Fn(&Slots) -> bool,
    ) -> MutexGuard<'a, Slots> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(msg) = g.report.iter().find_map(|r| match r {
                Report::Panicked(m) => Some(m.clone()),
                _ => None,
            }) {
                panic!("a reference thread panicked ({}): {msg}", what());
            }
            if done(&g) {
                return g;
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("the run is stuck: {}", what());
            }
            g = self
                .changed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

thread_local! {
    /// The spec thread this OS thread plays (workers only).
    static ME: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The gate installed on every explored runtime.
#[derive(Debug)]
struct Gate(Arc<Shared>);

impl StepGate for Gate {
    fn before(&self) {
        let Some(me) = ME.get() else { return };
        let mut g = self.0.lock();
        g.at_gate[me] = true;
        self.0.changed.notify_one();
        while !g.go[me] {
            g = self.0.workers[me]
                .wait(g)
                .unwrap_or_else(|e| e.into_inner());
        }
        g.go[me] = false;
        g.at_gate[me] = false;
    }

    fn after(&self) {
        let Some(me) = ME.get() else { return };
        let mut g = self.0.lock();
        g.stepped[me] += 1;
        self.0.changed.notify_one();
    }
}

enum Msg {
    Start(Arc<Runtime>),
    /// An operation, after an eval-breaker check or not.
    Do(Cmd, bool),
    /// Drop the thread's handle; the run is over.
    Reset,
}

/// A persistent OS thread playing one spec thread, run after run.
struct Worker {
    tx: Sender<Msg>,
    ack: Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(tid: u8, shared: Arc<Shared>) -> Worker {
        let (tx, rx) = channel();
        let (ack_tx, ack) = channel();
        let handle = std::thread::Builder::new()
            .name(format!("stw-guided-{tid}"))
            .spawn(move || {
                ME.set(Some(tid as usize));
                while let Ok(Msg::Start(rt)) = rx.recv() {
                    if ack_tx.send(()).is_err() {
                        return;
                    }
                    if !serve(&rt, tid, &shared, &rx) || ack_tx.send(()).is_err() {
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

    fn send(&self, msg: Msg) {
        self.tx.send(msg).expect("worker gone");
    }

    fn acked(&self, what: &str) {
        self.ack
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("a worker did not finish {what}"));
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The run failed midway: its threads may wait at the gate for
            // good. Leave them; the test process ends.
            return;
        }
        let (tx, _) = channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A worker's side of one run. Returns false when the driver hung up.
fn serve(rt: &Arc<Runtime>, tid: u8, shared: &Shared, rx: &Receiver<Msg>) -> bool {
    let mut th: Option<Thread> = rt.config().roles[tid as usize]
        .starts_bound
        .then(|| Runtime::bound(rt, tid));
    loop {
        match rx.recv() {
            Ok(Msg::Do(cmd, checked)) => {
                let r = catch_unwind(AssertUnwindSafe(|| match cmd.op() {
                    None => match Runtime::create(rt, tid) {
                        Ok(t) => {
                            th = Some(t);
                            true
                        }
                        Err(_) => false,
                    },
                    Some(op) => {
                        let t = th
                            .as_mut()
                            .expect("an operation for a thread without a state");
                        if checked {
                            eval::run(t, &[op]).is_none()
                        } else {
                            eval::Machine::exec(t, &op).is_continue()
                        }
                    }
                }));
                let report = match r {
                    Ok(true) => Report::Idle,
                    Ok(false) => {
                        th = None;
                        Report::Ended
                    }
                    Err(p) => Report::Panicked(
                        p.downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "a panic".into()),
                    ),
                };
                let dead = matches!(report, Report::Panicked(_));
                let mut g = shared.lock();
                g.report[tid as usize] = report;
                shared.changed.notify_one();
                drop(g);
                if dead {
                    return false;
                }
            }
            Ok(Msg::Reset) => return true,
            _ => return false,
        }
    }
}

/// The operations a thread that waits for one may be issued in spec state
/// `s`: what its role allows, within the configuration's pause budget.
pub fn commands(cfg: &Config, s: &State, t: usize, status: Status) -> Vec<Cmd> {
    let th = &s.threads[t];
    let role = cfg.roles[t];
    let mut out = Vec::new();
    match status {
        Status::Unborn if !s.finalized => out.push(Cmd::Create),
        Status::Idle => {
            if th.please_stop {
                out.push(Cmd::Check);
            }
            if role.critical_sections {
                match th.cs {
                    Cs::None => out.push(Cmd::Begin),
                    Cs::Held(_) => out.push(Cmd::End),
                    Cs::Released(_) => {}
                }
            }
            if role.blocking_calls {
                out.push(Cmd::Syscall);
            }
            if th.pauses < cfg.max_pauses {
                let own = Scope::Interp(th.interp);
                if role.interp_pauses {
                    out.push(Cmd::Pause {
                        scope: own,
                        cs: false,
                    });
                    // With the shipped design the pause's critical section
                    // records nothing (its lock is skipped): the same run.
                    if role.critical_sections && !cfg.design.skip_cs_lock_while_stopped {
                        out.push(Cmd::Pause {
                            scope: own,
                            cs: true,
                        });
                    }
                }
                if role.global_pauses {
                    out.push(Cmd::Pause {
                        scope: Scope::Global,
                        cs: false,
                    });
                }
            }
            if th.cs == Cs::None {
                if role.exits {
                    out.push(Cmd::Exit);
                }
                if role.finalizes && !s.finalized {
                    out.push(Cmd::Finalize);
                }
            }
        }
        _ => {}
    }
    out
}

/// Threads with an enabled spec event in `s` (a bitmask).
fn enabled_threads(cfg: &Config, s: &State) -> u32 {
    let mut events = Vec::new();
    Stop::enabled(cfg, s, &mut events);
    events.iter().fold(0, |m, e| m | 1 << e.thread())
}

/// Every action of a node.
fn actions(cfg: &Config, s: &State, status: &[Status]) -> Vec<Act> {
    let enabled = enabled_threads(cfg, s);
    let mut out = Vec::new();
    for (t, st) in status.iter().enumerate() {
        match st {
            Status::Busy { .. } if enabled & (1 << t) != 0 => out.push(Act::Grant(t as u8)),
            _ => {
                for cmd in commands(cfg, s, t, *st) {
                    out.push(Act::Issue {
                        thread: t as u8,
                        cmd,
                        checked: true,
                    });
                    if *st == Status::Idle && s.threads[t].please_stop && cmd != Cmd::Check {
                        out.push(Act::Issue {
                            thread: t as u8,
                            cmd,
                            checked: false,
                        });
                    }
                }
            }
        }
    }
    out
}

/// A search node: spec state and what each thread is doing.
type Key = (State, Vec<Status>);

/// The nodes found so far and the actions between them. Node 0 is the
/// initial one.
#[derive(Default)]
struct Graph {
    ids: HashMap<Key, usize>,
    /// The first action sequence that reached each node.
    path: Vec<Vec<Act>>,
    untried: Vec<Vec<Act>>,
    /// Actions taken from each node and where they led.
    edges: Vec<Vec<(Act, usize)>>,
}

impl Graph {
    /// The node of `key`, added (with every action untried) if new.
    fn node(&mut self, cfg: &Config, key: &Key, path: &[Act]) -> usize {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = self.path.len();
        self.ids.insert(key.clone(), id);
        self.path.push(path.to_vec());
        self.untried.push(actions(cfg, &key.0, &key.1));
        self.edges.push(Vec::new());
        id
    }

    /// The actions leading from `from` along known edges to the nearest
    /// node with an untried action (breadth-first), if any.
    fn route(&self, from: usize) -> Option<Vec<Act>> {
        let mut back: HashMap<usize, (usize, Act)> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = HashSet::from([from]);
        while let Some(n) = queue.pop_front() {
            if !self.untried[n].is_empty() {
                let mut acts = Vec::new();
                let mut at = n;
                while at != from {
                    let (prev, a) = back[&at];
                    acts.push(a);
                    at = prev;
                }
                acts.reverse();
                return Some(acts);
            }
            for &(a, m) in &self.edges[n] {
                if seen.insert(m) {
                    back.insert(m, (n, a));
                    queue.push_back(m);
                }
            }
        }
        None
    }
}

/// What an exploration found.
#[derive(Debug, Default)]
pub struct Explored {
    /// Every spec state a recorded event led to (and the initial state).
    pub visited: HashSet<State>,
    /// Search nodes (spec state and thread activities).
    pub nodes: usize,
    /// Runs (fresh runtimes), actions taken and steps granted.
    pub runs: usize,
    pub actions: usize,
    pub steps: usize,
    /// Whether the search ran out of untried actions (false: stopped at the
    /// action bound).
    pub complete: bool,
}

/// One run in progress.
struct Run {
    rt: Arc<Runtime>,
    state: State,
    status: Vec<Status>,
}

impl Run {
    fn key(&self) -> Key {
        (self.state.clone(), self.status.clone())
    }
}

/// The explorer: one worker per spec thread, reused across runs.
pub struct Explorer {
    cfg: Config,
    hand_off: HandOff,
    shared: Arc<Shared>,
    workers: Vec<Worker>,
}

impl Explorer {
    /// An explorer of the reference under the model's configuration `cfg`
    /// (its design and roles; its pause budget bounds what is issued),
    /// with the fairness hand-off rule `hand_off` (see the module doc's
    /// limits: `HandOff::ALWAYS` is the setting the search is exact for).
    pub fn new(cfg: &Config, hand_off: HandOff) -> Explorer {
        let n = cfg.roles.len();
        let shared = Arc::new(Shared {
            slots: Mutex::new(Slots::default()),
            workers: (0..n).map(|_| Condvar::new()).collect(),
            changed: Condvar::new(),
        });
        Explorer {
            cfg: cfg.clone(),
            hand_off,
            workers: (0..n as u8)
                .map(|t| Worker::spawn(t, Arc::clone(&shared)))
                .collect(),
            shared,
        }
    }

    fn initial_status(&self) -> Vec<Status> {
        self.cfg
            .roles
            .iter()
            .map(|r| {
                if r.starts_bound {
                    Status::Idle
                } else {
                    Status::Unborn
                }
            })
            .collect()
    }

    /// Explores until no node has an untried action, or `max_actions`
    /// actions have been taken (counted, so a bounded search is as
    /// deterministic as a whole one).
    ///
    /// A run walks on from wherever it stands: it takes an untried action
    /// of its node if there is one, else follows known actions to the
    /// nearest node that has one (each must land where it landed before:
    /// the gated reference is deterministic), and only when none is
    /// reachable does it wind down; the next run replays the first path to
    /// the oldest node with untried actions left.
    pub fn explore(&mut self, max_actions: usize) -> Explored {
        let mut g = Graph::default();
        let init: Key = (Stop::init(&self.cfg), self.initial_status());
        g.node(&self.cfg, &init, &[]);
        let mut out = Explored {
            visited: HashSet::from([init.0.clone()]),
            complete: true,
            ..Explored::default()
        };
        let mut next_start = 0;
        'runs: loop {
            while next_start < g.untried.len() && g.untried[next_start].is_empty() {
                next_start += 1;
            }
            if next_start == g.untried.len() {
                break;
            }
            out.runs += 1;
            let mut run = self.start_run();
            let mut path = g.path[next_start].clone();
            let mut here = 0;
            for &a in &path {
                here = self.follow(&mut g, &mut run, here, a, &mut out);
            }
            assert_eq!(
                here, next_start,
                "replaying {path:?} reached another node: the gated reference is not deterministic"
            );
            loop {
                if out.actions >= max_actions {
                    out.complete = false;
                    self.wind_down(&mut run, &mut out);
                    break 'runs;
                }
                if let Some(a) = g.untried[here].pop() {
                    self.act(&mut run, a, &mut out);
                    path.push(a);
                    let key = run.key();
                    let to = g.node(&self.cfg, &key, &path);
                    g.edges[here].push((a, to));
                    here = to;
                } else if let Some(route) = g.route(here) {
                    for a in route {
                        here = self.follow(&mut g, &mut run, here, a, &mut out);
                        path.push(a);
                    }
                } else {
                    break;
                }
            }
            self.wind_down(&mut run, &mut out);
        }
        out.nodes = g.path.len();
        out
    }

    /// Takes action `a` from node `here` along a known edge, checking it
    /// lands where it did before; returns the node reached.
    fn follow(
        &self,
        g: &mut Graph,
        run: &mut Run,
        here: usize,
        a: Act,
        out: &mut Explored,
    ) -> usize {
        self.act(run, a, out);
        let key = run.key();
        let to = g.ids.get(&key).copied();
        let before = g.edges[here].iter().find(|(b, _)| *b == a).map(|e| e.1);
        if to.is_none() || to != before {
            let was = before.and_then(|b| g.ids.iter().find(|(_, v)| **v == b).map(|(k, _)| k));
            panic!(
                "{a:?} led elsewhere than before: the gated reference is not deterministic\nnow: {key:#?}\nbefore: {was:#?}"
            );
        }
        to.unwrap()
    }

    fn start_run(&mut self) -> Run {
        let rt = Runtime::new(RefConfig {
            interps: self.cfg.interps,
            roles: self.cfg.roles.clone(),
            design: self.cfg.design,
            hand_off: self.hand_off,
            trace: true,
        });
        rt.set_gate(Arc::new(Gate(Arc::clone(&self.shared))))
            .expect("a fresh runtime has no gate");
        {
            let mut g = self.shared.lock();
            let n = self.cfg.roles.len();
            g.at_gate = vec![false; n];
            g.go = vec![false; n];
            g.stepped = vec![0; n];
            g.report = vec![Report::Idle; n];
        }
        for w in &self.workers {
            w.send(Msg::Start(Arc::clone(&rt)));
            w.acked("the start of a run");
        }
        Run {
            rt,
            state: Stop::init(&self.cfg),
            status: self.initial_status(),
        }
    }

    /// Takes one action.
    fn act(&self, run: &mut Run, act: Act, out: &mut Explored) {
        out.actions += 1;
        match act {
            Act::Issue {
                thread: t,
                cmd,
                checked,
            } => {
                let ti = t as usize;
                let handling = checked && cmd != Cmd::Create && run.state.threads[ti].please_stop;
                self.shared.lock().report[ti] = Report::Working;
                self.workers[ti].send(Msg::Do(cmd, checked));
                let g = self.shared.lock();
                let g = self.shared.wait_for(
                    g,
                    &|| format!("thread {t} never reached the first step of {cmd:?}"),
                    |g| g.at_gate[ti] || g.report[ti] != Report::Working,
                );
                assert!(
                    g.at_gate[ti],
                    "thread {t}: {cmd:?} ended without a step ({:?})",
                    g.report[ti]
                );
                run.status[ti] = Status::Busy { cmd, handling };
            }
            Act::Grant(t) => {
                let ti = t as usize;
                self.grant(run, ti, out);
                let Status::Busy { cmd, .. } = run.status[ti] else {
                    panic!("thread {t} granted a step outside an operation");
                };
                // The eval breaker's part ends when the thread is back in
                // running code (attached, its critical section resumed):
                // the operation itself starts next.
                let th = &run.state.threads[ti];
                let back = th.at == At::Go && th.job == Job::Run && th.state == TState::Attached;
                if let Status::Busy { handling: true, .. } = run.status[ti]
                    && !back
                {
                } else {
                    run.status[ti] = Status::Busy {
                        cmd,
                        handling: false,
                    };
                }
                if enabled_threads(&self.cfg, &run.state) & (1 << ti) != 0 {
                    // It goes on to its next step or ends its operation;
                    // nothing else can stop it.
                    let g = self.shared.lock();
                    let g = self.shared.wait_for(
                        g,
                        &|| format!("thread {t} did not settle after its step in {cmd:?}"),
                        |g| g.at_gate[ti] || g.report[ti] != Report::Working,
                    );
                    match g.report[ti] {
                        Report::Idle => run.status[ti] = Status::Idle,
                        Report::Ended => run.status[ti] = Status::Ended,
                        _ => {}
                    }
                }
            }
        }
    }

    /// Lets thread `t`, at its gate (or on its way there), take one step,
    /// and steps the spec by the events it recorded.
    fn grant(&self, run: &mut Run, t: usize, out: &mut Explored) {
        out.steps += 1;
        let g = self.shared.lock();
        let mut g = self.shared.wait_for(
            g,
            &|| format!("thread {t} never reached its next step"),
            |g| g.at_gate[t],
        );
        let before = g.stepped[t];
        g.go[t] = true;
        self.shared.workers[t].notify_one();
        let g = self
            .shared
            .wait_for(g, &|| format!("thread {t} did not finish its step"), |g| {
                g.stepped[t] > before
            });
        drop(g);
        for e in run.rt.take_trace() {
            assert_eq!(
                e.thread() as usize,
                t,
                "thread {t} was let through, but {e:?} was recorded"
            );
            self.spec_step(run, &e, out);
        }
    }

    fn spec_step(&self, run: &mut Run, e: &Event, out: &mut Explored) {
        run.state = Stop::step(&self.cfg, &run.state, e).unwrap_or_else(|r| {
            panic!(
                "the spec rejects {e:?}: {r}\nin state {:#?}\nthreads {:?}",
                run.state, run.status
            )
        });
        if let Some(inv) = Stop::invariants().iter().find(|i| !(i.holds)(&run.state)) {
            panic!("{} violated after {e:?}", inv.name);
        }
        out.visited.insert(run.state.clone());
    }

    /// Finishes every operation in progress (an idle thread holding a
    /// critical section ends it; an idle thread asked to stop takes its
    /// check), granting steps round-robin, then resets every worker.
    fn wind_down(&self, run: &mut Run, out: &mut Explored) {
        let n = run.status.len();
        let mut next = 0;
        for _ in 0..10_000 {
            let enabled = enabled_threads(&self.cfg, &run.state);
            let idle = |t: usize| run.status[t] == Status::Idle;
            if let Some(t) = (0..n).find(|&t| idle(t) && run.state.threads[t].please_stop) {
                self.act(
                    run,
                    Act::Issue {
                        thread: t as u8,
                        cmd: Cmd::Check,
                        checked: true,
                    },
                    out,
                );
                continue;
            }
            if let Some(t) =
                (0..n).find(|&t| idle(t) && matches!(run.state.threads[t].cs, Cs::Held(_)))
            {
                self.act(
                    run,
                    Act::Issue {
                        thread: t as u8,
                        cmd: Cmd::End,
                        checked: true,
                    },
                    out,
                );
                continue;
            }
            let busy = (0..n)
                .map(|k| (next + k) % n)
                .find(|&t| matches!(run.status[t], Status::Busy { .. }) && enabled & (1 << t) != 0);
            match busy {
                Some(t) => {
                    self.act(run, Act::Grant(t as u8), out);
                    next = t + 1;
                }
                None => break,
            }
        }
        // A thread created after finalization stops at its first step's
        // gate: let it through (it records nothing and hangs).
        for t in 0..n {
            if matches!(run.status[t], Status::Busy { .. })
                && run.state.threads[t].life == Life::Unborn
            {
                self.grant(run, t, out);
            }
        }
        for w in &self.workers {
            w.send(Msg::Reset);
        }
        for w in &self.workers {
            w.acked("its run");
        }
    }
}
