//! `litebox-vmm`: the command line over the [`litebox_vmm::Sandbox`] API.
//!
//! Exit status follows `docker run`: the program's own status, 128+N when signal N ended it,
//! 124 when `--timeout` expired, 152 (SIGXCPU) when `--cpu-time` ran out, 153 (SIGXFSZ) when
//! the output passed `--max-output`, 125 when the sandbox failed (bad flag, no KVM, guest kernel
//! panic), 126 when the image can't be executed, 127 when it doesn't exist. Every error is one
//! line on stderr.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use clap::Parser;
use litebox_vmm::{Confinement, ExitStatus, Input, Output, Sandbox};

/// Run an unmodified static Linux x86-64 program in a KVM micro-VM under the litebox library
/// kernel. The program sees only its arguments, the --env pairs, stdin/stdout/stderr and the
/// --dir directories.
#[derive(Parser, Debug)]
#[command(name = "litebox-vmm", version, about, long_about = None)]
struct Cli {
    /// The static ELF program to run (ET_EXEC or static-pie).
    #[arg(long, value_name = "PROG")]
    image: PathBuf,

    /// Guest memory (e.g. 256M, 1G); only what the program touches costs host memory.
    #[arg(long, value_name = "SIZE", default_value = "512M")]
    #[arg(value_parser = parse_memory, allow_hyphen_values = true)]
    memory: u64,

    /// An environment variable for the program, KEY=VALUE (repeatable). Nothing else is set.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(OsString, OsString)>,

    /// Stop the program after this long (e.g. 500ms, 2s, 1m); exit status 124.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[arg(allow_hyphen_values = true)]
    timeout: Option<Duration>,

    /// Stop the program once it has used this much CPU time (e.g. 500ms, 2s); exit status 152,
    /// as SIGXCPU ends a process at its RLIMIT_CPU. Time spent sleeping does not count.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    #[arg(allow_hyphen_values = true)]
    cpu_time: Option<Duration>,

    /// Bytes stdout and stderr may take together (e.g. 1M); past them output is dropped and
    /// the program stopped, exit status 153, as SIGXFSZ ends a process at its RLIMIT_FSIZE.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory, allow_hyphen_values = true)]
    max_output: Option<u64>,

    /// File descriptors the program may hold at once (its RLIMIT_NOFILE, at most 1024, the
    /// default); one more gets EMFILE.
    #[arg(long, value_name = "COUNT", allow_hyphen_values = true)]
    max_fds: Option<u32>,

    /// Print run statistics to stderr on exit.
    #[arg(long)]
    stats: bool,

    /// argv[0] for the program (default: the --image path as given).
    #[arg(long, value_name = "NAME")]
    argv0: Option<OsString>,

    /// Most verbose guest kernel log level to print (off, error, warn, info, debug, trace).
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    log_level: log::LevelFilter,

    /// Show the host directory HOST at the absolute guest path GUEST, read-only with `:ro`
    /// (repeatable). Without it the program sees no host file at all.
    #[arg(long = "dir", value_name = "HOST:GUEST[:ro]", value_parser = parse_dir)]
    dirs: Vec<(PathBuf, PathBuf, bool)>,

    /// The program's starting working directory (an absolute guest path).
    #[arg(long, value_name = "GUEST", default_value = "/")]
    workdir: PathBuf,

    /// Bytes the in-guest tmpfs may hold (e.g. 64M; default: half the guest memory).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory, allow_hyphen_values = true)]
    tmpfs_size: Option<u64>,

    /// Test-only: once confined, make a forbidden host syscall (the VMM must die of SIGSYS).
    #[arg(long, hide = true)]
    attempt_forbidden_syscall: bool,

    /// Arguments for the program, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<OsString>,
}

fn parse_memory(text: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(text)
        .map_err(|error| format!("{error} (use a size such as 256M or 1G)"))
}

