//! The seccomp filter the VMM confines itself with once the VM is built and before the vCPU
//! first runs. From then on the VMM needs only what serving the ring takes: `KVM_RUN`, I/O on
//! the stdio streams and on files reached through the mount fds opened beforehand, sleeping,
//! the watchdog's kick, and memory for its own heap. Anything else (a socket, `execve`, a new
//! thread, a path opened from the host's root or working directory, new executable memory)
//! kills the whole process with `SIGSYS`: a forbidden syscall is never silently allowed.
//!
//! Installing the filter first sets `PR_SET_NO_NEW_PRIVS` (seccompiler does it), so nothing
//! the VMM could still exec would gain privileges either.
//!
//! Who is confined is the embedder's choice ([`Confinement`]): a library must not impose a
//! filter on a process it does not own, so `Sandbox` does nothing unless asked; the CLI, which
//! is the whole process, confines every thread.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

/// Which threads of the VMM process the seccomp filter binds once the VM is set up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Confinement {
    /// No filter: the library's default, since a library must not restrict its embedder.
    #[default]
    None,
    /// Only the threads of this run: `Sandbox::run` sets the VM up and runs it on a thread of
    /// its own (named `litebox-run`) that installs the filter on itself before the vCPU first
    /// runs, and ends with the run. The embedder's threads are not filtered. Note that threads
    /// share memory, so code that took over the confined thread could still reach the others
    /// through it; confine the whole process where the process is only a sandbox.
    Thread,
    /// Every thread of the process (`SECCOMP_FILTER_FLAG_TSYNC`), for a process that runs one
    /// sandbox and exits, as the `litebox-vmm` CLI does. The filter outlives the run: the
    /// process can't create another VM afterwards.
    Process,
}

