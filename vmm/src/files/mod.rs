//! Host directories granted with `--dir HOST:GUEST[:ro]`, serving the guest's file requests
//! (`Opcode::Open` … `Opcode::Statfs`, and `Read`/`Write`/`Pread`/`Fstat`/`Close` on handles).
//!
//! Built before the vCPU runs: each mount's host directory is opened once as an `O_PATH`
//! directory fd, and from then on every file access starts at one of those fds or at a handle
//! opened from them (`openat2` beneath the root, then `*at` calls), never at a host path, so a
//! later seccomp filter can forbid path-based opens. See [`path`] for how paths are confined.
//!
//! Nothing the guest sends is trusted: paths are checked, every guest range is checked to lie
//! in guest memory (`EFAULT`), sizes are capped (`EINVAL`), unknown handles are `EBADF`, and
//! read-only mounts refuse every change with `EROFS` here on the host. File data moves
//! between the host file and the guest's pages with `readv`/`writev` over the guest ranges.
//! A request never panics the VMM: it gets `-errno`.
//!
//! Creation modes (`Open` with `O_CREAT`, `Mkdir`) are taken as final: the guest kernel has
//! applied the program's umask. No mode the guest sets on the host (creating or `chmod`)
//! keeps set-user-ID or set-group-ID: host files belong to the VMM's user, not the guest's. The host process's umask still applies on top; the CLI sets
//! it to 0, an embedder may want to as well.

mod convert;
mod errno;
mod guest;
mod handles;
mod path;

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use shim_abi::{Opcode, Request, PATH_MAX};
use vm_memory::GuestMemoryMmap;

use crate::error::Error;
use convert::{GuestTimespec, LinuxStatfs, Owners};
pub use errno::Errno;
use errno::{check, Reply};
use guest::Sg;
pub use handles::MAX_OPEN_FILES;
use handles::{Handles, OpenFile};
use path::{GuestPath, Last, Special};

/// Most bytes of directory records one `Getdents` over several guest ranges carries.
const GETDENTS_BOUNCE_MAX: u64 = 1 << 20;

/// One host directory offered to the guest: `host` appears at the absolute guest path
/// `guest`, writable unless `read_only`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    pub guest: PathBuf,
    pub read_only: bool,
}

/// A mount's root, opened once.
#[derive(Debug)]
struct MountRoot {
    fd: OwnedFd,
    read_only: bool,
}

/// The open host directories and files of one sandbox.
#[derive(Debug)]
pub struct FileService {
    mounts: Vec<MountRoot>,
    handles: Handles,
    owners: Owners,
}

impl FileService {
    /// Opens each mount's host directory (`O_PATH | O_DIRECTORY | O_CLOEXEC`); the mount id
    /// the guest uses is the index in `mounts`.
    pub fn new(mounts: &[Mount]) -> Result<Self, Error> {
        let mut roots = Vec::with_capacity(mounts.len());
        for mount in mounts {
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let fd = rustix::fs::open(&mount.host, flags, Mode::empty()).map_err(|source| {
                Error::MountUnusable { path: mount.host.clone(), source: source.into() }
            })?;
            roots.push(MountRoot { fd, read_only: mount.read_only });
        }
        Ok(Self { mounts: roots, handles: Handles::default(), owners: Owners::of_this_process() })
    }

    /// Files the guest holds open right now.
    pub fn open_files(&self) -> usize {
        self.handles.len()
    }

    /// Carries out a file request; the completion value: a result `>= 0` or `-errno`.
    pub fn handle(&mut self, memory: &GuestMemoryMmap, request: &Request) -> i64 {
        match self.dispatch(memory, request) {
            Ok(value) => value,
            Err(errno) => errno.completion(),
        }
    }

