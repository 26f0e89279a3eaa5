//! A QSBR workload shared by the std, shuttle and loom test targets: it
//! uses only `cpyrt_reference::primitive`, so it runs under whichever
//! scheduler the build selects.
#![allow(dead_code)]

use cpyrt_reference::primitive::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use cpyrt_reference::primitive::sync::{Arc, Mutex, lock};
use cpyrt_reference::primitive::thread;
use cpyrt_reference::qsbr::{Config, Domain, Event, Published};

/// The message of a caught panic.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A published value with a canary (checked on every read) and a drop
/// counter (every drop is a real free).
pub struct Payload {
    id: u64,
    canary: u64,
    drops: Arc<AtomicUsize>,
}

impl Payload {
    pub fn new(id: u64, drops: &Arc<AtomicUsize>) -> Self {
        Payload {
            id,
            canary: !id,
            drops: Arc::clone(drops),
        }
    }

    /// Panics if the payload was overwritten (its drop clears the canary).
    pub fn verify(&self) {
        // Volatile: the check must really read the memory, not a value the
        // compiler remembers from construction.
        // SAFETY: `self.canary` is a valid field of a referenced value.
        let canary = unsafe { std::ptr::read_volatile(&self.canary) };
        assert_eq!(
            canary, !self.id,
            "use-after-free: payload {} was dropped",
            self.id
        );
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        // SAFETY: `self.canary` is a valid field of a live value.
        unsafe { std::ptr::write_volatile(&mut self.canary, 0) };
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// xorshift64*: deterministic per-thread choices, independent of the
/// schedule.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A random workload: each thread registers, attaches, runs `ops` random
/// operations (reads, replacements while the budget lasts, quiescent
/// states, processing, advances, detach/attach) and exits.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub threads: u8,
    pub ops: usize,
    pub seed: u64,
    /// How many replacements all threads together may do.
    pub replacements: u32,
}

/// What a run left behind.
pub struct Outcome {
    pub events: Vec<Event>,
    /// Objects published, the initial one included.
    pub published: u32,
    /// Payloads dropped after the domain and the cell are gone.
    pub drops: usize,
    /// Values freed by `process_delayed` calls.
    pub processed: usize,
}

pub fn run(cfg: Config, w: Workload) -> Outcome {
    let domain = Domain::new(cfg);
    let drops = Arc::new(AtomicUsize::new(0));
    let cell = Arc::new(Published::new(&domain, Payload::new(0, &drops)));
    let budget = Arc::new(AtomicU32::new(w.replacements));
    let processed = Arc::new(Mutex::new(0usize));
    // All threads register at once, so registration grows the array while
    // other threads are attached (the growth pause at work).
    let go = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..w.threads)
        .map(|tid| {
            let go = Arc::clone(&go);
            let domain = Arc::clone(&domain);
            let cell = Arc::clone(&cell);
            let budget = Arc::clone(&budget);
            let drops = Arc::clone(&drops);
            let processed = Arc::clone(&processed);
            thread::spawn(move || {
                while !go.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                let freed = worker(&domain, &cell, &budget, &drops, tid, w);
                *lock(&processed) += freed;
            })
        })
        .collect();
    go.store(true, Ordering::Release);
    for handle in handles {
        if let Err(payload) = handle.join() {
            std::panic::resume_unwind(payload);
        }
    }
    let published = cell.published();
    let events = domain.take_trace();
    drop(cell);
    drop(domain);
    let processed = *lock(&processed);
    Outcome {
        events,
        published,
        drops: drops.load(Ordering::Relaxed),
        processed,
    }
}

fn worker(
    domain: &Arc<Domain>,
    cell: &Published<Payload>,
    budget: &AtomicU32,
    drops: &Arc<AtomicUsize>,
    tid: u8,
    w: Workload,
) -> usize {
    let mut rng = Rng::new(w.seed ^ (u64::from(tid) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut t = Domain::register(domain, tid);
    t.attach();
    let mut freed = 0;
    for i in 0..w.ops {
        match rng.below(10) {
            0..=2 => t.read(cell).verify(),
            3 | 4 => {
                let claimed = budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                    .is_ok();
                if claimed {
                    let id = u64::from(tid) << 32 | i as u64;
                    t.replace(cell, Payload::new(id, drops));
                }
            }
            5 | 6 => t.quiescent_state(),
            7 => freed += t.process_delayed(),
            8 if domain.config().design.gc_advances => {
                t.advance();
            }
            _ => {
                t.detach();
                t.attach();
            }
        }
    }
    freed += t.process_delayed();
    t.exit();
    freed
}
