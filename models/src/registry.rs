//! The registry of mechanisms: what the CLI, the docs generator and the
//! tests iterate. Each entry knows its name, its thread range, its named
//! variants (`base` and the broken twins) with their expected results, its
//! properties with their docs, and how to check a configuration or replay
//! a counterexample, behind the object-safe [`Mechanism`] trait.
//!
//! # Adding a mechanism
//! A mechanism whose spec implements `cpyrt_spec::Spec` needs no code
//! here beyond one line:
//!
//! 1. In `models/src/<mech>.rs`, declare
//!    `pub static MECHANISM: SpecMechanism<YourSpec> = SpecMechanism { .. }`
//!    with a one-line `about`, the thread range, the default thread count
//!    and one [`SpecVariant`] per variant: a kebab-case name, a one-line
//!    doc, the properties it is expected to violate (empty for `base`),
//!    the fewest threads that violation needs, and a `config` function
//!    from a thread count to the spec's `Config`. Say in
//!    `default_bounds_doc` what bounds those configurations set; when a
//!    larger thread count needs smaller bounds, add a [`SpecBounds`]
//!    profile to `bounds` that rewrites the `Config` (qsbr's `small`, in
//!    `qsbr.rs`); otherwise `bounds: &[]`.
//! 2. Add `&<mech>::MECHANISM` to [`MECHANISMS`].
//! 3. Run `cpyrt check <mech> --threads N --json` for each configuration
//!    worth pinning and add it to `models/manifest.json`; the manifest
//!    test and `cpyrt check` then hold it to those numbers.
//!
//! A mechanism that is not a `Spec` implements [`Mechanism`] directly.

use std::ops::RangeInclusive;

use crate::manifest;
use crate::report::{Expected, Report, Source, Step};
use crate::run::{Progress, RunOptions};
pub use crate::spec_mechanism::{SpecBounds, SpecMechanism, SpecVariant};

/// One named variant of a mechanism, as the CLI and docs list it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariantInfo {
    /// Kebab-case: `base`, `stale-slot-pointer`.
    pub name: &'static str,
    /// One line: the design, and for a twin the bug it reproduces.
    pub doc: &'static str,
    /// Properties a complete run violates; empty: the model holds.
    pub violates: &'static [&'static str],
    /// Fewest threads the violation needs; below that the variant holds.
    pub violates_from: usize,
}

impl VariantInfo {
    /// The expectation from the variant alone, at `threads` threads.
    pub fn expected(&self, threads: usize) -> Expected {
        let violated = if threads >= self.violates_from {
            self.violates.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        Expected {
            violated,
            unreached: None,
            unique_states: None,
            source: Source::Variant,
        }
    }
}

/// A named set of bounds. Every mechanism has [`DEFAULT_BOUNDS`]; larger
/// thread counts may need smaller bounds to stay affordable, and get them
/// as a further profile under its own name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundsInfo {
    pub name: &'static str,
    /// One line: what the profile changes and why.
    pub doc: &'static str,
}

/// The name of the bounds each variant's `config` sets.
pub const DEFAULT_BOUNDS: &str = "default";

/// How a property is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyKind {
    /// Holds in every reachable state.
    Always,
    /// Holds across every reachable transition.
    AlwaysTransition,
    /// Holds in some reachable state (a reachability goal).
    Sometimes,
    /// From every state where its premise holds, every fair run reaches its
    /// goal (the spec's leads-to properties, judged on the state graph
    /// under the fairness the model declares).
    Eventually,
}

impl PropertyKind {
    pub fn name(self) -> &'static str {
        match self {
            PropertyKind::Always => "always",
            PropertyKind::AlwaysTransition => "always (transition)",
            PropertyKind::Sometimes => "sometimes",
            PropertyKind::Eventually => "eventually",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PropertyInfo {
    pub name: &'static str,
    pub doc: &'static str,
    pub kind: PropertyKind,
}

/// A replayed path: its steps and what the state it ends in violates.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Replay {
    pub model: String,
    pub variant: String,
    pub threads: usize,
    pub bounds: String,
    pub token: String,
    pub steps: Vec<Step>,
    /// Always-properties the final state violates.
    pub violated: Vec<String>,
}

/// A mechanism, type-erased. Errors are one line, for the user.
pub trait Mechanism: Sync {
    fn name(&self) -> &'static str;
    fn about(&self) -> &'static str;
    fn threads(&self) -> RangeInclusive<usize>;
    fn default_threads(&self) -> usize;
    fn variants(&self) -> Vec<VariantInfo>;
    /// The bounds profiles, [`DEFAULT_BOUNDS`] first.
    fn bounds(&self) -> Vec<BoundsInfo>;
    fn properties(&self) -> Vec<PropertyInfo>;
    /// Checks one configuration and judges it against the variant's
    /// expectation (see [`check`] for the manifest's).
    fn check(
        &self,
        variant: &str,
        threads: usize,
        bounds: &str,
        opts: &RunOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Report, String>;
    /// Follows a replay token's path.
    fn replay(&self, token: &Token) -> Result<Replay, String>;
    /// The graph-based checks (liveness, coverage, symmetry, graph export),
    /// when the mechanism declares checker hooks.
    fn checker(&self) -> Option<Box<dyn crate::checker::registry::CheckerEntry + '_>> {
        None
    }

