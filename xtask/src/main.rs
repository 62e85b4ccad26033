//! `cargo xtask`: the project's chores that cargo alone can't do. It installs the host tools
//! the tests need (`setup`), builds the test programs the integration tests run in the sandbox
//! (`images`), and runs the test suite locally (`test`) or as CI does (`ci`, which insists on a
//! usable `/dev/kvm` and ends with a quick benchmark run). `run` starts the sandbox itself for
//! the README's demo; `bench` runs the benchmark suite (`benches/`); `fuzz` runs the ring
//! handler's fuzz target.
//!
//! It only ever touches the host through the commands it names (apt-get, rustup, the C
//! compilers, cargo) and writes nothing outside `<workspace>/target/`, but for the fuzzing
//! corpus `fuzz/corpus/` that `fuzz` grows and the fuzz target's scratch directory.

mod elf;
mod fuzz;
mod images;
mod setup;

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
#[command(about = "Build, test and run litebox-vmm")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the host packages the tests need (musl-tools, busybox-static, gcc, binutils)
    /// when something is missing, and the Rust targets.
    Setup {
        /// Also install the benchmarks' comparison tools (bubblewrap, qemu-user, hyperfine) and
        /// the chart's font.
        #[arg(long)]
        bench: bool,
    },
    /// Build every test program into target/images/ (only what is out of date).
    Images,
    /// `setup`, `images`, then `cargo test --release --workspace [ARGS...]`.
    Test {
        /// Passed on to `cargo test` (put a further `--` before test-harness flags).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// What CI runs: fails unless /dev/kvm is usable, does what `test` does, then `bench
    /// --quick` to prove the benchmark harness still works.
    Ci {
        /// Passed on to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// `setup --bench`, `images`, build litebox-vmm and the harness, then run the benchmarks;
    /// the report goes to target/bench-report/.
    Bench {
        /// Few runs and small files, to prove the harness works (about a minute).
        #[arg(long)]
        quick: bool,
        /// Passed on to `litebox-bench` (e.g. `--file-mib 64`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Fuzz the host-side ring handler for N minutes (libFuzzer, stable toolchain), growing
    /// the corpus in fuzz/corpus/ring/; prints the executions and crashes.
    Fuzz {
        #[arg(long, default_value_t = 1)]
        minutes: u32,
    },
    /// `setup`, then `cargo run --release -p litebox-vmm -- ARGS...`.
    Run {
        /// The sandbox's own arguments, e.g. `--image target/images/hello-musl -- a b`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("xtask: {error:#}");
            std::process::exit(1);
        }
    }
}

/// Runs one task; returns the exit code for xtask.
fn dispatch(task: Task) -> Result<i32> {
    let root = workspace_root();
    match task {
        Task::Setup { bench } => {
            setup::run(&root, bench)?;
            Ok(0)
        }
        Task::Images => {
            images::build_all(&root)?;
            Ok(0)
        }
        Task::Test { args } => test(&root, &args),
        Task::Ci { args } => {
            check_kvm()?;
            let code = test(&root, &args)?;
            if code != 0 {
                return Ok(code);
            }
            // Proves the benchmark harness still runs end to end; its figures are not checked.
            bench(&root, true, &[])
        }
        Task::Bench { quick, args } => bench(&root, quick, &args),
        Task::Fuzz { minutes } => fuzz::run(&root, minutes),
        Task::Run { args } => {
            setup::run(&root, false)?;
            let mut command = cargo(&root);
            command
                .args(["run", "--release", "-p", "litebox-vmm", "--"])
                .args(&args);
            run_status(&mut command)
        }
    }
}

fn test(root: &Path, args: &[OsString]) -> Result<i32> {
    setup::run(root, false)?;
    images::build_all(root)?;

    let mut command = cargo(root);
    command
        .args(["test", "--release", "--workspace", "--no-fail-fast"])
        .args(args);
    run_status(&mut command)
}

/// Builds what the benchmarks run and runs `litebox-bench` in the workspace root.
fn bench(root: &Path, quick: bool, args: &[OsString]) -> Result<i32> {
    setup::run(root, true)?;
    images::build_all(root)?;
    let mut build = cargo(root);
    build.args([
        "build",
        "--release",
        "-p",
        "litebox-vmm",
        "-p",
        "litebox-benches",
    ]);
    run_checked(&mut build)?;

    let mut command = Command::new(root.join("target/release/litebox-bench"));
    command.arg("--root").arg(root).current_dir(root);
    if quick {
        command.arg("--quick");
    }
    command.args(args);
    run_status(&mut command)
}

/// The tests boot real VMs, so CI without a usable `/dev/kvm` must fail, never skip.
fn check_kvm() -> Result<()> {
    let path = Path::new("/dev/kvm");
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => bail!(
            "/dev/kvm is missing ({error}): the tests boot real VMs, so run CI on a machine \
             with KVM"
        ),
    };
    if !metadata.file_type().is_char_device() {
        bail!("/dev/kvm is not a character device: the tests need a real KVM device");
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .context(
            "/dev/kvm can't be opened read-write: run as root or as a member of the kvm group",
        )?;
    Ok(())
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// A `cargo` command in the workspace root: the same cargo that started xtask when there is one.
fn cargo(root: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root);
    command
}

/// Runs a command to its end and turns its status into an exit code, the shell's way.
fn run_status(command: &mut Command) -> Result<i32> {
    let status = command
        .status()
        .with_context(|| format!("can't start {}", describe(command)))?;
    Ok(exit_code(status))
}

/// Runs a command that must succeed.
fn run_checked(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("can't start {}", describe(command)))?;
    if !status.success() {
        bail!("{} failed ({status})", describe(command));
    }
    Ok(())
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;

    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

/// `program arg arg...` for error messages.
fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_passes_everything_after_the_first_separator_on() {
        let cli = Cli::parse_from(["xtask", "run", "--", "--image", "p", "--", "-a", "b"]);
        let Task::Run { args } = cli.command else {
            panic!("not the run task");
        };
        assert_eq!(args, ["--image", "p", "--", "-a", "b"]);
    }

    #[test]
    fn bench_takes_quick_and_passes_the_rest_on() {
        let cli = Cli::parse_from(["xtask", "bench", "--quick", "--", "--file-mib", "64"]);
        let Task::Bench { quick, args } = cli.command else {
            panic!("not the bench task");
        };
        assert!(quick);
        assert_eq!(args, ["--file-mib", "64"]);
    }

    #[test]
    fn test_args_go_to_cargo_test() {
        let cli = Cli::parse_from(["xtask", "test", "--", "-p", "xtask", "--", "--nocapture"]);
        let Task::Test { args } = cli.command else {
            panic!("not the test task");
        };
        assert_eq!(args, ["-p", "xtask", "--", "--nocapture"]);
    }
}
