//! The docs site generator: one page per mechanism, fed by the spec (its
//! prose in `spec/<mech>.md`, its module docs, its named properties) and by
//! live model runs (state counts, results, each twin's counterexample, the
//! state graph of a small configuration).
//!
//! Nothing on a page is written by hand here: prose is quoted from the spec
//! files, property statements from the spec's invariant docs, numbers from
//! runs made while generating. The page says when it was generated from
//! which configurations, so a reader can reproduce every number with
//! `cpyrt check`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cpyrt_models::manifest;
use cpyrt_models::registry::{self, MECHANISMS, Mechanism};
use cpyrt_models::report::{Counterexample, Report};
use cpyrt_models::run::RunOptions;

mod graph;

/// The repository root (the docs are generated from a source checkout).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("docs/ sits below the workspace root")
        .to_path_buf()
}

/// The file stem a mechanism uses in every layer (`func-version` ->
/// `func_version`).
pub fn stem(mech: &dyn Mechanism) -> String {
    mech.name().replace('-', "_")
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Renders Markdown to HTML.
pub fn markdown(text: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    let mut out = String::new();
    html::push_html(&mut out, Parser::new_ext(text, Options::ENABLE_TABLES));
    out
}

/// The leading `//!` block of a Rust source file, as Markdown.
pub fn module_doc(source: &str) -> String {
    source
        .lines()
        .take_while(|l| l.trim_start().starts_with("//!") || l.trim().is_empty())
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4}pre{padding:.6rem;overflow-x:auto}\
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#eee}.ok{color:#070}.bad{color:#b00}.note{color:#666;font-size:90%}\
ol.steps li{margin-bottom:.4rem}ol.steps .chg{color:#555;font-size:90%;white-space:pre-wrap}\
nav a{margin-right:1rem}details{margin:.5rem 0}svg{max-width:100%;height:auto}";

fn page(title: &str, body: &str) -> String {
    let mut nav = String::from("<nav><a href=\"index.html\">cpyrt</a>");
    for m in MECHANISMS {
        let _ = write!(nav, "<a href=\"{0}.html\">{0}</a>", m.name());
    }
    nav.push_str("</nav>");
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{nav}\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// One live run of a manifest configuration.
pub struct Row {
    pub report: Report,
}

fn runs(mech: &dyn Mechanism, log: &mut dyn FnMut(&str)) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for e in manifest::entries()?
        .into_iter()
        .filter(|e| e.model == mech.name())
    {
        log(&format!(
            "  checking {} {} at {} threads",
            e.model, e.variant, e.threads
        ));
        let opts = RunOptions {
            strategy: e.strategy,
            ..RunOptions::default()
        };
        let report = registry::check(mech, &e.variant, e.threads, &e.bounds, &opts, &mut |_| {})?;
        rows.push(Row { report });
    }
    Ok(rows)
}

fn properties_table(mech: &dyn Mechanism) -> String {
    let mut t = String::from("<table><tr><th>property</th><th>class</th><th>statement</th></tr>");
    for p in mech.properties() {
        let _ = write!(
            t,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(p.name),
            escape(p.kind.name()),
            escape(p.doc)
        );
    }
    t.push_str("</table>");
    t
}

fn runs_table(rows: &[Row]) -> String {
    let mut t = String::from(
        "<table><tr><th>variant</th><th>threads</th><th>bounds</th><th>strategy</th><th>unique states</th><th>depth</th><th>seconds</th><th>expected</th><th>result</th></tr>",
    );
    for r in rows {
        let r = &r.report;
        let ok = r.mismatches.is_empty() && !r.partial;
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td class=\"{}\">{}{}</td></tr>",
            escape(&r.variant),
            r.threads,
            escape(&r.bounds),
            r.strategy.name(),
            r.unique_states,
            r.depth,
            r.seconds,
            escape(&r.expected.summary()),
            if ok { "ok" } else { "bad" },
            escape(&r.summary()),
            if ok {
                String::new()
            } else {
                format!(" ({})", escape(&r.mismatches.join("; ")))
            }
        );
    }
    t.push_str("</table>");
    t
}

fn counterexample_html(cx: &Counterexample) -> String {
    let mut h = format!(
        "<p><strong><code>{}</code></strong>: {} ({} steps{})</p><ol class=\"steps\">",
        escape(&cx.property),
        escape(&cx.doc),
        cx.steps.len(),
        if cx.shortest { ", shortest" } else { "" }
    );
    for s in &cx.steps {
        let _ = write!(h, "<li><code>T{}</code> {}", s.thread, escape(&s.event));
        if !s.changes.is_empty() {
            let _ = write!(
                h,
                "<div class=\"chg\">{}</div>",
                escape(&s.changes.join("\n"))
            );
        }
        h.push_str("</li>");
    }
    let _ = write!(
        h,
        "</ol><p>Replay: <code>cpyrt check --replay {}</code></p>",
        escape(&cx.token)
    );
    h
}

/// The counterexamples section: per twin, its counterexample at the fewest
/// threads the manifest checks.
fn counterexamples(rows: &[Row]) -> String {
    let mut h = String::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut sorted: Vec<&Report> = rows.iter().map(|r| &r.report).collect();
    sorted.sort_by_key(|r| (r.variant.clone(), r.threads));
    for r in sorted {
        if r.counterexamples.is_empty() || !seen.insert(r.variant.clone()) {
            continue;
        }
        let _ = write!(
            h,
            "<h3><code>{}</code>, {} threads</h3>",
            escape(&r.variant),
            r.threads
        );
        for cx in &r.counterexamples {
            h.push_str(&counterexample_html(cx));
        }
    }
    if h.is_empty() {
        h.push_str("<p>No configuration in the manifest violates a property.</p>");
    }
    h
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn mechanism_page(mech: &dyn Mechanism, rows: &[Row]) -> String {
    let root = repo_root();
    let stem = stem(mech);
    let mut b = format!(
        "<h1>{}</h1><p>{}</p>",
        escape(mech.name()),
        escape(mech.about())
    );
    b.push_str("<h2>Variants</h2><table><tr><th>variant</th><th>design</th><th>expected</th></tr>");
    for v in mech.variants() {
        let expected = if v.violates.is_empty() {
            "holds".to_string()
        } else {
            format!(
                "violates {} (from {} threads)",
                v.violates.join(", "),
                v.violates_from
            )
        };
        let _ = write!(
            b,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(v.name),
            escape(v.doc),
            escape(&expected)
        );
    }
    b.push_str("</table><h2>Properties</h2>");
    b.push_str(&properties_table(mech));
    b.push_str("<h2>State counts (live runs)</h2>");
    b.push_str(&runs_table(rows));
    let _ = write!(
        b,
        "<p class=\"note\">Every number above was measured while generating this page. Reproduce with <code>cargo run --release -- check {}</code>.</p>",
        escape(mech.name())
    );
    b.push_str("<h2>Counterexamples of the broken twins</h2>");
    b.push_str(&counterexamples(rows));
    b.push_str("<h2>State graph</h2>");
    b.push_str(&graph::section(mech));
    b.push_str("<h2>Specification</h2>");
    match read(&root.join("spec").join(format!("{stem}.md"))) {
        Some(prose) => b.push_str(&markdown(&prose)),
        None => {
            let _ = write!(b, "<p class=\"bad\">spec/{stem}.md is missing.</p>");
        }
    }
    for (title, path) in [
        (
            "The spec module",
            root.join("spec/src").join(format!("{stem}.rs")),
        ),
        (
            "The model",
            root.join("models/src").join(format!("{stem}.rs")),
        ),
    ] {
        if let Some(src) = read(&path) {
            let _ = write!(
                b,
                "<details><summary>{title} (<code>{}</code>)</summary>{}</details>",
                escape(
                    &path
                        .strip_prefix(&root)
                        .unwrap_or(&path)
                        .display()
                        .to_string()
                ),
                markdown(&module_doc(&src))
            );
        }
    }
    page(&format!("cpyrt: {}", mech.name()), &b)
}

fn index_page(summaries: &[(String, String, usize, usize, usize)]) -> String {
    let mut b = String::from(
        "<h1>cpyrt</h1><p>Executable specs, exhaustive models with broken twins, and a reference runtime for the concurrency and isolation machinery of CPython's runtime.</p>",
    );
    b.push_str("<table><tr><th>mechanism</th><th>about</th><th>configurations</th><th>as expected</th><th>largest unique-state count</th></tr>");
    for (name, about, configs, ok, largest) in summaries {
        let _ = write!(
            b,
            "<tr><td><a href=\"{0}.html\">{0}</a></td><td>{1}</td><td>{2}</td><td class=\"{3}\">{4}</td><td>{5}</td></tr>",
            escape(name),
            escape(about),
            configs,
            if ok == configs { "ok" } else { "bad" },
            ok,
            largest
        );
    }
    b.push_str("</table>");
    if let Some(arch) = read(&repo_root().join("ARCHITECTURE.md")) {
        b.push_str(&markdown(&arch));
    }
    page("cpyrt", &b)
}

/// Writes the site into `out`; returns the number of pages written.
pub fn generate(out: &Path, log: &mut dyn FnMut(&str)) -> Result<usize, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    let mut summaries = Vec::new();
    for mech in MECHANISMS {
        log(&format!("{}:", mech.name()));
        let rows = runs(*mech, log)?;
        let ok = rows
            .iter()
            .filter(|r| r.report.mismatches.is_empty() && !r.report.partial)
            .count();
        let largest = rows
            .iter()
            .map(|r| r.report.unique_states)
            .max()
            .unwrap_or(0);
        write(
            &format!("{}.html", mech.name()),
            &mechanism_page(*mech, &rows),
        )?;
        summaries.push((
            mech.name().to_string(),
            mech.about().to_string(),
            rows.len(),
            ok,
            largest,
        ));
    }
    write("index.html", &index_page(&summaries))?;
    Ok(summaries.len() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_doc_takes_only_the_leading_block() {
        let src = "//! # Title\n//!\n//! Body `x`.\n\nuse a;\n//! not this\n";
        assert_eq!(module_doc(src), "# Title\n\nBody `x`.");
    }

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn every_mechanism_has_its_prose_spec() {
        for m in MECHANISMS {
            let path = repo_root().join("spec").join(format!("{}.md", stem(*m)));
            assert!(
                path.exists(),
                "{} has no prose spec at {}",
                m.name(),
                path.display()
            );
        }
    }
}
