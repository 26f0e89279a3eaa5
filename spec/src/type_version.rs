//! Type version tags and the method cache they key.
//!
//! # Protocol
//! Follows `Objects/typeobject.c` (`next_global_version_tag`,
//! `assign_version_tag`, `set_version_unlocked`, `type_modified_unlocked`,
//! `PyType_Modified`, `_PyType_LookupRef` / `_PyType_Lookup` with
//! `find_name_in_mro` and `update_cache`) and
//! `Include/internal/pycore_typeobject.h` (`_Py_MAX_GLOBAL_TYPE_VERSION_TAG`,
//! `NEXT_VERSION_TAG`), as of CPython 3.13/3.14 (gh-95795 / PR 102343 split
//! the ranges; GH-119462 / PR 120731 enforced the invariants). The prose
//! version is `spec/type_version.md`.
//!
//! A type's `tp_version_tag` is 0 (no valid tag) or a tag that names the
//! type's current attributes. Immutable types (static types and heap types
//! with `Py_TPFLAGS_IMMUTABLETYPE`) take tags from the runtime-wide counter,
//! which refuses to go past `_Py_MAX_GLOBAL_TYPE_VERSION_TAG`. Other heap
//! types take tags from their interpreter's counter, which starts just above
//! the global range and, once it wraps to 0, stays there. Assignment tags
//! the bases first and fails if any of them cannot be tagged, so a
//! subclass never has a tag unless all its bases do; it also fails for a
//! class that was re-tagged `MAX_VERSIONS_PER_CLASS` times. A modification
//! clears the tag of the type and, recursively, of every subclass that has
//! one (`type_modified_unlocked` stops at a type without a tag, which is
//! why the bases-first rule matters). Tags are never reused, so a method
//! cache entry left behind with an old tag can never match again.
//!
//! The method cache (per interpreter) maps `(tag, name)` to the value found
//! in the MRO. A lookup first tries the cache without locks; on a miss it
//! takes the type lock, walks the MRO, assigns a tag, releases the lock and
//! then fills the cache entry with the tag it saw. A modification between
//! the walk and the fill leaves an entry under a tag no type has any more.
//!
//! # Abstraction
//! Each event is one atomic step under sequential consistency. A section
//! under the type lock is one event; the cache fill (a seqlock write in
//! the free-threaded build) and the lock-free hit (a seqlock read) are one
//! event each.
//!
//! - One attribute name. A type's own dictionary either lacks it (value 0)
//!   or maps it to a value; a modification stores a fresh value (the
//!   sequence number of the modification). The MRO is the C3
//!   linearization of the configured bases.
//! - A cache entry's index is `tag % cache_entries` (CPython hashes the tag
//!   with the name; with one name this is the same up to renaming slots).
//!   A hit compares the entry's tag with the type's current tag.
//! - Only mutable heap types are modified (`type_setattro` refuses
//!   immutable types); immutable types keep the tag they are first given.
//! - Threads belong to interpreter `thread % interps` and look up immutable
//!   types and their own interpreter's heap types. Every type-lock section
//!   is atomic across interpreters, which serializes more than CPython's
//!   per-interpreter lock does; no property here depends on two
//!   interpreters' sections overlapping.
//! - Omitted: the fixed tags of hot builtins (`int` 1, `float` 2, ...), the
//!   version-to-type cache of tier 2, type watchers, `Py_TPFLAGS_READY`,
//!   custom MROs (`type_mro_modified`), and cache entries for names that
//!   are not cacheable.
//!
//! # Properties
//! See [`INVARIANTS`], [`TRANSITION_INVARIANTS`] and [`SOMETIMES`]; each
//! carries its one-sentence statement.
//!
//! # Limits
//! Bounds are [`Config`] fields: threads (1 to [`MAX_THREADS`]), the type
//! hierarchy (up to [`MAX_TYPES`] types), the two ranges' sizes, the
//! per-class limit, the modifications and the cache size. Tags stay below
//! [`MAX_TAG`].

use serde::{Deserialize, Serialize};

use crate::{Invariant, Rejection, Spec, TransitionInvariant};

