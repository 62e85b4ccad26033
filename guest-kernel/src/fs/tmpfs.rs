//! The in-guest file system: the root directory tree, `/tmp`, `/dev`, `/etc`, `/proc/self`.
//!
//! Inodes live in the kernel heap; file data lives in guest frames, one per page, which only
//! the VMM copies in and out (`Opcode::Copy`), so ring 0 never moves file bytes. A page that
//! was never written is a hole and reads through the kernel's zero page. Bytes past a file's
//! size inside its last page are kept zero, so growing a file exposes zeros.
//!
//! Permissions follow Linux for the program's one user (uid 1000, not root): the tree is
//! root's, `/tmp` is world-writable with the sticky bit, so the program can write there and
//! nowhere else in this file system.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use shim_abi::PAGE_SIZE;

use crate::errno::Errno;
use crate::mm::frames::FrameAllocator;
use crate::process::{GID, UID};

pub type Ino = usize;

pub const ROOT: Ino = 1;
/// `/dev/null`, the first device of the standard tree (after `/`, `/tmp` and `/dev`). Only
/// root may unlink it, and the program never runs as root, so the number stays its own.
pub const NULL_DEVICE_INO: Ino = 4;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_ISVTX: u32 = 0o1000;

/// What a device node reads and writes like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// Reads end at once, writes vanish.
    Null,
    /// Reads zeros, writes vanish.
    Zero,
    /// Reads the host's random bytes, writes vanish.
    Random,
}

impl Device {
    fn rdev(self, urandom: bool) -> u64 {
        match self {
            Device::Null => (1 << 8) | 3,
            Device::Zero => (1 << 8) | 5,
            Device::Random if urandom => (1 << 8) | 9,
            Device::Random => (1 << 8) | 8,
        }
    }
}

pub enum Body {
    Dir { entries: BTreeMap<Vec<u8>, Ino>, parent: Ino },
    /// `pages[i]` is the GPA of page `i`, or 0 for a hole.
    File { pages: Vec<u64>, size: u64 },
    Symlink(Vec<u8>),
    Device(Device),
    /// `/proc/self/fd`: its entries are the program's open fds.
    FdDir,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Time {
    pub sec: i64,
    pub nsec: i64,
}

impl Time {
    pub fn from_ns(ns: u64) -> Self {
        Self { sec: (ns / 1_000_000_000) as i64, nsec: (ns % 1_000_000_000) as i64 }
    }
}

pub struct Inode {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub rdev: u64,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    /// Open file descriptions that refer to this inode (it outlives its last link while open).
    pub open_count: u32,
    pub body: Body,
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File { size, .. } => *size,
            Body::Symlink(target) => target.len() as u64,
            Body::Dir { entries, .. } => (entries.len() as u64 + 2) * 32,
            _ => 0,
        }
    }

    /// Pages of data held.
    pub fn blocks(&self) -> u64 {
        match &self.body {
            Body::File { pages, .. } => pages.iter().filter(|&&p| p != 0).count() as u64 * 8,
            _ => 0,
        }
    }

    /// True if the program's user may access this inode for `want` (`R_OK`/`W_OK`/`X_OK` bits).
    pub fn permits(&self, want: u32) -> bool {
        let bits = if self.uid == UID as u32 {
            (self.mode >> 6) & 7
        } else if self.gid == GID as u32 {
            (self.mode >> 3) & 7
        } else {
            self.mode & 7
        };
        bits & want == want
    }
}

pub const R_OK: u32 = 4;
pub const W_OK: u32 = 2;
pub const X_OK: u32 = 1;

/// Inodes of the standard tree (`populate`) and a few mount points.
const BOOT_INODES: usize = 32;

pub struct Tmpfs {
    inodes: Vec<Option<Inode>>,
    free_inos: Vec<Ino>,
    /// Data pages held by all files, and the most they may hold (`--tmpfs-size`).
    pub used_pages: u64,
    pub limit_pages: u64,
}

