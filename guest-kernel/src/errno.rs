//! The guest's one error type: a Linux errno, returned by every syscall as `Result<_, Errno>`.

pub use shim_abi::errno::*;

/// A Linux errno value (positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Self = Self(EPERM);
    pub const ENOENT: Self = Self(ENOENT);
    pub const EBADF: Self = Self(EBADF);
    pub const EAGAIN: Self = Self(EAGAIN);
    pub const ENOMEM: Self = Self(ENOMEM);
    pub const EFAULT: Self = Self(EFAULT);
    pub const EEXIST: Self = Self(EEXIST);
    pub const ENODEV: Self = Self(ENODEV);
    pub const EINVAL: Self = Self(EINVAL);
    pub const EMFILE: Self = Self(EMFILE);
    pub const ENOTTY: Self = Self(ENOTTY);
    pub const ESPIPE: Self = Self(ESPIPE);
    pub const ERANGE: Self = Self(ERANGE);
    pub const ENOSYS: Self = Self(ENOSYS);
    pub const ETIMEDOUT: Self = Self(ETIMEDOUT);
    pub const ESRCH: Self = Self(ESRCH);
    pub const EACCES: Self = Self(EACCES);
    pub const EBUSY: Self = Self(EBUSY);
    pub const EXDEV: Self = Self(EXDEV);
    pub const ENOTDIR: Self = Self(ENOTDIR);
    pub const EISDIR: Self = Self(EISDIR);
    pub const ENOSPC: Self = Self(ENOSPC);
    pub const EPIPE: Self = Self(EPIPE);
    pub const ENAMETOOLONG: Self = Self(ENAMETOOLONG);
    pub const ENOTEMPTY: Self = Self(ENOTEMPTY);
    pub const ELOOP: Self = Self(ELOOP);
    pub const EOVERFLOW: Self = Self(EOVERFLOW);
    pub const EFBIG: Self = Self(EFBIG);
    pub const ENXIO: Self = Self(ENXIO);
    pub const ENFILE: Self = Self(ENFILE);
    pub const EOPNOTSUPP: Self = Self(EOPNOTSUPP);
    pub const EROFS: Self = Self(EROFS);
    /// Not an errno: the host found a user page not present (`RESULT_PAGE_NOT_PRESENT`).
    pub const PAGE_NOT_PRESENT: Self = Self(-(shim_abi::RESULT_PAGE_NOT_PRESENT as i32));
    /// Not an errno: a host lookup met a symlink leaving its mount (`RESULT_LEFT_MOUNT`); the
    /// syscall is run again with the link followed in the guest (`Vfs::exits`).
    pub const LEFT_MOUNT: Self = Self(-(shim_abi::RESULT_LEFT_MOUNT as i32));

    /// An errno from a completion's negative result.
    pub fn from_result(result: i64) -> Self {
        Self(i32::try_from(-result).unwrap_or(EIO))
    }
}

/// What every syscall returns.
pub type SysResult = Result<u64, Errno>;
