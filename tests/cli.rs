//! The `cpyrt` binary as a user meets it: exit codes, one-line errors for
//! bad input (never a panic), JSON lines, partial runs and the replay
//! round trip. Every run here uses 1 or 2 threads to stay fast.

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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 2 with exactly one line on stderr containing `needle`.
fn usage_error(args: &[&str], needle: &str) {
    let o = cpyrt(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
}

/// Exit code 2 from argument parsing: clap's message, no panic.
fn parse_error(args: &[&str], needle: &str) {
    let o = cpyrt(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        err.lines().next().unwrap_or("").contains(needle),
        "{args:?}: {err}"
    );
}

fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn unknown_model_and_variant_name_the_known_ones() {
    usage_error(&["check", "nope"], "known models: qsbr");
    usage_error(&["list", "nope"], "unknown model 'nope'");
    usage_error(
        &["check", "qsbr", "--variant", "nope"],
        "known variants: base, free-before-goal, quiescent-in-read, stale-slot-pointer",
    );
    usage_error(
        &["check", "qsbr", "--bounds", "huge"],
        "known bounds: default, small",
    );
    usage_error(&["check", "--variant", "base"], "need a MODEL");
}

#[test]
fn thread_counts_outside_the_range_are_refused() {
    usage_error(
        &["check", "qsbr", "--threads", "0"],
        "qsbr supports 1 to 4 threads, got 0",
    );
    usage_error(
        &["check", "qsbr", "--threads", "5"],
        "qsbr supports 1 to 4 threads, got 5",
    );
    parse_error(
        &["check", "qsbr", "--threads", "-1"],
        "expected a whole number",
    );
}

#[test]
fn zero_and_negative_bounds_are_refused() {
    for args in [
        ["check", "qsbr", "--max-states", "0"],
        ["check", "qsbr", "--max-states", "-5"],
        ["check", "qsbr", "--max-states", "many"],
    ] {
        parse_error(&args, "expected a positive whole number");
    }
    for t in ["0", "-1", "nan", "inf"] {
        parse_error(
            &["check", "qsbr", "--timeout", t],
            "expected a positive number of seconds",
        );
    }
    parse_error(
        &["check", "qsbr", "--strategy", "random"],
        "expected bfs or dfs",
    );
}

#[test]
fn bad_replay_tokens_are_one_line_errors() {
    usage_error(&["check", "--replay", "garbage"], "malformed replay token");
    usage_error(
        &["check", "--replay", "qsbr/base/2/0.x"],
        "malformed replay token",
    );
    usage_error(
        &["check", "--replay", "nope/base/2/0"],
        "unknown model 'nope'",
    );
    usage_error(
        &["check", "--replay", "qsbr/nope/2/0"],
        "unknown variant 'nope'",
    );
    usage_error(&["check", "--replay", "qsbr/base/9/0"], "1 to 4 threads");
    usage_error(
        &["check", "--replay", "qsbr/base/2/0.0.99"],
        "step 3 takes action 99",
    );
    usage_error(
        &["check", "nope", "--replay", "qsbr/base/2/0"],
        "replay token is for model 'qsbr'",
    );
}

#[test]
fn json_lines_carry_the_report() {
    let o = cpyrt(&["check", "qsbr", "--threads", "2", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "no progress output with --json");
    let lines = json_lines(&o);
    let pinned = cpyrt_models::manifest::entries()
        .unwrap()
        .iter()
        .filter(|e| e.model == "qsbr" && e.threads == 2)
        .count();
    assert!(pinned >= 4);
    assert_eq!(
        lines.len(),
        pinned,
        "one line per configuration pinned at 2 threads"
    );
    for l in &lines {
        for field in [
            "model",
            "variant",
            "threads",
            "expected",
            "result",
            "violated",
            "unique_states",
            "seconds",
            "partial",
            "status",
            "counterexamples",
        ] {
            assert!(l.get(field).is_some(), "missing {field}: {l}");
        }
        assert_eq!(l["model"], "qsbr");
        assert_eq!(l["threads"], 2);
        assert_eq!(l["partial"], false);
        assert_eq!(l["status"], "as_expected");
        assert_eq!(l["expected_from"], "manifest");
    }
    let base = &lines[0];
    assert_eq!(base["variant"], "base");
    assert_eq!(base["result"], "holds");
    assert_eq!(base["unique_states"], 6879);
    let twin = lines
        .iter()
        .find(|l| l["variant"] == "free-before-goal")
        .unwrap();
    assert_eq!(twin["result"], "violates");
    assert_eq!(twin["expected"], "violates");
    assert_eq!(twin["violated"][0], "no_use_after_free");
    let cx = &twin["counterexamples"][0];
    assert!(
        cx["token"]
            .as_str()
            .unwrap()
            .starts_with("qsbr/free-before-goal/2/")
    );
    assert!(cx["steps"].as_array().unwrap().len() >= 2);
    assert!(cx["steps"][0]["event"].is_string());
}

#[test]
fn replay_round_trip() {
    let o = cpyrt(&[
        "check",
        "qsbr",
        "--variant",
        "stale-slot-pointer",
        "--threads",
        "2",
        "--json",
    ]);
    let line = &json_lines(&o)[0];
    let cx = &line["counterexamples"][0];
    let token = cx["token"].as_str().unwrap();
    let property = cx["property"].as_str().unwrap();

    let text = cpyrt(&["check", "--replay", token]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let out = stdout(&text);
    assert!(
        out.contains(&format!("the last state violates {property}")),
        "{out}"
    );
    assert!(out.contains("T0 UnregisterRelease"), "{out}");

    let json = cpyrt(&["check", "qsbr", "--replay", token, "--json"]);
    let r = &json_lines(&json)[0];
    assert_eq!(r["token"], token);
    assert_eq!(r["steps"], cx["steps"]);
    assert!(
        r["violated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == property)
    );
}

#[test]
fn table_then_counterexamples_with_tokens() {
    let o = cpyrt(&[
        "check",
        "qsbr",
        "--variant",
        "free-before-goal",
        "--threads",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().next().unwrap();
    for col in [
        "model", "variant", "threads", "unique", "depth", "seconds", "expected", "result",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert!(out.contains("12,581"), "{out}");
    assert!(out.contains("violates no_use_after_free"), "{out}");
    assert!(out.contains("T1 FreeOwn { object: 0 }"), "{out}");
    assert!(
        out.contains("objects[0]: Retired { goal: 3 } -> Freed"),
        "{out}"
    );
    assert!(out.contains("replay: cpyrt check --replay qsbr/free-before-goal/2/"));
}

#[test]
fn a_bound_hit_first_exits_3_with_a_partial_report() {
    let o = cpyrt(&[
        "check",
        "qsbr",
        "--variant",
        "base",
        "--threads",
        "2",
        "--max-states",
        "100",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let r = &json_lines(&o)[0];
    assert_eq!(r["partial"], true);
    assert_eq!(r["bound"], "max_states");
    assert_eq!(r["result"], "incomplete");
    assert_eq!(r["total_states"], 100);
}

#[test]
fn a_result_the_manifest_does_not_expect_exits_1() {
    let real: Value = serde_json::from_str(cpyrt_models::manifest::TEXT).unwrap();
    let mut changed = real.clone();
    for e in changed["configurations"].as_array_mut().unwrap() {
        if e["variant"] == "base" && e["threads"] == 1 {
            e["unique_states"] = Value::from(105);
        }
    }
    let path = std::env::temp_dir().join(format!("cpyrt-cli-manifest-{}.json", std::process::id()));
    std::fs::write(&path, changed.to_string()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_cpyrt"))
        .args(["check", "qsbr", "--variant", "base", "--threads", "1"])
        .env("CPYRT_MANIFEST", &path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("NOT AS EXPECTED: 104 unique states, manifest pins 105"),
        "{out}"
    );
}

#[test]
fn list_names_variants_properties_and_configurations() {
    let o = cpyrt(&["list", "qsbr"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for needle in [
        "qsbr: ",
        "threads: 1 to 4 (default 2)",
        "stale-slot-pointer",
        "gh-115103",
        "small",
        "qsbr/base, 4 threads, small bounds (bfs): holds, 1,491,800 unique states",
    ] {
        assert!(out.contains(needle), "missing '{needle}' in:\n{out}");
    }
    let line = |kind: &str, name: &str| {
        out.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() > 2 && words[0] == kind && words[1] == name
        })
    };
    assert!(line("always", "no_use_after_free"), "{out}");
    assert!(line("sometimes", "array_grown"), "{out}");
}

#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    // `cpyrt check --json | head -1`: the reader closes the pipe after the
    // first line; the next write fails with a broken pipe, which must end
    // the run with success and no panic message.
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpyrt"))
        .args(["check", "qsbr", "--threads", "2", "--json"])
        .env_remove("CPYRT_MANIFEST")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    // The reader is dropped here, closing the pipe.
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
}
