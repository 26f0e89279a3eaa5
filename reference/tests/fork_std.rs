//! `os.fork()` with running threads, for real: the child's handle table,
//! locks and thread states are repaired before anything runs, it joins
//! nothing that is dead, starts and joins threads, takes the locks, stops
//! the world and completes a QSBR reclamation; the parent carries on.
//!
//! # Why a process of its own
//! `fork()` copies every thread's memory but only the calling thread. In
//! a test binary the other threads are the harness's and other tests':
//! any lock one of them holds (output capture, a panic hook, an
//! allocator's arena, another test's runtime) would be copied held into
//! the child. So [`fork_with_running_threads`] re-executes this binary to
//! run only [`fork_scenario`], with one test thread: in that process the
//! only threads are the harness's main thread (waiting for the test) and
//! the runtime's. The child never returns into the harness: it reports
//! through its exit status (`_exit`), writes diagnostics with `write(2)`
//! (no Rust stdio lock), and an `alarm` turns a hang into a signal the
//! parent reports.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]
#![cfg(unix)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cpyrt_reference::fork::{
    Forked, HandleState, JoinError, Options, Repairs, Runtime, ThreadCtx, ThreadHandle, exit_child,
    run_alone,
};
use cpyrt_reference::qsbr::{Config, Domain, Published, QsbrThread, Reclaim};

/// Set in the re-executed process.
const SCENARIO_ENV: &str = "CPYRT_FORK_SCENARIO";
/// The line the scenario prints when the parent's checks pass.
const PASSED: &str = "fork scenario: child exited 0, parent carried on";
/// Seconds before a hung child is killed by SIGALRM.
const CHILD_ALARM_SECS: u32 = 30;
/// How long the parent waits for the child.
const CHILD_WAIT: Duration = Duration::from_secs(60);
/// Worker iterations each worker completes before the fork and again
/// after it in the parent.
const ROUNDS: u64 = 20;

#[test]
fn fork_with_running_threads() {
    if std::env::var_os(SCENARIO_ENV).is_some() {
        return;
    }
    if let Err(e) = run_alone("fork_scenario", SCENARIO_ENV, PASSED) {
        panic!("{e}");
    }
}

/// A payload that counts its drops (the real frees).
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the workers share with the main thread.
struct Shared {
    domain: Arc<Domain>,
    cell: Published<Counted>,
    stop: AtomicBool,
    /// Worker 2 holds the runtime mutex across a blocking call.
    holding: AtomicBool,
    release: AtomicBool,
    progress: [AtomicU64; 2],
}

/// One QSBR read section and quiescent state, attached, then a safe point
/// and a short blocking call. QSBR is attached only between safe points, as
/// `detach_thread` detaches it first.
fn round(ctx: &ThreadCtx, qt: &mut QsbrThread, sh: &Shared) {
    qt.attach();
    {
        // A lock-free read of QSBR-protected memory.
        let guard = qt.read(&sh.cell);
        std::hint::black_box(guard.get().0.load(Ordering::SeqCst));
    }
    qt.quiescent_state();
    qt.detach();
    ctx.eval_breaker();
    ctx.blocking(|| std::thread::sleep(Duration::from_micros(200)));
}

fn worker(ctx: &ThreadCtx, sh: &Shared, index: usize) {
    let mut qt = ctx.blocking(|| Domain::register(&sh.domain, index as u8 + 1));
    if index == 1 {
        // Hold a LOCKS_INIT mutex across a blocking call until the parent
        // lets go: the fork copies it held by a thread the child lacks.
        ctx.rt.runtime_mutex().lock(ctx.token());
        sh.holding.store(true, Ordering::SeqCst);
        ctx.blocking(|| {
            while !sh.release.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_micros(100));
            }
        });
        ctx.rt.runtime_mutex().unlock(ctx.token());
    }
    while !sh.stop.load(Ordering::SeqCst) {
        round(ctx, &mut qt, sh);
        sh.progress[index].fetch_add(1, Ordering::SeqCst);
    }
    ctx.blocking(|| qt.exit());
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The QSBR reclamation: retire the published value, advance, announce a
/// quiescent state and process until it is really freed.
fn reclaim(qt: &mut QsbrThread, sh: &Shared, drops: &Arc<AtomicUsize>) -> bool {
    let before = drops.load(Ordering::SeqCst);
    qt.attach();
    qt.replace(&sh.cell, Counted(Arc::clone(drops)));
    qt.advance();
    let mut freed = false;
    for _ in 0..10_000 {
        qt.quiescent_state();
        qt.process_delayed();
        if drops.load(Ordering::SeqCst) > before {
            freed = true;
            break;
        }
        std::thread::yield_now();
    }
    qt.detach();
    freed
}

