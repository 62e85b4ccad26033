//! The figures users compare sandboxes by, each taken for every runner on the same work in
//! the same invocation: start-up, syscall latency, ring round trips, file throughput, memory,
//! and density. Runs of different runners are interleaved (one of each, then again) so that
//! the noise of a shared machine falls on all of them alike.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::runner::{self, Runner, Runners, Sample, Work};
use crate::summary::{self, Summary};

/// How much of everything to do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub quick: bool,
    /// Unmeasured runs before the measured ones, per runner and work.
    pub warmup: usize,
    /// Measured runs of each start-up work.
    pub start_runs: usize,
    /// Measured runs of each syscall loop, and how long each loop runs.
    pub call_runs: usize,
    pub call_millis: u64,
    /// Measured runs of each file transfer, and its size.
    pub file_runs: usize,
    pub file_mib: u64,
    /// Sandboxes started per density measurement, and how many such measurements.
    pub density_starts: usize,
    pub density_runs: usize,
    /// Measured runs per guest memory size.
    pub memory_runs: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                warmup: 1,
                start_runs: 3,
                call_runs: 2,
                call_millis: 20,
                file_runs: 1,
                file_mib: 8,
                density_starts: 4,
                density_runs: 1,
                memory_runs: 2,
            }
        } else {
            Self {
                quick,
                warmup: 2,
                start_runs: 20,
                call_runs: 5,
                call_millis: 200,
                file_runs: 3,
                file_mib: 256,
                density_starts: 20,
                density_runs: 3,
                memory_runs: 10,
            }
        }
    }
}

impl Plan {
    /// The smaller transfer the steady rate is taken against: an eighth of the file.
    pub fn small_file_mib(&self) -> u64 {
        (self.file_mib / 8).max(1)
    }
}

/// A runner's result for one figure.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Measured(Summary),
    /// It could not be taken; the reason.
    NotMeasurable(String),
}

/// One figure for every runner it applies to (the others are not applicable).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    pub group: &'static str,
    pub name: String,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub results: BTreeMap<&'static str, Outcome>,
}

/// One part of the start-up breakdown, in ms, from a run's stats and the run itself.
type BreakdownPart = fn(&summary::VmmStats, &Sample) -> Option<f64>;

/// Each runner's samples of one work, or why there are none.
type Samples = BTreeMap<Runner, Result<Vec<Sample>, String>>;

/// What the figures are taken with.
pub struct Bench {
    pub runners: Runners,
    pub images: PathBuf,
    pub busybox: PathBuf,
    pub plan: Plan,
    /// The runners that work on this machine; the others with the reason.
    pub usable: BTreeMap<Runner, Result<(), String>>,
    pub figures: Vec<Figure>,
}

impl Bench {
    /// Checks each runner with one `busybox true`.
    pub fn new(runners: Runners, images: PathBuf, busybox: PathBuf, plan: Plan) -> Self {
        let mut bench = Self {
            runners,
            images,
            busybox,
            plan,
            usable: BTreeMap::new(),
            figures: Vec::new(),
        };
        for runner in Runner::ALL {
            let work = Work::new(&bench.busybox, &["true"]);
            let check = runner::run(&mut bench.runners.command(runner, &work))
                .map(|_| ())
                .map_err(|error| first_line(&format!("{error:#}")));
            bench.usable.insert(runner, check);
        }
        bench
    }

    fn image(&self, name: &str) -> PathBuf {
        self.images.join(name)
    }

    /// Runs `work` under each of `runners`, `warmup` + `runs` times, interleaved.
    fn samples(&self, runners: &[Runner], work: &Work, runs: usize) -> Samples {
        let jobs: Vec<(Runner, Work)> = runners.iter().map(|&r| (r, work.clone())).collect();
        runners
            .iter()
            .copied()
            .zip(self.interleaved(&jobs, runs))
            .collect()
    }

