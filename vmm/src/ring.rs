//! The host side of the request ring: on each doorbell, drain the submission queue, check and
//! carry out each request, and post its completion.
//!
//! Nothing the guest wrote is trusted. Indices are bounded, every scatter-gather entry is
//! checked to lie inside guest memory before any byte is touched, sizes are capped, and only
//! the stdio streams exist as fds. A malformed request gets an error completion (`EINVAL`,
//! `EFAULT`, `EBADF`); it never stops the VMM. Only `Exit` and `Panic` end the run.

use std::os::fd::RawFd;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use shim_abi::{
    ClockReading, Completion, ExitKind, Opcode, PollFd, Request, RingHeader, SgEntry,
    CQ_OFFSET, FIRST_FILE_HANDLE, PAGE_SIZE, RING_ENTRIES, RING_GPA,
    MAX_SPLICE_BYTES, SPLICE_AT_POSITION, SQ_OFFSET, TCGETS, TIOCGWINSZ,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::guest_memory;

use crate::files::FileService;
use crate::stats::Stats;
use crate::stdio::Stdio;

/// How a run ended, as reported over the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingEnd {
    Exited(i32),
    Signaled { signal: i32, fault_address: u64, rip: u64 },
    Panicked(String),
}

/// Longest log or panic message accepted from the guest.
const MAX_MESSAGE: u64 = 4096;
/// Most pollfds one `Poll` request may carry.
const MAX_POLLFDS: u64 = PAGE_SIZE / 8;

const EINVAL: i64 = -(libc::EINVAL as i64);
const EFAULT: i64 = -(libc::EFAULT as i64);

pub struct RingService<'a> {
    pub memory: &'a GuestMemoryMmap,
    pub stdio: &'a mut Stdio,
    pub files: &'a mut FileService,
    pub stats: &'a mut Stats,
    /// The run's deadline, which bounds every blocking host call.
    pub deadline: Option<Instant>,
    /// When the guest read the clock at boot (pairs the guest TSC with host time).
    pub clock_read_at: Option<Instant>,
}

