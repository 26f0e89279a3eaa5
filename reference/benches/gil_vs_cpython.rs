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
//! `cargo xtask bench gil` prints the same comparison. The workload and
//! the Python program are in `cpyrt_reference::gil::bench`.

use cpyrt_reference::gil::bench::compare_with_cpython;

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    print!("== ");
    compare_with_cpython(secs);
}
