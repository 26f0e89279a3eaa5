//! The fork spec's named properties.

use super::*;

/// Named state invariants. All but the last two are about the child: the
/// parent keeps every thread, so what fork breaks, it breaks there.
pub static INVARIANTS: &[Invariant<State>] = &[
    Invariant {
        name: "child_locks_free_or_live",
        doc: "In the child, from the first after-fork step on, every lock (HEAD_LOCK, the runtime mutexes, the import lock, the GIL, the pauses' mutexes) is free or owned by a live thread.",
        holds: |s| {
            s.process != Process::Child
                || s.done() == 0
                || ![
                    s.head,
                    s.runtime_mutex,
                    s.import.map(|(o, _)| o),
                    match s.gil {
                        Gil::Held(o) => Some(o),
                        _ => None,
                    },
                    s.global.owner,
                    s.interp.owner,
                ]
                .into_iter()
                .any(|o| s.dead_owner(o))
        },
    },
    Invariant {
        name: "child_lists_consistent",
        doc: "The child's copy of the runtime was not taken while a thread was half-way through changing a list under HEAD_LOCK.",
        holds: |s| s.process != Process::Child || !s.torn_copy,
    },
    Invariant {
        name: "child_only_live_thread_states",
        doc: "In the child, once the dead thread states are unlinked, every thread state in the interpreter belongs to a live thread.",
        holds: |s| {
            s.process != Process::Child
                || s.done() & ChildStep::RemoveThreadStates.bit() == 0
                || s.threads.iter().all(|t| t.ts == Ts::None || t.alive)
        },
    },
    Invariant {
        name: "child_dead_handles_marked_before_code",
        doc: "In the child, whenever code may run, the handle of every thread that did not survive the fork is done and not joinable.",
        holds: |s| {
            !s.child_code_may_run()
                || s.threads.iter().all(|t| {
                    t.alive
                        || t.born_in_child
                        || t.handle.freed()
                        || t.handle.state == HandleState::NotStarted
                        || t.handle.marked()
                })
        },
    },
    Invariant {
        name: "child_no_dead_pause",
        doc: "In the child, no stop-the-world request belongs to a thread that did not survive the fork (its countdown and its restart would never come).",
        holds: |s| {
            s.process != Process::Child
                || ![s.global, s.interp]
                    .iter()
                    .any(|p| p.requested && s.dead_owner(p.owner))
        },
    },
    Invariant {
        name: "child_no_dead_qsbr_seq",
        doc: "In the child, no QSBR slot of a thread that did not survive the fork holds a sequence number that would hold back rd_seq.",
        holds: |s| {
            s.process != Process::Child || s.threads.iter().all(|t| t.alive || t.seq == OFFLINE)
        },
    },
    Invariant {
        name: "child_forker_holds_gil",
        doc: "In the child, from _PyEval_ReInitThreads to the end of the handler, the forking thread holds the GIL (when the GIL is enabled).",
        holds: |s| {
            s.process != Process::Child
                || !matches!(s.phase, Phase::AfterFork { done } if done & ChildStep::ReinitGil.bit() != 0)
                || matches!(s.gil, Gil::Disabled | Gil::Held(FORKER))
        },
    },
    Invariant {
        name: "no_code_while_world_stopped",
        doc: "No code (a destructor, a collection) runs while the world is stopped.",
        holds: |s| !s.code_ran_while_stopped,
    },
    Invariant {
        name: "no_os_call_on_lost_thread",
        doc: "No join or detach reaches an OS thread that does not exist in the process.",
        holds: |s| !s.touched_lost_thread,
    },
    Invariant {
        name: "no_wait_forever",
        doc: "No thread waits for a lock, an event or a restart that no live thread will ever provide.",
        holds: |s| s.blocked.is_none(),
    },
];