/// `_Py_MAX_GLOBAL_TYPE_VERSION_TAG` in CPython 3.13/3.14.
pub const CPYTHON_MAX_GLOBAL_TAG: u32 = (2 << 16) - 1;
/// `MAX_VERSIONS_PER_CLASS` in CPython 3.13/3.14.
pub const CPYTHON_MAX_VERSIONS_PER_CLASS: u16 = 1000;

/// Largest thread count a configuration may use.
pub const MAX_THREADS: usize = 3;
/// Largest number of types.
pub const MAX_TYPES: usize = 6;
/// Tags are recorded in a 64-bit set, so they stay below 64.
pub const MAX_TAG: u32 = 64;

/// One type of the configured hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeDef {
    /// A short name for counterexamples.
    pub name: String,
    /// `tp_bases`, as indices of earlier types.
    pub bases: Vec<u8>,
    /// `Py_TPFLAGS_IMMUTABLETYPE`: tagged from the global range, never
    /// modified.
    pub immutable: bool,
    /// The interpreter of a heap type (immutable types are visible to all).
    pub interp: u8,
}

/// Design switches. [`Design::CPYTHON`] is the shipped design; each other
/// setting is a broken design, and the models pin its counterexample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Design {
    /// `assign_version_tag` tags every base before the type. Off: the type
    /// is tagged on its own.
    pub bases_first: bool,
    /// The per-interpreter counter stays 0 once it wraps. Off: it restarts
    /// at the bottom of its range and hands tags out again.
    pub interp_counter_saturates: bool,
    /// `next_global_version_tag` refuses to pass
    /// `_Py_MAX_GLOBAL_TYPE_VERSION_TAG`. Off: global tags run on into the
    /// per-interpreter range.
    pub global_bound_checked: bool,
}

impl Design {
    /// The design as CPython 3.13/3.14 ships it.
    pub const CPYTHON: Design = Design {
        bases_first: true,
        interp_counter_saturates: true,
        global_bound_checked: true,
    };
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Number of threads (1 to [`MAX_THREADS`]).
    pub threads: usize,
    /// Interpreters; thread `t` runs in interpreter `t % interps`.
    pub interps: u8,
    pub types: Vec<TypeDef>,
    /// `_Py_MAX_GLOBAL_TYPE_VERSION_TAG`: global tags are 1 to this.
    pub global_max: u32,
    /// The last tag a per-interpreter counter hands out before it wraps to
    /// 0 (CPython: `u32::MAX`). Per-interpreter tags start at
    /// `global_max + 1`.
    pub interp_last: u32,
    /// `MAX_VERSIONS_PER_CLASS`.
    pub max_versions_per_class: u8,
    /// Modifications in total.
    pub max_modifications: u8,
    /// Entries of each interpreter's method cache.
    pub cache_entries: u8,
    pub design: Design,
}

impl Config {
    /// Checks the bounds and the hierarchy; the error names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(format!(
                "threads must be between 1 and {MAX_THREADS}, got {}",
                self.threads
            ));
        }
        if self.interps == 0 {
            return Err("interps must be at least 1".into());
        }
        if self.types.is_empty() || self.types.len() > MAX_TYPES {
            return Err(format!(
                "between 1 and {MAX_TYPES} types, got {}",
                self.types.len()
            ));
        }
        for (i, t) in self.types.iter().enumerate() {
            if t.bases.iter().any(|&b| b as usize >= i) {
                return Err(format!(
                    "type {} has a base that is not an earlier type",
                    t.name
                ));
            }
            if t.interp >= self.interps {
                return Err(format!("type {} is in interpreter {}", t.name, t.interp));
            }
            if mro(self, i).is_none() {
                return Err(format!("type {} has no consistent MRO", t.name));
            }
        }
        if self.interp_last <= self.global_max || self.interp_last >= MAX_TAG {
            return Err(format!(
                "interp_last must be above global_max ({}) and below {MAX_TAG}",
                self.global_max
            ));
        }
        if self.cache_entries == 0 {
            return Err("cache_entries must be at least 1".into());
        }
        Ok(())
    }

    /// The interpreter thread `t` runs in.
    pub fn interp_of(&self, t: usize) -> u8 {
        (t % self.interps as usize) as u8
    }

    fn visible(&self, t: usize, ty: usize) -> bool {
        let d = &self.types[ty];
        d.immutable || d.interp == self.interp_of(t)
    }
}

