//! The state-graph section of a mechanism page.
//!
//! Placeholder until the checker's graph export is wired in: it says so on
//! the page rather than showing nothing.

use cpyrt_models::registry::Mechanism;

pub fn section(mech: &dyn Mechanism) -> String {
    format!(
        "<p class=\"note\">Graph export for {} is not wired into the docs yet.</p>",
        crate::escape(mech.name())
    )
}
