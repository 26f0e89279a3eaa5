//! Type version tags, the method cache and a specialized `LOAD_ATTR`, with
//! real threads and atomics.
//!
//! # Protocol
//! Follows `Objects/typeobject.c` of CPython 3.13/3.14 in its free-threaded
//! build: `assign_version_tag` (bases first, the per-class limit
//! `MAX_VERSIONS_PER_CLASS`, `next_global_version_tag`'s compare-and-swap
//! loop for immutable types, `NEXT_VERSION_TAG(interp)++` for heap types),
//! `set_version_unlocked`, `type_modified_unlocked` (recursion into
//! `tp_subclasses`, then the tag cleared), `type_setattro` (invalidation
//! and the dictionary write under `TYPE_LOCK`), `find_name_in_mro`, and
//! the method cache of `_PyType_LookupRef` /
//! `_PyType_LookupStackRefAndVersion`: a lock-free seqlock read of the
//! entry (`_PySeqLock_BeginRead`, `_PySeqLock_EndRead`) and, on a miss, the
//! MRO walk and the tag assignment under `BEGIN_TYPE_LOCK` followed, after
//! the lock is released, by `update_cache_gil_disabled`. The specialized
//! reader is `LOAD_ATTR_CLASS`'s `_CHECK_ATTR_CLASS` / `_GUARD_TYPE_VERSION`
//! of `Python/bytecodes.c`: a relaxed load of `tp_version_tag` compared
//! with the tag `Python/specialize.c` wrote into the inline cache, and the
//! cached attribute used when they match. The spec is
//! `cpyrt_spec::type_version`; every step here that changes what the spec
//! sees records its event.
//!
//! # Abstraction
//! - One attribute name, so a cache entry is `{sequence, version, value}`
//!   and a dictionary is one `u8` (0: absent), as in the spec. A
//!   modification stores the sequence number of the modification.
//! - The entry index is `tag % cache_entries`, computed from the tag the
//!   fill writes (the spec's choice); CPython hashes the tag it loaded
//!   before the miss with the name. Either way a hit compares the entry's
//!   version with the type's current tag.
//! - One type lock for the runtime. CPython's `TYPE_LOCK` is per
//!   interpreter; the spec makes every section atomic across interpreters,
//!   and the reference follows the spec. Counters and caches are per
//!   interpreter as in CPython.
//! - After taking the type lock, the slow path reads the cache entry once
//!   more and answers from it when it now hits (another thread filled it
//!   since the lock-free miss). CPython walks the MRO again and refills the
//!   entry with the same version and value; the spec's slow path is only
//!   enabled on a miss, so the reference makes the miss and the walk one
//!   step. The values returned are the same.
//! - Attribute values are small integers, but every answer still takes
//!   and drops a reference on one shared count, as `_PyType_LookupRef`'s
//!   `_Py_TryIncref` and `_PyType_Lookup`'s `Py_DECREF` do on the found
//!   object: the fast path keeps its one shared read-modify-write.
//! - The inline cache guard of `LOAD_ATTR` records no event: it reads one
//!   tag and writes thread-local state, which the spec does not model; its
//!   coherence is asserted like a method-cache hit's.
//!
//! # The coherence check
//! A ghost table (atomics outside the algorithm, `Relaxed`, so they add no
//! synchronization) holds, per range and tag, the value a walk of the MRO
//! of the tag's holder gives: written when the tag is assigned, and after
//! every modification rewritten for every type that still holds a tag
//! whose meaning changed (which never happens in the shipped design). Every
//! lock-free answer (a method-cache hit or a passed `LOAD_ATTR` guard)
//! asserts that the value it returns is the ghost value of the tag it saw;
//! a failed assertion is a panic naming `method_cache_coherent`, so loom
//! and shuttle report the broken designs as failing executions. In the
//! shipped design a tag's ghost value is written once, before the tag is
//! published, and every reader reaches it through the type lock or the
//! entry's release store.
//!
//! # Memory ordering
//! Tags are stored and loaded `Relaxed` (`FT_ATOMIC_STORE_UINT_RELAXED`,
//! `FT_ATOMIC_LOAD_UINT_RELAXED`) except the second load of the fast path,
//! which is `Acquire` as in CPython. Dictionary values and counters live
//! under the type lock. The entry is a seqlock: see [`Thread::fill`] and
//! `cache_read` for the edges.

