//! The errno a file request fails with, and how host errors become one.
//!
//! Host errno values pass through unchanged (guest and host are both x86-64 Linux), with one
//! exception: `EXDEV` from a confined lookup means the path tried to leave its mount, which
//! the ABI reports as [`Errno::LEFT_MOUNT`].

/// A Linux errno value; a completion carries it negated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Self = Self(libc::EPERM);
    pub const ENOENT: Self = Self(libc::ENOENT);
    pub const EBADF: Self = Self(libc::EBADF);
    pub const EAGAIN: Self = Self(libc::EAGAIN);
    pub const EACCES: Self = Self(libc::EACCES);
    pub const EFAULT: Self = Self(libc::EFAULT);
    pub const EBUSY: Self = Self(libc::EBUSY);
    pub const EEXIST: Self = Self(libc::EEXIST);
    pub const EXDEV: Self = Self(libc::EXDEV);
    pub const ENOTDIR: Self = Self(libc::ENOTDIR);
    pub const EISDIR: Self = Self(libc::EISDIR);
    pub const EINVAL: Self = Self(libc::EINVAL);
    pub const EMFILE: Self = Self(libc::EMFILE);
    pub const EROFS: Self = Self(libc::EROFS);
    pub const ENAMETOOLONG: Self = Self(libc::ENAMETOOLONG);
    pub const ENOTEMPTY: Self = Self(libc::ENOTEMPTY);
    /// No errno: `shim_abi::RESULT_LEFT_MOUNT`, a lookup met a symlink that leaves the mount.
    pub const LEFT_MOUNT: Self = Self(-(shim_abi::RESULT_LEFT_MOUNT as i32));

    /// The errno of the last failed libc call on this thread.
    pub fn last() -> Self {
        Self(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    }

    /// The completion value: `-errno`.
    pub fn completion(self) -> i64 {
        -i64::from(self.0)
    }
}

impl From<rustix::io::Errno> for Errno {
    fn from(errno: rustix::io::Errno) -> Self {
        Self(errno.raw_os_error())
    }
}

/// What a file request completes with: a non-negative value or an errno.
pub type Reply = Result<i64, Errno>;

/// A libc return value (`-1` and errno on failure) as a [`Reply`].
pub fn check<T: TryInto<i64>>(result: T) -> Reply {
    match result.try_into() {
        Ok(value) if value >= 0 => Ok(value),
        _ => Err(Errno::last()),
    }
}
