//! Path syscalls: open, stat, directories, links, permissions, times, the working directory.
//!
//! Each resolves its path through the VFS (`crate::fs`) and then either answers from the
//! tmpfs here or sends one request naming a mount and a path beneath it, which the VMM checks
//! and carries out under its policy (`:ro` mounts answer `EROFS` from the host).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use shim_abi::{HostStat, Opcode, PATH_MAX};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::errno::{Errno, SysResult};
use crate::fs::path::{self, read_user_path};
use crate::fs::tmpfs::{
    Body, Ino, Time, R_OK, ROOT, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_ISVTX, W_OK,
    X_OK,
};
use crate::fs::{Node, Resolved, Vfs};
use crate::mm::{kernel_gpa, phys_to_virt};
use crate::process::{
    Description, FdEntry, FileKind, Kernel, GID, O_ACCMODE, O_PATH, O_RDWR, O_WRONLY, UID,
};
use crate::ring;
use crate::syscall::io::{self, Pieces};
use crate::syscall::{dotdot, procfs};

pub const AT_FDCWD: i32 = -100;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_EACCESS: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_NO_AUTOMOUNT: u64 = 0x800;
const AT_EMPTY_PATH: u64 = 0x1000;
const AT_STATX_SYNC_TYPE: u64 = 0x6000;

const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_TRUNC: u32 = 0o1000;
const O_LARGEFILE: u32 = 0o100000;
const O_DIRECTORY: u32 = 0o200000;
const O_NOFOLLOW: u32 = 0o400000;
const O_CLOEXEC: u32 = 0o2000000;
const O_TMPFILE_DIR: u32 = 0o20000000;
/// Flags an open file description keeps (what `F_GETFL` shows).
const STATUS_FLAGS: u32 = O_ACCMODE | 0o2000 | 0o4000 | 0o10000 | 0o40000 | O_LARGEFILE
    | 0o1000000 | 0o4010000 | O_PATH;
/// Flags `O_PATH` keeps.
const PATH_FLAGS: u32 = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

/// `st_dev` of the tmpfs and of pipes.
const TMPFS_DEV: u64 = 0x16;
const PIPEFS_DEV: u64 = 0xd;
const S_IFIFO: u32 = 0o010000;
const S_IFSOCK: u32 = 0o140000;

fn now(kernel: &Kernel) -> Time {
    Time::from_ns(kernel.clock.realtime_ns())
}

// ---------------------------------------------------------------------------------------------
// Resolving the program's paths.
// ---------------------------------------------------------------------------------------------

/// The directory relative paths start from: the cwd, or the directory `dirfd` names.
fn base_dir(kernel: &Kernel, dirfd: u64, path: &[u8]) -> Result<Vec<u8>, Errno> {
    if path.first() == Some(&b'/') {
        return Ok(b"/".to_vec());
    }
    if dirfd as i32 == AT_FDCWD {
        return Ok(kernel.vfs.cwd.clone());
    }
    let description = kernel.files.get(dirfd)?.description;
    if is_directory(kernel, &description) {
        Ok(description.path.clone())
    } else {
        Err(Errno::ENOTDIR)
    }
}

fn is_directory(kernel: &Kernel, description: &Description) -> bool {
    match &description.kind {
        FileKind::Host { directory, .. } => *directory,
        FileKind::Tmpfs(ino) => {
            matches!(kernel.vfs.tmpfs.get(*ino).body, Body::Dir { .. } | Body::FdDir)
        }
        _ => false,
    }
}

/// Reads and resolves the path argument of an `*at` syscall.
fn lookup(kernel: &mut Kernel, dirfd: u64, path: u64, follow: bool) -> Result<Resolved, Errno> {
    let path = read_user_path(kernel, path, false)?;
    lookup_bytes(kernel, dirfd, &path, follow)
}

/// What `path` names, `ENOTDIR` for a tmpfs non-directory named with a trailing `/`.
fn lookup_bytes(
    kernel: &mut Kernel,
    dirfd: u64,
    path: &[u8],
    follow: bool,
) -> Result<Resolved, Errno> {
    let resolved = lookup_for_open(kernel, dirfd, path, follow)?;
    demand_directory_for_slash(kernel, resolved)
}

/// The directory entry `path` names, its last component never followed, not even for a
/// trailing `/` (see `Vfs::resolve_entry`): for unlink, rmdir and rename.
fn lookup_entry(kernel: &mut Kernel, dirfd: u64, path: &[u8]) -> Result<Resolved, Errno> {
    let resolved = lookup_using(kernel, dirfd, path, |vfs, base, path| {
        vfs.resolve_entry(base, path)
    })?;
    demand_directory_for_slash(kernel, resolved)
}

/// What `path` names, with no check of a trailing `/`: open has its own answers for one.
fn lookup_for_open(
    kernel: &mut Kernel,
    dirfd: u64,
    path: &[u8],
    follow: bool,
) -> Result<Resolved, Errno> {
    lookup_using(kernel, dirfd, path, |vfs, base, path| vfs.resolve(base, path, follow))
}

/// Linux's answer to a trailing `/` after a tmpfs non-directory (the host gives its own).
fn demand_directory_for_slash(kernel: &Kernel, resolved: Resolved) -> Result<Resolved, Errno> {
    if let Node::Tmpfs(ino) = resolved.node {
        if resolved.trailing_slash && !kernel.vfs.tmpfs.get(ino).is_dir() {
            return Err(Errno::ENOTDIR);
        }
    }
    Ok(resolved)
}

fn lookup_using(
    kernel: &mut Kernel,
    dirfd: u64,
    path: &[u8],
    resolve: impl Fn(&Vfs, &[u8], &[u8]) -> Result<Resolved, Errno>,
) -> Result<Resolved, Errno> {
    procfs::create_if_named(kernel, path);
    let mut base = base_dir(kernel, dirfd, path)?;
    // A `..` goes to the parent of what its prefix names, symlinks followed.
    let applied;
    let path = if dotdot::has_dotdot(path) {
        let base_is_canonical = dirfd as i32 == AT_FDCWD && kernel.vfs.cwd_is_canonical;
        applied = dotdot::apply(kernel, &base, base_is_canonical, path)?;
        base = b"/".to_vec();
        &applied[..]
    } else {
        path
    };
    match resolve(&kernel.vfs, &base, path) {
        // A path that reaches /proc without naming it (a symlink, a relative path): the
        // generated files may be what it wants.
        Err(Errno::ENOENT) if procfs::create(kernel) => resolve(&kernel.vfs, &base, path),
        resolved => resolved,
    }
}

/// The host's id for mount index `mount`.
pub(super) fn mount_id(kernel: &Kernel, mount: usize) -> u64 {
    u64::from(kernel.vfs.mounts[mount].id)
}

/// Sends a path request: the SG list is `paths` (kernel memory) then `extra` pieces.
pub(super) fn host_path_call(
    kernel: &mut Kernel,
    opcode: Opcode,
    args: [u64; 4],
    paths: &[&[u8]],
    extra: &[(u64, u64)],
) -> SysResult {
    let mut pieces: Vec<(u64, u64)> = Vec::new();
    for path in paths.iter().filter(|p| !p.is_empty()) {
        pieces.push((kernel_gpa(path.as_ptr()), path.len() as u64));
    }
    pieces.extend_from_slice(extra);
    // Only `extra` (readlink's output buffer) may hold program pages the host writes.
    match io::host_call(kernel, opcode, args, &pieces, true) {
        Err(Errno::LEFT_MOUNT) => Err(find_exit(kernel, opcode, args, paths)),
        result => result,
    }
}

