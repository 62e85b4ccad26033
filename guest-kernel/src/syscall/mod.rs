//! Syscall dispatch. Each syscall is a plain function over the [`Kernel`] state taking its
//! arguments as numbers and returning `Result<u64, Errno>`; nothing here depends on the ring
//! it runs in (the entry paths in `arch`/`trap` deliver the registers). Areas follow Linux's
//! split: `io` (data on fds), `fs` (paths and file metadata), `memory`, `process`, `signal`,
//! `time`.
//!
//! An unknown syscall returns `ENOSYS` and is logged once, by name.

mod dotdot;
mod fs;
mod host_transfer;
mod io;
mod memory;
mod piece_list;
mod process;
mod procfs;
mod signal;
mod time;

use shim_abi::syscall_names::syscall_name;
use shim_abi::SYSCALL_COUNTERS;

use crate::arch::TrapFrame;
use crate::errno::{Errno, SysResult};
use crate::fs::MAX_SYMLINK_HOPS;
use crate::process::Kernel;
use crate::trap::stats;

/// Syscall arguments in ABI order (rdi, rsi, rdx, r10, r8, r9).
#[derive(Clone, Copy)]
pub struct Args([u64; 6]);

impl Args {
    fn from_frame(frame: &TrapFrame) -> Self {
        Self([frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9])
    }
}

/// Runs the syscall in `frame.rax` and leaves its result in `frame.rax`.
pub fn dispatch(kernel: &mut Kernel, frame: &mut TrapFrame) {
    // Like Linux, only the low 32 bits name the syscall; a negative number is no syscall.
    let number = match frame.rax as u32 as i32 {
        negative if negative < 0 => u64::MAX,
        number => number as u64,
    };
    count(number);
    let args = Args::from_frame(frame);
    let answer = match host_transfer::try_transfer(kernel, number, &args.0) {
        Some(answer) => answer,
        None => call_following_exits(kernel, number, args),
    };
    let result = match answer {
        Ok(value) => value,
        Err(Errno(errno)) => (-i64::from(errno)) as u64,
    };
    frame.rax = result;
}

/// [`call`], run again each time a lookup met a host symlink that leaves its mount, now kept
/// in `Vfs::exits` and followed in the guest. Nothing was done by the failed run: the
/// request that met the link was refused by the host before acting.
///
/// Each link counts once here, on top of the hops one resolution follows by itself, so a
/// path may take more than Linux's 40 links in all before `ELOOP` (a known difference).
fn call_following_exits(kernel: &mut Kernel, number: u64, args: Args) -> SysResult {
    let mut answer = call(kernel, number, args);
    while answer == Err(Errno::LEFT_MOUNT) {
        answer = match kernel.vfs.exits.len() > MAX_SYMLINK_HOPS {
            true => Err(Errno::ELOOP),
            false => call(kernel, number, args),
        };
    }
    if !kernel.vfs.exits.is_empty() {
        kernel.vfs.exits.clear();
    }
    answer
}

fn count(number: u64) {
    // SAFETY: the stats page is guest memory reserved for these counters.
    unsafe {
        let stats = stats();
        match usize::try_from(number) {
            Ok(index) if index < SYSCALL_COUNTERS => (*stats).syscalls[index] += 1,
            _ => (*stats).other_syscalls += 1,
        }
    }
}

/// `AT_FDCWD` as the register holds it.
const AT_FDCWD: u64 = fs::AT_FDCWD as i64 as u64;

