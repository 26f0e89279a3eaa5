//! `cargo xtask <task>`: the project's multi-step jobs.
//!
//! - `test`: everything CI runs: the format check, `cargo test --workspace`,
//!   the loom pass (`--cfg cpyrt_loom`), the shuttle pass
//!   (`--cfg cpyrt_shuttle`) and the Miri pass over the reference's unsafe
//!   code. Installs the nightly Miri component itself when it is missing.
//! - `docs`: writes the docs site into `target/docs/`.
//! - `bench`: model throughput and reference costs, as ratios against
//!   baselines measured in the same run.
//!
//! The loom, shuttle and Miri passes build into their own target
//! directories (`target/loom`, `target/shuttle`, `target/miri`) so a cfg
//! change never invalidates the ordinary build.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

#[cfg(test)]
mod tidy;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "test" => test(rest),
        "docs" => docs(rest),
        "bench" => bench(rest),
        "help" | "--help" | "-h" => {
            println!("usage: cargo xtask <test|docs|bench> [options]");
            println!("  test [--skip-miri] [--only fmt|unit|loom|shuttle|miri]");
            println!("  docs [OUT_DIR]       (default target/docs)");
            println!(
                "  bench [section]      (throughput and cost ratios; sections: model, reference, models, stw, func-version, type-version, gil, fork)"
            );
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown task `{other}`; known: test, docs, bench")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("\n==> {step}");
    eprintln!("    {cmd:?}");
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: could not start: {e}"))?;
    eprintln!("<== {step}: {:.1}s", start.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

/// A cargo command for a cfg-switched pass, in its own target directory.
fn cfg_pass(cfg: &str, dir: &str) -> Command {
    let mut c = cargo();
    let flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    c.env(
        "RUSTFLAGS",
        format!("{flags} --cfg {cfg}").trim().to_string(),
    );
    c.env("CARGO_TARGET_DIR", root().join("target").join(dir));
    // Expected-panic tests (twins) would otherwise print long backtraces.
    c.env("RUST_BACKTRACE", "0");
    c
}

/// Test targets whose file names start with `prefix`, in `crate_dir/tests`.
fn test_targets(crate_dir: &str, prefix: &str) -> Vec<String> {
    let dir = root().join(crate_dir).join("tests");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".rs")?;
            stem.starts_with(prefix).then(|| stem.to_string())
        })
        .collect();
    names.sort();
    names
}

fn scheduler_pass(cfg: &str, prefix: &str) -> Result<(), String> {
    // Release mode: loom and shuttle explore many executions, and debug
    // builds are several times slower at it.
    let mut c = cfg_pass(cfg, prefix);
    c.args(["test", "--release"]);
    let mut any = false;
    for krate in ["reference", "conformance"] {
        let targets = test_targets(krate, &format!("{prefix}_"));
        if targets.is_empty() {
            continue;
        }
        c.args(["-p", &format!("cpyrt-{krate}")]);
        for t in targets {
            c.args(["--test", &t]);
            any = true;
        }
    }
    if !any {
        return Err(format!("no {prefix}_*.rs test targets found"));
    }
    run(&format!("{prefix} pass (--cfg {cfg})"), c)
}

/// `cargo` through the rustup proxy, so `+nightly` selects the toolchain.
/// (`$CARGO` names the stable toolchain's own binary, which rejects `+`.)
fn nightly_cargo() -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(root());
    for var in ["CARGO", "RUSTC", "RUSTDOC", "RUSTUP_TOOLCHAIN"] {
        c.env_remove(var);
    }
    c.arg("+nightly");
    c
}

fn ensure_miri() -> Result<(), String> {
    let have = nightly_cargo()
        .args(["miri", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        let mut c = Command::new("rustup");
        c.args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            "miri",
            "--component",
            "rust-src",
        ]);
        run("install nightly miri", c)?;
    }
    let mut c = nightly_cargo();
    c.args(["miri", "setup"]);
    run("miri setup", c)
}

fn miri_pass() -> Result<(), String> {
    ensure_miri()?;
    let targets = test_targets("reference", "miri_");
    if targets.is_empty() {
        return Err("no reference/tests/miri_*.rs test targets found".into());
    }
    let mut c = nightly_cargo();
    c.env("CARGO_TARGET_DIR", root().join("target").join("miri"));
    c.env("RUST_BACKTRACE", "0");
    c.args(["miri", "test", "-p", "cpyrt-reference"]);
    for t in targets {
        c.args(["--test", &t]);
    }
    run("miri pass", c)
}

fn test(args: &[String]) -> Result<(), String> {
    let skip_miri = args.iter().any(|a| a == "--skip-miri");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let wants = |step: &str| only.is_none_or(|o| o == step);
    let start = Instant::now();
    if wants("fmt") {
        let mut c = cargo();
        c.args(["fmt", "--all", "--", "--check"]);
        run("format check", c)?;
    }
    if wants("unit") {
        let mut c = cargo();
        c.args(["test", "--workspace", "--no-fail-fast"]);
        run("cargo test --workspace", c)?;
    }
    if wants("loom") {
        scheduler_pass("cpyrt_loom", "loom")?;
    }
    if wants("shuttle") {
        scheduler_pass("cpyrt_shuttle", "shuttle")?;
    }
    if wants("miri") && !skip_miri {
        miri_pass()?;
    }
    eprintln!(
        "\nxtask test: all steps passed in {:.0}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn docs(args: &[String]) -> Result<(), String> {
    let out = args
        .first()
        .cloned()
        .unwrap_or_else(|| root().join("target").join("docs").display().to_string());
    let mut c = cargo();
    c.args(["run", "--release", "-q", "-p", "cpyrt-docs", "--", &out]);
    run("generate docs", c)?;
    eprintln!("docs written to {out}/index.html");
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    let mut c = cargo();
    c.args([
        "run",
        "--release",
        "-q",
        "-p",
        "cpyrt-conformance",
        "--bin",
        "cpyrt-bench",
        "--",
    ]);
    c.args(args);
    run("bench", c)
}