    fn dispatch(&mut self, memory: &GuestMemoryMmap, request: &Request) -> Reply {
        let Some(opcode) = Opcode::from_u32(request.opcode) else {
            return Err(Errno::EINVAL);
        };
        let [a0, a1, a2, a3] = request.args;
        match opcode {
            Opcode::Open => self.open(memory, request),
            Opcode::Read => self.read(memory, request, a0, None),
            Opcode::Pread => self.read(memory, request, a0, Some(a1)),
            Opcode::Write => self.write(memory, request, a0, None),
            Opcode::Pwrite => self.write(memory, request, a0, Some(a1)),
            Opcode::Seek => self.seek(a0, a1, a2),
            Opcode::Fstat => self.fstat(memory, a0, a1),
            Opcode::Close => self.handles.remove(a0).map(|_| 0),
            Opcode::Getdents => self.getdents(memory, request, a0),
            Opcode::Stat => self.stat(memory, request, a0, a1, a2),
            Opcode::Mkdir => self.mkdir(memory, request, a0, a1),
            Opcode::Unlink => self.unlink(memory, request, a0, a1),
            Opcode::Rename => self.rename(memory, request, [a0, a1, a2, a3]),
            Opcode::Link => self.link(memory, request, [a0, a1, a2, a3]),
            Opcode::Symlink => self.symlink(memory, request, a0, a1),
            Opcode::Readlink => self.readlink(memory, request, a0, a1),
            Opcode::Access => self.access(memory, request, a0, a1),
            Opcode::Ftruncate => self.ftruncate(a0, a1),
            Opcode::SetAppend => self.set_append(a0, a1),
            Opcode::Fsync => self.fsync(a0, a1),
            Opcode::Chmod => self.chmod(memory, request, a0, a1, a2),
            Opcode::Utimens => self.utimens(memory, request, [a0, a1, a2, a3]),
            Opcode::Statfs => self.statfs(memory, a0, a1),
            Opcode::FindExit => self.find_exit(memory, request, a0, a1),
            _ => Err(Errno::EINVAL),
        }
    }

    // ---- mounts, paths, handles ------------------------------------------------------------

    fn mount(&self, id: u64) -> Result<&MountRoot, Errno> {
        usize::try_from(id).ok().and_then(|id| self.mounts.get(id)).ok_or(Errno::EINVAL)
    }

    /// The mount `id`, and the path the whole SG list names.
    fn mount_and_path(
        &self,
        memory: &GuestMemoryMmap,
        request: &Request,
        id: u64,
    ) -> Result<(&MountRoot, GuestPath), Errno> {
        let mount = self.mount(id)?;
        let path = guest::read_path(memory, &Sg::of(memory, request)?)?;
        Ok((mount, path))
    }

    /// The mount `id`, the path the first `len` bytes of the SG list name, and the rest of
    /// the list: the buffer the host writes its answer into.
    fn mount_path_and_buffer(
        &self,
        memory: &GuestMemoryMmap,
        request: &Request,
        id: u64,
        len: u64,
    ) -> Result<(&MountRoot, GuestPath, Sg), Errno> {
        let mount = self.mount(id)?;
        let (path_sg, buffer) = Sg::of(memory, request)?.split_at(len)?;
        Ok((mount, guest::read_path(memory, &path_sg)?, buffer))
    }

    fn file(&self, handle: u64) -> Result<&OpenFile, Errno> {
        self.handles.get(handle)
    }

    /// The host fd of file `handle`, to read from (for `Opcode::Splice`).
    pub fn readable_fd(&self, handle: u64) -> Result<RawFd, Errno> {
        Ok(self.file(handle)?.fd.as_raw_fd())
    }

    /// The host fd of file `handle`, to write to (`EROFS` beneath a read-only mount).
    pub fn writable_fd(&self, handle: u64) -> Result<RawFd, Errno> {
        Ok(self.writable_file(handle)?.fd.as_raw_fd())
    }

    /// `EROFS` if `handle` was opened beneath a read-only mount. Before the first change to
    /// the file through this handle, its set-user-ID bit (and set-group-ID, when group
    /// execute is on) is cleared, as Linux clears them when a writer without `CAP_FSETID`
    /// writes: the VMM often runs as root, and a program must not be able to rewrite a
    /// set-user-ID host binary and keep the bit.
    fn writable_file(&self, handle: u64) -> Result<&OpenFile, Errno> {
        let file = self.file(handle)?;
        if self.mounts[file.mount].read_only {
            return Err(Errno::EROFS);
        }
        if !file.set_id_cleared.get() {
            clear_set_id_bits(&file.fd)?;
            file.set_id_cleared.set(true);
        }
        Ok(file)
    }

    // ---- open and data ---------------------------------------------------------------------

    /// `args` = mount, Linux `O_*` flags, mode, GPA of a `HostStat` (0: none); SG = path.
    fn open(&mut self, memory: &GuestMemoryMmap, request: &Request) -> Reply {
        let [mount_id, guest_flags, guest_mode, stat_gpa] = request.args;
        let flags = convert::open_flags(guest_flags)?;
        let mode = convert::create_mode(flags, guest_mode);
        if stat_gpa != 0 {
            guest::check_stat_target(memory, stat_gpa)?;
        }
        if self.handles.is_full() {
            return Err(Errno::EMFILE);
        }
        let (mount, path) = self.mount_and_path(memory, request, mount_id)?;

        let fd = if mount.read_only && convert::open_writes(flags) {
            open_on_read_only(mount.fd.as_fd(), &path, flags)?
        } else {
            path::open_beneath(mount.fd.as_fd(), &path, flags, mode)?
        };
        let stat = if stat_gpa != 0 { Some(rustix::fs::fstat(&fd)?) } else { None };

        let mount = usize::try_from(mount_id).map_err(|_| Errno::EINVAL)?;
        // A truncating open changes the file too (as root it would keep set-user-ID).
        let truncates = flags.contains(OFlags::TRUNC) && convert::open_writes(flags);
        if truncates {
            clear_set_id_bits(&fd)?;
        }
        let set_id_cleared = std::cell::Cell::new(truncates);
        let handle = self.handles.insert(OpenFile { fd, mount, flags, set_id_cleared })?;
        if let Some(stat) = stat {
            if let Err(errno) = guest::put(memory, stat_gpa, &self.owners.host_stat(&stat)) {
                let _ = self.handles.remove(handle);
                return Err(errno);
            }
        }
        i64::try_from(handle).map_err(|_| Errno::EMFILE)
    }