    /// Runs each job `warmup` + `runs` times: every job once, then every job again, so that
    /// a change in the machine's load falls on all of them alike. A job that fails once
    /// keeps its first error.
    fn interleaved(
        &self,
        jobs: &[(Runner, Work)],
        runs: usize,
    ) -> Vec<Result<Vec<Sample>, String>> {
        let mut kept: Vec<Result<Vec<Sample>, String>> = jobs
            .iter()
            .map(|(runner, _)| self.usable[runner].clone().map(|()| Vec::new()))
            .collect();
        for round in 0..self.plan.warmup + runs {
            for ((runner, work), kept) in jobs.iter().zip(kept.iter_mut()) {
                let Ok(list) = kept else { continue };
                match runner::run(&mut self.runners.command(*runner, work)) {
                    Ok(sample) if round >= self.plan.warmup => list.push(sample),
                    Ok(_) => {}
                    Err(error) => *kept = Err(first_line(&format!("{error:#}"))),
                }
            }
        }
        kept
    }

    /// Adds a figure whose value for each sample is `value` (an error makes that runner's
    /// figure not measurable).
    fn add(
        &mut self,
        (group, name, unit): (&'static str, String, &'static str),
        higher_is_better: bool,
        samples: &Samples,
        value: impl Fn(Runner, &Sample) -> Result<f64>,
    ) {
        let values = samples
            .iter()
            .map(|(&runner, kept)| {
                let values = kept.clone().and_then(|list| {
                    let values: Result<Vec<f64>> = list.iter().map(|s| value(runner, s)).collect();
                    values.map_err(|error| first_line(&format!("{error:#}")))
                });
                (runner, values)
            })
            .collect();
        self.add_values((group, name, unit), higher_is_better, values);
    }

    /// Adds a figure from values already derived from the samples, one list per runner.
    fn add_values(
        &mut self,
        (group, name, unit): (&'static str, String, &'static str),
        higher_is_better: bool,
        values: BTreeMap<Runner, Result<Vec<f64>, String>>,
    ) {
        let mut results = BTreeMap::new();
        for (runner, values) in values {
            let outcome = match values {
                Err(reason) => Outcome::NotMeasurable(reason),
                Ok(values) => match Summary::of(&values) {
                    Some(summary) => Outcome::Measured(summary),
                    None => Outcome::NotMeasurable("no samples".to_string()),
                },
            };
            results.insert(runner.name(), outcome);
        }
        self.figures.push(Figure {
            group,
            name,
            unit,
            higher_is_better,
            results,
        });
    }

    // ---- 1. start to exit, and litebox-vmm's own breakdown -----------------------------------

    pub fn start(&mut self) {
        let hello = self.image("hello-musl");
        let big = self.image("hello-big");
        let works = [
            (
                format!("hello, musl ({})", file_size(&hello)),
                Work::new(&hello, &[]),
                true,
            ),
            (
                format!("busybox true ({})", file_size(&self.busybox)),
                Work::new(&self.busybox, &["true"]),
                true,
            ),
            (
                format!("hello, musl ({})", file_size(&big)),
                Work::new(&big, &[]),
                false,
            ),
        ];
        for (index, (label, work, breakdown)) in works.into_iter().enumerate() {
            let samples = self.samples(&Runner::ALL, &work, self.plan.start_runs);
            let figure = ("start", format!("start to exit: {label}"), "ms");
            self.add(figure, false, &samples, |_, s| Ok(ms(s.wall)));
            if index == 0 {
                self.peak_rss(&label, &work);
            }
            if breakdown {
                self.breakdown(&label, &samples);
            }
        }
    }

    /// Peak RSS of `work` under each runner, through the `peak-rss` helper, so that the
    /// harness's own size does not count.
    fn peak_rss(&mut self, label: &str, work: &Work) {
        let helper = self.image("peak-rss");
        let runs = self.plan.start_runs.min(5);
        let mut samples: Samples = BTreeMap::new();
        for runner in Runner::ALL {
            let result = match &self.usable[&runner] {
                Err(reason) => Err(reason.clone()),
                Ok(()) => (0..runs)
                    .map(|_| runner::run(&mut self.runners.measured_command(&helper, runner, work)))
                    .collect::<Result<Vec<_>>>()
                    .map_err(|error| first_line(&format!("{error:#}"))),
            };
            samples.insert(runner, result);
        }
        let figure = ("memory", format!("peak RSS: {label}"), "MiB");
        self.add(
            figure,
            false,
            &samples,
            |_, s| match summary::parse_peak_rss(&s.stderr)? {
                // Linux sums its per-CPU RSS counters approximately at exit, so a program of a
                // few pages can read as nothing at all: that is no measurement.
                0 => bail!("Linux reported a peak of 0 KiB (its RSS count is approximate)"),
                kib => Ok(kib as f64 / 1024.0),
            },
        );
    }

