//! Process syscalls: identity, limits, `uname`, `sysinfo`, the thread pointer, and exit.

use shim_abi::ExitKind;
use zerocopy::{Immutable, IntoBytes};

use crate::arch;
use crate::errno::{Errno, SysResult};
use crate::process::{end_program, Kernel, GID, PID, UID};
use crate::time::NSEC_PER_SEC;

pub fn exit(status: u64) -> SysResult {
    end_program(ExitKind::Status, status & 0xff, 0, 0)
}

/// `struct utsname`: six fields of 65 bytes.
const UTS_FIELD: usize = 65;

pub fn uname(kernel: &mut Kernel, buf: u64) -> SysResult {
    let fields: [&[u8]; 6] = [
        b"Linux",
        b"litebox",
        b"6.1.0-litebox",
        b"#1 SMP PREEMPT_DYNAMIC",
        b"x86_64",
        b"(none)",
    ];
    let mut utsname = [0u8; UTS_FIELD * 6];
    for (index, field) in fields.iter().enumerate() {
        utsname[index * UTS_FIELD..index * UTS_FIELD + field.len()].copy_from_slice(field);
    }
    kernel.space.copy_to_user(&mut kernel.frames, buf, &utsname)?;
    Ok(0)
}

/// Linux `struct sysinfo`.
#[repr(C)]
#[derive(Default, IntoBytes, Immutable)]
struct SysInfo {
    uptime: i64,
    loads: [u64; 3],
    total_ram: u64,
    free_ram: u64,
    shared_ram: u64,
    buffer_ram: u64,
    total_swap: u64,
    free_swap: u64,
    procs: u16,
    _pad: [u16; 3],
    total_high: u64,
    free_high: u64,
    mem_unit: u32,
    _reserved: [u8; 4],
}

pub fn sysinfo(kernel: &mut Kernel, buf: u64) -> SysResult {
    let info = SysInfo {
        uptime: (kernel.clock.uptime_ns() / NSEC_PER_SEC) as i64,
        total_ram: kernel.memory_size,
        free_ram: kernel.frames.available() * shim_abi::PAGE_SIZE,
        procs: 1,
        mem_unit: 1,
        ..SysInfo::default()
    };
    kernel.space.write_user(&mut kernel.frames, buf, &info)?;
    Ok(0)
}

pub fn getrlimit(kernel: &mut Kernel, resource: u64, old: u64) -> SysResult {
    let (soft, hard) = *kernel.rlimits.get(resource as usize).ok_or(Errno::EINVAL)?;
    kernel.space.write_user(&mut kernel.frames, old, &[soft, hard])?;
    Ok(0)
}

pub fn prlimit64(kernel: &mut Kernel, pid: u64, resource: u64, new: u64, old: u64) -> SysResult {
    if pid != 0 && pid != PID {
        return Err(Errno::ESRCH);
    }
    let index = usize::try_from(resource).ok().filter(|&r| r < kernel.rlimits.len());
    let index = index.ok_or(Errno::EINVAL)?;
    let current = kernel.rlimits[index];
    if new != 0 {
        let [soft, hard]: [u64; 2] = kernel.space.read_user(&mut kernel.frames, new)?;
        if soft > hard {
            return Err(Errno::EINVAL);
        }
        if hard > current.1 {
            return Err(Errno::EPERM);
        }
        // The limits are recorded for getrlimit; only RLIMIT_NOFILE is enforced so far.
        kernel.rlimits[index] = (soft, hard);
    }
    if old != 0 {
        kernel.space.write_user(&mut kernel.frames, old, &[current.0, current.1])?;
    }
    Ok(0)
}

pub fn getresid(kernel: &mut Kernel, real: u64, effective: u64, saved: u64, uid: bool) -> SysResult {
    let id = if uid { UID as u32 } else { GID as u32 };
    for address in [real, effective, saved] {
        kernel.space.write_user(&mut kernel.frames, address, &id)?;
    }
    Ok(0)
}

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;
const MSR_GS_BASE: u32 = 0xc000_0101;

