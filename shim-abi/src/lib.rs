//! The contract between the litebox-vmm host and its guest kernel.
//!
//! Everything that crosses the VM boundary is defined here and nowhere else: the guest-physical
//! memory map, the boot-info block the VMM fills before the first instruction, the request ring
//! (requests, completions, scatter-gather entries), the doorbell port, the vDSO data page and
//! Linux's errno values. Both sides compile this crate; `ABI_VERSION` changes whenever a layout
//! does.
//!
//! All types are plain `#[repr(C)]` data checked by `zerocopy`, so the host can read them out of
//! guest memory without trusting a single byte: every field is a number, never a pointer the
//! host would dereference. Guest addresses are *guest physical addresses* (GPAs); the host checks
//! each range against guest memory before it touches it.

#![no_std]

pub mod errno;
pub mod syscall_names;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Bumped on every change of a layout or of a request's meaning.
pub const ABI_VERSION: u32 = 5;

/// Most file descriptors a program may hold: the guest kernel's fd-table ceiling, its
/// default `RLIMIT_NOFILE`, and the most `--max-fds` allows.
pub const MAX_FDS: u32 = 1024;

/// "LITEBOX\0" as a little-endian u64; the first field of [`BootInfo`].
pub const BOOT_MAGIC: u64 = u64::from_le_bytes(*b"LITEBOX\0");

pub const PAGE_SIZE: u64 = 4096;
pub const HUGE_PAGE_SIZE: u64 = 2 << 20;

// ---------------------------------------------------------------------------------------------
// Guest-physical memory map. The VMM builds the boot page tables at `BOOT_PAGE_TABLES_GPA`, loads
// the kernel at `KERNEL_GPA`, and places the vDSO, the program and its initial stack from
// `BootInfo::loader_gpa` on. The guest kernel allocates frames from `BootInfo::free_gpa` to
// `BootInfo::memory_size`.
// ---------------------------------------------------------------------------------------------

/// The boot-info page ([`BootInfo`]).
pub const BOOT_INFO_GPA: u64 = 0x1000;
/// The request ring: a [`RingHeader`], then the submission and completion queues.
pub const RING_GPA: u64 = 0x2000;
/// Bytes reserved for the ring (header + queues).
pub const RING_BYTES: u64 = 0x3000;
/// Counters the guest kernel keeps for `--stats` ([`GuestStats`]).
pub const GUEST_STATS_GPA: u64 = 0x5000;
/// The sandbox's file-system configuration ([`FsConfig`], two pages).
pub const FS_CONFIG_GPA: u64 = 0x6000;
/// The kernel's scatter-gather arena: [`SG_ARENA_ENTRIES`] entries of [`SgEntry`].
pub const SG_ARENA_GPA: u64 = 0x8000;
pub const SG_ARENA_ENTRIES: u64 = 2048;
/// Boot page tables written by the VMM (PML4 first). Up to the kernel image.
pub const BOOT_PAGE_TABLES_GPA: u64 = 0x20000;
/// Where the kernel ELF's `PT_LOAD` segments are placed (their `p_paddr`).
pub const KERNEL_GPA: u64 = 0x20_0000;

/// Guest virtual base of the linear map of all guest-physical memory (supervisor, 2 MiB pages).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8880_0000_0000;
/// Guest virtual base where the first GiB of guest-physical memory is mapped for the kernel
/// image: physical `p` is at `KERNEL_VIRT_BASE + p`.
pub const KERNEL_VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
/// Highest user address + 1 (the canonical lower half, minus a guard page like Linux).
pub const USER_END: u64 = 0x0000_7fff_ffff_f000;
/// Guest virtual address of Linux's legacy vsyscall page; never mapped, emulated on the fault.
pub const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;

/// `out` to this port is the doorbell: "process the submission queue now". Synchronous: when
/// the instruction retires, every request submitted before it has its completion.
pub const DOORBELL_PORT: u16 = 0x510;

// ---------------------------------------------------------------------------------------------
// Boot information.
// ---------------------------------------------------------------------------------------------

/// Most `PT_LOAD` mappings of one program the boot info can describe.
pub const MAX_SEGMENTS: usize = 32;

pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// A run of user pages the VMM has filled, to be mapped by the guest kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SegmentMapping {
    /// Page-aligned user virtual address of the first page.
    pub virt: u64,
    /// Page-aligned GPA of the first page; the pages are physically contiguous.
    pub gpa: u64,
    /// Number of 4 KiB pages.
    pub pages: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    pub _reserved: u32,
}

/// Written by the VMM at [`BOOT_INFO_GPA`] before the vCPU starts; read once by the guest.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BootInfo {
    pub magic: u64,
    pub abi_version: u32,
    /// `log::LevelFilter` as a number: 0 off, 1 error … 5 trace.
    pub log_level: u32,
    /// Bytes of guest-physical memory, starting at GPA 0.
    pub memory_size: u64,
    /// First GPA that belongs to the guest kernel's frame allocator.
    pub free_gpa: u64,
    /// The guest TSC frequency, from `KVM_GET_TSC_KHZ`.
    pub tsc_khz: u64,

    /// Program entry point (user virtual, load bias applied).
    pub entry: u64,
    /// Initial `%rsp`: points at `argc`.
    pub stack_pointer: u64,
    /// Top (exclusive) of the stack mapping.
    pub stack_top: u64,
    /// Lowest address the stack may grow down to.
    pub stack_limit: u64,
    /// First byte of the heap (`brk`), page-aligned, after the highest segment.
    pub brk_start: u64,
    /// Highest address (exclusive) for `mmap` without a hint; it allocates downwards from here.
    pub mmap_top: u64,
    /// User virtual address of the vDSO's ELF header (`AT_SYSINFO_EHDR`); the vvar page
    /// ([`VvarPage`]) is mapped read-only one page below it.
    pub vdso_virt: u64,
    /// The guest-physical page the kernel keeps the [`VvarPage`] in.
    pub vvar_gpa: u64,
    /// The argument strings on the initial stack, NUL-terminated, in order, as Linux's
    /// `mm->arg_start..arg_end` (what `/proc/self/cmdline` reads), then the environment's
    /// (`env_start..env_end`, `/proc/self/environ`).
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,

    /// Number of valid entries in `segments`. The vDSO and the prepared top of the stack are
    /// entries too.
    pub segment_count: u32,
    /// The program's `RLIMIT_NOFILE` (soft and hard), at most [`MAX_FDS`]; 0 means that.
    pub max_fds: u32,
    /// Bit N set: the program starts with fd N (0, 1 or 2) closed, as the VMM's own was.
    pub closed_stdio: u32,
    pub _reserved: u32,
    pub segments: [SegmentMapping; MAX_SEGMENTS],
}

// ---------------------------------------------------------------------------------------------
// The request ring. One submission queue (guest produces, host consumes) and one completion
// queue (host produces, guest consumes), indices free-running modulo 2^32.
// ---------------------------------------------------------------------------------------------

/// Slots in each queue; a power of two.
pub const RING_ENTRIES: u32 = 64;
/// Most scatter-gather entries one request may name.
pub const MAX_SG_PER_REQUEST: u32 = 1024;
/// Most bytes one request may move.
pub const MAX_BYTES_PER_REQUEST: u64 = 64 << 20;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RingHeader {
    /// Next submission slot the guest will fill.
    pub sq_tail: u32,
    /// Next submission slot the host will read.
    pub sq_head: u32,
    /// Next completion slot the host will fill.
    pub cq_tail: u32,
    /// Next completion slot the guest will read.
    pub cq_head: u32,
    /// When the guest executes `hlt`, the VMM sleeps until its monotonic clock reaches this
    /// (nanoseconds, the same clock as the guest's `CLOCK_MONOTONIC`). 0: halted for good.
    pub wake_at_ns: u64,
    /// GPA of the guest's top-level page table (its CR3), through which the host translates
    /// scatter-gather entries marked [`SG_USER_VIRTUAL`]. Written once by the guest at boot.
    pub page_table_root: u64,
    /// When a request completes with [`RESULT_PAGE_NOT_PRESENT`]: the first user address the
    /// host found unmapped. The guest maps it and submits the request again.
    pub fault_address: u64,
    pub _reserved: [u64; 3],
}

