//! The virtual file system: one tree whose root is the in-guest tmpfs, with the host
//! directories granted by `--dir` mounted over guest paths (the VMM's [`FsConfig`]).
//!
//! A path is made absolute and normal (`path`), then resolved: if it lies within a mount, the
//! rest of it is sent to the host as a path relative to the mount's root, and the host
//! resolves it strictly beneath that root (symlinks there are followed by the host and may not
//! leave it); otherwise it is walked through the tmpfs here, following tmpfs symlinks (which
//! may lead anywhere in the guest, mounts included). A host symlink that would leave its
//! mount (an absolute one, or one climbing out with `..`) is followed here instead, in the
//! guest's namespace: the host reports it, it is kept in [`Vfs::exits`] for the rest of the
//! syscall, and the syscall is run again (see `syscall::call_following_exits`).

pub mod path;
pub mod pipe;
pub mod tmpfs;

use alloc::vec::Vec;

use shim_abi::{FsConfig, FS_CONFIG_GPA, MOUNT_READ_ONLY};

use crate::errno::Errno;
use crate::mm::frames::FrameAllocator;
use crate::mm::phys_to_virt;
use tmpfs::{Body, Ino, Time, Tmpfs, ROOT};

/// Linux's limit on symlinks followed in one lookup.
pub const MAX_SYMLINK_HOPS: usize = 40;

/// One `--dir` grant, known to the guest only by its guest path and the id the host gave it.
pub struct Mount {
    pub id: u32,
    pub path: Vec<u8>,
    /// How many components `path` has.
    pub depth: usize,
    pub read_only: bool,
}

/// What a path names.
#[derive(Debug)]
pub enum Node {
    /// An existing tmpfs inode.
    Tmpfs(Ino),
    /// The last component is absent from tmpfs directory `parent`.
    Missing { parent: Ino, name: Vec<u8> },
    /// A path beneath host mount `mount` (an index into `Vfs::mounts`); empty is its root.
    Host { mount: usize, rel: Vec<u8> },
    /// `/proc/self/fd/N`.
    FdAlias(u64),
}

pub struct Resolved {
    pub node: Node,
    /// The normal absolute guest path, symlinks followed.
    pub path: Vec<u8>,
    /// The caller's path ended in `/`: it must name a directory.
    pub trailing_slash: bool,
}

pub struct Vfs {
    pub tmpfs: Tmpfs,
    pub mounts: Vec<Mount>,
    /// The working directory: a normal absolute guest path.
    pub cwd: Vec<u8>,
    /// `cwd` has no symlink on it (so far only a `--workdir` in a mount may have one).
    pub cwd_is_canonical: bool,
    pub umask: u32,
    /// A frame that is always zero: the source for reading tmpfs holes.
    pub zero_page: u64,
    /// The generated `/proc` files (see `syscall::procfs`), once created.
    pub generated_created: bool,
    pub generated: Vec<(Ino, GeneratedFile)>,
    /// The host symlinks that leave their mounts met during this syscall: the link's normal
    /// absolute guest path, and the guest path it leads to. Emptied when the syscall ends,
    /// since the host may change them at any time.
    pub exits: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What a generated `/proc` file shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratedFile {
    Meminfo,
    Uptime,
    Cmdline,
    Environ,
    Maps,
}

impl Vfs {
    /// The file system the VMM configured at [`FS_CONFIG_GPA`].
    pub fn from_config(frames: &mut FrameAllocator, now: Time) -> Self {
        // By reference, not copied: copying the 7 KiB block cost about 20 ms of interpreted
        // ring 0 on a PVM host, a third of the boot.
        // SAFETY: the VMM wrote an FsConfig at FS_CONFIG_GPA before the vCPU started and never
        // writes it again; the direct map covers it.
        let config: &FsConfig = unsafe { &*phys_to_virt(FS_CONFIG_GPA).cast::<FsConfig>() };
        let text = |bytes: &[u8], len: u32| -> Vec<u8> {
            let len = (len as usize).min(bytes.len());
            path::normalize(b"/", &bytes[..len]).map(|n| n.path).unwrap_or_else(|_| b"/".to_vec())
        };

        let exe_path = {
            let len = (config.exe_path_len as usize).min(config.exe_path.len());
            config.exe_path[..len].to_vec()
        };
        let mut tmpfs = Tmpfs::new(config.tmpfs_size, now);
        tmpfs.populate(frames, &exe_path, now);

        let mut mounts = Vec::new();
        let count = (config.mount_count as usize).min(config.mounts.len());
        for entry in &config.mounts[..count] {
            let guest = text(&entry.guest_path, entry.guest_path_len);
            if guest == b"/" {
                log::warn!("ignoring a mount at /");
                continue;
            }
            tmpfs.mkdir_p(&guest, now);
            mounts.push(Mount {
                id: entry.id,
                depth: path::components(&guest).count(),
                path: guest,
                read_only: entry.flags & MOUNT_READ_ONLY != 0,
            });
        }

        let cwd = text(&config.workdir, config.workdir_len);
        let zero_page = frames.allocate().expect("the zero page");
        let mut vfs = Self {
            tmpfs,
            mounts,
            cwd_is_canonical: false,
            cwd,
            umask: 0o022,
            zero_page,
            generated_created: false,
            generated: Vec::new(),
            exits: Vec::new(),
        };
        // A working directory outside the mounts is created, as `docker run -w` does (the
        // VMM checked that one inside a mount exists, and kept it out of /dev and /proc),
        // and owned by the program's user, who can then work in it.
        if vfs.mount_for(&vfs.cwd).is_none() {
            vfs.tmpfs.mkdir_p_owned(&vfs.cwd.clone(), crate::process::UID as u32, now);
            vfs.cwd_is_canonical = true;
        }
        vfs
    }

