//! Guest paths: check the bytes a request names, then resolve them strictly beneath a mount's
//! root directory fd.
//!
//! Two ways to resolve, and every file request uses one of them:
//! - [`open_beneath`]: the whole path through `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`,
//!   following symlinks, for requests that follow the final component (open, stat, chmod,
//!   access, …). The kernel keeps every step — `..`, symlinks, races with renames — inside
//!   the root; an attempt to leave it is `EXDEV`, reported as `Errno::LEFT_MOUNT`, and
//!   [`find_exit`] then tells the guest which symlink left, for it to follow in its own
//!   namespace.
//! - [`last_component`]: the *parent* through `open_beneath`, then the final name, which is
//!   one component with no `/` and never `.` or `..`, for the `*at` calls that act on a
//!   directory entry without following it (mkdir, unlink, rename, readlink, lstat, …).
//!   Whatever is swapped in under that name meanwhile, a call that does not follow the final
//!   component stays in the parent, which is beneath the root.
//!
//! Nothing here opens a host path by itself: every lookup starts at a mount's fd.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use shim_abi::{NAME_MAX, PATH_MAX};

use super::errno::Errno;

/// How often a lookup that raced with a rename (`EAGAIN` from `openat2`) is retried.
const LOOKUP_RETRIES: usize = 16;

/// A checked guest path: relative, without NUL, within `PATH_MAX` and `NAME_MAX`.
#[derive(Debug, Clone)]
pub struct GuestPath {
    bytes: Vec<u8>,
}