/// The C3 linearization of type `ty` (`mro_implementation`), or `None` when
/// the bases admit none.
pub fn mro(cfg: &Config, ty: usize) -> Option<Vec<u8>> {
    let bases = &cfg.types[ty].bases;
    let mut seqs: Vec<Vec<u8>> = Vec::new();
    for &b in bases {
        seqs.push(mro(cfg, b as usize)?);
    }
    seqs.push(bases.clone());
    let mut out = vec![ty as u8];
    loop {
        seqs.retain(|s| !s.is_empty());
        if seqs.is_empty() {
            return Some(out);
        }
        let head = seqs
            .iter()
            .map(|s| s[0])
            .find(|&h| seqs.iter().all(|s| !s[1..].contains(&h)))?;
        out.push(head);
        for s in seqs.iter_mut() {
            if s[0] == head {
                s.remove(0);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeState {
    /// `tp_version_tag`; 0 is no valid tag.
    pub tag: u32,
    /// `tp_versions_used`.
    pub versions_used: u8,
    /// The attribute in the type's own dictionary; 0 when absent.
    pub value: u8,
    /// Constant: the bases as a bit set (from the configuration), so the
    /// invariants can be stated on the state alone.
    pub bases: u8,
    /// Constant: `Py_TPFLAGS_IMMUTABLETYPE`.
    pub immutable: bool,
    /// Constant: the interpreter of a heap type.
    pub interp: u8,
}

/// Which counter a type's tags come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Global,
    Interp(u8),
}

/// One method-cache entry: `version` and the value found (the name is the
/// model's only name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    pub version: u32,
    pub value: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Pc {
    Idle,
    /// Released the type lock after a lookup that saw `version` and
    /// `value`; fills the cache next.
    Filling {
        ty: u8,
        version: u32,
        value: u8,
    },
}

/// Sticky observations for the reachability goals.
pub mod seen {
    /// A lock-free cache hit happened.
    pub const HIT: u8 = 1;
    /// A fill wrote an entry under a tag no type holds any more.
    pub const STALE_FILL: u8 = 2;
    /// A class was refused a tag for having used `MAX_VERSIONS_PER_CLASS`.
    pub const CLASS_LIMIT: u8 = 4;
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    /// Constant: `_Py_MAX_GLOBAL_TYPE_VERSION_TAG` (from the configuration).
    pub global_max: u32,
    /// `_PyRuntime.types.next_version_tag`: the last global tag handed out.
    pub global_next: u32,
    /// `interp->types.next_version_tag`, per interpreter: the next tag.
    pub interp_next: Vec<u32>,
    pub types: Vec<TypeState>,
    /// Each interpreter's method cache.
    pub caches: Vec<Vec<Entry>>,
    pub threads: Vec<Pc>,
    /// Global tags ever handed out (bit `tag`).
    pub issued_global: u64,
    /// Per interpreter: heap tags ever handed out.
    pub issued_interp: Vec<u64>,
    pub modifications: u8,
    /// Set when a lock-free hit returned a value other than the MRO's.
    pub stale_hit: bool,
    /// Set when a counter handed out a tag already handed out in its range.
    pub reused_tag: bool,
    /// [`seen`] bits.
    pub seen: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    /// The slow path of `_PyType_LookupRef` under the type lock:
    /// `find_name_in_mro` found `value`; `assign_version_tag` left the type
    /// with `tag` (0: it could not be tagged, so nothing is cached).
    Lookup {
        thread: u8,
        ty: u8,
        tag: u32,
        value: u8,
    },
    /// `update_cache` after the lock is released.
    Fill { thread: u8 },
    /// The lock-free fast path: the entry's version equals the type's tag.
    Hit { thread: u8, ty: u8, value: u8 },
    /// `type_setattro` under the type lock: `type_modified_unlocked`, then
    /// the dictionary takes `value`.
    Modify { thread: u8, ty: u8, value: u8 },
}

impl Event {
    pub fn thread(&self) -> u8 {
        match *self {
            Event::Lookup { thread, .. }
            | Event::Fill { thread }
            | Event::Hit { thread, .. }
            | Event::Modify { thread, .. } => thread,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Event::Lookup { .. } => "Lookup",
            Event::Fill { .. } => "Fill",
            Event::Hit { .. } => "Hit",
            Event::Modify { .. } => "Modify",
        }
    }
}

/// Every event kind, in declaration order.
pub const EVENT_KINDS: &[&str] = &["Lookup", "Fill", "Hit", "Modify"];

impl State {
    /// The range a type's tags come from.
    pub fn range_of(&self, t: &TypeState) -> Range {
        if t.immutable {
            Range::Global
        } else {
            Range::Interp(t.interp)
        }
    }

    /// The tags ever handed out in a range.
    pub fn issued(&self, r: Range) -> u64 {
        match r {
            Range::Global => self.issued_global,
            Range::Interp(i) => self.issued_interp[i as usize],
        }
    }

    /// `find_name_in_mro`: the value of the first type in the MRO whose
    /// dictionary has the name.
    pub fn lookup_value(&self, cfg: &Config, ty: usize) -> u8 {
        mro(cfg, ty)
            .unwrap_or_default()
            .iter()
            .map(|&t| self.types[t as usize].value)
            .find(|&v| v != 0)
            .unwrap_or(0)
    }

    fn entry_index(cfg: &Config, tag: u32) -> usize {
        (tag % cfg.cache_entries as u32) as usize
    }

    /// The entry a hit on `ty` by thread `t` would return, if it matches.
    pub fn hit(&self, cfg: &Config, t: usize, ty: usize) -> Option<u8> {
        let tag = self.types[ty].tag;
        let entry = self.caches[cfg.interp_of(t) as usize][Self::entry_index(cfg, tag)];
        (tag != 0 && entry.version == tag).then_some(entry.value)
    }

    /// `assign_version_tag`: true when the type ends up tagged.
    fn assign(&mut self, cfg: &Config, ty: usize) -> Result<bool, Rejection> {
        if self.types[ty].tag != 0 {
            return Ok(true);
        }
        if self.types[ty].versions_used >= cfg.max_versions_per_class {
            self.seen |= seen::CLASS_LIMIT;
            return Ok(false);
        }
        if cfg.design.bases_first {
            for &b in &cfg.types[ty].bases {
                if !self.assign(cfg, b as usize)? {
                    return Ok(false);
                }
            }
        }
        let def = &cfg.types[ty];
        let tag = if def.immutable {
            // next_global_version_tag: a CAS loop that returns old + 1.
            if cfg.design.global_bound_checked && self.global_next >= cfg.global_max {
                return Ok(false);
            }
            self.global_next += 1;
            self.global_next
        } else {
            let i = def.interp as usize;
            let next = self.interp_next[i];
            if next == 0 {
                return Ok(false);
            }
            self.interp_next[i] = if next >= cfg.interp_last {
                if cfg.design.interp_counter_saturates {
                    0
                } else {
                    cfg.global_max + 1
                }
            } else {
                next + 1
            };
            next
        };
        if tag >= MAX_TAG {
            return Err(Rejection::new(format!(
                "tag {tag} is beyond the model's bound {MAX_TAG}"
            )));
        }
        let issued = if def.immutable {
            &mut self.issued_global
        } else {
            &mut self.issued_interp[def.interp as usize]
        };
        if *issued & (1 << tag) != 0 {
            self.reused_tag = true;
        }
        *issued |= 1 << tag;
        // set_version_unlocked.
        self.types[ty].tag = tag;
        self.types[ty].versions_used += 1;
        Ok(true)
    }

    /// `type_modified_unlocked`: stops at a type without a tag.
    fn modified(&mut self, cfg: &Config, ty: usize) {
        if self.types[ty].tag == 0 {
            return;
        }
        for sub in 0..cfg.types.len() {
            if cfg.types[sub].bases.contains(&(ty as u8)) {
                self.modified(cfg, sub);
            }
        }
        self.types[ty].tag = 0;
    }

    /// The result of the slow path on `ty`: the next state, the tag and the
    /// value.
    pub fn slow_lookup(&self, cfg: &Config, ty: usize) -> Result<(State, u32, u8), Rejection> {
        let mut n = self.clone();
        let value = self.lookup_value(cfg, ty);
        let tag = if n.assign(cfg, ty)? {
            n.types[ty].tag
        } else {
            0
        };
        Ok((n, tag, value))
    }
}

pub struct TypeVersion;

fn reject<T>(reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(reason))
}

impl Spec for TypeVersion {
    type Config = Config;
    type State = State;
    type Event = Event;
    const NAME: &'static str = "type-version";

    fn init(cfg: &Config) -> State {
        let interps = cfg.interps as usize;
        State {
            global_max: cfg.global_max,
            global_next: 0,
            interp_next: vec![cfg.global_max + 1; interps],
            types: cfg
                .types
                .iter()
                .map(|d| TypeState {
                    tag: 0,
                    versions_used: 0,
                    value: 0,
                    bases: d.bases.iter().fold(0, |m, &b| m | (1 << b)),
                    immutable: d.immutable,
                    interp: d.interp,
                })
                .collect(),
            caches: vec![vec![Entry::default(); cfg.cache_entries as usize]; interps],
            threads: vec![Pc::Idle; cfg.threads],
            issued_global: 0,
            issued_interp: vec![0; interps],
            modifications: 0,
            stale_hit: false,
            reused_tag: false,
            seen: 0,
        }
    }

    fn enabled(cfg: &Config, s: &State, out: &mut Vec<Event>) {
        for (t, pc) in s.threads.iter().enumerate() {
            let thread = t as u8;
            if let Pc::Filling { .. } = pc {
                out.push(Event::Fill { thread });
                continue;
            }
            for ty in 0..cfg.types.len() {
                if !cfg.visible(t, ty) {
                    continue;
                }
                let id = ty as u8;
                match s.hit(cfg, t, ty) {
                    Some(value) => out.push(Event::Hit {
                        thread,
                        ty: id,
                        value,
                    }),
                    None => {
                        if let Ok((_, tag, value)) = s.slow_lookup(cfg, ty) {
                            out.push(Event::Lookup {
                                thread,
                                ty: id,
                                tag,
                                value,
                            });
                        }
                    }
                }
                if !cfg.types[ty].immutable && s.modifications < cfg.max_modifications {
                    out.push(Event::Modify {
                        thread,
                        ty: id,
                        value: s.modifications + 1,
                    });
                }
            }
        }
    }

    fn step(cfg: &Config, s: &State, event: &Event) -> Result<State, Rejection> {
        let t = event.thread() as usize;
        if t >= s.threads.len() {
            return reject(format!(
                "no thread {t} in a {}-thread configuration",
                s.threads.len()
            ));
        }
        let idle = s.threads[t] == Pc::Idle;
        let visible = |ty: u8| (ty as usize) < cfg.types.len() && cfg.visible(t, ty as usize);
        match *event {
            Event::Lookup { ty, tag, value, .. } => {
                if !idle || !visible(ty) {
                    return reject("a lookup starts idle, on a type its interpreter sees");
                }
                if s.hit(cfg, t, ty as usize).is_some() {
                    return reject("the fast path hits: no slow lookup");
                }
                let (mut n, t_tag, t_value) = s.slow_lookup(cfg, ty as usize)?;
                if (tag, value) != (t_tag, t_value) {
                    return reject(format!(
                        "lookup gave tag {tag} value {value}, spec computes tag {t_tag} value {t_value}"
                    ));
                }
                if tag != 0 {
                    n.threads[t] = Pc::Filling {
                        ty,
                        version: tag,
                        value,
                    };
                }
                Ok(n)
            }
            Event::Fill { .. } => {
                let Pc::Filling { version, value, .. } = s.threads[t] else {
                    return reject("no cache fill pending");
                };
                let mut n = s.clone();
                let interp = cfg.interp_of(t) as usize;
                n.caches[interp][State::entry_index(cfg, version)] = Entry { version, value };
                if !s.types.iter().any(|ty| ty.tag == version) {
                    n.seen |= seen::STALE_FILL;
                }
                n.threads[t] = Pc::Idle;
                Ok(n)
            }
            Event::Hit { ty, value, .. } => {
                if !idle || !visible(ty) {
                    return reject("a lookup starts idle, on a type its interpreter sees");
                }
                let Some(v) = s.hit(cfg, t, ty as usize) else {
                    return reject("the cache entry does not match the type's tag");
                };
                if v != value {
                    return reject(format!("hit returned {value}, the entry holds {v}"));
                }
                let mut n = s.clone();
                n.seen |= seen::HIT;
                if value != s.lookup_value(cfg, ty as usize) {
                    n.stale_hit = true;
                }
                Ok(n)
            }
            Event::Modify { ty, value, .. } => {
                if !idle || !visible(ty) {
                    return reject("a modification starts idle, on a type its interpreter sees");
                }
                if cfg.types[ty as usize].immutable {
                    return reject("type_setattro refuses immutable types");
                }
                if s.modifications >= cfg.max_modifications || value != s.modifications + 1 {
                    return reject(format!(
                        "modification {value}, expected {} within {}",
                        s.modifications + 1,
                        cfg.max_modifications
                    ));
                }
                let mut n = s.clone();
                n.modified(cfg, ty as usize);
                n.types[ty as usize].value = value;
                n.modifications = value;
                Ok(n)
            }
        }
    }

    fn actor(event: &Event) -> usize {
        event.thread() as usize
    }

    fn invariants() -> &'static [Invariant<State>] {
        INVARIANTS
    }

    fn transition_invariants() -> &'static [TransitionInvariant<State>] {
        TRANSITION_INVARIANTS
    }

    fn sometimes() -> &'static [Invariant<State>] {
        SOMETIMES
    }
}

