//! stateright models built from the spec, with their configurations, broken
//! twins and the manifest of expected results.

pub mod checker;
pub mod fork;
pub mod func_version;
pub mod gil;
pub mod isolation;
pub mod manifest;
pub mod qsbr;
pub mod registry;
pub mod render;
pub mod report;
pub mod run;
pub mod spec_mechanism;
pub mod spec_model;
pub mod stw;
pub mod type_version;

pub use spec_model::{Checked, SpecModel};