impl Tmpfs {
    /// An empty root directory owned by root.
    pub fn new(limit_bytes: u64, now: Time) -> Self {
        let mut fs = Self {
            // Room for the standard tree: each step of growth copies every inode, about
            // 100 us of interpreted ring 0 on a PVM host.
            inodes: Vec::with_capacity(BOOT_INODES),
            free_inos: Vec::new(),
            used_pages: 0,
            limit_pages: limit_bytes / PAGE_SIZE,
        };
        fs.inodes.push(None); // ino 0 is never used
        let root = Body::Dir { entries: BTreeMap::new(), parent: ROOT };
        fs.inodes.push(Some(Self::make_inode(S_IFDIR | 0o755, 0, root, now)));
        fs.get_mut(ROOT).nlink = 2;
        fs
    }

    fn make_inode(mode: u32, uid: u32, body: Body, now: Time) -> Inode {
        Inode {
            mode,
            uid,
            gid: uid,
            nlink: 1,
            rdev: 0,
            atime: now,
            mtime: now,
            ctime: now,
            open_count: 0,
            body,
        }
    }

    /// True if `ino` is a live inode and the null device.
    pub fn is_null_device(&self, ino: Ino) -> bool {
        let inode = self.inodes.get(ino).and_then(Option::as_ref);
        inode.is_some_and(|inode| matches!(inode.body, Body::Device(Device::Null)))
    }

    pub fn get(&self, ino: Ino) -> &Inode {
        self.inodes[ino].as_ref().expect("a live tmpfs inode")
    }

    pub fn get_mut(&mut self, ino: Ino) -> &mut Inode {
        self.inodes[ino].as_mut().expect("a live tmpfs inode")
    }

