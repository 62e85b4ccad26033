//! Helpers shared by the integration tests: where the test images are, how to run a program
//! in the sandbox (the real `litebox-vmm` binary on the real `/dev/kvm`) and natively, and how
//! to compare the two runs. Every run has a watchdog so a hung sandbox fails its test instead
//! of hanging the suite. A missing image is a panic that says how to build it, never a skip.

#![allow(
    dead_code,
    reason = "each test crate uses its own subset of these helpers"
)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Debian's busybox-static, run in the sandbox as an unmodified third-party program.
pub const BUSYBOX: &str = "/bin/busybox";

/// How long one run may take before the watchdog kills it. Generous: ring 0 of the guest is
/// emulated on the development machines. `LITEBOX_TEST_TIMEOUT` (seconds) overrides it.
pub fn run_limit() -> Duration {
    std::env::var("LITEBOX_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `$LITEBOX_IMAGES`, or `<workspace>/target/images/` where `cargo xtask images` puts them.
pub fn images_dir() -> PathBuf {
    match std::env::var_os("LITEBOX_IMAGES") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target/images"),
    }
}

/// The path of a built test image (or of a file next to them).
pub fn image(name: &str) -> PathBuf {
    let path = images_dir().join(name);
    assert!(
        path.exists(),
        "test image {} is missing: run `cargo xtask images` (or set LITEBOX_IMAGES)",
        path.display()
    );
    path
}

pub fn busybox() -> PathBuf {
    let path = PathBuf::from(BUSYBOX);
    assert!(
        path.exists(),
        "{BUSYBOX} is missing: run `cargo xtask setup` (it installs busybox-static)"
    );
    path
}

/// Whether an ELF file has a `PT_INTERP` program header (it is a dynamic program).
pub fn has_interp(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        bytes.len() >= 64 && bytes[..4] == *b"\x7fELF",
        "{} is no ELF",
        path.display()
    );
    let read = |offset: usize, len: usize| -> u64 {
        let field = bytes.get(offset..offset + len).expect("ELF truncated");
        field
            .iter()
            .rev()
            .fold(0, |value, byte| value << 8 | u64::from(*byte))
    };
    let phoff = usize::try_from(read(32, 8)).expect("e_phoff fits");
    let phentsize = usize::try_from(read(54, 2)).expect("u16");
    let phnum = usize::try_from(read(56, 2)).expect("u16");
    (0..phnum).any(|i| read(phoff + i * phentsize, 4) == 3)
}

/// Where a run happened: a sandboxed run's own death by a signal is a VMM crash, never the
/// program's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Sandbox,
    Native,
}

/// One finished run.
#[derive(Debug)]
pub struct Run {
    pub place: Place,
    pub command: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub wall: Duration,
}

impl Run {
    /// The exit code as a shell reports it: the status, or 128+N when killed by signal N. For
    /// the sandbox, being killed is a crash of litebox-vmm itself and fails the test.
    pub fn code(&self) -> i32 {
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => code,
            (None, Some(signal)) if self.place == Place::Native => 128 + signal,
            _ => panic!(
                "litebox-vmm itself died ({})\n{}",
                self.status,
                self.report()
            ),
        }
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// What happened, for assertion messages: the command, the status and the start of both
    /// outputs.
    pub fn report(&self) -> String {
        format!(
            "{:?} run `{}`: {} after {:.2?}\n--- stdout ({} bytes) ---\n{}\n--- stderr ---\n{}",
            self.place,
            self.command,
            self.status,
            self.wall,
            self.stdout.len(),
            excerpt(&self.stdout),
            excerpt(&self.stderr),
        )
    }
}

/// The first 2 KiB of some output, as text.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).into_owned();
    if bytes.len() > 2048 {
        text + "\n[…]"
    } else {
        text
    }
}

/// A program for the sandbox or a native run: arguments, environment, stdin.
pub struct Program {
    image: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    flags: Vec<String>,
    stdin: Option<Vec<u8>>,
}