/// After a request met a host symlink leaving its mount: asks the host which link it was
/// on the request's looked-up paths, in order, and keeps it in `Vfs::exits`. `LEFT_MOUNT`
/// (run the syscall again) once one is kept; `EACCES` if none leaves any more, or for a
/// `..` of the path's own, which the guest never sends.
fn find_exit(kernel: &mut Kernel, opcode: Opcode, args: [u64; 4], paths: &[&[u8]]) -> Errno {
    // Which paths were looked up, and beneath which mount id: a symlink's target is not.
    let looked_up: &[(usize, u64)] = match opcode {
        Opcode::Rename | Opcode::Link => &[(0, args[0]), (1, args[1])],
        Opcode::Symlink => &[(1, args[0])],
        _ => &[(0, args[0])],
    };
    let mut target = vec![0u8; PATH_MAX as usize];
    for &(index, id) in looked_up {
        let Some(&rel) = paths.get(index) else { continue };
        let Some(mount) = kernel.vfs.mounts.iter().position(|m| u64::from(m.id) == id) else {
            continue;
        };
        let pieces = [
            (kernel_gpa(rel.as_ptr()), rel.len() as u64),
            // Named by a mutable pointer: the host writes the target there.
            (kernel_gpa(target.as_mut_ptr()), target.len() as u64),
        ];
        let request = [id, rel.len() as u64, 0, 0];
        let pieces = if rel.is_empty() { &pieces[1..] } else { &pieces[..] };
        let Ok(found) = io::host_call(kernel, Opcode::FindExit, request, pieces, false) else {
            continue;
        };
        let (prefix_len, target_len) = ((found & 0xffff_ffff) as usize, (found >> 32) as usize);
        if prefix_len == 0 || prefix_len > rel.len() || target_len >= target.len() {
            return Errno::EACCES;
        }
        let mut link = kernel.vfs.mounts[mount].path.clone();
        link.push(b'/');
        link.extend_from_slice(&rel[..prefix_len]);
        // A relative target starts from the directory the link is really in: the host has
        // followed the symlinks inside the mount that the spelling goes through.
        let link_dir = match dotdot::canonical(kernel, path::parent(&link)) {
            Ok(dir) => dir,
            Err(errno) => return errno,
        };
        return match kernel.vfs.add_exit(link, &link_dir, &target[..target_len]) {
            Ok(()) => Errno::LEFT_MOUNT,
            Err(errno) => errno,
        };
    }
    Errno::EACCES
}

/// The parent directory and name of a tmpfs path that exists or may be created.
fn tmpfs_parent(kernel: &Kernel, resolved: &Resolved) -> Result<(Ino, Vec<u8>), Errno> {
    match &resolved.node {
        Node::Missing { parent, name } => Ok((*parent, name.clone())),
        Node::Tmpfs(ROOT) => Err(Errno::EBUSY),
        Node::Tmpfs(_) => {
            let name = path::components(&resolved.path).last().ok_or(Errno::EBUSY)?.to_vec();
            let parent = kernel.vfs.resolve(b"/", path::parent(&resolved.path), true)?;
            match parent.node {
                Node::Tmpfs(dir) => Ok((dir, name)),
                _ => Err(Errno::ENOENT),
            }
        }
        _ => Err(Errno::EXDEV),
    }
}

/// `EACCES` unless the program may add or remove entries in tmpfs directory `dir`.
fn check_dir_writable(kernel: &Kernel, dir: Ino) -> Result<(), Errno> {
    let directory = kernel.vfs.tmpfs.get(dir);
    if !directory.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if directory.permits(W_OK | X_OK) { Ok(()) } else { Err(Errno::EACCES) }
}