    /// The child `name` of directory `dir`.
    pub fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Option<Ino>, Errno> {
        match &self.get(dir).body {
            Body::Dir { entries, parent } => Ok(match name {
                b"." => Some(dir),
                b".." => Some(*parent),
                _ => entries.get(name).copied(),
            }),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// Creates `name` in `dir` (which must not hold it yet), owned by `uid`.
    pub fn create(
        &mut self,
        dir: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        body: Body,
        now: Time,
    ) -> Result<Ino, Errno> {
        if self.lookup(dir, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        Ok(self.create_fresh(dir, name, mode, uid, body, now))
    }

    /// [`Tmpfs::create`] of a name the caller knows `dir` doesn't hold (the standard tree at
    /// boot: the lookup would cost a fifth of each entry's time there).
    fn create_fresh(
        &mut self,
        dir: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        body: Body,
        now: Time,
    ) -> Ino {
        let is_dir = matches!(body, Body::Dir { .. });
        let mut inode = Self::make_inode(mode, uid, body, now);
        if is_dir {
            inode.nlink = 2;
        }
        let ino = match self.free_inos.pop() {
            Some(ino) => {
                self.inodes[ino] = Some(inode);
                ino
            }
            None => {
                self.inodes.push(Some(inode));
                self.inodes.len() - 1
            }
        };
        if let Body::Dir { parent, .. } = &mut self.get_mut(ino).body {
            *parent = dir;
        }
        self.link(dir, name, ino, now);
        if is_dir {
            self.get_mut(dir).nlink += 1;
        }
        ino
    }

    /// Adds the entry `name` → `ino` to `dir`.
    pub fn link(&mut self, dir: Ino, name: &[u8], ino: Ino, now: Time) {
        if let Body::Dir { entries, .. } = &mut self.get_mut(dir).body {
            entries.insert(name.to_vec(), ino);
        }
        let directory = self.get_mut(dir);
        directory.mtime = now;
        directory.ctime = now;
        self.get_mut(ino).ctime = now;
    }

    /// Removes the entry `name` from `dir`, dropping the inode (and its pages) when it has no
    /// links left and nothing holds it open.
    pub fn unlink(&mut self, frames: &mut FrameAllocator, dir: Ino, name: &[u8], now: Time) {
        let removed = match &mut self.get_mut(dir).body {
            Body::Dir { entries, .. } => entries.remove(name),
            _ => None,
        };
        let Some(ino) = removed else { return };
        let directory = self.get_mut(dir);
        directory.mtime = now;
        directory.ctime = now;
        let inode = self.get_mut(ino);
        inode.ctime = now;
        if inode.is_dir() {
            inode.nlink = 0;
            self.get_mut(dir).nlink -= 1;
        } else {
            inode.nlink = inode.nlink.saturating_sub(1);
        }
        self.release_if_unused(frames, ino);
    }

    /// Frees an inode that has no links and no open descriptions.
    pub fn release_if_unused(&mut self, frames: &mut FrameAllocator, ino: Ino) {
        let inode = self.get(ino);
        if inode.nlink > 0 || inode.open_count > 0 {
            return;
        }
        if let Some(Inode { body: Body::File { pages, .. }, .. }) = self.inodes[ino].take() {
            for page in pages.into_iter().filter(|&p| p != 0) {
                frames.free(page);
                self.used_pages -= 1;
            }
        }
        self.inodes[ino] = None;
        self.free_inos.push(ino);
    }

    pub fn is_dir(&self, ino: Ino) -> bool {
        self.get(ino).is_dir()
    }

    fn entries_mut(&mut self, dir: Ino) -> &mut BTreeMap<Vec<u8>, Ino> {
        match &mut self.get_mut(dir).body {
            Body::Dir { entries, .. } => entries,
            _ => panic!("tmpfs inode {dir} is not a directory"),
        }
    }

    /// Makes `ino` (a directory) a child of `new_parent`, fixing both parents' link counts.
    fn reparent(&mut self, ino: Ino, old_parent: Ino, new_parent: Ino) {
        if old_parent == new_parent || !self.is_dir(ino) {
            return;
        }
        if let Body::Dir { parent, .. } = &mut self.get_mut(ino).body {
            *parent = new_parent;
        }
        self.get_mut(old_parent).nlink -= 1;
        self.get_mut(new_parent).nlink += 1;
    }

    fn touch_dirs(&mut self, dirs: [Ino; 2], now: Time) {
        for dir in dirs {
            let directory = self.get_mut(dir);
            directory.mtime = now;
            directory.ctime = now;
        }
    }

    /// Moves the entry `from_name` of `from` to `to_name` in `to` (which must be free).
    pub fn move_entry(&mut self, from: Ino, from_name: &[u8], to: Ino, to_name: &[u8], now: Time) {
        let Some(ino) = self.entries_mut(from).remove(from_name) else { return };
        self.entries_mut(to).insert(to_name.to_vec(), ino);
        self.reparent(ino, from, to);
        self.get_mut(ino).ctime = now;
        self.touch_dirs([from, to], now);
    }

    /// Swaps two existing entries (`RENAME_EXCHANGE`).
    pub fn exchange(&mut self, a_dir: Ino, a_name: &[u8], b_dir: Ino, b_name: &[u8], now: Time) {
        let (Ok(Some(a)), Ok(Some(b))) = (self.lookup(a_dir, a_name), self.lookup(b_dir, b_name))
        else {
            return;
        };
        self.entries_mut(a_dir).insert(a_name.to_vec(), b);
        self.entries_mut(b_dir).insert(b_name.to_vec(), a);
        self.reparent(a, a_dir, b_dir);
        self.reparent(b, b_dir, a_dir);
        self.touch_dirs([a_dir, b_dir], now);
    }

    /// True if `dir` holds no entries.
    pub fn is_empty_dir(&self, dir: Ino) -> bool {
        matches!(&self.get(dir).body, Body::Dir { entries, .. } if entries.is_empty())
    }

    /// True if `ancestor` is `ino` or one of its parent directories.
    pub fn is_ancestor(&self, ancestor: Ino, mut ino: Ino) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match &self.get(ino).body {
                Body::Dir { parent, .. } if *parent != ino => ino = *parent,
                _ => return false,
            }
        }
    }

    /// Guest-physical pieces holding bytes `[offset, offset + len)` of file `ino`. With
    /// `allocate`, holes get fresh frames (`ENOSPC` past the size limit); without, holes read
    /// through `zero_page`.
    ///
    /// A file holds at most `--tmpfs-size` bytes of offsets, holes included: a write from
    /// there is `EFBIG`, one across it is cut short. Linux's tmpfs allows sparse files far
    /// larger; here the page list is dense, and kernel heap it can't get is `ENOSPC`.
    pub fn file_pieces(
        &mut self,
        frames: &mut FrameAllocator,
        ino: Ino,
        offset: u64,
        len: u64,
        allocate: bool,
        zero_page: u64,
    ) -> Result<Vec<(u64, u64)>, Errno> {
        let limit = self.limit_pages;
        let mut used = self.used_pages;
        let max_bytes = limit * PAGE_SIZE;
        let len = if allocate {
            if offset >= max_bytes && len > 0 {
                return Err(if max_bytes == 0 { Errno::ENOSPC } else { Errno::EFBIG });
            }
            len.min(max_bytes.saturating_sub(offset))
        } else {
            len
        };
        let Body::File { pages, .. } = &mut self.get_mut(ino).body else {
            return Err(Errno::EINVAL);
        };
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        // Frames already given to the file count even when a later page fails.
        let mut failed = None;
        let mut at = offset;
        let end = offset + len;
        while at < end {
            let index = (at / PAGE_SIZE) as usize;
            let in_page = at % PAGE_SIZE;
            let chunk = (PAGE_SIZE - in_page).min(end - at);
            if allocate && pages.len() <= index {
                if pages.try_reserve(index + 1 - pages.len()).is_err() {
                    failed = Some(Errno::ENOSPC);
                    break;
                }
                pages.resize(index + 1, 0);
            }
            let mut page = pages.get(index).copied().unwrap_or(0);
            if page == 0 && allocate {
                if used >= limit {
                    break;
                }
                let Some(frame) = frames.allocate() else {
                    failed = Some(Errno::ENOSPC);
                    break;
                };
                page = frame;
                pages[index] = page;
                used += 1;
            }
            let gpa = if page == 0 { zero_page } else { page + in_page };
            match pieces.last_mut() {
                Some(last) if last.0 + last.1 == gpa && page != 0 => last.1 += chunk,
                _ => pieces.push((gpa, chunk)),
            }
            at += chunk;
        }
        self.used_pages = used;
        if allocate && at == offset && len > 0 {
            return Err(failed.unwrap_or(Errno::ENOSPC));
        }
        Ok(pieces)
    }

    /// Sets a file's size. Pages past the end are freed; the tail of the new last page must be
    /// zeroed by the caller (the returned range, if any) to keep the zero-past-size rule.
    pub fn set_size(
        &mut self,
        frames: &mut FrameAllocator,
        ino: Ino,
        new_size: u64,
    ) -> Result<Option<(u64, u64)>, Errno> {
        let Body::File { pages, size } = &mut self.get_mut(ino).body else {
            return Err(Errno::EINVAL);
        };
        let mut freed = 0;
        let keep = new_size.div_ceil(PAGE_SIZE) as usize;
        if pages.len() > keep {
            for page in pages.drain(keep..).filter(|&p| p != 0) {
                frames.free(page);
                freed += 1;
            }
        }
        let tail = if new_size < *size && new_size % PAGE_SIZE != 0 {
            let page = pages.get((new_size / PAGE_SIZE) as usize).copied().unwrap_or(0);
            let in_page = new_size % PAGE_SIZE;
            (page != 0).then(|| (page + in_page, PAGE_SIZE - in_page))
        } else {
            None
        };
        *size = new_size;
        self.used_pages -= freed;
        Ok(tail)
    }

    /// The entries of directory `dir` after `.` and `..`, from position `from` (0-based).
    pub fn dir_entries(&self, dir: Ino) -> Vec<(Vec<u8>, Ino)> {
        match &self.get(dir).body {
            Body::Dir { entries, .. } => entries.iter().map(|(n, &i)| (n.clone(), i)).collect(),
            _ => Vec::new(),
        }
    }

    pub fn parent_of(&self, dir: Ino) -> Ino {
        match &self.get(dir).body {
            Body::Dir { parent, .. } => *parent,
            _ => ROOT,
        }
    }

    /// Builds the standard tree at boot: `/tmp`, `/dev`, `/etc`, `/proc/self`.
    pub fn populate(&mut self, frames: &mut FrameAllocator, exe_path: &[u8], now: Time) {
        let tmp = self.mkdir_p(b"/tmp", now);
        self.get_mut(tmp).mode = S_IFDIR | S_ISVTX | 0o777;

        let dev = self.mkdir_p(b"/dev", now);
        for (name, device, urandom) in [
            (&b"null"[..], Device::Null, false),
            (b"zero", Device::Zero, false),
            (b"random", Device::Random, false),
            (b"urandom", Device::Random, true),
        ] {
            let ino = self.create_fresh(dev, name, S_IFCHR | 0o666, 0, Body::Device(device), now);
            self.get_mut(ino).rdev = device.rdev(urandom);
            if device == Device::Null {
                assert_eq!(ino, NULL_DEVICE_INO, "/dev/null moved in the standard tree");
            }
        }
        for (name, target) in [
            (&b"stdin"[..], &b"/proc/self/fd/0"[..]),
            (b"stdout", b"/proc/self/fd/1"),
            (b"stderr", b"/proc/self/fd/2"),
            (b"fd", b"/proc/self/fd"),
        ] {
            let body = Body::Symlink(target.to_vec());
            self.create_fresh(dev, name, S_IFLNK | 0o777, 0, body, now);
        }
        self.mkdir_p(b"/dev/shm", now);

        let self_dir = self.mkdir_p(b"/proc/self", now);
        self.create_fresh(self_dir, b"fd", S_IFDIR | 0o500, UID as u32, Body::FdDir, now);
        let exe = Body::Symlink(exe_path.to_vec());
        self.create_fresh(self_dir, b"exe", S_IFLNK | 0o777, UID as u32, exe, now);

        let etc = self.mkdir_p(b"/etc", now);
        let files: [(&[u8], &[u8]); 3] = [
            (b"passwd", b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n"),
            (b"group", b"root:x:0:\nuser:x:1000:\n"),
            (b"hostname", b"litebox\n"),
        ];
        for (name, content) in files {
            let body = Body::File { pages: Vec::new(), size: 0 };
            let ino = self.create_fresh(etc, name, S_IFREG | 0o644, 0, body, now);
            self.write_small(frames, ino, content);
        }
    }

    /// Writes a few bytes of boot-time content into an empty file (the one place ring 0 copies
    /// file bytes: a handful, once).
    fn write_small(&mut self, frames: &mut FrameAllocator, ino: Ino, content: &[u8]) {
        assert!(content.len() as u64 <= PAGE_SIZE);
        let frame = frames.allocate().expect("a frame for a boot file");
        // SAFETY: a fresh kernel-owned frame, reached through the direct map.
        unsafe {
            core::ptr::copy_nonoverlapping(
                content.as_ptr(),
                crate::mm::phys_to_virt(frame),
                content.len(),
            );
        }
        self.used_pages += 1;
        self.get_mut(ino).body = Body::File { pages: alloc::vec![frame], size: content.len() as u64 };
    }

    /// Creates the directories of a normal absolute path that are missing (root's, 0755) and
    /// returns the last one. Used at boot for the standard tree and for mount points.
    pub fn mkdir_p(&mut self, path: &[u8], now: Time) -> Ino {
        self.mkdir_p_owned(path, 0, now)
    }

    /// [`Tmpfs::mkdir_p`] with the directories it creates owned by `uid` (0755).
    pub fn mkdir_p_owned(&mut self, path: &[u8], uid: u32, now: Time) -> Ino {
        let mut dir = ROOT;
        for name in super::path::components(path) {
            dir = match self.lookup(dir, name) {
                Ok(Some(existing)) if self.get(existing).is_dir() => existing,
                Ok(_) => {
                    let body = Body::Dir { entries: BTreeMap::new(), parent: dir };
                    self.create(dir, name, S_IFDIR | 0o755, uid, body, now).unwrap_or(dir)
                }
                Err(_) => return dir,
            };
        }
        dir
    }
}