impl RingService<'_> {
    /// Handles everything submitted since the last doorbell.
    pub fn process(&mut self) -> Result<Option<RingEnd>, String> {
        let header: RingHeader = guest_memory::read(self.memory, RING_GPA)?;
        let pending = header.sq_tail.wrapping_sub(header.sq_head);
        if pending > RING_ENTRIES {
            return Err(format!(
                "the guest's submission queue is corrupt (head {}, tail {})",
                header.sq_head, header.sq_tail
            ));
        }

        let mut sq_head = header.sq_head;
        let mut cq_tail = header.cq_tail;
        let mut end = None;
        while sq_head != header.sq_tail {
            let slot = u64::from(sq_head % RING_ENTRIES);
            let request: Request = guest_memory::read(self.memory, RING_GPA + SQ_OFFSET + slot * 64)?;
            sq_head = sq_head.wrapping_add(1);

            let result = match self.handle(&request) {
                Handled::Result(result) => result,
                Handled::End(reason) => {
                    end = Some(reason);
                    break;
                }
            };
            let completion = Completion { user_data: request.user_data, result };
            let slot = u64::from(cq_tail % RING_ENTRIES);
            guest_memory::write(self.memory, RING_GPA + CQ_OFFSET + slot * 16, &completion)?;
            cq_tail = cq_tail.wrapping_add(1);
        }

        let mut header_now: RingHeader = guest_memory::read(self.memory, RING_GPA)?;
        header_now.sq_head = sq_head;
        header_now.cq_tail = cq_tail;
        guest_memory::write(self.memory, RING_GPA, &header_now)?;
        Ok(end)
    }

    fn handle(&mut self, request: &Request) -> Handled {
        let Some(opcode) = Opcode::from_u32(request.opcode) else {
            self.stats.count_request("invalid");
            return Handled::Result(EINVAL);
        };
        self.stats.count_request(opcode_name(opcode));
        let [a0, a1, a2, a3] = request.args;
        let on_file = a0 >= FIRST_FILE_HANDLE;
        let result = match opcode {
            Opcode::Write | Opcode::Read | Opcode::Pread if on_file => {
                let moved = self.files.handle(self.memory, request);
                self.stats.ring_bytes += u64::try_from(moved).unwrap_or(0);
                moved
            }
            Opcode::Pwrite if !on_file => {
                let Ok(offset) = i64::try_from(a1) else { return Handled::Result(EINVAL) };
                self.with_buffers(request, |service, buffers| {
                    let buffers: Vec<&[u8]> = buffers.iter().map(|b| &**b).collect();
                    service.stdio.pwrite(a0, &buffers, offset)
                })
            }
            Opcode::Pwrite | Opcode::Getdents => {
                let moved = self.files.handle(self.memory, request);
                self.stats.ring_bytes += u64::try_from(moved).unwrap_or(0);
                moved
            }
            Opcode::Fstat | Opcode::Close if on_file => self.files.handle(self.memory, request),
            Opcode::Open
            | Opcode::Seek
            | Opcode::Stat
            | Opcode::Mkdir
            | Opcode::Unlink
            | Opcode::Rename
            | Opcode::Link
            | Opcode::Symlink
            | Opcode::Readlink
            | Opcode::Access
            | Opcode::Ftruncate
            | Opcode::Fsync
            | Opcode::Chmod
            | Opcode::Utimens
            | Opcode::Statfs
            | Opcode::SetAppend
            | Opcode::FindExit => self.files.handle(self.memory, request),
            Opcode::Copy => self.copy(request, a0),
            Opcode::Splice => self.splice(a0, a1, a2, a3),
            Opcode::Zero => self.with_buffers(request, |_, buffers| {
                let mut total = 0;
                for buffer in buffers.iter_mut() {
                    buffer.fill(0);
                    total += buffer.len();
                }
                total as i64
            }),
            Opcode::Write => self.with_buffers(request, |service, buffers| {
                let buffers: Vec<&[u8]> = buffers.iter().map(|b| &**b).collect();
                service.stdio.write(a0, &buffers)
            }),
            Opcode::Read => {
                self.with_buffers(request, |service, buffers| service.stdio.read(a0, buffers, None))
            }
            Opcode::Pread => {
                let Ok(offset) = i64::try_from(a1) else { return Handled::Result(EINVAL) };
                self.with_buffers(request, |service, buffers| {
                    service.stdio.read(a0, buffers, Some(offset))
                })
            }
            Opcode::Fstat => match self.stdio.stat(a0) {
                Ok(stat) => self.put(a1, &stat),
                Err(errno) => errno,
            },
            Opcode::Ioctl => self.ioctl(a0, a1, a2),
            Opcode::Poll => self.poll(a0, a1, a2 as i64),
            Opcode::Close => {
                self.stdio.close(a0);
                0
            }
            Opcode::Log => {
                let message = self.message(request);
                let level = match a0 {
                    1 => log::Level::Error,
                    2 => log::Level::Warn,
                    3 => log::Level::Info,
                    4 => log::Level::Debug,
                    _ => log::Level::Trace,
                };
                log::log!(target: "guest", level, "guest: {message}");
                0
            }
            Opcode::Exit => {
                let code = i32::try_from(a1).unwrap_or(i32::MAX);
                return Handled::End(if a0 == ExitKind::Signal as u64 {
                    RingEnd::Signaled { signal: code, fault_address: a2, rip: a3 }
                } else {
                    RingEnd::Exited(code & 0xff)
                });
            }
            Opcode::Panic => return Handled::End(RingEnd::Panicked(self.message(request))),
            Opcode::ReadClock => {
                self.clock_read_at.get_or_insert_with(Instant::now);
                let realtime = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                let reading = ClockReading {
                    realtime_ns: realtime.as_nanos() as u64,
                    monotonic_ns: monotonic_ns(),
                };
                self.put(a0, &reading)
            }
            Opcode::Random => self.with_buffers(request, |_, buffers| {
                let mut total = 0;
                for buffer in buffers.iter_mut() {
                    crate::loader::getrandom_host(buffer);
                    total += buffer.len();
                }
                total as i64
            }),
            Opcode::DiscardFrames => self.discard(request),
        };
        Handled::Result(result)
    }

    /// Checks the request's scatter-gather list and runs `f` over the guest buffers it names.
    fn with_buffers(
        &mut self,
        request: &Request,
        f: impl FnOnce(&mut Self, &mut [&mut [u8]]) -> i64,
    ) -> i64 {
        let entries = match self.sg_entries(request) {
            Ok(entries) => entries,
            Err(errno) => return errno,
        };
        let memory = self.memory;
        let mut buffers: Vec<&mut [u8]> = Vec::with_capacity(entries.len());
        for entry in &entries {
            match guest_buffer(memory, entry) {
                Some(buffer) => buffers.push(buffer),
                None => return EFAULT,
            }
        }
        let result = f(self, &mut buffers);
        if result > 0 {
            self.stats.ring_bytes += result as u64;
        }
        result
    }

    /// The SG entries of `request`, bounded in count and total size.
    fn sg_entries(&self, request: &Request) -> Result<Vec<SgEntry>, i64> {
        guest_memory::sg_list(self.memory, request).map_err(|errno| -i64::from(errno))
    }

    /// The UTF-8 (lossy) message named by the SG list, capped at [`MAX_MESSAGE`] bytes.
    fn message(&mut self, request: &Request) -> String {
        let Ok(entries) = self.sg_entries(request) else { return "<bad message>".to_string() };
        let mut text = Vec::new();
        for entry in entries {
            let len = entry.len.min(MAX_MESSAGE - text.len() as u64);
            let mut chunk = vec![0u8; len as usize];
            if self.memory.read_slice(&mut chunk, GuestAddress(entry.gpa)).is_err() {
                return "<message outside guest memory>".to_string();
            }
            text.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&text).replace(|c: char| c.is_control() && c != '\t', " ")
    }

    /// Writes `value` at guest address `gpa`; 0 or `EFAULT`.
    fn put<T: zerocopy::IntoBytes + zerocopy::Immutable>(&self, gpa: u64, value: &T) -> i64 {
        match guest_memory::write(self.memory, gpa, value) {
            Ok(()) => 0,
            Err(_) => EFAULT,
        }
    }

    fn ioctl(&mut self, fd: u64, request: u64, reply_gpa: u64) -> i64 {
        let len = match request {
            TCGETS => 36,
            TIOCGWINSZ => 8,
            _ => return -i64::from(libc::ENOTTY),
        };
        let mut reply = [0u8; 64];
        let result = self.stdio.terminal_ioctl(fd, request, &mut reply);
        if result < 0 {
            return result;
        }
        match self.memory.write_slice(&reply[..len], GuestAddress(reply_gpa)) {
            Ok(()) => 0,
            Err(_) => EFAULT,
        }
    }

    fn poll(&mut self, array_gpa: u64, count: u64, timeout_ms: i64) -> i64 {
        if count > MAX_POLLFDS {
            return EINVAL;
        }
        let mut fds = vec![PollFd::default(); count as usize];
        for (index, entry) in fds.iter_mut().enumerate() {
            let at = array_gpa.wrapping_add(index as u64 * 8);
            match guest_memory::read(self.memory, at) {
                Ok(value) => *entry = value,
                Err(_) => return EFAULT,
            }
        }
        let timeout = self.bounded_timeout_ms(timeout_ms);
        let ready = self.stdio.poll(&mut fds, timeout);
        for (index, entry) in fds.iter().enumerate() {
            if guest_memory::write(self.memory, array_gpa + index as u64 * 8, entry).is_err() {
                return EFAULT;
            }
        }
        ready
    }

    /// A poll timeout in ms that ends no later than the run's deadline.
    fn bounded_timeout_ms(&self, requested: i64) -> i32 {
        let left = self.deadline.map(|deadline| {
            deadline.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128)
                as i64
        });
        let wanted = if requested < 0 { i64::from(i32::MAX) } else { requested };
        match left {
            Some(left) => wanted.min(left) as i32,
            None if requested < 0 => -1,
            None => wanted.min(i64::from(i32::MAX)) as i32,
        }
    }

    /// `Opcode::Splice`: file handle (or stdin) `input` to file handle or stdio stream
    /// `output` with the host's `sendfile`, within `--max-output` for stdout and stderr.
    fn splice(&mut self, input: u64, output: u64, count: u64, offset: u64) -> i64 {
        let count = count.min(MAX_SPLICE_BYTES);
        let in_fd = if input >= FIRST_FILE_HANDLE {
            match self.files.readable_fd(input) {
                Ok(fd) => fd,
                Err(errno) => return errno.completion(),
            }
        } else {
            // Only stdin, and only when it is a host fd: the host kernel then decides.
            let Some(fd) = self.stdio.host_fd(input).filter(|_| input == 0) else { return EINVAL };
            fd
        };
        let offset = match offset {
            SPLICE_AT_POSITION => None,
            offset => match i64::try_from(offset) {
                Ok(offset) => Some(offset),
                Err(_) => return EINVAL,
            },
        };
        let moved = if output >= FIRST_FILE_HANDLE {
            match self.files.writable_fd(output) {
                Ok(out_fd) => sendfile(out_fd, in_fd, offset, count),
                Err(errno) => errno.completion(),
            }
        } else {
            let Some(out_fd) = self.stdio.host_fd(output).filter(|_| output != 0) else {
                return EINVAL;
            };
            match self.stdio.output_room(count) {
                Ok(room) => {
                    let moved = sendfile(out_fd, in_fd, offset, room);
                    self.stdio.output_taken(moved);
                    moved
                }
                Err(errno) => errno,
            }
        };
        if moved > 0 {
            self.stats.ring_bytes += moved as u64;
        }
        moved
    }

    /// Copies guest memory to guest memory: the first `sources` SG entries are read, the rest
    /// written, in order. Overlapping ranges are copied as if through a buffer.
    fn copy(&mut self, request: &Request, sources: u64) -> i64 {
        let Ok(split) = u32::try_from(sources) else { return EINVAL };
        let (from, to) = match guest_memory::sg_list_split(self.memory, request, split) {
            Ok(groups) => groups,
            Err(errno) => return -i64::from(errno),
        };
        let total: u64 = from.iter().map(|e| e.len).sum();
        if total != to.iter().map(|e| e.len).sum::<u64>() {
            return EINVAL;
        }
        let mut bytes = Vec::with_capacity(total as usize);
        for entry in &from {
            let Some(buffer) = guest_buffer(self.memory, entry) else { return EFAULT };
            bytes.extend_from_slice(buffer);
        }
        let mut offset = 0;
        for entry in &to {
            let Some(buffer) = guest_buffer(self.memory, entry) else { return EFAULT };
            let len = buffer.len();
            buffer.copy_from_slice(&bytes[offset..offset + len]);
            offset += len;
        }
        self.stats.ring_bytes += total;
        total as i64
    }

    /// Drops the host's copy of freed guest frames: they read as zero afterwards.
    fn discard(&mut self, request: &Request) -> i64 {
        let entries = match self.sg_entries(request) {
            Ok(entries) => entries,
            Err(errno) => return errno,
        };
        for entry in &entries {
            if entry.gpa % PAGE_SIZE != 0 || entry.len % PAGE_SIZE != 0 {
                return EINVAL;
            }
            let Some(buffer) = guest_buffer(self.memory, entry) else { return EFAULT };
            if buffer.is_empty() {
                continue;
            }
            // SAFETY: the range is page-aligned guest memory owned by this sandbox (checked by
            // `guest_buffer`); MADV_DONTNEED on a private anonymous mapping only makes those
            // pages read as zero again.
            let result = unsafe {
                libc::madvise(buffer.as_mut_ptr().cast(), buffer.len(), libc::MADV_DONTNEED)
            };
            if result < 0 {
                return last_error_completion();
            }
        }
        0
    }
}

