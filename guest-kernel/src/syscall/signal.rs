//! Signal syscalls. Dispositions, masks and the alternate stack are recorded and reported
//! back as Linux would; handlers are not run yet (see `process::SignalState`).

use crate::errno::{Errno, SysResult};
use crate::process::{Kernel, SigAction, SignalStack};

const SIGKILL: u64 = 9;
const SIGSTOP: u64 = 19;
const SIG_BLOCK: u64 = 0;
const SIG_UNBLOCK: u64 = 1;
const SIG_SETMASK: u64 = 2;
/// Neither SIGKILL nor SIGSTOP can be blocked.
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const MINSIGSTKSZ: u64 = 2048;

pub fn rt_sigaction(kernel: &mut Kernel, signal: u64, new: u64, old: u64, size: u64) -> SysResult {
    if size != 8 || signal == 0 || signal > 64 {
        return Err(Errno::EINVAL);
    }
    let index = (signal - 1) as usize;
    let previous = kernel.signals.actions[index];
    if new != 0 {
        if signal == SIGKILL || signal == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let action: SigAction = kernel.space.read_user(&mut kernel.frames, new)?;
        kernel.signals.actions[index] = action;
    }
    if old != 0 {
        kernel.space.write_user(&mut kernel.frames, old, &previous)?;
    }
    Ok(0)
}

pub fn rt_sigprocmask(kernel: &mut Kernel, how: u64, new: u64, old: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let previous = kernel.signals.blocked;
    if new != 0 {
        let set: u64 = kernel.space.read_user(&mut kernel.frames, new)?;
        kernel.signals.blocked = match how {
            SIG_BLOCK => previous | set,
            SIG_UNBLOCK => previous & !set,
            SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        } & !UNBLOCKABLE;
    }
    if old != 0 {
        kernel.space.write_user(&mut kernel.frames, old, &previous)?;
    }
    Ok(0)
}

pub fn sigaltstack(kernel: &mut Kernel, new: u64, old: u64) -> SysResult {
    let previous = kernel.signals.alternate_stack;
    if new != 0 {
        let stack: SignalStack = kernel.space.read_user(&mut kernel.frames, new)?;
        if stack.flags & !(SS_DISABLE | (1 << 31)) != 0 {
            return Err(Errno::EINVAL);
        }
        if stack.flags & SS_DISABLE == 0 && stack.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
        kernel.signals.alternate_stack = stack;
    }
    if old != 0 {
        let mut report = previous;
        if report.flags & SS_DISABLE == 0 {
            report.flags &= !SS_ONSTACK;
        }
        kernel.space.write_user(&mut kernel.frames, old, &report)?;
    }
    Ok(0)
}
