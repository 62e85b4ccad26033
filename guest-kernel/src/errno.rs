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

    /// An errno from a completion's negative result.
    pub fn from_result(result: i64) -> Self {
        Self(i32::try_from(-result).unwrap_or(EIO))
    }
}

/// What every syscall returns.
pub type SysResult = Result<u64, Errno>;