/// Set in [`SgEntry::gpa`] to name a *user virtual* range instead of a guest-physical one. The
/// host walks the guest's page tables (from [`RingHeader::page_table_root`]) itself, so the
/// guest kernel hands over a whole user buffer as one entry instead of one per page: ring-0
/// work per request stays constant whatever the buffer's size. The host accepts only pages
/// that are present and user-accessible (the U bit on every level), so a request can never
/// name kernel memory this way; the guest kernel checks the program's permissions first.
pub const SG_USER_VIRTUAL: u64 = 1 << 63;

/// Set with [`SG_USER_VIRTUAL`] on a range the host will write into (a read's buffer): the
/// host then also demands the writable bit on every level of the walk, as the CPU would for a
/// ring-3 store, so a request can't write through a read-only mapping (the program's code)
/// even when the guest kernel skipped its own permission check on a fast path.
pub const SG_HOST_WRITES: u64 = 1 << 62;

/// A completion result that is no errno (errnos are -1..=-4095): a page of a user-virtual
/// SG entry is not present; [`RingHeader::fault_address`] says which. Nothing was done.
pub const RESULT_PAGE_NOT_PRESENT: i64 = -4096;

/// A completion result that is no errno: resolving a path met a symlink that leaves its
/// mount (an absolute one, or one whose `..` climbs above the root). Nothing was done. The
/// guest asks [`Opcode::FindExit`] which link it was and follows it in its own namespace, as
/// Linux follows a symlink in a container's mount of a host directory.
pub const RESULT_LEFT_MOUNT: i64 = -4097;

/// Byte offset of the submission queue from [`RING_GPA`].
pub const SQ_OFFSET: u64 = 64;
/// Byte offset of the completion queue from [`RING_GPA`].
pub const CQ_OFFSET: u64 = SQ_OFFSET + RING_ENTRIES as u64 * 64;

