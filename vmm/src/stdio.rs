//! The program's stdin, stdout and stderr as the host sees them: inherited from the VMM's own
//! fds (pipes, files and terminals alike), captured into memory, fed from bytes, or null.

use std::io;
use std::os::fd::RawFd;

use shim_abi::{HostStat, PollFd};

/// Where the program's stdin comes from.
#[derive(Debug, Clone, Default)]
pub enum Input {
    /// The VMM's own stdin.
    #[default]
    Inherit,
    /// Empty: reads return end of file.
    Null,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// No stdin: the program starts with fd 0 closed (`EBADF`), as a process started with
    /// `<&-` does.
    Closed,
}

/// Where the program's stdout or stderr goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Output {
    /// The VMM's own stdout/stderr.
    #[default]
    Inherit,
    /// Discarded.
    Null,
    /// Collected into [`crate::RunOutcome`].
    Capture,
    /// None: the program starts with the fd closed, as a process started with `>&-` does.
    Closed,
}

enum Stream {
    Host(RawFd),
    Null,
    InputBytes { bytes: Vec<u8>, position: usize },
    Captured(Vec<u8>),
    Closed,
}

/// The three streams of one sandbox.
pub struct Stdio {
    streams: [Stream; 3],
    /// What stdout and stderr may still take together (`--max-output`), if limited.
    output_left: Option<u64>,
    /// The size of the write refused at the limit, once one was.
    output_refused: Option<u64>,
}

const S_IFIFO: u32 = 0o010000;
const S_IFCHR: u32 = 0o020000;
const POLLIN: i16 = 0x1;
const POLLOUT: i16 = 0x4;
const POLLNVAL: i16 = 0x20;

fn errno(error: &io::Error) -> i64 {
    -i64::from(error.raw_os_error().unwrap_or(libc::EIO))
}

impl Stdio {
    pub fn new(stdin: Input, stdout: Output, stderr: Output) -> Self {
        let input = match stdin {
            Input::Inherit => Stream::Host(0),
            Input::Null => Stream::Null,
            Input::Bytes(bytes) => Stream::InputBytes { bytes, position: 0 },
            Input::Closed => Stream::Closed,
        };
        let output = |choice: Output, fd: RawFd| match choice {
            Output::Inherit => Stream::Host(fd),
            Output::Null => Stream::Null,
            Output::Capture => Stream::Captured(Vec::new()),
            Output::Closed => Stream::Closed,
        };
        Self {
            streams: [input, output(stdout, 1), output(stderr, 2)],
            output_left: None,
            output_refused: None,
        }
    }

    /// Limits the bytes stdout and stderr take together, as `RLIMIT_FSIZE` limits a file: the
    /// write that crosses the limit is cut short, the next one is refused (`EFBIG`) and ends
    /// the run ([`Stdio::output_refused`]).
    pub fn limit_output(&mut self, bytes: u64) {
        self.output_left = Some(bytes);
    }

    /// The size of the write refused at `--max-output`, once the program reached it.
    pub fn output_refused(&self) -> Option<u64> {
        self.output_refused
    }

    fn stream(&mut self, fd: u64) -> Option<&mut Stream> {
        self.streams.get_mut(usize::try_from(fd).ok()?).filter(|s| !matches!(s, Stream::Closed))
    }

    /// Writes the buffers (guest memory already checked) to stdout or stderr.
    pub fn write(&mut self, fd: u64, buffers: &[&[u8]]) -> i64 {
        self.write_at(fd, buffers, None)
    }

    /// `pwrite` to stdout or stderr: at `offset` of a host file; `ESPIPE` from the host for
    /// a pipe or terminal, and here for captured output; a discarded stream takes it all.
    pub fn pwrite(&mut self, fd: u64, buffers: &[&[u8]], offset: i64) -> i64 {
        self.write_at(fd, buffers, Some(offset))
    }

    fn write_at(&mut self, fd: u64, buffers: &[&[u8]], offset: Option<i64>) -> i64 {
        if fd == 0 {
            return -i64::from(libc::EBADF);
        }
        let total: usize = buffers.iter().map(|b| b.len()).sum();
        if self.stream(fd).is_none() {
            return -i64::from(libc::EBADF);
        }
        if self.output_left.is_none() {
            return self.write_unlimited(fd, buffers, offset);
        }

        // The output limit: cut the buffers at what is left, refuse a write when none is.
        let room = match self.output_room(total as u64) {
            Ok(room) => room,
            Err(errno) => return errno,
        };
        let mut room = usize::try_from(room).unwrap_or(usize::MAX);
        let mut within = Vec::with_capacity(buffers.len());
        for buffer in buffers {
            let take = buffer.len().min(room);
            within.push(&buffer[..take]);
            room -= take;
        }
        let written = self.write_unlimited(fd, &within, offset);
        self.output_taken(written);
        written
    }

    /// The host fd stdio stream `fd` is read from or written to, if it is one (not given
    /// bytes, captured, discarded or closed).
    pub fn host_fd(&mut self, fd: u64) -> Option<RawFd> {
        match self.stream(fd) {
            Some(Stream::Host(host_fd)) => Some(*host_fd),
            _ => None,
        }
    }

