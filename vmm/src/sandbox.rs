//! The embedding API: build a [`Sandbox`] (image, arguments, environment, memory, limits,
//! stdio), [`Sandbox::run`] it, get a [`RunOutcome`] (exit status, captured output,
//! statistics). Each run creates its own VM and tears it down; sandboxes in one process share
//! nothing but `/dev/kvm`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kvm_ioctls::Kvm;
use shim_abi::{BootInfo, GuestStats, ABI_VERSION, BOOT_INFO_GPA, BOOT_MAGIC, GUEST_STATS_GPA};
use zerocopy::FromZeros;

use crate::boot::{self, MAX_MEMORY, MIN_MEMORY};
use crate::error::{Error, Result};
use crate::files::{FileService, Mount};
use crate::fs_config;
use crate::loader::{self, GpaBump, Program, ProgramArgs};
use crate::ring::{RingEnd, RingService};
use crate::stats::Stats;
use crate::stdio::{Input, Output, Stdio};
use crate::seccomp::{self, Confinement};
use crate::vcpu::{self, Expired, LoopEnd, Watchdog};

/// The guest kernel and vDSO, built by `build.rs` and embedded in the binary.
static GUEST_KERNEL: &[u8] = include_bytes!(env!("LITEBOX_GUEST_KERNEL_PATH"));
static VDSO: &[u8] = include_bytes!(env!("LITEBOX_VDSO_PATH"));

/// Default guest memory: lazily backed, so only what the program touches costs host memory.
pub const DEFAULT_MEMORY: u64 = 512 << 20;

/// Most file descriptors `--max-fds` may allow: the guest kernel's fd-table ceiling and its
/// default `RLIMIT_NOFILE`.
pub const MAX_FDS: u32 = shim_abi::MAX_FDS;

/// How the program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// It called `exit`/`exit_group` with this status (0..=255).
    Exited(i32),
    /// A signal ended it (a fault it did not handle).
    Signaled { signal: i32, fault_address: u64, rip: u64 },
    /// The run's timeout expired and the VM was torn down.
    TimedOut,
    /// The program used up its CPU time (`--cpu-time`), as `RLIMIT_CPU` ends it with
    /// `SIGXCPU`.
    CpuTimeExceeded,
    /// The program reached the output limit (`--max-output`) and then asked to write
    /// `refused` more bytes, as `RLIMIT_FSIZE` ends it with `SIGXFSZ`.
    OutputLimitExceeded { refused: u64 },
}

impl ExitStatus {
    /// The exit status `docker run` (and a shell, for the limits `ulimit` sets) would give:
    /// the status, 128 + signal, 124 for the timeout, 152 (128 + `SIGXCPU`) for the CPU time
    /// and 153 (128 + `SIGXFSZ`) for the output limit.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(status) => *status,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
            ExitStatus::TimedOut => 124,
            ExitStatus::CpuTimeExceeded => 128 + libc::SIGXCPU,
            ExitStatus::OutputLimitExceeded { .. } => 128 + libc::SIGXFSZ,
        }
    }
}

#[derive(Debug)]
pub struct RunOutcome {
    pub status: ExitStatus,
    /// What the program wrote to stdout/stderr, if they were [`Output::Capture`]d.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stats: Stats,
}

impl RunOutcome {
    pub fn exit_code(&self) -> i32 {
        self.status.code()
    }
}

/// Builds a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxBuilder {
    image: PathBuf,
    args: Vec<OsString>,
    argv0: Option<OsString>,
    env: Vec<(OsString, OsString)>,
    memory: u64,
    timeout: Option<Duration>,
    cpu_time: Option<Duration>,
    max_output: Option<u64>,
    max_fds: Option<u32>,
    stdin: Input,
    stdout: Output,
    stderr: Output,
    guest_log_level: log::LevelFilter,
    mounts: Vec<Mount>,
    workdir: PathBuf,
    tmpfs_size: Option<u64>,
    confinement: Confinement,
    attempt_forbidden_syscall: bool,
}

impl SandboxBuilder {
    /// Arguments after `argv[0]`.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `argv[0]` (default: the image path as given).
    pub fn argv0(mut self, argv0: impl Into<OsString>) -> Self {
        self.argv0 = Some(argv0.into());
        self
    }