/// What a request asks the host to do. The numbers are part of the ABI.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// `args[0]` = host stdio fd (0..=2). Writes the bytes named by the SG list. Result: bytes.
    Write = 1,
    /// `args[0]` = fd. Reads into the SG list (one host read). Result: bytes, 0 at end of file.
    Read = 2,
    /// `args[0]` = fd, `args[1]` = file offset. Result: bytes.
    Pread = 3,
    /// `args[0]` = fd, `args[1]` = GPA of a [`HostStat`]. Result: 0.
    Fstat = 4,
    /// `args[0]` = fd, `args[1]` = ioctl number (only `TCGETS`, `TIOCGWINSZ`),
    /// `args[2]` = GPA of the result (`termios` 36 bytes, `winsize` 8 bytes). Result: 0.
    Ioctl = 5,
    /// `args[0]` = GPA of an array of [`PollFd`], `args[1]` = count,
    /// `args[2]` = timeout in ms (negative: forever). Result: number of ready entries.
    Poll = 6,
    /// `args[0]` = fd: the program closed its stdio fd; later requests on it get `EBADF`.
    Close = 7,
    /// `args[0]` = `log::Level` as a number; the SG list holds the UTF-8 message.
    Log = 8,
    /// The program ended. `args[0]` = [`ExitKind`], `args[1]` = status or signal number,
    /// `args[2]` = faulting address, `args[3]` = faulting `%rip`. No completion.
    Exit = 9,
    /// The guest kernel panicked; the SG list holds the message. No completion.
    Panic = 10,
    /// `args[0]` = GPA of a [`ClockReading`] the host fills with its clocks. Result: 0.
    ReadClock = 11,
    /// Fill the SG list with random bytes from the host's CSPRNG. Result: bytes.
    Random = 12,
    /// The SG list names guest frames the kernel freed; the host drops their contents so they
    /// read as zero and stop costing host memory. Result: 0.
    DiscardFrames = 13,

    // File requests. A *handle* is what `Open` returned (>= FIRST_FILE_HANDLE); handles 0..=2
    // are the stdio streams, so `Read`, `Write`, `Pread`, `Fstat` and `Close` take either. A
    // *path* is relative to a host mount's root (no leading '/', at most PATH_MAX bytes, no
    // NUL; empty names the root itself) and is resolved by the host strictly beneath that
    // root: a path that would leave it (`..`, an absolute symlink, a symlink pointing out)
    // fails with [`RESULT_LEFT_MOUNT`]. On a read-only mount every request that would change
    // something fails with `EROFS`.
    /// `args[0]` = mount id, `args[1]` = Linux `O_*` flags, `args[2]` = mode, `args[3]` = GPA
    /// of a [`HostStat`] to fill with the opened file's status (0: none); SG = path.
    /// Result: a handle.
    Open = 14,
    /// `args[0]` = handle, `args[1]` = file offset; SG = the bytes. Result: bytes written.
    Pwrite = 15,
    /// `args[0]` = handle, `args[1]` = offset (i64), `args[2]` = whence. Result: new offset.
    Seek = 16,
    /// `args[0]` = mount, `args[1]` = `AT_SYMLINK_NOFOLLOW` or 0, `args[2]` = GPA of a
    /// [`HostStat`]; SG = path. Result: 0.
    Stat = 17,
    /// `args[0]` = handle of a directory; SG = buffer for `linux_dirent64` records.
    /// Result: bytes filled, 0 at the end.
    Getdents = 18,
    /// `args[0]` = mount, `args[1]` = mode; SG = path. Result: 0.
    Mkdir = 19,
    /// `args[0]` = mount, `args[1]` = 0 or `AT_REMOVEDIR`; SG = path. Result: 0.
    Unlink = 20,
    /// `args[0]` = old mount, `args[1]` = new mount (the same: the guest refuses others),
    /// `args[2]` = `RENAME_*` flags, `args[3]` = bytes of the old path; SG = old path then new
    /// path. Result: 0.
    Rename = 21,
    /// Like `Rename` (`args[2]` = 0 or `AT_SYMLINK_FOLLOW`): a hard link. Result: 0.
    Link = 22,
    /// `args[0]` = mount, `args[1]` = bytes of the target; SG = target then link path.
    Symlink = 23,
    /// `args[0]` = mount, `args[1]` = bytes of the path; SG = path then the output buffer.
    /// Result: bytes of the link's target placed in the buffer.
    Readlink = 24,
    /// `args[0]` = mount, `args[1]` = `F_OK`/`R_OK`/`W_OK`/`X_OK` bits; SG = path. Result: 0.
    Access = 25,
    /// `args[0]` = handle, `args[1]` = new length. Result: 0.
    Ftruncate = 26,
    /// `args[0]` = handle, `args[1]` = 1 for `fdatasync`. Result: 0.
    Fsync = 27,
    /// `args[0]` = mount, `args[1]` = mode, `args[2]` = handle + 1 to change an open file
    /// instead of the path (0: use the path in SG). Result: 0.
    Chmod = 28,
    /// `args[0]` = mount, `args[1]` = GPA of two `timespec`s (0: both now), `args[2]` = flags
    /// (`AT_SYMLINK_NOFOLLOW`), `args[3]` = handle + 1 for an open file (0: the path in SG).
    Utimens = 29,
    /// `args[0]` = mount, `args[1]` = GPA of a Linux `struct statfs` (120 bytes). Result: 0.
    Statfs = 30,
    /// Copies guest memory to guest memory: `args[0]` = number of source SG entries; SG =
    /// sources then destinations (equal total lengths). Result: bytes copied.
    Copy = 31,
    /// Fills the SG list with zero bytes. Result: bytes.
    Zero = 32,
    /// `sendfile` on the host from file handle (or stdin, 0) `args[0]` to `args[1]` (a file
    /// handle, or stdout or stderr), each stdio stream only when the VMM uses a host fd for
    /// it, at most `args[2]` bytes, reading at offset `args[3]` ([`SPLICE_AT_POSITION`]: at
    /// the input's own position, which moves). The data never enters guest memory. Result: bytes moved; `EINVAL` for a pair the host can't
    /// splice (the guest then copies through its own memory).
    Splice = 33,
    /// Sets (`args[1]` = 1) or clears (0) `O_APPEND` on file handle `args[0]`, as the
    /// program's `fcntl(F_SETFL)` asked. Result: 0.
    SetAppend = 34,
    /// After [`RESULT_LEFT_MOUNT`]: `args[0]` = mount, `args[1]` = bytes of the path; SG = the
    /// path, then a buffer of at least `PATH_MAX` bytes. Finds the first component of the path
    /// that is a symlink whose following leaves the mount (the last component too, followed)
    /// and places the link's target in the buffer. Result: the byte length of the path up to
    /// and including that component, plus the target's length shifted left by 32; `ENOENT`
    /// if no component leaves (any more).
    FindExit = 35,
}

