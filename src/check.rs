//! `cpyrt check`: which configurations to run, running them with progress,
//! and the exit code.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use cpyrt_models::manifest;
use cpyrt_models::registry::{self, DEFAULT_BOUNDS, Mechanism, Token};
use cpyrt_models::report::{Report, Status};
use cpyrt_models::run::{Progress, RunOptions, Strategy};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output;

#[derive(Args)]
pub struct CheckArgs {
    /// The model to check (every manifest configuration of it); without
    /// it, every configuration in the manifest.
    pub model: Option<String>,
    /// Only this variant (`base` or a broken twin; `cpyrt list` names them).
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
    /// Only this many threads.
    #[arg(long, value_name = "N", value_parser = whole_number, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Only this bounds profile (`default`, or one `cpyrt list` names).
    #[arg(long, value_name = "NAME")]
    pub bounds: Option<String>,
    /// Search order; defaults to the manifest's, else bfs.
    #[arg(long, value_name = "bfs|dfs", value_parser = strategy)]
    pub strategy: Option<Strategy>,
    /// Stop each run after generating N states (revisits included).
    #[arg(long, value_name = "N", value_parser = positive_number, allow_negative_numbers = true)]
    pub max_states: Option<usize>,
    /// Stop each run after SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = positive_seconds, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,
    /// One JSON object per configuration per line, on stdout.
    #[arg(long)]
    pub json: bool,
    /// Explore one representative per renaming of threads, breadth first
    /// on the checker's own state graph (liveness is then not judged).
    #[arg(long)]
    pub symmetry: bool,
    /// Count transitions per event kind; list the kinds that never fire.
    #[arg(long)]
    pub coverage: bool,
    /// Do not judge the liveness properties (judged by default, on the
    /// state graph, under the fairness the model declares).
    #[arg(long)]
    pub no_liveness: bool,
    /// Replay a counterexample from its token (printed with every
    /// counterexample).
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["variant", "threads", "bounds", "strategy", "max_states", "timeout"])]
    pub replay: Option<String>,
}

fn whole_number(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .map_err(|_| format!("expected a whole number, got '{s}'"))
}

fn positive_number(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive whole number, got '{s}'")),
    }
}

fn positive_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() && x < 1e9 => Ok(Duration::from_secs_f64(x)),
        _ => Err(format!("expected a positive number of seconds, got '{s}'")),
    }
}

fn strategy(s: &str) -> Result<Strategy, String> {
    Strategy::parse(s).ok_or_else(|| format!("expected bfs or dfs, got '{s}'"))
}

/// One configuration to run.
struct Planned {
    mech: &'static dyn Mechanism,
    variant: String,
    threads: usize,
    bounds: String,
    strategy: Strategy,
}

/// The configurations the arguments select (see `CheckArgs::model`).
fn plan(args: &CheckArgs) -> Result<Vec<Planned>, String> {
    let entries = manifest::entries()?;
    let Some(model) = &args.model else {
        if args.variant.is_some() || args.threads.is_some() || args.bounds.is_some() {
            return Err("--variant, --threads and --bounds need a MODEL".into());
        }
        return entries
            .iter()
            .map(|e| {
                Ok(Planned {
                    mech: registry::find(&e.model)?,
                    variant: e.variant.clone(),
                    threads: e.threads,
                    bounds: e.bounds.clone(),
                    strategy: args.strategy.unwrap_or(e.strategy),
                })
            })
            .collect();
    };
    let mech = registry::find(model)?;
    if let Some(v) = &args.variant {
        mech.variant(v)?;
    }
    if let Some(t) = args.threads {
        mech.check_threads(t)?;
    }
    if let Some(b) = &args.bounds {
        mech.check_bounds(b)?;
    }
    let pinned: Vec<Planned> = entries
        .iter()
        .filter(|e| e.model == mech.name())
        .filter(|e| args.variant.as_ref().is_none_or(|v| *v == e.variant))
        .filter(|e| args.threads.is_none_or(|t| t == e.threads))
        .filter(|e| args.bounds.as_ref().is_none_or(|b| *b == e.bounds))
        .map(|e| Planned {
            mech,
            variant: e.variant.clone(),
            threads: e.threads,
            bounds: e.bounds.clone(),
            strategy: args.strategy.unwrap_or(e.strategy),
        })
        .collect();
    if !pinned.is_empty() {
        return Ok(pinned);
    }
    // Not in the manifest: the selected variants (all by default) at the
    // selected thread count and bounds (the model's defaults).
    let threads = args.threads.unwrap_or(mech.default_threads());
    let bounds = args.bounds.as_deref().unwrap_or(DEFAULT_BOUNDS);
    Ok(mech
        .variants()
        .iter()
        .filter(|v| args.variant.as_ref().is_none_or(|n| n == v.name))
        .map(|v| Planned {
            mech,
            variant: v.name.to_string(),
            threads,
            bounds: bounds.to_string(),
            strategy: args.strategy.unwrap_or_default(),
        })
        .collect())
}