    /// How much of `count` bytes of output `--max-output` lets through, or `EFBIG` (and the
    /// run ends) when nothing is left.
    pub fn output_room(&mut self, count: u64) -> Result<u64, i64> {
        match self.output_left {
            Some(0) if count > 0 => {
                self.output_refused = Some(count);
                Err(-i64::from(libc::EFBIG))
            }
            Some(left) => Ok(count.min(left)),
            None => Ok(count),
        }
    }

    /// Counts `moved` bytes (a result: negative moved nothing) against `--max-output`.
    pub fn output_taken(&mut self, moved: i64) {
        if let (Some(left), Ok(moved)) = (self.output_left, u64::try_from(moved)) {
            self.output_left = Some(left.saturating_sub(moved));
        }
    }

    fn write_unlimited(&mut self, fd: u64, buffers: &[&[u8]], offset: Option<i64>) -> i64 {
        let total: usize = buffers.iter().map(|b| b.len()).sum();
        match self.stream(fd) {
            None => -i64::from(libc::EBADF),
            Some(Stream::Null) => total as i64,
            Some(Stream::Captured(_)) if offset.is_some() => -i64::from(libc::ESPIPE),
            Some(Stream::Host(host_fd)) if offset.is_some() => {
                pwrite_host(*host_fd, buffers, offset.unwrap_or_default())
            }
            Some(Stream::Captured(sink)) => {
                for buffer in buffers {
                    sink.extend_from_slice(buffer);
                }
                total as i64
            }
            Some(Stream::Host(host_fd)) => write_all_host(*host_fd, buffers),
            Some(_) => -i64::from(libc::EBADF),
        }
    }