use cpyrt_spec::type_version::{Config as SpecConfig, Event, MAX_TAG, mro};

use crate::primitive::sync::atomic::{AtomicU32, Ordering};
use crate::primitive::sync::{Arc, Mutex, lock};
use crate::primitive::thread::yield_now;
use crate::trace::Recorder;

/// The runtime's bounds, hierarchy and design: the spec's configuration,
/// plus whether to record.
#[derive(Clone, Debug)]
pub struct Config {
    pub spec: SpecConfig,
    /// Record spec events.
    pub trace: bool,
}

/// One type object.
#[derive(Debug)]
struct TypeObj {
    /// `tp_version_tag`; 0 is no valid tag.
    tag: AtomicU32,
    /// `tp_bases`.
    bases: Vec<u8>,
    /// `tp_subclasses`, in index order.
    subclasses: Vec<u8>,
    /// `tp_mro`.
    mro: Vec<u8>,
    /// `Py_TPFLAGS_IMMUTABLETYPE`.
    immutable: bool,
    /// The interpreter of a heap type.
    interp: u8,
}

/// What the type lock guards.
#[derive(Debug)]
struct Locked {
    /// `interp->types.next_version_tag`, per interpreter.
    interp_next: Vec<u32>,
    /// `tp_versions_used`, per type.
    versions_used: Vec<u8>,
    /// The attribute in each type's own dictionary; 0 when absent.
    values: Vec<u8>,
    /// Modifications so far.
    modifications: u8,
}

/// One method-cache entry (`struct type_cache_entry`, one name).
#[derive(Debug)]
struct Entry {
    /// `_PySeqLock`: odd while a fill writes.
    sequence: AtomicU32,
    version: AtomicU32,
    value: AtomicU32,
}

/// The runtime: types, counters, the type lock, per-interpreter caches.
#[derive(Debug)]
pub struct Runtime {
    cfg: SpecConfig,
    types: Vec<TypeObj>,
    /// `_PyRuntime.types.next_version_tag`: the last global tag handed out.
    global_next: AtomicU32,
    /// `TYPE_LOCK`.
    locked: Mutex<Locked>,
    /// `interp->types.type_cache`, per interpreter.
    caches: Vec<Vec<Entry>>,
    /// The shared reference count of the attribute objects a lookup
    /// returns (`ob_ref_shared`): every answer takes a reference and its
    /// caller drops it, as `_PyType_Lookup` does around
    /// `_PyType_LookupRef`.
    refs: AtomicU32,
    /// Ghost: per range (0 global, 1 + i interpreter i) and tag, the MRO
    /// value of the tag's holder plus one (0: never handed out).
    ghost: Vec<Vec<AtomicU32>>,
    trace: Recorder<Event>,
}

/// The outcome of one lock-free read of a cache entry.
enum Read {
    Hit {
        tag: u32,
        value: u8,
    },
    Miss,
    /// A fill was in progress: read again.
    Retry,
}

