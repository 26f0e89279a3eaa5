//! The hand-off workload the GIL benchmark runs on the reference runtime
//! and, in the same shape, on CPython (`reference/benches/gil_vs_cpython.rs`):
//! two CPU-bound threads and one thread that blocks (sleeps, holding no
//! GIL) and wakes, for a fixed time, at one switch interval.
//!
//! Measured: hand-offs between the CPU-bound threads per second (each
//! thread notes, after each unit of work, whether the previous unit was
//! someone else's), and the blocking thread's wake-up latency: how much
//! longer "release, sleep, re-take" takes than the sleep asked for. The
//! same two quantities are what a Python program can observe of CPython's
//! GIL, so the ratios compare like with like.
//!
//! [`cpython`] runs the same shape in `python3`; the comparison is printed
//! by `reference/benches/gil_vs_cpython.rs` and by `cargo xtask bench gil`.

use std::time::{Duration, Instant};

use std::process::Command;

use cpyrt_spec::gil::scenario::{self, finite};
use cpyrt_spec::gil::{Config, Design};

use super::{Runtime, handoff::Taken};
use crate::primitive::sync::Arc;
use crate::primitive::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::primitive::thread;

/// What one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct HandoffStats {
    pub seconds: f64,
    /// Hand-offs between the two CPU-bound threads.
    pub switches: u64,
    /// Completed sleep/wake cycles of the blocking thread.
    pub wakeups: u64,
    /// Median and 90th percentile of the wake-up latency, in µs.
    pub wake_median_us: f64,
    pub wake_p90_us: f64,
}

impl HandoffStats {
    pub fn switches_per_second(&self) -> f64 {
        self.switches as f64 / self.seconds
    }
}

/// The threads the workload uses: the `handoff` scenario at three threads
/// in its finite form (the bench drives take and drop itself, so only the
/// thread states and the GIL object matter).
fn config() -> Config {
    finite(scenario::handoff(3, Design::CPYTHON))
}

/// Runs the workload for `duration` with switch interval `interval`; the
/// blocking thread sleeps `sleep` per cycle; `work` spin iterations make
/// one unit of CPU-bound work between eval-breaker checks.
pub fn handoff(duration: Duration, interval: Duration, sleep: Duration, work: u32) -> HandoffStats {
    let rt = Runtime::new(&config(), interval, false).expect("valid configuration");
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicU32::new(u32::MAX));
    let switches = Arc::new(AtomicU64::new(0));
    let mut cpu = Vec::new();
    for t in 0..2u8 {
        let mut th = Runtime::thread(&rt, t);
        let (stop, last, switches) = (Arc::clone(&stop), Arc::clone(&last), Arc::clone(&switches));
        cpu.push(thread::spawn(move || {
            assert_eq!(th.take_gil(), Taken::Held);
            while !stop.load(Ordering::Relaxed) {
                for i in 0..work {
                    std::hint::black_box(i);
                }
                // Noted while holding the GIL, so the notes are in GIL order.
                if last.swap(u32::from(t), Ordering::Relaxed) != u32::from(t) {
                    switches.fetch_add(1, Ordering::Relaxed);
                }
                th.eval_breaker_check();
            }
            th.drop_gil(false);
        }));
    }
    let io = {
        let mut th = Runtime::thread(&rt, 2);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut lat = Vec::new();
            assert_eq!(th.take_gil(), Taken::Held);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                th.drop_gil(false);
                std::thread::sleep(sleep);
                th.take_gil();
                lat.push(start.elapsed().saturating_sub(sleep));
            }
            th.drop_gil(false);
            lat
        })
    };
    let start = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let seconds = start.elapsed().as_secs_f64();
    for h in cpu {
        h.join().expect("CPU-bound thread");
    }
    let mut lat = io.join().expect("blocking thread");
    lat.sort();
    let pct = |p: usize| {
        lat.get(lat.len() * p / 100)
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    HandoffStats {
        seconds,
        switches: switches.load(Ordering::Relaxed),
        wakeups: lat.len() as u64,
        wake_median_us: pct(50),
        wake_p90_us: pct(90),
    }
}

