//! Many sandboxes in one process through the library API, as a control plane runs them:
//! 1,000 one after another, then 1,000 four at a time (each confined to its own run thread).
//! Every run must give the right output, and the process's open fds and resident memory must
//! be where they were before (no fd leaked per run, no memory growth beyond noise).
//!
//! `LITEBOX_STRESS_RUNS` changes the count of each half (default 1000).

mod common;

use std::path::Path;
use std::thread;
use std::time::Instant;

use litebox_vmm::{Confinement, Input, Output, Sandbox};

/// Resident memory may move this much between the two measurements (allocator noise).
const RSS_NOISE_KIB: u64 = 8 << 10;

fn runs() -> usize {
    std::env::var("LITEBOX_STRESS_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("listing /proc/self/fd").count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn hello(image: &Path, confinement: Confinement) {
    let outcome = Sandbox::builder(image)
        .confinement(confinement)
        .stdin(Input::Null)
        .stdout(Output::Capture)
        .stderr(Output::Capture)
        .timeout(common::run_limit())
        .build()
        .and_then(Sandbox::run)
        .unwrap_or_else(|error| panic!("a sandbox failed: {error}"));
    assert_eq!(outcome.exit_code(), 0, "stderr: {}", String::from_utf8_lossy(&outcome.stderr));
    assert_eq!(outcome.stdout, b"hello, world\n");
}

#[test]
fn a_thousand_sandboxes_in_a_row_and_four_at_a_time_leak_nothing() {
    let image = common::image("hello-musl");
    let runs = runs();
    // Warm up as the measured runs will go: the allocator's per-thread arenas, lazily built
    // statics, the kick handler.
    let four_at_a_time = |count: usize| {
        thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..count / 4 {
                        hello(&image, Confinement::Thread);
                    }
                });
            }
        });
    };
    for _ in 0..20 {
        hello(&image, Confinement::None);
    }
    four_at_a_time(40);
    let (fds_before, rss_before) = (open_fds(), rss_kib());

    let started = Instant::now();
    for _ in 0..runs {
        hello(&image, Confinement::None);
    }
    let sequential = started.elapsed();

    let started = Instant::now();
    four_at_a_time(runs);
    let parallel = started.elapsed();

    let (fds_after, rss_after) = (open_fds(), rss_kib());
    eprintln!(
        "{runs} in a row: {sequential:.2?}; {runs} four at a time: {parallel:.2?}; fds \
         {fds_before} -> {fds_after}; RSS {rss_before} -> {rss_after} KiB"
    );
    assert_eq!(fds_after, fds_before, "file descriptors leaked");
    assert!(
        rss_after <= rss_before + RSS_NOISE_KIB,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );
}