/// Named transition invariants.
pub static TRANSITION_INVARIANTS: &[TransitionInvariant<State>] = &[
    TransitionInvariant {
        name: "rd_seq_monotone",
        doc: "QSBR's read sequence never decreases, across the fork included.",
        holds: |a, b| b.rd_seq >= a.rd_seq,
    },
    TransitionInvariant {
        name: "handle_state_monotone",
        doc: "A handle's state only moves forward: NOT_STARTED, STARTING, RUNNING, DONE.",
        holds: |a, b| {
            a.threads
                .iter()
                .zip(&b.threads)
                .all(|(x, y)| y.handle.state >= x.handle.state)
        },
    },
];

/// Reachability goals: without them a model whose invariants hold could be
/// holding vacuously. In alphabetical order, as reports list unreached
/// goals.
pub static SOMETIMES: &[Invariant<State>] = &[
    Invariant {
        name: "child_imported",
        doc: "The child takes and releases the import lock.",
        holds: |s| s.goals & goal::IMPORTED != 0,
    },
    Invariant {
        name: "child_joined_dead_handle",
        doc: "The child joins the handle of a thread that did not survive the fork, and the join returns at once.",
        holds: |s| s.goals & goal::JOINED_DEAD != 0,
    },
    Invariant {
        name: "child_joined_new_thread",
        doc: "The child joins a thread it started.",
        holds: |s| s.goals & goal::JOINED_NEW != 0,
    },
    Invariant {
        name: "child_paused",
        doc: "The child completes a stop-the-world pause.",
        holds: |s| s.goals & goal::PAUSED != 0,
    },
    Invariant {
        name: "child_ready",
        doc: "The child finishes PyOS_AfterFork_Child.",
        holds: |s| s.process == Process::Child && s.phase == Phase::Ready,
    },
    Invariant {
        name: "child_reclaimed",
        doc: "The child frees memory through QSBR.",
        holds: |s| s.goals & goal::RECLAIMED != 0,
    },
    Invariant {
        name: "child_started_thread",
        doc: "The child starts a thread whose handle was created before the fork.",
        holds: |s| s.goals & goal::STARTED != 0,
    },
    Invariant {
        name: "forked_while_worker_held_mutex",
        doc: "fork() happens while a worker holds a runtime mutex, which the child must re-initialise.",
        holds: |s| s.process == Process::Child && s.dead_owner(s.runtime_mutex),
    },
    Invariant {
        name: "forked_with_garbage_handle",
        doc: "fork() happens while a finished, unjoined thread's handle object is garbage (the gh-115035 setting).",
        holds: |s| s.process == Process::Child && s.forked_with_garbage_handle,
    },
    Invariant {
        name: "parent_resumed",
        doc: "After PyOS_AfterFork_Parent, a worker of the parent runs Python code again.",
        holds: |s| {
            s.process == Process::Parent
                && s.phase == Phase::Ready
                && s.threads[1..].iter().any(|t| t.ts == Ts::Attached)
        },
    },
];

/// The child's progress, checked under the fairness the model declares:
/// once the handler has finished, the child can still stop the world, take
/// the import lock and reclaim memory, however the copy was taken.
pub static LIVENESS: &[LeadsTo<State>] = &[
    LeadsTo {
        name: "child_eventually_pauses",
        doc: "Once the child's after-fork handler has finished, the child eventually completes a stop-the-world pause.",
        p: child_ready,
        q: |s| s.goals & goal::PAUSED != 0,
    },
    LeadsTo {
        name: "child_eventually_imports",
        doc: "Once the child's after-fork handler has finished, the child eventually takes and releases the import lock.",
        p: child_ready,
        q: |s| s.goals & goal::IMPORTED != 0,
    },
    LeadsTo {
        name: "child_eventually_reclaims",
        doc: "Once the child's after-fork handler has finished, the child eventually frees memory through QSBR.",
        p: child_ready,
        q: |s| s.goals & goal::RECLAIMED != 0,
    },
];

/// The premise of [`LIVENESS`]: the child's handler has finished.
pub fn child_ready(s: &State) -> bool {
    s.process == Process::Child && s.phase == Phase::Ready
}
