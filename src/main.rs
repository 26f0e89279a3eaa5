//! `cpyrt`: list the models of CPython's free-threading machinery and
//! check them against the manifest.
//!
//! Exit codes: 0 every result as expected; 1 some result not as expected;
//! 2 usage error (unknown model or variant, thread count out of range,
//! malformed replay token, bad bound); 3 a bound was hit before a result.

mod check;
mod graph;
mod list;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a usage error (clap's own errors use it too).
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "cpyrt",
    version,
    about = "Exhaustive models of CPython's free-threading and subinterpreter machinery"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List models: their variants, properties and manifest configurations.
    List {
        /// Only this model.
        model: Option<String>,
    },
    /// Check model configurations against the manifest.
    Check(check::CheckArgs),
    /// Export one configuration's reachable state graph (DOT, JSON, SVG).
    Graph(graph::GraphArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::List { model } => list::run(model.as_deref()),
        Command::Check(args) => check::run(&args),
        Command::Graph(args) => graph::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