    /// `readv`/`preadv` from the host file straight into the guest's pages. Without an
    /// offset the host fd's own position moves, so guest fds sharing a handle share it.
    fn read(
        &mut self,
        memory: &GuestMemoryMmap,
        request: &Request,
        handle: u64,
        offset: Option<u64>,
    ) -> Reply {
        let fd = self.file(handle)?.fd.as_raw_fd();
        let offset = offset.map(file_offset).transpose()?;
        let iovecs = Sg::of(memory, request)?.iovecs(memory)?;
        transfer_vectored(fd, &iovecs, offset, Direction::IntoGuest)
    }

    /// `writev`/`pwritev` from the guest's pages to the host file.
    fn write(
        &mut self,
        memory: &GuestMemoryMmap,
        request: &Request,
        handle: u64,
        offset: Option<u64>,
    ) -> Reply {
        let fd = self.writable_file(handle)?.fd.as_raw_fd();
        let offset = offset.map(file_offset).transpose()?;
        let iovecs = Sg::of(memory, request)?.iovecs(memory)?;
        transfer_vectored(fd, &iovecs, offset, Direction::FromGuest)
    }

    /// `args` = handle, 1 to set `O_APPEND` or 0 to clear it. Result: 0.
    fn set_append(&mut self, handle: u64, append: u64) -> Reply {
        let fd = self.file(handle)?.fd.as_raw_fd();
        // SAFETY: F_GETFL on an fd this table owns; no memory is involved.
        let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })? as libc::c_int;
        let flags = match append {
            0 => flags & !libc::O_APPEND,
            1 => flags | libc::O_APPEND,
            _ => return Err(Errno::EINVAL),
        };
        // SAFETY: F_SETFL on an fd this table owns, with flags it reported plus or minus
        // O_APPEND; no memory is involved.
        check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(|_| 0)
    }

    /// `args` = handle, offset (i64), whence. Result: the new offset.
    fn seek(&mut self, handle: u64, offset: u64, whence: u64) -> Reply {
        let fd = self.file(handle)?.fd.as_raw_fd();
        let whence = libc::c_int::try_from(whence).map_err(|_| Errno::EINVAL)?;
        // SAFETY: lseek on an fd this table owns; no memory is involved.
        let result = unsafe { libc::lseek(fd, offset.cast_signed(), whence) };
        check(result)
    }

    /// `getdents64` on the directory handle into the guest's buffer. One guest range (the
    /// usual case) is filled directly; records cannot straddle ranges, so several ranges are
    /// filled through a host buffer of the same size and scattered.
    fn getdents(&mut self, memory: &GuestMemoryMmap, request: &Request, handle: u64) -> Reply {
        let fd = self.file(handle)?.fd.as_raw_fd();
        let sg = Sg::of(memory, request)?;
        if let Some(entry) = sg.single() {
            let target = crate::guest_memory::host_range(memory, entry.gpa, entry.len)
                .ok_or(Errno::EFAULT)?;
            // SAFETY: the range was checked to lie inside guest memory and no Rust reference
            // to it exists; the kernel writes at most `entry.len` bytes of records into it.
            let result = unsafe { libc::syscall(libc::SYS_getdents64, fd, target, entry.len) };
            return check(result);
        }
        // Fewer records than would fit is what getdents may always return: a bounded buffer.
        let len = sg.total().min(GETDENTS_BOUNCE_MAX);
        let mut records = vec![0u8; usize::try_from(len).map_err(|_| Errno::EINVAL)?];
        // SAFETY: `records` is a live host buffer of exactly that many bytes.
        let result = unsafe {
            libc::syscall(libc::SYS_getdents64, fd, records.as_mut_ptr(), records.len())
        };
        let filled = usize::try_from(check(result)?).map_err(|_| Errno::EINVAL)?;
        sg.write_bytes(memory, &records[..filled])?;
        Ok(i64::try_from(filled).unwrap_or(i64::MAX))
    }

    // ---- status ----------------------------------------------------------------------------

    /// `args` = handle, GPA of a `HostStat`.
    fn fstat(&mut self, memory: &GuestMemoryMmap, handle: u64, stat_gpa: u64) -> Reply {
        let stat = rustix::fs::fstat(&self.file(handle)?.fd)?;
        guest::put(memory, stat_gpa, &self.owners.host_stat(&stat))?;
        Ok(0)
    }

    /// `args` = mount, 0 or `AT_SYMLINK_NOFOLLOW`, GPA of a `HostStat`; SG = path.
    fn stat(
        &mut self,
        memory: &GuestMemoryMmap,
        request: &Request,
        mount_id: u64,
        flags: u64,
        stat_gpa: u64,
    ) -> Reply {
        let no_follow = match flags {
            0 => false,
            convert::AT_SYMLINK_NOFOLLOW => true,
            _ => return Err(Errno::EINVAL),
        };
        guest::check_stat_target(memory, stat_gpa)?;
        let (mount, path) = self.mount_and_path(memory, request, mount_id)?;
        let root = mount.fd.as_fd();

        let stat = if no_follow {
            match path::last_component(root, &path)? {
                Last::Entry { parent, name, trailing_slash: false } => {
                    rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW)?
                }
                Last::Special { dir, .. } => rustix::fs::fstat(&dir)?,
                // A trailing '/' makes Linux follow the final symlink after all.
                Last::Entry { .. } => rustix::fs::fstat(path::locate(root, &path)?)?,
            }
        } else {
            rustix::fs::fstat(path::locate(root, &path)?)?
        };
        guest::put(memory, stat_gpa, &self.owners.host_stat(&stat))?;
        Ok(0)
    }

    /// `args` = mount, GPA of a Linux `struct statfs`.
    fn statfs(&mut self, memory: &GuestMemoryMmap, mount_id: u64, statfs_gpa: u64) -> Reply {
        let mount = self.mount(mount_id)?;
        let mut statfs = LinuxStatfs::default();
        // SAFETY: the raw fstatfs syscall fills exactly Linux's 120-byte `struct statfs`,
        // which `LinuxStatfs` is; the mount fd is open (fstatfs accepts O_PATH fds).
        let result =
            unsafe { libc::syscall(libc::SYS_fstatfs, mount.fd.as_raw_fd(), &raw mut statfs) };
        check(result)?;
        if mount.read_only {
            statfs.mark_read_only();
        }
        guest::put(memory, statfs_gpa, &statfs)?;
        Ok(0)
    }

    /// `args` = mount, `F_OK`/`R_OK`/`W_OK`/`X_OK` bits; SG = path.
    fn access(
        &mut self,
        memory: &GuestMemoryMmap,
        request: &Request,
        id: u64,
        mode: u64,
    ) -> Reply {
        if mode & !7 != 0 {
            return Err(Errno::EINVAL);
        }
        let (mount, path) = self.mount_and_path(memory, request, id)?;
        let fd = path::locate(mount.fd.as_fd(), &path)?;
        if mount.read_only && mode & 2 != 0 {
            // Linux says EROFS for files, directories and symlinks; not for devices or FIFOs.
            let kind = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
            if matches!(kind, FileType::RegularFile | FileType::Directory | FileType::Symlink) {
                return Err(Errno::EROFS);
            }
        }
        // SAFETY: a plain syscall on an fd we own, with a static empty C string.
        let result = unsafe {
            libc::syscall(
                libc::SYS_faccessat2,
                fd.as_raw_fd(),
                c"".as_ptr(),
                libc::c_int::try_from(mode).map_err(|_| Errno::EINVAL)?,
                libc::AT_EMPTY_PATH,
            )
        };
        check(result).map(|_| 0)
    }

    // ---- changes to open files ---------------------------------------------------------------

    /// `args` = handle, new length.
    fn ftruncate(&mut self, handle: u64, length: u64) -> Reply {
        let file = self.writable_file(handle)?;
        if i64::try_from(length).is_err() {
            return Err(Errno::EINVAL);
        }
        rustix::fs::ftruncate(&file.fd, length)?;
        Ok(0)
    }

    /// `args` = handle, 1 for `fdatasync`.
    fn fsync(&mut self, handle: u64, data_only: u64) -> Reply {
        let file = self.file(handle)?;
        match data_only {
            0 => rustix::fs::fsync(&file.fd)?,
            1 => rustix::fs::fdatasync(&file.fd)?,
            _ => return Err(Errno::EINVAL),
        }
        Ok(0)
    }

    // ---- changes to the tree -----------------------------------------------------------------

    /// `args` = mount, mode; SG = path.
    fn mkdir(&mut self, memory: &GuestMemoryMmap, request: &Request, id: u64, mode: u64) -> Reply {
        let (mount, path) = self.mount_and_path(memory, request, id)?;
        let (parent, name) = match path::last_component(mount.fd.as_fd(), &path)? {
            Last::Special { .. } => return Err(Errno::EEXIST),
            Last::Entry { parent, name, .. } => (parent, name),
        };
        if mount.read_only {
            return Err(exists_else(&parent, &name, Errno::EROFS));
        }
        rustix::fs::mkdirat(&parent, &name, convert::host_mode(mode))?;
        Ok(0)
    }

    /// `args` = mount, 0 or `AT_REMOVEDIR`; SG = path.
    fn unlink(
        &mut self,
        memory: &GuestMemoryMmap,
        request: &Request,
        id: u64,
        flags: u64,
    ) -> Reply {
        let remove_dir = match flags {
            0 => false,
            convert::AT_REMOVEDIR => true,
            _ => return Err(Errno::EINVAL),
        };
        let (mount, path) = self.mount_and_path(memory, request, id)?;
        let (parent, name, trailing_slash) = match path::last_component(mount.fd.as_fd(), &path)? {
            // What rmdir(2) and unlink(2) say for these on Linux.
            Last::Special { kind, .. } => {
                return Err(match (remove_dir, kind) {
                    (false, _) => Errno::EISDIR,
                    (true, Special::Root) => Errno::EBUSY,
                    (true, Special::Dot) => Errno::EINVAL,
                    (true, Special::DotDot) => Errno::ENOTEMPTY,
                })
            }
            Last::Entry { parent, name, trailing_slash } => (parent, name, trailing_slash),
        };
        if trailing_slash && !remove_dir {
            let stat = rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW)?;
            let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
            return Err(if is_dir { Errno::EISDIR } else { Errno::ENOTDIR });
        }
        if mount.read_only {
            return Err(Errno::EROFS);
        }
        let flags = if remove_dir { AtFlags::REMOVEDIR } else { AtFlags::empty() };
        rustix::fs::unlinkat(&parent, &name, flags)?;
        Ok(0)
    }

    /// `args` = old mount, new mount, `RENAME_*` flags, bytes of the old path; SG = old path
    /// then new path.
    fn rename(&mut self, memory: &GuestMemoryMmap, request: &Request, args: [u64; 4]) -> Reply {
        let [old_id, new_id, flags, old_len] = args;
        let flags = u32::try_from(flags).map_err(|_| Errno::EINVAL)?;
        let (mount, old, new) = self.two_paths(memory, request, old_id, new_id, old_len)?;
        let root = mount.fd.as_fd();
        let (old_parent, old_name, old_slash) =
            entry_or(path::last_component(root, &old)?, Errno::EBUSY)?;
        let (new_parent, new_name, new_slash) =
            entry_or(path::last_component(root, &new)?, Errno::EBUSY)?;
        if old_slash || new_slash {
            // A trailing '/' on either side: Linux moves only directories then.
            let stat = rustix::fs::statat(&old_parent, &old_name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
        }
        if mount.read_only {
            return Err(Errno::EROFS);
        }
        let flags = RenameFlags::from_bits_retain(flags);
        rustix::fs::renameat_with(&old_parent, &old_name, &new_parent, &new_name, flags)?;
        Ok(0)
    }

    /// `args` = old mount, new mount, 0 or `AT_SYMLINK_FOLLOW`, bytes of the old path; SG =
    /// old path then new path.
    fn link(&mut self, memory: &GuestMemoryMmap, request: &Request, args: [u64; 4]) -> Reply {
        let [old_id, new_id, flags, old_len] = args;
        let follow = match flags {
            0 => false,
            convert::AT_SYMLINK_FOLLOW => true,
            _ => return Err(Errno::EINVAL),
        };
        let (mount, old, new) = self.two_paths(memory, request, old_id, new_id, old_len)?;
        let root = mount.fd.as_fd();
        // `.`, `..` and the root are directories: no hard links to them (EPERM).
        let (old_parent, old_name, old_slash) =
            entry_or(path::last_component(root, &old)?, Errno::EPERM)?;
        let (new_parent, new_name, new_slash) =
            entry_or(path::last_component(root, &new)?, Errno::EEXIST)?;
        if old_slash {
            let kind =
                FileType::from_raw_mode(rustix::fs::fstat(path::locate(root, &old)?)?.st_mode);
            return Err(if kind == FileType::Directory { Errno::EPERM } else { Errno::ENOTDIR });
        }
        if new_slash {
            return Err(exists_else(&new_parent, &new_name, Errno::ENOENT));
        }
        if mount.read_only {
            return Err(exists_else(&new_parent, &new_name, Errno::EROFS));
        }

        // Following a symlink must stay beneath the root too: link the file it resolves to
        // beneath the root by its fd, never by letting linkat follow the name.
        let old_stat = rustix::fs::statat(&old_parent, &old_name, AtFlags::SYMLINK_NOFOLLOW)?;
        if follow && FileType::from_raw_mode(old_stat.st_mode) == FileType::Symlink {
            let target = path::locate(root, &old)?;
            rustix::fs::linkat(&target, c"", &new_parent, &new_name, AtFlags::EMPTY_PATH)?;
        } else {
            rustix::fs::linkat(&old_parent, &old_name, &new_parent, &new_name, AtFlags::empty())?;
        }
        Ok(0)
    }

    /// `args` = mount, bytes of the target; SG = target then link path. The target is stored
    /// as given: like Linux, any string is a valid symlink target.
    fn symlink(
        &mut self,
        memory: &GuestMemoryMmap,
        request: &Request,
        id: u64,
        len: u64,
    ) -> Reply {
        let mount = self.mount(id)?;
        let (target_sg, path_sg) = Sg::of(memory, request)?.split_at(len)?;
        if target_sg.total() > PATH_MAX - 1 {
            return Err(Errno::ENAMETOOLONG);
        }
        let target = target_sg.read_bytes(memory)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        let target = std::ffi::CString::new(target).map_err(|_| Errno::EINVAL)?;
        let path = guest::read_path(memory, &path_sg)?;

        let (parent, name, trailing_slash) =
            entry_or(path::last_component(mount.fd.as_fd(), &path)?, Errno::EEXIST)?;
        if trailing_slash {
            return Err(exists_else(&parent, &name, Errno::ENOENT));
        }
        if mount.read_only {
            return Err(exists_else(&parent, &name, Errno::EROFS));
        }
        rustix::fs::symlinkat(&target, &parent, &name)?;
        Ok(0)
    }

    /// `args` = mount, bytes of the path; SG = path then the buffer for the target.
    fn readlink(
        &mut self,
        memory: &GuestMemoryMmap,
        request: &Request,
        id: u64,
        len: u64,
    ) -> Reply {
        let (mount, path, buffer) = self.mount_path_and_buffer(memory, request, id, len)?;
        if buffer.total() == 0 {
            return Err(Errno::EINVAL);
        }
        let root = mount.fd.as_fd();
        let (parent, name) = match path::last_component(root, &path)? {
            Last::Entry { parent, name, trailing_slash: false } => (parent, name),
            // A directory, or a path Linux follows to its end: never a symlink.
            Last::Special { .. } => return Err(Errno::EINVAL),
            Last::Entry { .. } => {
                path::locate(root, &path)?;
                return Err(Errno::EINVAL);
            }
        };
        let capacity = usize::try_from(buffer.total().min(PATH_MAX)).unwrap_or(0);
        let mut target = vec![0u8; capacity];
        let placed = rustix::fs::readlinkat_raw(&parent, &name, &mut target[..])?;
        buffer.write_bytes(memory, &target[..placed])?;
        Ok(i64::try_from(placed).unwrap_or(i64::MAX))
    }

    /// The symlink on the path that leaves the mount, for the guest to follow itself.
    fn find_exit(
        &mut self,
        memory: &GuestMemoryMmap,
        request: &Request,
        id: u64,
        len: u64,
    ) -> Reply {
        let (mount, path, buffer) = self.mount_path_and_buffer(memory, request, id, len)?;
        if buffer.total() < PATH_MAX {
            return Err(Errno::EINVAL);
        }
        let (prefix_len, target) =
            path::find_exit(mount.fd.as_fd(), &path).ok_or(Errno::ENOENT)?;
        // A target is at most PATH_MAX - 1 bytes, as readlink gives it.
        if target.len() as u64 >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        buffer.write_bytes(memory, &target)?;
        Ok((prefix_len as i64) | ((target.len() as i64) << 32))
    }

    /// `args` = mount, mode, handle + 1 (0: the path in SG).
    fn chmod(
        &mut self,
        memory: &GuestMemoryMmap,
        request: &Request,
        id: u64,
        mode: u64,
        handle_plus_one: u64,
    ) -> Reply {
        let mode = convert::host_mode(mode);
        if handle_plus_one != 0 {
            let file = self.writable_file(handle_plus_one - 1)?;
            rustix::fs::fchmod(&file.fd, mode)?;
            return Ok(0);
        }
        let (mount, path) = self.mount_and_path(memory, request, id)?;
        let fd = path::locate(mount.fd.as_fd(), &path)?;
        if mount.read_only {
            return Err(Errno::EROFS);
        }
        chmod_located(mount.fd.as_fd(), &path, &fd, mode)
    }

    /// `args` = mount, GPA of two `timespec`s (0: now), `AT_SYMLINK_NOFOLLOW` or 0, handle + 1
    /// (0: the path in SG).
    fn utimens(&mut self, memory: &GuestMemoryMmap, request: &Request, args: [u64; 4]) -> Reply {
        let [id, times_gpa, flags, handle_plus_one] = args;
        let no_follow = match flags {
            0 => false,
            convert::AT_SYMLINK_NOFOLLOW => true,
            _ => return Err(Errno::EINVAL),
        };
        let times = match times_gpa {
            0 => None,
            gpa => {
                let times: [GuestTimespec; 2] = guest::get(memory, gpa)?;
                Some([times[0].to_host(), times[1].to_host()])
            }
        };
        let times_ptr = times.as_ref().map_or(std::ptr::null(), |times| times.as_ptr());

        if handle_plus_one != 0 {
            let file = self.writable_file(handle_plus_one - 1)?;
            // SAFETY: `times_ptr` is null or points at two timespecs that outlive the call;
            // a null path makes utimensat act on the fd itself (futimens).
            let result = unsafe {
                libc::syscall(libc::SYS_utimensat, file.fd.as_raw_fd(), 0usize, times_ptr, 0)
            };
            return check(result).map(|_| 0);
        }

        let (mount, path) = self.mount_and_path(memory, request, id)?;
        let root = mount.fd.as_fd();
        let last = if no_follow { Some(path::last_component(root, &path)?) } else { None };
        let (dir, name, at_flags) = match last {
            Some(Last::Entry { parent, name, trailing_slash: false }) => {
                (parent, name, libc::AT_SYMLINK_NOFOLLOW)
            }
            Some(Last::Special { dir, .. }) => (dir, c"".to_owned(), libc::AT_EMPTY_PATH),
            // Following (or a trailing '/'): the object the whole path resolves to.
            _ => (path::locate(root, &path)?, c"".to_owned(), libc::AT_EMPTY_PATH),
        };
        if mount.read_only {
            return Err(Errno::EROFS);
        }
        // SAFETY: `name` is a C string and `times_ptr` null or two timespecs, both alive for
        // the call; `dir` is an fd we own.
        let result =
            unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times_ptr, at_flags) };
        check(result).map(|_| 0)
    }

    /// The common part of `Rename` and `Link`: one mount (else `EXDEV`), two paths.
    fn two_paths(
        &self,
        memory: &GuestMemoryMmap,
        request: &Request,
        old_id: u64,
        new_id: u64,
        old_len: u64,
    ) -> Result<(&MountRoot, GuestPath, GuestPath), Errno> {
        let mount = self.mount(old_id)?;
        self.mount(new_id)?;
        if old_id != new_id {
            return Err(Errno::EXDEV);
        }
        let (old_sg, new_sg) = Sg::of(memory, request)?.split_at(old_len)?;
        let old = guest::read_path(memory, &old_sg)?;
        let new = guest::read_path(memory, &new_sg)?;
        Ok((mount, old, new))
    }
}