impl Runtime {
    /// The runtime for `cfg`, every type untagged and every cache empty;
    /// an error names what is wrong with the configuration.
    pub fn new(cfg: Config) -> Result<Arc<Runtime>, String> {
        let spec = cfg.spec;
        spec.validate()?;
        let types = spec
            .types
            .iter()
            .enumerate()
            .map(|(i, d)| TypeObj {
                tag: AtomicU32::new(0),
                bases: d.bases.clone(),
                subclasses: (0..spec.types.len())
                    .filter(|&s| spec.types[s].bases.contains(&(i as u8)))
                    .map(|s| s as u8)
                    .collect(),
                mro: mro(&spec, i).expect("validated"),
                immutable: d.immutable,
                interp: d.interp,
            })
            .collect();
        let interps = spec.interps as usize;
        // Tags the ghost table must hold: every heap tag, and every global
        // tag the immutable types can take (past the bound in the broken
        // design).
        let immutable = spec.types.iter().filter(|d| d.immutable).count() as u32;
        let tags = spec
            .interp_last
            .max(spec.global_max + immutable * spec.max_versions_per_class as u32)
            .min(MAX_TAG - 1)
            + 1;
        let rt = Runtime {
            types,
            global_next: AtomicU32::new(0),
            refs: AtomicU32::new(0),
            locked: Mutex::new(Locked {
                interp_next: vec![spec.global_max + 1; interps],
                versions_used: vec![0; spec.types.len()],
                values: vec![0; spec.types.len()],
                modifications: 0,
            }),
            caches: (0..interps)
                .map(|_| {
                    (0..spec.cache_entries)
                        .map(|_| Entry {
                            sequence: AtomicU32::new(0),
                            version: AtomicU32::new(0),
                            value: AtomicU32::new(0),
                        })
                        .collect()
                })
                .collect(),
            ghost: (0..=interps)
                .map(|_| (0..tags).map(|_| AtomicU32::new(0)).collect())
                .collect(),
            trace: Recorder::new(cfg.trace),
            cfg: spec,
        };
        Ok(Arc::new(rt))
    }

    /// The spec configuration a trace of this runtime replays under.
    pub fn spec(&self) -> &SpecConfig {
        &self.cfg
    }

    /// The events recorded so far.
    pub fn trace(&self) -> Vec<Event> {
        self.trace.take()
    }

    /// A type's current tag (`tp_version_tag`).
    pub fn tag(&self, ty: u8) -> u32 {
        self.types[ty as usize].tag.load(Ordering::Relaxed)
    }

    fn range(&self, ty: usize) -> usize {
        let t = &self.types[ty];
        if t.immutable {
            0
        } else {
            1 + t.interp as usize
        }
    }

    /// `find_name_in_mro`, type lock held.
    fn find_in_mro(&self, locked: &Locked, ty: usize) -> u8 {
        self.types[ty]
            .mro
            .iter()
            .map(|&t| locked.values[t as usize])
            .find(|&v| v != 0)
            .unwrap_or(0)
    }

    /// `next_global_version_tag`: 0 when the global range is spent.
    fn next_global_version_tag(&self) -> u32 {
        let mut old = self.global_next.load(Ordering::Relaxed);
        loop {
            if self.cfg.design.global_bound_checked && old >= self.cfg.global_max {
                return 0;
            }
            // Relaxed: the tag is published under the type lock; the
            // counter only has to hand each value out once, which the RMW
            // guarantees.
            match self.global_next.compare_exchange(
                old,
                old + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return old + 1,
                Err(seen) => old = seen,
            }
        }
    }

    /// `assign_version_tag`, type lock held: true when `ty` ends up tagged.
    fn assign_version_tag(&self, locked: &mut Locked, ty: usize) -> bool {
        let t = &self.types[ty];
        if t.tag.load(Ordering::Relaxed) != 0 {
            return true;
        }
        if locked.versions_used[ty] >= self.cfg.max_versions_per_class {
            return false;
        }
        if self.cfg.design.bases_first {
            for &b in &t.bases {
                if !self.assign_version_tag(locked, b as usize) {
                    return false;
                }
            }
        }
        let tag = if t.immutable {
            let tag = self.next_global_version_tag();
            if tag == 0 {
                return false;
            }
            tag
        } else {
            let i = t.interp as usize;
            let next = locked.interp_next[i];
            if next == 0 {
                return false;
            }
            // NEXT_VERSION_TAG(interp)++: past the last tag the counter
            // wraps to 0 and stays there (the broken design restarts at
            // the bottom of the range).
            locked.interp_next[i] = if next >= self.cfg.interp_last {
                if self.cfg.design.interp_counter_saturates {
                    0
                } else {
                    self.cfg.global_max + 1
                }
            } else {
                next + 1
            };
            next
        };
        assert!(
            (tag as usize) < self.ghost[0].len(),
            "tag {tag} is beyond the reference's bound {}",
            self.ghost[0].len()
        );
        let value = self.find_in_mro(locked, ty);
        // Ghost, before the tag is published: what the tag means.
        self.ghost[self.range(ty)][tag as usize].store(value as u32 + 1, Ordering::Relaxed);
        // set_version_unlocked.
        locked.versions_used[ty] += 1;
        t.tag.store(tag, Ordering::Relaxed);
        true
    }