    /// litebox-vmm's `--stats` split of one start: VM creation and loading, guest kernel boot
    /// to the program's first instruction, the program, and process start and teardown.
    fn breakdown(&mut self, label: &str, samples: &Samples) {
        let only: Samples = samples
            .iter()
            .filter(|(r, _)| **r == Runner::Litebox)
            .map(|(r, s)| (*r, s.clone()))
            .collect();
        let stats = |s: &Sample| summary::parse_vmm_stats(&s.stderr);
        let parts: [(&str, BreakdownPart); 4] = [
            ("VM create and load", |v, _| Some(ms(v.setup))),
            ("guest boot to first instruction", |v, _| {
                v.to_first_instruction.map(|t| ms(t) - ms(v.setup))
            }),
            ("program, first instruction to exit", |v, _| {
                v.to_first_instruction.map(|t| ms(v.to_exit) - ms(t))
            }),
            ("process start and teardown", |v, s| {
                Some(ms(s.wall) - ms(v.to_exit))
            }),
        ];
        for (part, take) in parts {
            let figure = ("start", format!("{label}: {part}"), "ms");
            self.add(figure, false, &only, |_, s| {
                let stats = stats(s)?;
                take(&stats, s).context("the guest never reached the program")
            });
        }
    }

    // ---- 2 and 3. syscalls answered in the guest, and requests that reach the host --------

    pub fn calls(&mut self, probe: &str) {
        let modes: [(&str, &str, bool, &str); 6] = [
            ("syscall", "getpid", false, "getpid"),
            ("syscall", "clock", false, "clock_gettime (vDSO)"),
            ("syscall", "write-null", false, "1-byte write to /dev/null"),
            ("ring", "fstat", true, "fstat of a host file"),
            ("ring", "stat", true, "stat of a host path"),
            ("ring", "write-stdout", false, "1-byte write to stdout"),
        ];
        let image = self.image("bench-syscalls");
        for (group, mode, needs_file, label) in modes {
            let millis = self.plan.call_millis.to_string();
            let mut work = Work::new(&image, &[mode, &millis]);
            if needs_file {
                work = work.data("", probe);
            }
            let samples = self.samples(&Runner::ALL, &work, self.plan.call_runs);
            let figure = (group, label.to_string(), "ns/call");
            self.add(figure, false, &samples, |_, s| {
                Ok(summary::parse_call_timing(&s.stderr, mode)?.ns_per_call)
            });
            if group == "ring" {
                let only: Samples = samples
                    .into_iter()
                    .filter(|(r, _)| *r == Runner::Litebox)
                    .collect();
                let figure = (group, format!("{label}: exits per ring request"), "exits");
                self.add(figure, false, &only, |_, s| {
                    let stats = summary::parse_vmm_stats(&s.stderr)?;
                    Ok(stats.exits as f64 / stats.ring_requests.max(1) as f64)
                });
            }
        }
    }

    // ---- 4. file throughput ---------------------------------------------------------------

    /// Each transfer is timed whole (start-up included) on `input`, and on `small_input`
    /// too, so that the difference gives the steady rate once the program runs: for a
    /// sandbox that starts slowly the whole-process figure is mostly its start-up.
    pub fn files(&mut self, input: &str, small_input: &str, output: &str) {
        let (mib, small_mib) = (self.plan.file_mib, self.plan.small_file_mib());
        let busybox = self.busybox.clone();
        // The read works read `file`; the write work writes `count` MiB.
        let transfer = |name: &str, file: &str, count: u64| -> (&'static str, Work) {
            match name {
                "cat" => ("read: cat FILE", Work::new(&busybox, &["cat"]).data("", file)),
                "dd read" => (
                    "read: dd bs=1M",
                    Work::new(&busybox, &["dd", "bs=1M"]).data("if=", file),
                ),
                _ => (
                    "write: dd if=/dev/zero bs=1M",
                    Work::new(&busybox, &["dd", "if=/dev/zero", "bs=1M", &format!("count={count}")])
                        .data("of=", output),
                ),
            }
        };
        for name in ["cat", "dd read", "dd write"] {
            let (label, work) = transfer(name, input, mib);
            let (_, small_work) = transfer(name, small_input, small_mib);
            let samples = self.samples(&Runner::ALL, &work, self.plan.file_runs);
            let figure = ("files", format!("{label} ({mib} MiB)"), "MiB/s");
            self.add(figure, true, &samples, |_, s| {
                Ok(mib as f64 / s.wall.as_secs_f64())
            });

            let small_samples = self.samples(&Runner::ALL, &small_work, self.plan.file_runs);
            let extra_mib = mib.saturating_sub(small_mib) as f64;
            let steady = steady_rates(&samples, &small_samples, extra_mib);
            let name = format!("{label}: steady rate, {mib} minus {small_mib} MiB");
            self.add_values(("files", name, "MiB/s"), true, steady);
        }
    }