/// Linux's sticky-directory rule: in `/tmp`, only a file's owner may remove or replace it.
fn check_sticky(kernel: &Kernel, dir: Ino, victim: Ino) -> Result<(), Errno> {
    let directory = kernel.vfs.tmpfs.get(dir);
    let owner = kernel.vfs.tmpfs.get(victim).uid;
    if directory.mode & S_ISVTX != 0 && owner != UID as u32 && directory.uid != UID as u32 {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// `EBUSY` for a path that is a mount point or holds one.
fn check_not_mount_point(kernel: &Kernel, resolved: &Resolved) -> Result<(), Errno> {
    if let Node::Host { rel, .. } = &resolved.node {
        if rel.is_empty() {
            return Err(Errno::EBUSY);
        }
    }
    let holds = kernel.vfs.mounts.iter().any(|m| path::is_within(&m.path, &resolved.path));
    if holds && !matches!(resolved.node, Node::Host { .. }) {
        return Err(Errno::EBUSY);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// open
// ---------------------------------------------------------------------------------------------

/// The inode number `/proc/self/fd`'s entry for fd 0 has (fd N: this plus N), beyond the
/// tmpfs's own numbers.
const FD_ENTRY_INO: u64 = 1 << 32;

pub fn openat(kernel: &mut Kernel, dirfd: u64, path: u64, flags: u64, mode: u64) -> SysResult {
    let mut flags = flags as u32;
    if flags & O_TMPFILE_DIR == O_TMPFILE_DIR {
        return Err(Errno::EOPNOTSUPP);
    }
    if flags & O_PATH != 0 {
        flags &= PATH_FLAGS;
    }
    if flags & O_CREAT != 0 && flags & O_DIRECTORY != 0 {
        return Err(Errno::EINVAL);
    }
    let mode = (mode as u32) & 0o7777 & !kernel.vfs.umask;
    let follow = flags & O_NOFOLLOW == 0 && flags & (O_CREAT | O_EXCL) != O_CREAT | O_EXCL;
    let spelled = read_user_path(kernel, path, false)?;
    let resolved = lookup_for_open(kernel, dirfd, &spelled, follow)?;
    let status = if flags & O_PATH != 0 {
        O_PATH
    } else {
        (flags & STATUS_FLAGS) | O_LARGEFILE
    };
    let writes = flags & O_PATH == 0 && matches!(flags & O_ACCMODE, O_WRONLY | O_RDWR);

    let kind = match resolved.node {
        Node::FdAlias(fd) => {
            let entry = kernel.files.get(fd).map_err(|_| Errno::ENOENT)?;
            return install(kernel, FdEntry { cloexec: flags & O_CLOEXEC != 0, ..entry });
        }
        Node::Host { mount, ref rel } => {
            // A trailing '/' is in `rel`: the host's open gives it Linux's meaning.
            let host_flags = flags & !O_CLOEXEC;
            let scratch = kernel.scratch_gpa;
            let args = [mount_id(kernel, mount), u64::from(host_flags), u64::from(mode), scratch];
            let handle = host_path_call(kernel, Opcode::Open, args, &[rel], &[])?;
            let directory = scratch_stat(kernel).mode & S_IFMT == S_IFDIR;
            FileKind::Host { handle, mount, directory }
        }
        Node::Missing { parent, ref name } => {
            if flags & O_CREAT == 0 {
                return Err(Errno::ENOENT);
            }
            if resolved.trailing_slash {
                return Err(Errno::EISDIR);
            }
            check_dir_writable(kernel, parent)?;
            let now = now(kernel);
            let body = Body::File { pages: Vec::new(), size: 0 };
            let ino = kernel.vfs.tmpfs.create(parent, name, S_IFREG | mode, UID as u32, body, now)?;
            FileKind::Tmpfs(ino)
        }
        Node::Tmpfs(ino) => {
            if flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
                return Err(Errno::EEXIST);
            }
            open_tmpfs_checks(kernel, ino, flags, resolved.trailing_slash, writes)?;
            // O_TRUNC applies to regular files; devices and directories ignore it.
            let regular = matches!(kernel.vfs.tmpfs.get(ino).body, Body::File { .. });
            if flags & O_TRUNC != 0 && writes && regular {
                truncate_tmpfs(kernel, ino, 0)?;
            }
            if flags & O_PATH == 0 {
                procfs::refresh(kernel, ino)?;
            }
            FileKind::Tmpfs(ino)
        }
    };
    if let FileKind::Tmpfs(ino) = kind {
        kernel.vfs.tmpfs.get_mut(ino).open_count += 1;
    }
    let description = Description::new(kind, resolved.path, status);
    install(kernel, FdEntry { description, cloexec: flags & O_CLOEXEC != 0 })
}

/// What Linux checks before opening an existing tmpfs inode.
fn open_tmpfs_checks(
    kernel: &Kernel,
    ino: Ino,
    flags: u32,
    trailing_slash: bool,
    writes: bool,
) -> Result<(), Errno> {
    let inode = kernel.vfs.tmpfs.get(ino);
    let directory = matches!(inode.body, Body::Dir { .. } | Body::FdDir);
    if flags & O_PATH != 0 {
        return if (flags & O_DIRECTORY != 0 || trailing_slash) && !directory {
            Err(Errno::ENOTDIR)
        } else {
            Ok(())
        };
    }
    if let Body::Symlink(_) = inode.body {
        return Err(Errno::ELOOP);
    }
    if directory && (writes || flags & O_CREAT != 0) {
        return Err(Errno::EISDIR);
    }
    if !directory && (flags & O_DIRECTORY != 0 || trailing_slash) {
        return Err(Errno::ENOTDIR);
    }
    let want = match flags & O_ACCMODE {
        O_WRONLY => W_OK,
        O_RDWR => R_OK | W_OK,
        _ => R_OK,
    } | if flags & O_TRUNC != 0 { W_OK } else { 0 };
    if !inode.permits(want) {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// Puts `entry` at the lowest free fd, closing it again if there is none.
fn install(kernel: &mut Kernel, entry: FdEntry) -> SysResult {
    let limit = kernel.rlimits[7].0 as usize;
    match kernel.files.insert_from(0, limit, entry.clone()) {
        Ok(fd) => Ok(fd),
        Err(errno) => {
            io::release(kernel, entry);
            Err(errno)
        }
    }
}

pub fn open(kernel: &mut Kernel, path: u64, flags: u64, mode: u64) -> SysResult {
    openat(kernel, AT_FDCWD as u64, path, flags, mode)
}

pub fn creat(kernel: &mut Kernel, path: u64, mode: u64) -> SysResult {
    let flags = O_CREAT | O_WRONLY | O_TRUNC;
    openat(kernel, AT_FDCWD as u64, path, u64::from(flags), mode)
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
    /// atime, btime, ctime, mtime: each `{ i64 sec; u32 nsec; i32 pad }`.
    times: [u64; 8],
    rdev_major: u32,
    rdev_minor: u32,
    dev_major: u32,
    dev_minor: u32,
    _spare: [u64; 14],
}

fn tmpfs_stat(kernel: &Kernel, ino: Ino) -> HostStat {
    let inode = kernel.vfs.tmpfs.get(ino);
    HostStat {
        mode: inode.mode,
        nlink: inode.nlink,
        size: inode.size() as i64,
        rdev: inode.rdev,
        blksize: 4096,
        ino: ino as u64,
        dev: TMPFS_DEV,
        uid: inode.uid,
        gid: inode.gid,
        blocks: inode.blocks() as i64,
        atime_sec: inode.atime.sec,
        atime_nsec: inode.atime.nsec,
        mtime_sec: inode.mtime.sec,
        mtime_nsec: inode.mtime.nsec,
        ctime_sec: inode.ctime.sec,
        ctime_nsec: inode.ctime.nsec,
    }
}

/// Reads the HostStat the host left in the scratch frame. A plain read, not a volatile one:
/// the host wrote it during the doorbell (an `asm!` the compiler can't see through), and a
/// volatile read of a struct is a byte loop, a few hundred interpreted instructions here.
fn scratch_stat(kernel: &Kernel) -> HostStat {
    // SAFETY: the scratch frame is kernel-owned; the host just filled a HostStat there.
    unsafe { phys_to_virt(kernel.scratch_gpa).cast::<HostStat>().read() }
}

/// The status of what an open file description refers to.
pub fn description_stat(kernel: &Kernel, description: &Description) -> Result<HostStat, Errno> {
    let scratch = kernel.scratch_gpa;
    let host_fstat = |handle: u64| {
        ring::with_ring(|ring| ring.call_checked(Opcode::Fstat, [handle, scratch, 0, 0], None))
    };
    match &description.kind {
        FileKind::HostStdio(host) => {
            host_fstat(u64::from(*host))?;
            Ok(HostStat { uid: UID as u32, gid: GID as u32, ..scratch_stat(kernel) })
        }
        FileKind::Host { handle, .. } => {
            host_fstat(*handle)?;
            Ok(scratch_stat(kernel))
        }
        FileKind::Tmpfs(ino) => Ok(tmpfs_stat(kernel, *ino)),
        FileKind::Pipe { id, .. } => Ok(HostStat {
            mode: S_IFIFO | 0o600,
            nlink: 1,
            blksize: 4096,
            ino: *id,
            dev: PIPEFS_DEV,
            uid: UID as u32,
            gid: GID as u32,
            ..HostStat::default()
        }),
    }
}

/// What `/proc/self/fd/N` reads as: the path the file was opened by, and for the VMM's own
/// stdio what Linux shows for the host fd behind it where the guest can name it (a pipe, a
/// socket, `/dev/null`, a terminal), since `/dev/stdin` would lead back to the fd.
fn fd_link_text(kernel: &Kernel, description: &Description) -> Vec<u8> {
    const DEV_NULL: u64 = (1 << 8) | 3;
    const PTS_MAJOR: u64 = 136;
    if !matches!(description.kind, FileKind::HostStdio(_)) {
        return description.path.clone();
    }
    let Ok(stat) = description_stat(kernel, description) else {
        return description.path.clone();
    };
    // Linux's dev_t encoding: major in bits 8-19, minor in bits 0-7 and 20-31.
    let major = (stat.rdev >> 8) & 0xfff;
    let minor = (stat.rdev & 0xff) | ((stat.rdev >> 12) & !0xff);
    let text = match stat.mode & S_IFMT {
        S_IFIFO => alloc::format!("pipe:[{}]", stat.ino),
        S_IFSOCK => alloc::format!("socket:[{}]", stat.ino),
        S_IFCHR if stat.rdev == DEV_NULL => "/dev/null".into(),
        S_IFCHR if major == PTS_MAJOR => alloc::format!("/dev/pts/{minor}"),
        _ => return description.path.clone(),
    };
    text.into_bytes()
}

/// The status of what `resolved` names.
pub(super) fn node_stat(
    kernel: &mut Kernel,
    resolved: &Resolved,
    follow: bool,
) -> Result<HostStat, Errno> {
    let stat = match &resolved.node {
        Node::Tmpfs(ino) => tmpfs_stat(kernel, *ino),
        Node::Missing { .. } => return Err(Errno::ENOENT),
        Node::FdAlias(fd) => {
            let description = kernel.files.get(*fd).map_err(|_| Errno::ENOENT)?.description;
            if follow {
                description_stat(kernel, &description)?
            } else {
                HostStat {
                    mode: S_IFLNK | 0o700,
                    nlink: 1,
                    size: description.path.len() as i64,
                    dev: TMPFS_DEV,
                    uid: UID as u32,
                    gid: GID as u32,
                    ..HostStat::default()
                }
            }
        }
        Node::Host { mount, rel } => {
            let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
            let args = [mount_id(kernel, *mount), flags, kernel.scratch_gpa, 0];
            host_path_call(kernel, Opcode::Stat, args, &[rel], &[])?;
            scratch_stat(kernel)
        }
    };
    if resolved.trailing_slash && stat.mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    Ok(stat)
}

fn write_stat(kernel: &mut Kernel, buf: u64, host: &HostStat) -> SysResult {
    let stat = Stat {
        dev: host.dev,
        ino: host.ino,
        nlink: u64::from(host.nlink),
        mode: host.mode,
        uid: host.uid,
        gid: host.gid,
        rdev: host.rdev,
        size: host.size,
        blksize: host.blksize,
        blocks: host.blocks,
        times: [
            host.atime_sec,
            host.atime_nsec,
            host.mtime_sec,
            host.mtime_nsec,
            host.ctime_sec,
            host.ctime_nsec,
        ],
        ..Stat::default()
    };
    kernel.space.write_user(&mut kernel.frames, buf, &stat)?;
    Ok(0)
}

fn write_statx(kernel: &mut Kernel, buf: u64, host: &HostStat) -> SysResult {
    let time = |sec: i64, nsec: i64| [sec as u64, nsec as u64 & 0xffff_ffff];
    let [a0, a1] = time(host.atime_sec, host.atime_nsec);
    let [c0, c1] = time(host.ctime_sec, host.ctime_nsec);
    let [m0, m1] = time(host.mtime_sec, host.mtime_nsec);
    let statx = Statx {
        mask: 0x7ff, // STATX_BASIC_STATS
        blksize: u32::try_from(host.blksize).unwrap_or(4096),
        nlink: host.nlink,
        uid: host.uid,
        gid: host.gid,
        mode: host.mode as u16,
        ino: host.ino,
        size: host.size as u64,
        blocks: host.blocks as u64,
        times: [a0, a1, 0, 0, c0, c1, m0, m1],
        rdev_major: ((host.rdev >> 8) & 0xfff) as u32,
        rdev_minor: ((host.rdev & 0xff) | ((host.rdev >> 12) & 0xfff00)) as u32,
        dev_major: ((host.dev >> 8) & 0xfff) as u32,
        dev_minor: ((host.dev & 0xff) | ((host.dev >> 12) & 0xfff00)) as u32,
        ..Statx::default()
    };
    kernel.space.write_user(&mut kernel.frames, buf, &statx)?;
    Ok(0)
}

pub fn fstat(kernel: &mut Kernel, fd: u64, buf: u64) -> SysResult {
    let description = kernel.files.get(fd)?.description;
    let stat = description_stat(kernel, &description)?;
    write_stat(kernel, buf, &stat)
}

/// What a `*at` call with `dirfd`, `path` and `flags` (`AT_EMPTY_PATH`,
/// `AT_SYMLINK_NOFOLLOW`) acts on: a path resolved (and whether its last link is followed),
/// or, for an empty path, the open file `dirfd`.
enum AtTarget {
    Path(Resolved, bool),
    Open(Arc<Description>),
}

fn target_at(kernel: &mut Kernel, dirfd: u64, path: u64, flags: u64) -> Result<AtTarget, Errno> {
    let empty_allowed = flags & AT_EMPTY_PATH != 0;
    let path = if path == 0 && empty_allowed {
        Vec::new()
    } else {
        read_user_path(kernel, path, empty_allowed)?
    };
    if path.is_empty() {
        if dirfd as i32 == AT_FDCWD {
            let cwd = kernel.vfs.cwd.clone();
            return Ok(AtTarget::Path(kernel.vfs.resolve(b"/", &cwd, true)?, true));
        }
        return Ok(AtTarget::Open(kernel.files.get(dirfd)?.description));
    }
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    Ok(AtTarget::Path(lookup_bytes(kernel, dirfd, &path, follow)?, follow))
}

/// The status for `*stat*at` with `dirfd`, `path` and `flags`.
fn stat_at(kernel: &mut Kernel, dirfd: u64, path: u64, flags: u64) -> Result<HostStat, Errno> {
    match target_at(kernel, dirfd, path, flags)? {
        AtTarget::Path(resolved, follow) => node_stat(kernel, &resolved, follow),
        AtTarget::Open(description) => description_stat(kernel, &description),
    }
}

pub fn newfstatat(kernel: &mut Kernel, dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let stat = stat_at(kernel, dirfd, path, flags)?;
    write_stat(kernel, buf, &stat)
}

pub fn stat(kernel: &mut Kernel, path: u64, buf: u64, follow: bool) -> SysResult {
    let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
    newfstatat(kernel, AT_FDCWD as u64, path, buf, flags)
}

pub fn statx(kernel: &mut Kernel, dirfd: u64, path: u64, flags: u64, _mask: u64, buf: u64) -> SysResult {
    let known = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE;
    if flags & !known != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    let stat = stat_at(kernel, dirfd, path, flags)?;
    write_statx(kernel, buf, &stat)
}

// ---------------------------------------------------------------------------------------------
// Directories: getdents64, mkdir, chdir, getcwd.
// ---------------------------------------------------------------------------------------------

const DT_CHR: u8 = 2;
const DT_DIR: u8 = 4;
const DT_REG: u8 = 8;
const DT_LNK: u8 = 10;

fn d_type(mode: u32) -> u8 {
    match mode & S_IFMT {
        S_IFDIR => DT_DIR,
        S_IFREG => DT_REG,
        S_IFLNK => DT_LNK,
        _ => DT_CHR,
    }
}

pub fn getdents64(kernel: &mut Kernel, fd: u64, dirp: u64, count: u64) -> SysResult {
    let description = kernel.files.get(fd)?.description;
    if description.status_flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let count = count.min(1 << 20);
    match &description.kind {
        FileKind::Host { handle, directory: true, .. } => {
            let mut pieces = Pieces::new();
            if !pieces.gather(kernel, dirp, count, true, count) {
                return Err(Errno::EFAULT);
            }
            pieces.call(kernel, Opcode::Getdents, [*handle, 0, 0, 0])
        }
        FileKind::Tmpfs(ino) => {
            let ino = *ino;
            let fd_dir = match &kernel.vfs.tmpfs.get(ino).body {
                Body::FdDir => true,
                Body::Dir { .. } => false,
                _ => return Err(Errno::ENOTDIR),
            };
            let parent = kernel.vfs.tmpfs.parent_of(ino);
            let mut entries: Vec<(Vec<u8>, u64, u8)> = alloc::vec![
                (b".".to_vec(), ino as u64, DT_DIR),
                (b"..".to_vec(), parent as u64, DT_DIR),
            ];
            if fd_dir {
                // Each fd with an inode number of its own: `ls` and readdir skip an entry
                // whose number is 0, as a deleted one.
                for fd in kernel.files.open_fds() {
                    entries.push((alloc::format!("{fd}").into_bytes(), FD_ENTRY_INO + fd, DT_LNK));
                }
            } else {
                for (name, child) in kernel.vfs.tmpfs.dir_entries(ino) {
                    entries.push((name, child as u64, d_type(kernel.vfs.tmpfs.get(child).mode)));
                }
            }
            let mut state = description.state.lock();
            let mut out: Vec<u8> = Vec::new();
            let mut position = state.offset as usize;
            while let Some((name, child, kind)) = entries.get(position) {
                let length = (19 + name.len() + 1).next_multiple_of(8);
                if out.len() + length > count as usize {
                    break;
                }
                out.extend_from_slice(&child.to_le_bytes());
                out.extend_from_slice(&((position + 1) as u64).to_le_bytes());
                out.extend_from_slice(&(length as u16).to_le_bytes());
                out.push(*kind);
                out.extend_from_slice(name);
                out.resize(out.len() + length - 19 - name.len(), 0);
                position += 1;
            }
            if out.is_empty() && position < entries.len() {
                return Err(Errno::EINVAL);
            }
            state.offset = position as u64;
            drop(state);
            kernel.space.copy_to_user(&mut kernel.frames, dirp, &out)?;
            Ok(out.len() as u64)
        }
        _ => Err(Errno::ENOTDIR),
    }
}

pub fn mkdirat(kernel: &mut Kernel, dirfd: u64, path: u64, mode: u64) -> SysResult {
    // The entry itself, even with a trailing '/': anything already there is EEXIST, a
    // symlink (dangling or not) included.
    let spelled = read_user_path(kernel, path, false)?;
    let resolved = lookup_using(kernel, dirfd, &spelled, |vfs, base, path| {
        vfs.resolve_entry(base, path)
    })?;
    let mode = (mode as u32) & 0o7777 & !kernel.vfs.umask;
    match resolved.node {
        Node::Missing { parent, ref name } => {
            check_dir_writable(kernel, parent)?;
            let now = now(kernel);
            let body = Body::Dir { entries: Default::default(), parent };
            kernel.vfs.tmpfs.create(parent, name, S_IFDIR | mode, UID as u32, body, now)?;
            Ok(0)
        }
        Node::Host { ref rel, .. } if rel.is_empty() => Err(Errno::EEXIST),
        Node::Host { mount, ref rel } => {
            let args = [mount_id(kernel, mount), u64::from(mode), 0, 0];
            host_path_call(kernel, Opcode::Mkdir, args, &[rel], &[])
        }
        Node::Tmpfs(_) | Node::FdAlias(_) => Err(Errno::EEXIST),
    }
}

pub fn chdir(kernel: &mut Kernel, path: u64) -> SysResult {
    let resolved = lookup(kernel, AT_FDCWD as u64, path, true)?;
    let stat = node_stat(kernel, &resolved, true)?;
    if stat.mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    if let Node::Tmpfs(ino) = resolved.node {
        if !kernel.vfs.tmpfs.get(ino).permits(X_OK) {
            return Err(Errno::EACCES);
        }
    }
    kernel.vfs.cwd = dotdot::canonical(kernel, &resolved.path)?;
    kernel.vfs.cwd_is_canonical = true;
    Ok(0)
}

pub fn fchdir(kernel: &mut Kernel, fd: u64) -> SysResult {
    let description = kernel.files.get(fd)?.description;
    if !is_directory(kernel, &description) {
        return Err(Errno::ENOTDIR);
    }
    // The directory may have been renamed since it was opened: then its old path is all
    // there is (a known shortcoming: Linux follows the directory itself).
    let canonical = dotdot::canonical(kernel, &description.path);
    kernel.vfs.cwd_is_canonical = canonical.is_ok();
    kernel.vfs.cwd = canonical.unwrap_or_else(|_| description.path.clone());
    Ok(0)
}

pub fn getcwd(kernel: &mut Kernel, buf: u64, size: u64) -> SysResult {
    let mut cwd = kernel.vfs.cwd.clone();
    cwd.push(0);
    if size < cwd.len() as u64 {
        return Err(Errno::ERANGE);
    }
    kernel.space.copy_to_user(&mut kernel.frames, buf, &cwd)?;
    Ok(cwd.len() as u64)
}

pub fn umask(kernel: &mut Kernel, mask: u64) -> SysResult {
    let old = kernel.vfs.umask;
    kernel.vfs.umask = mask as u32 & 0o777;
    Ok(u64::from(old))
}

// ---------------------------------------------------------------------------------------------
// unlink, rmdir, rename, link, symlink, readlink
// ---------------------------------------------------------------------------------------------

/// The last component of a path as the program spelled it (trailing slashes ignored).
fn last_spelled(path: &[u8]) -> &[u8] {
    let trimmed = path.iter().rposition(|&b| b != b'/').map_or(&path[..0], |end| &path[..=end]);
    trimmed.rsplit(|&b| b == b'/').next().unwrap_or(trimmed)
}

pub fn unlinkat(kernel: &mut Kernel, dirfd: u64, path: u64, flags: u64) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let remove_dir = flags & AT_REMOVEDIR != 0;
    let spelled = read_user_path(kernel, path, false)?;
    if matches!(last_spelled(&spelled), b"." | b"..") {
        // What the path names must exist before its last component is judged.
        lookup_bytes(kernel, dirfd, &spelled, true)?;
    }
    match last_spelled(&spelled) {
        b"." if remove_dir => return Err(Errno::EINVAL),
        b".." if remove_dir => return Err(Errno::ENOTEMPTY),
        b"." | b".." => return Err(Errno::EISDIR),
        _ => {}
    }
    let resolved = lookup_entry(kernel, dirfd, &spelled)?;
    check_not_mount_point(kernel, &resolved)?;
    match resolved.node {
        Node::Missing { .. } => Err(Errno::ENOENT),
        Node::FdAlias(_) => Err(Errno::EPERM),
        Node::Host { mount, ref rel } => {
            let args = [mount_id(kernel, mount), flags & AT_REMOVEDIR, 0, 0];
            host_path_call(kernel, Opcode::Unlink, args, &[rel], &[])
        }
        Node::Tmpfs(ino) => {
            let (parent, name) = tmpfs_parent(kernel, &resolved)?;
            check_dir_writable(kernel, parent)?;
            check_sticky(kernel, parent, ino)?;
            let inode = kernel.vfs.tmpfs.get(ino);
            let is_dir = matches!(inode.body, Body::Dir { .. } | Body::FdDir);
            if (remove_dir || resolved.trailing_slash) && !is_dir {
                return Err(Errno::ENOTDIR);
            }
            if !remove_dir && is_dir {
                return Err(Errno::EISDIR);
            }
            if remove_dir && !kernel.vfs.tmpfs.is_empty_dir(ino) {
                return Err(Errno::ENOTEMPTY);
            }
            let now = now(kernel);
            kernel.vfs.tmpfs.unlink(&mut kernel.frames, parent, &name, now);
            Ok(0)
        }
    }
}

pub fn unlink(kernel: &mut Kernel, path: u64) -> SysResult {
    unlinkat(kernel, AT_FDCWD as u64, path, 0)
}

pub fn rmdir(kernel: &mut Kernel, path: u64) -> SysResult {
    unlinkat(kernel, AT_FDCWD as u64, path, AT_REMOVEDIR)
}

const RENAME_NOREPLACE: u64 = 1;
const RENAME_EXCHANGE: u64 = 2;

pub fn renameat2(
    kernel: &mut Kernel,
    old_dirfd: u64,
    old_path: u64,
    new_dirfd: u64,
    new_path: u64,
    flags: u64,
) -> SysResult {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
        || flags == RENAME_NOREPLACE | RENAME_EXCHANGE
    {
        return Err(Errno::EINVAL);
    }
    let old = read_user_path(kernel, old_path, false)?;
    let new = read_user_path(kernel, new_path, false)?;
    // `.` and `..` name no entry of their own to move or replace (once they name anything).
    for (dirfd, path) in [(old_dirfd, &old), (new_dirfd, &new)] {
        if matches!(last_spelled(path), b"." | b"..") {
            lookup_bytes(kernel, dirfd, path, true)?;
            return Err(Errno::EBUSY);
        }
    }
    let old = lookup_entry(kernel, old_dirfd, &old)?;
    let new = lookup_entry(kernel, new_dirfd, &new)?;
    check_not_mount_point(kernel, &old)?;
    check_not_mount_point(kernel, &new)?;
    match (&old.node, &new.node) {
        (Node::Host { mount: a, rel: from }, Node::Host { mount: b, rel: to }) => {
            if a != b {
                return Err(Errno::EXDEV);
            }
            let id = mount_id(kernel, *a);
            let args = [id, id, flags, from.len() as u64];
            host_path_call(kernel, Opcode::Rename, args, &[from, to], &[])
        }
        (Node::Missing { .. }, _) => Err(Errno::ENOENT),
        (Node::Tmpfs(_), Node::Tmpfs(_) | Node::Missing { .. }) => {
            rename_tmpfs(kernel, &old, &new, flags)
        }
        (Node::FdAlias(_), _) | (_, Node::FdAlias(_)) => Err(Errno::EXDEV),
        _ => Err(Errno::EXDEV),
    }
}

fn rename_tmpfs(kernel: &mut Kernel, old: &Resolved, new: &Resolved, flags: u64) -> SysResult {
    let Node::Tmpfs(moving) = old.node else { return Err(Errno::ENOENT) };
    let (old_parent, old_name) = tmpfs_parent(kernel, old)?;
    let (new_parent, new_name) = tmpfs_parent(kernel, new)?;
    check_dir_writable(kernel, old_parent)?;
    check_dir_writable(kernel, new_parent)?;
    check_sticky(kernel, old_parent, moving)?;
    let fs = &kernel.vfs.tmpfs;
    let moving_dir = fs.get(moving).is_dir();
    // A trailing '/' on either side: Linux moves only directories then.
    if (old.trailing_slash || new.trailing_slash) && !moving_dir {
        return Err(Errno::ENOTDIR);
    }
    if moving_dir && fs.is_ancestor(moving, new_parent) {
        return Err(Errno::EINVAL);
    }
    let replaced = match new.node {
        Node::Tmpfs(ino) => Some(ino),
        _ => None,
    };
    if flags & RENAME_EXCHANGE != 0 {
        let Some(other) = replaced else { return Err(Errno::ENOENT) };
        if fs.is_dir(other) && fs.is_ancestor(other, old_parent) {
            return Err(Errno::EINVAL);
        }
        let now = now(kernel);
        kernel.vfs.tmpfs.exchange(old_parent, &old_name, new_parent, &new_name, now);
        return Ok(0);
    }
    if let Some(target) = replaced {
        if flags & RENAME_NOREPLACE != 0 {
            return Err(Errno::EEXIST);
        }
        if target == moving {
            return Ok(0);
        }
        check_sticky(kernel, new_parent, target)?;
        let target_dir = kernel.vfs.tmpfs.get(target).is_dir();
        match (moving_dir, target_dir) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (true, true) if !kernel.vfs.tmpfs.is_empty_dir(target) => {
                return Err(Errno::ENOTEMPTY)
            }
            _ => {}
        }
    }
    let now = now(kernel);
    if replaced.is_some() {
        kernel.vfs.tmpfs.unlink(&mut kernel.frames, new_parent, &new_name, now);
    }
    kernel.vfs.tmpfs.move_entry(old_parent, &old_name, new_parent, &new_name, now);
    Ok(0)
}

pub fn linkat(
    kernel: &mut Kernel,
    old_dirfd: u64,
    old_path: u64,
    new_dirfd: u64,
    new_path: u64,
    flags: u64,
) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = lookup(kernel, old_dirfd, old_path, flags & AT_SYMLINK_FOLLOW != 0)?;
    let new = lookup(kernel, new_dirfd, new_path, false)?;
    match (&old.node, &new.node) {
        (Node::Host { mount: a, rel: from }, Node::Host { mount: b, rel: to }) => {
            if a != b {
                return Err(Errno::EXDEV);
            }
            if to.is_empty() {
                return Err(Errno::EEXIST);
            }
            let id = mount_id(kernel, *a);
            let args = [id, id, flags & AT_SYMLINK_FOLLOW, from.len() as u64];
            host_path_call(kernel, Opcode::Link, args, &[from, to], &[])
        }
        (Node::Missing { .. }, _) => Err(Errno::ENOENT),
        (Node::Tmpfs(ino), Node::Missing { parent, name }) => {
            let (ino, parent) = (*ino, *parent);
            if kernel.vfs.tmpfs.get(ino).is_dir() {
                return Err(Errno::EPERM);
            }
            if new.trailing_slash {
                return Err(Errno::ENOENT);
            }
            check_dir_writable(kernel, parent)?;
            let now = now(kernel);
            kernel.vfs.tmpfs.link(parent, name, ino, now);
            kernel.vfs.tmpfs.get_mut(ino).nlink += 1;
            Ok(0)
        }
        (Node::Tmpfs(_), Node::Tmpfs(_) | Node::FdAlias(_)) => Err(Errno::EEXIST),
        _ => Err(Errno::EXDEV),
    }
}

pub fn symlinkat(kernel: &mut Kernel, target: u64, dirfd: u64, path: u64) -> SysResult {
    let target = read_user_path(kernel, target, false)?;
    let resolved = lookup(kernel, dirfd, path, false)?;
    match resolved.node {
        Node::Host { ref rel, .. } if rel.is_empty() => Err(Errno::EEXIST),
        Node::Host { mount, ref rel } => {
            let args = [mount_id(kernel, mount), target.len() as u64, 0, 0];
            host_path_call(kernel, Opcode::Symlink, args, &[&target, rel], &[])
        }
        Node::Missing { parent, ref name } => {
            if resolved.trailing_slash {
                return Err(Errno::ENOENT);
            }
            check_dir_writable(kernel, parent)?;
            let now = now(kernel);
            let body = Body::Symlink(target);
            kernel.vfs.tmpfs.create(parent, name, S_IFLNK | 0o777, UID as u32, body, now)?;
            Ok(0)
        }
        Node::Tmpfs(_) | Node::FdAlias(_) => Err(Errno::EEXIST),
    }
}

pub fn readlinkat(kernel: &mut Kernel, dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    if size as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    let resolved = lookup(kernel, dirfd, path, false)?;
    let target = match resolved.node {
        Node::Tmpfs(ino) => match &kernel.vfs.tmpfs.get(ino).body {
            Body::Symlink(target) => target.clone(),
            _ => return Err(Errno::EINVAL),
        },
        Node::FdAlias(fd) => {
            let description = kernel.files.get(fd).map_err(|_| Errno::ENOENT)?.description;
            fd_link_text(kernel, &description)
        }
        Node::Missing { .. } => return Err(Errno::ENOENT),
        Node::Host { mount, ref rel } => {
            let mut pieces = Pieces::new();
            if !pieces.gather(kernel, buf, size, true, size) {
                return Err(Errno::EFAULT);
            }
            let args = [mount_id(kernel, mount), rel.len() as u64, 0, 0];
            return host_path_call(kernel, Opcode::Readlink, args, &[rel], &pieces.list);
        }
    };
    let count = target.len().min(size as usize);
    kernel.space.copy_to_user(&mut kernel.frames, buf, &target[..count])?;
    Ok(count as u64)
}

// ---------------------------------------------------------------------------------------------
// access, truncate, fsync, chmod, chown, utimensat, statfs
// ---------------------------------------------------------------------------------------------

pub fn faccessat2(kernel: &mut Kernel, dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    let spelled = read_user_path(kernel, path, flags & AT_EMPTY_PATH != 0)?;
    if spelled.is_empty() {
        kernel.files.get(dirfd)?;
        return Ok(0);
    }
    let resolved = lookup_bytes(kernel, dirfd, &spelled, follow)?;
    match resolved.node {
        Node::Missing { .. } => Err(Errno::ENOENT),
        Node::FdAlias(fd) => kernel.files.get(fd).map(|_| 0).map_err(|_| Errno::ENOENT),
        Node::Tmpfs(ino) => {
            let inode = kernel.vfs.tmpfs.get(ino);
            if resolved.trailing_slash && !inode.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if inode.permits(mode as u32) { Ok(0) } else { Err(Errno::EACCES) }
        }
        Node::Host { mount, ref rel } => {
            // The host's Access follows symlinks; a symlink itself is always accessible.
            if !follow && node_stat(kernel, &resolved, false)?.mode & S_IFMT == S_IFLNK {
                return Ok(0);
            }
            let args = [mount_id(kernel, mount), mode, 0, 0];
            host_path_call(kernel, Opcode::Access, args, &[rel], &[])
        }
    }
}

/// Sets a tmpfs file's size, zeroing the tail of its new last page through the host.
pub(super) fn truncate_tmpfs(kernel: &mut Kernel, ino: Ino, length: u64) -> SysResult {
    match kernel.vfs.tmpfs.get(ino).body {
        Body::File { .. } => {}
        Body::Dir { .. } | Body::FdDir => return Err(Errno::EISDIR),
        _ => return Err(Errno::EINVAL),
    }
    if let Some(tail) = kernel.vfs.tmpfs.set_size(&mut kernel.frames, ino, length)? {
        io::host_call(kernel, Opcode::Zero, [0; 4], &[tail], false)?;
    }
    let now = now(kernel);
    let inode = kernel.vfs.tmpfs.get_mut(ino);
    inode.mtime = now;
    inode.ctime = now;
    Ok(0)
}

pub fn truncate(kernel: &mut Kernel, path: u64, length: u64) -> SysResult {
    if (length as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let resolved = lookup(kernel, AT_FDCWD as u64, path, true)?;
    match resolved.node {
        Node::Missing { .. } => Err(Errno::ENOENT),
        Node::FdAlias(fd) => {
            let description = kernel.files.get(fd).map_err(|_| Errno::ENOENT)?.description;
            truncate_description(kernel, &description, length)
        }
        Node::Tmpfs(ino) => {
            if !kernel.vfs.tmpfs.get(ino).permits(W_OK) {
                return Err(Errno::EACCES);
            }
            truncate_tmpfs(kernel, ino, length)
        }
        Node::Host { mount, ref rel } => {
            let args = [mount_id(kernel, mount), u64::from(O_WRONLY), 0, 0];
            let handle = host_path_call(kernel, Opcode::Open, args, &[rel], &[])?;
            let result = ring::with_ring(|ring| {
                let result = ring.call_checked(Opcode::Ftruncate, [handle, length, 0, 0], None);
                ring.post(Opcode::Close, [handle, 0, 0, 0], None);
                result
            });
            result
        }
    }
}

fn truncate_description(kernel: &mut Kernel, description: &Description, length: u64) -> SysResult {
    if description.check_writable().is_err() {
        return Err(Errno::EINVAL);
    }
    match &description.kind {
        FileKind::Host { handle, .. } => ring::with_ring(|ring| {
            ring.call_checked(Opcode::Ftruncate, [*handle, length, 0, 0], None)
        }),
        FileKind::Tmpfs(ino) => truncate_tmpfs(kernel, *ino, length),
        _ => Err(Errno::EINVAL),
    }
}

pub fn ftruncate(kernel: &mut Kernel, fd: u64, length: u64) -> SysResult {
    if (length as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let description = kernel.files.get(fd)?.description;
    truncate_description(kernel, &description, length)
}

pub fn fsync(kernel: &mut Kernel, fd: u64, data_only: bool) -> SysResult {
    let description = kernel.files.get(fd)?.description;
    match &description.kind {
        FileKind::Host { handle, .. } => ring::with_ring(|ring| {
            ring.call_checked(Opcode::Fsync, [*handle, u64::from(data_only), 0, 0], None)
        }),
        FileKind::Tmpfs(_) => Ok(0),
        FileKind::HostStdio(_) | FileKind::Pipe { .. } => Err(Errno::EINVAL),
    }
}

fn chmod_tmpfs(kernel: &mut Kernel, ino: Ino, mode: u32) -> SysResult {
    let now = now(kernel);
    let inode = kernel.vfs.tmpfs.get_mut(ino);
    if inode.uid != UID as u32 {
        return Err(Errno::EPERM);
    }
    inode.mode = (inode.mode & S_IFMT) | (mode & 0o7777);
    inode.ctime = now;
    Ok(0)
}

pub fn fchmodat(kernel: &mut Kernel, dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    if flags & AT_SYMLINK_NOFOLLOW != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let resolved = lookup(kernel, dirfd, path, true)?;
    match resolved.node {
        Node::Missing { .. } => Err(Errno::ENOENT),
        Node::FdAlias(fd) => fchmod(kernel, fd, mode),
        Node::Tmpfs(ino) => chmod_tmpfs(kernel, ino, mode as u32),
        Node::Host { mount, ref rel } => {
            let args = [mount_id(kernel, mount), mode & 0o7777, 0, 0];
            host_path_call(kernel, Opcode::Chmod, args, &[rel], &[])
        }
    }
}

pub fn fchmod(kernel: &mut Kernel, fd: u64, mode: u64) -> SysResult {
    let description = kernel.files.get(fd)?.description;
    if description.status_flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    match &description.kind {
        FileKind::Host { handle, mount, .. } => {
            let args = [mount_id(kernel, *mount), mode & 0o7777, handle + 1, 0];
            ring::with_ring(|ring| ring.call_checked(Opcode::Chmod, args, None))
        }
        FileKind::Tmpfs(ino) => chmod_tmpfs(kernel, *ino, mode as u32),
        FileKind::Pipe { .. } => Ok(0),
        FileKind::HostStdio(_) => Err(Errno::EPERM),
    }
}

/// `chown` and friends: the program's one user may "change" owners only to themselves.
pub fn fchownat(
    kernel: &mut Kernel,
    dirfd: u64,
    path: u64,
    owner: u64,
    group: u64,
    flags: u64,
) -> SysResult {
    let flags = flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH);
    let (resolved, follow) = match target_at(kernel, dirfd, path, flags)? {
        AtTarget::Path(resolved, follow) => (resolved, follow),
        AtTarget::Open(description) => {
            let stat = description_stat(kernel, &description)?;
            return chown_description(kernel, &description, &stat, owner, group);
        }
    };
    let stat = node_stat(kernel, &resolved, follow)?;
    // A change of owner is a change, refused on a read-only mount before anything else.
    if let Node::Host { mount, .. } = resolved.node {
        if kernel.vfs.mounts[mount].read_only {
            return Err(Errno::EROFS);
        }
    }
    chown_check(&stat, owner, group)
}

pub fn fchown(kernel: &mut Kernel, fd: u64, owner: u64, group: u64) -> SysResult {
    let description = kernel.files.get(fd)?.description;
    let stat = description_stat(kernel, &description)?;
    chown_description(kernel, &description, &stat, owner, group)
}

/// `fchown` of an open file: `EROFS` on a read-only mount, else [`chown_check`].
fn chown_description(
    kernel: &Kernel,
    description: &Description,
    stat: &HostStat,
    owner: u64,
    group: u64,
) -> SysResult {
    if let FileKind::Host { mount, .. } = description.kind {
        if kernel.vfs.mounts[mount].read_only {
            return Err(Errno::EROFS);
        }
    }
    chown_check(stat, owner, group)
}

fn chown_check(stat: &HostStat, owner: u64, group: u64) -> SysResult {
    let owner_ok = owner as u32 == u32::MAX || (owner == UID && stat.uid == UID as u32);
    let group_ok = group as u32 == u32::MAX || group == GID;
    if owner_ok && group_ok && (stat.uid == UID as u32 || owner as u32 == u32::MAX && group as u32 == u32::MAX) {
        Ok(0)
    } else {
        Err(Errno::EPERM)
    }
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

pub fn utimensat(kernel: &mut Kernel, dirfd: u64, path: u64, times: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let requested: Option<[i64; 4]> = match times {
        0 => None,
        ptr => Some(kernel.space.read_user(&mut kernel.frames, ptr)?),
    };
    if let Some(t) = requested {
        for nsec in [t[1], t[3]] {
            if !(0..1_000_000_000).contains(&nsec) && nsec != UTIME_NOW && nsec != UTIME_OMIT {
                return Err(Errno::EINVAL);
            }
        }
    }
    set_times(kernel, dirfd, path, requested, flags)
}

/// `utimes(path, struct timeval[2])`.
pub fn utimes(kernel: &mut Kernel, path: u64, times: u64) -> SysResult {
    let requested = match times {
        0 => None,
        ptr => {
            let t: [i64; 4] = kernel.space.read_user(&mut kernel.frames, ptr)?;
            if !(0..1_000_000).contains(&t[1]) || !(0..1_000_000).contains(&t[3]) {
                return Err(Errno::EINVAL);
            }
            Some([t[0], t[1] * 1000, t[2], t[3] * 1000])
        }
    };
    set_times(kernel, AT_FDCWD as u64, path, requested, 0)
}

fn set_times(
    kernel: &mut Kernel,
    dirfd: u64,
    path: u64,
    requested: Option<[i64; 4]>,
    flags: u64,
) -> SysResult {
    let all_now = requested.is_none_or(|t| t[1] == UTIME_NOW && t[3] == UTIME_NOW);
    // The host takes the two timespecs from the scratch frame (0: both now).
    let times_gpa = match requested {
        Some(t) => {
            // SAFETY: the scratch frame is kernel-owned; 32 bytes fit in it.
            unsafe { phys_to_virt(kernel.scratch_gpa).cast::<[i64; 4]>().write_volatile(t) };
            kernel.scratch_gpa
        }
        None => 0,
    };
    let target = if path == 0 {
        Target::Fd(dirfd)
    } else {
        let spelled = read_user_path(kernel, path, flags & AT_EMPTY_PATH != 0)?;
        if spelled.is_empty() {
            Target::Fd(dirfd)
        } else {
            let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
            Target::Node(lookup_bytes(kernel, dirfd, &spelled, follow)?)
        }
    };
    let node = match target {
        Target::Fd(fd) => {
            if fd as i32 == AT_FDCWD {
                return Err(Errno::EFAULT);
            }
            let description = kernel.files.get(fd)?.description;
            match &description.kind {
                FileKind::Host { handle, mount, .. } => {
                    let args = [mount_id(kernel, *mount), times_gpa, 0, handle + 1];
                    return ring::with_ring(|ring| ring.call_checked(Opcode::Utimens, args, None));
                }
                FileKind::Tmpfs(ino) => Node::Tmpfs(*ino),
                _ => return Ok(0),
            }
        }
        Target::Node(resolved) => resolved.node,
    };
    match node {
        Node::Missing { .. } => Err(Errno::ENOENT),
        Node::FdAlias(_) => Ok(0),
        Node::Host { mount, ref rel } => {
            let args = [mount_id(kernel, mount), times_gpa, flags & AT_SYMLINK_NOFOLLOW, 0];
            host_path_call(kernel, Opcode::Utimens, args, &[rel], &[])
        }
        Node::Tmpfs(ino) => {
            let now = now(kernel);
            let inode = kernel.vfs.tmpfs.get_mut(ino);
            let owner = inode.uid == UID as u32;
            if !owner && !(all_now && inode.permits(W_OK)) {
                return Err(if all_now { Errno::EACCES } else { Errno::EPERM });
            }
            let pick = |sec: i64, nsec: i64, old: Time| match nsec {
                UTIME_NOW => now,
                UTIME_OMIT => old,
                _ => Time { sec, nsec },
            };
            let t = requested.unwrap_or([0, UTIME_NOW, 0, UTIME_NOW]);
            inode.atime = pick(t[0], t[1], inode.atime);
            inode.mtime = pick(t[2], t[3], inode.mtime);
            inode.ctime = now;
            Ok(0)
        }
    }
}

enum Target {
    Fd(u64),
    Node(Resolved),
}

/// Linux `struct statfs` (120 bytes).
#[repr(C)]
#[derive(Default, FromBytes, IntoBytes, Immutable)]
struct StatFs {
    kind: i64,
    block_size: i64,
    blocks: u64,
    blocks_free: u64,
    blocks_available: u64,
    files: u64,
    files_free: u64,
    fsid: [i32; 2],
    name_max: i64,
    fragment_size: i64,
    flags: i64,
    _spare: [i64; 4],
}

const ST_RDONLY: i64 = 1;
const TMPFS_MAGIC: i64 = 0x0102_1994;
const PIPEFS_MAGIC: i64 = 0x5049_5045;

fn tmpfs_statfs(kernel: &Kernel, magic: i64) -> StatFs {
    let fs = &kernel.vfs.tmpfs;
    let free = fs.limit_pages.saturating_sub(fs.used_pages);
    StatFs {
        kind: magic,
        block_size: 4096,
        blocks: fs.limit_pages,
        blocks_free: free,
        blocks_available: free,
        files: 1 << 20,
        files_free: 1 << 19,
        name_max: 255,
        fragment_size: 4096,
        flags: 0x20, // ST_NOSUID... as tmpfs reports ST_RELATIME
        ..StatFs::default()
    }
}

fn statfs_mount(kernel: &mut Kernel, mount: usize, buf: u64) -> SysResult {
    let scratch = kernel.scratch_gpa;
    let args = [mount_id(kernel, mount), scratch, 0, 0];
    ring::with_ring(|ring| ring.call_checked(Opcode::Statfs, args, None))?;
    // SAFETY: the scratch frame is kernel-owned; the host wrote a struct statfs there (read
    // plainly, as `scratch_stat` says why).
    let mut reply = unsafe { phys_to_virt(scratch).cast::<StatFs>().read() };
    if kernel.vfs.mounts[mount].read_only {
        reply.flags |= ST_RDONLY;
    }
    kernel.space.write_user(&mut kernel.frames, buf, &reply)?;
    Ok(0)
}

pub fn statfs(kernel: &mut Kernel, path: u64, buf: u64) -> SysResult {
    let resolved = lookup(kernel, AT_FDCWD as u64, path, true)?;
    match resolved.node {
        Node::Missing { .. } => Err(Errno::ENOENT),
        Node::Host { mount, .. } => {
            // The host answers for the mount as a whole: check the path exists first.
            node_stat(kernel, &resolved, true)?;
            statfs_mount(kernel, mount, buf)
        }
        _ => {
            let answer = tmpfs_statfs(kernel, TMPFS_MAGIC);
            kernel.space.write_user(&mut kernel.frames, buf, &answer)?;
            Ok(0)
        }
    }
}

pub fn fstatfs(kernel: &mut Kernel, fd: u64, buf: u64) -> SysResult {
    let description = kernel.files.get(fd)?.description;
    let magic = match &description.kind {
        FileKind::Host { mount, .. } => return statfs_mount(kernel, *mount, buf),
        FileKind::Pipe { .. } => PIPEFS_MAGIC,
        _ => TMPFS_MAGIC,
    };
    let answer = tmpfs_statfs(kernel, magic);
    kernel.space.write_user(&mut kernel.frames, buf, &answer)?;
    Ok(0)
}