    /// `type_modified_unlocked`, type lock held: stops at a type without a
    /// tag; otherwise invalidates the subclasses, then the type.
    fn type_modified_unlocked(&self, ty: usize) {
        let t = &self.types[ty];
        if t.tag.load(Ordering::Relaxed) == 0 {
            return;
        }
        for &sub in &t.subclasses {
            self.type_modified_unlocked(sub as usize);
        }
        t.tag.store(0, Ordering::Relaxed);
    }

    /// Ghost, type lock held, after a dictionary write: every tag still
    /// held now means what the holder's MRO gives.
    fn refresh_ghost(&self, locked: &Locked) {
        for ty in 0..self.types.len() {
            let tag = self.types[ty].tag.load(Ordering::Relaxed);
            if tag == 0 {
                continue;
            }
            let want = self.find_in_mro(locked, ty) as u32 + 1;
            let cell = &self.ghost[self.range(ty)][tag as usize];
            if cell.load(Ordering::Relaxed) != want {
                cell.store(want, Ordering::Relaxed);
            }
        }
    }

    /// The lock-free read of `_PyType_LookupStackRefAndVersion`.
    fn cache_read(&self, interp: usize, ty: usize) -> Read {
        let t = &self.types[ty];
        // MCACHE_HASH_METHOD's relaxed load picks the entry.
        let first = t.tag.load(Ordering::Relaxed);
        if first == 0 {
            return Read::Miss;
        }
        let entry = &self.caches[interp][first as usize % self.caches[interp].len()];
        // _PySeqLock_BeginRead: Acquire pairs with the Release store that
        // ended the last fill, so the entry's fields are at least that
        // fill's.
        let seq = entry.sequence.load(Ordering::Acquire);
        if seq & 1 == 1 {
            return Read::Retry;
        }
        let version = entry.version.load(Ordering::Acquire);
        let tag = t.tag.load(Ordering::Acquire);
        if tag == 0 || version != tag {
            return Read::Miss;
        }
        // Acquire: if this reads a fill that began after `seq`, that fill's
        // odd sequence store happens before the check below, which then
        // fails.
        let value = entry.value.load(Ordering::Acquire);
        // _Py_TryIncref on the value found (Relaxed: a count, no data).
        self.refs.fetch_add(1, Ordering::Relaxed);
        // _PySeqLock_EndRead.
        if entry.sequence.load(Ordering::Relaxed) != seq {
            self.refs.fetch_sub(1, Ordering::Relaxed);
            return Read::Retry;
        }
        Read::Hit {
            tag,
            value: value as u8,
        }
    }

    /// Ghost check of a lock-free answer: `value`, returned for `ty`
    /// under `tag`, is what the tag means.
    fn check_coherent(&self, thread: usize, ty: usize, tag: u32, value: u8, path: &str) {
        let want = self.ghost[self.range(ty)][tag as usize].load(Ordering::Relaxed);
        assert!(
            want == value as u32 + 1,
            "method_cache_coherent: thread {thread}'s {path} on type {} returned {value} under tag {tag}, but a walk of its MRO gives {}",
            self.cfg.types[ty].name,
            want as i64 - 1
        );
    }
}

/// One instruction of a scripted thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `_PyType_LookupRef` on a type ([`Thread::lookup`]).
    Lookup(u8),
    /// A `LOAD_ATTR` site on a type: the guard when specialized, else the
    /// generic lookup and specialization ([`Thread::load_attr`]).
    LoadAttr(u8),
    /// `type_setattro` on a heap type ([`Thread::modify`]).
    Modify(u8),
}

/// What [`Thread::start_lookup`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// The method cache answered without the type lock.
    Hit { tag: u32, value: u8 },
    /// The slow path walked the MRO; `tag` is 0 when the type could not be
    /// tagged. A fill is pending when it is not.
    Walked { tag: u32, value: u8 },
}

