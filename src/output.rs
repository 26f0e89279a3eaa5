//! How `cpyrt check` prints: the table, the counterexamples after it, the
//! JSON lines, and replays.

use std::fmt::Write;

use cpyrt_models::registry::{DEFAULT_BOUNDS, Mechanism, Replay};
use cpyrt_models::report::{Counterexample, Report, Status, Step};
use serde_json::json;

/// Writes `text` to standard output. A reader that has gone away
/// (`cpyrt check --json | head -1`) ends the run quietly with success: the
/// rest of its output has nobody to read it, so there is no point checking
/// the remaining configurations either.
pub fn emit(text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

/// `437020` -> `437,020`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `qsbr/base, 2 threads` (and `, small bounds` unless the default).
pub fn config_name(model: &str, variant: &str, threads: usize, bounds: &str) -> String {
    let plural = if threads == 1 { "" } else { "s" };
    let mut name = format!("{model}/{variant}, {threads} thread{plural}");
    if bounds != DEFAULT_BOUNDS {
        let _ = write!(name, ", {bounds} bounds");
    }
    name
}

fn name_of(r: &Report) -> String {
    config_name(&r.model, &r.variant, r.threads, &r.bounds)
}

fn status(r: &Report) -> &'static str {
    match r.status {
        Status::AsExpected => "ok",
        Status::NotAsExpected => "NOT AS EXPECTED",
        Status::Partial => "partial",
    }
}

/// The summary table, one row per configuration. `expected` and `result`
/// are verdicts; the properties a run violated end the row, and what
/// differs from the expectation is spelled out after the table.
pub fn table(reports: &[Report]) -> String {
    let header = [
        "model", "variant", "threads", "bounds", "strategy", "unique", "depth", "seconds",
        "expected", "result", "status", "violated",
    ];
    let rows: Vec<[String; 12]> = reports
        .iter()
        .map(|r| {
            [
                r.model.clone(),
                r.variant.clone(),
                r.threads.to_string(),
                r.bounds.clone(),
                r.strategy.name().to_string(),
                thousands(r.unique_states),
                r.depth.to_string(),
                format!("{:.2}", r.seconds),
                if r.expected.violated.is_empty() {
                    "holds"
                } else {
                    "violates"
                }
                .to_string(),
                r.result.name().to_string(),
                status(r).to_string(),
                r.violated.join(", "),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    // Numbers right-aligned, text left-aligned.
    let numeric = [
        false, false, true, false, false, true, true, true, false, false, false, false,
    ];
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if numeric[i] {
                let _ = write!(s, "{cell:>w$}", w = width[i]);
            } else if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let _ = write!(s, "{cell:<w$}", w = width[i]);
            }
        }
        let mut s = s.trim_end().to_string();
        s.push('\n');
        s
    };
    let mut out = line(&header.map(str::to_string));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

fn steps(out: &mut String, steps: &[Step]) {
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(out, "  {:>3}. T{} {}", i + 1, s.thread, s.event);
        for c in &s.changes {
            let _ = writeln!(out, "         {c}");
        }
    }
}

/// Prints one path with every property it violates (properties broken
/// by the same shortest path share it).
fn counterexample(out: &mut String, r: &Report, same_path: &[&Counterexample]) {
    let c = same_path[0];
    let names: Vec<&str> = same_path.iter().map(|c| c.property.as_str()).collect();
    let _ = writeln!(out, "\n{}: violates {}", name_of(r), names.join(", "));
    for c in same_path {
        let _ = writeln!(out, "  {}: {}", c.property, c.doc);
    }
    let shortest = if c.shortest {
        "a shortest path"
    } else {
        "the path the checker kept (the shortest-path search ran out of budget)"
    };
    let _ = writeln!(
        out,
        "  {} steps from the initial state, {shortest}:",
        c.steps.len()
    );
    steps(out, &c.steps);
    let _ = writeln!(out, "  replay: cpyrt check --replay {}", c.token);
}

/// What follows the table: why a run is not as expected or partial, and
/// the counterexample of every violated property.
pub fn details(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        for m in &r.mismatches {
            let _ = writeln!(out, "\n{}: NOT AS EXPECTED: {m}", name_of(r));
        }
        if let Some(bound) = r.bound {
            let _ = writeln!(
                out,
                "\n{}: partial: the {} bound was hit after {} states",
                name_of(r),
                bound.name(),
                thousands(r.total_states)
            );
        }
        let mut shown: Vec<&str> = Vec::new();
        for c in &r.counterexamples {
            if shown.contains(&c.token.as_str()) {
                continue;
            }
            shown.push(&c.token);
            let same: Vec<&Counterexample> = r
                .counterexamples
                .iter()
                .filter(|d| d.token == c.token)
                .collect();
            counterexample(&mut out, r, &same);
        }
        if let Some(x) = &r.checker {
            let holds = r.violated.is_empty() && !r.partial;
            out.push_str(&cpyrt_models::checker::registry::render(
                &name_of(r),
                holds,
                x,
            ));
        }
    }
    out
}

/// One JSON object for a report.
pub fn json_line(r: &Report) -> String {
    let kind = if r.expected.violated.is_empty() {
        "holds"
    } else {
        "violates"
    };
    let value = json!({
        "model": r.model,
        "variant": r.variant,
        "threads": r.threads,
        "bounds": r.bounds,
        "strategy": r.strategy,
        "expected": kind,
        "expected_violated": r.expected.violated,
        "expected_unreached": r.expected.unreached,
        "expected_unique_states": r.expected.unique_states,
        "expected_from": r.expected.source,
        "result": r.result,
        "violated": r.violated,
        "unreached": r.unreached,
        "status": r.status,
        "mismatches": r.mismatches,
        "unique_states": r.unique_states,
        "total_states": r.total_states,
        "depth": r.depth,
        "seconds": r.seconds,
        "partial": r.partial,
        "bound": r.bound,
        "counterexamples": r.counterexamples,
        "liveness": r.checker.as_ref().map(|x| &x.liveness),
        "liveness_unjudged": r.checker.as_ref().map(|x| &x.unjudged),
        "coverage": r.checker.as_ref().and_then(|x| x.coverage.as_ref()),
        "symmetry": r.checker.as_ref().is_some_and(|x| x.symmetry),
    });
    value.to_string()
}

/// A replayed path, step by step, and what its last state violates.
pub fn replay(mech: &dyn Mechanism, r: &Replay) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: replay of {} steps",
        config_name(&r.model, &r.variant, r.threads, &r.bounds),
        r.steps.len()
    );
    steps(&mut out, &r.steps);
    if r.violated.is_empty() {
        let _ = writeln!(out, "the last state violates no always-property");
    }
    let props = mech.properties();
    for v in &r.violated {
        let doc = props
            .iter()
            .find(|p| p.name == v)
            .map(|p| p.doc)
            .unwrap_or("");
        let _ = writeln!(out, "the last state violates {v}\n  ({doc})");
    }
    out
}
