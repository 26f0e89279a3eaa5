//! The type-version model: `cpyrt_spec::type_version` explored by
//! stateright, with the design CPython 3.13/3.14 ships and three broken
//! twins.
//!
//! # Protocol
//! Type version tags and the method cache, as of CPython 3.13/3.14:
//! `Objects/typeobject.c` (`assign_version_tag`, `next_global_version_tag`,
//! `set_version_unlocked`, `type_modified_unlocked`, `_PyType_LookupRef`
//! with `find_name_in_mro` and `update_cache`) and
//! `Include/internal/pycore_typeobject.h`. Threads look one attribute name
//! up on types of a small hierarchy (lock-free hit, or the slow path under
//! the type lock followed by a cache fill after the lock is released) and
//! modify heap types (invalidating them and their subclasses).
//!
//! # Abstraction
//! The model is [`SpecModel`](crate::SpecModel) over [`TypeVersion`]; what
//! the spec leaves out (its module doc: fixed builtin tags, tier 2's
//! version cache, watchers, custom MROs, more names) is left out here too.
//! The bounds, each chosen so that every twin fails and every reachability
//! goal is met:
//!
//! - Four types: `object` and `S(object)` immutable (global range),
//!   `A(object)` and `B(A)` heap types of one interpreter. `B` under `A`
//!   is the smallest hierarchy where invalidation must recurse and where
//!   a subclass could be tagged before its base; `S` is a second claimant
//!   of the global range.
//! - [`GLOBAL_MAX`] 1: `object` takes the only global tag, so `S` finds
//!   the range exhausted (and, in the twin without the bound, takes a tag
//!   from the per-interpreter range).
//! - [`INTERP_LAST`] 4: three heap tags (2, 3, 4), so `A`, `B` and one
//!   re-tag of `A` exhaust the interpreter's counter.
//! - [`MAX_MODIFICATIONS`] 2 and [`MAX_VERSIONS_PER_CLASS`] 2 (CPython:
//!   1000): a type is re-tagged once and then refused.
//! - [`CACHE_ENTRIES`] 2: tags 2 and 4 share an entry, 3 has its own.
//!
//! # Properties
//! Always (state): `method_cache_coherent` (the reason for the tags),
//! `bases_tagged_first`, `ranges_disjoint`, `tags_never_reused`,
//! `tags_unique_in_range`. Sometimes: `cache_hit`,
//! `stale_fill`, `tag_reassigned`, `class_out_of_versions`,
//! `interp_tags_exhausted`. Each is stated
//! in one sentence in `spec/src/type_version.rs`; `cpyrt list
//! type-version` prints them. With one thread no fill races a
//! modification, so `stale_fill` is unreached there. Every twin breaks its
//! rule with one thread already; the wrapping counter needs a second
//! thread's stale fill to turn its reused tag into a stale hit within two
//! tags per class.
//!
//! # Limits
//! 1 to [`MAX_THREADS`] threads, one interpreter. Measured with BFS, one
//! checker thread, release build (1 and 2 threads pinned in
//! `models/manifest.json`; 3 threads left to `cpyrt check`, where the
//! bases-first twin alone takes 389,195 states and 4.6 s):
//!
//! | variant | 1 thread | 2 threads | 3 threads | shortest counterexample |
//! |---|--:|--:|--:|---|
//! | base | 909 | 10,375 | 69,687 | |
//! | subclass-before-base | 3,008 | 46,745 | 389,195 | 1 step; stale hit in 4 |
//! | wrapping-counter | 1,069 | 16,409 | 139,297 | reuse in 4 (3 with 2 threads); stale hit in 7 |
//! | global-range-unbounded | 2,318 | 28,069 | 210,121 | 1 step; stale hit in 5 |

use cpyrt_spec::type_version::{Config, Design, MAX_THREADS, TypeDef, TypeVersion};

use crate::spec_mechanism::{SpecMechanism, SpecVariant};

/// `_Py_MAX_GLOBAL_TYPE_VERSION_TAG` for the model (CPython: 131071).
pub const GLOBAL_MAX: u32 = 1;
/// The last per-interpreter tag (CPython: `u32::MAX`).
pub const INTERP_LAST: u32 = 4;
/// `MAX_VERSIONS_PER_CLASS` for the model (CPython: 1000).
pub const MAX_VERSIONS_PER_CLASS: u8 = 2;
/// Modifications in total.
pub const MAX_MODIFICATIONS: u8 = 2;
/// Method cache entries (CPython: 4096).
pub const CACHE_ENTRIES: u8 = 2;
/// Threads when the CLI is not told.
pub const DEFAULT_THREADS: usize = 2;

fn ty(name: &str, bases: &[u8], immutable: bool) -> TypeDef {
    TypeDef {
        name: name.to_string(),
        bases: bases.to_vec(),
        immutable,
        interp: 0,
    }
}

/// The model's configuration of `design` at `threads` threads.
pub fn config(threads: usize, design: Design) -> Config {
    Config {
        threads,
        interps: 1,
        types: vec![
            ty("object", &[], true),
            ty("A", &[0], false),
            ty("B", &[1], false),
            ty("S", &[0], true),
        ],
        global_max: GLOBAL_MAX,
        interp_last: INTERP_LAST,
        max_versions_per_class: MAX_VERSIONS_PER_CLASS,
        max_modifications: MAX_MODIFICATIONS,
        cache_entries: CACHE_ENTRIES,
        design,
    }
}

/// Type versions in the registry.
pub static MECHANISM: SpecMechanism<TypeVersion> = SpecMechanism {
    about: "Type version tags, their ranges and the method cache they key (Objects/typeobject.c)",
    threads: 1..=MAX_THREADS,
    default_threads: DEFAULT_THREADS,
    variants: VARIANTS,
    default_bounds_doc: "object, S(object) immutable; A(object), B(A) heap; 1 global tag, heap tags 2..4, 2 modifications, 2 tags per class, 2 cache entries",
    bounds: &[],
};

/// `base` and the broken twins.
pub static VARIANTS: &[SpecVariant<TypeVersion>] = &[
    SpecVariant {
        name: "base",
        doc: "The design CPython 3.13/3.14 ships (Design::CPYTHON).",
        violates: &[],
        violates_from: 1,
        config: |t| config(t, Design::CPYTHON),
    },
    SpecVariant {
        name: "subclass-before-base",
        doc: "assign_version_tag tags a type without tagging its bases first; a modified untagged base then leaves its subclass's cache entries valid.",
        violates: &["bases_tagged_first", "method_cache_coherent"],
        violates_from: 1,
        config: |t| {
            config(
                t,
                Design {
                    bases_first: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "wrapping-counter",
        doc: "The per-interpreter tag counter wraps back to the bottom of its range, so a dead cache entry matches again.",
        violates: &["method_cache_coherent", "tags_never_reused"],
        violates_from: 1,
        config: |t| {
            config(
                t,
                Design {
                    interp_counter_saturates: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "global-range-unbounded",
        doc: "next_global_version_tag does not stop at _Py_MAX_GLOBAL_TYPE_VERSION_TAG: an immutable type takes a heap tag and answers from a heap type's cache entry.",
        violates: &["method_cache_coherent", "ranges_disjoint"],
        violates_from: 1,
        config: |t| {
            config(
                t,
                Design {
                    global_bound_checked: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
];
