//! Data syscalls on fds: read and write in all their forms, lseek, sendfile, pipes, close,
//! dup, fcntl, ioctl, poll, getrandom.
//!
//! Ring 0 never copies file data. A syscall first turns the program's buffer into
//! guest-physical pieces (faulting pages in as the program would), then one request moves the
//! bytes: the VMM reads or writes the host file, stdio stream or random source straight into
//! those pages, or copies between them and tmpfs or pipe frames (`Opcode::Copy`).

use alloc::sync::Arc;
use alloc::vec::Vec;

use shim_abi::{
    Opcode, PollFd, MAX_SG_PER_REQUEST, MAX_SPLICE_BYTES, PAGE_SIZE, SG_HOST_WRITES,
    SG_USER_VIRTUAL, SPLICE_AT_POSITION, TCGETS, TIOCGWINSZ, USER_END,
};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::errno::{Errno, SysResult};
use crate::fs::pipe::{Pipe, PIPE_CAPACITY};
use crate::fs::tmpfs::{Body, Device, Time};
use crate::mm::phys_to_virt;
use crate::mm::space::Access;
use crate::process::{Description, FdEntry, FileKind, Kernel, O_PATH};
use crate::syscall::piece_list::PieceList;
use crate::ring;

/// Most bytes one request moves for the program (what one read returns at most).
pub(super) const MAX_CHUNK: u64 = 4 << 20;
/// Most pieces one side of a request may have, leaving room for the other side of a copy.
const MAX_PIECES: usize = MAX_SG_PER_REQUEST as usize / 2 - 1;
/// Most iovecs a `readv`/`writev` takes (Linux's `UIO_MAXIOV`).
const UIO_MAXIOV: u64 = 1024;
/// Bytes `sendfile` moves per round (through `Kernel::bounce`): at most this, and at most a
/// sixteenth of guest memory. Each round costs two requests of fixed ring-0 work (about a
/// millisecond on PVM hosts), so rounds are large.
const BOUNCE_BYTES: u64 = 8 << 20;
/// The bounce when no contiguous run of frames is left: this many single frames.
const FALLBACK_BOUNCE_BYTES: u64 = 1 << 20;

pub const O_NONBLOCK: u32 = 0o4000;
pub const O_APPEND: u32 = 0o2000;
pub const O_CLOEXEC: u64 = 0o2000000;
const FD_CLOEXEC: u64 = 1;

/// The pieces of a buffer as the host will see them: the program's ranges as user virtual
/// addresses (`SG_USER_VIRTUAL`; the host walks the page tables, so ring 0 does no per-page
/// work), or the kernel's own frames as guest-physical ranges.
pub struct Pieces {
    pub list: PieceList,
    pub bytes: u64,
    /// The host writes into these pieces (a read from a file into them).
    pub host_writes: bool,
}

impl Pieces {
    pub fn new() -> Self {
        Self { list: PieceList::new(), bytes: 0, host_writes: false }
    }

    /// Kernel frames (GPAs).
    pub fn from_list(list: Vec<(u64, u64)>) -> Self {
        let bytes = list.iter().map(|p| p.1).sum();
        Self { list: PieceList::from_vec(list), bytes, host_writes: false }
    }

    /// Adds user range `[virt, virt + len)`, cut at `limit` bytes in total, as far as the
    /// program's mappings allow the access (`write`: the host will write into it). Returns
    /// false if they stop short; the callers then move what was gathered on a regular file
    /// and fail with `EFAULT` on pipes and terminals, as Linux does (a write that already
    /// moved data returns what it moved).
    pub fn gather(
        &mut self,
        kernel: &mut Kernel,
        virt: u64,
        len: u64,
        write: bool,
        limit: u64,
    ) -> bool {
        let wanted = len.min(limit - self.bytes);
        if wanted == 0 {
            return true;
        }
        if self.list.len() == MAX_PIECES {
            return false;
        }
        let covered = kernel.space.accessible_prefix(virt, wanted, write);
        if covered > 0 {
            let marks = if write { SG_USER_VIRTUAL | SG_HOST_WRITES } else { SG_USER_VIRTUAL };
            push_merged(&mut self.list, marks | virt, covered);
            self.bytes += covered;
        }
        self.host_writes |= write;
        covered == wanted
    }

    /// The first `bytes` bytes of these pieces.
    pub fn prefix(&self, bytes: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut left = bytes;
        for &(gpa, len) in self.list.iter() {
            if left == 0 {
                break;
            }
            let take = len.min(left);
            out.push((gpa, take));
            left -= take;
        }
        out
    }

    /// Sends one request over these pieces.
    pub fn call(&self, kernel: &mut Kernel, opcode: Opcode, args: [u64; 4]) -> SysResult {
        host_call(kernel, opcode, args, &self.list, self.host_writes)
    }
}

/// Sends one request whose SG list is `pieces` (`host_writes`: the host writes into them).
pub fn host_call(
    kernel: &mut Kernel,
    opcode: Opcode,
    args: [u64; 4],
    pieces: &[(u64, u64)],
    host_writes: bool,
) -> SysResult {
    send_mapping_missing(kernel, opcode, args, &[(pieces, host_writes)])
}

/// Sends again a request over `pieces` that completed with a page not present: maps that
/// page, then sends and maps as [`send_mapping_missing`] does.
pub fn resend_after_fault(
    kernel: &mut Kernel,
    opcode: Opcode,
    args: [u64; 4],
    pieces: &[(u64, u64)],
    host_writes: bool,
) -> SysResult {
    let groups = [(pieces, host_writes)];
    fault_in(kernel, &groups)?;
    send_mapping_missing(kernel, opcode, args, &groups)
}

/// Sends one request whose SG list is `groups`, in order and kept apart (a copy's sources,
/// then its targets); each group says whether the host writes into it. When the host finds a
/// user page not present yet, the page is mapped (as the program's own access would) and
/// the request sent again.
fn send_mapping_missing(
    kernel: &mut Kernel,
    opcode: Opcode,
    args: [u64; 4],
    groups: &[(&[(u64, u64)], bool)],
) -> SysResult {
    loop {
        let result = ring::with_ring(|ring| {
            let count: usize = groups.iter().map(|(pieces, _)| pieces.len()).sum();
            let mut sg = ring.sg_list(count.max(1) as u32);
            for (pieces, _) in groups {
                sg.end_group();
                for &(gpa, len) in *pieces {
                    sg.push(gpa, len);
                }
            }
            ring.call_checked(opcode, args, Some(&sg))
        });
        if result != Err(Errno::PAGE_NOT_PRESENT) {
            return result;
        }
        fault_in(kernel, groups)?;
    }
}

