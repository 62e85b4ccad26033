//! File-descriptor syscalls. The only files so far are the VMM's stdin, stdout and stderr: their
//! data moves over the ring, straight between the host fd and the program's pages (the kernel
//! only names the pages). Everything else about fds (the table, dup, fcntl, close-on-exec) is
//! answered here.

use alloc::vec::Vec;

use shim_abi::{HostStat, Opcode, PollFd, MAX_SG_PER_REQUEST, PAGE_SIZE, TCGETS, TIOCGWINSZ};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::errno::{Errno, SysResult};
use crate::mm::phys_to_virt;
use crate::process::{FdEntry, Kernel, OpenFile, GID, UID};
use crate::ring;

/// Most bytes one read or one chunk of a write moves (one request).
const MAX_CHUNK: u64 = MAX_SG_PER_REQUEST as u64 * PAGE_SIZE;
/// Most iovecs a `readv`/`writev` takes (Linux's `UIO_MAXIOV`).
const UIO_MAXIOV: u64 = 1024;

const O_CLOEXEC: u64 = 0o2000000;
const FD_CLOEXEC: u64 = 1;
const AT_EMPTY_PATH: u64 = 0x1000;

/// The guest-physical pieces of a user buffer, gathered before the ring is taken (gathering
/// may fault pages in, which may need the ring to recycle frames).
struct Pieces {
    list: Vec<(u64, u64)>,
    bytes: u64,
}

impl Pieces {
    fn new() -> Self {
        Self { list: Vec::new(), bytes: 0 }
    }

    /// Adds `[virt, virt + len)`, cut at `limit` bytes in total. Returns false if a page of the
    /// (cut) range is inaccessible: like Linux on pipes and terminals, such a call then fails
    /// with `EFAULT` as a whole and moves no data.
    fn gather(&mut self, kernel: &mut Kernel, virt: u64, len: u64, write: bool, limit: u64) -> bool {
        let wanted = len.min(limit - self.bytes);
        let list = &mut self.list;
        let covered = kernel.space.user_pieces(&mut kernel.frames, virt, wanted, write, |gpa, n| {
            if let Some(last) = list.last_mut() {
                if last.0 + last.1 == gpa {
                    last.1 += n;
                    return true;
                }
            }
            if list.len() == MAX_SG_PER_REQUEST as usize {
                return false;
            }
            list.push((gpa, n));
            true
        });
        self.bytes += covered;
        covered == wanted
    }

    /// Sends one request over these pieces.
    fn call(&self, opcode: Opcode, args: [u64; 4]) -> SysResult {
        ring::with_ring(|ring| {
            let mut sg = ring.sg_list(self.list.len() as u32);
            for &(gpa, len) in &self.list {
                sg.push(gpa, len);
            }
            ring.call_checked(opcode, args, Some(&sg))
        })
    }
}

/// Linux raises SIGPIPE on a write to a pipe with no reader, unless the program ignores it.
fn check_broken_pipe(kernel: &Kernel, result: SysResult) -> SysResult {
    const SIGPIPE: u64 = 13;
    const SIG_IGN: u64 = 1;
    if result == Err(Errno(crate::errno::EPIPE))
        && kernel.signals.actions[SIGPIPE as usize - 1].handler != SIG_IGN
    {
        crate::process::end_program(shim_abi::ExitKind::Signal, SIGPIPE, 0, 0);
    }
    result
}

fn host_fd(kernel: &Kernel, fd: u64) -> Result<u8, Errno> {
    match kernel.files.get(fd)?.file {
        OpenFile::HostStdio(host) => Ok(host),
    }
}

pub fn read(kernel: &mut Kernel, fd: u64, buf: u64, count: u64) -> SysResult {
    let host = host_fd(kernel, fd)?;
    if count == 0 {
        return Ok(0);
    }
    let mut pieces = Pieces::new();
    if !pieces.gather(kernel, buf, count, true, MAX_CHUNK) {
        return Err(Errno::EFAULT);
    }
    pieces.call(Opcode::Read, [u64::from(host), 0, 0, 0])
}