#[test]
#[ignore = "run in a process of its own by fork_with_running_threads"]
fn fork_scenario() {
    assert!(
        std::env::var_os(SCENARIO_ENV).is_some(),
        "run through fork_with_running_threads"
    );
    let main = Runtime::start();
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new(Config {
        reclaim: Reclaim::Real,
        ..Config::CPYTHON
    });
    let sh = Arc::new(Shared {
        cell: Published::new(&domain, Counted(Arc::clone(&drops))),
        domain,
        stop: AtomicBool::new(false),
        holding: AtomicBool::new(false),
        release: AtomicBool::new(false),
        progress: [AtomicU64::new(0), AtomicU64::new(0)],
    });
    let mut qmain = main.blocking(|| Domain::register(&sh.domain, 0));

    // Two running workers, one thread that finishes and is never joined,
    // and one handle that is never started.
    let workers: Vec<ThreadHandle> = (0..2)
        .map(|i| {
            let h = ThreadHandle::new(&main);
            let sh = Arc::clone(&sh);
            h.start(&main, move |ctx| worker(ctx, &sh, i)).unwrap();
            h
        })
        .collect();
    let finished = ThreadHandle::new(&main);
    finished.start(&main, |_| {}).unwrap();
    let unstarted = ThreadHandle::new(&main);
    wait_until("the finished thread exits", || finished.is_done());
    wait_until("the workers run and one holds the mutex", || {
        sh.holding.load(Ordering::SeqCst) && sh.progress[0].load(Ordering::SeqCst) >= ROUNDS
    });
    let holder = workers[1].ident().unwrap();

    match main.rt.fork(&main).unwrap() {
        Forked::Child(repairs) => {
            // SAFETY: alarm and _exit are async-signal-safe; the child
            // never returns into the test harness.
            unsafe { libc::alarm(CHILD_ALARM_SECS) };
            let code = child(
                &main, &repairs, holder, &workers, &finished, &unstarted, &sh, &mut qmain, &drops,
            );
            unsafe { libc::_exit(code) };
        }
        Forked::Parent { pid } => {
            let status = wait_child(pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child failed: {}",
                describe(status)
            );
        }
    }

    // The parent carries on: the world runs, the mutex holder lets go,
    // both workers make progress, every handle joins for real.
    let at_fork = [0, 1].map(|i| sh.progress[i].load(Ordering::SeqCst));
    sh.release.store(true, Ordering::SeqCst);
    wait_until("both workers progress after the fork", || {
        (0..2).all(|i| sh.progress[i].load(Ordering::SeqCst) >= at_fork[i] + ROUNDS)
    });
    assert_eq!(main.rt.runtime_mutex().owner(), None);
    sh.stop.store(true, Ordering::SeqCst);
    for h in workers.iter().chain([&finished]) {
        assert!(h.is_joinable());
        h.join(&main).unwrap();
        assert_eq!(h.state(), HandleState::Done);
        assert!(!h.is_joinable());
    }
    assert_eq!(unstarted.join(&main), Err(JoinError::NotStarted));
    assert!(reclaim(&mut qmain, &sh, &drops), "the parent reclaims");
    assert_eq!(main.rt.thread_tokens(main.token()), vec![main.token()]);
    println!("{PASSED}");
}

