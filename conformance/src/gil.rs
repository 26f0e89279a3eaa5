//! A guided, lock-step explorer of the GIL reference runtime (std only).
//!
//! The reference runs on real OS threads with its real mutexes and
//! condition variables, built with `Runtime::guided`: each thread passes a
//! gate before every spec event it records (and before the lock acquire
//! the event follows), so the driver decides which thread moves next and
//! waits for that one event. Time passes only when the driver says so
//! (`Runtime::expire_waiters`, one switch interval on one GIL object). A
//! run is then a sequence of driver commands and its trace a function of
//! that sequence.
//!
//! The explorer searches spec states the way `qsbr_guided` does: each
//! state it reaches keeps the first command sequence that reached it and
//! the commands still untried from it: one per thread the spec lets move
//! (two where the spec offers a choice the reference would otherwise make
//! itself: check or leave a `Run` segment, an allocation the hook sees or
//! not), and one per GIL whose `cond` waiters may time out. A run replays a
//! stored sequence on a fresh runtime (checking it lands on the same
//! state), then keeps taking untried commands until it stands on a state
//! with none left, and aborts the run's threads. A state where the
//! reference broke an invariant is recorded and not explored further.
//!
//! What a command cannot choose, the reference decides, and the spec must
//! accept it (every recorded event is stepped through the spec, with every
//! invariant checked):
//! - which waiter a signal wakes (the reference wakes the oldest);
//! - a timeout while another thread holds the GIL's `mutex`: the driver
//!   expires a wait under that mutex, so it only does so while the spec
//!   has the mutex free (the same state is reached by timing out first);
//! - all of one GIL's `cond` waiters time out together;
//! - spurious wake-ups (off in the models too).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpyrt_reference::gil::{Aborted, Gate, Outcome, RunLimits, Runtime};
use cpyrt_spec::Spec;
use cpyrt_spec::gil::{Config, Event, GilSpec, State};

/// One driver command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// Let thread `t` take its next step (it records one event).
    Step(u8),
    /// The same on the other branch where the spec offers two the
    /// reference would otherwise decide: `Leave` a `Run` segment rather
    /// than check, an allocation the hook lets pass (`Alloc` without hook).
    Alt(u8),
    /// One switch interval passes on GIL object `g`: every thread waiting
    /// on its `cond` times out.
    Expire(u8),
}

/// The command that makes the reference take `e` (or, where the reference
/// decides, one of `e`'s siblings), or `None` when the driver cannot issue
/// it in `s`.
pub fn command(cfg: &Config, s: &State, e: &Event) -> Option<Cmd> {
    match *e {
        Event::Leave { thread } => Some(Cmd::Alt(thread)),
        Event::Alloc {
            thread,
            hook: false,
        } if cfg.alloc_hook
            && s.threads[thread as usize].hook.is_none()
            && cfg.threads[thread as usize].hook_tstate.is_some() =>
        {
            Some(Cmd::Alt(thread))
        }
        Event::Timeout { thread } => {
            let ts = s.threads[thread as usize].current?;
            let g = s.gil_of(ts);
            // expire_waiters takes the mutex: only while nobody holds it.
            s.gils[g as usize].mutex.is_none().then_some(Cmd::Expire(g))
        }
        Event::Spurious { .. } => None,
        e => Some(Cmd::Step(e.thread())),
    }
}

/// The commands the driver may issue in `s`.
pub fn commands(cfg: &Config, s: &State) -> Vec<Cmd> {
    let mut events = Vec::new();
    GilSpec::enabled(cfg, s, &mut events);
    let mut out = Vec::new();
    for e in &events {
        if let Some(c) = command(cfg, s, e)
            && !out.contains(&c)
        {
            out.push(c);
        }
    }
    out
}

/// One guided run: a fresh runtime and one OS thread per spec thread.
pub struct GuidedRun {
    rt: Arc<Runtime>,
    gate: Arc<Gate>,
    threads: Vec<JoinHandle<Option<Outcome>>>,
}

