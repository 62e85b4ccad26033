//! The four ways the harness runs one program, and one timed run of it.
//!
//! A [`Work`] is a program and its arguments, some of which name files in the data directory.
//! [`Runners::command`] turns it into the command line of one [`Runner`]: the program itself,
//! under `bwrap`, under `qemu-x86_64`, or in `litebox-vmm` (which sees the data directory at
//! [`GUEST_DATA`]). [`run`] spawns that command with stdout on `/dev/null`, times it from
//! spawn to reaped exit, and takes its peak RSS from `wait4`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where the sandbox sees the data directory.
pub const GUEST_DATA: &str = "/data";

/// How a program is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Runner {
    Native,
    Bwrap,
    Qemu,
    Litebox,
}

impl Runner {
    pub const ALL: [Runner; 4] = [Runner::Native, Runner::Bwrap, Runner::Qemu, Runner::Litebox];

    /// The name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Runner::Native => "native",
            Runner::Bwrap => "bwrap",
            Runner::Qemu => "qemu-user",
            Runner::Litebox => "litebox-vmm",
        }
    }
}

/// One argument of a program: literal text, or a file in the data directory after a prefix
/// (`of=` for dd).
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Data { prefix: String, relative: String },
}

/// A program and its arguments, the same work for every runner.
#[derive(Debug, Clone)]
pub struct Work {
    pub image: PathBuf,
    pub args: Vec<Arg>,
    /// The sandbox's `--memory`; `None` for its default.
    pub memory: Option<String>,
}

impl Work {
    pub fn new(image: impl Into<PathBuf>, args: &[&str]) -> Self {
        let args = args
            .iter()
            .map(|arg| Arg::Text((*arg).to_string()))
            .collect();
        Self {
            image: image.into(),
            args,
            memory: None,
        }
    }

    /// Adds the argument `PREFIX` + the path of `relative` in the data directory.
    pub fn data(mut self, prefix: &str, relative: &str) -> Self {
        let (prefix, relative) = (prefix.to_string(), relative.to_string());
        self.args.push(Arg::Data { prefix, relative });
        self
    }

    pub fn memory(mut self, size: &str) -> Self {
        self.memory = Some(size.to_string());
        self
    }
}

/// What every runner's command line needs: the sandbox binary and the data directory.
#[derive(Debug, Clone)]
pub struct Runners {
    pub vmm: PathBuf,
    pub data_dir: PathBuf,
}

impl Runners {
    /// The command that runs `work` under `runner`.
    pub fn command(&self, runner: Runner, work: &Work) -> Command {
        let host_args = || work.args.iter().map(|arg| self.host_arg(arg));
        match runner {
            Runner::Native => {
                let mut command = Command::new(&work.image);
                command.args(host_args());
                command
            }
            Runner::Bwrap => {
                // What a user would write to box a program: the host read-only, private /dev,
                // /proc and /tmp, every namespace unshared, the work directory writable.
                let mut command = Command::new("bwrap");
                command.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]);
                command.args(["--tmpfs", "/tmp"]);
                // The program's directory and the data directory stay visible even when they
                // are under /tmp (a clone in a temporary directory).
                if let Some(dir) = work.image.parent().filter(|d| !d.as_os_str().is_empty()) {
                    command.arg("--ro-bind").arg(dir).arg(dir);
                }
                command
                    .arg("--bind")
                    .arg(&self.data_dir)
                    .arg(&self.data_dir);
                command.args(["--unshare-all", "--die-with-parent", "--"]);
                command.arg(&work.image).args(host_args());
                command
            }
            Runner::Qemu => {
                let mut command = Command::new("qemu-x86_64");
                command.arg(&work.image).args(host_args());
                command
            }
            Runner::Litebox => {
                let mut command = Command::new(&self.vmm);
                command.arg("--stats");
                if let Some(memory) = &work.memory {
                    command.args(["--memory", memory]);
                }
                let mut dir = self.data_dir.clone().into_os_string();
                dir.push(format!(":{GUEST_DATA}"));
                command.arg("--dir").arg(dir);
                command.arg("--image").arg(&work.image).arg("--");
                command.args(work.args.iter().map(|arg| match arg {
                    Arg::Text(text) => text.clone(),
                    Arg::Data { prefix, relative } => format!("{prefix}{GUEST_DATA}/{relative}"),
                }));
                command
            }
        }
    }

    /// The command that runs `work` under `runner` through the `peak-rss` helper at `helper`.
    pub fn measured_command(&self, helper: &Path, runner: Runner, work: &Work) -> Command {
        let inner = self.command(runner, work);
        let mut command = Command::new(helper);
        command.arg(inner.get_program()).args(inner.get_args());
        command
    }

    fn host_arg(&self, arg: &Arg) -> std::ffi::OsString {
        match arg {
            Arg::Text(text) => text.into(),
            Arg::Data { prefix, relative } => {
                let mut arg = std::ffi::OsString::from(prefix);
                arg.push(self.data_dir.join(relative));
                arg
            }
        }
    }
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct Sample {
    /// From just before spawn to the reaped exit.
    pub wall: Duration,
    /// Peak resident set of the process (and of the children it waited for), KiB.
    pub max_rss_kib: u64,
    pub stderr: String,
}

/// Runs `command` to its end with stdin and stdout on `/dev/null`; fails unless it exits 0.
pub fn run(command: &mut Command) -> Result<Sample> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("can't start {command:?}"))?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr)
            .context("reading the program's stderr")?;
    }
    let (status, usage) = wait4(&child)?;
    let wall = started.elapsed();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!(
            "{command:?} failed (wait status {status:#x}): {}",
            stderr.trim()
        );
    }
    Ok(Sample {
        wall,
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        stderr,
    })
}

/// Reaps `child` and returns its wait status and resource usage, which `Child::wait` drops.
pub fn wait4(child: &Child) -> Result<(i32, libc::rusage)> {
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own unreaped child (std never waits for it behind our back:
        // we don't call `wait`), and both pointers are to live locals of the right types.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            return Ok((status, usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("wait4");
        }
    }
}

/// Whether `path` is an executable file.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