/// [`Opcode::Splice`]'s `args[3]` when the input's file position is used (and moved).
pub const SPLICE_AT_POSITION: u64 = u64::MAX;

/// The most one [`Opcode::Splice`] moves (more is cut), so a long copy stays responsive to
/// the run's time limits.
pub const MAX_SPLICE_BYTES: u64 = 64 << 20;

impl Opcode {
    pub fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::Write,
            2 => Self::Read,
            3 => Self::Pread,
            4 => Self::Fstat,
            5 => Self::Ioctl,
            6 => Self::Poll,
            7 => Self::Close,
            8 => Self::Log,
            9 => Self::Exit,
            10 => Self::Panic,
            11 => Self::ReadClock,
            12 => Self::Random,
            13 => Self::DiscardFrames,
            14 => Self::Open,
            15 => Self::Pwrite,
            16 => Self::Seek,
            17 => Self::Stat,
            18 => Self::Getdents,
            19 => Self::Mkdir,
            20 => Self::Unlink,
            21 => Self::Rename,
            22 => Self::Link,
            23 => Self::Symlink,
            24 => Self::Readlink,
            25 => Self::Access,
            26 => Self::Ftruncate,
            27 => Self::Fsync,
            28 => Self::Chmod,
            29 => Self::Utimens,
            30 => Self::Statfs,
            31 => Self::Copy,
            32 => Self::Zero,
            33 => Self::Splice,
            34 => Self::SetAppend,
            35 => Self::FindExit,
            _ => return None,
        })
    }
}

/// How the program ended (`Opcode::Exit`, `args[0]`).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// `exit`/`exit_group`; `args[1]` is the status (low 8 bits count, as on Linux).
    Status = 0,
    /// Killed by a signal; `args[1]` is its number, `args[2]`/`args[3]` where it happened.
    Signal = 1,
}

/// One slot of the submission queue (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Request {
    /// An [`Opcode`] number.
    pub opcode: u32,
    /// Entries in the scatter-gather list at `sg_gpa`.
    pub sg_count: u32,
    /// Copied into the completion so the guest can match them.
    pub user_data: u64,
    pub args: [u64; 4],
    /// GPA of `sg_count` [`SgEntry`]s.
    pub sg_gpa: u64,
    pub _reserved: u64,
}

/// One slot of the completion queue (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Completion {
    pub user_data: u64,
    /// `>= 0` on success, `-errno` on failure.
    pub result: i64,
}

/// A guest-physical byte range.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SgEntry {
    pub gpa: u64,
    pub len: u64,
}

/// What `Opcode::Fstat` and `Opcode::Stat` report: Linux's `struct stat` fields. Owners are
/// already mapped to the guest's view (the VMM's own user is the program's user).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct HostStat {
    pub mode: u32,
    pub nlink: u32,
    pub size: i64,
    pub rdev: u64,
    pub blksize: i64,
    pub ino: u64,
    pub dev: u64,
    pub uid: u32,
    pub gid: u32,
    pub blocks: i64,
    pub atime_sec: i64,
    pub atime_nsec: i64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub ctime_sec: i64,
    pub ctime_nsec: i64,
}

/// First handle number `Opcode::Open` hands out (0..=2 are stdio).
pub const FIRST_FILE_HANDLE: u64 = 16;
/// Longest path a request may carry (Linux's `PATH_MAX`, NUL included).
pub const PATH_MAX: u64 = 4096;
/// Longest path component (Linux's `NAME_MAX`).
pub const NAME_MAX: u64 = 255;

// ---------------------------------------------------------------------------------------------
// File-system configuration, written by the VMM at `FS_CONFIG_GPA`.
// ---------------------------------------------------------------------------------------------

/// Most host directories one sandbox may mount.
pub const MAX_MOUNTS: usize = 12;
/// Longest guest path of a mount point, the working directory or the image path.
pub const CONFIG_PATH_BYTES: usize = 256;

pub const MOUNT_READ_ONLY: u32 = 1;

