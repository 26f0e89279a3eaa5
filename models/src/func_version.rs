//! The function-version model: `cpyrt_spec::func_version` explored by
//! stateright, with the design CPython 3.14 ships and four broken twins.
//!
//! # Protocol
//! Specialized `CALL`s and the invalidation of function versions, as of
//! CPython 3.14 with gh-115999 (PR 124997): `Objects/funcobject.c`
//! (`_PyFunction_SetVersion`, `func_clear_version`,
//! `_PyFunction_ClearVersion` with `_PyEval_StopTheWorld`,
//! `_PyFunction_ClearCodeByVersion`, the attribute setters),
//! `Objects/codeobject.c` (`co_version` from the interpreter's saturating
//! counter), `Python/specialize.c` (`specialize_py_call`) and the `CALL`
//! family of `Python/bytecodes.c` (`_CHECK_FUNCTION_VERSION` and the reads
//! of `CALL_PY_EXACT_ARGS`). A thread specializes its call site on a
//! function's version, passes the guard and reads the code twice (argument
//! count, frame push); another thread changes an attribute, stopping the
//! world on the function's first change only.
//!
//! # Abstraction
//! The model is [`SpecModel`](crate::SpecModel) over [`FuncVersion`]; what
//! the spec leaves out (its module doc: function deallocation, watchers,
//! the full stop-the-world protocol, tier 2) is left out here too. The
//! bounds, each chosen so that every twin fails and every reachability
//! goal is met:
//!
//! - [`MAX_CODES`] code objects: code 0, one that takes the last version
//!   ([`LAST_VERSION`] 3) and one created after the counter saturated, so
//!   exhaustion is explored and a wrapping counter hands a used version
//!   out again.
//! - [`MAX_FUNCTIONS`] functions: function 0 and one more, which shares
//!   the one cache slot ([`CACHE_SIZE`] 1) with it, so a `MAKE_FUNCTION`
//!   evicts another function's entry.
//! - [`MAX_WRITES`] attribute writes: a first change that pauses and a
//!   second that finds the version cleared.
//! - `__code__` and `__defaults__` are writable: the first is what the
//!   reads see, the second a change the call does not read that still
//!   invalidates. The other three attributes go through the same setter
//!   code path.
//!
//! # Properties
//! Always (state): `guarded_reads_match_version` (the reason for the
//! pause), `valid_version_means_unchanged`, `versions_never_reused`,
//! `counter_ahead_of_versions`, `cache_slot_consistent`,
//! `pause_excludes_attached`. Always (transition): `version_only_cleared`. Sometimes:
//! `call_completed`, `version_cleared`, `guard_failed_after_clear`,
//! `write_without_pause`, `reader_suspended_by_pause`. Each is stated in
//! one sentence in `spec/src/func_version.rs`; `cpyrt list func-version`
//! prints them. With one thread no reader and writer overlap, so neither
//! pause twin fails and `reader_suspended_by_pause` is unreached there.
//!
//! # Limits
//! 1 to [`MAX_THREADS`] threads; 3 threads use the `small` bounds (one
//! function, two code objects): the default bounds reach 5.7 M states in
//! 51 s there. Measured with BFS, one checker thread, release build, on
//! the project's 2-core machines (states pinned in `models/manifest.json`):
//!
//! | variant | 1 thread | 2 threads | 3 threads (`small`) | shortest counterexample |
//! |---|--:|--:|--:|---|
//! | base | 5,011 | 113,086 (0.7 s) | 12,077 | |
//! | no-pause | 4,229 | 130,683 (0.8 s) | 23,216 | 7 steps |
//! | safe-point-after-guard | 5,011 | 240,302 (1.5 s) | 47,999 | 11 steps (12 at 3 threads) |
//! | cache-slot-left | 5,011 | 113,086 | 12,077 | 4 steps (5, 6) |
//! | wrapping-counter | 6,113 | 140,282 | 12,077 | 1 step; reuse in 2 |

use cpyrt_spec::func_version::{Attr, CallKind, Config, Design, FuncVersion, MAX_THREADS};

