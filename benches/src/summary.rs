//! Turning raw runs into figures: the min/median/max of repeated samples, and reading the two
//! kinds of text the measured programs print on stderr: `litebox-vmm --stats` and the
//! `bench MODE calls=N ns=X` line of `bench-syscalls`. Pure functions, no I/O.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// The spread of one figure's repeated samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub count: usize,
}

impl Summary {
    /// The summary of `samples`; `None` when there are none (or one is not a number).
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|sample| sample.is_nan()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Self {
            min: sorted[0],
            median,
            max: sorted[sorted.len() - 1],
            count: sorted.len(),
        })
    }
}

/// What `litebox-vmm --stats` reports that the figures use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmmStats {
    pub setup: Duration,
    pub to_first_instruction: Option<Duration>,
    pub to_exit: Duration,
    pub exits: u64,
    pub ring_requests: u64,
}

/// Reads the `--stats` block out of a sandbox's stderr.
pub fn parse_vmm_stats(stderr: &str) -> Result<VmmStats> {
    let Some(start) = stderr.find("litebox-vmm stats:") else {
        bail!("no `litebox-vmm stats:` block in the sandbox's stderr");
    };
    let mut stats = VmmStats::default();
    let (mut setup, mut exit, mut exits, mut requests) = (false, false, false, false);
    for line in stderr[start..].lines().skip(1) {
        let Some((key, value)) = line.trim().split_once(": ") else {
            continue;
        };
        match key {
            "setup (KVM, memory, loading)" => {
                stats.setup = milliseconds(value)?;
                setup = true;
            }
            "start to first instruction" => {
                stats.to_first_instruction = milliseconds(value).ok();
            }
            "start to exit" => {
                stats.to_exit = milliseconds(value)?;
                exit = true;
            }
            "exits" => {
                stats.exits = leading_count(value)?;
                exits = true;
            }
            "ring requests" => {
                stats.ring_requests = leading_count(value)?;
                requests = true;
            }
            _ => {}
        }
    }
    if !(setup && exit && exits && requests) {
        bail!("the `litebox-vmm stats:` block lacks setup, start to exit, exits or requests");
    }
    Ok(stats)
}

/// `12.345 ms` as a duration.
fn milliseconds(value: &str) -> Result<Duration> {
    let number = value
        .strip_suffix(" ms")
        .with_context(|| format!("not in ms: {value:?}"))?;
    let ms: f64 = number
        .parse()
        .with_context(|| format!("not a number: {number:?}"))?;
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// The count that starts `196 (doorbell 196)`.
fn leading_count(value: &str) -> Result<u64> {
    let number = value.split_whitespace().next().unwrap_or_default();
    number
        .parse()
        .with_context(|| format!("no count in {value:?}"))
}

/// One `bench-syscalls` result: how many calls were timed and what each cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallTiming {
    pub calls: u64,
    pub ns_per_call: f64,
}

/// Reads the `bench MODE calls=N ns=X` line for `mode` out of stderr.
pub fn parse_call_timing(stderr: &str, mode: &str) -> Result<CallTiming> {
    let prefix = format!("bench {mode} ");
    let Some(line) = stderr.lines().find_map(|line| line.strip_prefix(&prefix)) else {
        bail!("no `{prefix}...` line in: {}", stderr.trim());
    };
    let mut calls = None;
    let mut ns_per_call = None;
    for field in line.split_whitespace() {
        if let Some(value) = field.strip_prefix("calls=") {
            calls = value.parse().ok();
        } else if let Some(value) = field.strip_prefix("ns=") {
            ns_per_call = value.parse().ok();
        }
    }
    match (calls, ns_per_call) {
        (Some(calls), Some(ns_per_call)) => Ok(CallTiming { calls, ns_per_call }),
        _ => bail!("malformed bench line: {line:?}"),
    }
}

/// The KiB in the `peak-rss kib=N` line the `peak-rss` helper prints on stderr.
pub fn parse_peak_rss(stderr: &str) -> Result<u64> {
    let Some(value) = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak-rss kib="))
    else {
        bail!("no `peak-rss kib=` line in: {}", stderr.trim());
    };
    value
        .trim()
        .parse()
        .with_context(|| format!("not a number: {value:?}"))
}

