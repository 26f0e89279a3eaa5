//! Real delayed frees of owned heap values across two threads, small enough
//! for Miri, which checks them for use-after-free, data races (with its
//! weak-memory emulation of the orderings) and leaks:
//! `cargo +nightly miri test -p cpyrt-reference --test miri_qsbr`.
//! It also runs as an ordinary std test.
#![cfg(not(any(cpyrt_loom, cpyrt_shuttle)))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use cpyrt_reference::qsbr::{Config, Domain, Published, Reclaim};

/// Replacements by the writer and read sections of the reader. Measured on
/// the project's machine: both tests run in 1.0 s under Miri (plus about
/// 40 s to build the crate for Miri the first time). A variant that frees
/// before the goal with real frees is reported by Miri as a data race on
/// the retired node, which shows the test can fail.
const ROUNDS: u64 = 12;

/// A heap payload that counts its drops.
struct Text {
    text: String,
    drops: Arc<AtomicUsize>,
}

impl Drop for Text {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn text(i: u64, drops: &Arc<AtomicUsize>) -> Text {
    Text {
        text: format!("value {i}"),
        drops: Arc::clone(drops),
    }
}

fn run(deferral_limit: u32) {
    let mut cfg = Config::CPYTHON;
    cfg.deferral_limit = deferral_limit;
    // The reader's registration grows the array while the writer may be
    // attached: the growth pause and the real free of the old array run
    // under Miri too.
    cfg.min_array_size = 1;
    cfg.chunk_items = 4;
    let domain = Domain::new(cfg);
    assert_eq!(domain.reclaim(), Reclaim::Real);
    let drops = Arc::new(AtomicUsize::new(0));
    let boxes = Arc::new(AtomicUsize::new(0));
    let cell = Arc::new(Published::new(&domain, text(0, &drops)));
    let mut writer = Domain::register(&domain, 0);

    let reader = {
        let domain = Arc::clone(&domain);
        let cell = Arc::clone(&cell);
        thread::spawn(move || {
            let mut reader = Domain::register(&domain, 1);
            reader.attach();
            for round in 0..ROUNDS {
                {
                    let guard = reader.read(&cell);
                    // Reads the heap bytes of a value that may be retired.
                    assert!(guard.text.starts_with("value "), "{}", guard.text);
                }
                reader.quiescent_state();
                if round % 4 == 3 {
                    reader.detach();
                    reader.attach();
                }
                reader.process_delayed();
            }
            reader.exit();
        })
    };

    writer.attach();
    for i in 1..=ROUNDS {
        writer.replace(&cell, text(i, &drops));
        // Any owned value: dropping the box is the free.
        struct Counted(#[allow(dead_code)] Vec<u64>, Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::Relaxed);
            }
        }
        writer.free_delayed(Box::new(Counted(vec![i; 4], Arc::clone(&boxes))));
        writer.quiescent_state();
        writer.process_delayed();
    }
    writer.exit();
    reader.join().unwrap();

    drop(cell);
    drop(domain);
    assert_eq!(drops.load(Ordering::Relaxed), ROUNDS as usize + 1);
    assert_eq!(boxes.load(Ordering::Relaxed), ROUNDS as usize);
}

#[test]
fn real_delayed_frees_with_strict_advance() {
    run(1);
}

#[test]
fn real_delayed_frees_with_deferred_advance() {
    run(3);
}