/// Switch interval of both runs (CPython's `DEFAULT_INTERVAL`).
pub const INTERVAL: Duration = Duration::from_millis(5);
/// The blocking thread's sleep per cycle.
pub const SLEEP: Duration = Duration::from_millis(1);
/// Spin iterations per unit of the reference's CPU-bound work (about a
/// microsecond, the order of a handful of Python bytecodes).
pub const WORK: u32 = 1_000;

/// The same workload in Python. Prints one line:
/// `seconds switches wakeups median_us p90_us`.
const PY: &str = r#"
import sys, threading, time
secs, interval, sleep = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
sys.setswitchinterval(interval)
stop = False
last = [None]
switches = [0]
def cpu(me):
    while not stop:
        if last[0] is not me:
            switches[0] += 1
            last[0] = me
lat = []
def io():
    while not stop:
        t0 = time.perf_counter()
        time.sleep(sleep)
        lat.append(time.perf_counter() - t0 - sleep)
ts = [threading.Thread(target=cpu, args=(i,)) for i in range(2)] + [threading.Thread(target=io)]
start = time.perf_counter()
for t in ts: t.start()
time.sleep(secs)
stop = True
for t in ts: t.join()
el = time.perf_counter() - start
lat.sort()
pct = lambda p: lat[len(lat) * p // 100] * 1e6 if lat else 0.0
print(el, switches[0], len(lat), pct(50), pct(90))
"#;

/// `python3 --version`, or `None` when no `python3` can be run.
pub fn python_version() -> Option<String> {
    let out = Command::new("python3").arg("--version").output().ok()?;
    out.status.success().then(|| {
        let text = if out.stdout.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        };
        String::from_utf8_lossy(text).trim().to_string()
    })
}

/// Runs the workload in `python3` for `secs` seconds at `interval`, the
/// blocking thread sleeping `sleep` per cycle.
pub fn cpython(secs: f64, interval: Duration, sleep: Duration) -> Result<HandoffStats, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            PY,
            &secs.to_string(),
            &interval.as_secs_f64().to_string(),
            &sleep.as_secs_f64().to_string(),
        ])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|w| w.parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("python3 printed '{}': {e}", text.trim()))?;
    let [seconds, switches, wakeups, median, p90] = f[..] else {
        return Err(format!("python3 printed '{}'", text.trim()));
    };
    Ok(HandoffStats {
        seconds,
        switches: switches as u64,
        wakeups: wakeups as u64,
        wake_median_us: median,
        wake_p90_us: p90,
    })
}

/// Runs the reference and, when `python3` is there, CPython on the same
/// workload for `secs` seconds each, and prints both and their ratios
/// (reference / CPython). Without `python3` it says so and prints the
/// reference alone.
pub fn compare_with_cpython(secs: f64) {
    let version = python_version();
    println!(
        "GIL hand-off: 2 CPU-bound threads + 1 sleeping {SLEEP:?}, interval {INTERVAL:?}, {secs} s; {}",
        version.as_deref().unwrap_or("python3 not found")
    );
    println!(
        "{:<10} {:>8} {:>12} {:>8} {:>12} {:>10}",
        "runtime", "time", "switches/s", "wakeups", "wake p50 µs", "p90 µs"
    );
    let line = |name: &str, s: &HandoffStats| {
        println!(
            "{name:<10} {:>7.2}s {:>12.0} {:>8} {:>12.0} {:>10.0}",
            s.seconds,
            s.switches_per_second(),
            s.wakeups,
            s.wake_median_us,
            s.wake_p90_us
        )
    };
    let reference = handoff(Duration::from_secs_f64(secs), INTERVAL, SLEEP, WORK);
    line("reference", &reference);
    if version.is_none() {
        println!("python3 is not on the PATH: the CPython side and the ratios are skipped");
        return;
    }
    match cpython(secs, INTERVAL, SLEEP) {
        Ok(py) => {
            line("cpython", &py);
            let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
            println!(
                "ratios reference/cpython: switches/s {:.2}, wake p50 {:.2}, wake p90 {:.2}",
                ratio(reference.switches_per_second(), py.switches_per_second()),
                ratio(reference.wake_median_us, py.wake_median_us),
                ratio(reference.wake_p90_us, py.wake_p90_us)
            );
        }
        Err(e) => println!("cpython: not run ({e})"),
    }
}
