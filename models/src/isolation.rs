//! The isolation model: `cpyrt_spec::isolation` explored by stateright,
//! with the design CPython 3.13/3.14 ships, the 3.10/3.11 GC fix as a
//! second sound design, and four broken twins.
//!
//! # Protocol
//! What subinterpreters share and who frees it, as of CPython 3.13/3.14:
//! `Python/pylifecycle.c` (`Py_NewInterpreterFromConfig`,
//! `Py_EndInterpreter`, `finalize_interp_clear`), `Python/import.c`
//! (single-phase init, `m_copy`, `import_find_extension`,
//! `_PyImport_CheckSubinterpIncompatibleExtensionAllowed`),
//! `Objects/unicodeobject.c` (`init_interned_dict`,
//! `has_shared_intern_dict`, `_PyUnicode_ClearInterned`), `Python/gc.c`
//! (`_PyGC_Fini`, `finalize_unlink_gc_head`), `Objects/obmalloc.c`
//! (`use_main_obmalloc`, `_PyInterpreterState_FinalizeAllocatedBlocks`)
//! and `Python/crossinterp.c` (`_PyXIData_Release`). The main interpreter
//! and up to two subinterpreters, each created legacy (main obmalloc) or
//! isolated (own obmalloc), intern a string, import one single-phase
//! extension, pass one object through cross-interpreter data, drop and
//! untrack what they hold, and end.
//!
//! # Abstraction
//! The model is [`SpecModel`](crate::SpecModel) over [`Isolation`]; what
//! the spec leaves out (its module doc: mortal and static interned
//! strings, multi-phase modules, mimalloc heaps, collections, runtime
//! finalization) is left out here too. The CLI's thread count is the
//! number of interpreters, the main one included: each interpreter is
//! the actor of its own steps, as a thread of it would be. There are no
//! other bounds: one string value, one extension, one data item, and
//! every interpreter's steps run to its end, so every run is finite.
//!
//! There is no reference runtime (`reference/src/isolation*` does not
//! exist): its wrong frees and freed-node writes need real per-interpreter
//! allocators and intrusive GC lists.
//!
//! # Properties
//! Always (state): `no_use_after_free`, `extension_cache_valid`,
//! `freed_by_owning_allocator`, `no_write_to_freed_gc_node`,
//! `isolated_heap_not_shared`, `interned_strings_outlive_users`.
//! Sometimes: `extension_copied`, `gc_object_outlives_its_list`,
//! `import_refused`, `isolated_arenas_kept`,
//! `string_outlives_its_interner`, `xid_freed_by_owner`,
//! `xid_owner_gone`, `xid_release_pending`. Each is stated in one
//! sentence in `spec/src/isolation.rs`; `cpyrt list isolation` prints
//! them. Every twin fails with two interpreters (the main one and one
//! subinterpreter); `untrack-on-end` never meets
//! `gc_object_outlives_its_list`, since it untracks every such object.
//!
//! # Limits
//! 2 to [`MAX_INTERPS`] interpreters. Measured with BFS, one checker
//! thread, release build (both pinned in `models/manifest.json`):
//!
//! | variant | 2 interpreters | 3 interpreters | shortest counterexample (2) |
//! |---|--:|--:|---|
//! | base | 4,429 | 244,741 | |
//! | untrack-on-end | 3,817 | 187,033 | |
//! | own-interned-dict | 4,429 | 244,741 | cache 4 steps, use 5 |
//! | gc-heads-left-linked | 4,293 | 229,965 | 7 steps |
//! | xid-release-in-receiver | 2,818 | 182,056 | 4 steps |
//! | no-single-phase-check | 5,546 | 362,826 | 2 steps; use 5 |
//!
//! The 3-interpreter runs take 0.8 to 1.7 s each; `own-interned-dict`
//! has exactly the base design's graph (only which dict a string lands
//! in differs).

use cpyrt_spec::isolation::{Config, Design, GcFini, Isolation, MAX_INTERPS};

use crate::spec_mechanism::{SpecMechanism, SpecVariant};

/// Interpreters (the main one included) when the CLI is not told.
pub const DEFAULT_INTERPS: usize = 2;

/// The model's configuration of `design` with `interps` interpreters.
pub fn config(interps: usize, design: Design) -> Config {
    Config { interps, design }
}

/// Per-interpreter isolation in the registry.
pub static MECHANISM: SpecMechanism<Isolation> = SpecMechanism {
    about: "Per-interpreter isolation: obmalloc, interned strings, the single-phase extension cache, GC lists, cross-interpreter data (threads = interpreters)",
    threads: 2..=MAX_INTERPS,
    default_threads: DEFAULT_INTERPS,
    variants: VARIANTS,
    default_bounds_doc: "threads = interpreters, the main one included; one string value, one single-phase extension, one cross-interpreter data item",
    bounds: &[],
};

/// `base`, the other sound GC design and the broken twins.
pub static VARIANTS: &[SpecVariant<Isolation>] = &[
    SpecVariant {
        name: "base",
        doc: "The design CPython 3.13/3.14 ships (Design::CPYTHON).",
        violates: &[],
        violates_from: 2,
        config: |n| config(n, Design::CPYTHON),
    },
    SpecVariant {
        name: "untrack-on-end",
        doc: "The 3.10/3.11 fix of bpo-46070: _PyGC_Fini untracks every object still in an ending subinterpreter's lists; sound too.",
        violates: &[],
        violates_from: 2,
        config: |n| {
            config(
                n,
                Design {
                    gc_fini: GcFini::UntrackAll,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "own-interned-dict",
        doc: "gh-116510: a subinterpreter sharing the main obmalloc keeps its own interned dict and frees, when it ends, the strings the main interpreter got through m_copy.",
        violates: &[
            "extension_cache_valid",
            "interned_strings_outlive_users",
            "no_use_after_free",
        ],
        violates_from: 2,
        config: |n| {
            config(
                n,
                Design {
                    shared_intern_dict: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "gc-heads-left-linked",
        doc: "bpo-46070 / gh-90228 (and its return in gh-94673): _PyGC_Fini leaves shared objects linked to the ending interpreter's list heads, which are then freed and written on untrack.",
        violates: &["no_write_to_freed_gc_node"],
        violates_from: 2,
        config: |n| {
            config(
                n,
                Design {
                    gc_fini: GcFini::Nothing,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "xid-release-in-receiver",
        doc: "Cross-interpreter data released in the receiving interpreter instead of the owner: the object is freed by the receiver's allocator.",
        violates: &["freed_by_owning_allocator"],
        violates_from: 2,
        config: |n| {
            config(
                n,
                Design {
                    xid_release_in_owner: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "no-single-phase-check",
        doc: "An isolated subinterpreter imports a single-phase extension without _PyImport_CheckSubinterpIncompatibleExtensionAllowed: its own-allocator objects go into m_copy and die with it.",
        violates: &[
            "extension_cache_valid",
            "interned_strings_outlive_users",
            "isolated_heap_not_shared",
            "no_use_after_free",
        ],
        violates_from: 2,
        config: |n| {
            config(
                n,
                Design {
                    single_phase_check: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
];