/// Reachability goals, in name order (manifests list unreached goals
/// sorted).
pub static SOMETIMES: &[Invariant<State>] = &[
    Invariant {
        name: "cache_hit",
        doc: "Some lookup is answered by the method cache without the type lock.",
        holds: |s| s.seen & seen::HIT != 0,
    },
    Invariant {
        name: "class_out_of_versions",
        doc: "Some class is refused a tag because it has used up its re-assignments.",
        holds: |s| s.seen & seen::CLASS_LIMIT != 0,
    },
    Invariant {
        name: "interp_tags_exhausted",
        doc: "Some interpreter's tag counter runs out.",
        holds: |s| s.interp_next.contains(&0),
    },
    Invariant {
        name: "stale_fill",
        doc: "Some cache fill writes an entry under a tag that a modification has already invalidated.",
        holds: |s| s.seen & seen::STALE_FILL != 0,
    },
    Invariant {
        name: "tag_reassigned",
        doc: "Some type is tagged a second time after a modification.",
        holds: |s| s.types.iter().any(|t| t.versions_used >= 2 && t.tag != 0),
    },
];

/// Named state invariants. `method_cache_coherent` is the reason the tags
/// exist; the others are the rules that make it hold.
pub static INVARIANTS: &[Invariant<State>] = &[
    Invariant {
        name: "method_cache_coherent",
        doc: "Every lock-free method-cache hit returns the value a walk of the type's MRO returns at that moment.",
        holds: |s| !s.stale_hit,
    },
    Invariant {
        name: "bases_tagged_first",
        doc: "A type has a valid tag only if every one of its bases has one.",
        holds: |s| {
            s.types.iter().all(|t| {
                t.tag == 0
                    || (0..s.types.len()).all(|b| t.bases & (1 << b) == 0 || s.types[b].tag != 0)
            })
        },
    },
    Invariant {
        name: "ranges_disjoint",
        doc: "Immutable types hold only global-range tags and heap types only per-interpreter tags.",
        holds: |s| {
            s.types
                .iter()
                .all(|t| t.tag == 0 || (t.immutable == (t.tag <= s.global_max)))
        },
    },
    Invariant {
        name: "tags_never_reused",
        doc: "No tag is ever handed out twice in its range (the global range, or one interpreter's).",
        holds: |s| !s.reused_tag,
    },
    Invariant {
        name: "tags_unique_in_range",
        doc: "No two types of one range (the global range, or one interpreter's) hold the same tag.",
        holds: |s| {
            s.types.iter().enumerate().all(|(i, a)| {
                a.tag == 0
                    || s.types[i + 1..]
                        .iter()
                        .all(|b| b.tag != a.tag || s.range_of(a) != s.range_of(b))
            })
        },
    },
];

/// Named transition invariants: none. Reuse is a state invariant over
/// the sticky [`State::reused_tag`], so that a twin that reuses a tag is
/// explored on to the stale hit the reuse allows.
pub static TRANSITION_INVARIANTS: &[TransitionInvariant<State>] = &[];

#[cfg(test)]
mod tests;
