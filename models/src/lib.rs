//! stateright models built from the spec, with their configurations, broken
//! twins and the manifest of expected results.

pub mod spec_model;

pub use spec_model::{Checked, SpecModel};