/// Takes set-user-ID, and set-group-ID with group execute, off the file `fd` is open on.
fn clear_set_id_bits(fd: &OwnedFd) -> Result<(), Errno> {
    let mode = rustix::fs::fstat(fd)?.st_mode;
    let set_gid_counts = mode & libc::S_IXGRP != 0;
    let mut cleared = mode & !libc::S_ISUID;
    if set_gid_counts {
        cleared &= !libc::S_ISGID;
    }
    if cleared != mode {
        // Refused only to a VMM that neither owns the file nor runs as root, and then the
        // host kernel clears the bits itself on the write that follows.
        let _ = rustix::fs::fchmod(fd, Mode::from_raw_mode(cleared & 0o7777));
    }
    Ok(())
}

/// Which way [`transfer_vectored`] moves data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    IntoGuest,
    FromGuest,
}

/// `readv`/`preadv` (or `writev`/`pwritev`) over guest ranges that were checked to lie inside
/// guest memory, `IOV_MAX` ranges per call: a 4 MiB buffer on scattered frames is more than a
/// thousand ranges, which one call refuses with `EINVAL`. Stops at the first short call; an
/// error after some bytes moved returns those bytes, as Linux's own `readv` does.
fn transfer_vectored(
    fd: RawFd,
    iovecs: &[libc::iovec],
    offset: Option<i64>,
    direction: Direction,
) -> Reply {
    let mut total: i64 = 0;
    for chunk in iovecs.chunks(IOV_MAX) {
        let wanted: usize = chunk.iter().map(|iovec| iovec.iov_len).sum();
        let count = chunk.len() as libc::c_int; // at most IOV_MAX
        let at = offset.map(|offset| offset + total);
        // SAFETY: every iovec names a range checked to lie inside guest memory, which stays
        // mapped for the call; the vCPU is stopped, and no Rust reference to those bytes
        // exists, so the kernel reading or writing them (even overlapping) aliases nothing.
        let result = unsafe {
            match (direction, at) {
                (Direction::IntoGuest, Some(at)) => libc::preadv(fd, chunk.as_ptr(), count, at),
                (Direction::IntoGuest, None) => libc::readv(fd, chunk.as_ptr(), count),
                (Direction::FromGuest, Some(at)) => libc::pwritev(fd, chunk.as_ptr(), count, at),
                (Direction::FromGuest, None) => libc::writev(fd, chunk.as_ptr(), count),
            }
        };
        match usize::try_from(result) {
            Ok(moved) => {
                total += moved as i64;
                if moved < wanted {
                    break;
                }
            }
            Err(_) if total > 0 => break,
            Err(_) => return check(result),
        }
    }
    Ok(total)
}