/// The child's checks; each failure has its own exit status.
#[allow(clippy::too_many_arguments)]
fn child(
    main: &ThreadCtx,
    repairs: &Repairs,
    holder: u64,
    workers: &[ThreadHandle],
    finished: &ThreadHandle,
    unstarted: &ThreadHandle,
    sh: &Shared,
    qmain: &mut QsbrThread,
    drops: &Arc<AtomicUsize>,
) -> i32 {
    macro_rules! check {
        ($code:expr, $cond:expr, $what:expr) => {
            if !$cond {
                let msg = format!("child check {} failed: {}\n", $code, $what);
                // SAFETY: write(2) on stderr with a valid buffer.
                unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
                return $code;
            }
        };
    }
    let me = main.token();
    // What the handler had to repair: the mutex held by a dead worker, the
    // handles of the two workers and the finished thread, their thread
    // states; the never-started handle is kept.
    check!(
        10,
        repairs.dead_lock_owners == vec![("runtime mutex", holder)],
        format!("{repairs:?}")
    );
    check!(11, repairs.handles_marked == 3, format!("{repairs:?}"));
    check!(
        12,
        repairs.handles_kept_not_started == 1,
        format!("{repairs:?}")
    );
    check!(
        13,
        repairs.thread_states_removed == 2,
        format!("{repairs:?}")
    );
    check!(
        14,
        main.rt.check_child(main).is_ok(),
        format!("{:?}", main.rt.check_child(main))
    );
    check!(
        15,
        main.rt.thread_tokens(me) == vec![me],
        "only the forker's thread state"
    );
    // Dead threads' handles are done, not joinable, unlisted, and joining
    // them returns at once without touching an OS thread.
    for h in workers.iter().chain([finished]) {
        check!(
            20,
            h.state() == HandleState::Done && !h.is_joinable() && h.is_done(),
            format!("{:?}", h.state())
        );
        check!(21, !h.is_listed(main), "a dead handle is listed");
        check!(22, h.join(main) == Ok(()), "joining a dead handle");
    }
    check!(
        23,
        unstarted.state() == HandleState::NotStarted && unstarted.is_listed(main),
        "the unstarted handle"
    );
    // Locks: the runtime mutex and the import lock are free again.
    check!(
        30,
        main.rt.runtime_mutex().owner().is_none(),
        "runtime mutex"
    );
    main.rt.runtime_mutex().lock(me);
    main.rt.runtime_mutex().unlock(me);
    check!(31, main.rt.import_lock().owner().is_none(), "import lock");
    main.rt.import_lock().acquire(me);
    main.rt.import_lock().release(me);
    // A stop-the-world completes (nobody else is listed).
    main.rt.stop_the_world(main);
    main.rt.start_the_world(main);
    // Threads start and join: the never-started handle and a new one.
    let fresh = ThreadHandle::new(main);
    let ran = Arc::new(AtomicUsize::new(0));
    for (i, h) in [unstarted, &fresh].into_iter().enumerate() {
        let (ran, sh_domain) = (Arc::clone(&ran), Arc::clone(&sh.domain));
        let started = h.start(main, move |ctx| {
            let mut qt = ctx.blocking(|| Domain::register(&sh_domain, 4 + i as u8));
            qt.attach();
            qt.quiescent_state();
            qt.detach();
            ctx.blocking(|| qt.exit());
            ran.fetch_add(1, Ordering::SeqCst);
        });
        check!(40, started.is_ok(), format!("start: {started:?}"));
    }
    for h in [unstarted, &fresh] {
        check!(
            41,
            h.join(main) == Ok(()),
            "join a thread started in the child"
        );
        check!(42, h.state() == HandleState::Done, "joined handle state");
    }
    check!(
        43,
        ran.load(Ordering::SeqCst) == 2,
        "both child threads ran"
    );
    check!(
        44,
        main.rt.check_child(main).is_ok(),
        format!("{:?}", main.rt.check_child(main))
    );
    // QSBR: with every dead thread's slot OFFLINE, a reclamation completes.
    check!(
        50,
        reclaim(qmain, sh, drops),
        "QSBR reclamation in the child"
    );
    0
}

/// Waits for the child, killing it after [`CHILD_WAIT`].
fn wait_child(pid: i32) -> i32 {
    let deadline = Instant::now() + CHILD_WAIT;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            return status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill and waitpid on our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the child did not exit within {CHILD_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!(
            "exit status {} (see stderr for the check)",
            libc::WEXITSTATUS(status)
        )
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let why = if sig == libc::SIGALRM { " (hung)" } else { "" };
        format!("killed by signal {sig}{why}")
    } else {
        format!("wait status {status:#x}")
    }
}