/// How long the driver waits for a permitted event before it calls the
/// reference stuck.
const STUCK: Duration = Duration::from_secs(10);

impl GuidedRun {
    /// Starts every thread of `cfg`; each waits at its first gate.
    pub fn start(cfg: &Config) -> GuidedRun {
        let gate = Arc::new(Gate::new(cfg.threads.len()));
        let rt = Runtime::guided(cfg, Arc::clone(&gate)).unwrap_or_else(|e| panic!("{e}"));
        let threads = (0..cfg.threads.len())
            .map(|t| {
                let rt = Arc::clone(&rt);
                std::thread::Builder::new()
                    .name(format!("gil-guided-{t}"))
                    .spawn(move || {
                        let mut th = Runtime::thread(&rt, t as u8);
                        match catch_unwind(AssertUnwindSafe(|| th.run(RunLimits::default()))) {
                            Ok(outcome) => Some(outcome),
                            Err(p) if p.is::<Aborted>() => None,
                            Err(p) => resume_unwind(p),
                        }
                    })
                    .expect("spawn a guided thread")
            })
            .collect();
        GuidedRun { rt, gate, threads }
    }

    /// Issues `cmd` and returns the events it recorded.
    pub fn issue(&self, cmd: Cmd) -> Vec<Event> {
        match cmd {
            Cmd::Step(t) => self.gate.permit(t),
            Cmd::Alt(t) => self.gate.permit_alt(t),
            Cmd::Expire(g) => self.rt.expire_waiters(g),
        }
        let since = Instant::now();
        let mut spins = 0u32;
        loop {
            let events = self.rt.take_trace();
            if !events.is_empty() {
                return events;
            }
            if since.elapsed() > STUCK {
                panic!("{cmd:?} recorded no event in {STUCK:?}: the reference is stuck");
            }
            spins += 1;
            if spins < 200 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }

    /// Aborts the run and joins its threads; returns each thread's outcome
    /// (`None`: aborted). A thread that failed otherwise fails the caller.
    pub fn finish(self) -> Vec<Option<Outcome>> {
        self.gate.abort();
        self.threads
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| resume_unwind(p)))
            .collect()
    }
}

/// Steps the spec through `events` (a rejected event fails the caller),
/// collecting each state; returns the last state and the first invariant
/// or transition invariant that broke on the way, if any.
fn advance(
    cfg: &Config,
    mut s: State,
    cmd: Cmd,
    events: &[Event],
    visited: &mut HashSet<State>,
) -> (State, Option<&'static str>) {
    let mut broken = None;
    for e in events {
        let n = GilSpec::step(cfg, &s, e)
            .unwrap_or_else(|r| panic!("the spec rejects {e:?} (after {cmd:?}): {r}"));
        let state = GilSpec::invariants().iter().find(|i| !(i.holds)(&n));
        let transition = GilSpec::transition_invariants()
            .iter()
            .find(|i| !(i.holds)(&s, &n));
        broken = broken
            .or(state.map(|i| i.name))
            .or(transition.map(|i| i.name));
        visited.insert(n.clone());
        s = n;
    }
    (s, broken)
}

/// Drives the reference along a spec trace: for each event, the command
/// that takes it. Returns the events the reference recorded (equal to
/// `events` when the reference follows the trace).
pub fn drive(cfg: &Config, events: &[Event]) -> Vec<Event> {
    let run = GuidedRun::start(cfg);
    let mut s = GilSpec::init(cfg);
    let mut recorded = Vec::new();
    for e in events {
        let Some(cmd) = command(cfg, &s, e) else {
            break;
        };
        let got = run.issue(cmd);
        let mut ok = true;
        for g in &got {
            match GilSpec::step(cfg, &s, g) {
                Ok(n) => s = n,
                Err(_) => ok = false,
            }
        }
        recorded.extend(got);
        if !ok || recorded.len() > events.len() || recorded[..] != events[..recorded.len()] {
            break;
        }
    }
    run.finish();
    recorded
}