    /// Adds `key=value` to the program's environment (which is otherwise empty).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        // A key given again replaces the earlier value, as with `docker run -e`.
        let key = key.into();
        self.env.retain(|(existing, _)| *existing != key);
        self.env.push((key, value.into()));
        self
    }

    /// Guest memory in bytes, rounded up to a whole 4 KiB page.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = bytes;
        self
    }

    /// Wall-clock limit for the run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// CPU-time limit for the run: the vCPU thread's time, guest and VMM work together, not
    /// the time the program sleeps. Passing it ends the run with
    /// [`ExitStatus::CpuTimeExceeded`].
    pub fn cpu_time(mut self, limit: Duration) -> Self {
        self.cpu_time = Some(limit);
        self
    }

    /// Bytes stdout and stderr may take together. The write that crosses the limit is cut
    /// short; the next one ends the run with [`ExitStatus::OutputLimitExceeded`].
    pub fn max_output(mut self, bytes: u64) -> Self {
        self.max_output = Some(bytes);
        self
    }

    /// File descriptors the program may hold at once (its `RLIMIT_NOFILE`, soft and hard);
    /// one more is `EMFILE`. At most [`MAX_FDS`], the default.
    pub fn max_fds(mut self, count: u32) -> Self {
        self.max_fds = Some(count);
        self
    }

    pub fn stdin(mut self, input: Input) -> Self {
        self.stdin = input;
        self
    }

    pub fn stdout(mut self, output: Output) -> Self {
        self.stdout = output;
        self
    }

    pub fn stderr(mut self, output: Output) -> Self {
        self.stderr = output;
        self
    }

    /// The most verbose guest kernel log level to print (through the `log` crate, target
    /// "guest"). Default: the host's own `log::max_level()`.
    pub fn guest_log_level(mut self, level: log::LevelFilter) -> Self {
        self.guest_log_level = level;
        self
    }

    /// Makes the host directory `host` appear at the absolute guest path `guest`, read-only
    /// if `read_only` (`--dir HOST:GUEST[:ro]`). Nothing else of the host's files is visible.
    pub fn dir(
        self,
        host: impl Into<PathBuf>,
        guest: impl Into<PathBuf>,
        read_only: bool,
    ) -> Self {
        self.mount(Mount { host: host.into(), guest: guest.into(), read_only })
    }

    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// The program's starting working directory, an absolute guest path (default `/`).
    pub fn workdir(mut self, guest: impl Into<PathBuf>) -> Self {
        self.workdir = guest.into();
        self
    }

    /// Bytes the in-guest tmpfs (RAM-backed files) may hold; default: half the guest memory.
    pub fn tmpfs_size(mut self, bytes: u64) -> Self {
        self.tmpfs_size = Some(bytes);
        self
    }

    /// Which threads a seccomp filter confines once the VM is set up (default: none; see
    /// [`Confinement`]).
    pub fn confinement(mut self, confinement: Confinement) -> Self {
        self.confinement = confinement;
        self
    }

    /// Test-only: once confined, the VMM opens a host file by path, which the filter forbids,
    /// so the process is killed by `SIGSYS` (proof that the filter is in force).
    #[doc(hidden)]
    pub fn attempt_forbidden_syscall(mut self) -> Self {
        self.attempt_forbidden_syscall = true;
        self
    }

    /// Checks the configuration.
    pub fn build(mut self) -> Result<Sandbox> {
        let page = shim_abi::PAGE_SIZE;
        self.memory = self.memory.checked_next_multiple_of(page).unwrap_or(u64::MAX);
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&self.memory) {
            return Err(Error::Config(format!(
                "guest memory must be between {} MiB and {} GiB, not {} bytes",
                MIN_MEMORY >> 20,
                MAX_MEMORY >> 30,
                self.memory
            )));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(Error::Config("the timeout must be longer than zero".to_string()));
        }
        if self.cpu_time == Some(Duration::ZERO) {
            return Err(Error::Config("the CPU time limit must be longer than zero".to_string()));
        }
        if let Some(count) = self.max_fds.filter(|count| !(1..=MAX_FDS).contains(count)) {
            return Err(Error::Config(format!(
                "the file descriptor limit must be between 1 and {MAX_FDS}, not {count}"
            )));
        }
        for (key, _) in &self.env {
            if key.is_empty() || key.as_bytes().contains(&b'=') || key.as_bytes().contains(&0) {
                return Err(Error::Config(format!("invalid environment variable name {key:?}")));
            }
        }
        let strings = self.args.iter().chain(self.argv0.iter()).chain(self.env.iter().map(|e| &e.1));
        if strings.into_iter().any(|s| s.as_bytes().contains(&0)) {
            return Err(Error::Config("arguments and values may not contain NUL bytes".to_string()));
        }
        fs_config::check_mounts(&mut self.mounts)?;
        self.workdir = fs_config::normalise_workdir(&self.workdir)?;
        fs_config::check_workdir(&self.workdir, &self.mounts)?;
        if self.tmpfs_size == Some(0) {
            return Err(Error::Config(
                "the tmpfs size must be larger than zero (use e.g. --tmpfs-size 64M)".to_string(),
            ));
        }
        Ok(Sandbox { config: self })
    }
}

