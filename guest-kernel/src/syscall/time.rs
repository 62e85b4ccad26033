//! Time syscalls. Programs normally read the clock through the vDSO without a syscall; these
//! answer the same from the same parameters (`time::Clock`). Sleeps halt the vCPU: the VMM
//! sleeps on the host until the deadline.

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::errno::{Errno, SysResult};
use crate::process::Kernel;
use crate::time::NSEC_PER_SEC;

const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
const CLOCK_MONOTONIC_RAW: u64 = 4;
const CLOCK_REALTIME_COARSE: u64 = 5;
const CLOCK_MONOTONIC_COARSE: u64 = 6;
const CLOCK_BOOTTIME: u64 = 7;
const CLOCK_REALTIME_ALARM: u64 = 8;
const CLOCK_BOOTTIME_ALARM: u64 = 9;
const CLOCK_TAI: u64 = 11;
const TIMER_ABSTIME: u64 = 1;
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_CMD_MASK: u64 = 0x7f;

#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
struct Timespec {
    seconds: i64,
    nanoseconds: i64,
}

impl Timespec {
    fn from_ns(ns: u64) -> Self {
        Self { seconds: (ns / NSEC_PER_SEC) as i64, nanoseconds: (ns % NSEC_PER_SEC) as i64 }
    }

    /// Nanoseconds, or EINVAL for a negative or unnormalised value.
    fn to_ns(self) -> Result<u64, Errno> {
        if self.seconds < 0 || !(0..NSEC_PER_SEC as i64).contains(&self.nanoseconds) {
            return Err(Errno::EINVAL);
        }
        Ok((self.seconds as u64).saturating_mul(NSEC_PER_SEC).saturating_add(self.nanoseconds as u64))
    }
}

/// A program's `timespec` at `address` in nanoseconds (EINVAL if negative or unnormalised).
pub fn timespec_ns(kernel: &mut Kernel, address: u64) -> Result<u64, Errno> {
    let value: Timespec = kernel.space.read_user(&mut kernel.frames, address)?;
    value.to_ns()
}

/// The clock's reading in ns, or EINVAL for an unknown clock.
fn read_clock(kernel: &Kernel, clock: u64) -> Result<u64, Errno> {
    match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => {
            Ok(kernel.clock.realtime_ns())
        }
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_MONOTONIC_COARSE | CLOCK_BOOTTIME
        | CLOCK_BOOTTIME_ALARM => Ok(kernel.clock.monotonic_ns()),
        // The program is the only thing running: its CPU time is the time since boot.
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => Ok(kernel.clock.uptime_ns()),
        _ => Err(Errno::EINVAL),
    }
}

pub fn clock_gettime(kernel: &mut Kernel, clock: u64, out: u64) -> SysResult {
    let now = read_clock(kernel, clock)?;
    kernel.space.write_user(&mut kernel.frames, out, &Timespec::from_ns(now))?;
    Ok(0)
}

pub fn clock_getres(kernel: &mut Kernel, clock: u64, out: u64) -> SysResult {
    read_clock(kernel, clock)?;
    if out != 0 {
        let coarse = matches!(clock, CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE);
        let resolution = Timespec { seconds: 0, nanoseconds: if coarse { 4_000_000 } else { 1 } };
        kernel.space.write_user(&mut kernel.frames, out, &resolution)?;
    }
    Ok(0)
}

pub fn gettimeofday(kernel: &mut Kernel, tv: u64, tz: u64) -> SysResult {
    let now = kernel.clock.realtime_ns();
    if tv != 0 {
        let timeval = [(now / NSEC_PER_SEC) as i64, ((now % NSEC_PER_SEC) / 1000) as i64];
        kernel.space.write_user(&mut kernel.frames, tv, &timeval)?;
    }
    if tz != 0 {
        kernel.space.write_user(&mut kernel.frames, tz, &[0u32; 2])?;
    }
    Ok(0)
}

pub fn time(kernel: &mut Kernel, tloc: u64) -> SysResult {
    let seconds = kernel.clock.realtime_ns() / NSEC_PER_SEC;
    if tloc != 0 {
        kernel.space.write_user(&mut kernel.frames, tloc, &seconds)?;
    }
    Ok(seconds)
}

pub fn nanosleep(kernel: &mut Kernel, request: u64, _remaining: u64) -> SysResult {
    let duration: Timespec = kernel.space.read_user(&mut kernel.frames, request)?;
    let deadline = kernel.clock.monotonic_ns().saturating_add(duration.to_ns()?);
    kernel.clock.sleep_until(deadline);
    Ok(0)
}

pub fn clock_nanosleep(kernel: &mut Kernel, clock: u64, flags: u64, request: u64, _rem: u64) -> SysResult {
    let duration: Timespec = kernel.space.read_user(&mut kernel.frames, request)?;
    let ns = duration.to_ns()?;
    let now_on_clock = match clock {
        CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_TAI => read_clock(kernel, clock)?,
        CLOCK_PROCESS_CPUTIME_ID => return Err(Errno(crate::errno::EOPNOTSUPP)),
        _ => return Err(Errno::EINVAL),
    };
    let wait = if flags & TIMER_ABSTIME != 0 { ns.saturating_sub(now_on_clock) } else { ns };
    let deadline = kernel.clock.monotonic_ns().saturating_add(wait);
    kernel.clock.sleep_until(deadline);
    Ok(0)
}

/// One thread, so nothing can wake a waiter: a wait whose value matches sleeps for its
/// timeout (or until the run's time limit); a wake wakes nobody.
pub fn futex(kernel: &mut Kernel, address: u64, operation: u64, value: u64, timeout: u64) -> SysResult {
    match operation & FUTEX_CMD_MASK {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let current: u32 = kernel.space.read_user(&mut kernel.frames, address)?;
            if current != value as u32 {
                return Err(Errno::EAGAIN);
            }
            let deadline = if timeout == 0 {
                u64::MAX
            } else {
                let limit: Timespec = kernel.space.read_user(&mut kernel.frames, timeout)?;
                let ns = limit.to_ns()?;
                if operation & FUTEX_CMD_MASK == FUTEX_WAIT_BITSET {
                    ns
                } else {
                    kernel.clock.monotonic_ns().saturating_add(ns)
                }
            };
            kernel.clock.sleep_until(deadline);
            Err(Errno::ETIMEDOUT)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => Ok(0),
        _ => Err(Errno::ENOSYS),
    }
}
