//! `cpyrt graph`: the reachable state graph of one configuration, as DOT,
//! JSON or SVG (DOT piped through Graphviz's `dot -Tsvg`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cpyrt_models::registry::{self, DEFAULT_BOUNDS};

#[derive(Args)]
pub struct GraphArgs {
    /// The model (`cpyrt list` names them).
    pub model: String,
    /// The variant: `base` or a broken twin.
    #[arg(long, value_name = "NAME", default_value = "base")]
    pub variant: String,
    /// Thread count; defaults to the model's.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Bounds profile.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_BOUNDS)]
    pub bounds: String,
    /// Output format.
    #[arg(long, value_name = "dot|json|svg", default_value = "dot", value_parser = ["dot", "json", "svg"])]
    pub format: String,
    /// Refuse graphs with more unique states than this (a drawing of more
    /// than a few thousand states is hard to read).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_GRAPH_STATES, value_parser = positive)]
    pub max_states: usize,
    /// One representative per renaming of threads.
    #[arg(long)]
    pub symmetry: bool,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Default cap on the states `cpyrt graph` exports.
pub const DEFAULT_GRAPH_STATES: usize = 20_000;
/// Cap on the states rendered to SVG: Graphviz's `dot` layout grows much
/// faster than the graph (4 s of CPU for QSBR's 764-state twin at 2
/// threads, more than a minute for 6,879 states); larger graphs are better
/// exported as DOT and laid out with `sfdp`.
pub const SVG_MAX_STATES: usize = 1_500;

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive whole number, got '{s}'")),
    }
}

pub fn run(args: &GraphArgs) -> Result<ExitCode, String> {
    let mech = registry::find(&args.model)?;
    let threads = args.threads.unwrap_or(mech.default_threads());
    let checker = mech.checker().ok_or_else(|| {
        format!(
            "{} declares no checker hooks (models/src/checker/registry.rs), so it has no graph export",
            mech.name()
        )
    })?;
    let cap = if args.format == "svg" {
        args.max_states.min(SVG_MAX_STATES)
    } else {
        args.max_states
    };
    let out = checker
        .graph(
            &args.variant,
            threads,
            &args.bounds,
            &args.format,
            cap,
            args.symmetry,
        )
        .map_err(|e| {
            if args.format == "svg" && cap < args.max_states {
                format!(
                    "SVG rendering stops at {SVG_MAX_STATES} states and this graph has more; \
                     export --format dot and lay it out with `sfdp -Tsvg`, or choose a smaller configuration"
                )
            } else {
                e
            }
        })?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &out.text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!(
                "{}: {} states, {} transitions",
                path.display(),
                out.unique_states,
                out.edges
            );
        }
        None => {
            // A closed pipe (`cpyrt graph ... | head`) is not an error.
            crate::output::emit(&out.text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
