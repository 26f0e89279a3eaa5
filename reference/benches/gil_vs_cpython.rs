//! The reference GIL against CPython's own, on the same workload: two
//! CPU-bound threads and one thread that sleeps 1 ms (releasing the GIL)
//! and wakes, for a few seconds, at CPython's default switch interval
//! (5 ms). Reports hand-offs between the CPU-bound threads per second and
//! the blocking thread's wake-up latency (how much longer release, sleep,
//! re-take takes than the sleep), each as a ratio reference / CPython.
//! Absolute figures are printed for the record; only the ratios compare
//! across machines.
//!
//! `cargo bench -p cpyrt-reference --bench gil_vs_cpython [-- SECONDS]`
//! (needs `python3` on the PATH; without it, only the reference runs).

use std::process::Command;
use std::time::Duration;

use cpyrt_reference::gil::bench::{HandoffStats, handoff};

/// Switch interval of both runs (CPython's `DEFAULT_INTERVAL`).
const INTERVAL: Duration = Duration::from_millis(5);
/// The blocking thread's sleep per cycle.
const SLEEP: Duration = Duration::from_millis(1);
/// Spin iterations per unit of the reference's CPU-bound work (about a
/// microsecond, the order of a handful of Python bytecodes).
const WORK: u32 = 1_000;

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

fn cpython(secs: f64) -> Result<HandoffStats, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            PY,
            &secs.to_string(),
            &INTERVAL.as_secs_f64().to_string(),
            &SLEEP.as_secs_f64().to_string(),
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

fn python_version() -> String {
    Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "python3 not found".into())
}

fn line(name: &str, s: &HandoffStats) {
    println!(
        "{name:<10} {:>7.2}s {:>12.0} {:>8} {:>12.0} {:>10.0}",
        s.seconds,
        s.switches_per_second(),
        s.wakeups,
        s.wake_median_us,
        s.wake_p90_us
    );
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    println!(
        "== GIL hand-off: 2 CPU-bound threads + 1 sleeping {SLEEP:?}, interval {INTERVAL:?}, {secs} s; {}",
        python_version()
    );
    println!(
        "{:<10} {:>8} {:>12} {:>8} {:>12} {:>10}",
        "runtime", "time", "switches/s", "wakeups", "wake p50 µs", "p90 µs"
    );
    let reference = handoff(Duration::from_secs_f64(secs), INTERVAL, SLEEP, WORK);
    line("reference", &reference);
    match cpython(secs) {
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