/// `HOST:GUEST`, `HOST:GUEST:ro` or `HOST:GUEST:rw`; the host path may itself contain ':'.
/// clap's message as one line: its first paragraph (the error and what it names, such as
/// the missing `--image <PROG>`), without the usage that follows.
fn one_line(message: &str) -> String {
    let paragraph: Vec<&str> = message
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    let line = line.trim_start_matches("error: ").trim_end_matches(':');
    if line.is_empty() { "invalid arguments".to_string() } else { line.to_string() }
}

fn parse_dir(text: &str) -> Result<(PathBuf, PathBuf, bool), String> {
    let (rest, read_only) = match text.rsplit_once(':') {
        Some((rest, "ro")) => (rest, true),
        Some((rest, "rw")) => (rest, false),
        // A third part that is no absolute guest path is a mistyped option.
        Some((rest, option)) if rest.contains(':') && !option.starts_with('/') => {
            return Err(format!("{text:?}: unknown option {option:?} (only :ro or :rw)"));
        }
        _ => (text, false),
    };
    match rest.rsplit_once(':') {
        Some((_, option @ ("ro" | "rw"))) => {
            Err(format!("{text:?}: more than one option (:{option} and another); give one"))
        }
        Some((_, guest)) if !guest.is_empty() && !guest.starts_with('/') => {
            Err(format!("{text:?}: the guest path {guest:?} is not absolute"))
        }
        Some((host, guest)) if !host.is_empty() && !guest.is_empty() => {
            Ok((host.into(), guest.into(), read_only))
        }
        _ => Err(format!("{text:?} is not HOST:GUEST[:ro] (e.g. ./data:/data:ro)")),
    }
}

/// Lets the sandbox hold as many open files as the host allows (the soft limit is often
/// 1024, below what the guest may open).
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid out-pointer for getrlimit; setrlimit only reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Creation modes arrive from the guest with the program's umask already applied (by the
/// guest kernel, which owns it); the VMM's own umask must not narrow them a second time.
fn clear_umask() {
    // SAFETY: umask only changes this process's file-creation mask; the VMM creates no files
    // of its own, only the guest's in its --dir directories.
    unsafe { libc::umask(0) };
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() && seconds > 0.0 {
            return Ok(Duration::from_secs_f64(seconds));
        }
    }
    humantime::parse_duration(text).map_err(|error| format!("{error} (use e.g. 500ms, 2s, 1m)"))
}

fn parse_env(text: &str) -> Result<(OsString, OsString), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.into(), value.into())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// Bit N: fd N (0, 1 or 2) was closed when the process started. Rust's runtime opens
/// `/dev/null` on a closed one before `main`, so this is taken earlier, from `.init_array`.
static CLOSED_AT_START: AtomicU32 = AtomicU32::new(0);

#[used]
#[link_section = ".init_array"]
static RECORD_CLOSED_STDIO: extern "C" fn() = record_closed_stdio;

extern "C" fn record_closed_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the fd's flags; it touches no memory.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            CLOSED_AT_START.fetch_or(1 << fd, Ordering::Relaxed);
        }
    }
}

/// A line on stderr that nothing can turn into a panic: a reader of a shared pipe that left
/// early (`2>&1 | head`) makes the write fail, and the program's outcome still stands.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const SIGNAL_NAMES: [&str; 32] = [
    "", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
    "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
    "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
];