/// One `--dir HOST:GUEST[:ro]`: the host side is known only to the VMM (by `id`).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MountEntry {
    /// What `Open`, `Stat` and the other path requests name as `mount`.
    pub id: u32,
    /// `MOUNT_*` flags.
    pub flags: u32,
    /// Bytes of `guest_path` used.
    pub guest_path_len: u32,
    pub _reserved: u32,
    /// Absolute, normalised guest path (no trailing '/', not "/").
    pub guest_path: [u8; CONFIG_PATH_BYTES],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct FsConfig {
    pub mount_count: u32,
    pub workdir_len: u32,
    pub exe_path_len: u32,
    pub _reserved: u32,
    /// Bytes the in-guest tmpfs may hold (all RAM-backed files together).
    pub tmpfs_size: u64,
    /// The program's starting working directory (absolute guest path).
    pub workdir: [u8; CONFIG_PATH_BYTES],
    /// What `/proc/self/exe` points at (absolute guest path).
    pub exe_path: [u8; CONFIG_PATH_BYTES],
    pub mounts: [MountEntry; MAX_MOUNTS],
}

/// Linux's `struct pollfd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

/// The host's clocks at the moment it handled `Opcode::ReadClock`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ClockReading {
    pub realtime_ns: u64,
    pub monotonic_ns: u64,
}

/// Counters the guest kernel keeps at [`GUEST_STATS_GPA`] (exactly one page). The host reads
/// them after the run for `--stats`; they are only numbers, never trusted for control.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GuestStats {
    /// Guest TSC right before the first user instruction.
    pub program_start_tsc: u64,
    /// Guest TSC when the kernel made its clock reading at boot.
    pub boot_clock_tsc: u64,
    /// Page faults the kernel resolved by mapping memory.
    pub page_faults: u64,
    /// Syscalls with a number of `SYSCALL_COUNTERS` or more.
    pub other_syscalls: u64,
    /// Syscalls by number.
    pub syscalls: [u64; SYSCALL_COUNTERS],
}

pub const SYSCALL_COUNTERS: usize = 508;

// ---------------------------------------------------------------------------------------------
// The vDSO's data page ("vvar"): written by the guest kernel, read by the vDSO in ring 3.
// ---------------------------------------------------------------------------------------------

/// Fixed-point shift of [`VvarPage::ns_per_tsc_mult`].
pub const TSC_MULT_SHIFT: u32 = 32;

/// Clock parameters. Time in ns = `base_ns + ((tsc - tsc_base) * ns_per_tsc_mult) >> 32`,
/// with the product taken in 128 bits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct VvarPage {
    /// Odd while the kernel rewrites the page; readers retry until it is even and unchanged.
    pub sequence: u32,
    pub _reserved: u32,
    pub tsc_base: u64,
    pub ns_per_tsc_mult: u64,
    pub monotonic_base_ns: u64,
    pub realtime_base_ns: u64,
}

impl VvarPage {
    /// Nanoseconds elapsed since `tsc_base` at `tsc`.
    pub fn ns_since_base(&self, tsc: u64) -> u64 {
        let delta = u128::from(tsc.wrapping_sub(self.tsc_base));
        let ns = (delta * u128::from(self.ns_per_tsc_mult)) >> TSC_MULT_SHIFT;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// The multiplier for a TSC running at `tsc_khz`.
    pub fn mult_for_tsc_khz(tsc_khz: u64) -> u64 {
        ((1_000_000u128 << TSC_MULT_SHIFT) / u128::from(tsc_khz.max(1))) as u64
    }
}

/// Linux `ioctl` numbers the host answers for stdio fds.
pub const TCGETS: u64 = 0x5401;
pub const TIOCGWINSZ: u64 = 0x5413;

const _: () = {
    assert!(core::mem::size_of::<Request>() == 64);
    assert!(core::mem::size_of::<Completion>() == 16);
    assert!(core::mem::size_of::<RingHeader>() == 64);
    assert!(core::mem::size_of::<GuestStats>() <= PAGE_SIZE as usize);
    assert!(core::mem::size_of::<BootInfo>() <= PAGE_SIZE as usize);
    assert!(FS_CONFIG_GPA + core::mem::size_of::<FsConfig>() as u64 <= SG_ARENA_GPA);
    assert!(CQ_OFFSET + RING_ENTRIES as u64 * 16 <= RING_BYTES);
    assert!(RING_GPA + RING_BYTES <= GUEST_STATS_GPA);
    assert!(SG_ARENA_GPA + SG_ARENA_ENTRIES * 16 <= BOOT_PAGE_TABLES_GPA);
};
