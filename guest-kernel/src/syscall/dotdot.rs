//! `..` as Linux applies it: to the directory its prefix really names, once the symlinks on
//! that prefix are followed, never to the prefix's spelling. `/data/link/../f`, with `link`
//! a symlink to `d1/d2`, is `/data/d1/f`, not `/data/f`.
//!
//! Only a path with a `..` pays for this, and only for the components before its `..` that
//! are not known to be symlink-free: the working directory is kept canonical (see
//! [`canonical`]), so `../x` relative to it costs nothing. Each other component is looked at
//! without following it, in the tmpfs or with a host `Stat` of it alone, and a symlink is
//! replaced by its target (a host one read with `Readlink`), as the kernel's own walk does.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use shim_abi::{Opcode, PATH_MAX};

use super::fs::{host_path_call, mount_id, node_stat};
use crate::errno::Errno;
use crate::fs::path;
use crate::fs::tmpfs::{Body, Ino, ROOT, S_IFDIR, S_IFLNK, S_IFMT};
use crate::fs::{Node, Resolved, MAX_SYMLINK_HOPS};
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
    let mut walk = Walk::new(kernel, base, base_is_canonical, spelled)?;
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
    let mut walk = Walk::new(kernel, b"/", true, path)?;
    walk.run(kernel, true)?;
    Ok(walk.path())
}

/// A walk over components: `parts` is the path so far, the first `checked` of them known to
/// be no symlinks, `place` the directory those name, and `pending` what is left to apply.
/// Each component is checked from `place`, one lookup or host request for it alone, so a
/// long path costs time in proportion to its length.
struct Walk {
    parts: Vec<Vec<u8>>,
    checked: usize,
    place: Place,
    pending: VecDeque<Vec<u8>>,
    hops: usize,
}

/// A directory a walk has reached.
#[derive(Clone)]
enum Place {
    Tmpfs(Ino),
    /// `rel` beneath mount `mount`'s root (empty: the root).
    Host { mount: usize, rel: Vec<u8> },
}

/// What one component is, looked at without following it.
enum Entry {
    Directory(Place),
    Symlink(Vec<u8>),
    Other,
}

impl Walk {
    fn new(
        kernel: &mut Kernel,
        base: &[u8],
        base_is_canonical: bool,
        spelled: &[u8],
    ) -> Result<Self, Errno> {
        let mut walk = Self {
            parts: Vec::new(),
            checked: 0,
            place: Place::Tmpfs(ROOT),
            pending: components_of(spelled),
            hops: 0,
        };
        if spelled.first() != Some(&b'/') {
            walk.parts.extend(path::components(base).map(|name| name.to_vec()));
            if base_is_canonical {
                walk.checked = walk.parts.len();
                walk.place = place_of(kernel, &walk.path())?;
            }
        }
        Ok(walk)
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
                self.up(kernel)?;
            }
            if !settle_all || !self.settle(kernel, None)? {
                return Ok(());
            }
        }
    }

    /// A `..` once every part is checked: to the parent of `place`.
    fn up(&mut self, kernel: &mut Kernel) -> Result<(), Errno> {
        if self.parts.pop().is_none() {
            return Ok(());
        }
        self.checked = self.parts.len();
        self.place = match &mut self.place {
            Place::Tmpfs(dir) => {
                Place::Tmpfs(kernel.vfs.tmpfs.lookup(*dir, b"..")?.unwrap_or(ROOT))
            }
            Place::Host { rel, .. } if !rel.is_empty() => {
                let parent = rel.iter().rposition(|&b| b == b'/').unwrap_or(0);
                rel.truncate(parent);
                return Ok(());
            }
            // Above a mount's root: wherever its mount point's parent is.
            Place::Host { .. } => place_of(kernel, &self.path())?,
        };
        Ok(())
    }

    /// Checks the unchecked parts in order. At the first symlink, puts its target, then the
    /// parts after it, then `then`, back in front of `pending` and says so (`true`); a part
    /// that is neither directory nor symlink is `ENOTDIR`, since something follows it.
    fn settle(&mut self, kernel: &mut Kernel, then: Option<Vec<u8>>) -> Result<bool, Errno> {
        while self.checked < self.parts.len() {
            match self.entry(kernel)? {
                Entry::Directory(place) => {
                    self.place = place;
                    self.checked += 1;
                }
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
                        self.place = Place::Tmpfs(ROOT);
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

    /// What part `checked` is, looked up in `place` without following it. A mount point is
    /// the mount's root, as in `Vfs::resolve`.
    fn entry(&self, kernel: &mut Kernel) -> Result<Entry, Errno> {
        let depth = self.checked + 1;
        let names = || self.parts[..depth].iter().map(|name| name.as_slice());
        let mount_point = kernel.vfs.mounts.iter().position(|mount| {
            mount.depth == depth && path::components(&mount.path).eq(names())
        });
        if let Some(mount) = mount_point {
            return Ok(Entry::Directory(Place::Host { mount, rel: Vec::new() }));
        }

        let name = &self.parts[self.checked];
        match &self.place {
            Place::Tmpfs(dir) => {
                let Some(child) = kernel.vfs.tmpfs.lookup(*dir, name)? else {
                    return Err(Errno::ENOENT);
                };
                Ok(match &kernel.vfs.tmpfs.get(child).body {
                    Body::Symlink(target) => Entry::Symlink(target.clone()),
                    Body::Dir { .. } => Entry::Directory(Place::Tmpfs(child)),
                    // `/proc/self/fd` and what is in it are no plain directories.
                    _ => Entry::Other,
                })
            }
            Place::Host { mount, rel } => {
                let mut rel = rel.clone();
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend_from_slice(name);
                let mount = *mount;
                let node = Node::Host { mount, rel: rel.clone() };
                let resolved = Resolved { node, path: Vec::new(), trailing_slash: false };
                match node_stat(kernel, &resolved, false)?.mode & S_IFMT {
                    S_IFDIR => Ok(Entry::Directory(Place::Host { mount, rel })),
                    S_IFLNK => Ok(Entry::Symlink(host_readlink(kernel, mount, &rel)?)),
                    _ => Ok(Entry::Other),
                }
            }
        }
    }
}

/// The components of `path` other than empty ones and `.`.
fn components_of(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|name| !name.is_empty() && *name != b".")
        .map(|name| name.to_vec())
        .collect()
}

/// The directory normal absolute `path` names (itself free of symlinks).
fn place_of(kernel: &mut Kernel, path: &[u8]) -> Result<Place, Errno> {
    match kernel.vfs.resolve(b"/", path, true)?.node {
        Node::Tmpfs(ino) if kernel.vfs.tmpfs.get(ino).is_dir() => Ok(Place::Tmpfs(ino)),
        Node::Host { mount, rel } => Ok(Place::Host { mount, rel }),
        Node::Missing { .. } => Err(Errno::ENOENT),
        _ => Err(Errno::ENOTDIR),
    }
}

/// The target of the host symlink `rel` beneath mount `mount`.
fn host_readlink(kernel: &mut Kernel, mount: usize, rel: &[u8]) -> Result<Vec<u8>, Errno> {
    let mut target = vec![0u8; PATH_MAX as usize];
    let args = [mount_id(kernel, mount), rel.len() as u64, 0, 0];
    // Named by a mutable pointer: the host writes the target there.
    let buffer = [(kernel_gpa(target.as_mut_ptr()), PATH_MAX)];
    let length = host_path_call(kernel, Opcode::Readlink, args, &[rel], &buffer)?;
    target.truncate(length as usize);
    Ok(target)
}