impl Program {
    pub fn new(image: impl Into<PathBuf>) -> Self {
        Self {
            image: image.into(),
            args: Vec::new(),
            env: Vec::new(),
            flags: Vec::new(),
            stdin: None,
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment entry: `--env K=V` in the sandbox, the only variable natively too.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Flags for litebox-vmm itself (`--timeout 1s`); a native run ignores them.
    pub fn flags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, flags: I) -> Self {
        self.flags.extend(flags.into_iter().map(Into::into));
        self
    }

    /// Bytes to pipe on stdin (otherwise stdin is /dev/null).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// `litebox-vmm FLAGS --env K=V... --image IMAGE [-- ARGS...]`.
    pub fn sandboxed(&self) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
        command.args(&self.flags);
        for (key, value) in &self.env {
            command.arg("--env").arg(format!("{key}={value}"));
        }
        command.arg("--image").arg(&self.image);
        if !self.args.is_empty() {
            command.arg("--").args(&self.args);
        }
        run(command, Place::Sandbox, self.stdin.as_deref())
    }

    /// The same program run directly, with exactly the given environment and the same argv[0].
    pub fn native(&self) -> Run {
        let mut command = Command::new(&self.image);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        run(command, Place::Native, self.stdin.as_deref())
    }
}

/// The sandboxed program sees only stdio, so a native one must not inherit the harness's other
/// fds either (a CI runner's open fd 77 once made `select` on it succeed natively).
fn close_inherited_fds_on_exec(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and makes one
    // async-signal-safe syscall; it touches no memory shared with the parent.
    unsafe {
        command.pre_exec(|| {
            let (first, last) = (3u32, u32::MAX);
            let flags = libc::CLOSE_RANGE_CLOEXEC;
            match libc::syscall(libc::SYS_close_range, first, last, flags) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
}

/// Runs `command` to its end (at most [`run_limit`]), feeding `stdin` and collecting both
/// outputs on their own threads so no pipe can fill up and stall the program.
pub fn run(mut command: Command, place: Place, stdin: Option<&[u8]>) -> Run {
    let description = describe(&command);
    if place == Place::Native {
        close_inherited_fds_on_exec(&mut command);
    }
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("can't start `{description}`: {e}"));
    let feeder = child.stdin.take().map(|mut pipe| {
        let bytes = stdin.unwrap_or_default().to_vec();
        // The program may exit without reading everything: a broken pipe is its business.
        thread::spawn(move || drop(pipe.write_all(&bytes)))
    });
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));

    let limit = run_limit();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{description}` still running after {limit:?}: killed it\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&stderr.join().unwrap_or_default())
                );
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for `{description}`: {e}"),
        }
    };
    let wall = started.elapsed();

    if let Some(feeder) = feeder {
        feeder.join().expect("stdin feeder panicked");
    }
    Run {
        place,
        command: description,
        status,
        stdout: stdout.join().expect("stdout reader panicked"),
        stderr: stderr.join().expect("stderr reader panicked"),
        wall,
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn describe(command: &Command) -> String {
    let quote = |s: &OsStr| {
        let s = s.to_string_lossy();
        if s.is_empty() || s.contains(char::is_whitespace) {
            format!("'{s}'")
        } else {
            s.into_owned()
        }
    };
    std::iter::once(quote(command.get_program()))
        .chain(command.get_args().map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sandboxed run behaved exactly like the native one: same stdout bytes, same exit code.
pub fn assert_same(sandboxed: &Run, native: &Run) {
    assert_eq!(
        sandboxed.code(),
        native.code(),
        "exit codes differ\n{}\n{}",
        sandboxed.report(),
        native.report()
    );
    assert!(
        sandboxed.stdout == native.stdout,
        "stdout differs\n{}\n{}",
        sandboxed.report(),
        native.report()
    );
}

pub fn assert_code(run: &Run, expected: i32) {
    assert_eq!(run.code(), expected, "wrong exit code\n{}", run.report());
}

/// litebox-vmm's own error: exactly one line on stderr, starting with `litebox-vmm: `.
pub fn assert_one_error_line(run: &Run) -> String {
    let text = run.stderr_text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("litebox-vmm: "),
        "expected one `litebox-vmm: ` line on stderr\n{}",
        run.report()
    );
    lines[0].to_owned()
}

/// The stderr line in which litebox-vmm reports how the program was killed.
pub fn kill_line(run: &Run) -> String {
    let text = run.stderr_text();
    text.lines()
        .find(|line| line.starts_with("litebox-vmm: ") && line.contains("killed by"))
        .unwrap_or_else(|| panic!("no `litebox-vmm: ... killed by` line\n{}", run.report()))
        .to_owned()
}

/// 1 MiB (or `len` bytes) of deterministic pseudo-random bytes (xorshift64).
pub fn pseudo_random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}
