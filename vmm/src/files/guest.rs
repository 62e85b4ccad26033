//! The guest memory a file request names: its scatter-gather list, split into parts (a path,
//! then a buffer), copied in when small (paths, link targets) or handed to the host kernel as
//! `iovec`s when it is file data.

use shim_abi::{HostStat, Request, SgEntry, PATH_MAX};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::errno::Errno;
use super::path::GuestPath;
use crate::guest_memory;

/// A checked scatter-gather list: bounded in count and total bytes (the ranges themselves
/// are checked against guest memory when used).
#[derive(Debug, Clone, Default)]
pub struct Sg {
    entries: Vec<SgEntry>,
}

impl Sg {
    /// The request's list; `EINVAL` for too many entries or bytes, `EFAULT` when the list
    /// itself lies outside guest memory.
    pub fn of(memory: &GuestMemoryMmap, request: &Request) -> Result<Self, Errno> {
        let entries = guest_memory::sg_list(memory, request).map_err(Errno)?;
        Ok(Self { entries })
    }

    pub fn total(&self) -> u64 {
        self.entries.iter().map(|entry| entry.len).sum()
    }

    /// The first `bytes` bytes and the rest (`EINVAL` if there are fewer, `EFAULT` for a
    /// range that wraps around).
    pub fn split_at(&self, bytes: u64) -> Result<(Sg, Sg), Errno> {
        if bytes > self.total() {
            return Err(Errno::EINVAL);
        }
        let (mut head, mut tail) = (Vec::new(), Vec::new());
        let mut left = bytes;
        for entry in &self.entries {
            if left >= entry.len {
                head.push(*entry);
                left -= entry.len;
            } else if left > 0 {
                head.push(SgEntry { gpa: entry.gpa, len: left });
                // A range that wraps around the address space is no guest memory at all.
                let tail_gpa = entry.gpa.checked_add(left).ok_or(Errno::EFAULT)?;
                tail.push(SgEntry { gpa: tail_gpa, len: entry.len - left });
                left = 0;
            } else {
                tail.push(*entry);
            }
        }
        Ok((Sg { entries: head }, Sg { entries: tail }))
    }

    /// Copies the bytes out of guest memory (only for small things: paths, targets).
    pub fn read_bytes(&self, memory: &GuestMemoryMmap) -> Result<Vec<u8>, Errno> {
        let total = usize::try_from(self.total()).map_err(|_| Errno::EINVAL)?;
        let mut bytes = vec![0; total];
        let mut at = 0;
        for entry in &self.entries {
            let len = usize::try_from(entry.len).map_err(|_| Errno::EINVAL)?;
            memory
                .read_slice(&mut bytes[at..at + len], GuestAddress(entry.gpa))
                .map_err(|_| Errno::EFAULT)?;
            at += len;
        }
        Ok(bytes)
    }

    /// Copies `bytes` into the ranges in order (`bytes` must not be longer than the list).
    pub fn write_bytes(&self, memory: &GuestMemoryMmap, bytes: &[u8]) -> Result<(), Errno> {
        let mut rest = bytes;
        for entry in &self.entries {
            if rest.is_empty() {
                break;
            }
            let len = rest.len().min(usize::try_from(entry.len).unwrap_or(usize::MAX));
            memory
                .write_slice(&rest[..len], GuestAddress(entry.gpa))
                .map_err(|_| Errno::EFAULT)?;
            rest = &rest[len..];
        }
        Ok(())
    }

    /// The ranges as host `iovec`s, every one checked to lie inside guest memory.
    pub fn iovecs(&self, memory: &GuestMemoryMmap) -> Result<Vec<libc::iovec>, Errno> {
        self.entries
            .iter()
            .map(|entry| {
                let base =
                    guest_memory::host_range(memory, entry.gpa, entry.len).ok_or(Errno::EFAULT)?;
                let len = usize::try_from(entry.len).map_err(|_| Errno::EINVAL)?;
                Ok(libc::iovec { iov_base: base.cast(), iov_len: len })
            })
            .collect()
    }

    /// The only range, when the list is one (possibly after dropping empty entries).
    pub fn single(&self) -> Option<SgEntry> {
        let mut non_empty = self.entries.iter().filter(|entry| entry.len > 0);
        match (non_empty.next(), non_empty.next()) {
            (Some(entry), None) => Some(*entry),
            _ => None,
        }
    }
}

/// Reads and checks a path: `ENAMETOOLONG` is decided before any byte is copied.
pub fn read_path(memory: &GuestMemoryMmap, sg: &Sg) -> Result<GuestPath, Errno> {
    if sg.total() > PATH_MAX - 1 {
        return Err(Errno::ENAMETOOLONG);
    }
    GuestPath::new(sg.read_bytes(memory)?)
}

/// `EFAULT` unless `len` bytes at `gpa` lie inside guest memory.
pub fn check_range(memory: &GuestMemoryMmap, gpa: u64, len: usize) -> Result<(), Errno> {
    match guest_memory::host_range(memory, gpa, len as u64) {
        Some(_) => Ok(()),
        None => Err(Errno::EFAULT),
    }
}

/// `check_range` for a `HostStat` target.
pub fn check_stat_target(memory: &GuestMemoryMmap, gpa: u64) -> Result<(), Errno> {
    check_range(memory, gpa, size_of::<HostStat>())
}

pub fn put<T: IntoBytes + Immutable>(
    memory: &GuestMemoryMmap,
    gpa: u64,
    value: &T,
) -> Result<(), Errno> {
    guest_memory::write(memory, gpa, value).map_err(|_| Errno::EFAULT)
}

pub fn get<T: FromBytes + IntoBytes>(memory: &GuestMemoryMmap, gpa: u64) -> Result<T, Errno> {
    guest_memory::read(memory, gpa).map_err(|_| Errno::EFAULT)
}