use crate::spec_mechanism::{SpecBounds, SpecMechanism, SpecVariant};

/// Code objects ever created, code 0 included.
pub const MAX_CODES: u8 = 3;
/// `max_codes` of the `small` bounds: no code object after the counter
/// saturates.
pub const SMALL_MAX_CODES: u8 = 2;
/// `max_functions` of the `small` bounds: function 0 only.
pub const SMALL_MAX_FUNCTIONS: u8 = 1;
/// Functions ever created, function 0 included.
pub const MAX_FUNCTIONS: u8 = 2;
/// Attribute writes in total: one that pauses, one that does not.
pub const MAX_WRITES: u8 = 2;
/// The last version the counter hands out (CPython: `u32::MAX`): code 0
/// takes 2, the next code 3, then the counter saturates.
pub const LAST_VERSION: u32 = 3;
/// `FUNC_VERSION_CACHE_SIZE` for the model (CPython: 4096): every version
/// maps to the one slot.
pub const CACHE_SIZE: u32 = 1;
/// Threads when the CLI is not told: the smallest count at which every
/// twin fails.
pub const DEFAULT_THREADS: usize = 2;

/// The model's configuration of `design` at `threads` threads.
pub fn config(threads: usize, design: Design) -> Config {
    Config {
        threads,
        max_codes: MAX_CODES,
        max_functions: MAX_FUNCTIONS,
        max_writes: MAX_WRITES,
        last_version: LAST_VERSION,
        cache_size: CACHE_SIZE,
        call: CallKind::ExactArgs,
        writable: vec![Attr::Code],
        design,
    }
}

/// Function versions in the registry.
pub static MECHANISM: SpecMechanism<FuncVersion> = SpecMechanism {
    about: "Function versions, the specialized CALL guard and invalidation under a pause (Objects/funcobject.c, gh-115999)",
    threads: 1..=MAX_THREADS,
    default_threads: DEFAULT_THREADS,
    variants: VARIANTS,
    default_bounds_doc: "3 code objects, 2 functions, 2 writes of __code__/__defaults__, versions 2..3, cache size 1, CALL_PY_EXACT_ARGS",
    bounds: &[SpecBounds {
        name: "small",
        doc: "2 code objects, 1 function: what makes 3 threads affordable",
        apply: |c| Config {
            max_codes: SMALL_MAX_CODES,
            max_functions: SMALL_MAX_FUNCTIONS,
            ..c
        },
    }],
};

/// `base` and the broken twins.
pub static VARIANTS: &[SpecVariant<FuncVersion>] = &[
    SpecVariant {
        name: "base",
        doc: "The design CPython 3.14 ships (Design::CPYTHON).",
        violates: &[],
        violates_from: 1,
        config: |t| config(t, Design::CPYTHON),
    },
    SpecVariant {
        name: "no-pause",
        doc: "The version is cleared without stopping the world, as before gh-115999 (PR 124997): a guarded call pushes a frame for the new code.",
        violates: &["guarded_reads_match_version"],
        violates_from: 2,
        config: |t| {
            config(
                t,
                Design {
                    stop_the_world: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "safe-point-after-guard",
        doc: "The specialized call can suspend between its guard and its reads (the caveat of PR 124997): the whole invalidation passes meanwhile.",
        violates: &["guarded_reads_match_version"],
        violates_from: 2,
        config: |t| {
            config(
                t,
                Design {
                    no_safe_point_after_guard: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "cache-slot-left",
        doc: "func_clear_version leaves the version-cache slot naming the invalidated function.",
        violates: &["cache_slot_consistent"],
        violates_from: 1,
        config: |t| {
            config(
                t,
                Design {
                    clear_cache_slot: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
    SpecVariant {
        name: "wrapping-counter",
        doc: "The code version counter wraps back to FUNC_VERSION_FIRST_VALID instead of staying 0.",
        violates: &["counter_ahead_of_versions", "versions_never_reused"],
        violates_from: 1,
        config: |t| {
            config(
                t,
                Design {
                    counter_saturates: false,
                    ..Design::CPYTHON
                },
            )
        },
    },
];