/// Maps the user page the host reported missing, with the access of the group holding it,
/// and the rest of its piece ahead of it (so a fresh buffer costs one retry, not one per
/// fault-around window). Each call maps at least that page or fails, so the retries in
/// [`send_mapping_missing`] end: a reported address outside the request's user pieces, or
/// one the guest already maps, is `EFAULT`.
fn fault_in(kernel: &mut Kernel, groups: &[(&[(u64, u64)], bool)]) -> Result<(), Errno> {
    let address = ring::fault_address();
    let (piece_end, write) = groups
        .iter()
        .flat_map(|&(pieces, write)| pieces.iter().map(move |&piece| (piece, write)))
        .filter(|((start, _), _)| start & SG_USER_VIRTUAL != 0)
        .map(|((start, len), write)| (start & !(SG_USER_VIRTUAL | SG_HOST_WRITES), len, write))
        // The host names the page of the first missing byte, which may begin before the piece.
        .find(|&(start, len, _)| {
            start & !(PAGE_SIZE - 1) <= address && address < start.saturating_add(len)
        })
        .map(|(start, len, write)| (start + len, write))
        .ok_or(Errno::EFAULT)?;
    if kernel.space.is_present(address) {
        return Err(Errno::EFAULT);
    }
    let access = Access { write, execute: false };
    kernel.space.handle_fault(&mut kernel.frames, address, access).map_err(|_| Errno::EFAULT)?;

    // Fault-around maps aligned windows: step through the windows after the first one.
    let mut next = (address & !(FAULT_AHEAD_STEP - 1)) + FAULT_AHEAD_STEP;
    while next < piece_end && next < address + FAULT_AHEAD_MAX {
        if !kernel.space.is_present(next) {
            let _ = kernel.space.handle_fault(&mut kernel.frames, next, access);
        }
        next += FAULT_AHEAD_STEP;
    }
    Ok(())
}

/// Fault-around covers 16 pages; faulting ahead steps by that much, up to 16 MiB.
const FAULT_AHEAD_STEP: u64 = 16 * PAGE_SIZE;
const FAULT_AHEAD_MAX: u64 = 16 << 20;

/// Copies the bytes of `from` into `to` (equal or longer) with `Opcode::Copy` requests.
pub fn copy_pieces(
    kernel: &mut Kernel,
    from: &[(u64, u64)],
    to: &[(u64, u64)],
) -> Result<u64, Errno> {
    let mut sources = PieceList::new();
    let mut targets = PieceList::new();
    let mut copied = 0;
    let (mut i, mut i_done, mut j, mut j_done) = (0, 0, 0, 0);
    while i < from.len() && j < to.len() {
        let n = (from[i].1 - i_done).min(to[j].1 - j_done);
        push_merged(&mut sources, from[i].0 + i_done, n);
        push_merged(&mut targets, to[j].0 + j_done, n);
        i_done += n;
        j_done += n;
        if i_done == from[i].1 {
            i += 1;
            i_done = 0;
        }
        if j_done == to[j].1 {
            j += 1;
            j_done = 0;
        }
        if sources.len() >= MAX_PIECES || targets.len() >= MAX_PIECES {
            copied += send_copy(kernel, &sources, &targets)?;
            sources.clear();
            targets.clear();
        }
    }
    if !sources.is_empty() {
        copied += send_copy(kernel, &sources, &targets)?;
    }
    Ok(copied)
}

fn push_merged(list: &mut PieceList, gpa: u64, len: u64) {
    match list.last_mut() {
        Some(last) if last.0 + last.1 == gpa => last.1 += len,
        _ => list.push((gpa, len)),
    }
}

fn send_copy(
    kernel: &mut Kernel,
    sources: &[(u64, u64)],
    targets: &[(u64, u64)],
) -> Result<u64, Errno> {
    let args = [sources.len() as u64, 0, 0, 0];
    send_mapping_missing(kernel, Opcode::Copy, args, &[(sources, false), (targets, true)])
}

/// Linux raises SIGPIPE on a write to a pipe with no reader, unless the program ignores it.
fn check_broken_pipe(kernel: &Kernel, result: SysResult) -> SysResult {
    const SIGPIPE: u64 = 13;
    const SIG_IGN: u64 = 1;
    if result == Err(Errno::EPIPE) && kernel.signals.actions[SIGPIPE as usize - 1].handler != SIG_IGN
    {
        crate::process::end_program(shim_abi::ExitKind::Signal, SIGPIPE, 0, 0);
    }
    result
}

fn now(kernel: &Kernel) -> Time {
    Time::from_ns(kernel.clock.realtime_ns())
}

// ---------------------------------------------------------------------------------------------
// Reading and writing an open file description, given guest-physical pieces.
// ---------------------------------------------------------------------------------------------

/// Reads into `pieces` at `offset` (or the file position). Returns bytes read.
pub fn read_description(
    kernel: &mut Kernel,
    description: &Description,
    pieces: &Pieces,
    offset: Option<u64>,
) -> SysResult {
    description.check_readable()?;
    match &description.kind {
        FileKind::HostStdio(host) => match offset {
            None => pieces.call(kernel, Opcode::Read, [u64::from(*host), 0, 0, 0]),
            Some(offset) => pieces.call(kernel, Opcode::Pread, [u64::from(*host), offset, 0, 0]),
        },
        FileKind::Host { directory: true, .. } => Err(Errno::EISDIR),
        FileKind::Host { handle, .. } => match offset {
            None => pieces.call(kernel, Opcode::Read, [*handle, 0, 0, 0]),
            Some(offset) => pieces.call(kernel, Opcode::Pread, [*handle, offset, 0, 0]),
        },
        FileKind::Tmpfs(ino) => {
            let ino = *ino;
            match &kernel.vfs.tmpfs.get(ino).body {
                Body::Dir { .. } | Body::FdDir => return Err(Errno::EISDIR),
                Body::Device(Device::Null) => return Ok(0),
                Body::Device(Device::Zero) => return pieces.call(kernel, Opcode::Zero, [0; 4]),
                Body::Device(Device::Random) => return pieces.call(kernel, Opcode::Random, [0; 4]),
                Body::Symlink(_) => return Err(Errno::EBADF),
                Body::File { .. } => {}
            }
            let position = offset.unwrap_or_else(|| description.state.lock().offset);
            if position == 0 {
                // A generated /proc file read from its start shows the state now, as Linux's.
                super::procfs::refresh(kernel, ino)?;
            }
            let size = kernel.vfs.tmpfs.get(ino).size();
            let count = pieces.bytes.min(size.saturating_sub(position));
            if count == 0 {
                return Ok(0);
            }
            let zero_page = kernel.vfs.zero_page;
            let source =
                kernel.vfs.tmpfs.file_pieces(&mut kernel.frames, ino, position, count, false, zero_page)?;
            let read = copy_pieces(kernel, &source, &pieces.prefix(count))?;
            if offset.is_none() {
                description.state.lock().offset = position + read;
            }
            Ok(read)
        }
        FileKind::Pipe { write_end: true, .. } => Err(Errno::EBADF),
        FileKind::Pipe { pipe, .. } => {
            let nonblocking = description.status_flags() & O_NONBLOCK != 0;
            loop {
                let mut state = pipe.lock();
                if state.len > 0 {
                    let source = state.readable(pieces.bytes);
                    let read = copy_pieces(kernel, &source, &pieces.list)?;
                    state.consume(read);
                    return Ok(read);
                }
                if state.writers == 0 {
                    return Ok(0);
                }
                if nonblocking {
                    return Err(Errno::EAGAIN);
                }
                drop(state);
                block_forever(kernel, "read from an empty pipe that only it can fill");
            }
        }
    }
}

