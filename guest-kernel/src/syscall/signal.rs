//! Signal syscalls. Dispositions, masks and the alternate stack are recorded and reported
//! back as Linux would; handlers are not run yet (see `process::SignalState`).

use shim_abi::ExitKind;

use crate::errno::{Errno, SysResult};
use crate::process::{end_program, Kernel, SigAction, SignalStack, PID};

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
        // Ignoring a signal discards it if pending.
        if action.handler == SIG_IGN {
            kernel.signals.pending &= !(1 << index);
        }
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
    take_unblocked(kernel);
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

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
/// Signals whose default action is to be ignored: SIGCHLD, SIGCONT, SIGURG, SIGWINCH.
const IGNORED_BY_DEFAULT: u64 =
    (1 << (17 - 1)) | (1 << (18 - 1)) | (1 << (23 - 1)) | (1 << (28 - 1));
/// Signals whose default action is to stop: SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU.
const STOPPING: u64 = (1 << (19 - 1)) | (1 << (20 - 1)) | (1 << (21 - 1)) | (1 << (22 - 1));

/// `kill(pid, signal)`: the program is the only process, PID 1, alone in its process group
/// (0 and -PID name it too). -1 means every process but the caller: there is none.
///
/// Signals are taken as a normal process takes them, not with the protection Linux gives the
/// init process of a PID namespace, so `abort` ends the program with SIGABRT as it would
/// outside a container.
pub fn kill(kernel: &mut Kernel, pid: u64, signal: u64) -> SysResult {
    if signal > 64 {
        return Err(Errno::EINVAL);
    }
    match pid as i64 as i32 {
        -1 => Err(Errno::ESRCH),
        0 => send_to_self(kernel, signal),
        pid if pid.unsigned_abs() == PID as u32 => send_to_self(kernel, signal),
        _ => Err(Errno::ESRCH),
    }
}

/// `tkill(tid, signal)`: the only thread is the main one (TID = PID).
pub fn tkill(kernel: &mut Kernel, tid: u64, signal: u64) -> SysResult {
    if tid as i64 <= 0 {
        return Err(Errno::EINVAL);
    }
    if tid != PID {
        return Err(Errno::ESRCH);
    }
    send_to_self(kernel, signal)
}

/// `tgkill(tgid, tid, signal)`.
pub fn tgkill(kernel: &mut Kernel, tgid: u64, tid: u64, signal: u64) -> SysResult {
    if tgid as i64 <= 0 {
        return Err(Errno::EINVAL);
    }
    if tgid != PID {
        return Err(Errno::ESRCH);
    }
    tkill(kernel, tid, signal)
}

/// A signal the program sends itself (`raise`, `abort`): taken at once, or kept pending
/// while the program blocks it (as musl's `raise` does around its `tkill`). Signal 0 only
/// checks that the target exists.
fn send_to_self(kernel: &mut Kernel, signal: u64) -> SysResult {
    if signal > 64 {
        return Err(Errno::EINVAL);
    }
    if signal == 0 {
        return Ok(0);
    }
    let bit = 1u64 << (signal - 1);
    if signal != SIGKILL && kernel.signals.blocked & bit != 0 {
        kernel.signals.pending |= bit;
        return Ok(0);
    }
    take(kernel, signal);
    Ok(0)
}

/// Takes the pending signals the mask no longer blocks, lowest first. (A loop over the bits,
/// not `trailing_zeros`, which compiles to `tzcnt`: the fatal-instruction scan refuses it.)
fn take_unblocked(kernel: &mut Kernel) {
    for signal in 1..=64 {
        let bit = 1u64 << (signal - 1);
        if kernel.signals.pending & !kernel.signals.blocked & bit != 0 {
            kernel.signals.pending &= !bit;
            take(kernel, signal);
        }
    }
}

/// The action Linux takes for `signal`, delivered now.
///
/// Handlers are not run yet: a signal the program catches ends it as the default action
/// would (so `abort` still ends with SIGABRT), and a stop signal is ignored (nothing could
/// continue the program).
fn take(kernel: &mut Kernel, signal: u64) {
    let bit = 1u64 << (signal - 1);
    let handler = kernel.signals.actions[(signal - 1) as usize].handler;
    if signal != SIGKILL {
        // A caught signal acts as its default would, whatever the handler: for these, nothing.
        let default_ignores = IGNORED_BY_DEFAULT & bit != 0;
        if handler == SIG_IGN || default_ignores || STOPPING & bit != 0 {
            return;
        }
    }
    end_program(ExitKind::Signal, signal, 0, 0)
}
