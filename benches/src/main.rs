//! `litebox-bench`: measures what users choose a sandbox by — start-to-exit time, syscall
//! latency, ring round trips, file throughput, memory and density — for litebox-vmm and, on
//! the same work in the same run, for the program run natively, under `bwrap` and under
//! `qemu-x86_64` user mode. `cargo xtask bench [--quick]` builds what it needs and runs it.
//!
//! Steps: check which runners work here, take the figures, then print the table of medians
//! and write `report.md`, `report.json` and `ratios.png` under the output directory. It
//! asserts nothing about speed: a slow figure is a figure, a runner that can't run here is
//! reported as not measurable with the reason.
//!
//! It writes only in the output directory and in a scratch data directory beside it, which it
//! empties at the end.

mod chart;
mod figures;
mod machine;
mod report;
mod runner;
mod summary;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::Parser;
use serde_json::json;

use figures::{Bench, Plan};
use runner::Runners;

#[derive(Parser)]
#[command(
    name = "litebox-bench",
    about = "litebox-vmm side by side with native, bwrap, qemu"
)]
struct Cli {
    /// Few runs and small files: proves the harness works (about a minute), figures are rough.
    #[arg(long)]
    quick: bool,
    /// The workspace root (for target/images, the litebox-vmm binary and the git revision).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// The litebox-vmm binary (default: ROOT/target/release/litebox-vmm).
    #[arg(long)]
    vmm: Option<PathBuf>,
    /// Where the report goes (default: ROOT/target/bench-report).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The static busybox every runner runs for `true`, `cat` and `dd`.
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// Size of the file read and written, MiB (default: 256, or 8 with --quick).
    #[arg(long)]
    file_mib: Option<u64>,
}

/// The file in the data directory `stat`/`fstat` probe, and the two transfer files.
const PROBE: &str = "probe";
const INPUT: &str = "input";
const SMALL_INPUT: &str = "input-small";
const OUTPUT: &str = "output";

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = cli
        .root
        .canonicalize()
        .with_context(|| format!("no {}", cli.root.display()))?;
    let vmm = cli
        .vmm
        .unwrap_or_else(|| root.join("target/release/litebox-vmm"));
    let out = cli.out.unwrap_or_else(|| root.join("target/bench-report"));
    let images = root.join("target/images");
    ensure!(
        runner::is_executable(&vmm),
        "no litebox-vmm at {} (cargo build --release)",
        vmm.display()
    );
    for image in ["hello-musl", "hello-big", "bench-syscalls", "peak-rss"] {
        ensure!(
            images.join(image).exists(),
            "no {image} in {} (cargo xtask images)",
            images.display()
        );
    }
    let mut plan = Plan::new(cli.quick);
    if let Some(mib) = cli.file_mib {
        plan.file_mib = mib;
    }

    // The data directory every runner sees: the probe, and the file to read.
    let data_dir = out.join("data");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("can't create {}", data_dir.display()))?;
    std::fs::write(data_dir.join(PROBE), b"probe\n")?;
    write_input(&data_dir.join(INPUT), plan.file_mib)?;
    write_input(&data_dir.join(SMALL_INPUT), plan.small_file_mib())?;

    let started = Instant::now();
    let runners = Runners {
        vmm: vmm.clone(),
        data_dir: data_dir.clone(),
    };
    let mut bench = Bench::new(runners, images, cli.busybox.clone(), plan.clone());
    for (runner, usable) in &bench.usable {
        if let Err(reason) = usable {
            eprintln!("litebox-bench: {} can't run here: {reason}", runner.name());
        }
    }
    type Step = fn(&mut Bench);
    let steps: [(&str, Step); 5] = [
        ("start-up", Bench::start),
        ("syscalls and ring requests", |b| b.calls(PROBE)),
        ("file throughput", |b| b.files(INPUT, SMALL_INPUT, OUTPUT)),
        ("memory", Bench::idle_memory),
        ("density", Bench::density),
    ];
    for (name, step) in steps {
        eprintln!(
            "litebox-bench: {name} ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        );
        step(&mut bench);
    }
    let _ = std::fs::remove_dir_all(&data_dir);

    // The report.
    let machine = machine::describe();
    let revision = machine::revision(&root);
    let usable: serde_json::Map<String, serde_json::Value> = bench
        .usable
        .iter()
        .map(|(runner, usable)| {
            let value = match usable {
                Ok(()) => json!(true),
                Err(reason) => json!(reason),
            };
            (runner.name().to_string(), value)
        })
        .collect();
    let context = json!({
        "revision": revision,
        "machine": machine,
        "plan": plan,
        "runners_usable": usable,
        "seconds": started.elapsed().as_secs_f64(),
        "command": std::env::args().collect::<Vec<_>>(),
    });
    let document = report::json(&bench.figures, context);
    let table = report::markdown(&bench.figures);
    let details = report::markdown_details(&bench.figures);
    let heading = format!(
        "litebox-bench{} at {} on {}",
        if plan.quick { " --quick" } else { "" },
        revision["commit"]
            .as_str()
            .map_or("an unknown revision", |c| &c[..c.len().min(12)]),
        machine::one_line(&machine),
    );

    std::fs::create_dir_all(&out)?;
    let markdown = format!("{heading}\n\n{table}\n{details}");
    write(&out.join("report.md"), markdown.as_bytes())?;
    write(
        &out.join("report.json"),
        serde_json::to_string_pretty(&document)?.as_bytes(),
    )?;
    let chart = out.join("ratios.png");
    if let Err(error) = chart::write_png(&bench.figures, &chart) {
        eprintln!("litebox-bench: no chart: {error:#}");
    }
    // The reasons a figure is missing belong next to the table, not only in report.md.
    let reasons = details.find("\nNot measurable:").map_or("", |at| &details[at..]);
    println!("{heading}\n\n{table}{reasons}");
    eprintln!(
        "litebox-bench: done in {:.0} s; report.md, report.json and ratios.png in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// Writes `mib` MiB of a non-repeating-looking pattern, unless the file already has that size.
fn write_input(path: &Path, mib: u64) -> Result<()> {
    let bytes = mib << 20;
    if std::fs::metadata(path).is_ok_and(|m| m.len() == bytes) {
        return Ok(());
    }
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("can't create {}", path.display()))?,
    );
    let block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for _ in 0..mib {
        file.write_all(&block)?;
    }
    file.flush()?;
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("can't write {}", path.display()))
}
