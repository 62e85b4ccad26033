//! The state of the one program this kernel runs: its memory, file descriptors, signal
//! bookkeeping and limits, and how it ends (`exit` or a signal), reported to the VMM.

use alloc::sync::Arc;
use alloc::vec::Vec;

use shim_abi::{ExitKind, Opcode};

use crate::arch::{self, SyscallPath};
use crate::errno::Errno;
use crate::fs::pipe::Pipe;
use crate::fs::tmpfs::{Ino, NULL_DEVICE_INO};
use crate::fs::Vfs;
use crate::mm::frames::FrameAllocator;
use crate::mm::space::AddressSpace;
use crate::ring;
use crate::time::Clock;

pub const PID: u64 = 1;
pub const UID: u64 = 1000;
pub const GID: u64 = 1000;

/// Most file descriptors a program may hold (`RLIMIT_NOFILE`).
pub const MAX_FDS: usize = shim_abi::MAX_FDS as usize;

/// What an open file description refers to.
pub enum FileKind {
    /// One of the VMM's own stdin/stdout/stderr (0, 1, 2), reached over the ring.
    HostStdio(u8),
    /// A file or directory in a host mount, by the handle the VMM gave it.
    Host { handle: u64, mount: usize, directory: bool },
    /// A tmpfs inode: a file, directory, device, symlink (`O_PATH`) or `/proc/self/fd`.
    Tmpfs(Ino),
    /// One end of an in-guest pipe.
    Pipe { pipe: Arc<spin::Mutex<Pipe>>, write_end: bool, id: u64 },
}

/// The mutable part of an open file description, shared by every fd dup'd from it.
pub struct DescriptionState {
    /// The file position (tmpfs; host files keep theirs on the host).
    pub offset: u64,
    /// `O_*` access mode and status flags as `F_GETFL` reports them.
    pub status_flags: u32,
}

/// An open file description (`struct file` in Linux): what `open` creates and `dup` shares.
pub struct Description {
    pub kind: FileKind,
    /// The guest path it was opened by (what `/proc/self/fd/N` reads as).
    pub path: Vec<u8>,
    pub state: spin::Mutex<DescriptionState>,
}

pub const O_ACCMODE: u32 = 3;
pub const O_WRONLY: u32 = 1;
pub const O_RDWR: u32 = 2;
pub const O_PATH: u32 = 0o10000000;

impl Description {
    pub fn new(kind: FileKind, path: Vec<u8>, status_flags: u32) -> Arc<Self> {
        let state = DescriptionState { offset: 0, status_flags };
        Arc::new(Self { kind, path, state: spin::Mutex::new(state) })
    }

    pub fn status_flags(&self) -> u32 {
        self.state.lock().status_flags
    }

    /// `EBADF` unless opened for reading.
    pub fn check_readable(&self) -> Result<(), Errno> {
        let flags = self.status_flags();
        if flags & O_PATH != 0 || flags & O_ACCMODE == O_WRONLY {
            return Err(Errno::EBADF);
        }
        Ok(())
    }