/// The completion for the host call that just failed: its errno, negated.
fn last_error_completion() -> i64 {
    -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

/// The host view of one guest range, if it lies wholly inside guest memory.
fn guest_buffer<'m>(memory: &'m GuestMemoryMmap, entry: &SgEntry) -> Option<&'m mut [u8]> {
    let pointer = guest_memory::host_range(memory, entry.gpa, entry.len)?;
    let len = usize::try_from(entry.len).ok()?;
    // SAFETY: `host_range` checked that the range lies inside one region of guest memory,
    // which lives as long as `memory` (or is empty, with a dangling but aligned pointer); the
    // vCPU is stopped while requests are handled (this thread runs it), so nothing else
    // touches these bytes meanwhile, and the slice is dropped before the vCPU resumes.
    Some(unsafe { std::slice::from_raw_parts_mut(pointer, len) })
}

enum Handled {
    Result(i64),
    End(RingEnd),
}

fn opcode_name(opcode: Opcode) -> &'static str {
    match opcode {
        Opcode::Write => "write",
        Opcode::Read => "read",
        Opcode::Pread => "pread",
        Opcode::Fstat => "fstat",
        Opcode::Ioctl => "ioctl",
        Opcode::Poll => "poll",
        Opcode::Close => "close",
        Opcode::Log => "log",
        Opcode::Exit => "exit",
        Opcode::Panic => "panic",
        Opcode::ReadClock => "read-clock",
        Opcode::Random => "random",
        Opcode::DiscardFrames => "discard-frames",
        Opcode::Open => "open",
        Opcode::Pwrite => "pwrite",
        Opcode::Seek => "seek",
        Opcode::Stat => "stat",
        Opcode::Getdents => "getdents",
        Opcode::Mkdir => "mkdir",
        Opcode::Unlink => "unlink",
        Opcode::Rename => "rename",
        Opcode::Link => "link",
        Opcode::Symlink => "symlink",
        Opcode::Readlink => "readlink",
        Opcode::Access => "access",
        Opcode::Ftruncate => "ftruncate",
        Opcode::Fsync => "fsync",
        Opcode::Chmod => "chmod",
        Opcode::Utimens => "utimens",
        Opcode::Statfs => "statfs",
        Opcode::Copy => "copy",
        Opcode::Zero => "zero",
        Opcode::Splice => "splice",
        Opcode::SetAppend => "set-append",
        Opcode::FindExit => "find-exit",
    }
}

