//! The vDSO that litebox-vmm's guest kernel maps into the program: `linux-vdso.so.1`.
//!
//! It answers the time calls of a static musl or glibc program in ring 3, with no trap: the
//! guest kernel keeps a [`VvarPage`] (TSC base, fixed-point multiplier, clock bases) mapped
//! read-only exactly one page below this object's ELF header, and the functions here read it
//! with the sequence protocol and the TSC. Like Linux's x86-64 vDSO it exports
//! `__vdso_clock_gettime`, `__vdso_gettimeofday`, `__vdso_time`, `__vdso_getcpu` and
//! `__vdso_clock_getres`, each with a weak alias under the libc name, all in version node
//! `LINUX_2.6` (see `vdso.ver`). Clocks it does not model fall back to the real `syscall`.
//!
//! The crate is a `staticlib` for `x86_64-unknown-none` built position independent;
//! `vmm/build/vdso.rs` links it with `vdso.ld` into a shared object with no dynamic
//! relocations, which the guest kernel maps at any page-aligned address without relocating it.
//! The vvar address is therefore computed at run time from the linker-defined hidden
//! `__ehdr_start`, referenced PC-relatively.

#![no_std]

use core::arch::{asm, global_asm};
use core::ffi::{c_int, c_long, c_uint, c_void};
use core::ptr::{addr_of, read_volatile};
use core::sync::atomic::{compiler_fence, Ordering};

use shim_abi::errno::EFAULT;
use shim_abi::{VvarPage, PAGE_SIZE};

const CLOCK_REALTIME: c_int = 0;
const CLOCK_MONOTONIC: c_int = 1;
const CLOCK_MONOTONIC_RAW: c_int = 4;
const CLOCK_REALTIME_COARSE: c_int = 5;
const CLOCK_MONOTONIC_COARSE: c_int = 6;
const CLOCK_BOOTTIME: c_int = 7;

const SYS_CLOCK_GETTIME: c_long = 228;
const SYS_CLOCK_GETRES: c_long = 229;

const NSEC_PER_SEC: u64 = 1_000_000_000;
/// Resolution reported for the clocks read from the TSC.
const HIGH_RES_NS: c_long = 1;
/// Resolution reported for the `_COARSE` clocks (a 250 Hz tick, as Linux reports).
const COARSE_RES_NS: c_long = 4_000_000;

/// Linux's `struct timespec` (x86-64).
#[repr(C)]
pub struct Timespec {
    pub tv_sec: c_long,
    pub tv_nsec: c_long,
}

/// Linux's `struct timeval` (x86-64).
#[repr(C)]
pub struct Timeval {
    pub tv_sec: c_long,
    pub tv_usec: c_long,
}

/// Linux's `struct timezone`.
#[repr(C)]
pub struct Timezone {
    pub tz_minuteswest: c_int,
    pub tz_dsttime: c_int,
}

/// Which base of the vvar page a clock counts from.
#[derive(Clone, Copy)]
enum Base {
    Realtime,
    Monotonic,
}

/// The clocks answered from the vvar page: the base they use and whether they are coarse.
fn clock_kind(clock: c_int) -> Option<(Base, bool)> {
    match clock {
        CLOCK_REALTIME => Some((Base::Realtime, false)),
        CLOCK_REALTIME_COARSE => Some((Base::Realtime, true)),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_BOOTTIME => Some((Base::Monotonic, false)),
        CLOCK_MONOTONIC_COARSE => Some((Base::Monotonic, true)),
        _ => None,
    }
}

