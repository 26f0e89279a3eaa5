//! The state-graph section of a mechanism page: the reachable graph of the
//! largest configuration of the shipped design that stays readable (at
//! most [`CAP`] states, symmetry-reduced when that is what fits), rendered
//! to SVG with Graphviz when it is installed, else shown as DOT source.

use cpyrt_models::checker::export::to_svg;
use cpyrt_models::registry::{DEFAULT_BOUNDS, Mechanism};

use crate::escape;

/// Most states a drawn graph may have; beyond this a drawing stops being
/// something a reader can follow.
pub const CAP: usize = 400;

pub fn section(mech: &dyn Mechanism) -> String {
    let Some(checker) = mech.checker() else {
        return format!(
            "<p class=\"note\">{} declares no checker hooks, so it has no graph export.</p>",
            escape(mech.name())
        );
    };
    let mut best = None;
    for threads in mech.threads() {
        for symmetric in [false, true] {
            if let Ok(out) = checker.graph("base", threads, DEFAULT_BOUNDS, "dot", CAP, symmetric) {
                best = Some((threads, symmetric, out));
                break;
            }
        }
    }
    let Some((threads, symmetric, out)) = best else {
        return format!(
            "<p class=\"note\">Every configuration of {} has more than {CAP} states; export one with <code>cpyrt graph {} --format dot</code>.</p>",
            escape(mech.name()),
            escape(mech.name())
        );
    };
    let what = format!(
        "<p>The shipped design at {threads} thread{}{}: {} states, {} transitions. Reproduce with <code>cpyrt graph {} --threads {threads}{} --format svg</code>.</p>",
        if threads == 1 { "" } else { "s" },
        if symmetric {
            ", one state per renaming of threads"
        } else {
            ""
        },
        out.unique_states,
        out.edges,
        escape(mech.name()),
        if symmetric { " --symmetry" } else { "" },
    );
    match to_svg(&out.text) {
        Ok(svg) => format!("{what}<details><summary>Show the graph</summary>{svg}</details>"),
        Err(why) => format!(
            "{what}<p class=\"note\">{}</p><details><summary>DOT source</summary><pre>{}</pre></details>",
            escape(&why),
            escape(&out.text)
        ),
    }
}