/// Writes `pieces` at `offset` (or the file position). Returns bytes written.
pub fn write_description(
    kernel: &mut Kernel,
    description: &Description,
    pieces: &Pieces,
    offset: Option<u64>,
) -> SysResult {
    description.check_writable()?;
    match &description.kind {
        FileKind::HostStdio(host) => match offset {
            None => pieces.call(kernel, Opcode::Write, [u64::from(*host), 0, 0, 0]),
            Some(offset) => pieces.call(kernel, Opcode::Pwrite, [u64::from(*host), offset, 0, 0]),
        },
        FileKind::Host { handle, .. } => match offset {
            None => pieces.call(kernel, Opcode::Write, [*handle, 0, 0, 0]),
            Some(offset) => pieces.call(kernel, Opcode::Pwrite, [*handle, offset, 0, 0]),
        },
        FileKind::Tmpfs(ino) => {
            let ino = *ino;
            match &kernel.vfs.tmpfs.get(ino).body {
                Body::Dir { .. } | Body::FdDir => return Err(Errno::EISDIR),
                Body::Device(_) => return Ok(pieces.bytes),
                Body::Symlink(_) => return Err(Errno::EBADF),
                Body::File { .. } => {}
            }
            let append = description.status_flags() & O_APPEND != 0;
            let size = kernel.vfs.tmpfs.get(ino).size();
            let position = match offset {
                _ if append => size,
                Some(offset) => offset,
                None => description.state.lock().offset,
            };
            if position.checked_add(pieces.bytes).is_none_or(|end| end > i64::MAX as u64) {
                return Err(Errno::EFBIG);
            }
            let zero_page = kernel.vfs.zero_page;
            let target = kernel.vfs.tmpfs.file_pieces(
                &mut kernel.frames,
                ino,
                position,
                pieces.bytes,
                true,
                zero_page,
            )?;
            let written = copy_pieces(kernel, &pieces.list, &target)?;
            let now = now(kernel);
            let inode = kernel.vfs.tmpfs.get_mut(ino);
            if let Body::File { size, .. } = &mut inode.body {
                *size = (*size).max(position + written);
            }
            inode.mtime = now;
            inode.ctime = now;
            if offset.is_none() || append {
                description.state.lock().offset = position + written;
            }
            Ok(written)
        }
        FileKind::Pipe { write_end: false, .. } => Err(Errno::EBADF),
        FileKind::Pipe { pipe, .. } => {
            let nonblocking = description.status_flags() & O_NONBLOCK != 0;
            loop {
                let mut state = pipe.lock();
                if state.readers == 0 {
                    return Err(Errno::EPIPE);
                }
                let room = PIPE_CAPACITY - state.len;
                if room > 0 {
                    let target = state.writable(pieces.bytes);
                    let written = copy_pieces(kernel, &pieces.list, &target)?;
                    state.produce(written);
                    return Ok(written);
                }
                if nonblocking {
                    return Err(Errno::EAGAIN);
                }
                drop(state);
                block_forever(kernel, "write to a full pipe that only it can drain");
            }
        }
    }
}

/// The program waits for something only it could do: sleep until the run's time limit.
fn block_forever(kernel: &mut Kernel, what: &str) {
    log::warn!("the program blocked for good: {what}");
    kernel.clock.sleep_until(u64::MAX);
}

// ---------------------------------------------------------------------------------------------
// read, write and their vectored and positioned forms.
// ---------------------------------------------------------------------------------------------

fn description(kernel: &Kernel, fd: u64) -> Result<Arc<Description>, Errno> {
    Ok(kernel.files.get(fd)?.description)
}

pub fn read(kernel: &mut Kernel, fd: u64, buf: u64, count: u64) -> SysResult {
    read_at(kernel, fd, buf, count, None)
}

pub fn pread64(kernel: &mut Kernel, fd: u64, buf: u64, count: u64, offset: u64) -> SysResult {
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    read_at(kernel, fd, buf, count, Some(offset))
}

fn read_at(kernel: &mut Kernel, fd: u64, buf: u64, count: u64, offset: Option<u64>) -> SysResult {
    let description = description(kernel, fd)?;
    check_positioned(&description, offset)?;
    description.check_readable()?;
    check_user_range(buf, count)?;
    if count == 0 || is_null_device(kernel, &description) {
        return Ok(0);
    }
    let mut pieces = Pieces::new();
    let whole = pieces.gather(kernel, buf, count, true, MAX_CHUNK);
    if pieces.bytes == 0 || (!whole && !stops_at_a_fault(&description)) {
        return Err(Errno::EFAULT);
    }
    read_description(kernel, &description, &pieces, offset)
}

/// Whether a transfer into or out of a buffer that runs into memory the program can't reach
/// moves what it can up to there, as Linux's regular files do (its copy to user space stops
/// at the fault); pipes and terminals fail such a transfer with `EFAULT` instead.
fn stops_at_a_fault(description: &Description) -> bool {
    matches!(description.kind, FileKind::Host { directory: false, .. } | FileKind::Tmpfs(_))
}

/// `/dev/null`, whose reads and writes Linux answers without touching the buffer.
fn is_null_device(kernel: &Kernel, description: &Description) -> bool {
    matches!(description.kind, FileKind::Tmpfs(ino) if kernel.vfs.tmpfs.is_null_device(ino))
}