/// One thread of an interpreter: its pending fill and its `LOAD_ATTR`
/// sites (one per type).
#[derive(Debug)]
pub struct Thread {
    rt: Arc<Runtime>,
    id: usize,
    interp: usize,
    /// A fill due after the slow path: type, tag, value.
    pending: Option<(u8, u32, u8)>,
    /// Each site's inline cache: `type_version` and the cached attribute.
    sites: Vec<Option<(u32, u8)>>,
}

/// The handle of thread `id` of `rt` (each id once).
pub fn thread(rt: &Arc<Runtime>, id: usize) -> Thread {
    assert!(id < rt.cfg.threads, "thread {id} out of range");
    Thread {
        rt: Arc::clone(rt),
        id,
        interp: rt.cfg.interp_of(id) as usize,
        pending: None,
        sites: vec![None; rt.types.len()],
    }
}

impl Thread {
    fn tid(&self) -> u8 {
        self.id as u8
    }

    fn check_visible(&self, ty: u8) {
        let t = &self.rt.types[ty as usize];
        assert!(
            t.immutable || t.interp as usize == self.interp,
            "thread {} (interpreter {}) cannot see type {ty}",
            self.id,
            self.interp
        );
    }

    /// Runs `ops` in order.
    pub fn run(&mut self, ops: &[Op]) {
        for &op in ops {
            match op {
                Op::Lookup(ty) => {
                    self.lookup(ty);
                }
                Op::LoadAttr(ty) => {
                    self.load_attr(ty);
                }
                Op::Modify(ty) => self.modify(ty),
            }
        }
    }

    /// `_PyType_LookupRef`: the value the attribute has on `ty`, and the tag
    /// it was found under (0: none).
    pub fn lookup(&mut self, ty: u8) -> (u8, u32) {
        let found = self.start_lookup(ty);
        // The caller's Py_DECREF of the reference the lookup returned.
        self.rt.refs.fetch_sub(1, Ordering::Relaxed);
        match found {
            Found::Hit { tag, value } => (value, tag),
            Found::Walked { tag, value } => {
                if tag != 0 {
                    self.fill();
                }
                (value, tag)
            }
        }
    }

    /// The lookup up to the lock release: the lock-free read, and on a
    /// miss the walk under the type lock. When the walk tagged the type, a
    /// [`Thread::fill`] is due before the thread's next lookup.
    pub fn start_lookup(&mut self, ty: u8) -> Found {
        assert!(self.pending.is_none(), "a fill is due first");
        self.check_visible(ty);
        let rt = &*self.rt;
        let t = ty as usize;
        let thread = self.tid();
        loop {
            let read = rt.trace.step(|e| {
                let read = rt.cache_read(self.interp, t);
                if let Read::Hit { value, .. } = read {
                    e.emit(Event::Hit { thread, ty, value });
                }
                read
            });
            match read {
                Read::Hit { tag, value } => {
                    rt.check_coherent(self.id, t, tag, value, "method-cache hit");
                    return Found::Hit { tag, value };
                }
                Read::Miss => break,
                Read::Retry => yield_now(),
            }
        }
        // BEGIN_TYPE_LOCK.
        let mut locked = lock(&rt.locked);
        let found = rt.trace.step(|e| {
            // The reference's second look at the entry (module doc).
            loop {
                match rt.cache_read(self.interp, t) {
                    Read::Hit { tag, value } => {
                        e.emit(Event::Hit { thread, ty, value });
                        return Found::Hit { tag, value };
                    }
                    Read::Miss => break,
                    // Only without tracing: every fill is inside a step.
                    Read::Retry => yield_now(),
                }
            }
            let value = rt.find_in_mro(&locked, t);
            // find_name_in_mro returns a new reference.
            rt.refs.fetch_add(1, Ordering::Relaxed);
            let tag = if rt.assign_version_tag(&mut locked, t) {
                rt.types[t].tag.load(Ordering::Relaxed)
            } else {
                0
            };
            e.emit(Event::Lookup {
                thread,
                ty,
                tag,
                value,
            });
            Found::Walked { tag, value }
        });
        drop(locked);
        match found {
            Found::Hit { tag, value } => {
                rt.check_coherent(self.id, t, tag, value, "method-cache hit");
            }
            Found::Walked { tag, value } if tag != 0 => self.pending = Some((ty, tag, value)),
            Found::Walked { .. } => {}
        }
        found
    }