    // ---- 5. memory of an idle program -----------------------------------------------------

    /// Starts `bench-syscalls idle` (it prints `ready`, then waits on stdin) and reads the
    /// process's resident set, and for the sandbox the resident part of guest memory.
    pub fn idle_memory(&mut self) {
        const GUEST_MEMORY: u64 = 512 << 20;
        let work = Work::new(self.image("bench-syscalls"), &["idle"]).memory("512M");
        let runners = [Runner::Native, Runner::Qemu, Runner::Litebox];
        let mut rss: Samples = BTreeMap::new();
        let mut guest: Vec<f64> = Vec::new();
        let mut guest_error = None;
        for runner in runners {
            let mut list = Vec::new();
            let mut failure = self.usable[&runner].clone().err();
            for _ in 0..self.plan.start_runs.min(5) {
                if failure.is_some() {
                    break;
                }
                match self.snapshot(runner, &work, GUEST_MEMORY) {
                    Ok((total, resident)) => {
                        list.push(Sample {
                            wall: Default::default(),
                            max_rss_kib: total,
                            stderr: String::new(),
                        });
                        if let Some(resident) = resident {
                            guest.push(resident as f64 / 1024.0);
                        } else if runner == Runner::Litebox {
                            guest_error =
                                Some("no mapping of the guest's size in smaps".to_string());
                        }
                    }
                    Err(error) => failure = Some(first_line(&format!("{error:#}"))),
                }
            }
            rss.insert(runner, failure.map_or(Ok(list), Err));
        }
        let figure = (
            "memory",
            "RSS of an idle program after printing a line".to_string(),
            "MiB",
        );
        self.add(
            figure,
            false,
            &rss,
            |_, s| Ok(s.max_rss_kib as f64 / 1024.0),
        );

        let outcome = match (Summary::of(&guest), guest_error, &rss[&Runner::Litebox]) {
            (_, _, Err(reason)) => Outcome::NotMeasurable(reason.clone()),
            (_, Some(reason), _) => Outcome::NotMeasurable(reason),
            (Some(summary), None, _) => Outcome::Measured(summary),
            (None, None, _) => Outcome::NotMeasurable("no samples".to_string()),
        };
        self.figures.push(Figure {
            group: "memory",
            name: "guest memory resident on the host (of 512 MiB), idle program".to_string(),
            unit: "MiB",
            higher_is_better: false,
            results: BTreeMap::from([(Runner::Litebox.name(), outcome)]),
        });
    }

    /// (VmRSS KiB, resident KiB of the guest memory mapping) of one idle run.
    fn snapshot(
        &self,
        runner: Runner,
        work: &Work,
        guest_bytes: u64,
    ) -> Result<(u64, Option<u64>)> {
        let mut command = self.runners.command(runner, work);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .with_context(|| format!("can't start {command:?}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("no stdout pipe")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading `ready`")?;
        let proc_dir = PathBuf::from(format!("/proc/{}", child.id()));
        let snapshot = if line.trim() == "ready" {
            let status = std::fs::read_to_string(proc_dir.join("status"))?;
            let smaps = std::fs::read_to_string(proc_dir.join("smaps"))?;
            let total = summary::vm_rss_kib(&status).context("no VmRSS")?;
            let resident = if runner == Runner::Litebox {
                summary::largest_mapping_rss_kib(&smaps, guest_bytes)
            } else {
                None
            };
            Ok((total, resident))
        } else {
            Err(anyhow::anyhow!("the program said {line:?}, not `ready`"))
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.flush();
        }
        let (status, _) = runner::wait4(&child)?;
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            bail!("the idle program failed (wait status {status:#x})");
        }
        snapshot
    }