struct Node {
    path: Vec<Cmd>,
    untried: Vec<Cmd>,
}

/// What an exploration found.
pub struct Explored {
    /// Every spec state a recorded event led to (and the initial state).
    pub visited: HashSet<State>,
    /// States after a whole command (the branching points).
    pub branch_points: usize,
    pub runs: usize,
    pub commands: usize,
    /// Each invariant the reference broke, with the first command sequence
    /// that broke it. A state where one broke is not explored further.
    pub violations: BTreeMap<&'static str, Vec<Cmd>>,
}

/// Explores `cfg` until no branching point has an untried command, or
/// `max_commands` commands have run.
pub fn explore(cfg: &Config, max_commands: usize) -> Explored {
    let init = GilSpec::init(cfg);
    let mut nodes: HashMap<State, Node> = HashMap::new();
    let mut queue: VecDeque<State> = VecDeque::new();
    let mut out = Explored {
        visited: HashSet::from([init.clone()]),
        branch_points: 0,
        runs: 0,
        commands: 0,
        violations: BTreeMap::new(),
    };
    nodes.insert(
        init.clone(),
        Node {
            path: Vec::new(),
            untried: commands(cfg, &init),
        },
    );
    queue.push_back(init);
    while let Some(start) = queue.pop_front() {
        if nodes[&start].untried.is_empty() {
            continue;
        }
        if out.commands >= max_commands {
            break;
        }
        out.runs += 1;
        let run = GuidedRun::start(cfg);
        let mut state = GilSpec::init(cfg);
        let mut path = nodes[&start].path.clone();
        for &cmd in &path {
            let events = run.issue(cmd);
            (state, _) = advance(cfg, state, cmd, &events, &mut out.visited);
            out.commands += 1;
        }
        assert_eq!(
            state, start,
            "replaying {path:?} reached another state: the guided reference is not deterministic"
        );
        while let Some(cmd) = nodes.get_mut(&state).and_then(|n| n.untried.pop()) {
            if !nodes[&state].untried.is_empty() {
                queue.push_back(state.clone());
            }
            let events = run.issue(cmd);
            let broken;
            (state, broken) = advance(cfg, state, cmd, &events, &mut out.visited);
            out.commands += 1;
            path.push(cmd);
            if let Some(name) = broken {
                out.violations.entry(name).or_insert_with(|| path.clone());
            }
            if !nodes.contains_key(&state) {
                queue.push_back(state.clone());
                let untried = if broken.is_some() {
                    Vec::new()
                } else {
                    commands(cfg, &state)
                };
                nodes.insert(
                    state.clone(),
                    Node {
                        path: path.clone(),
                        untried,
                    },
                );
            }
        }
        run.finish();
    }
    out.branch_points = nodes.len();
    out
}

/// Runs every thread of `cfg` on free-running OS threads (thread 0 on the
/// calling thread), with a real switch interval of `interval`, tracing on;
/// returns each thread's outcome and the trace. `cfg` must be finite (see
/// `cpyrt_spec::gil::scenario::finite`).
pub fn run_free(cfg: &Config, interval: Duration, limits: RunLimits) -> (Vec<Outcome>, Vec<Event>) {
    let rt = Runtime::new(cfg, interval, true).unwrap_or_else(|e| panic!("{e}"));
    let handles: Vec<_> = (1..cfg.threads.len())
        .map(|t| {
            let mut th = Runtime::thread(&rt, t as u8);
            std::thread::spawn(move || th.run(limits))
        })
        .collect();
    let mut outcomes = vec![Runtime::thread(&rt, 0).run(limits)];
    for h in handles {
        outcomes.push(h.join().unwrap_or_else(|p| resume_unwind(p)));
    }
    (outcomes, rt.take_trace())
}