fn call(kernel: &mut Kernel, number: u64, args: Args) -> SysResult {
    let a = args.0;
    match number {
        // Data on fds (io).
        0 => io::read(kernel, a[0], a[1], a[2]),
        1 => io::write(kernel, a[0], a[1], a[2]),
        3 => io::close(kernel, a[0]),
        7 => io::poll(kernel, a[0], a[1], a[2]),
        23 => io::select(kernel, a[0], [a[1], a[2], a[3]], a[4]),
        270 => io::pselect6(kernel, a[0], [a[1], a[2], a[3]], a[4]),
        271 => io::ppoll(kernel, a[0], a[1], a[2]),
        8 => io::lseek(kernel, a[0], a[1], a[2]),
        16 => io::ioctl(kernel, a[0], a[1], a[2]),
        17 => io::pread64(kernel, a[0], a[1], a[2], a[3]),
        18 => io::pwrite64(kernel, a[0], a[1], a[2], a[3]),
        19 => io::readv(kernel, a[0], a[1], a[2]),
        20 => io::writev(kernel, a[0], a[1], a[2]),
        22 => io::pipe2(kernel, a[0], 0),
        32 => io::dup(kernel, a[0]),
        33 => io::dup3(kernel, a[0], a[1], 0, true),
        40 => io::sendfile(kernel, a[0], a[1], a[2], a[3]),
        72 => io::fcntl(kernel, a[0], a[1], a[2]),
        // flock and fadvise64: one process holds every lock; advice needs no answer.
        73 | 221 => kernel.files.get(a[0]).map(|_| 0),
        292 => io::dup3(kernel, a[0], a[1], a[2], false),
        293 => io::pipe2(kernel, a[0], a[1]),
        295 => io::vectored_at(kernel, a[0], a[1], a[2], a[3], 0, false),
        296 => io::vectored_at(kernel, a[0], a[1], a[2], a[3], 0, true),
        318 => io::getrandom(kernel, a[0], a[1], a[2]),
        326 => io::copy_file_range(kernel, a[0], a[1], a[2], a[3], a[4], a[5]),
        327 => io::vectored_at(kernel, a[0], a[1], a[2], a[3], a[5], false),
        328 => io::vectored_at(kernel, a[0], a[1], a[2], a[3], a[5], true),
        436 => io::close_range(kernel, a[0], a[1], a[2]),

        // Paths and file metadata (fs).
        2 => fs::open(kernel, a[0], a[1], a[2]),
        4 => fs::stat(kernel, a[0], a[1], true),
        5 => fs::fstat(kernel, a[0], a[1]),
        6 => fs::stat(kernel, a[0], a[1], false),
        21 => fs::faccessat2(kernel, AT_FDCWD, a[0], a[1], 0),
        74 | 75 => fs::fsync(kernel, a[0], number == 75),
        76 => fs::truncate(kernel, a[0], a[1]),
        77 => fs::ftruncate(kernel, a[0], a[1]),
        79 => fs::getcwd(kernel, a[0], a[1]),
        80 => fs::chdir(kernel, a[0]),
        81 => fs::fchdir(kernel, a[0]),
        82 => fs::renameat2(kernel, AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
        83 => fs::mkdirat(kernel, AT_FDCWD, a[0], a[1]),
        84 => fs::rmdir(kernel, a[0]),
        85 => fs::creat(kernel, a[0], a[1]),
        86 => fs::linkat(kernel, AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
        87 => fs::unlink(kernel, a[0]),
        88 => fs::symlinkat(kernel, a[0], AT_FDCWD, a[1]),
        89 => fs::readlinkat(kernel, AT_FDCWD, a[0], a[1], a[2]),
        90 => fs::fchmodat(kernel, AT_FDCWD, a[0], a[1], 0),
        91 => fs::fchmod(kernel, a[0], a[1]),
        92 => fs::fchownat(kernel, AT_FDCWD, a[0], a[1], a[2], 0),
        93 => fs::fchown(kernel, a[0], a[1], a[2]),
        94 => fs::fchownat(kernel, AT_FDCWD, a[0], a[1], a[2], 0x100),
        95 => fs::umask(kernel, a[0]),
        137 => fs::statfs(kernel, a[0], a[1]),
        138 => fs::fstatfs(kernel, a[0], a[1]),
        217 => fs::getdents64(kernel, a[0], a[1], a[2]),
        235 => fs::utimes(kernel, a[0], a[1]),
        257 => fs::openat(kernel, a[0], a[1], a[2], a[3]),
        258 => fs::mkdirat(kernel, a[0], a[1], a[2]),
        260 => fs::fchownat(kernel, a[0], a[1], a[2], a[3], a[4]),
        262 => fs::newfstatat(kernel, a[0], a[1], a[2], a[3]),
        263 => fs::unlinkat(kernel, a[0], a[1], a[2]),
        264 => fs::renameat2(kernel, a[0], a[1], a[2], a[3], 0),
        265 => fs::linkat(kernel, a[0], a[1], a[2], a[3], a[4]),
        266 => fs::symlinkat(kernel, a[0], a[1], a[2]),
        267 => fs::readlinkat(kernel, a[0], a[1], a[2], a[3]),
        268 => fs::fchmodat(kernel, a[0], a[1], a[2], 0),
        269 => fs::faccessat2(kernel, a[0], a[1], a[2], 0),
        280 => fs::utimensat(kernel, a[0], a[1], a[2], a[3]),
        316 => fs::renameat2(kernel, a[0], a[1], a[2], a[3], a[4]),
        332 => fs::statx(kernel, a[0], a[1], a[2], a[3], a[4]),
        439 => fs::faccessat2(kernel, a[0], a[1], a[2], a[3]),
        452 => fs::fchmodat(kernel, a[0], a[1], a[2], a[3]),

        // Memory, processes, signals, time.
        9 => memory::mmap(kernel, a[0], a[1], a[2], a[3], a[4], a[5]),
        10 => memory::mprotect(kernel, a[0], a[1], a[2]),
        11 => memory::munmap(kernel, a[0], a[1]),
        12 => memory::brk(kernel, a[0]),
        13 => signal::rt_sigaction(kernel, a[0], a[1], a[2], a[3]),
        14 => signal::rt_sigprocmask(kernel, a[0], a[1], a[2], a[3]),
        24 => Ok(0), // sched_yield: there is nothing else to run.
        25 => memory::mremap(kernel, a[0], a[1], a[2], a[3], a[4]),
        28 => memory::madvise(kernel, a[0], a[1], a[2]),
        35 => time::nanosleep(kernel, a[0], a[1]),
        39 => Ok(crate::process::PID),
        60 | 231 => process::exit(a[0]),
        63 => process::uname(kernel, a[0]),
        96 => time::gettimeofday(kernel, a[0], a[1]),
        97 => process::getrlimit(kernel, a[0], a[1]),
        99 => process::sysinfo(kernel, a[0]),
        102 | 107 => Ok(crate::process::UID),
        104 | 108 => Ok(crate::process::GID),
        110 => Ok(0), // getppid: the sandbox has no parent the program can see.
        118 | 120 => process::getresid(kernel, a[0], a[1], a[2], number == 118),
        131 => signal::sigaltstack(kernel, a[0], a[1]),
        62 => signal::kill(kernel, a[0], a[1]),
        200 => signal::tkill(kernel, a[0], a[1]),
        234 => signal::tgkill(kernel, a[0], a[1], a[2]),
        158 => process::arch_prctl(kernel, a[0], a[1]),
        186 => Ok(crate::process::PID), // gettid: the only thread is the main one.
        201 => time::time(kernel, a[0]),
        202 => time::futex(kernel, a[0], a[1], a[2], a[3]),
        204 => process::sched_getaffinity(kernel, a[0], a[1], a[2]),
        218 => process::set_tid_address(kernel, a[0]),
        228 => time::clock_gettime(kernel, a[0], a[1]),
        229 => time::clock_getres(kernel, a[0], a[1]),
        230 => time::clock_nanosleep(kernel, a[0], a[1], a[2], a[3]),
        273 => process::set_robust_list(kernel, a[0], a[1]),
        302 => process::prlimit64(kernel, a[0], a[1], a[2], a[3]),
        309 => process::getcpu(kernel, a[0], a[1]),
        105 | 106 => process::set_id(a[0], number == 105),
        117 | 119 => process::set_res_id([a[0], a[1], a[2]], number == 117),
        115 => process::getgroups(a[0]),
        116 => Err(Errno::EPERM), // setgroups: an unprivileged process may not.
        157 => process::prctl(kernel, a[0], a[1]),
        _ => unsupported(kernel, number),
    }
}

/// `ENOSYS`, logged the first time each number is seen.
fn unsupported(kernel: &mut Kernel, number: u64) -> SysResult {
    let bit = usize::try_from(number).ok().filter(|&n| n < 512);
    let first_time = match bit {
        Some(n) => {
            let word = &mut kernel.unsupported_logged[n / 64];
            let first = *word & (1 << (n % 64)) == 0;
            *word |= 1 << (n % 64);
            first
        }
        None => true,
    };
    if first_time {
        match syscall_name(number) {
            Some(name) => log::info!("unsupported syscall {name} ({number}): ENOSYS"),
            None => log::info!("unknown syscall number {number}: ENOSYS"),
        }
    }
    Err(Errno::ENOSYS)
}

/// The legacy vsyscall page: a call to 0xffffffffff600000 (+0x400, +0x800) faults on the
/// instruction fetch; answer it as the syscall it stands for and return to the caller.
pub fn emulate_vsyscall(kernel: &mut Kernel, frame: &mut TrapFrame) -> bool {
    let number = match frame.rip & 0xfff {
        0x000 => 96,  // gettimeofday
        0x400 => 201, // time
        0x800 => 309, // getcpu
        _ => return false,
    };
    let Ok(return_address) = kernel.space.read_user::<u64>(&mut kernel.frames, frame.rsp) else {
        return false;
    };
    count(number);
    let a = Args::from_frame(frame).0;
    let result = match number {
        96 => time::gettimeofday(kernel, a[0], a[1]),
        201 => time::time(kernel, a[0]),
        _ => process::getcpu(kernel, a[0], a[1]),
    };
    frame.rax = match result {
        Ok(value) => value,
        Err(Errno(errno)) => (-i64::from(errno)) as u64,
    };
    frame.rip = return_address;
    frame.rsp += 8;
    true
}