/// Linux's `UIO_MAXIOV`: the most ranges one `readv`/`writev` takes.
const IOV_MAX: usize = 1024;

/// A guest file offset: negative ones are `EINVAL`, as for `pread(2)`.
fn file_offset(value: u64) -> Result<i64, Errno> {
    i64::try_from(value).map_err(|_| Errno::EINVAL)
}

/// The entry of `last`, or `special` when the path ends in `.`, `..` or is the root.
fn entry_or(last: Last, special: Errno) -> Result<(OwnedFd, std::ffi::CString, bool), Errno> {
    match last {
        Last::Entry { parent, name, trailing_slash } => Ok((parent, name, trailing_slash)),
        Last::Special { .. } => Err(special),
    }
}

/// `EEXIST` if `name` exists in `parent` (not following it), else `otherwise` — the order in
/// which Linux reports creating something that is already there.
fn exists_else(parent: &OwnedFd, name: &CStr, otherwise: Errno) -> Errno {
    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Errno::EEXIST,
        Err(rustix::io::Errno::NOENT) => otherwise,
        Err(errno) => errno.into(),
    }
}

/// Opens on a read-only mount what would be writable elsewhere, as Linux decides it: `EROFS`
/// only where something would change (a new file, writing, truncating); an existing file
/// opened with `O_CREAT` alone opens, with `O_CREAT | O_EXCL` it is `EEXIST`.
fn open_on_read_only(
    root: BorrowedFd<'_>,
    path: &GuestPath,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let create = flags.contains(OFlags::CREATE);
    let exclusive = create && flags.contains(OFlags::EXCL);
    let mut probe = OFlags::PATH | (flags & (OFlags::NOFOLLOW | OFlags::DIRECTORY));
    if exclusive {
        probe |= OFlags::NOFOLLOW;
    }
    match path::open_beneath(root, path, probe, Mode::empty()) {
        Err(Errno::ENOENT) if create => {
            // Missing: EROFS if it would have been created, ENOENT if its directory is missing.
            path::last_component(root, path)?;
            Err(Errno::EROFS)
        }
        Err(errno) => Err(errno),
        Ok(_) if exclusive => Err(Errno::EEXIST),
        Ok(_)
            if flags.intersects(OFlags::WRONLY | OFlags::RDWR | OFlags::TRUNC)
                || flags.contains(OFlags::TMPFILE) =>
        {
            Err(Errno::EROFS)
        }
        Ok(_) => path::open_beneath(root, path, flags - OFlags::CREATE, Mode::empty()),
    }
}

/// `chmod` on what `fd` (an `O_PATH` fd found beneath the root) names: `fchmodat2` with
/// `AT_EMPTY_PATH` (Linux 6.6+); on older kernels, reopen the path beneath the root for
/// reading and `fchmod` that.
fn chmod_located(root: BorrowedFd<'_>, path: &GuestPath, fd: &OwnedFd, mode: Mode) -> Reply {
    // SAFETY: a plain syscall on an fd we own with a static empty C string.
    let result = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode.bits(),
            libc::AT_EMPTY_PATH,
        )
    };
    match check(result) {
        Err(errno) if errno.0 == libc::ENOSYS => {
            let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
            let file = path::open_beneath(root, path, flags, Mode::empty())?;
            rustix::fs::fchmod(&file, mode)?;
            Ok(0)
        }
        other => other.map(|_| 0),
    }
}
