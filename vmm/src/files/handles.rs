//! The table of files the guest opened: handle number → host fd, its mount and its flags.
//! Handles start at `FIRST_FILE_HANDLE` and reuse the lowest free number, like Linux fds.

use std::os::fd::OwnedFd;

use rustix::fs::OFlags;
use shim_abi::FIRST_FILE_HANDLE;

use super::errno::Errno;

/// Most files one sandbox may hold open at once; one more is `EMFILE`.
pub const MAX_OPEN_FILES: usize = 4096;

/// A host file opened for the guest.
#[derive(Debug)]
pub struct OpenFile {
    pub fd: OwnedFd,
    /// Index of the mount it was opened beneath.
    pub mount: usize,
    /// The host open flags (`O_CLOEXEC` added by the host).
    #[expect(dead_code, reason = "kept for F_GETFL-style questions; the guest tracks its own")]
    pub flags: OFlags,
    /// Set-user-ID and set-group-ID were taken off before its first write (see
    /// `FileService::writable_file`).
    pub set_id_cleared: std::cell::Cell<bool>,
}

#[derive(Debug, Default)]
pub struct Handles {
    slots: Vec<Option<OpenFile>>,
    open: usize,
}

impl Handles {
    pub fn is_full(&self) -> bool {
        self.open >= MAX_OPEN_FILES
    }

    /// Files open right now.
    pub fn len(&self) -> usize {
        self.open
    }

    /// Stores `file` under the lowest free handle.
    pub fn insert(&mut self, file: OpenFile) -> Result<u64, Errno> {
        if self.is_full() {
            return Err(Errno::EMFILE);
        }
        let index = match self.slots.iter().position(Option::is_none) {
            Some(index) => index,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.slots[index] = Some(file);
        self.open += 1;
        Ok(FIRST_FILE_HANDLE + index as u64)
    }

    pub fn get(&self, handle: u64) -> Result<&OpenFile, Errno> {
        let index = Self::index(handle)?;
        self.slots.get(index).and_then(Option::as_ref).ok_or(Errno::EBADF)
    }

    /// Takes `handle` out of the table; dropping the result closes the host fd.
    pub fn remove(&mut self, handle: u64) -> Result<OpenFile, Errno> {
        let index = Self::index(handle)?;
        let file = self.slots.get_mut(index).and_then(Option::take).ok_or(Errno::EBADF)?;
        self.open -= 1;
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        Ok(file)
    }

    fn index(handle: u64) -> Result<usize, Errno> {
        let index = handle.checked_sub(FIRST_FILE_HANDLE).ok_or(Errno::EBADF)?;
        usize::try_from(index).map_err(|_| Errno::EBADF)
    }
}