/// A configured sandbox, ready to run once.
#[derive(Debug)]
pub struct Sandbox {
    config: SandboxBuilder,
}

impl Sandbox {
    pub fn builder(image: impl Into<PathBuf>) -> SandboxBuilder {
        SandboxBuilder {
            image: image.into(),
            args: Vec::new(),
            argv0: None,
            env: Vec::new(),
            memory: DEFAULT_MEMORY,
            timeout: None,
            cpu_time: None,
            max_output: None,
            max_fds: None,
            stdin: Input::Inherit,
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            guest_log_level: log::max_level(),
            mounts: Vec::new(),
            workdir: PathBuf::from("/"),
            tmpfs_size: None,
            confinement: Confinement::None,
            attempt_forbidden_syscall: false,
        }
    }

    /// Creates the VM, runs the program to its end and tears the VM down. A confined sandbox
    /// does all of it on a thread of its own (`litebox-run`), so that the filter binds only
    /// that thread (or, with [`Confinement::Process`], binds the whole process from there).
    pub fn run(self) -> Result<RunOutcome> {
        let config = self.config;
        if config.confinement == Confinement::None {
            return run_here(config);
        }
        seccomp::one_malloc_arena();
        let thread = std::thread::Builder::new()
            .name("litebox-run".to_string())
            .spawn(move || run_here(config))
            .map_err(|source| Error::Host { what: "starting the run thread", source })?;
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// The whole run on the calling thread: set up, confine, run, tear down.
fn run_here(config: SandboxBuilder) -> Result<RunOutcome> {
    let started = Instant::now();
    // A timeout too long to represent as an instant is no deadline at all.
    let deadline = config.timeout.and_then(|timeout| started.checked_add(timeout));

    // The image first: a missing or foreign file is the user's most likely mistake.
    let bytes = loader::read_image(&config.image, config.memory)?;
    let program = Program::parse(&config.image, bytes)?;

    // The VM and its memory.
    let kvm = Kvm::new().map_err(|error| Error::KvmUnavailable {
        source: std::io::Error::from_raw_os_error(error.errno()),
    })?;
    let vm = kvm.create_vm().map_err(Error::kvm("KVM_CREATE_VM"))?;
    let memory = boot::create_memory(&vm, config.memory)?;
    let (kernel_entry, kernel_end) = boot::load_kernel(&memory, GUEST_KERNEL)?;
    let pml4 = boot::write_page_tables(&memory, config.memory)?;
    let mut vcpu = boot::create_vcpu(&kvm, &vm, pml4, kernel_entry)?;

    // The program, its stack and the vDSO, described in the boot info.
    let exec_path = config.image.as_os_str().as_bytes().to_vec();
    let argv0 = config.argv0.as_ref().map_or(exec_path.clone(), |a| a.as_bytes().to_vec());
    let mut argv = vec![argv0];
    argv.extend(config.args.iter().map(|arg| arg.as_bytes().to_vec()));
    let envp: Vec<Vec<u8>> = config
        .env
        .iter()
        .map(|(key, value)| [key.as_bytes(), b"=", value.as_bytes()].concat())
        .collect();
    let mut boot_info = BootInfo::new_zeroed();
    boot_info.magic = BOOT_MAGIC;
    boot_info.abi_version = ABI_VERSION;
    boot_info.log_level = config.guest_log_level as u32;
    boot_info.memory_size = config.memory;
    boot_info.max_fds = config.max_fds.unwrap_or(MAX_FDS);
    boot_info.closed_stdio = u32::from(matches!(config.stdin, Input::Closed))
        | u32::from(config.stdout == Output::Closed) << 1
        | u32::from(config.stderr == Output::Closed) << 2;
    boot_info.tsc_khz =
        u64::from(vcpu.get_tsc_khz().map_err(Error::kvm("KVM_GET_TSC_KHZ"))?);
    let mut bump = GpaBump { next: kernel_end, end: config.memory };
    let args = ProgramArgs { argv: &argv, envp: &envp, exec_path: &exec_path };
    loader::load(&memory, &mut bump, &program, VDSO, &args, &mut boot_info)?;
    boot_info.free_gpa = bump.next;

    crate::guest_memory::write(&memory, BOOT_INFO_GPA, &boot_info).map_err(Error::GuestMemory)?;

    // The file-system policy: the page the guest reads, and the host side of each mount.
    let exe_path = fs_config::exe_path(&config.image, &config.mounts).unwrap_or_else(|| {
        log::warn!("the image path is too long for /proc/self/exe; it will not resolve");
        Vec::new()
    });
    let tmpfs_size = config.tmpfs_size.unwrap_or(config.memory / 2);
    fs_config::write(&memory, &config.mounts, &config.workdir, tmpfs_size, &exe_path)?;
    let mut files = FileService::new(&config.mounts)?;

    let mut stats = Stats { setup: started.elapsed(), ..Stats::default() };

    // Confine: the watchdog thread first (no thread can be created afterwards), then the
    // filter, before the guest runs a single instruction.
    let watchdog = Watchdog::start(deadline, config.cpu_time)
        .map_err(|source| Error::Host { what: "starting the watchdog thread", source })?;
    seccomp::confine(config.confinement)?;
    if config.attempt_forbidden_syscall {
        seccomp::attempt_forbidden_open();
    }

    // Run.
    let mut stdio = Stdio::new(config.stdin, config.stdout, config.stderr);
    if let Some(bytes) = config.max_output {
        stdio.limit_output(bytes);
    }
    let mut service = RingService {
        memory: &memory,
        stdio: &mut stdio,
        files: &mut files,
        stats: &mut stats,
        deadline,
        clock_read_at: None,
    };
    let end = vcpu::run(&mut vcpu, &mut service, &watchdog);
    drop(watchdog);
    let clock_read_at = service.clock_read_at;
    stats.to_exit = started.elapsed();

    // Read back the guest's counters, then tear down: the vCPU and VM go before memory.
    let guest_stats: Option<GuestStats> =
        crate::guest_memory::read(&memory, GUEST_STATS_GPA).ok();
    if let Some(guest) = &guest_stats {
        stats.absorb_guest(guest);
        stats.to_first_instruction = first_instruction_time(
            guest,
            boot_info.tsc_khz,
            clock_read_at.map(|at| at - started),
        );
    }
    drop(vcpu);
    drop(vm);
    drop(memory);

    let status = match end {
        LoopEnd::Ring(RingEnd::Exited(status)) => ExitStatus::Exited(status),
        LoopEnd::Ring(RingEnd::Signaled { signal, fault_address, rip }) => {
            ExitStatus::Signaled { signal, fault_address, rip }
        }
        LoopEnd::Ring(RingEnd::Panicked(message)) => return Err(Error::GuestPanic(message)),
        LoopEnd::Expired(Expired::Wall) => ExitStatus::TimedOut,
        LoopEnd::Expired(Expired::CpuTime) => ExitStatus::CpuTimeExceeded,
        LoopEnd::OutputLimit(refused) => ExitStatus::OutputLimitExceeded { refused },
        LoopEnd::Failed(message) => return Err(Error::GuestFailure(message)),
    };
    Ok(RunOutcome {
        status,
        stdout: stdio.take_captured(1),
        stderr: stdio.take_captured(2),
        stats,
    })
}

/// Converts the guest's TSC stamps to a time since the sandbox started, using the moment
/// the host answered the guest's boot-time clock reading as the common reference.
fn first_instruction_time(
    guest: &GuestStats,
    tsc_khz: u64,
    clock_read: Option<Duration>,
) -> Option<Duration> {
    let clock_read = clock_read?;
    if guest.program_start_tsc == 0 || tsc_khz == 0 {
        return None;
    }
    let cycles = guest.program_start_tsc.checked_sub(guest.boot_clock_tsc)?;
    Some(clock_read + Duration::from_nanos(cycles.saturating_mul(1_000_000) / tsc_khz))
}

pub(crate) fn guest_kernel() -> &'static [u8] {
    GUEST_KERNEL
}