/// The most one `read` or `write` moves on Linux (`INT_MAX`, page-aligned).
pub(super) const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// Linux's `access_ok` on a read's or write's buffer: `EFAULT` unless all of it (even an
/// empty one) lies below the end of user space, whatever is mapped there.
pub(super) fn check_user_range(buf: u64, count: u64) -> Result<(), Errno> {
    match buf.checked_add(count) {
        Some(end) if end <= USER_END => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// `ESPIPE` for a positioned transfer on a pipe or stream.
fn check_positioned(description: &Description, offset: Option<u64>) -> Result<(), Errno> {
    match (&description.kind, offset) {
        (FileKind::Pipe { .. }, Some(_)) => Err(Errno::ESPIPE),
        _ => Ok(()),
    }
}

pub fn write(kernel: &mut Kernel, fd: u64, buf: u64, count: u64) -> SysResult {
    write_at(kernel, fd, buf, count, None)
}

pub fn pwrite64(kernel: &mut Kernel, fd: u64, buf: u64, count: u64, offset: u64) -> SysResult {
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    write_at(kernel, fd, buf, count, Some(offset))
}

fn write_at(kernel: &mut Kernel, fd: u64, buf: u64, count: u64, offset: Option<u64>) -> SysResult {
    let description = description(kernel, fd)?;
    check_positioned(&description, offset)?;
    description.check_writable()?;
    check_user_range(buf, count)?;
    if is_null_device(kernel, &description) {
        return Ok(count.min(MAX_RW_COUNT));
    }
    let count = count.min(i64::MAX as u64);
    let mut done = 0;
    while done < count {
        let mut pieces = Pieces::new();
        let whole = pieces.gather(kernel, buf + done, count - done, false, MAX_CHUNK);
        if pieces.bytes == 0 || (!whole && !stops_at_a_fault(&description)) {
            return if done > 0 { Ok(done) } else { Err(Errno::EFAULT) };
        }
        let at = offset.map(|o| o + done);
        let result = write_description(kernel, &description, &pieces, at);
        match check_broken_pipe(kernel, result) {
            Ok(written) => {
                done += written;
                if written < pieces.bytes || !whole {
                    break;
                }
            }
            Err(errno) if done == 0 => return Err(errno),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
struct IoVec {
    base: u64,
    len: u64,
}

fn read_iovecs(kernel: &mut Kernel, iov: u64, count: u64) -> Result<Vec<IoVec>, Errno> {
    if count > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    let mut iovecs = alloc::vec![IoVec::default(); count as usize];
    kernel.space.copy_from_user(&mut kernel.frames, iov, iovecs.as_mut_slice().as_mut_bytes())?;
    let mut total: u64 = 0;
    for iovec in &iovecs {
        total = total
            .checked_add(iovec.len)
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or(Errno::EINVAL)?;
    }
    Ok(iovecs)
}

fn vectored(
    kernel: &mut Kernel,
    fd: u64,
    iov: u64,
    count: u64,
    write: bool,
    offset: Option<u64>,
) -> SysResult {
    let description = description(kernel, fd)?;
    check_positioned(&description, offset)?;
    if write {
        description.check_writable()?;
    } else {
        description.check_readable()?;
    }
    let iovecs = read_iovecs(kernel, iov, count)?;
    if is_null_device(kernel, &description) {
        // Each range checked as `access_ok` does, none of them touched.
        let mut total: u64 = 0;
        for iovec in &iovecs {
            check_user_range(iovec.base, iovec.len)?;
            total = total.saturating_add(iovec.len);
        }
        return Ok(if write { total.min(MAX_RW_COUNT) } else { 0 });
    }

    // One request carries at most MAX_PIECES ranges and MAX_CHUNK bytes. A write goes on in
    // further requests until everything is written (as Linux writes all 1024 iovecs); a read
    // stops after the first, which may be short, so it never waits for more than it needs.
    let mut done = 0;
    let mut next = 0;
    let mut skip = 0;
    loop {
        let mut pieces = Pieces::new();
        let mut inaccessible = false;
        while next < iovecs.len() && pieces.bytes < MAX_CHUNK && pieces.list.len() < MAX_PIECES {
            let iovec = iovecs[next];
            let before = pieces.bytes;
            let (base, len) = (iovec.base + skip, iovec.len - skip);
            let whole = pieces.gather(kernel, base, len, !write, MAX_CHUNK);
            skip += pieces.bytes - before;
            if skip == iovec.len {
                next += 1;
                skip = 0;
            }
            if !whole {
                inaccessible = true;
                break;
            }
        }
        if pieces.bytes == 0 {
            return if inaccessible && done == 0 { Err(Errno::EFAULT) } else { Ok(done) };
        }
        let at = offset.map(|o| o + done);
        let result = if write {
            let result = write_description(kernel, &description, &pieces, at);
            check_broken_pipe(kernel, result)
        } else {
            read_description(kernel, &description, &pieces, at)
        };
        let moved = match result {
            Ok(moved) => moved,
            Err(errno) if done == 0 => return Err(errno),
            Err(_) => return Ok(done),
        };
        done += moved;
        if !write || moved < pieces.bytes || inaccessible || next == iovecs.len() {
            return Ok(done);
        }
    }
}

pub fn readv(kernel: &mut Kernel, fd: u64, iov: u64, count: u64) -> SysResult {
    vectored(kernel, fd, iov, count, false, None)
}

pub fn writev(kernel: &mut Kernel, fd: u64, iov: u64, count: u64) -> SysResult {
    vectored(kernel, fd, iov, count, true, None)
}

/// `preadv`/`pwritev` (and the `…2` forms with flags 0; offset -1 means the file position).
pub fn vectored_at(
    kernel: &mut Kernel,
    fd: u64,
    iov: u64,
    count: u64,
    offset: u64,
    flags: u64,
    write: bool,
) -> SysResult {
    if flags != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let offset = match offset as i64 {
        -1 => None,
        negative if negative < 0 => return Err(Errno::EINVAL),
        _ => Some(offset),
    };
    vectored(kernel, fd, iov, count, write, offset)
}

// ---------------------------------------------------------------------------------------------
// lseek, sendfile, copy_file_range
// ---------------------------------------------------------------------------------------------

const SEEK_SET: u64 = 0;
const SEEK_CUR: u64 = 1;
const SEEK_END: u64 = 2;
const SEEK_DATA: u64 = 3;
const SEEK_HOLE: u64 = 4;

pub fn lseek(kernel: &mut Kernel, fd: u64, offset: u64, whence: u64) -> SysResult {
    let description = description(kernel, fd)?;
    seek(kernel, &description, offset, whence)
}

/// `lseek` on an open file description.
fn seek(kernel: &Kernel, description: &Description, offset: u64, whence: u64) -> SysResult {
    if whence > SEEK_HOLE {
        return Err(Errno::EINVAL);
    }
    match &description.kind {
        // Seeking the host's stdio is not forwarded: pipes and terminals can't seek anyway.
        FileKind::HostStdio(_) | FileKind::Pipe { .. } => Err(Errno::ESPIPE),
        FileKind::Host { handle, .. } => {
            ring::with_ring(|ring| ring.call_checked(Opcode::Seek, [*handle, offset, whence, 0], None))
        }
        FileKind::Tmpfs(ino) => {
            let inode = kernel.vfs.tmpfs.get(*ino);
            if let Body::Device(_) = inode.body {
                return Ok(0);
            }
            let size = inode.size();
            let mut state = description.state.lock();
            let base = match whence {
                SEEK_SET => 0,
                SEEK_CUR => state.offset as i64,
                SEEK_END => size as i64,
                _ => 0,
            };
            let target = base.checked_add(offset as i64).ok_or(Errno::EOVERFLOW)?;
            if target < 0 {
                return Err(Errno::EINVAL);
            }
            let target = match whence {
                SEEK_DATA | SEEK_HOLE if (offset as i64) < 0 => return Err(Errno::ENXIO),
                SEEK_DATA | SEEK_HOLE if offset >= size => return Err(Errno::ENXIO),
                SEEK_DATA => offset,
                SEEK_HOLE => size,
                _ => target as u64,
            };
            state.offset = target;
            Ok(target)
        }
    }
}

/// Moves up to `count` bytes from `input` to `output` through the kernel's bounce frames,
/// one bounce-full at a time. Offsets, when given, are used instead of (and leave
/// alone) the file positions; they are advanced in place.
fn splice_files(
    kernel: &mut Kernel,
    input: &Description,
    mut in_offset: Option<&mut u64>,
    output: &Description,
    mut out_offset: Option<&mut u64>,
    count: u64,
) -> SysResult {
    if out_offset.is_none() {
        if let Some(moved) = splice_on_host(kernel, input, in_offset.as_deref_mut(), output, count)?
        {
            return Ok(moved);
        }
    }
    if kernel.bounce.is_empty() {
        let wanted = BOUNCE_BYTES.min(kernel.memory_size / 16 & !(PAGE_SIZE - 1)).max(PAGE_SIZE);
        if let Some(first) = kernel.frames.allocate_contiguous(wanted / PAGE_SIZE) {
            kernel.bounce = alloc::vec![(first, wanted)];
        } else {
            let mut frames = Vec::new();
            for _ in 0..FALLBACK_BOUNCE_BYTES / PAGE_SIZE {
                let Some(frame) = kernel.frames.allocate() else {
                    for frame in frames {
                        kernel.frames.free(frame);
                    }
                    return Err(Errno::ENOMEM);
                };
                frames.push(frame);
            }
            // Merged once (freed frames may still be neighbours): no per-page work per round.
            let mut merged = PieceList::new();
            for frame in frames {
                push_merged(&mut merged, frame, PAGE_SIZE);
            }
            kernel.bounce = merged.to_vec();
        }
    }
    let bounce = Pieces::from_list(kernel.bounce.clone());
    let bounce_bytes = bounce.bytes;
    let mut done = 0;
    while done < count {
        let round = (count - done).min(bounce_bytes);
        let at = in_offset.as_deref().copied();
        let read = read_description(kernel, input, &Pieces::from_list(bounce.prefix(round)), at)?;
        if read == 0 {
            break;
        }
        let at = out_offset.as_deref().copied();
        let result = write_description(kernel, output, &Pieces::from_list(bounce.prefix(read)), at);
        let written = check_broken_pipe(kernel, result);
        // Like Linux, the input only moves past what was written: a failed or short write
        // leaves the rest to be read again.
        let moved = *written.as_ref().unwrap_or(&0);
        if in_offset.is_none() && moved < read {
            // A stream's bytes are gone (ESPIPE), as they are on Linux. After earlier rounds,
            // what they moved is the answer even if this fails.
            let back = (read - moved).wrapping_neg();
            match seek(kernel, input, back, SEEK_CUR) {
                Err(errno) if errno != Errno::ESPIPE && done == 0 => return Err(errno),
                _ => {}
            }
        }
        let written = match written {
            Ok(written) => written,
            Err(errno) if done == 0 => return Err(errno),
            Err(_) => break,
        };
        if let Some(offset) = in_offset.as_deref_mut() {
            *offset += written;
        }
        if let Some(offset) = out_offset.as_deref_mut() {
            *offset += written;
        }
        done += written;
        if written < read || read < round {
            break;
        }
    }
    Ok(done)
}

/// The copy done by the host (`Opcode::Splice`) when it reads a host file and writes a host
/// file or stdio stream: the data never enters guest memory. `None` when the ends aren't
/// such, or the host can't splice them (`EINVAL`, e.g. stdout captured by an embedder): the
/// caller then copies through its bounce buffer.
fn splice_on_host(
    kernel: &mut Kernel,
    input: &Description,
    mut in_offset: Option<&mut u64>,
    output: &Description,
    count: u64,
) -> Result<Option<u64>, Errno> {
    // Linux reads a sendfile's input with splice, which pipes and terminals don't have: the
    // host decides for its own stdin (a file redirected to it can be sent) when the output
    // is the host's too, and the guest's pipes refuse. Stdin to an in-guest output takes the
    // bounce copy, which can't put a pipe's bytes back when the write fails.
    let (in_handle, from_stream) = match input.kind {
        FileKind::Host { handle, directory: false, .. } => (handle, false),
        FileKind::HostStdio(0) => (0, true),
        FileKind::Pipe { .. } => return Err(Errno::EINVAL),
        _ => return Ok(None),
    };
    let out_handle = match output.kind {
        FileKind::Host { handle, directory: false, .. } => handle,
        FileKind::HostStdio(stream) if stream != 0 => u64::from(stream),
        _ => return Ok(None),
    };
    let mut done = 0;
    while done < count {
        let round = (count - done).min(MAX_SPLICE_BYTES);
        let at = in_offset.as_deref().map_or(SPLICE_AT_POSITION, |offset| *offset);
        let args = [in_handle, out_handle, round, at];
        let result = ring::with_ring(|ring| ring.call(Opcode::Splice, args, None));
        let moved = match u64::try_from(result) {
            Ok(moved) => moved,
            Err(_) if done > 0 => break,
            Err(_) if Errno::from_result(result) == Errno::EINVAL && !from_stream => {
                return Ok(None);
            }
            Err(_) => return check_broken_pipe(kernel, Err(Errno::from_result(result))).map(Some),
        };
        if let Some(offset) = in_offset.as_deref_mut() {
            *offset += moved;
        }
        done += moved;
        if moved < round {
            break;
        }
    }
    Ok(Some(done))
}

pub fn sendfile(kernel: &mut Kernel, out_fd: u64, in_fd: u64, offset_ptr: u64, count: u64) -> SysResult {
    let input = description(kernel, in_fd)?;
    let output = description(kernel, out_fd)?;
    input.check_readable()?;
    output.check_writable()?;
    if output.status_flags() & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let count = count.min(0x7fff_f000);
    if offset_ptr == 0 {
        return splice_files(kernel, &input, None, &output, None, count);
    }
    let mut offset: u64 = kernel.space.read_user(&mut kernel.frames, offset_ptr)?;
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let moved = splice_files(kernel, &input, Some(&mut offset), &output, None, count)?;
    kernel.space.write_user(&mut kernel.frames, offset_ptr, &offset)?;
    Ok(moved)
}

pub fn copy_file_range(
    kernel: &mut Kernel,
    in_fd: u64,
    in_ptr: u64,
    out_fd: u64,
    out_ptr: u64,
    count: u64,
    flags: u64,
) -> SysResult {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let input = description(kernel, in_fd)?;
    let output = description(kernel, out_fd)?;
    input.check_readable()?;
    output.check_writable()?;
    let is_regular = |d: &Description| match &d.kind {
        FileKind::Host { directory, .. } => !directory,
        FileKind::Tmpfs(ino) => matches!(kernel.vfs.tmpfs.get(*ino).body, Body::File { .. }),
        _ => false,
    };
    if !is_regular(&input) || !is_regular(&output) {
        return Err(Errno::EINVAL);
    }
    if output.status_flags() & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let mut in_offset = match in_ptr {
        0 => None,
        ptr => Some(kernel.space.read_user::<u64>(&mut kernel.frames, ptr)?),
    };
    let mut out_offset = match out_ptr {
        0 => None,
        ptr => Some(kernel.space.read_user::<u64>(&mut kernel.frames, ptr)?),
    };
    if [in_offset, out_offset].iter().flatten().any(|&offset| (offset as i64) < 0) {
        return Err(Errno::EINVAL);
    }
    let count = count.min(0x7fff_f000);
    let moved =
        splice_files(kernel, &input, in_offset.as_mut(), &output, out_offset.as_mut(), count)?;
    if let Some(offset) = in_offset {
        kernel.space.write_user(&mut kernel.frames, in_ptr, &offset)?;
    }
    if let Some(offset) = out_offset {
        kernel.space.write_user(&mut kernel.frames, out_ptr, &offset)?;
    }
    Ok(moved)
}

// ---------------------------------------------------------------------------------------------
// pipe, close, dup, fcntl
// ---------------------------------------------------------------------------------------------

pub fn pipe2(kernel: &mut Kernel, fds: u64, flags: u64) -> SysResult {
    const O_DIRECT: u64 = 0o40000;
    if flags & !(O_CLOEXEC | u64::from(O_NONBLOCK) | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    crate::mm::user::user_range_end(fds, 8)?;
    let pipe = Arc::new(spin::Mutex::new(Pipe::new(&mut kernel.frames)?));
    let id = kernel.next_pipe_id;
    kernel.next_pipe_id += 1;
    let name = alloc::format!("pipe:[{id}]").into_bytes();
    let status = (flags & u64::from(O_NONBLOCK)) as u32;
    let cloexec = flags & O_CLOEXEC != 0;
    let end = |write_end: bool| FdEntry {
        description: Description::new(
            FileKind::Pipe { pipe: pipe.clone(), write_end, id },
            name.clone(),
            status | u32::from(write_end),
        ),
        cloexec,
    };
    let (reader, writer) = (end(false), end(true));
    let limit = kernel.rlimits[7].0 as usize;
    let read_fd = match kernel.files.insert_from(0, limit, reader) {
        Ok(fd) => fd,
        Err(errno) => {
            pipe.lock().release(&mut kernel.frames);
            return Err(errno);
        }
    };
    let write_fd = match kernel.files.insert_from(0, limit, writer) {
        Ok(fd) => fd,
        Err(errno) => {
            let reader = kernel.files.remove(read_fd)?;
            release(kernel, reader);
            pipe.lock().writers = 0;
            pipe.lock().release(&mut kernel.frames);
            return Err(errno);
        }
    };
    let pair = [read_fd as i32, write_fd as i32];
    if let Err(errno) = kernel.space.write_user(&mut kernel.frames, fds, &pair) {
        for fd in [read_fd, write_fd] {
            let entry = kernel.files.remove(fd)?;
            release(kernel, entry);
        }
        return Err(errno);
    }
    Ok(0)
}

/// Drops one fd's hold on its description; the last hold closes the file.
pub fn release(kernel: &mut Kernel, entry: FdEntry) {
    let FdEntry { description, .. } = entry;
    let Some(description) = Arc::into_inner(description) else { return };
    match description.kind {
        FileKind::HostStdio(host) => {
            ring::with_ring(|ring| ring.post(Opcode::Close, [u64::from(host), 0, 0, 0], None));
        }
        FileKind::Host { handle, .. } => {
            ring::with_ring(|ring| ring.post(Opcode::Close, [handle, 0, 0, 0], None));
        }
        FileKind::Tmpfs(ino) => {
            let inode = kernel.vfs.tmpfs.get_mut(ino);
            inode.open_count = inode.open_count.saturating_sub(1);
            kernel.vfs.tmpfs.release_if_unused(&mut kernel.frames, ino);
        }
        FileKind::Pipe { pipe, write_end, .. } => {
            let mut state = pipe.lock();
            if write_end {
                state.writers -= 1;
            } else {
                state.readers -= 1;
            }
            if state.readers == 0 && state.writers == 0 {
                state.release(&mut kernel.frames);
            }
        }
    }
}

pub fn close(kernel: &mut Kernel, fd: u64) -> SysResult {
    let entry = kernel.files.remove(fd)?;
    release(kernel, entry);
    Ok(0)
}

pub fn close_range(kernel: &mut Kernel, first: u64, last: u64, flags: u64) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u64 = 2;
    const CLOSE_RANGE_CLOEXEC: u64 = 4;
    // `unsigned int` bounds, as Linux reads them. One process shares its fd table with no
    // one, so CLOSE_RANGE_UNSHARE changes nothing.
    let (first, last) = (u64::from(first as u32), u64::from(last as u32));
    if flags & !(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    for fd in kernel.files.open_fds() {
        if fd < first || fd > last {
            continue;
        }
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            kernel.files.get_mut(fd)?.cloexec = true;
        } else {
            close(kernel, fd)?;
        }
    }
    Ok(0)
}

pub fn dup(kernel: &mut Kernel, fd: u64) -> SysResult {
    let entry = kernel.files.get(fd)?;
    let limit = kernel.rlimits[7].0 as usize;
    kernel.files.insert_from(0, limit, FdEntry { cloexec: false, ..entry })
}

pub fn dup3(kernel: &mut Kernel, old: u64, new: u64, flags: u64, is_dup2: bool) -> SysResult {
    // Both are `unsigned int` to Linux.
    let (old, new) = (u64::from(old as u32), u64::from(new as u32));
    let entry = kernel.files.get(old)?;
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    if old == new {
        return if is_dup2 { Ok(new) } else { Err(Errno::EINVAL) };
    }
    let index = usize::try_from(new).ok().filter(|&n| n < kernel.rlimits[7].0 as usize);
    let index = index.ok_or(Errno::EBADF)?;
    let replaced = kernel.files.set(index, FdEntry { cloexec: flags & O_CLOEXEC != 0, ..entry });
    if let Some(replaced) = replaced {
        release(kernel, replaced);
    }
    Ok(new)
}

const F_DUPFD: u64 = 0;
const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;
const F_GETLK: u64 = 5;
const F_SETLK: u64 = 6;
const F_SETLKW: u64 = 7;
const F_DUPFD_CLOEXEC: u64 = 1030;
const F_GETPIPE_SZ: u64 = 1032;
/// `F_SETFL` may change O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT, O_NOATIME.
const SETFL_MASK: u32 = 0o2000 | 0o4000 | 0o20000 | 0o40000 | 0o1000000;

pub fn fcntl(kernel: &mut Kernel, fd: u64, command: u64, arg: u64) -> SysResult {
    let entry = kernel.files.get(fd)?;
    let is_path = entry.description.status_flags() & O_PATH != 0;
    match command {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            // Linux takes the lowest fd as an `int`: a negative one is EINVAL.
            let min = usize::try_from(arg as i32).map_err(|_| Errno::EINVAL)?;
            let cloexec = command == F_DUPFD_CLOEXEC;
            let limit = kernel.rlimits[7].0 as usize;
            kernel.files.insert_from(min, limit, FdEntry { cloexec, ..entry })
        }
        F_GETFD => Ok(if entry.cloexec { FD_CLOEXEC } else { 0 }),
        F_SETFD => {
            kernel.files.get_mut(fd)?.cloexec = arg & FD_CLOEXEC != 0;
            Ok(0)
        }
        F_GETFL => Ok(u64::from(entry.description.status_flags())),
        F_SETFL if is_path => Err(Errno::EBADF),
        F_SETFL => {
            let append = arg as u32 & O_APPEND != 0;
            let was_append = entry.description.status_flags() & O_APPEND != 0;
            if let FileKind::Host { handle, directory: false, .. } = entry.description.kind {
                // The host file's own fd appends, not this kernel: it must hear of the change.
                if append != was_append {
                    let args = [handle, u64::from(append), 0, 0];
                    ring::with_ring(|ring| ring.call_checked(Opcode::SetAppend, args, None))?;
                }
            }
            let mut state = entry.description.state.lock();
            state.status_flags = (state.status_flags & !SETFL_MASK) | (arg as u32 & SETFL_MASK);
            Ok(0)
        }
        // One process holds every lock there is: taking one always succeeds, and a query
        // finds the range unlocked (`l_type` = F_UNLCK, the first field of `struct flock`).
        F_SETLK | F_SETLKW if is_path => Err(Errno::EBADF),
        F_SETLK | F_SETLKW => Ok(0),
        F_GETLK => {
            kernel.space.write_user(&mut kernel.frames, arg, &2u16)?;
            Ok(0)
        }
        F_GETPIPE_SZ => match entry.description.kind {
            FileKind::Pipe { .. } => Ok(PIPE_CAPACITY),
            _ => Err(Errno::EBADF),
        },
        _ => Err(Errno::EINVAL),
    }
}

// ---------------------------------------------------------------------------------------------
// ioctl, poll, getrandom
// ---------------------------------------------------------------------------------------------

const FIONCLEX: u64 = 0x5450;
const FIOCLEX: u64 = 0x5451;
const FIONREAD: u64 = 0x541b;

pub fn ioctl(kernel: &mut Kernel, fd: u64, request: u64, arg: u64) -> SysResult {
    let description = description(kernel, fd)?;
    match request {
        FIOCLEX | FIONCLEX => {
            kernel.files.get_mut(fd)?.cloexec = request == FIOCLEX;
            return Ok(0);
        }
        FIONREAD => {
            let available = match &description.kind {
                FileKind::Pipe { pipe, .. } => pipe.lock().len,
                FileKind::Tmpfs(ino) => {
                    let size = kernel.vfs.tmpfs.get(*ino).size();
                    size.saturating_sub(description.state.lock().offset)
                }
                _ => return Err(Errno::ENOTTY),
            };
            kernel.space.write_user(&mut kernel.frames, arg, &(available as i32))?;
            return Ok(0);
        }
        _ => {}
    }
    let FileKind::HostStdio(host) = description.kind else { return Err(Errno::ENOTTY) };
    let reply_len = match request {
        TCGETS => 36,
        TIOCGWINSZ => 8,
        // Changing the host terminal's settings is not the program's to do.
        0x5402..=0x5404 | 0x5414 => return Err(Errno::EPERM),
        _ => return Err(Errno::ENOTTY),
    };
    let scratch = kernel.scratch_gpa;
    ring::with_ring(|ring| {
        ring.call_checked(Opcode::Ioctl, [u64::from(host), request, scratch, 0], None)
    })?;
    let mut reply = [0u8; 36];
    // SAFETY: the scratch frame is kernel-owned; the host wrote `reply_len` bytes there.
    unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(scratch), reply.as_mut_ptr(), reply_len) };
    kernel.space.copy_to_user(&mut kernel.frames, arg, &reply[..reply_len])?;
    Ok(0)
}

const POLLIN: i16 = 0x1;
const POLLOUT: i16 = 0x4;
const POLLERR: i16 = 0x8;
const POLLHUP: i16 = 0x10;
const POLLNVAL: i16 = 0x20;
/// Most pollfds forwarded in one request (they travel in the scratch page).
const MAX_HOST_POLLFDS: usize = (PAGE_SIZE as usize) / core::mem::size_of::<PollFd>();

/// What `poll` reports for an fd the guest answers itself.
fn local_readiness(kernel: &Kernel, description: &Description, events: i16) -> i16 {
    match &description.kind {
        FileKind::Pipe { pipe, write_end, .. } => {
            let state = pipe.lock();
            if *write_end {
                if state.readers == 0 {
                    POLLERR
                } else if state.len < PIPE_CAPACITY {
                    events & POLLOUT
                } else {
                    0
                }
            } else if state.len > 0 {
                events & POLLIN
            } else if state.writers == 0 {
                POLLHUP
            } else {
                0
            }
        }
        FileKind::Tmpfs(_) | FileKind::Host { .. } => {
            let _ = kernel;
            events & (POLLIN | POLLOUT)
        }
        FileKind::HostStdio(_) => 0,
    }
}

pub fn poll(kernel: &mut Kernel, fds: u64, count: u64, timeout_ms: u64) -> SysResult {
    poll_user(kernel, fds, count, i64::from(timeout_ms as i32))
}

/// `ppoll`: `poll` with a `timespec` (NULL: wait for ever). The signal mask it would hold
/// during the wait is not applied: handlers are not run, so no signal can interrupt it.
pub fn ppoll(kernel: &mut Kernel, fds: u64, count: u64, timeout: u64) -> SysResult {
    let timeout_ms = timespec_timeout_ms(kernel, timeout)?;
    poll_user(kernel, fds, count, timeout_ms)
}

/// A wait of `ns` in poll's milliseconds, rounded up so it is never shorter.
fn timeout_ms(ns: u64) -> i64 {
    i64::try_from(ns.div_ceil(1_000_000)).unwrap_or(i64::MAX).min(i64::from(i32::MAX))
}

/// The `timespec` timeout at `address` (0: none, wait for ever) in poll's milliseconds.
fn timespec_timeout_ms(kernel: &mut Kernel, address: u64) -> Result<i64, Errno> {
    match address {
        0 => Ok(-1),
        at => Ok(timeout_ms(crate::syscall::time::timespec_ns(kernel, at)?)),
    }
}

fn poll_user(kernel: &mut Kernel, fds: u64, count: u64, timeout_ms: i64) -> SysResult {
    if count > kernel.rlimits[7].0 {
        return Err(Errno::EINVAL);
    }
    let mut entries = alloc::vec![PollFd::default(); count as usize];
    kernel.space.copy_from_user(&mut kernel.frames, fds, entries.as_mut_slice().as_mut_bytes())?;
    let ready = poll_entries(kernel, &mut entries, timeout_ms)?;
    kernel.space.copy_to_user(&mut kernel.frames, fds, entries.as_slice().as_bytes())?;
    Ok(ready)
}

/// Fills in `revents` of `entries` and returns how many have any, waiting up to
/// `timeout_ms` (negative: for ever) while none has.
fn poll_entries(kernel: &mut Kernel, entries: &mut [PollFd], timeout_ms: i64) -> SysResult {
    let mut ready = 0u64;
    let mut forwarded: Vec<(usize, PollFd)> = Vec::new();
    for (index, entry) in entries.iter_mut().enumerate() {
        entry.revents = 0;
        if entry.fd < 0 {
            continue;
        }
        match kernel.files.get(entry.fd as u64) {
            Ok(fd) => match fd.description.kind {
                FileKind::HostStdio(host) => {
                    forwarded.push((index, PollFd { fd: i32::from(host), ..*entry }));
                }
                _ => {
                    entry.revents = local_readiness(kernel, &fd.description, entry.events);
                    if entry.revents != 0 {
                        ready += 1;
                    }
                }
            },
            Err(_) => {
                entry.revents = POLLNVAL;
                ready += 1;
            }
        }
    }

    if !forwarded.is_empty() && forwarded.len() <= MAX_HOST_POLLFDS {
        let timeout = if ready > 0 { 0 } else { timeout_ms };
        let scratch = kernel.scratch_gpa;
        let host_entries: Vec<PollFd> = forwarded.iter().map(|(_, entry)| *entry).collect();
        // SAFETY: the scratch frame is kernel-owned and large enough (MAX_HOST_POLLFDS).
        unsafe {
            core::ptr::copy_nonoverlapping(
                host_entries.as_ptr(),
                phys_to_virt(scratch).cast::<PollFd>(),
                host_entries.len(),
            );
        }
        let count = host_entries.len() as u64;
        ring::with_ring(|ring| {
            ring.call_checked(Opcode::Poll, [scratch, count, timeout as u64, 0], None)
        })?;
        for (slot, (index, _)) in forwarded.iter().enumerate() {
            // SAFETY: as above; the host wrote the revents back in place.
            let answered =
                unsafe { phys_to_virt(scratch).cast::<PollFd>().add(slot).read_volatile() };
            entries[*index].revents = answered.revents;
            if answered.revents != 0 {
                ready += 1;
            }
        }
    } else if ready == 0 && timeout_ms != 0 {
        // Nothing can become ready: sleep for the timeout (or until the run's time limit).
        let deadline = if timeout_ms < 0 {
            u64::MAX
        } else {
            kernel.clock.monotonic_ns() + timeout_ms as u64 * 1_000_000
        };
        kernel.clock.sleep_until(deadline);
    }
    Ok(ready)
}

/// `select`: the fd sets become poll entries (read: POLLIN, write: POLLOUT, except: POLLPRI)
/// and back. `timeout` is a `timeval` (NULL: for ever); it is not updated with the time
/// left, which Linux does and POSIX leaves open.
pub fn select(kernel: &mut Kernel, nfds: u64, sets: [u64; 3], timeout: u64) -> SysResult {
    let timeout_ms = match timeout {
        0 => -1,
        at => {
            let [seconds, micros]: [i64; 2] = kernel.space.read_user(&mut kernel.frames, at)?;
            if seconds < 0 || !(0..1_000_000).contains(&micros) {
                return Err(Errno::EINVAL);
            }
            let ns = (seconds as u64).saturating_mul(1_000_000_000);
            timeout_ms(ns.saturating_add(micros as u64 * 1000))
        }
    };
    select_sets(kernel, nfds, sets, timeout_ms)
}

/// `pselect6`: `select` with a `timespec`; the signal mask is not applied (see `ppoll`).
pub fn pselect6(kernel: &mut Kernel, nfds: u64, sets: [u64; 3], timeout: u64) -> SysResult {
    let timeout_ms = timespec_timeout_ms(kernel, timeout)?;
    select_sets(kernel, nfds, sets, timeout_ms)
}

const POLLPRI: i16 = 0x2;

fn select_sets(kernel: &mut Kernel, nfds: u64, sets: [u64; 3], timeout_ms: i64) -> SysResult {
    // Linux reads nfds as an `int` and clamps it to the fd table's size; only a negative one
    // is EINVAL.
    let Ok(nfds) = u64::try_from(nfds as i32) else {
        return Err(Errno::EINVAL);
    };
    let nfds = nfds.min(kernel.rlimits[7].0);
    let words = nfds.div_ceil(64) as usize;
    let mut bits = [Vec::new(), Vec::new(), Vec::new()];
    for (set, &address) in bits.iter_mut().zip(&sets) {
        *set = alloc::vec![0u64; words];
        if address != 0 {
            let bytes = set.as_mut_slice().as_mut_bytes();
            kernel.space.copy_from_user(&mut kernel.frames, address, bytes)?;
        }
        // Bits past nfds are not the program's question.
        if nfds % 64 != 0 {
            if let Some(last) = set.last_mut() {
                *last &= (1u64 << (nfds % 64)) - 1;
            }
        }
    }

    let mut entries = Vec::new();
    for fd in 0..nfds {
        let (word, bit) = ((fd / 64) as usize, 1u64 << (fd % 64));
        let [read, write, except] = [0, 1, 2].map(|set| bits[set][word] & bit != 0);
        if !(read || write || except) {
            continue;
        }
        if kernel.files.get(fd).is_err() {
            return Err(Errno::EBADF);
        }
        let events = (if read { POLLIN } else { 0 })
            | (if write { POLLOUT } else { 0 })
            | (if except { POLLPRI } else { 0 });
        entries.push(PollFd { fd: fd as i32, events, revents: 0 });
    }
    poll_entries(kernel, &mut entries, timeout_ms)?;

    for set in &mut bits {
        set.fill(0);
    }
    let mut ready = 0;
    for entry in &entries {
        let (word, bit) = ((entry.fd / 64) as usize, 1u64 << (entry.fd % 64));
        let answers = [
            entry.events & POLLIN != 0 && entry.revents & (POLLIN | POLLHUP | POLLERR) != 0,
            entry.events & POLLOUT != 0 && entry.revents & (POLLOUT | POLLERR) != 0,
            entry.events & POLLPRI != 0 && entry.revents & POLLPRI != 0,
        ];
        for (set, answer) in bits.iter_mut().zip(answers) {
            if answer {
                set[word] |= bit;
                ready += 1;
            }
        }
    }
    for (set, &address) in bits.iter().zip(&sets) {
        if address != 0 {
            kernel.space.copy_to_user(&mut kernel.frames, address, set.as_slice().as_bytes())?;
        }
    }
    Ok(ready)
}

/// `getrandom`: the host's `getrandom` fills the program's buffer in place, one request.
///
/// Deliberately not an in-guest CSPRNG: generating bytes is bulk work, and on PVM hosts
/// ring 0 is interpreted (a ChaCha20 block is over a thousand instructions, ~0.5 ms there)
/// while one ring round trip costs about one exit (~9 µs). RDRAND would also store into the
/// program's pages from ring 0, which this kernel never does.
pub fn getrandom(kernel: &mut Kernel, buf: u64, len: u64, flags: u64) -> SysResult {
    if flags & !0x7 != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let mut pieces = Pieces::new();
    if !pieces.gather(kernel, buf, len, true, MAX_CHUNK) {
        return Err(Errno::EFAULT);
    }
    pieces.call(kernel, Opcode::Random, [0; 4])
}