/// Set in the re-executed process of [`qsbr_after_fork_releases_dead_slots`].
const QSBR_ENV: &str = "CPYRT_FORK_QSBR_SCENARIO";
const QSBR_PASSED: &str = "qsbr scenario: the child reclaims with _Py_qsbr_after_fork, not without";

/// `_Py_qsbr_after_fork` in a real child: a thread of the parent is
/// attached to the QSBR domain, inside a read section, when the main
/// thread forks (it belongs to no runtime, so the pause before the fork
/// does not detach it). In the child with `Domain::after_fork` its slot
/// is released and a reclamation completes; in the twin without it
/// (`Options::qsbr_after_fork` off) the dead slot's sequence holds
/// `rd_seq` back and the same reclamation never completes.
#[test]
fn qsbr_after_fork_releases_dead_slots() {
    if std::env::var_os(QSBR_ENV).is_some() {
        return;
    }
    if let Err(e) = run_alone("qsbr_scenario", QSBR_ENV, QSBR_PASSED) {
        panic!("{e}");
    }
}

/// One fork with a parent thread attached to the domain at the fork.
/// Returns the child's exit status: 0 if its reclamation completed, 1 if
/// not, 2 if `_Py_qsbr_after_fork` released no slot although it ran.
fn fork_with_attached_reader(after_fork: bool) -> i32 {
    let main = Runtime::start_with(Options {
        qsbr_after_fork: after_fork,
        ..Options::CPYTHON
    });
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new(Config {
        reclaim: Reclaim::Real,
        ..Config::CPYTHON
    });
    let cell = Arc::new(Published::new(&domain, Counted(Arc::clone(&drops))));
    let mut qmain = main.blocking(|| Domain::register(&domain, 0));
    main.rt.use_qsbr(&domain, qmain.slot_index());
    let (inside, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let reader = {
        let (domain, cell, inside, stop) = (
            Arc::clone(&domain),
            Arc::clone(&cell),
            Arc::clone(&inside),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            let mut qt = Domain::register(&domain, 1);
            qt.attach();
            {
                let guard = qt.read(&cell);
                inside.store(true, Ordering::SeqCst);
                while !stop.load(Ordering::SeqCst) {
                    std::hint::black_box(guard.get().0.load(Ordering::SeqCst));
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            qt.detach();
            qt.exit();
        })
    };
    while !inside.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    match main.rt.fork(&main).unwrap() {
        Forked::Child(repairs) => {
            // SAFETY: alarm is async-signal-safe.
            unsafe { libc::alarm(CHILD_ALARM_SECS) };
            if after_fork && repairs.qsbr_slots_released == 0 {
                exit_child(2);
            }
            let before = drops.load(Ordering::SeqCst);
            qmain.attach();
            qmain.replace(&cell, Counted(Arc::clone(&drops)));
            qmain.advance();
            let mut freed = false;
            for _ in 0..2_000 {
                qmain.quiescent_state();
                qmain.process_delayed();
                if drops.load(Ordering::SeqCst) > before {
                    freed = true;
                    break;
                }
                std::thread::yield_now();
            }
            exit_child(if freed { 0 } else { 1 });
        }
        Forked::Parent { pid } => {
            let code = cpyrt_reference::fork::wait_child(pid, CHILD_WAIT).unwrap();
            stop.store(true, Ordering::SeqCst);
            reader.join().unwrap();
            // The parent's reader left its read section: the parent
            // reclaims as usual.
            let before = drops.load(Ordering::SeqCst);
            qmain.attach();
            qmain.replace(&cell, Counted(Arc::clone(&drops)));
            qmain.advance();
            while drops.load(Ordering::SeqCst) == before {
                qmain.quiescent_state();
                qmain.process_delayed();
            }
            qmain.detach();
            main.blocking(|| qmain.exit());
            code
        }
    }
}

#[test]
#[ignore = "run in a process of its own by qsbr_after_fork_releases_dead_slots"]
fn qsbr_scenario() {
    assert!(std::env::var_os(QSBR_ENV).is_some());
    assert_eq!(
        fork_with_attached_reader(true),
        0,
        "with _Py_qsbr_after_fork the child reclaims"
    );
    assert_eq!(
        fork_with_attached_reader(false),
        1,
        "without _Py_qsbr_after_fork the dead reader holds the child's rd_seq back"
    );
    println!("{QSBR_PASSED}");
}
