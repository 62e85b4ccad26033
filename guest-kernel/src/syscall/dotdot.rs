//! `..` as Linux applies it: to the directory its prefix really names, once the symlinks on
//! that prefix are followed, never to the prefix's spelling. `/data/link/../f`, with `link`
//! a symlink to `d1/d2`, is `/data/d1/f`, not `/data/f`.
//!
//! Only a path with a `..` pays for this, and only for the components before its `..` that
//! are not known to be symlink-free: the working directory is kept canonical (see
//! [`canonical`]), so `../x` relative to it costs nothing. Each other component is looked at
//! without following it, in the tmpfs or with a host `Stat`, and a symlink is replaced by
//! its target (a host one read with `Readlink`), as the kernel's own walk does.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use shim_abi::{Opcode, PATH_MAX};

use super::fs::{host_path_call, mount_id, node_stat};
use crate::errno::Errno;
use crate::fs::path;
use crate::fs::tmpfs::{Body, S_IFDIR, S_IFLNK, S_IFMT};
use crate::fs::{Node, MAX_SYMLINK_HOPS};
use crate::mm::kernel_gpa;
use crate::process::Kernel;

/// True if `path` has a `..` component.
pub fn has_dotdot(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').any(|name| name == b"..")
}

/// `spelled` made absolute against `base` (a normal absolute path, symlink-free if
/// `base_is_canonical`) with every `.` and `..` applied; a trailing `/` is kept, since it
/// still demands a directory.
pub fn apply(
    kernel: &mut Kernel,
    base: &[u8],
    base_is_canonical: bool,
    spelled: &[u8],
) -> Result<Vec<u8>, Errno> {
    let trailing_slash = path::normalize(base, spelled)?.trailing_slash;
    let mut walk = Walk::new(base, base_is_canonical, spelled);
    walk.run(kernel, false)?;
    let mut out = walk.path();
    if trailing_slash && out != b"/" {
        out.push(b'/');
    }
    Ok(out)
}

/// Normal absolute `path` with every symlink on it followed: what the working directory is
/// kept as, like the kernel's, so that `getcwd` shows it and `..` from it is plain.
pub fn canonical(kernel: &mut Kernel, path: &[u8]) -> Result<Vec<u8>, Errno> {
    let mut walk = Walk::new(b"/", true, path);
    walk.run(kernel, true)?;
    Ok(walk.path())
}

/// A walk over components: `parts` is the path so far, the first `checked` of them known to
/// be no symlinks, and `pending` what is left to apply.
struct Walk {
    parts: Vec<Vec<u8>>,
    checked: usize,
    pending: VecDeque<Vec<u8>>,
    hops: usize,
}

/// What one component is, looked at without following it.
enum Entry {
    Directory,
    Symlink(Vec<u8>),
    Other,
}

impl Walk {
    fn new(base: &[u8], base_is_canonical: bool, spelled: &[u8]) -> Self {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        if spelled.first() != Some(&b'/') {
            parts.extend(path::components(base).map(|name| name.to_vec()));
        }
        let checked = if base_is_canonical { parts.len() } else { 0 };
        let pending = components_of(spelled);
        Self { parts, checked, pending, hops: 0 }
    }

    fn path(&self) -> Vec<u8> {
        let names: Vec<&[u8]> = self.parts.iter().map(|name| name.as_slice()).collect();
        path::join(&names)
    }

    /// Applies every pending component; with `settle_all`, then also follows any symlink
    /// left on the result.
    fn run(&mut self, kernel: &mut Kernel, settle_all: bool) -> Result<(), Errno> {
        loop {
            while let Some(name) = self.pending.pop_front() {
                if name != b".." {
                    self.parts.push(name);
                    continue;
                }
                if self.settle(kernel, Some(name))? {
                    continue;
                }
                self.parts.pop();
                self.checked = self.checked.min(self.parts.len());
            }
            if !settle_all || !self.settle(kernel, None)? {
                return Ok(());
            }
        }
    }

    /// Checks the unchecked parts in order. At the first symlink, puts its target, then the
    /// parts after it, then `then`, back in front of `pending` and says so (`true`); a part
    /// that is neither directory nor symlink is `ENOTDIR`, since something follows it.
    fn settle(&mut self, kernel: &mut Kernel, then: Option<Vec<u8>>) -> Result<bool, Errno> {
        while self.checked < self.parts.len() {
            let prefix = {
                let names: Vec<&[u8]> =
                    self.parts[..=self.checked].iter().map(|name| name.as_slice()).collect();
                path::join(&names)
            };
            match entry(kernel, &prefix)? {
                Entry::Directory => self.checked += 1,
                Entry::Other => return Err(Errno::ENOTDIR),
                Entry::Symlink(target) => {
                    self.hops += 1;
                    if self.hops > MAX_SYMLINK_HOPS || target.is_empty() {
                        return Err(if target.is_empty() { Errno::ENOENT } else { Errno::ELOOP });
                    }
                    let after = self.parts.split_off(self.checked + 1);
                    self.parts.pop();
                    if target.first() == Some(&b'/') {
                        self.parts.clear();
                        self.checked = 0;
                    }
                    let mut front = components_of(&target);
                    front.extend(after);
                    front.extend(then);
                    front.extend(self.pending.drain(..));
                    self.pending = front;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// The components of `path` other than empty ones and `.`.
fn components_of(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|name| !name.is_empty() && *name != b".")
        .map(|name| name.to_vec())
        .collect()
}

/// What normal absolute `path` names, its last component not followed.
fn entry(kernel: &mut Kernel, path: &[u8]) -> Result<Entry, Errno> {
    let resolved = kernel.vfs.resolve(b"/", path, false)?;
    match resolved.node {
        Node::Missing { .. } => Err(Errno::ENOENT),
        Node::FdAlias(_) => Ok(Entry::Other),
        Node::Tmpfs(ino) => Ok(match &kernel.vfs.tmpfs.get(ino).body {
            Body::Symlink(target) => Entry::Symlink(target.clone()),
            Body::Dir { .. } | Body::FdDir => Entry::Directory,
            _ => Entry::Other,
        }),
        Node::Host { ref rel, .. } if rel.is_empty() => Ok(Entry::Directory),
        Node::Host { mount, ref rel } => match node_stat(kernel, &resolved, false)?.mode & S_IFMT {
            S_IFDIR => Ok(Entry::Directory),
            S_IFLNK => {
                let mut target = vec![0u8; PATH_MAX as usize];
                let args = [mount_id(kernel, mount), rel.len() as u64, 0, 0];
                // Named by a mutable pointer: the host writes the target there.
                let buffer = [(kernel_gpa(target.as_mut_ptr()), PATH_MAX)];
                let length = host_path_call(kernel, Opcode::Readlink, args, &[rel], &buffer)?;
                target.truncate(length as usize);
                Ok(Entry::Symlink(target))
            }
            _ => Ok(Entry::Other),
        },
    }
}