    // ---- 6. density and rate, and start-up against guest memory size -------------------------

    pub fn density(&mut self) {
        let work = Work::new(self.image("hello-musl"), &[]);
        for parallel in [1, 2] {
            let mut rates: Samples = BTreeMap::new();
            for runner in Runner::ALL {
                let result = match &self.usable[&runner] {
                    Err(reason) => Err(reason.clone()),
                    Ok(()) => (0..self.plan.density_runs)
                        .map(|_| self.rate(runner, &work, parallel))
                        .collect::<Result<Vec<_>>>()
                        .map_err(|error| first_line(&format!("{error:#}"))),
                };
                rates.insert(runner, result);
            }
            let label = if parallel == 1 {
                "1 at a time"
            } else {
                "2 in parallel"
            };
            let figure = (
                "density",
                format!("hello sandboxes per second, {label}"),
                "1/s",
            );
            // The rate travels in `wall` as seconds per start.
            self.add(figure, true, &rates, |_, s| Ok(1.0 / s.wall.as_secs_f64()));
        }

        let sizes = ["64M", "256M", "1G", "4G"];
        let image = self.image("hello-musl");
        let jobs: Vec<(Runner, Work)> = sizes
            .iter()
            .map(|size| (Runner::Litebox, Work::new(&image, &[]).memory(size)))
            .collect();
        let results = self.interleaved(&jobs, self.plan.memory_runs);
        for (size, result) in sizes.iter().zip(results) {
            let samples = Samples::from([(Runner::Litebox, result)]);
            let figure = (
                "density",
                format!("start to exit: hello, --memory {size}"),
                "ms",
            );
            self.add(figure, false, &samples, |_, s| Ok(ms(s.wall)));
        }
    }

    /// Starts `density_starts` sandboxes, `parallel` at a time; the time per start as a
    /// sample's `wall`.
    fn rate(&self, runner: Runner, work: &Work, parallel: usize) -> Result<Sample> {
        let per_thread = self.plan.density_starts.div_ceil(parallel);
        let started = Instant::now();
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..parallel)
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        for _ in 0..per_thread {
                            runner::run(&mut self.runners.command(runner, work))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            threads
                .into_iter()
                .try_for_each(|t| t.join().map_err(|_| anyhow::anyhow!("panic"))?)
        })?;
        let per_start = started.elapsed() / u32::try_from(per_thread * parallel)?;
        Ok(Sample {
            wall: per_start,
            max_rss_kib: 0,
            stderr: String::new(),
        })
    }
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// `19 KiB`, `2.0 MiB`: a file's size for a figure's label.
fn file_size(path: &std::path::Path) -> String {
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    if bytes < 1 << 20 {
        format!("{} KiB image", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MiB image", bytes as f64 / f64::from(1 << 20))
    }
}

/// The rate at which `extra_mib` more data moved: over the difference of the two transfers'
/// median times (each run alone is too noisy to difference). Not a rate when the big one is
/// no slower, or when there is no more data (a file of 1 MiB has no smaller eighth).
fn steady_rates(
    big: &Samples,
    small: &Samples,
    extra_mib: f64,
) -> BTreeMap<Runner, Result<Vec<f64>, String>> {
    let median = |list: &[Sample]| {
        let seconds: Vec<f64> = list.iter().map(|s| s.wall.as_secs_f64()).collect();
        Summary::of(&seconds).map(|summary| summary.median)
    };
    big.iter()
        .map(|(runner, big)| {
            let rate = match (big, &small[runner]) {
                (Err(reason), _) | (_, Err(reason)) => Err(reason.clone()),
                _ if extra_mib <= 0.0 => Err("the file is too small to take a part of".into()),
                (Ok(big), Ok(small)) => match (median(big), median(small)) {
                    (Some(big), Some(small)) if big > small => Ok(vec![extra_mib / (big - small)]),
                    (Some(_), Some(_)) => Err("the bigger transfer was no slower (noise)".into()),
                    _ => Err("no samples".into()),
                },
            };
            (*runner, rate)
        })
        .collect()
}
