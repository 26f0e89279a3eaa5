//! The manifest (`models/manifest.json`): every configuration the main job
//! checks, with its expected result and its exact unique-state count. A
//! changed count is a diff someone must explain; `cpyrt check` reports a
//! run that disagrees as not as expected, and `models/tests/manifest.rs`
//! re-runs the small configurations on every `cargo test`.
//!
//! The file is compiled in, so the binary judges against the manifest it
//! was built with; [`ENV_OVERRIDE`] names another file to judge against
//! instead (to try a changed manifest without rebuilding).

use serde::{Deserialize, Serialize};

use crate::registry::DEFAULT_BOUNDS;
use crate::report::{Expected, Source};
use crate::run::Strategy;

/// The manifest text, as compiled in.
pub const TEXT: &str = include_str!("../manifest.json");

/// Environment variable: a manifest file to use instead of [`TEXT`].
pub const ENV_OVERRIDE: &str = "CPYRT_MANIFEST";

/// One pinned configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub model: String,
    pub variant: String,
    pub threads: usize,
    /// The bounds profile; absent means the default.
    #[serde(default = "default_bounds", skip_serializing_if = "is_default_bounds")]
    pub bounds: String,
    pub strategy: Strategy,
    /// `holds` or `violates`.
    pub expected: String,
    /// The always-properties a complete run violates (empty when `holds`).
    pub violated: Vec<String>,
    /// The sometimes-properties no reachable state satisfies.
    pub unreached: Vec<String>,
    pub unique_states: usize,
}

fn default_bounds() -> String {
    DEFAULT_BOUNDS.to_string()
}

fn is_default_bounds(b: &String) -> bool {
    b == DEFAULT_BOUNDS
}

impl Entry {
    pub fn expected(&self) -> Expected {
        Expected {
            violated: self.violated.clone(),
            unreached: Some(self.unreached.clone()),
            unique_states: Some(self.unique_states),
            source: Source::Manifest,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    about: String,
    configurations: Vec<Entry>,
}

/// Every entry, in file order, after checking that each one is
/// consistent (`expected` agrees with `violated`, no duplicates).
pub fn entries() -> Result<Vec<Entry>, String> {
    let (origin, text) = match std::env::var_os(ENV_OVERRIDE) {
        Some(path) => {
            let shown = path.to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{ENV_OVERRIDE}={shown}: {e}"))?;
            (shown, text)
        }
        None => ("models/manifest.json".to_string(), TEXT.to_string()),
    };
    let file: File = serde_json::from_str(&text).map_err(|e| format!("{origin}: {e}"))?;
    let mut seen = std::collections::BTreeSet::new();
    for e in &file.configurations {
        let key = (
            e.model.as_str(),
            e.variant.as_str(),
            e.threads,
            e.bounds.as_str(),
        );
        if !seen.insert(key) {
            return Err(format!("{origin}: {key:?} appears twice"));
        }
        let consistent = match e.expected.as_str() {
            "holds" => e.violated.is_empty(),
            "violates" => !e.violated.is_empty(),
            _ => false,
        };
        if !consistent {
            return Err(format!(
                "{origin}: {key:?}: expected '{}' with violated {:?}",
                e.expected, e.violated
            ));
        }
    }
    Ok(file.configurations)
}

/// The entry pinning `model/variant` at `threads` under `bounds`, if any.
pub fn lookup(
    model: &str,
    variant: &str,
    threads: usize,
    bounds: &str,
) -> Result<Option<Entry>, String> {
    Ok(entries()?.into_iter().find(|e| {
        e.model == model && e.variant == variant && e.threads == threads && e.bounds == bounds
    }))
}