/// Host `sendfile` until `count` bytes moved, the input ended or a call failed (`offset`:
/// read there and leave the input's position alone). A pipe takes only what fits in it per
/// call, so the loop saves the guest a request per pipe-full. Result: bytes, or the errno
/// of a first call that failed.
fn sendfile(out_fd: RawFd, in_fd: RawFd, offset: Option<i64>, count: u64) -> i64 {
    let mut at = offset.unwrap_or(0);
    let mut total: u64 = 0;
    while total < count {
        let at_pointer = match offset {
            Some(_) => &mut at as *mut i64,
            None => std::ptr::null_mut(),
        };
        let left = usize::try_from(count - total).unwrap_or(usize::MAX);
        // SAFETY: both fds are open (owned by the handle table or stdio for this call); the
        // offset pointer is null or points at a local; no guest memory is involved.
        let moved = unsafe { libc::sendfile(out_fd, in_fd, at_pointer, left) };
        match u64::try_from(moved) {
            Ok(0) => break,
            Ok(moved) => total += moved,
            Err(_) if total > 0 => break,
            Err(_) => return last_error_completion(),
        }
    }
    total as i64
}

/// The host's `CLOCK_MONOTONIC` in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_numbers_round_trip() {
        for value in 0..=40 {
            if let Some(opcode) = Opcode::from_u32(value) {
                assert_eq!(opcode as u32, value);
                assert!(!opcode_name(opcode).is_empty());
            }
        }
    }
}
