//! Translations between the guest's Linux view and the host's: open flags, `HostStat` with
//! owners mapped, `struct statfs`, `timespec`s.

use rustix::fs::{Mode, OFlags};
use shim_abi::HostStat;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::errno::Errno;

/// The guest's own user and group: what the VMM's user looks like inside.
pub const GUEST_USER: u32 = 1000;
/// Everybody else (`nobody`/`nogroup`).
pub const NOBODY: u32 = 65534;

/// Linux's `O_LARGEFILE` on x86-64 (the `libc` crate spells it 0 there, but the kernel and
/// musl pass this bit; 64-bit kernels imply it anyway).
const O_LARGEFILE: i32 = 0o100000;

/// The `O_*` bits a guest may ask for. `O_CLOEXEC` is accepted but means nothing on the host
/// side (the guest keeps its own close-on-exec flags; host fds always get `O_CLOEXEC`), and
/// `O_ASYNC` is accepted and ignored, as `open(2)` does.
const ACCEPTED_OPEN_FLAGS: i32 = libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_DIRECT
    | O_LARGEFILE
    | libc::O_ASYNC
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_CLOEXEC
    | libc::O_PATH
    | libc::O_TMPFILE;

/// The host flags for the guest's Linux `O_*` flags: `EINVAL` for bits Linux does not define
/// for open or for the access mode 3.
pub fn open_flags(guest: u64) -> Result<OFlags, Errno> {
    let bits = i32::try_from(guest).map_err(|_| Errno::EINVAL)?;
    if bits & !ACCEPTED_OPEN_FLAGS != 0 || bits & libc::O_ACCMODE == libc::O_ACCMODE {
        return Err(Errno::EINVAL);
    }
    let mut bits = bits & !(libc::O_CLOEXEC | libc::O_ASYNC);
    // open(2) ignores everything but these beside O_PATH; openat2(2) would refuse them.
    if bits & libc::O_PATH != 0 {
        bits &= libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    }
    Ok(OFlags::from_bits_retain(bits.unsigned_abs()))
}

/// A mode the guest asks for (`open` with `O_CREAT`, `mkdir`, `chmod`) as the host applies
/// it: permission and sticky bits only. Set-user-ID and set-group-ID are dropped: the host
/// file belongs to the VMM's user (root, often), not to the guest's uid, so a set-user-ID bit
/// would hand that user's identity to whoever runs the file on the host.
pub fn host_mode(guest_mode: u64) -> Mode {
    Mode::from_bits_truncate((guest_mode & 0o1777) as u32)
}

/// The creation mode `openat2` accepts: only with `O_CREAT`/`O_TMPFILE` (see [`host_mode`]).
pub fn create_mode(flags: OFlags, guest_mode: u64) -> Mode {
    if flags.contains(OFlags::CREATE) || flags.contains(OFlags::TMPFILE) {
        host_mode(guest_mode)
    } else {
        Mode::empty()
    }
}

/// Whether opening with `flags` could change the file system.
pub fn open_writes(flags: OFlags) -> bool {
    flags.intersects(OFlags::WRONLY | OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC)
        || flags.contains(OFlags::TMPFILE)
}

/// Maps host owners to the guest's view: the VMM's own ids are the program's, the rest
/// nobody.
#[derive(Debug, Clone, Copy)]
pub struct Owners {
    pub uid: u32,
    pub gid: u32,
}

impl Owners {
    pub fn of_this_process() -> Self {
        Self { uid: rustix::process::geteuid().as_raw(), gid: rustix::process::getegid().as_raw() }
    }

    pub fn host_stat(&self, stat: &rustix::fs::Stat) -> HostStat {
        let map = |id: u32, own: u32| if id == own { GUEST_USER } else { NOBODY };
        HostStat {
            mode: stat.st_mode,
            nlink: u32::try_from(stat.st_nlink).unwrap_or(u32::MAX),
            size: stat.st_size,
            rdev: stat.st_rdev,
            blksize: stat.st_blksize,
            ino: stat.st_ino,
            dev: stat.st_dev,
            uid: map(stat.st_uid, self.uid),
            gid: map(stat.st_gid, self.gid),
            blocks: stat.st_blocks,
            atime_sec: stat.st_atime,
            atime_nsec: i64::try_from(stat.st_atime_nsec).unwrap_or(0),
            mtime_sec: stat.st_mtime,
            mtime_nsec: i64::try_from(stat.st_mtime_nsec).unwrap_or(0),
            ctime_sec: stat.st_ctime,
            ctime_nsec: i64::try_from(stat.st_ctime_nsec).unwrap_or(0),
        }
    }
}

/// Linux's x86-64 `struct statfs` (120 bytes), as `statfs(2)` fills it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct LinuxStatfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

const _: () = assert!(size_of::<LinuxStatfs>() == 120);

/// `ST_RDONLY` in `f_flags`.
const ST_RDONLY: i64 = 1;

impl LinuxStatfs {
    /// Marks the file system read-only (a `:ro` mount of a writable host directory).
    pub fn mark_read_only(&mut self) {
        self.f_flags |= ST_RDONLY;
    }
}

/// The `*at` flag values the file requests carry (Linux's, as `u64` request arguments).
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_REMOVEDIR: u64 = 0x200;
pub const AT_SYMLINK_FOLLOW: u64 = 0x400;

/// Linux's `struct timespec` as the guest lays it out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct GuestTimespec {
    pub sec: i64,
    pub nsec: i64,
}

impl GuestTimespec {
    pub fn to_host(self) -> libc::timespec {
        libc::timespec { tv_sec: self.sec, tv_nsec: self.nsec }
    }
}