    /// `update_cache_gil_disabled`: the pending fill, under the entry's
    /// seqlock, after the type lock was released.
    ///
    /// The odd sequence is taken by a compare-and-swap; the version and
    /// value are `Release` stores, so a reader that loads either
    /// (`Acquire`) also sees the odd sequence and retries; the final
    /// `Release` store of the even sequence publishes both to readers that
    /// begin after it.
    pub fn fill(&mut self) {
        let (_, version, value) = self.pending.take().expect("no fill is due");
        let rt = &*self.rt;
        let entries = &rt.caches[self.interp];
        let entry = &entries[version as usize % entries.len()];
        rt.trace.step(|e| {
            // _PySeqLock_LockWrite. With tracing on, every fill runs
            // inside a step, so the sequence is even here.
            let seq = loop {
                let s = entry.sequence.load(Ordering::Relaxed);
                if s & 1 == 0
                    && entry
                        .sequence
                        .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    break s;
                }
                yield_now();
            };
            if entry.version.load(Ordering::Relaxed) == version
                && entry.value.load(Ordering::Relaxed) == value as u32
            {
                // _PySeqLock_AbandonWrite: another fill wrote the same.
                entry.sequence.store(seq, Ordering::Release);
            } else {
                entry.value.store(value as u32, Ordering::Release);
                entry.version.store(version, Ordering::Release);
                // _PySeqLock_UnlockWrite.
                entry.sequence.store(seq + 2, Ordering::Release);
            }
            e.emit(Event::Fill { thread: self.tid() });
        });
    }

    /// One execution of this thread's `LOAD_ATTR` site for `ty`: when
    /// specialized, `_GUARD_TYPE_VERSION` compares the cached tag with the
    /// type's without a lock and returns the cached attribute; otherwise
    /// (or when the guard fails, which deoptimizes) the generic lookup
    /// runs and specializes the site if the type had a tag. Returns the
    /// value and whether the guard passed.
    pub fn load_attr(&mut self, ty: u8) -> (u8, bool) {
        self.check_visible(ty);
        let t = ty as usize;
        if let Some((version, value)) = self.sites[t] {
            // FT_ATOMIC_LOAD_UINT_RELAXED(tp->tp_version_tag).
            if self.rt.types[t].tag.load(Ordering::Relaxed) == version {
                self.rt
                    .check_coherent(self.id, t, version, value, "LOAD_ATTR guard");
                return (value, true);
            }
            self.sites[t] = None;
        }
        let (value, tag) = self.lookup(ty);
        if tag != 0 {
            self.sites[t] = Some((tag, value));
        }
        (value, false)
    }

    /// `type_setattro` on heap type `ty`: under the type lock,
    /// `type_modified_unlocked` and then the dictionary write.
    pub fn modify(&mut self, ty: u8) {
        assert!(self.pending.is_none(), "a fill is due first");
        self.check_visible(ty);
        let rt = &*self.rt;
        let t = ty as usize;
        assert!(
            !rt.types[t].immutable,
            "type_setattro refuses immutable type {ty}"
        );
        let mut locked = lock(&rt.locked);
        assert!(
            locked.modifications < rt.cfg.max_modifications,
            "the configuration allows {} modifications",
            rt.cfg.max_modifications
        );
        rt.trace.step(|e| {
            rt.type_modified_unlocked(t);
            let value = locked.modifications + 1;
            locked.modifications = value;
            locked.values[t] = value;
            rt.refresh_ghost(&locked);
            e.emit(Event::Modify {
                thread: self.tid(),
                ty,
                value,
            });
        });
    }

    /// The lookup without version tags: `find_name_in_mro` under the type
    /// lock, every time (what CPython does for a type that cannot be
    /// tagged). Records nothing.
    pub fn lookup_unversioned(&self, ty: u8) -> u8 {
        self.check_visible(ty);
        let locked = lock(&self.rt.locked);
        self.rt.find_in_mro(&locked, ty as usize)
    }
}
