//! The short path for `read`, `write`, `pread64` and `pwrite64` on a host file or stdio
//! stream: the request is built straight from the registers and the fd's [`Shortcut`], with
//! no walk of the program's mappings, no reference counting and no piece list. On a PVM host
//! every ring-0 instruction is interpreted, so this is most of what a transfer costs: the full
//! path runs several times as many instructions for the same request.
//!
//! It is sound because the host checks what the skipped walk would have: the buffer is one
//! user-virtual entry, and the host's page walk demands present, user and (for a read, which
//! the host writes into) writable pages. A page not mapped yet is mapped as the program's own
//! access would map it (or is `EFAULT`) and the request sent again, as on the full path.
//! Anything unusual (a transfer longer than the full path's chunk, too), and every failed
//! request, goes to the full path, which sends the same request again and gives Linux's
//! answer for each case (`EFAULT`, `EBADF`, `EPIPE` with its `SIGPIPE`): a request that
//! failed moved no data.

use shim_abi::{Opcode, RESULT_PAGE_NOT_PRESENT, SG_HOST_WRITES, SG_USER_VIRTUAL};

use super::io::{self, MAX_CHUNK, MAX_RW_COUNT};
use crate::errno::SysResult;
use crate::fs::tmpfs::NULL_DEVICE_INO;
use crate::process::{Kernel, Shortcut};
use crate::ring;

const READ: u64 = 0;
const WRITE: u64 = 1;
const PREAD64: u64 = 17;
const PWRITE64: u64 = 18;

/// The result of syscall `number` with `args` if the short path could answer it.
pub fn try_transfer(kernel: &mut Kernel, number: u64, args: &[u64; 6]) -> Option<SysResult> {
    let (opcode, host_writes, offset) = match number {
        READ => (Opcode::Read, true, 0),
        WRITE => (Opcode::Write, false, 0),
        PREAD64 => (Opcode::Pread, true, args[3]),
        PWRITE64 => (Opcode::Pwrite, false, args[3]),
        _ => return None,
    };
    let (buffer, count) = (args[1], args[2]);
    let in_user_half = io::check_user_range(buffer, count).is_ok();
    let (handle, allowed) = match kernel.files.shortcut(args[0]) {
        Shortcut::Host { handle, readable, writable } => {
            (handle, if host_writes { readable } else { writable })
        }
        Shortcut::NullDevice { readable, writable } if in_user_half && (offset as i64) >= 0 => {
            return null_device(kernel, host_writes, readable, writable, count);
        }
        _ => return None,
    };
    if !allowed || count == 0 || count > MAX_CHUNK || !in_user_half || (offset as i64) < 0 {
        return None;
    }

    let marks = if host_writes { SG_USER_VIRTUAL | SG_HOST_WRITES } else { SG_USER_VIRTUAL };
    let request = [u64::from(handle), offset, 0, 0];
    let result = ring::with_ring(|ring| {
        let mut sg = ring.sg_list(1);
        sg.push(marks | buffer, count);
        ring.call(opcode, request, Some(&sg))
    });
    match result {
        RESULT_PAGE_NOT_PRESENT => {
            let pieces = [(marks | buffer, count)];
            io::resend_after_fault(kernel, opcode, request, &pieces, host_writes).ok().map(Ok)
        }
        done if done >= 0 => Some(Ok(done as u64)),
        _failed => None,
    }
}

/// A read from `/dev/null` (0) or a write to it (all of it, up to Linux's `MAX_RW_COUNT`),
/// with the buffer's range already checked, as Linux checks it and nothing more.
fn null_device(
    kernel: &Kernel,
    read: bool,
    readable: bool,
    writable: bool,
    count: u64,
) -> Option<SysResult> {
    // The shortcut names the inode by number; make sure it still is the device.
    let allowed = if read { readable } else { writable };
    if !allowed || !kernel.vfs.tmpfs.is_null_device(NULL_DEVICE_INO) {
        return None;
    }
    Some(Ok(if read { 0 } else { count.min(MAX_RW_COUNT) }))
}
