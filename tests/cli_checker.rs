//! `cpyrt graph` and the checker's flags of `cpyrt check` as a user meets
//! them: outputs, one-line errors, and the JSON keys. 1 or 2 threads only.

use std::process::{Command, Output};

use serde_json::Value;

fn cpyrt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpyrt"))
        .args(args)
        .env_remove("CPYRT_MANIFEST")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Exit code 2, one line on stderr containing `needle`, no panic.
fn usage_error(args: &[&str], needle: &str) {
    let o = cpyrt(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn graph_prints_dot_and_json() {
    let o = cpyrt(&["graph", "qsbr", "--threads", "1"]);
    assert_eq!(o.status.code(), Some(0));
    let dot = stdout(&o);
    assert!(dot.starts_with("digraph {"));
    assert!(dot.contains("t0 Reserve index=0"));
    let o = cpyrt(&[
        "graph",
        "qsbr",
        "--threads",
        "2",
        "--format",
        "json",
        "--symmetry",
    ]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (v["symmetric"].as_bool(), v["unique_states"].as_u64()),
        (Some(true), Some(3471))
    );
}

#[test]
fn graph_refuses_bad_input_in_one_line() {
    usage_error(
        &["graph", "qsbr", "--threads", "2", "--max-states", "100"],
        "--max-states",
    );
    usage_error(&["graph", "qsbr", "--variant", "nope"], "unknown variant");
    usage_error(&["graph", "qsbr", "--threads", "9"], "threads");
    usage_error(&["graph", "qsbr", "--format", "png"], "png");
    usage_error(
        &["graph", "qsbr", "--threads", "2", "--format", "svg"],
        "SVG rendering stops",
    );
}

#[test]
fn check_reports_liveness_coverage_and_symmetry_in_json() {
    let o = cpyrt(&[
        "check",
        "qsbr",
        "--variant",
        "no-gc-advance",
        "--threads",
        "2",
        "--json",
        "--coverage",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["violated"][0], "retired_eventually_freed");
    assert_eq!(v["liveness"][0]["holds"], false);
    assert!(
        v["coverage"]["never_fired"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "Advance")
    );
    let o = cpyrt(&[
        "check",
        "qsbr",
        "--variant",
        "base",
        "--threads",
        "2",
        "--json",
        "--symmetry",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        (v["symmetry"].as_bool(), v["unique_states"].as_u64()),
        (Some(true), Some(3471))
    );
    assert_eq!(v["liveness_unjudged"][0], "retired_eventually_freed");
}

#[test]
fn the_lasso_prints_with_its_cycle_and_replays() {
    let o = cpyrt(&[
        "check",
        "qsbr",
        "--variant",
        "no-gc-advance",
        "--threads",
        "1",
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("steps 1 to 4 lead to the cycle; steps 5 to 6 repeat forever"),
        "{text}"
    );
    let o = cpyrt(&["check", "--replay", "qsbr/no-gc-advance/1/0.0.0.2.1.0"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("T0 Detach"));
}

#[test]
fn symmetry_refuses_what_it_cannot_bound() {
    usage_error(
        &[
            "check",
            "qsbr",
            "--threads",
            "2",
            "--symmetry",
            "--strategy",
            "dfs",
        ],
        "breadth first",
    );
    usage_error(
        &[
            "check",
            "qsbr",
            "--threads",
            "2",
            "--symmetry",
            "--timeout",
            "5",
        ],
        "--max-states",
    );
}