impl GuestPath {
    /// Checks `bytes` the way the ABI asks, with the errno Linux gives for each fault.
    pub fn new(bytes: Vec<u8>) -> Result<Self, Errno> {
        if bytes.len() as u64 > PATH_MAX - 1 {
            return Err(Errno::ENAMETOOLONG);
        }
        if bytes.contains(&0) || bytes.first() == Some(&b'/') {
            return Err(Errno::EINVAL);
        }
        if bytes.split(|&byte| byte == b'/').any(|name| name.len() as u64 > NAME_MAX) {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(Self { bytes })
    }

    /// The path for `openat2`: the mount root itself is `.`.
    fn c_path(&self) -> CString {
        let bytes = if self.bytes.is_empty() { b".".to_vec() } else { self.bytes.clone() };
        CString::new(bytes).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Opens `path` beneath `root`, following symlinks only while they stay beneath it.
pub fn open_beneath(
    root: BorrowedFd<'_>,
    path: &GuestPath,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let c_path = path.c_path();
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    for _ in 0..LOOKUP_RETRIES {
        match rustix::fs::openat2(root, &c_path, flags | OFlags::CLOEXEC, mode, resolve) {
            Ok(fd) => return Ok(fd),
            // A concurrent rename made the kernel unsure the walk stayed beneath: look again.
            Err(rustix::io::Errno::AGAIN) => continue,
            Err(rustix::io::Errno::XDEV) => return Err(Errno::LEFT_MOUNT),
            Err(errno) => return Err(errno.into()),
        }
    }
    Err(Errno::EAGAIN)
}

/// An `O_PATH` fd of what `path` names beneath `root`, following symlinks (beneath only).
pub fn locate(root: BorrowedFd<'_>, path: &GuestPath) -> Result<OwnedFd, Errno> {
    open_beneath(root, path, OFlags::PATH, Mode::empty())
}

/// The first symlink on `path` (its last component included) whose following leaves `root`:
/// the byte length of the path up to and including it, and the link's target. `None` if every
/// component stays beneath, or fails for another reason (the guest then reports `EACCES`).
pub fn find_exit(root: BorrowedFd<'_>, path: &GuestPath) -> Option<(usize, Vec<u8>)> {
    // One component at a time from the directory reached so far, never following it; only a
    // symlink is then followed, from the root, to see whether it leaves. Nothing is followed
    // by hand, and the walk costs one open per component (plus one per symlink).
    let bytes = path.as_bytes();
    let mut dir: Option<OwnedFd> = None;
    let mut start = 0;
    for name in bytes.split(|&byte| byte == b'/') {
        // The path up to and including this name is `bytes[..end]`.
        let end = start + name.len();
        start = end + 1;
        if name.is_empty() {
            continue;
        }
        // A `..` of the path's own: what lies above the root is no link to follow.
        if name == b".." {
            return None;
        }
        let at = dir.as_ref().map_or(root, |fd| fd.as_fd());
        let name_path = GuestPath { bytes: name.to_vec() };
        let entry = open_beneath(at, &name_path, OFlags::PATH | OFlags::NOFOLLOW, Mode::empty());
        let entry = entry.ok()?;
        let is_symlink = rustix::fs::fstat(&entry)
            .is_ok_and(|stat| rustix::fs::FileType::from_raw_mode(stat.st_mode).is_symlink());
        if !is_symlink {
            dir = Some(entry);
            continue;
        }
        let prefix = GuestPath { bytes: bytes[..end].to_vec() };
        match open_beneath(root, &prefix, OFlags::PATH, Mode::empty()) {
            Err(Errno::LEFT_MOUNT) => {
                let target = rustix::fs::readlinkat(&entry, "", Vec::new()).ok()?;
                return Some((end, target.into_bytes()));
            }
            Ok(followed) => dir = Some(followed),
            Err(_) => return None,
        }
    }
    None
}

/// The final component of a path, ready for an `*at` call that does not follow it.
#[derive(Debug)]
pub enum Last {
    /// A plain name in its (confined) parent directory.
    Entry {
        parent: OwnedFd,
        name: CString,
        /// The path ended in `/`: Linux then wants a directory (or follows a symlink).
        trailing_slash: bool,
    },
    /// The path names a directory by `.`, `..` or as the mount root: there is no entry to
    /// act on. `dir` is that directory, found beneath the root.
    Special { dir: OwnedFd, kind: Special },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// The mount root (the empty path).
    Root,
    /// A final `.`.
    Dot,
    /// A final `..`.
    DotDot,
}

/// Splits `path` into its confined parent directory and its final name.
pub fn last_component(root: BorrowedFd<'_>, path: &GuestPath) -> Result<Last, Errno> {
    let bytes = path.as_bytes();
    let trimmed_len = bytes.iter().rposition(|&byte| byte != b'/').map_or(0, |at| at + 1);
    let trimmed = &bytes[..trimmed_len];
    let trailing_slash = trimmed_len < bytes.len();

    // `.`, `..` and the root are directories, never entries that could be symlinks: resolve
    // them whole, so an escape or a missing parent is reported before anything else.
    let (parent, name) = match trimmed.iter().rposition(|&byte| byte == b'/') {
        Some(at) => (&trimmed[..at], &trimmed[at + 1..]),
        None => (&[][..], trimmed),
    };
    let special = match name {
        b"" => Some(Special::Root),
        b"." => Some(Special::Dot),
        b".." => Some(Special::DotDot),
        _ => None,
    };
    if let Some(kind) = special {
        let dir = open_beneath(root, path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
        return Ok(Last::Special { dir, kind });
    }

    let parent_path = GuestPath { bytes: parent.to_vec() };
    let parent =
        open_beneath(root, &parent_path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
    let name = CString::new(name.to_vec()).map_err(|_| Errno::EINVAL)?;
    Ok(Last::Entry { parent, name, trailing_slash })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_follow_linux() {
        assert!(GuestPath::new(Vec::new()).is_ok());
        assert!(GuestPath::new(b"a/b/../c".to_vec()).is_ok());
        assert_eq!(GuestPath::new(b"/etc".to_vec()).unwrap_err(), Errno::EINVAL);
        assert_eq!(GuestPath::new(b"a\0b".to_vec()).unwrap_err(), Errno::EINVAL);
        let long_name = vec![b'x'; NAME_MAX as usize + 1];
        assert_eq!(GuestPath::new(long_name).unwrap_err(), Errno::ENAMETOOLONG);
        let long_path = b"a/".repeat(PATH_MAX as usize / 2);
        assert_eq!(GuestPath::new(long_path).unwrap_err(), Errno::ENAMETOOLONG);
        assert!(GuestPath::new(b"a/".repeat(PATH_MAX as usize / 2 - 1)).is_ok());
    }
}