    /// `EBADF` unless opened for writing.
    pub fn check_writable(&self) -> Result<(), Errno> {
        let flags = self.status_flags();
        if flags & O_PATH != 0 || flags & O_ACCMODE == 0 {
            return Err(Errno::EBADF);
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct FdEntry {
    pub description: Arc<Description>,
    pub cloexec: bool,
}

/// How the short path for `read`/`write` reaches a low fd (see `syscall::host_transfer`):
/// kept beside the table and rewritten whenever an fd is installed or removed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shortcut {
    /// Not open, or not a host file: the full path decides.
    None,
    /// A regular host file or one of the VMM's stdio streams, by its ring handle, with the
    /// transfers its access mode allows. (Eight bytes: the table moves with the kernel state
    /// at boot, and ring 0 copies are slow.)
    Host { handle: u32, readable: bool, writable: bool },
    /// `/dev/null` (`NULL_DEVICE_INO`): reads end at once and writes vanish, and Linux never
    /// touches the buffer of either.
    NullDevice { readable: bool, writable: bool },
}

/// fds below this have a [`Shortcut`].
pub const SHORTCUT_FDS: usize = 64;

impl Shortcut {
    fn of(description: &Description) -> Self {
        let readable = description.check_readable().is_ok();
        let writable = description.check_writable().is_ok();
        let handle = match description.kind {
            FileKind::HostStdio(stream) => u32::from(stream),
            FileKind::Host { handle, directory: false, .. } => match u32::try_from(handle) {
                Ok(handle) => handle,
                Err(_) => return Self::None,
            },
            FileKind::Tmpfs(NULL_DEVICE_INO) => return Self::NullDevice { readable, writable },
            _ => return Self::None,
        };
        Self::Host { handle, readable, writable }
    }
}

/// The table slot of syscall argument `fd`: Linux reads only its low 32 bits (an `int` or
/// `unsigned int`), so `(1 << 32) + 1` is fd 1 and -1 is a slot no table reaches.
fn fd_index(fd: u64) -> usize {
    fd as u32 as usize
}

pub struct FdTable {
    entries: Vec<Option<FdEntry>>,
    /// Every fd below this is open, so the search for the lowest free one starts here (a
    /// scan from 0 cost milliseconds of interpreted ring 0 with a thousand fds open).
    lowest_free: usize,
    shortcuts: [Shortcut; SHORTCUT_FDS],
}

impl FdTable {
    /// 0, 1 and 2 open on the host's stdio, as a program expects, but for those whose bit is
    /// set in `closed` (the VMM had no such stream to give).
    pub fn with_stdio(closed: u32) -> Self {
        let stdio = |fd: u8, flags: u32| {
            let name = alloc::format!("/dev/std{}", ["in", "out", "err"][fd as usize]);
            let description = Description::new(FileKind::HostStdio(fd), name.into_bytes(), flags);
            FdEntry { description, cloexec: false }
        };
        let mut table =
            Self { entries: Vec::new(), lowest_free: 0, shortcuts: [Shortcut::None; SHORTCUT_FDS] };
        for (fd, entry) in [stdio(0, 0), stdio(1, 1), stdio(2, 1)].into_iter().enumerate() {
            if closed & (1 << fd) == 0 {
                table.set(fd, entry);
            }
        }
        table
    }

    /// What the short `read`/`write` path may do with `fd` (`None` for fds it never takes).
    pub fn shortcut(&self, fd: u64) -> Shortcut {
        self.shortcuts.get(fd_index(fd)).copied().unwrap_or(Shortcut::None)
    }

    pub fn get(&self, fd: u64) -> Result<FdEntry, Errno> {
        let index = fd_index(fd);
        self.entries.get(index).cloned().flatten().ok_or(Errno::EBADF)
    }

    pub fn get_mut(&mut self, fd: u64) -> Result<&mut FdEntry, Errno> {
        let index = fd_index(fd);
        self.entries.get_mut(index).and_then(Option::as_mut).ok_or(Errno::EBADF)
    }

    /// Installs `entry` at the lowest free fd at or above `min`, below `limit`.
    pub fn insert_from(&mut self, min: usize, limit: usize, entry: FdEntry) -> Result<u64, Errno> {
        let limit = limit.min(MAX_FDS);
        if min >= limit {
            return Err(if min >= MAX_FDS { Errno::EINVAL } else { Errno::EMFILE });
        }
        let start = min.max(self.lowest_free);
        let free = (start..limit).find(|&fd| self.entries.get(fd).is_none_or(Option::is_none));
        let fd = free.ok_or(Errno::EMFILE)?;
        self.set(fd, entry);
        Ok(fd as u64)
    }

    /// Installs `entry` at `fd`, returning what was there.
    pub fn set(&mut self, fd: usize, entry: FdEntry) -> Option<FdEntry> {
        if self.entries.len() <= fd {
            self.entries.resize(fd + 1, None);
        }
        if let Some(shortcut) = self.shortcuts.get_mut(fd) {
            *shortcut = Shortcut::of(&entry.description);
        }
        let previous = self.entries[fd].replace(entry);
        while self.entries.get(self.lowest_free).is_some_and(Option::is_some) {
            self.lowest_free += 1;
        }
        previous
    }

    pub fn remove(&mut self, fd: u64) -> Result<FdEntry, Errno> {
        let index = fd_index(fd);
        let entry = self.entries.get_mut(index).and_then(Option::take).ok_or(Errno::EBADF)?;
        if let Some(shortcut) = self.shortcuts.get_mut(index) {
            *shortcut = Shortcut::None;
        }
        self.lowest_free = self.lowest_free.min(index);
        Ok(entry)
    }

    /// The open fd numbers, in order.
    pub fn open_fds(&self) -> Vec<u64> {
        let open = self.entries.iter().enumerate().filter(|(_, e)| e.is_some());
        open.map(|(fd, _)| fd as u64).collect()
    }
}

/// `struct k_sigaction` as `rt_sigaction` passes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// `stack_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
pub struct SignalStack {
    pub sp: u64,
    pub flags: i32,
    pub _pad: u32,
    pub size: u64,
}

/// Signal dispositions and masks. Handlers are recorded but not yet run: a signal the
/// kernel raises (a fault) ends the program as if it had the default action.
pub struct SignalState {
    pub actions: [SigAction; 64],
    pub blocked: u64,
    /// Signals the program sent itself while they were blocked, taken when unblocked.
    pub pending: u64,
    pub alternate_stack: SignalStack,
}

pub struct Kernel {
    pub frames: FrameAllocator,
    pub space: AddressSpace,
    pub files: FdTable,
    pub vfs: Vfs,
    /// The kernel frames `sendfile` moves data through, as merged guest-physical ranges
    /// (allocated on first use).
    pub bounce: Vec<(u64, u64)>,
    /// Numbers pipes for `/proc/self/fd` and `fstat`.
    pub next_pipe_id: u64,
    pub signals: SignalState,
    pub clock: Clock,
    pub syscall_path: SyscallPath,
    /// `RLIMIT_*` soft and hard values.
    pub rlimits: [(u64, u64); 16],
    pub clear_child_tid: u64,
    pub robust_list: u64,
    pub memory_size: u64,
    /// Syscall numbers already reported as unsupported (a bit each).
    pub unsupported_logged: [u64; 8],
    /// A kernel-owned frame the host may write small replies into.
    pub scratch_gpa: u64,
    /// `prctl(PR_SET_NAME)`'s name (NUL-padded).
    pub thread_name: [u8; 16],
    /// Where the argument and environment strings are in the program's memory.
    pub args: (u64, u64),
    pub environment: (u64, u64),
}

pub const RLIM_INFINITY: u64 = u64::MAX;

/// The limits a program starts with; `max_fds` is the VMM's `--max-fds` (0: [`MAX_FDS`]).
pub fn default_rlimits(max_fds: u32) -> [(u64, u64); 16] {
    let max_fds = match max_fds as usize {
        0 => MAX_FDS,
        count => count.min(MAX_FDS),
    };
    let mut limits = [(RLIM_INFINITY, RLIM_INFINITY); 16];
    limits[3] = (8 << 20, RLIM_INFINITY); // RLIMIT_STACK
    limits[4] = (0, RLIM_INFINITY); // RLIMIT_CORE
    limits[7] = (max_fds as u64, max_fds as u64); // RLIMIT_NOFILE
    limits[8] = (8 << 20, 8 << 20); // RLIMIT_MEMLOCK
    limits[6] = (1, 1); // RLIMIT_NPROC: one process
    limits
}

impl SignalState {
    pub fn new() -> Self {
        Self {
            actions: [SigAction::default(); 64],
            blocked: 0,
            pending: 0,
            alternate_stack: SignalStack {
                flags: 2, // SS_DISABLE
                ..SignalStack::default()
            },
        }
    }
}

/// Reports the end of the program to the VMM and stops the vCPU for good.
pub fn end_program(kind: ExitKind, code: u64, fault_address: u64, rip: u64) -> ! {
    ring::with_ring(|ring| {
        ring.call(Opcode::Exit, [kind as u64, code, fault_address, rip], None);
    });
    loop {
        ring::set_wake_at(0);
        arch::halt();
    }
}