pub fn arch_prctl(kernel: &mut Kernel, code: u64, addr: u64) -> SysResult {
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            // Linux refuses bases outside the user half.
            if addr >= shim_abi::USER_END {
                return Err(Errno::EPERM);
            }
            let msr = if code == ARCH_SET_FS { arch::MSR_FS_BASE } else { MSR_GS_BASE };
            arch::write_msr(msr, addr);
            Ok(0)
        }
        ARCH_GET_FS | ARCH_GET_GS => {
            let msr = if code == ARCH_GET_FS { arch::MSR_FS_BASE } else { MSR_GS_BASE };
            let value = arch::read_msr(msr);
            kernel.space.write_user(&mut kernel.frames, addr, &value)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn set_tid_address(kernel: &mut Kernel, address: u64) -> SysResult {
    kernel.clear_child_tid = address;
    Ok(PID)
}

pub fn set_robust_list(kernel: &mut Kernel, head: u64, len: u64) -> SysResult {
    if len != 24 {
        return Err(Errno::EINVAL);
    }
    kernel.robust_list = head;
    Ok(0)
}

pub fn sched_getaffinity(kernel: &mut Kernel, pid: u64, len: u64, mask: u64) -> SysResult {
    if pid != 0 && pid != PID {
        return Err(Errno::ESRCH);
    }
    if len < 8 || len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    // One vCPU: CPU 0.
    kernel.space.write_user(&mut kernel.frames, mask, &1u64)?;
    Ok(8)
}

pub fn getcpu(kernel: &mut Kernel, cpu: u64, node: u64) -> SysResult {
    for address in [cpu, node] {
        if address != 0 {
            kernel.space.write_user(&mut kernel.frames, address, &0u32)?;
        }
    }
    Ok(0)
}

/// `setuid`/`setgid`: the program is an unprivileged user; it may only "change" to itself.
pub fn set_id(id: u64, uid: bool) -> SysResult {
    let own = if uid { UID } else { GID };
    if id as u32 == own as u32 {
        Ok(0)
    } else {
        Err(Errno::EPERM)
    }
}

/// `setresuid`/`setresgid`: each id is -1 (unchanged) or the program's own.
pub fn set_res_id(ids: [u64; 3], uid: bool) -> SysResult {
    let own = if uid { UID } else { GID } as u32;
    if ids.iter().all(|&id| id as u32 == u32::MAX || id as u32 == own) {
        Ok(0)
    } else {
        Err(Errno::EPERM)
    }
}

/// `getgroups`: no supplementary groups.
pub fn getgroups(size: u64) -> SysResult {
    if size as i32 >= 0 {
        Ok(0)
    } else {
        Err(Errno::EINVAL)
    }
}

const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_GET_NO_NEW_PRIVS: u64 = 39;

/// The `prctl` options programs use at start-up; others are `EINVAL` as for unknown options.
pub fn prctl(kernel: &mut Kernel, option: u64, arg: u64) -> SysResult {
    match option {
        PR_SET_PDEATHSIG | PR_SET_DUMPABLE => Ok(0),
        PR_GET_PDEATHSIG => {
            kernel.space.write_user(&mut kernel.frames, arg, &0u32)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_NAME => {
            let mut name = [0u8; 16];
            kernel.space.copy_from_user(&mut kernel.frames, arg, &mut name[..15])?;
            kernel.thread_name = name;
            Ok(0)
        }
        PR_GET_NAME => {
            let name = kernel.thread_name;
            kernel.space.copy_to_user(&mut kernel.frames, arg, &name)?;
            Ok(0)
        }
        // Already true: nothing in this sandbox grants privileges.
        PR_SET_NO_NEW_PRIVS if arg == 1 => Ok(0),
        PR_GET_NO_NEW_PRIVS => Ok(1),
        _ => Err(Errno::EINVAL),
    }
}
