//! `cpyrt list`: every model with its thread range, variants (and what
//! each is expected to do), properties with their docs, and the
//! configurations the manifest pins.

use std::fmt::Write;
use std::process::ExitCode;

use cpyrt_models::manifest;
use cpyrt_models::registry::{self, MECHANISMS, Mechanism};

use crate::output::{config_name, thousands};

fn describe(out: &mut String, m: &dyn Mechanism, entries: &[manifest::Entry]) {
    let t = m.threads();
    let _ = writeln!(out, "{}: {}", m.name(), m.about());
    let _ = writeln!(
        out,
        "  threads: {} to {} (default {})",
        t.start(),
        t.end(),
        m.default_threads()
    );
    let _ = writeln!(out, "  variants:");
    let variants = m.variants();
    let w = variants.iter().map(|v| v.name.len()).max().unwrap_or(0);
    for v in &variants {
        let expect = if v.violates.is_empty() {
            "holds".to_string()
        } else {
            format!(
                "violates {} (from {} threads)",
                v.violates.join(", "),
                v.violates_from
            )
        };
        let _ = writeln!(
            out,
            "    {:<w$}  {}\n    {:<w$}  expected: {expect}",
            v.name, v.doc, ""
        );
    }
    let _ = writeln!(out, "  bounds:");
    let bounds = m.bounds();
    let w = bounds.iter().map(|b| b.name.len()).max().unwrap_or(0);
    for b in &bounds {
        let _ = writeln!(out, "    {:<w$}  {}", b.name, b.doc);
    }
    let _ = writeln!(out, "  properties:");
    let props = m.properties();
    let w = props.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &props {
        let _ = writeln!(out, "    {:<19} {:<w$}  {}", p.kind.name(), p.name, p.doc);
    }
    let _ = writeln!(out, "  configurations (models/manifest.json):");
    let mine: Vec<&manifest::Entry> = entries.iter().filter(|e| e.model == m.name()).collect();
    if mine.is_empty() {
        let _ = writeln!(out, "    none pinned");
    }
    for e in mine {
        let result = if e.violated.is_empty() {
            "holds".to_string()
        } else {
            format!("violates {}", e.violated.join(", "))
        };
        let unreached = if e.unreached.is_empty() {
            String::new()
        } else {
            format!("; unreached: {}", e.unreached.join(", "))
        };
        let _ = writeln!(
            out,
            "    {} ({}): {result}, {} unique states{unreached}",
            config_name(&e.model, &e.variant, e.threads, &e.bounds),
            e.strategy.name(),
            thousands(e.unique_states)
        );
    }
}

pub fn run(model: Option<&str>) -> Result<ExitCode, String> {
    let entries = manifest::entries()?;
    let selected: Vec<&dyn Mechanism> = match model {
        Some(name) => vec![registry::find(name)?],
        None => MECHANISMS.to_vec(),
    };
    let mut out = String::new();
    for (i, m) in selected.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        describe(&mut out, *m, &entries);
    }
    crate::output::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