    fn variant(&self, name: &str) -> Result<VariantInfo, String> {
        let variants = self.variants();
        variants
            .iter()
            .find(|v| v.name == name)
            .copied()
            .ok_or_else(|| {
                let known: Vec<&str> = variants.iter().map(|v| v.name).collect();
                format!(
                    "unknown variant '{name}' of {}; known variants: {}",
                    self.name(),
                    known.join(", ")
                )
            })
    }

    fn check_bounds(&self, name: &str) -> Result<(), String> {
        let all = self.bounds();
        if all.iter().any(|b| b.name == name) {
            return Ok(());
        }
        let known: Vec<&str> = all.iter().map(|b| b.name).collect();
        Err(format!(
            "unknown bounds '{name}' of {}; known bounds: {}",
            self.name(),
            known.join(", ")
        ))
    }

    fn check_threads(&self, threads: usize) -> Result<(), String> {
        let r = self.threads();
        if r.contains(&threads) {
            Ok(())
        } else {
            Err(format!(
                "{} supports {} to {} threads, got {threads}",
                self.name(),
                r.start(),
                r.end()
            ))
        }
    }
}

/// Every mechanism cpyrt models, in the order `cpyrt list` shows them.
pub static MECHANISMS: &[&dyn Mechanism] = &[
    &crate::qsbr::MECHANISM,
    &crate::stw::MECHANISM,
    &crate::func_version::MECHANISM,
    &crate::type_version::MECHANISM,
    &crate::gil::MECHANISM,
    &crate::fork::MECHANISM,
    &crate::isolation::MECHANISM,
];

/// Looks a mechanism up by name; the error lists the known ones.
pub fn find(name: &str) -> Result<&'static dyn Mechanism, String> {
    MECHANISMS
        .iter()
        .copied()
        .find(|m| m.name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = MECHANISMS.iter().map(|m| m.name()).collect();
            format!("unknown model '{name}'; known models: {}", known.join(", "))
        })
}

/// Checks one configuration and judges it against the manifest when the
/// manifest pins it, else against the variant's expectation.
pub fn check(
    mech: &dyn Mechanism,
    variant: &str,
    threads: usize,
    bounds: &str,
    opts: &RunOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Report, String> {
    let checker = mech.checker();
    let mut report = match (&checker, opts.symmetry) {
        (Some(c), true) => c.check_reduced(variant, threads, bounds, opts, progress)?,
        (None, true) => return Err(format!("{} declares no thread symmetry", mech.name())),
        (_, false) => mech.check(variant, threads, bounds, opts, progress)?,
    };
    if let Some(c) = &checker {
        c.augment(variant, threads, bounds, opts, &mut report)?;
    } else if opts.coverage {
        return Err(format!(
            "{} declares no checker hooks for --coverage",
            mech.name()
        ));
    }
    if let Some(entry) = manifest::lookup(mech.name(), variant, threads, bounds)? {
        crate::checker::registry::judge(&mut report, entry.expected());
    }
    Ok(report)
}

/// A replay token: `model/variant/threads/steps`, steps being action
/// indices joined by `.` (`-` for the empty path). Bounds other than the
/// default come before the steps: `model/variant/threads/bounds/steps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub model: String,
    pub variant: String,
    pub threads: usize,
    pub bounds: String,
    pub steps: Vec<usize>,
}

impl Token {
    pub fn parse(text: &str) -> Result<Token, String> {
        let bad = |why: &str| {
            format!(
                "malformed replay token '{text}': {why} (expected MODEL/VARIANT/THREADS/STEPS, e.g. qsbr/base/2/0.1.0)"
            )
        };
        let parts: Vec<&str> = text.trim().split('/').collect();
        let (model, variant, threads, bounds, steps) = match parts[..] {
            [m, v, t, s] => (m, v, t, DEFAULT_BOUNDS, s),
            [m, v, t, b, s] => (m, v, t, b, s),
            _ => {
                return Err(bad(
                    "it needs four parts separated by '/' (five with a bounds profile)",
                ));
            }
        };
        if model.is_empty() || variant.is_empty() || bounds.is_empty() {
            return Err(bad("empty model, variant or bounds"));
        }
        let threads = threads
            .parse::<usize>()
            .map_err(|_| bad("THREADS is not a whole number"))?;
        let steps = match steps {
            "-" => Vec::new(),
            s => s
                .split('.')
                .map(|k| k.parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad("STEPS must be action indices joined by '.', or '-'"))?,
        };
        Ok(Token {
            model: model.to_string(),
            variant: variant.to_string(),
            threads,
            bounds: bounds.to_string(),
            steps,
        })
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}/", self.model, self.variant, self.threads)?;
        if self.bounds != DEFAULT_BOUNDS {
            write!(f, "{}/", self.bounds)?;
        }
        if self.steps.is_empty() {
            return f.write_str("-");
        }
        let steps: Vec<String> = self.steps.iter().map(|k| k.to_string()).collect();
        f.write_str(&steps.join("."))
    }
}