/// What one allowed syscall may be called with.
#[derive(Debug, Clone, Copy)]
enum Args {
    /// Any arguments.
    Any,
    /// Each listed argument (a directory fd) is not `AT_FDCWD`: a relative path resolves only
    /// from a fd opened before the filter, never from the host's working directory. (An
    /// absolute path ignores the fd and BPF can't see it: confinement beneath the mounts is
    /// the file service's, `files::path`.)
    DirFds(&'static [u8]),
    /// Argument `index` is one of `values` (compared as 32-bit, as the kernel reads them).
    OneOf { index: u8, values: &'static [u64] },
    /// Argument `index` has none of the bits in `mask` set.
    Without { index: u8, mask: u64 },
}

/// One entry of the allow-list: the syscall, what its arguments may be, and why it is there.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    pub name: &'static str,
    number: libc::c_long,
    args: Args,
    pub reason: &'static str,
}

const fn allow(name: &'static str, number: libc::c_long, reason: &'static str) -> Allowed {
    Allowed { name, number, args: Args::Any, reason }
}

const fn allow_if(
    name: &'static str,
    number: libc::c_long,
    args: Args,
    reason: &'static str,
) -> Allowed {
    Allowed { name, number, args, reason }
}

/// `_IOR(KVMIO, nr, size)`: the number of a KVM ioctl that reads a `size`-byte structure.
const fn kvm_ior(nr: u64, size: usize) -> u64 {
    (2 << 30) | ((size as u64) << 16) | (0xae << 8) | nr
}

const KVM_RUN: u64 = 0xae80;
const KVM_GET_REGS: u64 = kvm_ior(0x81, size_of::<kvm_bindings::kvm_regs>());
const KVM_GET_SREGS: u64 = kvm_ior(0x83, size_of::<kvm_bindings::kvm_sregs>());
const FCNTLS: &[u64] = &[libc::F_GETFL as u64, libc::F_SETFL as u64];
const IOCTLS: &[u64] =
    &[KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, libc::TCGETS, libc::TIOCGWINSZ];
const MADVICE: &[u64] = &[libc::MADV_DONTNEED as u64, libc::MADV_FREE as u64];
const PROT_EXEC: u64 = libc::PROT_EXEC as u64;

/// Everything the VMM may still do once confined, and why.
pub const ALLOWED: &[Allowed] = &[
    allow_if("ioctl", libc::SYS_ioctl, Args::OneOf { index: 1, values: IOCTLS },
        "KVM_RUN; KVM_GET_REGS/SREGS to report a failed guest; TCGETS and TIOCGWINSZ for the \
         program's terminal questions"),
    allow("read", libc::SYS_read, "stdin and file reads"),
    allow("readv", libc::SYS_readv, "reads straight into the guest's pages"),
    allow("pread64", libc::SYS_pread64, "positioned file reads"),
    allow("preadv", libc::SYS_preadv, "positioned reads into the guest's pages"),
    allow("write", libc::SYS_write, "stdout, stderr, the VMM's own messages, file writes"),
    allow("writev", libc::SYS_writev, "writes straight from the guest's pages"),
    allow("pwrite64", libc::SYS_pwrite64, "positioned file writes"),
    allow("pwritev", libc::SYS_pwritev, "positioned writes from the guest's pages"),
    allow("sendfile", libc::SYS_sendfile,
        "the program's sendfile and copy_file_range between host files and stdio, done on the \
         host"),
    allow("poll", libc::SYS_poll, "the program's poll on stdio"),
    allow("ppoll", libc::SYS_ppoll, "the program's poll on stdio (libc may use ppoll)"),
    allow("lseek", libc::SYS_lseek, "file positions"),
    allow_if("fcntl", libc::SYS_fcntl, Args::OneOf { index: 1, values: FCNTLS },
        "F_GETFL and F_SETFL, to pass the program's O_APPEND changes to a host file"),
    allow("fstat", libc::SYS_fstat, "fstat of stdio and of open handles"),
    allow_if("newfstatat", libc::SYS_newfstatat, Args::DirFds(&[0]),
        "stat beneath a mount fd"),
    allow_if("statx", libc::SYS_statx, Args::DirFds(&[0]), "stat beneath a mount fd"),
    allow("fstatfs", libc::SYS_fstatfs, "statfs of a mount"),
    allow("getdents64", libc::SYS_getdents64, "directory listings of open handles"),
    allow_if("openat2", libc::SYS_openat2, Args::DirFds(&[0]),
        "every file open: RESOLVE_BENEATH a mount fd"),
    allow_if("mkdirat", libc::SYS_mkdirat, Args::DirFds(&[0]), "mkdir beneath a mount fd"),
    allow_if("unlinkat", libc::SYS_unlinkat, Args::DirFds(&[0]), "unlink and rmdir"),
    allow_if("renameat2", libc::SYS_renameat2, Args::DirFds(&[0, 2]), "rename"),
    allow_if("linkat", libc::SYS_linkat, Args::DirFds(&[0, 2]), "hard links"),
    allow_if("symlinkat", libc::SYS_symlinkat, Args::DirFds(&[1]), "symlinks"),
    allow_if("readlinkat", libc::SYS_readlinkat, Args::DirFds(&[0]), "readlink"),
    allow_if("faccessat2", libc::SYS_faccessat2, Args::DirFds(&[0]), "access"),
    allow("fchmod", libc::SYS_fchmod, "chmod of an open handle"),
    allow_if("fchmodat2", libc::SYS_fchmodat2, Args::DirFds(&[0]),
        "chmod of what an O_PATH fd names"),
    allow_if("utimensat", libc::SYS_utimensat, Args::DirFds(&[0]), "file times"),
    allow("ftruncate", libc::SYS_ftruncate, "truncate"),
    allow("fsync", libc::SYS_fsync, "fsync"),
    allow("fdatasync", libc::SYS_fdatasync, "fdatasync"),
    allow("close", libc::SYS_close, "closing handles the guest closed; tearing the VM down"),
    allow("getrandom", libc::SYS_getrandom, "the guest's entropy requests"),
    allow_if("madvise", libc::SYS_madvise, Args::OneOf { index: 2, values: MADVICE },
        "MADV_DONTNEED of guest frames the guest freed; the allocator returning memory"),
    allow_if("mmap", libc::SYS_mmap, Args::Without { index: 2, mask: PROT_EXEC },
        "the VMM's heap (never executable)"),
    allow_if("mprotect", libc::SYS_mprotect, Args::Without { index: 2, mask: PROT_EXEC },
        "the allocator growing a thread's heap (never executable)"),
    allow("munmap", libc::SYS_munmap, "the heap; unmapping guest memory at the end"),
    allow("mremap", libc::SYS_mremap, "the heap growing large buffers"),
    allow("brk", libc::SYS_brk, "the heap"),
    allow("futex", libc::SYS_futex, "locks, and the watchdog's park and wake-up"),
    allow("sched_yield", libc::SYS_sched_yield, "lock back-off"),
    allow("sched_getaffinity", libc::SYS_sched_getaffinity,
        "glibc's allocator counts CPUs on a thread's first allocation (the watchdog's)"),
    allow("clock_gettime", libc::SYS_clock_gettime,
        "time, and the vCPU thread's CPU time for --cpu-time"),
    allow("clock_nanosleep", libc::SYS_clock_nanosleep, "sleeping while the guest halts"),
    allow("nanosleep", libc::SYS_nanosleep, "sleeping while the guest halts"),
    allow("getpid", libc::SYS_getpid, "pthread_kill finds its own process"),
    allow("gettid", libc::SYS_gettid, "pthread_kill and the allocator name a thread"),
    allow_if("tgkill", libc::SYS_tgkill, Args::OneOf { index: 2, values: &[KICK_SIGNAL] },
        "the watchdog kicking the vCPU out of KVM_RUN (that signal only)"),
    allow("rt_sigreturn", libc::SYS_rt_sigreturn, "returning from the kick handler"),
    allow("rt_sigprocmask", libc::SYS_rt_sigprocmask, "threads ending; the runtime"),
    allow("sigaltstack", libc::SYS_sigaltstack, "a thread ending removes its signal stack"),
    allow("rseq", libc::SYS_rseq, "a thread ending unregisters its restartable sequences"),
    allow("exit", libc::SYS_exit, "a thread ending"),
    allow("exit_group", libc::SYS_exit_group, "the process ending"),
];

/// The watchdog's kick signal, `SIGRTMIN` as the C library numbers it (glibc and musl: 34).
const KICK_SIGNAL: u64 = 34;

/// The compiled filter: everything in [`ALLOWED`] (with its argument checks) is allowed, and
/// anything else kills the process.
pub fn filter() -> Result<BpfProgram> {
    let compile_error =
        |source: seccompiler::Error| Error::Confinement { step: "compiling", source };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for allowed in ALLOWED {
        let rule_list = rules_for(allowed.args).map_err(compile_error)?;
        rules.insert(allowed.number, rule_list);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|error| compile_error(error.into()))?;
    filter.try_into().map_err(|error: seccompiler::BackendError| compile_error(error.into()))
}

/// The rules for one syscall: an empty list allows any arguments; otherwise any one matching
/// rule allows the call (each rule's conditions must all hold).
fn rules_for(args: Args) -> std::result::Result<Vec<SeccompRule>, seccompiler::Error> {
    let condition = |index, operator, value| {
        SeccompCondition::new(index, SeccompCmpArgLen::Dword, operator, value)
    };
    let at_fdcwd = u64::from(libc::AT_FDCWD.cast_unsigned());
    let rules = match args {
        Args::Any => Vec::new(),
        Args::DirFds(indices) => {
            let conditions = indices
                .iter()
                .map(|&index| condition(index, SeccompCmpOp::Ne, at_fdcwd))
                .collect::<std::result::Result<_, _>>()?;
            vec![SeccompRule::new(conditions)?]
        }
        Args::OneOf { index, values } => values
            .iter()
            .map(|&value| Ok(SeccompRule::new(vec![condition(index, SeccompCmpOp::Eq, value)?])?))
            .collect::<std::result::Result<_, seccompiler::Error>>()?,
        Args::Without { index, mask } => {
            vec![SeccompRule::new(vec![condition(index, SeccompCmpOp::MaskedEq(mask), 0)?])?]
        }
    };
    Ok(rules)
}

/// Installs the filter as `confinement` asks, on the calling thread (which must be the run's
/// own thread for [`Confinement::Thread`]) or on every thread of the process.
pub fn confine(confinement: Confinement) -> Result<()> {
    let program = match confinement {
        Confinement::None => return Ok(()),
        Confinement::Thread | Confinement::Process => filter()?,
    };
    let installed = if confinement == Confinement::Process {
        seccompiler::apply_filter_all_threads(&program)
    } else {
        seccompiler::apply_filter(&program)
    };
    installed.map_err(|source| Error::Confinement { step: "installing", source })
}

/// Makes glibc's allocator keep one arena for every thread created from now on, before the
/// filter goes on. A thread's own arena, when trimmed as the thread ends, reads
/// `/proc/sys/vm/overcommit_memory` (and a new arena reads `/sys/devices/system/cpu/online`):
/// opens the filter kills the process for, after the program's run is over. The main arena
/// trims with `brk` and `madvise`, which the filter allows. The CLI calls it first thing, so
/// it holds for every thread; an embedder's threads that already have arenas of their own
/// keep them (a known gap for [`Confinement::Thread`]).
pub fn one_malloc_arena() {
    // SAFETY: mallopt only changes the allocator's tunables; any value is valid for it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Opens `/etc/hostname` from the host's working directory, which the filter forbids: the
/// test-only proof that a confined VMM is killed rather than allowed.
pub fn attempt_forbidden_open() {
    // SAFETY: openat only reads the NUL-terminated path; the fd, if any, is closed at once.
    unsafe {
        let fd = libc::openat(libc::AT_FDCWD, c"/etc/hostname".as_ptr(), libc::O_RDONLY);
        if fd >= 0 {
            libc::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_and_names_each_syscall_once() {
        assert!(!filter().expect("the filter compiles").is_empty());
        let mut names: Vec<_> = ALLOWED.iter().map(|a| a.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a syscall is listed twice");
    }

    #[test]
    fn the_readme_lists_every_allowed_syscall() {
        let readme = include_str!("../../README.md");
        for allowed in ALLOWED {
            let row = format!("| `{}` |", allowed.name);
            assert!(readme.contains(&row), "README's allow-list lacks {}", allowed.name);
        }
    }

    #[test]
    fn kvm_ioctl_numbers_are_linuxs() {
        assert_eq!(KVM_GET_REGS, 0x8090_ae81);
        assert_eq!(KVM_GET_SREGS, 0x8138_ae83);
        assert_eq!(KICK_SIGNAL, u64::from(libc::SIGRTMIN().cast_unsigned()));
    }
}