    /// The innermost mount holding normal absolute `path`.
    fn mount_for(&self, path: &[u8]) -> Option<usize> {
        let within = self.mounts.iter().enumerate().filter(|(_, m)| path::is_within(path, &m.path));
        within.max_by_key(|(_, m)| m.path.len()).map(|(index, _)| index)
    }

    /// Resolves `path` against the directory `base` (a normal absolute guest path). The last
    /// component's symlink is followed only with `follow_last`.
    pub fn resolve(&self, base: &[u8], path: &[u8], follow_last: bool) -> Result<Resolved, Errno> {
        self.resolve_as(base, path, follow_last, true)
    }

    /// Resolves `path` to the directory entry it names, never following its last component,
    /// not even for a trailing `/`: what unlink, rmdir and rename act on (Linux then answers
    /// `ENOTDIR` for a slash after anything but a directory).
    pub fn resolve_entry(&self, base: &[u8], path: &[u8]) -> Result<Resolved, Errno> {
        self.resolve_as(base, path, false, false)
    }

    /// [`Vfs::resolve`], where a trailing `/` also makes the last component followed only
    /// with `slash_follows`.
    fn resolve_as(
        &self,
        base: &[u8],
        path: &[u8],
        follow_last: bool,
        slash_follows: bool,
    ) -> Result<Resolved, Errno> {
        let normal = path::normalize(base, path)?;
        let trailing_slash = normal.trailing_slash;
        let follow_last = follow_last || (slash_follows && trailing_slash);
        let mut current = normal.path;
        for _ in 0..=MAX_SYMLINK_HOPS {
            if let Some(next) = self.through_exit(&current, follow_last) {
                current = next;
                continue;
            }
            if let Some(mount) = self.mount_for(&current) {
                let rel = &current[self.mounts[mount].path.len()..];
                let mut rel = rel.strip_prefix(b"/").unwrap_or(rel).to_vec();
                // The host gives a trailing '/' Linux's meaning itself.
                if trailing_slash && !rel.is_empty() {
                    rel.push(b'/');
                }
                let node = Node::Host { mount, rel };
                return Ok(Resolved { node, path: current, trailing_slash });
            }
            match self.walk(&current, follow_last)? {
                Walk::Found(node) => return Ok(Resolved { node, path: current, trailing_slash }),
                Walk::Redirect(next) => current = next,
            }
        }
        Err(Errno::ELOOP)
    }

    /// `path` with a known leaving host symlink on it replaced by where it leads (the last
    /// component only with `follow_last`).
    fn through_exit(&self, path: &[u8], follow_last: bool) -> Option<Vec<u8>> {
        let (link, leads_to) = self.exits.iter().find(|(link, _)| {
            path::is_within(path, link) && (follow_last || path.len() > link.len())
        })?;
        let mut next = leads_to.clone();
        let rest = &path[link.len()..];
        if next == b"/" && !rest.is_empty() {
            next.clear();
        }
        next.extend_from_slice(rest);
        Some(next)
    }

    /// Keeps host symlink `link` (a normal absolute guest path, in a mount) with target
    /// `target`, followed as Linux would: from the root if absolute, else from `link_dir`, the
    /// directory the link is in, its symlinks followed.
    pub fn add_exit(&mut self, link: Vec<u8>, link_dir: &[u8], target: &[u8]) -> Result<(), Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        let leads_to = path::normalize(link_dir, target)?.path;
        self.exits.push((link, leads_to));
        Ok(())
    }

    /// One pass through the tmpfs over normal absolute `path`.
    fn walk(&self, path: &[u8], follow_last: bool) -> Result<Walk, Errno> {
        let names: Vec<&[u8]> = path::components(path).collect();
        let mut dir = ROOT;
        for (index, &name) in names.iter().enumerate() {
            let last = index + 1 == names.len();
            let directory = self.tmpfs.get(dir);
            if let Body::FdDir = directory.body {
                let fd = parse_fd(name).ok_or(Errno::ENOENT)?;
                return if last { Ok(Walk::Found(Node::FdAlias(fd))) } else { Err(Errno::ENOTDIR) };
            }
            if !directory.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if !directory.permits(tmpfs::X_OK) {
                return Err(Errno::EACCES);
            }
            let Some(child) = self.tmpfs.lookup(dir, name)? else {
                if last {
                    return Ok(Walk::Found(Node::Missing { parent: dir, name: name.to_vec() }));
                }
                return Err(Errno::ENOENT);
            };
            if let Body::Symlink(target) = &self.tmpfs.get(child).body {
                if !last || follow_last {
                    let parent = path::join(&names[..index]);
                    // A `..` in the target is applied to its spelling here (a known
                    // shortcoming when the target goes through another symlink first; a `..`
                    // the program spells itself goes through `syscall::dotdot`).
                    let mut next = path::normalize(&parent, target)?.path;
                    for rest in &names[index + 1..] {
                        if next != b"/" {
                            next.push(b'/');
                        }
                        next.extend_from_slice(rest);
                    }
                    return Ok(Walk::Redirect(next));
                }
            }
            dir = child;
        }
        Ok(Walk::Found(Node::Tmpfs(dir)))
    }
}

enum Walk {
    Found(Node),
    Redirect(Vec<u8>),
}

/// A decimal fd number with no sign or leading zeros.
fn parse_fd(name: &[u8]) -> Option<u64> {
    if name.is_empty() || name.len() > 9 || (name[0] == b'0' && name.len() > 1) {
        return None;
    }
    name.iter().try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
}