/// A spinner on stderr, shown only once a run has taken a second, only
/// on a terminal, never with --json.
struct Spinner {
    enabled: bool,
    label: String,
    bar: Option<ProgressBar>,
}

impl Spinner {
    fn update(&mut self, p: &Progress) {
        if !self.enabled || p.elapsed < Duration::from_secs(1) {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(self.label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(format!(
            "{} unique states, {} total, depth {}, {:.0}s",
            output::thousands(p.unique_states),
            output::thousands(p.total_states),
            p.depth,
            p.elapsed.as_secs_f64()
        ));
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

pub fn run(args: &CheckArgs) -> Result<ExitCode, String> {
    if let Some(text) = &args.replay {
        return replay(args, text);
    }
    let planned = plan(args)?;
    let opts = |strategy| RunOptions {
        strategy,
        max_states: args.max_states,
        timeout: args.timeout,
        symmetry: args.symmetry,
        coverage: args.coverage,
        skip_liveness: args.no_liveness,
        ..RunOptions::default()
    };
    let interactive = !args.json && std::io::stderr().is_terminal();
    let mut reports: Vec<Report> = Vec::new();
    for p in &planned {
        let mut spinner = Spinner {
            enabled: interactive,
            label: output::config_name(p.mech.name(), &p.variant, p.threads, &p.bounds),
            bar: None,
        };
        let report = registry::check(
            p.mech,
            &p.variant,
            p.threads,
            &p.bounds,
            &opts(p.strategy),
            &mut |pr| spinner.update(pr),
        );
        spinner.finish();
        let report = report?;
        if args.json {
            // One line per configuration as soon as it is done.
            output::emit(&format!("{}\n", output::json_line(&report)))?;
        }
        reports.push(report);
    }
    if !args.json {
        output::emit(&output::table(&reports))?;
        output::emit(&output::details(&reports))?;
    }
    Ok(exit_code(&reports))
}

fn exit_code(reports: &[Report]) -> ExitCode {
    if reports.iter().any(|r| r.status == Status::NotAsExpected) {
        ExitCode::from(1)
    } else if reports.iter().any(|r| r.status == Status::Partial) {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn replay(args: &CheckArgs, text: &str) -> Result<ExitCode, String> {
    let token = Token::parse(text)?;
    let mech = registry::find(&token.model)?;
    if let Some(model) = &args.model
        && *model != token.model
    {
        return Err(format!(
            "replay token is for model '{}', not '{model}'",
            token.model
        ));
    }
    let replay = mech.replay(&token)?;
    if args.json {
        output::emit(&format!(
            "{}\n",
            serde_json::to_string(&replay).expect("a replay serializes")
        ))?;
    } else {
        output::emit(&output::replay(mech, &replay))?;
    }
    Ok(ExitCode::SUCCESS)
}