/// From `/proc/PID/smaps`: the resident KiB of the largest mapping that is at least
/// `at_least` bytes (the guest memory region, which is one anonymous mapping of the guest's
/// size). `None` when there is no such mapping.
pub fn largest_mapping_rss_kib(smaps: &str, at_least: u64) -> Option<u64> {
    let mut best: Option<(u64, u64)> = None;
    let mut size_kib = 0;
    for line in smaps.lines() {
        if let Some(value) = line.strip_prefix("Size:") {
            size_kib = kib(value).unwrap_or(0);
        } else if let Some(value) = line.strip_prefix("Rss:") {
            let rss = kib(value).unwrap_or(0);
            if size_kib * 1024 >= at_least && best.is_none_or(|(size, _)| size_kib > size) {
                best = Some((size_kib, rss));
            }
        }
    }
    best.map(|(_, rss)| rss)
}

/// `VmRSS` from `/proc/PID/status`, in KiB.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(kib)
}

/// `   1234 kB` as a number of KiB.
fn kib(value: &str) -> Option<u64> {
    value.trim().strip_suffix("kB")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = "hello, world\nlitebox-vmm stats:
  setup (KVM, memory, loading): 2.293 ms
  start to first instruction: 64.258 ms
  start to exit: 359.212 ms
  exits: 195 (doorbell 195)
  ring requests: 195 (exit 1, read-clock 1, write 193), 234 bytes
  syscalls: 196 (write 192, arch_prctl 1)
  page faults: 0
";

    #[test]
    fn summary_takes_the_middle_and_the_ends() {
        let odd = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!(
            odd,
            Summary {
                min: 1.0,
                median: 2.0,
                max: 3.0,
                count: 3
            }
        );
        let even = Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(even.median, 2.5);
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn vmm_stats_are_read_from_stderr() {
        let stats = parse_vmm_stats(STATS).unwrap();
        assert_eq!(stats.setup, Duration::from_micros(2293));
        assert_eq!(
            stats.to_first_instruction,
            Some(Duration::from_micros(64258))
        );
        assert_eq!(stats.to_exit, Duration::from_micros(359_212));
        assert_eq!((stats.exits, stats.ring_requests), (195, 195));
    }

    #[test]
    fn vmm_stats_without_a_first_instruction_still_parse() {
        let stderr = STATS.replace("64.258 ms", "not reached");
        assert_eq!(parse_vmm_stats(&stderr).unwrap().to_first_instruction, None);
        assert!(parse_vmm_stats("hello").is_err());
        assert!(parse_vmm_stats(&STATS.replace("  exits:", "  exit:")).is_err());
    }

    #[test]
    fn call_timing_is_found_by_mode() {
        let stderr = "noise\nbench fstat calls=128 ns=958669.9\n";
        let timing = parse_call_timing(stderr, "fstat").unwrap();
        assert_eq!(
            timing,
            CallTiming {
                calls: 128,
                ns_per_call: 958_669.9
            }
        );
        assert!(parse_call_timing(stderr, "stat").is_err());
        assert!(parse_call_timing("bench stat calls=x ns=1\n", "stat").is_err());
    }

    #[test]
    fn peak_rss_is_read_from_the_helper_line() {
        assert_eq!(parse_peak_rss("hello\npeak-rss kib=3620\n").unwrap(), 3620);
        assert!(parse_peak_rss("hello\n").is_err());
    }

    #[test]
    fn the_guest_memory_mapping_is_the_largest_big_one() {
        let smaps = "\
5555-6666 r-xp 00000000 00:00 0   /usr/bin/litebox-vmm
Size:               8192 kB
Rss:                4000 kB
7000-8000 rw-p 00000000 00:00 0
Size:             524288 kB
Rss:                6144 kB
9000-a000 rw-p 00000000 00:00 0
Size:              65536 kB
Rss:                  12 kB
";
        assert_eq!(largest_mapping_rss_kib(smaps, 512 << 20), Some(6144));
        assert_eq!(largest_mapping_rss_kib(smaps, 1 << 30), None);
        assert_eq!(vm_rss_kib("Name:\tx\nVmRSS:\t    1234 kB\n"), Some(1234));
    }
}