fn main() -> ExitCode {
    // Before any thread exists: see `one_malloc_arena`.
    litebox_vmm::one_malloc_arena();
    // A panic is a bug in litebox-vmm: one line, and the sandbox-failure status. The default
    // hook would also walk the stack for RUST_BACKTRACE, calling getcwd, which the seccomp
    // filter then kills the process for: a SIGSYS that hides the message.
    std::panic::set_hook(Box::new(|info| {
        say!("litebox-vmm: internal error, please report it: {info}");
        std::process::exit(125);
    }));

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            say!("litebox-vmm: {} (see --help)", one_line(&error.to_string()));
            return ExitCode::from(125);
        }
    };
    let default_filter = format!("warn,guest={}", cli.log_level);
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
        .format_timestamp(None)
        .format_target(false)
        .init();

    let image = cli.image.clone();
    let mut builder = Sandbox::builder(&cli.image)
        .args(cli.args)
        .memory(cli.memory)
        .guest_log_level(cli.log_level);
    if let Some(argv0) = cli.argv0 {
        builder = builder.argv0(argv0);
    }
    if let Some(timeout) = cli.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(limit) = cli.cpu_time {
        builder = builder.cpu_time(limit);
    }
    if let Some(bytes) = cli.max_output {
        builder = builder.max_output(bytes);
    }
    if let Some(count) = cli.max_fds {
        builder = builder.max_fds(count);
    }
    for (key, value) in cli.env {
        builder = builder.env(key, value);
    }
    for (host, guest, read_only) in cli.dirs {
        builder = builder.dir(host, guest, read_only);
    }
    builder = builder.workdir(cli.workdir);
    // A stream the caller closed stays closed for the program (it gets EBADF, not /dev/null).
    let closed = CLOSED_AT_START.load(Ordering::Relaxed);
    if closed & 1 != 0 {
        builder = builder.stdin(Input::Closed);
    }
    if closed & 2 != 0 {
        builder = builder.stdout(Output::Closed);
    }
    if closed & 4 != 0 {
        builder = builder.stderr(Output::Closed);
    }
    if let Some(bytes) = cli.tmpfs_size {
        builder = builder.tmpfs_size(bytes);
    }
    // The CLI is the whole process: every thread is confined once the VM is set up.
    builder = builder.confinement(Confinement::Process);
    if cli.attempt_forbidden_syscall {
        builder = builder.attempt_forbidden_syscall();
    }
    raise_open_file_limit();
    clear_umask();

    let outcome = match builder.build().and_then(Sandbox::run) {
        Ok(outcome) => outcome,
        Err(error) => {
            say!("litebox-vmm: {error}");
            return ExitCode::from(error.exit_code() as u8);
        }
    };

    match &outcome.status {
        ExitStatus::Exited(_) => {}
        ExitStatus::Signaled { signal, fault_address, rip } => {
            let name = SIGNAL_NAMES.get(*signal as usize).copied().unwrap_or("signal");
            // Faults say where; other signals (SIGKILL, or a SIGSEGV sent by kill) have no
            // faulting instruction. SIGPIPE is the usual end of a writer into `| head` and,
            // as in a shell, goes unremarked; its status still says it.
            let fault = matches!(*signal, 4 | 5 | 7 | 8 | 11) && *rip != 0;
            let sigpipe = *signal == 13;
            if fault {
                say!(
                    "litebox-vmm: {}: killed by {name} (signal {signal}): fault address \
                     {fault_address:#x}, rip {rip:#x}",
                    image.display()
                );
            } else if !sigpipe {
                say!("litebox-vmm: {}: killed by {name} (signal {signal})", image.display());
            }
        }
        ExitStatus::TimedOut => {
            say!("litebox-vmm: {}: stopped after the --timeout expired", image.display());
        }
        ExitStatus::CpuTimeExceeded => {
            let limit = humantime::format_duration(cli.cpu_time.unwrap_or_default());
            say!(
                "litebox-vmm: {}: stopped after using its --cpu-time of {limit} (SIGXCPU)",
                image.display()
            );
        }
        ExitStatus::OutputLimitExceeded { refused } => {
            say!(
                "litebox-vmm: {}: stopped at the --max-output of {} bytes; a write of {refused} \
                 more bytes was dropped (SIGXFSZ)",
                image.display(),
                cli.max_output.unwrap_or_default()
            );
        }
        _ => say!("litebox-vmm: {}: ended: {:?}", image.display(), outcome.status),
    }
    if cli.stats {
        say!("{}", outcome.stats);
    }
    ExitCode::from(outcome.exit_code() as u8)
}