pub fn pread64(kernel: &mut Kernel, fd: u64, buf: u64, count: u64, offset: u64) -> SysResult {
    let host = host_fd(kernel, fd)?;
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if count == 0 {
        return Ok(0);
    }
    let mut pieces = Pieces::new();
    if !pieces.gather(kernel, buf, count, true, MAX_CHUNK) {
        return Err(Errno::EFAULT);
    }
    pieces.call(Opcode::Pread, [u64::from(host), offset, 0, 0])
}

pub fn write(kernel: &mut Kernel, fd: u64, buf: u64, count: u64) -> SysResult {
    let host = host_fd(kernel, fd)?;
    let mut done = 0;
    while done < count {
        let mut pieces = Pieces::new();
        if !pieces.gather(kernel, buf + done, count - done, false, MAX_CHUNK) {
            return if done > 0 { Ok(done) } else { Err(Errno::EFAULT) };
        }
        match check_broken_pipe(kernel, pieces.call(Opcode::Write, [u64::from(host), 0, 0, 0])) {
            Ok(written) => {
                done += written;
                if written < pieces.bytes {
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
        total = total.checked_add(iovec.len).filter(|&t| t <= i64::MAX as u64).ok_or(Errno::EINVAL)?;
    }
    Ok(iovecs)
}

fn vectored(kernel: &mut Kernel, fd: u64, iov: u64, count: u64, write: bool) -> SysResult {
    let host = host_fd(kernel, fd)?;
    let iovecs = read_iovecs(kernel, iov, count)?;
    let mut pieces = Pieces::new();
    for iovec in &iovecs {
        if pieces.bytes == MAX_CHUNK {
            break;
        }
        if !pieces.gather(kernel, iovec.base, iovec.len, !write, MAX_CHUNK) {
            return Err(Errno::EFAULT);
        }
    }
    if pieces.bytes == 0 {
        return Ok(0);
    }
    let opcode = if write { Opcode::Write } else { Opcode::Read };
    check_broken_pipe(kernel, pieces.call(opcode, [u64::from(host), 0, 0, 0]))
}

pub fn readv(kernel: &mut Kernel, fd: u64, iov: u64, count: u64) -> SysResult {
    vectored(kernel, fd, iov, count, false)
}

pub fn writev(kernel: &mut Kernel, fd: u64, iov: u64, count: u64) -> SysResult {
    vectored(kernel, fd, iov, count, true)
}

pub fn close(kernel: &mut Kernel, fd: u64) -> SysResult {
    let entry = kernel.files.remove(fd)?;
    if !kernel.files.is_open(entry.file) {
        let OpenFile::HostStdio(host) = entry.file;
        ring::with_ring(|ring| ring.post(Opcode::Close, [u64::from(host), 0, 0, 0], None));
    }
    Ok(0)
}

pub fn lseek(kernel: &mut Kernel, fd: u64) -> SysResult {
    host_fd(kernel, fd)?;
    // Seeking the host's stdio is not forwarded: pipes and terminals can't seek anyway.
    Err(Errno::ESPIPE)
}

// ---------------------------------------------------------------------------------------------
// stat
// ---------------------------------------------------------------------------------------------

/// Linux x86-64 `struct stat`.
#[repr(C)]
#[derive(Default, FromBytes, IntoBytes, Immutable)]
struct Stat {
    dev: u64,
    ino: u64,
    nlink: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    _pad0: u32,
    rdev: u64,
    size: i64,
    blksize: i64,
    blocks: i64,
    times: [i64; 6],
    _unused: [i64; 3],
}

/// Linux `struct statx` (256 bytes).
#[repr(C)]
#[derive(Default, FromBytes, IntoBytes, Immutable)]
struct Statx {
    mask: u32,
    blksize: u32,
    attributes: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    mode: u16,
    _pad0: u16,
    ino: u64,
    size: u64,
    blocks: u64,
    attributes_mask: u64,
    times: [u64; 8],
    rdev_major: u32,
    rdev_minor: u32,
    dev_major: u32,
    dev_minor: u32,
    _spare: [u64; 14],
}

fn host_stat(kernel: &mut Kernel, fd: u64) -> Result<HostStat, Errno> {
    let host = host_fd(kernel, fd)?;
    let scratch = kernel.scratch_gpa;
    ring::with_ring(|ring| ring.call_checked(Opcode::Fstat, [u64::from(host), scratch, 0, 0], None))?;
    // SAFETY: the scratch frame is kernel-owned; the host just wrote a HostStat there.
    Ok(unsafe { phys_to_virt(scratch).cast::<HostStat>().read_volatile() })
}

pub fn fstat(kernel: &mut Kernel, fd: u64, buf: u64) -> SysResult {
    let host = host_stat(kernel, fd)?;
    let stat = Stat {
        dev: host.dev,
        ino: host.ino,
        nlink: 1,
        mode: host.mode,
        uid: UID as u32,
        gid: GID as u32,
        rdev: host.rdev,
        size: host.size,
        blksize: host.blksize,
        blocks: (host.size + 511) / 512,
        ..Stat::default()
    };
    kernel.space.write_user(&mut kernel.frames, buf, &stat)?;
    Ok(0)
}

/// True if the user string at `path` is empty (its first byte is NUL).
fn path_is_empty(kernel: &mut Kernel, path: u64) -> Result<bool, Errno> {
    let first: u8 = kernel.space.read_user(&mut kernel.frames, path)?;
    Ok(first == 0)
}

pub fn newfstatat(kernel: &mut Kernel, dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    if path_is_empty(kernel, path)? {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        return fstat(kernel, dirfd, buf);
    }
    // No file system yet: nothing exists at any path.
    Err(Errno::ENOENT)
}

pub fn statx(kernel: &mut Kernel, dirfd: u64, path: u64, flags: u64, _mask: u64, buf: u64) -> SysResult {
    if !path_is_empty(kernel, path)? {
        return Err(Errno::ENOENT);
    }
    if flags & AT_EMPTY_PATH == 0 {
        return Err(Errno::ENOENT);
    }
    let host = host_stat(kernel, dirfd)?;
    let statx = Statx {
        mask: 0x7ff, // STATX_BASIC_STATS
        blksize: u32::try_from(host.blksize).unwrap_or(4096),
        nlink: 1,
        uid: UID as u32,
        gid: GID as u32,
        mode: host.mode as u16,
        ino: host.ino,
        size: host.size as u64,
        blocks: (host.size as u64).div_ceil(512),
        rdev_major: ((host.rdev >> 8) & 0xfff) as u32,
        rdev_minor: ((host.rdev & 0xff) | ((host.rdev >> 12) & 0xfff00)) as u32,
        ..Statx::default()
    };
    kernel.space.write_user(&mut kernel.frames, buf, &statx)?;
    Ok(0)
}

pub fn stat_path(kernel: &mut Kernel, path: u64) -> SysResult {
    path_is_empty(kernel, path)?;
    Err(Errno::ENOENT)
}

pub fn open(_kernel: &mut Kernel) -> SysResult {
    // No file system yet: every path is missing.
    Err(Errno::ENOENT)
}

pub fn access(_kernel: &mut Kernel) -> SysResult {
    Err(Errno::ENOENT)
}

pub fn readlink(_kernel: &mut Kernel) -> SysResult {
    Err(Errno::ENOENT)
}

pub fn pipe() -> SysResult {
    // In-guest pipes are not implemented yet.
    Err(Errno::ENOSYS)
}

// ---------------------------------------------------------------------------------------------
// ioctl, poll, getrandom
// ---------------------------------------------------------------------------------------------

const FIONCLEX: u64 = 0x5450;
const FIOCLEX: u64 = 0x5451;

pub fn ioctl(kernel: &mut Kernel, fd: u64, request: u64, arg: u64) -> SysResult {
    let host = host_fd(kernel, fd)?;
    let reply_len = match request {
        TCGETS => 36,
        TIOCGWINSZ => 8,
        FIOCLEX | FIONCLEX => {
            kernel.files.get_mut(fd)?.cloexec = request == FIOCLEX;
            return Ok(0);
        }
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

const POLLNVAL: i16 = 0x20;
/// Most pollfds forwarded in one request (they travel in the scratch page).
const MAX_HOST_POLLFDS: usize = (PAGE_SIZE as usize) / core::mem::size_of::<PollFd>();

pub fn poll(kernel: &mut Kernel, fds: u64, count: u64, timeout_ms: u64) -> SysResult {
    if count > kernel.rlimits[7].0 {
        return Err(Errno::EINVAL);
    }
    let mut entries = alloc::vec![PollFd::default(); count as usize];
    kernel.space.copy_from_user(&mut kernel.frames, fds, entries.as_mut_slice().as_mut_bytes())?;

    let mut ready = 0u64;
    let mut forwarded: Vec<(usize, PollFd)> = Vec::new();
    for (index, entry) in entries.iter_mut().enumerate() {
        entry.revents = 0;
        if entry.fd < 0 {
            continue;
        }
        match host_fd(kernel, entry.fd as u64) {
            Ok(host) => forwarded.push((index, PollFd { fd: i32::from(host), ..*entry })),
            Err(_) => {
                entry.revents = POLLNVAL;
                ready += 1;
            }
        }
    }

    let timeout = timeout_ms as i32;
    if !forwarded.is_empty() && forwarded.len() <= MAX_HOST_POLLFDS {
        let timeout = if ready > 0 { 0 } else { i64::from(timeout) };
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
            let answered = unsafe { phys_to_virt(scratch).cast::<PollFd>().add(slot).read_volatile() };
            entries[*index].revents = answered.revents;
            if answered.revents != 0 {
                ready += 1;
            }
        }
    } else if ready == 0 && timeout != 0 {
        // Nothing can become ready: sleep for the timeout (or until the run's time limit).
        let deadline = if timeout < 0 {
            u64::MAX
        } else {
            kernel.clock.monotonic_ns() + timeout as u64 * 1_000_000
        };
        kernel.clock.sleep_until(deadline);
    }

    kernel.space.copy_to_user(&mut kernel.frames, fds, entries.as_slice().as_bytes())?;
    Ok(ready)
}

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
    pieces.call(Opcode::Random, [0; 4])
}

// ---------------------------------------------------------------------------------------------
// dup and fcntl
// ---------------------------------------------------------------------------------------------

pub fn dup(kernel: &mut Kernel, fd: u64) -> SysResult {
    let entry = kernel.files.get(fd)?;
    kernel.files.insert_from(0, FdEntry { cloexec: false, ..entry })
}

pub fn dup3(kernel: &mut Kernel, old: u64, new: u64, flags: u64, is_dup2: bool) -> SysResult {
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
        if !kernel.files.is_open(replaced.file) {
            let OpenFile::HostStdio(host) = replaced.file;
            ring::with_ring(|ring| ring.post(Opcode::Close, [u64::from(host), 0, 0, 0], None));
        }
    }
    Ok(new)
}

const F_DUPFD: u64 = 0;
const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;
const F_DUPFD_CLOEXEC: u64 = 1030;
/// `F_SETFL` may change O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT, O_NOATIME.
const SETFL_MASK: u64 = 0o2000 | 0o4000 | 0o20000 | 0o40000 | 0o1000000;

pub fn fcntl(kernel: &mut Kernel, fd: u64, command: u64, arg: u64) -> SysResult {
    let entry = kernel.files.get(fd)?;
    match command {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = usize::try_from(arg).map_err(|_| Errno::EINVAL)?;
            let cloexec = command == F_DUPFD_CLOEXEC;
            kernel.files.insert_from(min, FdEntry { cloexec, ..entry })
        }
        F_GETFD => Ok(if entry.cloexec { FD_CLOEXEC } else { 0 }),
        F_SETFD => {
            kernel.files.get_mut(fd)?.cloexec = arg & FD_CLOEXEC != 0;
            Ok(0)
        }
        F_GETFL => Ok(u64::from(entry.status_flags)),
        F_SETFL => {
            let slot = kernel.files.get_mut(fd)?;
            let kept = u64::from(slot.status_flags) & !SETFL_MASK;
            slot.status_flags = (kept | (arg & SETFL_MASK)) as u32;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
