//! `cargo xtask fuzz --minutes N`: builds the `cargo fuzz` target `fuzz/fuzz_targets/ring.rs`
//! with libFuzzer's coverage instrumentation on the stable toolchain (the flags cargo-fuzz
//! would pass, without its nightly-only sanitizer), then runs it for N minutes over the kept
//! corpus `fuzz/corpus/ring/`, which grows with every input that reaches new code. Crashes
//! land in `target/fuzz/artifacts/`. It ends with the number of executions and crashes.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Coverage instrumentation for libFuzzer (as cargo-fuzz sets it), plus the checks a debug
/// build has, so an overflow in the handler is a crash too.
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg=fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];
/// Instrumented code must not reach build scripts, so the target is named explicitly.
const TARGET: &str = "x86_64-unknown-linux-gnu";

pub fn run(root: &Path, minutes: u32) -> Result<i32> {
    if minutes == 0 {
        bail!("--minutes must be at least 1");
    }
    let target_dir = root.join("target/fuzz");
    let corpus = root.join("fuzz/corpus/ring");
    let artifacts = target_dir.join("artifacts");
    std::fs::create_dir_all(&corpus).context("creating the corpus directory")?;
    std::fs::create_dir_all(&artifacts).context("creating the artifacts directory")?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(root.join("fuzz"))
        .args(["build", "--release", "--bin", "ring", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", RUSTFLAGS.join(" "));
    super::run_checked(&mut build)?;

    let before = crashes(&artifacts)?;
    let binary = target_dir.join(TARGET).join("release/ring");
    let child = Command::new(&binary)
        .arg(format!("-max_total_time={}", u64::from(minutes) * 60))
        .args(["-max_len=4096", "-timeout=10", "-print_final_stats=1"])
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("can't start {}", binary.display()))?;
    // The target keeps its mounts in a directory named after its process.
    let scratch = std::env::temp_dir().join(format!("litebox-fuzz-{}", child.id()));
    let output = child.wait_with_output().context("waiting for the fuzzer")?;
    let _ = std::fs::remove_dir_all(scratch);
    let log = String::from_utf8_lossy(&output.stderr);
    let log_path = target_dir.join("ring.log");
    std::fs::write(&log_path, log.as_bytes()).context("writing the fuzzing log")?;

    let executions = log
        .lines()
        .find_map(|line| line.strip_prefix("stat::number_of_executed_units:"))
        .map_or("unknown".to_string(), |n| n.trim().to_string());
    let found = crashes(&artifacts)? - before;
    let inputs = std::fs::read_dir(&corpus).map(Iterator::count).unwrap_or(0);
    println!(
        "xtask fuzz: {executions} executions in {minutes} min, {found} crashes, corpus of \
         {inputs} inputs (log: {})",
        log_path.display()
    );
    if found > 0 || !output.status.success() {
        println!("xtask fuzz: crash inputs are in {}", artifacts.display());
        return Ok(1);
    }
    Ok(0)
}

/// Crash, timeout and out-of-memory inputs libFuzzer has saved.
fn crashes(artifacts: &Path) -> Result<usize> {
    let entries = std::fs::read_dir(artifacts).context("listing the fuzzing artifacts")?;
    Ok(entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            ["crash-", "timeout-", "oom-", "leak-"].iter().any(|kind| name.starts_with(kind))
        })
        .count())
}