    /// Reads from stdin into the buffers; one host read at most.
    pub fn read(&mut self, fd: u64, buffers: &mut [&mut [u8]], offset: Option<i64>) -> i64 {
        if fd != 0 {
            return -i64::from(libc::EBADF);
        }
        match self.stream(fd) {
            None => -i64::from(libc::EBADF),
            Some(Stream::Null) => 0,
            Some(Stream::InputBytes { bytes, position }) => {
                if offset.is_some() {
                    return -i64::from(libc::ESPIPE);
                }
                let mut done = 0;
                for buffer in buffers.iter_mut() {
                    let take = buffer.len().min(bytes.len() - *position);
                    buffer[..take].copy_from_slice(&bytes[*position..*position + take]);
                    *position += take;
                    done += take;
                }
                done as i64
            }
            Some(Stream::Host(host_fd)) => {
                let iovecs: Vec<libc::iovec> = buffers
                    .iter_mut()
                    .map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() })
                    .collect();
                let count = iovecs.len().min(1024) as i32;
                // SAFETY: each iovec names a live, writable buffer the caller checked.
                let got = unsafe {
                    match offset {
                        Some(at) => libc::preadv(*host_fd, iovecs.as_ptr(), count, at),
                        None => libc::readv(*host_fd, iovecs.as_ptr(), count),
                    }
                };
                if got < 0 {
                    errno(&io::Error::last_os_error())
                } else {
                    got as i64
                }
            }
            Some(_) => -i64::from(libc::EBADF),
        }
    }

    /// What `fstat` says about the stream.
    pub fn stat(&mut self, fd: u64) -> Result<HostStat, i64> {
        let synthetic = |mode: u32, rdev: u64| HostStat {
            mode: mode | 0o600,
            nlink: 1,
            rdev,
            blksize: 4096,
            uid: crate::loader::PROGRAM_UID as u32,
            gid: crate::loader::PROGRAM_GID as u32,
            ..HostStat::default()
        };
        match self.stream(fd) {
            None => Err(-i64::from(libc::EBADF)),
            Some(Stream::Null) => Ok(synthetic(S_IFCHR | 0o066, (1 << 8) | 3)),
            Some(Stream::InputBytes { .. } | Stream::Captured(_)) => Ok(synthetic(S_IFIFO, 0)),
            Some(Stream::Host(host_fd)) => {
                let mut stat = std::mem::MaybeUninit::<libc::stat>::zeroed();
                // SAFETY: `stat` is a valid out-pointer for fstat.
                if unsafe { libc::fstat(*host_fd, stat.as_mut_ptr()) } < 0 {
                    return Err(errno(&io::Error::last_os_error()));
                }
                // SAFETY: fstat succeeded and filled the structure.
                let stat = unsafe { stat.assume_init() };
                Ok(HostStat {
                    mode: stat.st_mode,
                    nlink: stat.st_nlink as u32,
                    size: stat.st_size,
                    rdev: stat.st_rdev,
                    blksize: stat.st_blksize,
                    ino: stat.st_ino,
                    dev: stat.st_dev,
                    uid: crate::loader::PROGRAM_UID as u32,
                    gid: crate::loader::PROGRAM_GID as u32,
                    blocks: stat.st_blocks,
                    atime_sec: stat.st_atime,
                    atime_nsec: stat.st_atime_nsec,
                    mtime_sec: stat.st_mtime,
                    mtime_nsec: stat.st_mtime_nsec,
                    ctime_sec: stat.st_ctime,
                    ctime_nsec: stat.st_ctime_nsec,
                })
            }
            Some(Stream::Closed) => Err(-i64::from(libc::EBADF)),
        }
    }

    /// `TCGETS` or `TIOCGWINSZ` on the stream: the host terminal's answer, else `ENOTTY`.
    pub fn terminal_ioctl(&mut self, fd: u64, request: u64, reply: &mut [u8]) -> i64 {
        match self.stream(fd) {
            None => -i64::from(libc::EBADF),
            Some(Stream::Host(host_fd)) => {
                // SAFETY: `reply` is large enough for the structure `request` writes (the
                // caller sized it: 36 bytes for TCGETS, 8 for TIOCGWINSZ).
                let result = unsafe { libc::ioctl(*host_fd, request as _, reply.as_mut_ptr()) };
                if result < 0 {
                    errno(&io::Error::last_os_error())
                } else {
                    0
                }
            }
            Some(_) => -i64::from(libc::ENOTTY),
        }
    }

    /// Polls the streams in `fds` (their `fd` fields are stdio numbers) for up to `timeout_ms`.
    pub fn poll(&mut self, fds: &mut [PollFd], timeout_ms: i32) -> i64 {
        let mut host: Vec<libc::pollfd> = Vec::new();
        let mut host_slots = Vec::new();
        let mut ready = 0;
        for (slot, entry) in fds.iter_mut().enumerate() {
            entry.revents = match self.stream(entry.fd as u64) {
                None => POLLNVAL,
                Some(Stream::Host(host_fd)) => {
                    host.push(libc::pollfd { fd: *host_fd, events: entry.events, revents: 0 });
                    host_slots.push(slot);
                    0
                }
                Some(Stream::Null) => entry.events & (POLLIN | POLLOUT),
                Some(Stream::InputBytes { .. }) => entry.events & POLLIN,
                Some(Stream::Captured(_)) => entry.events & POLLOUT,
                Some(Stream::Closed) => POLLNVAL,
            };
            if entry.revents != 0 {
                ready += 1;
            }
        }
        if !host.is_empty() {
            let timeout = if ready > 0 { 0 } else { timeout_ms };
            // SAFETY: `host` is a valid array of pollfd of the given length.
            let result = unsafe { libc::poll(host.as_mut_ptr(), host.len() as libc::nfds_t, timeout) };
            if result < 0 {
                return errno(&io::Error::last_os_error());
            }
            for (entry, slot) in host.iter().zip(host_slots) {
                fds[slot].revents = entry.revents;
                if entry.revents != 0 {
                    ready += 1;
                }
            }
        }
        ready
    }

    /// The program closed its last fd for this stream.
    pub fn close(&mut self, fd: u64) {
        if let Some(stream) = self.stream(fd) {
            // Captured output is kept for the outcome; a host fd is left open for the VMM.
            if !matches!(stream, Stream::Captured(_)) {
                *stream = Stream::Closed;
            }
        }
    }

    /// The captured bytes of stream `fd` (empty if it was not captured).
    pub fn take_captured(&mut self, fd: usize) -> Vec<u8> {
        match &mut self.streams[fd] {
            Stream::Captured(bytes) => std::mem::take(bytes),
            _ => Vec::new(),
        }
    }
}

/// One `pwritev` of the buffers at `offset` (a partial write is returned as such).
fn pwrite_host(fd: RawFd, buffers: &[&[u8]], offset: i64) -> i64 {
    let iovecs: Vec<libc::iovec> = buffers
        .iter()
        .take(1024)
        .map(|b| libc::iovec { iov_base: b.as_ptr().cast_mut().cast(), iov_len: b.len() })
        .collect();
    // SAFETY: each iovec names a live buffer the caller checked; the kernel only reads them.
    let result = unsafe { libc::pwritev(fd, iovecs.as_ptr(), iovecs.len() as i32, offset) };
    if result < 0 {
        errno(&io::Error::last_os_error())
    } else {
        result as i64
    }
}

/// Writes every buffer to `fd`, retrying short writes; returns the bytes written or -errno.
fn write_all_host(fd: RawFd, buffers: &[&[u8]]) -> i64 {
    let mut written: usize = 0;
    for buffer in buffers {
        let mut offset = 0;
        while offset < buffer.len() {
            let rest = &buffer[offset..];
            // SAFETY: `rest` is a live buffer of the given length.
            let result = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if result < 0 {
                // An interruption is the watchdog ending the run (`--timeout`, `--cpu-time`):
                // give up with what was written, so the vCPU loop sees it; retrying would block
                // for good on a pipe nobody reads.
                let error = io::Error::last_os_error();
                return if written + offset > 0 { (written + offset) as i64 } else { errno(&error) };
            }
            offset += result as usize;
        }
        written += buffer.len();
    }
    written as i64
}