/// The vvar page: one page below this object's ELF header, wherever it is mapped.
fn vvar() -> *const VvarPage {
    let page: *const VvarPage;
    // SAFETY: `lea` only computes an address, it touches no memory, stack or flags.
    // `__ehdr_start` is defined (hidden) by the linker at the ELF header, so this is a plain
    // PC-relative reference that the linker resolves and that needs no load-time relocation.
    unsafe {
        asm!(
            "lea {page}, [rip + __ehdr_start - {offset}]",
            page = out(reg) page,
            offset = const PAGE_SIZE,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    page
}

/// The TSC, read after every earlier load has completed (like Linux's `rdtsc_ordered`).
///
/// The asm is deliberately not `nomem`: the compiler must then treat it as a memory access
/// and keep it between the vvar reads around it, and `lfence` keeps the CPU from reading the
/// TSC before those loads.
fn rdtsc_ordered() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: `lfence` and `rdtsc` are unprivileged (CR4.TSD is clear in the guest) and only
    // write EDX:EAX; they write no memory and touch no stack.
    unsafe {
        asm!(
            "lfence",
            "rdtsc",
            out("eax") lo,
            out("edx") hi,
            options(nostack, preserves_flags),
        );
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Nanoseconds on `base` now, read from the vvar page with the sequence protocol.
fn now_ns(base: Base) -> u64 {
    let page = vvar();
    loop {
        // SAFETY: the guest kernel maps the vvar page readable at `page` for as long as this
        // object is mapped, and `VvarPage` is `repr(C)` with naturally aligned fields. The
        // kernel writes it concurrently, hence volatile reads checked by the sequence number.
        let (first, snapshot) = unsafe {
            let first = read_volatile(addr_of!((*page).sequence));
            compiler_fence(Ordering::Acquire);
            let snapshot = VvarPage {
                sequence: first,
                _reserved: 0,
                tsc_base: read_volatile(addr_of!((*page).tsc_base)),
                ns_per_tsc_mult: read_volatile(addr_of!((*page).ns_per_tsc_mult)),
                monotonic_base_ns: read_volatile(addr_of!((*page).monotonic_base_ns)),
                realtime_base_ns: read_volatile(addr_of!((*page).realtime_base_ns)),
            };
            (first, snapshot)
        };
        let tsc = rdtsc_ordered();
        compiler_fence(Ordering::Acquire);
        // SAFETY: as above.
        let last = unsafe { read_volatile(addr_of!((*page).sequence)) };
        if first & 1 == 0 && first == last {
            let base_ns = match base {
                Base::Realtime => snapshot.realtime_base_ns,
                Base::Monotonic => snapshot.monotonic_base_ns,
            };
            return base_ns.wrapping_add(snapshot.ns_since_base(tsc));
        }
        core::hint::spin_loop();
    }
}

/// `ns` split into whole seconds and the nanoseconds of the last one.
fn split_ns(ns: u64) -> (c_long, c_long) {
    // Neither conversion can fail (u64::MAX / 10^9 < 2^35); the fallbacks are never taken.
    let sec = c_long::try_from(ns / NSEC_PER_SEC).unwrap_or(c_long::MAX);
    let nsec = c_long::try_from(ns % NSEC_PER_SEC).unwrap_or(0);
    (sec, nsec)
}

/// The real system call with two arguments; returns the raw result (`-errno` on failure).
fn syscall2(nr: c_long, arg0: c_long, arg1: *mut Timespec) -> c_long {
    let ret: c_long;
    // SAFETY: `syscall` follows the Linux x86-64 convention: RAX, RDI, RSI in, RAX out, RCX
    // and R11 clobbered. The kernel validates the arguments; the only memory it may write is
    // what the caller passed in, which the asm's default memory clobber covers.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") arg0,
            in("rsi") arg1,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// The raw syscall fallback of `clock_gettime`/`clock_getres` (returns `-errno` on failure).
fn fallback(nr: c_long, clock: c_int, ts: *mut Timespec) -> c_int {
    // The kernel returns 0 or -errno, which always fit an int; the fallback is never taken.
    c_int::try_from(syscall2(nr, c_long::from(clock), ts)).unwrap_or(-EFAULT)
}

/// `clock_gettime(2)`: returns 0, or `-errno` as the system call would.
///
/// # Safety
///
/// `ts` must be NULL or valid for writing a `Timespec`.
#[no_mangle]
pub unsafe extern "C" fn __vdso_clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int {
    let Some((base, _)) = clock_kind(clock) else {
        return fallback(SYS_CLOCK_GETTIME, clock, ts);
    };
    if ts.is_null() {
        return -EFAULT;
    }
    let (sec, nsec) = split_ns(now_ns(base));
    // SAFETY: `ts` is non-null and, by the caller's contract, valid for writes.
    unsafe {
        (*ts).tv_sec = sec;
        (*ts).tv_nsec = nsec;
    }
    0
}

/// `gettimeofday(2)`: fills `tv` and a zeroed `tz` where non-NULL; returns 0.
///
/// # Safety
///
/// `tv` and `tz` must each be NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn __vdso_gettimeofday(tv: *mut Timeval, tz: *mut Timezone) -> c_int {
    if !tv.is_null() {
        let (sec, nsec) = split_ns(now_ns(Base::Realtime));
        // SAFETY: `tv` is non-null and, by the caller's contract, valid for writes.
        unsafe {
            (*tv).tv_sec = sec;
            (*tv).tv_usec = nsec / 1000;
        }
    }
    if !tz.is_null() {
        // SAFETY: `tz` is non-null and, by the caller's contract, valid for writes.
        unsafe {
            (*tz).tz_minuteswest = 0;
            (*tz).tz_dsttime = 0;
        }
    }
    0
}

/// `time(2)`: seconds since the epoch, also stored to `tloc` when it is non-NULL.
///
/// # Safety
///
/// `tloc` must be NULL or valid for writing a `c_long`.
#[no_mangle]
pub unsafe extern "C" fn __vdso_time(tloc: *mut c_long) -> c_long {
    let (sec, _) = split_ns(now_ns(Base::Realtime));
    if !tloc.is_null() {
        // SAFETY: `tloc` is non-null and, by the caller's contract, valid for writes.
        unsafe { *tloc = sec };
    }
    sec
}

/// `getcpu(2)`: the guest runs the program on CPU 0 of node 0; returns 0.
///
/// # Safety
///
/// `cpu` and `node` must each be NULL or valid for writing a `c_uint`.
#[no_mangle]
pub unsafe extern "C" fn __vdso_getcpu(
    cpu: *mut c_uint,
    node: *mut c_uint,
    _cache: *mut c_void,
) -> c_long {
    if !cpu.is_null() {
        // SAFETY: `cpu` is non-null and, by the caller's contract, valid for writes.
        unsafe { *cpu = 0 };
    }
    if !node.is_null() {
        // SAFETY: `node` is non-null and, by the caller's contract, valid for writes.
        unsafe { *node = 0 };
    }
    0
}

/// `clock_getres(2)`: 1 ns for the TSC clocks, 4 ms for the coarse ones, the system call for
/// the rest. A NULL `res` only validates the clock.
///
/// # Safety
///
/// `res` must be NULL or valid for writing a `Timespec`.
#[no_mangle]
pub unsafe extern "C" fn __vdso_clock_getres(clock: c_int, res: *mut Timespec) -> c_int {
    let Some((_, coarse)) = clock_kind(clock) else {
        return fallback(SYS_CLOCK_GETRES, clock, res);
    };
    if !res.is_null() {
        // SAFETY: `res` is non-null and, by the caller's contract, valid for writes.
        unsafe {
            (*res).tv_sec = 0;
            (*res).tv_nsec = if coarse { COARSE_RES_NS } else { HIGH_RES_NS };
        }
    }
    0
}

// The unversioned libc names, as weak aliases of the functions above (Linux exports both).
// The profile builds this crate as one codegen unit, so each alias and its target are defined
// in the same object.
global_asm!(
    ".weak clock_gettime",
    ".type clock_gettime, @function",
    ".set clock_gettime, __vdso_clock_gettime",
    ".weak gettimeofday",
    ".type gettimeofday, @function",
    ".set gettimeofday, __vdso_gettimeofday",
    ".weak time",
    ".type time, @function",
    ".set time, __vdso_time",
    ".weak getcpu",
    ".type getcpu, @function",
    ".set getcpu, __vdso_getcpu",
    ".weak clock_getres",
    ".type clock_getres, @function",
    ".set clock_getres, __vdso_clock_getres",
);

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // Nothing here can panic; should it ever, crash the program visibly (SIGILL).
    // SAFETY: `ud2` raises #UD and never returns; it touches no memory.
    unsafe { asm!("ud2", options(noreturn, nomem, nostack)) }
}
