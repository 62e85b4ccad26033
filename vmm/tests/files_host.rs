//! The host side of the file requests, driven directly: a `FileService` over temporary
//! directories and a `GuestMemoryMmap` this test owns, with requests, paths, scatter-gather
//! lists and `HostStat` targets written into that memory by hand, as the guest kernel would.
//!
//! Besides every opcode's ordinary use, this is the escape suite: `..`, absolute and relative
//! symlinks leading out, chains of them, a directory swapped for a symlink to `/` while
//! requests run, magic links; malformed paths, ranges outside guest memory, huge sizes,
//! unknown handles, and read-only mounts. Each test names the errno it expects.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use litebox_vmm::{FileService, Mount};
use shim_abi::{
    HostStat, Opcode, Request, SgEntry, FIRST_FILE_HANDLE, MAX_BYTES_PER_REQUEST,
    MAX_SG_PER_REQUEST, PATH_MAX,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use zerocopy::{FromBytes, IntoBytes};

const MEMORY_BYTES: usize = 16 << 20;
/// Where the harness puts the request's scatter-gather list.
const SG_GPA: u64 = 0x1000;
/// Where paths and other small inputs go (each part gets its own 8 KiB).
const INPUT_GPA: u64 = 0x10000;
/// Where a `HostStat` or `struct statfs` is written.
const STAT_GPA: u64 = 0x40000;
/// The data buffer for reads and writes.
const BUFFER_GPA: u64 = 0x100000;

const O_RDONLY: u64 = libc::O_RDONLY as u64;
const O_WRONLY: u64 = libc::O_WRONLY as u64;
const O_RDWR: u64 = libc::O_RDWR as u64;
const O_CREAT: u64 = libc::O_CREAT as u64;
const O_EXCL: u64 = libc::O_EXCL as u64;
const O_TRUNC: u64 = libc::O_TRUNC as u64;
const O_APPEND: u64 = libc::O_APPEND as u64;
const O_DIRECTORY: u64 = libc::O_DIRECTORY as u64;
const O_PATH: u64 = libc::O_PATH as u64;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;

fn err(errno: i32) -> i64 {
    -i64::from(errno)
}

/// What a lookup that would leave its mount completes with.
const LEFT: i64 = shim_abi::RESULT_LEFT_MOUNT;

/// A file service over mounts in a fresh temporary directory, and the guest memory requests
/// live in.
struct Harness {
    memory: GuestMemoryMmap,
    files: FileService,
    /// Holds `mount0/`, `mount1/`, … and `outside/` (never mounted; holds the secrets).
    dir: tempfile::TempDir,
}

impl Harness {
    /// Mount 0 is writable; more mounts with the given read-only flags follow.
    fn new(extra_read_only: &[bool]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut mounts = Vec::new();
        for (id, read_only) in std::iter::once(&false).chain(extra_read_only).enumerate() {
            let host = dir.path().join(format!("mount{id}"));
            fs::create_dir(&host).unwrap();
            mounts.push(Mount { host, guest: format!("/m{id}").into(), read_only: *read_only });
        }
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/secret"), b"OUTSIDE SECRET").unwrap();
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEMORY_BYTES)]).unwrap();
        let files = FileService::new(&mounts).expect("file service");
        Self { memory, files, dir }
    }

    fn with_mounts(mounts: &[Mount]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEMORY_BYTES)]).unwrap();
        let files = FileService::new(mounts).expect("file service");
        Self { memory, files, dir }
    }

    fn host(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn outside(&self) -> PathBuf {
        self.host("outside")
    }

    fn put(&self, gpa: u64, bytes: &[u8]) {
        self.memory.write_slice(bytes, GuestAddress(gpa)).unwrap();
    }

    fn get(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.memory.read_slice(&mut bytes, GuestAddress(gpa)).unwrap();
        bytes
    }

    /// Sends one request whose SG list is `sg`.
    fn send(&mut self, opcode: Opcode, args: [u64; 4], sg: &[SgEntry]) -> i64 {
        self.put(SG_GPA, sg.as_bytes());
        let request = Request {
            opcode: opcode as u32,
            sg_count: sg.len() as u32,
            user_data: 7,
            args,
            sg_gpa: SG_GPA,
            _reserved: 0,
        };
        self.files.handle(&self.memory, &request)
    }

    /// Sends a request whose SG list holds `parts` one after another (paths, targets), each
    /// written into its own slot of guest memory; `extra` SG entries follow.
    fn send_parts(
        &mut self,
        opcode: Opcode,
        args: [u64; 4],
        parts: &[&[u8]],
        extra: &[SgEntry],
    ) -> i64 {
        let mut sg = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            let gpa = INPUT_GPA + index as u64 * 0x2000;
            self.put(gpa, part);
            sg.push(SgEntry { gpa, len: part.len() as u64 });
        }
        sg.extend_from_slice(extra);
        self.send(opcode, args, &sg)
    }

    fn open(&mut self, mount: u64, path: &str, flags: u64, mode: u64) -> i64 {
        self.send_parts(Opcode::Open, [mount, flags, mode, 0], &[path.as_bytes()], &[])
    }

    fn open_ok(&mut self, mount: u64, path: &str, flags: u64) -> u64 {
        let handle = self.open(mount, path, flags, 0o644);
        assert!(handle >= FIRST_FILE_HANDLE as i64, "open {path}: {handle}");
        handle as u64
    }

    fn write(&mut self, handle: u64, bytes: &[u8]) -> i64 {
        self.put(BUFFER_GPA, bytes);
        let sg = [SgEntry { gpa: BUFFER_GPA, len: bytes.len() as u64 }];
        self.send(Opcode::Write, [handle, 0, 0, 0], &sg)
    }

    fn read(&mut self, handle: u64, len: usize) -> Result<Vec<u8>, i64> {
        self.put(BUFFER_GPA, &vec![0xaa; len]);
        let sg = [SgEntry { gpa: BUFFER_GPA, len: len as u64 }];
        let result = self.send(Opcode::Read, [handle, 0, 0, 0], &sg);
        if result < 0 {
            return Err(result);
        }
        Ok(self.get(BUFFER_GPA, result as usize))
    }

    /// The whole content of `path` on `mount`, read through the ring, or the errno.
    fn read_file(&mut self, mount: u64, path: &str) -> Result<Vec<u8>, i64> {
        let handle = self.open(mount, path, O_RDONLY, 0);
        if handle < 0 {
            return Err(handle);
        }
        let content = self.read(handle as u64, 4096);
        assert_eq!(self.send(Opcode::Close, [handle as u64, 0, 0, 0], &[]), 0);
        content
    }

    fn stat(&mut self, mount: u64, path: &str, flags: u64) -> Result<HostStat, i64> {
        self.put(STAT_GPA, &[0xff; 128]);
        let args = [mount, flags, STAT_GPA, 0];
        let result = self.send_parts(Opcode::Stat, args, &[path.as_bytes()], &[]);
        if result < 0 {
            return Err(result);
        }
        assert_eq!(result, 0);
        Ok(HostStat::read_from_bytes(&self.get(STAT_GPA, size_of::<HostStat>())).unwrap())
    }

    fn fstat(&mut self, handle: u64) -> Result<HostStat, i64> {
        let result = self.send(Opcode::Fstat, [handle, STAT_GPA, 0, 0], &[]);
        if result < 0 {
            return Err(result);
        }
        Ok(HostStat::read_from_bytes(&self.get(STAT_GPA, size_of::<HostStat>())).unwrap())
    }

    fn path_op(&mut self, opcode: Opcode, args: [u64; 4], path: &str) -> i64 {
        self.send_parts(opcode, args, &[path.as_bytes()], &[])
    }

    /// Rename or Link: old path then new path.
    fn two_paths(
        &mut self,
        opcode: Opcode,
        mounts: [u64; 2],
        flags: u64,
        old: &str,
        new: &str,
    ) -> i64 {
        let args = [mounts[0], mounts[1], flags, old.len() as u64];
        self.send_parts(opcode, args, &[old.as_bytes(), new.as_bytes()], &[])
    }

    fn symlink(&mut self, mount: u64, target: &str, path: &str) -> i64 {
        let args = [mount, target.len() as u64, 0, 0];
        self.send_parts(Opcode::Symlink, args, &[target.as_bytes(), path.as_bytes()], &[])
    }

    fn readlink(&mut self, mount: u64, path: &str, capacity: u64) -> Result<Vec<u8>, i64> {
        let out = SgEntry { gpa: BUFFER_GPA, len: capacity };
        let args = [mount, path.len() as u64, 0, 0];
        let result = self.send_parts(Opcode::Readlink, args, &[path.as_bytes()], &[out]);
        if result < 0 {
            return Err(result);
        }
        Ok(self.get(BUFFER_GPA, result as usize))
    }

    /// Names in a directory handle, read with Getdents into `sg` (default: one 64 KiB range).
    fn list(&mut self, handle: u64, sg: Option<Vec<SgEntry>>) -> Vec<String> {
        let sg = sg.unwrap_or_else(|| vec![SgEntry { gpa: BUFFER_GPA, len: 64 << 10 }]);
        let mut names = Vec::new();
        loop {
            let filled = self.send(Opcode::Getdents, [handle, 0, 0, 0], &sg);
            assert!(filled >= 0, "getdents: {filled}");
            if filled == 0 {
                break;
            }
            // Reassemble the guest's view: the ranges one after another.
            let mut records = Vec::new();
            for entry in &sg {
                records.extend(self.get(entry.gpa, entry.len as usize));
            }
            let mut at = 0;
            while at < filled as usize {
                let reclen = u16::from_le_bytes([records[at + 16], records[at + 17]]) as usize;
                let name = &records[at + 19..at + reclen];
                let end = name.iter().position(|&b| b == 0).unwrap();
                names.push(String::from_utf8_lossy(&name[..end]).into_owned());
                at += reclen;
            }
        }
        names.sort();
        names
    }
}

fn close(h: &mut Harness, handle: u64) {
    assert_eq!(h.send(Opcode::Close, [handle, 0, 0, 0], &[]), 0);
}

// ---- every opcode's ordinary use -----------------------------------------------------------

#[test]
fn open_create_write_seek_read_pread_pwrite_close() {
    let mut h = Harness::new(&[]);
    let flags = O_RDWR | O_CREAT | O_EXCL;
    let handle = h.send_parts(Opcode::Open, [0, flags, 0o640, STAT_GPA], &[b"new.txt"], &[]);
    assert!(handle >= FIRST_FILE_HANDLE as i64, "{handle}");
    let handle = handle as u64;
    let stat = HostStat::read_from_bytes(&h.get(STAT_GPA, size_of::<HostStat>())).unwrap();
    assert_eq!(stat.mode & libc::S_IFMT, libc::S_IFREG);
    assert_eq!(stat.size, 0);

    // A write from two guest ranges lands as one run of bytes.
    h.put(BUFFER_GPA, b"hello, ");
    h.put(BUFFER_GPA + 0x5000, b"world");
    let sg = [SgEntry { gpa: BUFFER_GPA, len: 7 }, SgEntry { gpa: BUFFER_GPA + 0x5000, len: 5 }];
    assert_eq!(h.send(Opcode::Write, [handle, 0, 0, 0], &sg), 12);
    assert_eq!(fs::read(h.host("mount0/new.txt")).unwrap(), b"hello, world");

    // Seek (SEEK_SET) and Read use the host fd's position.
    assert_eq!(h.send(Opcode::Seek, [handle, 7, libc::SEEK_SET as u64, 0], &[]), 7);
    assert_eq!(h.read(handle, 100).unwrap(), b"world");
    assert_eq!(h.read(handle, 100).unwrap(), b"");
    assert_eq!(h.send(Opcode::Seek, [handle, (-5i64) as u64, libc::SEEK_END as u64, 0], &[]), 7);

    // Pread and Pwrite take their own offset and leave the position alone.
    h.put(BUFFER_GPA, b"J");
    assert_eq!(
        h.send(Opcode::Pwrite, [handle, 0, 0, 0], &[SgEntry { gpa: BUFFER_GPA, len: 1 }]),
        1
    );
    let sg = [SgEntry { gpa: BUFFER_GPA, len: 5 }];
    assert_eq!(h.send(Opcode::Pread, [handle, 0, 0, 0], &sg), 5);
    assert_eq!(h.get(BUFFER_GPA, 5), b"Jello");
    assert_eq!(h.read(handle, 3).unwrap(), b"wor");

    assert_eq!(h.fstat(handle).unwrap().size, 12);
    assert_eq!(h.fstat(handle).unwrap().mode & 0o777, 0o640);
    close(&mut h, handle);
    // Closed: EBADF.
    assert_eq!(h.send(Opcode::Close, [handle, 0, 0, 0], &[]), err(libc::EBADF));
    assert_eq!(h.files.open_files(), 0);
}

#[test]
fn handles_reuse_the_lowest_number_and_share_one_position() {
    let mut h = Harness::new(&[]);
    fs::write(h.host("mount0/f"), b"0123456789").unwrap();
    let first = h.open_ok(0, "f", O_RDONLY);
    let second = h.open_ok(0, "f", O_RDONLY);
    assert_eq!(first, FIRST_FILE_HANDLE);
    assert_eq!(second, FIRST_FILE_HANDLE + 1);
    close(&mut h, first);
    assert_eq!(h.open_ok(0, "f", O_RDONLY), FIRST_FILE_HANDLE);
    // One handle, one position: two reads continue each other (a dup'd guest fd).
    assert_eq!(h.read(second, 4).unwrap(), b"0123");
    assert_eq!(h.read(second, 4).unwrap(), b"4567");
}

#[test]
fn large_transfers_move_in_one_request() {
    let mut h = Harness::new(&[]);
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i * 7 + i / 4096) as u8).collect();
    let handle = h.open_ok(0, "big", O_RDWR | O_CREAT);
    assert_eq!(h.write(handle, &data), data.len() as i64);
    assert_eq!(h.send(Opcode::Seek, [handle, 0, 0, 0], &[]), 0);
    // Read back scattered over 1024 ranges of 4 KiB, in reverse order of guest addresses.
    let sg: Vec<SgEntry> =
        (0..1024u64).map(|i| SgEntry { gpa: BUFFER_GPA + (1023 - i) * 4096, len: 4096 }).collect();
    h.put(BUFFER_GPA, &vec![0; 4 << 20]);
    assert_eq!(h.send(Opcode::Read, [handle, 0, 0, 0], &sg), 4 << 20);
    for i in 0..1024usize {
        let page = h.get(BUFFER_GPA + (1023 - i as u64) * 4096, 4096);
        assert!(page == data[i * 4096..(i + 1) * 4096], "page {i} differs");
    }
}

#[test]
fn append_truncate_and_exclusive_open() {
    let mut h = Harness::new(&[]);
    fs::write(h.host("mount0/log"), b"abc").unwrap();
    let handle = h.open_ok(0, "log", O_WRONLY | O_APPEND);
    assert_eq!(h.write(handle, b"def"), 3);
    assert_eq!(fs::read(h.host("mount0/log")).unwrap(), b"abcdef");
    // O_CREAT | O_EXCL on an existing file: EEXIST.
    assert_eq!(h.open(0, "log", O_WRONLY | O_CREAT | O_EXCL, 0o600), err(libc::EEXIST));
    let handle = h.open_ok(0, "log", O_WRONLY | O_TRUNC);
    assert_eq!(h.fstat(handle).unwrap().size, 0);
    // A missing file without O_CREAT: ENOENT. A file opened O_DIRECTORY: ENOTDIR.
    assert_eq!(h.open(0, "missing", O_RDONLY, 0), err(libc::ENOENT));
    assert_eq!(h.open(0, "log", O_RDONLY | O_DIRECTORY, 0), err(libc::ENOTDIR));
    // What libcs add on their own (O_LARGEFILE, O_CLOEXEC) is accepted.
    let handle = h.open(0, "log", O_RDONLY | 0o100000 | libc::O_CLOEXEC as u64, 0);
    assert!(handle >= FIRST_FILE_HANDLE as i64, "{handle}");
    // Unknown open flag bits: EINVAL.
    assert_eq!(h.open(0, "log", O_RDONLY | 0x4000_0000, 0), err(libc::EINVAL));
    assert_eq!(h.open(0, "log", 3, 0), err(libc::EINVAL));
    // O_PATH handles exist but carry no data: EBADF on read, as on Linux.
    let path_handle = h.open_ok(0, "log", O_PATH);
    assert_eq!(h.read(path_handle, 1), Err(err(libc::EBADF)));
}

#[test]
fn getdents_lists_a_directory_and_rewinds() {
    let mut h = Harness::new(&[]);
    fs::create_dir(h.host("mount0/d")).unwrap();
    let mut expected = vec![".".to_string(), "..".to_string()];
    for i in 0..40 {
        let name = format!("file-{i:02}-{}", "x".repeat(i * 5));
        fs::write(h.host("mount0/d").join(&name), b"").unwrap();
        expected.push(name);
    }
    expected.sort();
    let handle = h.open_ok(0, "d", O_RDONLY | O_DIRECTORY);
    assert_eq!(h.list(handle, None), expected);
    // Seek back to the start lists everything again.
    assert_eq!(h.send(Opcode::Seek, [handle, 0, libc::SEEK_SET as u64, 0], &[]), 0);
    assert_eq!(h.list(handle, None), expected);
    // A buffer made of several guest ranges (a user buffer over scattered pages).
    assert_eq!(h.send(Opcode::Seek, [handle, 0, libc::SEEK_SET as u64, 0], &[]), 0);
    let sg = vec![
        SgEntry { gpa: BUFFER_GPA + 0x3000, len: 700 },
        SgEntry { gpa: BUFFER_GPA, len: 900 },
    ];
    assert_eq!(h.list(handle, Some(sg)), expected);
    // The mount root is a directory too (the empty path).
    let root = h.open_ok(0, "", O_RDONLY | O_DIRECTORY);
    assert_eq!(h.list(root, None), [".", "..", "d"]);
    // Getdents on a regular file: ENOTDIR.
    let file = h.open_ok(0, "d/file-00-", O_RDONLY);
    let sg = [SgEntry { gpa: BUFFER_GPA, len: 4096 }];
    assert_eq!(h.send(Opcode::Getdents, [file, 0, 0, 0], &sg), err(libc::ENOTDIR));
}

#[test]
fn stat_lstat_fstat_map_owners() {
    let mut h = Harness::new(&[]);
    fs::write(h.host("mount0/f"), b"12345").unwrap();
    std::os::unix::fs::symlink("f", h.host("mount0/l")).unwrap();
    let stat = h.stat(0, "l", 0).unwrap();
    assert_eq!(stat.mode & libc::S_IFMT, libc::S_IFREG);
    assert_eq!(stat.size, 5);
    // The VMM's own user and group are the guest's 1000.
    assert_eq!((stat.uid, stat.gid), (1000, 1000));
    let meta = fs::metadata(h.host("mount0/f")).unwrap();
    assert_eq!((stat.ino, stat.dev, stat.nlink), (meta.ino(), meta.dev(), 1));
    assert_eq!((stat.mtime_sec, stat.mtime_nsec), (meta.mtime(), meta.mtime_nsec()));

    let lstat = h.stat(0, "l", AT_SYMLINK_NOFOLLOW).unwrap();
    assert_eq!(lstat.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(h.stat(0, "", 0).unwrap().mode & libc::S_IFMT, libc::S_IFDIR);
    assert_eq!(h.stat(0, "missing", 0).err(), Some(err(libc::ENOENT)));
    assert_eq!(h.stat(0, "f/", 0).err(), Some(err(libc::ENOTDIR)));
    // Flags other than AT_SYMLINK_NOFOLLOW: EINVAL.
    assert_eq!(h.stat(0, "f", 0x1000).err(), Some(err(libc::EINVAL)));

    // Anybody else is nobody (65534); only root can give a file away to check that.
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(h.host("mount0/f"), Some(4321), Some(4321)).unwrap();
        let stat = h.stat(0, "f", 0).unwrap();
        assert_eq!((stat.uid, stat.gid), (65534, 65534));
    }
}

#[test]
fn statfs_reports_the_mount_and_its_read_only_flag() {
    let mut h = Harness::new(&[true]);
    for (mount, read_only) in [(0, false), (1, true)] {
        h.put(STAT_GPA, &[0xff; 120]);
        assert_eq!(h.send(Opcode::Statfs, [mount, STAT_GPA, 0, 0], &[]), 0);
        let raw = h.get(STAT_GPA, 120);
        let word = |i: usize| i64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        let host = rustix::fs::statfs(h.host(&format!("mount{mount}"))).unwrap();
        assert_eq!(word(0), host.f_type as i64, "f_type");
        assert_eq!(word(1), host.f_bsize as i64, "f_bsize");
        assert_eq!(word(8), 255, "f_namelen");
        assert_eq!(word(10) & 1 != 0, read_only, "ST_RDONLY in f_flags");
    }
    // An unknown mount: EINVAL.
    assert_eq!(h.send(Opcode::Statfs, [9, STAT_GPA, 0, 0], &[]), err(libc::EINVAL));
}

#[test]
fn mkdir_unlink_rmdir() {
    let mut h = Harness::new(&[]);
    assert_eq!(h.path_op(Opcode::Mkdir, [0, 0o750, 0, 0], "d"), 0);
    assert_eq!(fs::metadata(h.host("mount0/d")).unwrap().permissions().mode() & 0o777, 0o750);
    assert_eq!(h.path_op(Opcode::Mkdir, [0, 0o755, 0, 0], "d/e/"), 0);
    // Existing: EEXIST; also for `.` and the root itself.
    assert_eq!(h.path_op(Opcode::Mkdir, [0, 0o755, 0, 0], "d"), err(libc::EEXIST));
    assert_eq!(h.path_op(Opcode::Mkdir, [0, 0o755, 0, 0], "d/."), err(libc::EEXIST));
    assert_eq!(h.path_op(Opcode::Mkdir, [0, 0o755, 0, 0], ""), err(libc::EEXIST));
    // Missing parent: ENOENT.
    assert_eq!(h.path_op(Opcode::Mkdir, [0, 0o755, 0, 0], "x/y"), err(libc::ENOENT));

    fs::write(h.host("mount0/d/f"), b"").unwrap();
    // rmdir semantics with AT_REMOVEDIR: not empty ENOTEMPTY, `.` EINVAL, `..` ENOTEMPTY,
    // the root EBUSY, a file ENOTDIR.
    assert_eq!(h.path_op(Opcode::Unlink, [0, AT_REMOVEDIR, 0, 0], "d"), err(libc::ENOTEMPTY));
    assert_eq!(h.path_op(Opcode::Unlink, [0, AT_REMOVEDIR, 0, 0], "d/e/."), err(libc::EINVAL));
    assert_eq!(h.path_op(Opcode::Unlink, [0, AT_REMOVEDIR, 0, 0], "d/e/.."), err(libc::ENOTEMPTY));
    assert_eq!(h.path_op(Opcode::Unlink, [0, AT_REMOVEDIR, 0, 0], ""), err(libc::EBUSY));
    assert_eq!(h.path_op(Opcode::Unlink, [0, AT_REMOVEDIR, 0, 0], "d/f"), err(libc::ENOTDIR));
    // unlink semantics: a directory EISDIR, a file with a trailing '/' ENOTDIR.
    assert_eq!(h.path_op(Opcode::Unlink, [0, 0, 0, 0], "d/e"), err(libc::EISDIR));
    assert_eq!(h.path_op(Opcode::Unlink, [0, 0, 0, 0], "d/f/"), err(libc::ENOTDIR));
    assert_eq!(h.path_op(Opcode::Unlink, [0, 0, 0, 0], "d/f"), 0);
    assert_eq!(h.path_op(Opcode::Unlink, [0, AT_REMOVEDIR, 0, 0], "d/e/"), 0);
    assert_eq!(h.path_op(Opcode::Unlink, [0, AT_REMOVEDIR, 0, 0], "d"), 0);
    assert!(!h.host("mount0/d").exists());
    // Unknown flags: EINVAL.
    assert_eq!(h.path_op(Opcode::Unlink, [0, 1, 0, 0], "x"), err(libc::EINVAL));
}

#[test]
fn rename_link_symlink_readlink() {
    let mut h = Harness::new(&[false]);
    fs::write(h.host("mount0/a"), b"A").unwrap();
    assert_eq!(h.two_paths(Opcode::Rename, [0, 0], 0, "a", "b"), 0);
    assert_eq!(fs::read(h.host("mount0/b")).unwrap(), b"A");
    // RENAME_NOREPLACE onto an existing name: EEXIST; RENAME_EXCHANGE swaps.
    fs::write(h.host("mount0/c"), b"C").unwrap();
    assert_eq!(h.two_paths(Opcode::Rename, [0, 0], 1, "b", "c"), err(libc::EEXIST));
    assert_eq!(h.two_paths(Opcode::Rename, [0, 0], 2, "b", "c"), 0);
    assert_eq!(fs::read(h.host("mount0/b")).unwrap(), b"C");
    // Across mounts: EXDEV. Renaming `.`: EBUSY.
    assert_eq!(h.two_paths(Opcode::Rename, [0, 1], 0, "b", "b"), err(libc::EXDEV));
    assert_eq!(h.two_paths(Opcode::Rename, [0, 0], 0, ".", "x"), err(libc::EBUSY));

    // A hard link, and one to a symlink's target with AT_SYMLINK_FOLLOW.
    assert_eq!(h.two_paths(Opcode::Link, [0, 0], 0, "b", "hard"), 0);
    assert_eq!(fs::metadata(h.host("mount0/b")).unwrap().nlink(), 2);
    assert_eq!(h.two_paths(Opcode::Link, [0, 0], 0, "b", "c"), err(libc::EEXIST));
    assert_eq!(h.two_paths(Opcode::Link, [0, 0], 0, "", "dir-link"), err(libc::EPERM));
    assert_eq!(h.two_paths(Opcode::Link, [0, 1], 0, "b", "x"), err(libc::EXDEV));

    // Symlinks store any target verbatim; readlink gives it back (truncated to the buffer).
    assert_eq!(h.symlink(0, "b", "sym"), 0);
    assert_eq!(h.symlink(0, "/nowhere/../at all", "odd"), 0);
    assert_eq!(fs::read_link(h.host("mount0/odd")).unwrap(), Path::new("/nowhere/../at all"));
    assert_eq!(h.readlink(0, "odd", 100).unwrap(), b"/nowhere/../at all");
    assert_eq!(h.readlink(0, "odd", 4).unwrap(), b"/now");
    assert_eq!(h.symlink(0, "b", "sym"), err(libc::EEXIST));
    assert_eq!(h.symlink(0, "", "empty"), err(libc::ENOENT));
    // Readlink of something that is not a symlink: EINVAL.
    assert_eq!(h.readlink(0, "b", 100), Err(err(libc::EINVAL)));
    assert_eq!(h.readlink(0, "", 100), Err(err(libc::EINVAL)));

    let hard_follow = h.two_paths(Opcode::Link, [0, 0], AT_SYMLINK_FOLLOW, "sym", "followed");
    // Linking by fd (AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH on older kernels: ENOENT then.
    if hard_follow == 0 {
        let followed = fs::symlink_metadata(h.host("mount0/followed")).unwrap();
        assert!(followed.is_file());
    } else {
        assert_eq!(hard_follow, err(libc::ENOENT));
    }
    assert_eq!(h.two_paths(Opcode::Link, [0, 0], 0, "sym", "link-to-sym"), 0);
    assert!(fs::symlink_metadata(h.host("mount0/link-to-sym")).unwrap().is_symlink());
}

#[test]
fn access_ftruncate_fsync_chmod_utimens() {
    let mut h = Harness::new(&[]);
    fs::write(h.host("mount0/f"), b"0123456789").unwrap();
    for mode in [0, 1, 2, 4, 7] {
        // Root may do anything; as another user R_OK/W_OK hold for our own 0644 file.
        let result = h.path_op(Opcode::Access, [0, mode, 0, 0], "f");
        assert!(result == 0 || (mode & 1 != 0 && result == err(libc::EACCES)), "{mode}: {result}");
    }
    assert_eq!(h.path_op(Opcode::Access, [0, 0, 0, 0], "missing"), err(libc::ENOENT));
    assert_eq!(h.path_op(Opcode::Access, [0, 8, 0, 0], "f"), err(libc::EINVAL));

    let handle = h.open_ok(0, "f", O_RDWR);
    assert_eq!(h.send(Opcode::Ftruncate, [handle, 4, 0, 0], &[]), 0);
    assert_eq!(fs::read(h.host("mount0/f")).unwrap(), b"0123");
    assert_eq!(h.send(Opcode::Fsync, [handle, 0, 0, 0], &[]), 0);
    assert_eq!(h.send(Opcode::Fsync, [handle, 1, 0, 0], &[]), 0);
    assert_eq!(h.send(Opcode::Fsync, [handle, 2, 0, 0], &[]), err(libc::EINVAL));

    // Chmod by path and by handle (args[2] = handle + 1).
    assert_eq!(h.path_op(Opcode::Chmod, [0, 0o600, 0, 0], "f"), 0);
    assert_eq!(fs::metadata(h.host("mount0/f")).unwrap().permissions().mode() & 0o7777, 0o600);
    assert_eq!(h.send(Opcode::Chmod, [0, 0o1711, handle + 1, 0], &[]), 0);
    assert_eq!(fs::metadata(h.host("mount0/f")).unwrap().permissions().mode() & 0o7777, 0o1711);
    // Set-user-ID and set-group-ID never reach the host (its files are the VMM user's): by
    // handle, by path, on a new file and on a new directory.
    let mode_of = |path: PathBuf| fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(h.send(Opcode::Chmod, [0, 0o4755, handle + 1, 0], &[]), 0);
    assert_eq!(mode_of(h.host("mount0/f")), 0o755);
    assert_eq!(h.path_op(Opcode::Chmod, [0, 0o6777, 0, 0], "f"), 0);
    assert_eq!(mode_of(h.host("mount0/f")), 0o777);
    let flags = u64::from((libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL).unsigned_abs());
    let created = h.send_parts(Opcode::Open, [0, flags, 0o4755, 0], &[b"suid"], &[]);
    assert!(created >= 0, "{created}");
    assert_eq!(mode_of(h.host("mount0/suid")), 0o755);
    assert_eq!(h.path_op(Opcode::Mkdir, [0, 0o2755, 0, 0], "sgid"), 0);
    assert_eq!(mode_of(h.host("mount0/sgid")), 0o755);
    // A host file that already is set-user-ID loses the bit with its first change, as Linux
    // takes it off when a writer without CAP_FSETID writes (this VMM may well be root).
    // Set-group-ID goes with it when group execute is on, and stays without (a lock mark).
    for (before, after) in [(0o4755, 0o755), (0o6775, 0o775), (0o2745, 0o2745)] {
        fs::write(h.host("mount0/owned"), b"0123").unwrap();
        fs::set_permissions(h.host("mount0/owned"), fs::Permissions::from_mode(before)).unwrap();
        let owned = h.open_ok(0, "owned", O_RDWR);
        assert_eq!(mode_of(h.host("mount0/owned")), before, "opening changes nothing");
        assert_eq!(h.send(Opcode::Ftruncate, [owned, 2, 0, 0], &[]), 0);
        assert_eq!(mode_of(h.host("mount0/owned")), after, "{before:o}");
        assert_eq!(h.send(Opcode::Close, [owned, 0, 0, 0], &[]), 0);
    }

    // Utimens by path with explicit times, UTIME_OMIT keeping one of them.
    let times: [i64; 4] = [1_000_000, 5, 2_000_000, 6];
    h.put(STAT_GPA + 512, times.as_bytes());
    assert_eq!(h.path_op(Opcode::Utimens, [0, STAT_GPA + 512, 0, 0], "f"), 0);
    let stat = h.stat(0, "f", 0).unwrap();
    assert_eq!((stat.atime_sec, stat.atime_nsec), (1_000_000, 5));
    assert_eq!((stat.mtime_sec, stat.mtime_nsec), (2_000_000, 6));
    let omit_atime: [i64; 4] = [0, (1 << 30) - 2, 3_000_000, 0];
    h.put(STAT_GPA + 512, omit_atime.as_bytes());
    assert_eq!(h.send(Opcode::Utimens, [0, STAT_GPA + 512, 0, handle + 1], &[]), 0);
    let stat = h.stat(0, "f", 0).unwrap();
    assert_eq!((stat.atime_sec, stat.mtime_sec), (1_000_000, 3_000_000));
    // Both now (no times), on a symlink itself with AT_SYMLINK_NOFOLLOW.
    std::os::unix::fs::symlink("f", h.host("mount0/l")).unwrap();
    assert_eq!(h.path_op(Opcode::Utimens, [0, 0, AT_SYMLINK_NOFOLLOW, 0], "l"), 0);
    assert_eq!(h.stat(0, "f", 0).unwrap().mtime_sec, 3_000_000);
    assert!(h.stat(0, "l", AT_SYMLINK_NOFOLLOW).unwrap().mtime_sec > 3_000_000);
    // A bad nanosecond value: EINVAL from the host kernel.
    let bad: [i64; 4] = [0, 2_000_000_000, 0, 0];
    h.put(STAT_GPA + 512, bad.as_bytes());
    assert_eq!(h.path_op(Opcode::Utimens, [0, STAT_GPA + 512, 0, 0], "f"), err(libc::EINVAL));
}

// ---- the escape suite ----------------------------------------------------------------------

/// Every way of naming `outside/secret` from mount 0 through `..` and symlinks.
#[test]
fn escapes_through_dotdot_and_symlinks_are_refused() {
    let mut h = Harness::new(&[]);
    let outside = h.outside();
    let m = h.host("mount0");
    fs::create_dir(m.join("a")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), m.join("absolute")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", m.join("relative")).unwrap();
    std::os::unix::fs::symlink("../outside", m.join("relative-dir")).unwrap();
    std::os::unix::fs::symlink("/", m.join("root")).unwrap();
    // A chain: one -> a/two -> ../three -> ../../outside/secret.
    std::os::unix::fs::symlink("a/two", m.join("one")).unwrap();
    std::os::unix::fs::symlink("../three", m.join("a/two")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", m.join("three")).unwrap();

    let secret = outside.join("secret");
    let from_root = secret.to_str().unwrap().trim_start_matches('/').to_string();
    let escapes = [
        "..".to_string(),
        "../outside/secret".to_string(),
        "a/../../outside/secret".to_string(),
        "a/../a/../../outside/secret".to_string(),
        "absolute".to_string(),
        "relative".to_string(),
        "relative-dir/secret".to_string(),
        format!("root/{from_root}"),
        "one".to_string(),
    ];
    for path in &escapes {
        // Every escape is refused the same way, whatever the request.
        assert_eq!(h.read_file(0, path), Err(LEFT), "open {path}");
        assert_eq!(h.stat(0, path, 0).err(), Some(LEFT), "stat {path}");
        let result = h.path_op(Opcode::Access, [0, 0, 0, 0], path);
        assert_eq!(result, LEFT, "access {path}");
        let result = h.path_op(Opcode::Chmod, [0, 0o777, 0, 0], path);
        assert_eq!(result, LEFT, "chmod {path}");
        let result = h.path_op(Opcode::Utimens, [0, 0, 0, 0], path);
        assert_eq!(result, LEFT, "utimens {path}");
        let result = h.open(0, path, O_WRONLY | O_CREAT | O_TRUNC, 0o666);
        assert_eq!(result, LEFT, "create {path}");
    }
    // Creating, removing or renaming through an escaping directory: refused as well.
    for dir in ["..", "relative-dir", "root/tmp", "a/../.."] {
        let path = format!("{dir}/planted");
        assert_eq!(h.path_op(Opcode::Mkdir, [0, 0o777, 0, 0], &path), LEFT, "{path}");
        assert_eq!(h.symlink(0, "x", &path), LEFT, "{path}");
        assert_eq!(h.two_paths(Opcode::Rename, [0, 0], 0, "a", &path), LEFT);
        assert_eq!(h.two_paths(Opcode::Link, [0, 0], 0, "three", &path), LEFT);
        let result = h.path_op(Opcode::Unlink, [0, 0, 0, 0], &format!("{dir}/secret"));
        assert_eq!(result, LEFT, "unlink {dir}/secret");
    }
    // Following a link out while hard-linking it: refused, no link to the secret appears.
    let result = h.two_paths(Opcode::Link, [0, 0], AT_SYMLINK_FOLLOW, "absolute", "stolen");
    assert_eq!(result, LEFT);
    assert!(!m.join("stolen").exists());

    // A trailing '/' makes even "don't follow" requests follow the link: still beneath.
    for request_flags in [0, AT_SYMLINK_NOFOLLOW] {
        let stat = h.stat(0, "relative-dir/", request_flags).err();
        assert_eq!(stat, Some(LEFT), "stat {request_flags:#x}");
        let result = h.path_op(Opcode::Utimens, [0, 0, request_flags, 0], "relative-dir/");
        assert_eq!(result, LEFT, "utimens {request_flags:#x}");
    }
    assert_eq!(h.readlink(0, "relative-dir/", 100), Err(LEFT));
    assert_eq!(
        h.path_op(Opcode::Unlink, [0, AT_REMOVEDIR, 0, 0], "relative-dir/"),
        err(libc::ENOTDIR)
    );

    // The links themselves are inside: lstat and readlink see them, never what they name.
    let lstat = h.stat(0, "absolute", AT_SYMLINK_NOFOLLOW).unwrap();
    assert_eq!(lstat.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(h.readlink(0, "absolute", 4096).unwrap(), secret.as_os_str().as_bytes());
    // Chmod and utimens with AT_SYMLINK_NOFOLLOW act on the link, never on the secret.
    let before = fs::metadata(&secret).unwrap();
    assert_eq!(h.path_op(Opcode::Utimens, [0, 0, AT_SYMLINK_NOFOLLOW, 0], "absolute"), 0);
    let after = fs::metadata(&secret).unwrap();
    assert_eq!((before.mtime(), before.mtime_nsec()), (after.mtime(), after.mtime_nsec()));
    assert_eq!(before.permissions().mode(), after.permissions().mode());
    assert_eq!(fs::read(&secret).unwrap(), b"OUTSIDE SECRET");
    assert!(outside.join("planted").symlink_metadata().is_err());
}

/// `FindExit` names the first symlink on a path whose following leaves the mount, with its
/// target, so the guest can follow it in its own namespace; links that stay inside, plain
/// names and a path's own `..` are no exit.
#[test]
fn find_exit_names_the_symlink_that_leaves() {
    let mut h = Harness::new(&[]);
    let outside = h.outside();
    let m = h.host("mount0");
    fs::create_dir(m.join("a")).unwrap();
    fs::write(m.join("a/file"), b"inside").unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), m.join("absolute")).unwrap();
    std::os::unix::fs::symlink("../outside", m.join("relative-dir")).unwrap();
    std::os::unix::fs::symlink("a", m.join("stays")).unwrap();
    // A chain that leaves only at its end: one -> a/two -> ../three -> ../outside/secret.
    std::os::unix::fs::symlink("a/two", m.join("one")).unwrap();
    std::os::unix::fs::symlink("../three", m.join("a/two")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", m.join("three")).unwrap();

    let mut find_exit = |path: &str| -> Result<(usize, Vec<u8>), i64> {
        let out = SgEntry { gpa: BUFFER_GPA, len: 4096 };
        let args = [0, path.len() as u64, 0, 0];
        let result = h.send_parts(Opcode::FindExit, args, &[path.as_bytes()], &[out]);
        if result < 0 {
            return Err(result);
        }
        let (prefix, target_len) = ((result & 0xffff_ffff) as usize, (result >> 32) as usize);
        Ok((prefix, h.get(BUFFER_GPA, target_len)))
    };
    let secret = outside.join("secret").as_os_str().as_bytes().to_vec();
    assert_eq!(find_exit("absolute"), Ok((8, secret)));
    assert_eq!(find_exit("relative-dir/secret"), Ok((12, b"../outside".to_vec())));
    assert_eq!(find_exit("stays/file"), Err(err(libc::ENOENT)));
    assert_eq!(find_exit("one"), Ok((3, b"a/two".to_vec())));
    assert_eq!(find_exit("stays/two/x"), Ok((9, b"../three".to_vec())));
    assert_eq!(find_exit("a/file"), Err(err(libc::ENOENT)));
    assert_eq!(find_exit("../outside/secret"), Err(err(libc::ENOENT)));
    assert_eq!(find_exit("missing/absolute"), Err(err(libc::ENOENT)));
    // Its buffer must hold any target.
    let short = SgEntry { gpa: BUFFER_GPA, len: 100 };
    let result = h.send_parts(Opcode::FindExit, [0, 8, 0, 0], &[b"absolute"], &[short]);
    assert_eq!(result, err(libc::EINVAL));
}

/// A directory on the path is swapped, again and again, for a symlink to `/` while requests
/// run: no request ever reaches the real file outside. Opens and lstats check the content and
/// the inode; creations check that nothing appears outside.
#[test]
fn a_directory_swapped_for_a_symlink_to_root_never_leads_out() {
    let mut h = Harness::new(&[]);
    let secret = h.outside().join("secret");
    let from_root = secret.to_str().unwrap().trim_start_matches('/').to_string();
    let m = h.host("mount0");
    // Inside: d/<the secret's absolute path> with harmless content, and a symlink to `/`.
    let inside = m.join("d").join(&from_root);
    fs::create_dir_all(inside.parent().unwrap()).unwrap();
    fs::write(&inside, b"inside").unwrap();
    std::os::unix::fs::symlink("/", m.join("swap")).unwrap();
    let secret_ino = fs::metadata(&secret).unwrap().ino();
    let outside_dir = secret.parent().unwrap().to_path_buf();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let root = fs::File::open(&m).unwrap();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    &root,
                    "d",
                    &root,
                    "swap",
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
                swaps += 1;
            }
            swaps
        })
    };

    let path = format!("d/{from_root}");
    let planted = format!("d/{}/planted", from_root.rsplit_once('/').unwrap().0);
    let (mut inside_reads, mut refused) = (0, 0);
    for round in 0..20_000 {
        match h.read_file(0, &path) {
            Ok(content) => {
                assert_eq!(content, b"inside", "round {round}: read outside content");
                inside_reads += 1;
            }
            Err(errno) => {
                assert!(
                    [LEFT, err(libc::ENOENT), err(libc::EAGAIN)].contains(&errno),
                    "round {round}: {errno}"
                );
                refused += 1;
            }
        }
        if let Ok(stat) = h.stat(0, &path, AT_SYMLINK_NOFOLLOW) {
            assert_ne!(stat.ino, secret_ino, "round {round}: lstat reached the secret");
        }
        if round % 16 == 0 {
            let _ = h.path_op(Opcode::Mkdir, [0, 0o700, 0, 0], &planted);
            let _ = h.path_op(Opcode::Unlink, [0, AT_REMOVEDIR, 0, 0], &planted);
            let _ = h.path_op(Opcode::Chmod, [0, 0o777, 0, 0], &path);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 100, "the swapper barely ran ({swaps} swaps)");
    assert!(inside_reads > 0 && refused > 0, "no race happened: {inside_reads}/{refused}");
    assert!(!outside_dir.join("planted").exists(), "a directory was created outside");
    assert_eq!(fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o644);
}

/// `/proc` magic links (`exe`, `cwd`, `root`, `fd/N`) are not followed: ELOOP. Even a mount
/// of `/proc/self` cannot reach the host through them.
#[test]
fn magic_links_are_refused_with_eloop() {
    let mount = Mount { host: "/proc/self".into(), guest: "/p".into(), read_only: true };
    let mut h = Harness::with_mounts(&[mount]);
    for path in ["exe", "cwd/Cargo.toml", "root/etc/passwd", "fd/0", "root"] {
        assert_eq!(h.read_file(0, path), Err(err(libc::ELOOP)), "{path}");
        assert_eq!(h.stat(0, path, 0).err(), Some(err(libc::ELOOP)), "{path}");
    }
    // The status file is an ordinary file of that directory.
    assert!(h.read_file(0, "status").unwrap().starts_with(b"Name:"));
}

// ---- malformed requests ------------------------------------------------------------------

#[test]
fn bad_paths_are_einval_or_enametoolong() {
    let mut h = Harness::new(&[]);
    // A NUL byte: EINVAL. A leading '/': EINVAL.
    assert_eq!(h.open(0, "a\0b", O_RDONLY, 0), err(libc::EINVAL));
    assert_eq!(h.open(0, "/etc/passwd", O_RDONLY, 0), err(libc::EINVAL));
    assert_eq!(h.path_op(Opcode::Mkdir, [0, 0o777, 0, 0], "x\0"), err(libc::EINVAL));
    // PATH_MAX bytes (no room for the NUL): ENAMETOOLONG; PATH_MAX - 1 is merely missing.
    let long = "a/".repeat(PATH_MAX as usize / 2);
    assert_eq!(h.open(0, &long, O_RDONLY, 0), err(libc::ENAMETOOLONG));
    assert_eq!(h.open(0, &long[..PATH_MAX as usize - 1], O_RDONLY, 0), err(libc::ENOENT));
    assert_eq!(h.stat(0, &long, 0).err(), Some(err(libc::ENAMETOOLONG)));
    // A component longer than NAME_MAX: ENAMETOOLONG; NAME_MAX itself is fine.
    let name = "n".repeat(256);
    assert_eq!(h.open(0, &name, O_RDONLY, 0), err(libc::ENAMETOOLONG));
    assert_eq!(
        h.path_op(Opcode::Mkdir, [0, 0o777, 0, 0], &format!("x/{name}")),
        err(libc::ENAMETOOLONG)
    );
    assert_eq!(h.open(0, &name[..255], O_RDWR | O_CREAT, 0o600) >= 16, true);
    // A symlink target of PATH_MAX bytes: ENAMETOOLONG.
    assert_eq!(h.symlink(0, &"t".repeat(PATH_MAX as usize), "l"), err(libc::ENAMETOOLONG));
    // A target length beyond the SG list: EINVAL.
    let args = [0, 100, 0, 0];
    assert_eq!(h.send_parts(Opcode::Symlink, args, &[b"abc"], &[]), err(libc::EINVAL));
    // An unknown mount id: EINVAL.
    assert_eq!(h.open(5, "x", O_RDONLY, 0), err(libc::EINVAL));
}

#[test]
fn guest_ranges_outside_memory_are_efault() {
    let mut h = Harness::new(&[]);
    fs::write(h.host("mount0/f"), b"data").unwrap();
    let end = MEMORY_BYTES as u64;
    let handle = h.open_ok(0, "f", O_RDWR);
    let outside = [
        SgEntry { gpa: end, len: 1 },
        SgEntry { gpa: end - 2, len: 4 },
        SgEntry { gpa: u64::MAX - 1, len: 2 },
        SgEntry { gpa: 1 << 40, len: 16 },
    ];
    for entry in outside {
        let sg = [SgEntry { gpa: BUFFER_GPA, len: 1 }, entry];
        assert_eq!(h.send(Opcode::Read, [handle, 0, 0, 0], &sg), err(libc::EFAULT), "{entry:?}");
        assert_eq!(h.send(Opcode::Write, [handle, 0, 0, 0], &sg), err(libc::EFAULT));
        assert_eq!(h.send(Opcode::Pread, [handle, 0, 0, 0], &sg), err(libc::EFAULT));
        assert_eq!(h.send(Opcode::Pwrite, [handle, 0, 0, 0], &sg), err(libc::EFAULT));
        assert_eq!(h.send(Opcode::Open, [0, O_RDONLY, 0, 0], &[entry]), err(libc::EFAULT));
        let dir = h.open_ok(0, "", O_RDONLY | O_DIRECTORY);
        assert_eq!(h.send(Opcode::Getdents, [dir, 0, 0, 0], &[entry]), err(libc::EFAULT));
        close(&mut h, dir);
        assert_eq!(h.readlink(0, "f", 0).unwrap_err(), err(libc::EINVAL));
    }
    assert_eq!(fs::read(h.host("mount0/f")).unwrap(), b"data");

    // The SG list itself outside guest memory.
    let request = Request {
        opcode: Opcode::Read as u32,
        sg_count: 2,
        args: [handle, 0, 0, 0],
        sg_gpa: end - 16,
        ..Request::default()
    };
    assert_eq!(h.files.handle(&h.memory, &request), err(libc::EFAULT));

    // Status and statfs targets outside: EFAULT, and an Open with one creates nothing.
    assert_eq!(h.send(Opcode::Fstat, [handle, end - 8, 0, 0], &[]), err(libc::EFAULT));
    let args = [0, AT_SYMLINK_NOFOLLOW, end, 0];
    assert_eq!(h.send_parts(Opcode::Stat, args, &[b"f"], &[]), err(libc::EFAULT));
    assert_eq!(h.send(Opcode::Statfs, [0, end - 100, 0, 0], &[]), err(libc::EFAULT));
    let args = [0, O_RDWR | O_CREAT, 0o600, end - 8];
    assert_eq!(h.send_parts(Opcode::Open, args, &[b"not-created"], &[]), err(libc::EFAULT));
    assert!(!h.host("mount0/not-created").exists());
    assert_eq!(h.files.open_files(), 1);
    // Utimens times outside: EFAULT.
    assert_eq!(h.path_op(Opcode::Utimens, [0, end - 8, 0, 0], "f"), err(libc::EFAULT));
}

#[test]
fn huge_sizes_and_offsets_are_einval() {
    let mut h = Harness::new(&[]);
    let handle = h.open_ok(0, "f", O_RDWR | O_CREAT);
    // More SG entries than MAX_SG_PER_REQUEST.
    let many = vec![SgEntry { gpa: BUFFER_GPA, len: 1 }; MAX_SG_PER_REQUEST as usize + 1];
    assert_eq!(h.send(Opcode::Read, [handle, 0, 0, 0], &many), err(libc::EINVAL));
    // More bytes than MAX_BYTES_PER_REQUEST, and lengths that overflow when added.
    let big = [SgEntry { gpa: 0, len: MAX_BYTES_PER_REQUEST + 1 }];
    assert_eq!(h.send(Opcode::Write, [handle, 0, 0, 0], &big), err(libc::EINVAL));
    let overflow = [SgEntry { gpa: 0, len: u64::MAX }, SgEntry { gpa: 0, len: 2 }];
    assert_eq!(h.send(Opcode::Read, [handle, 0, 0, 0], &overflow), err(libc::EINVAL));
    assert_eq!(h.send(Opcode::Open, [0, O_RDONLY, 0, 0], &big), err(libc::EINVAL));
    // Negative offsets and lengths.
    let one = [SgEntry { gpa: BUFFER_GPA, len: 1 }];
    assert_eq!(h.send(Opcode::Pread, [handle, u64::MAX, 0, 0], &one), err(libc::EINVAL));
    assert_eq!(h.send(Opcode::Pwrite, [handle, 1 << 63, 0, 0], &one), err(libc::EINVAL));
    assert_eq!(h.send(Opcode::Ftruncate, [handle, u64::MAX, 0, 0], &[]), err(libc::EINVAL));
    assert_eq!(h.send(Opcode::Seek, [handle, 0, 99, 0], &[]), err(libc::EINVAL));
    assert_eq!(h.send(Opcode::Seek, [handle, 0, u64::MAX, 0], &[]), err(libc::EINVAL));
    // A rename whose old-path length exceeds the SG list.
    let args = [0, 0, 0, 1 << 40];
    assert_eq!(h.send_parts(Opcode::Rename, args, &[b"a", b"b"], &[]), err(libc::EINVAL));
    // An opcode that is not a file request.
    assert_eq!(h.send(Opcode::Poll, [0, 0, 0, 0], &[]), err(libc::EINVAL));
}

#[test]
fn unknown_handles_are_ebadf() {
    let mut h = Harness::new(&[]);
    let one = [SgEntry { gpa: BUFFER_GPA, len: 1 }];
    for handle in [FIRST_FILE_HANDLE, FIRST_FILE_HANDLE + 4095, 3, u64::MAX] {
        assert_eq!(h.send(Opcode::Read, [handle, 0, 0, 0], &one), err(libc::EBADF));
        assert_eq!(h.send(Opcode::Write, [handle, 0, 0, 0], &one), err(libc::EBADF));
        assert_eq!(h.send(Opcode::Pread, [handle, 0, 0, 0], &one), err(libc::EBADF));
        assert_eq!(h.send(Opcode::Pwrite, [handle, 0, 0, 0], &one), err(libc::EBADF));
        assert_eq!(h.send(Opcode::Seek, [handle, 0, 0, 0], &[]), err(libc::EBADF));
        assert_eq!(h.send(Opcode::Fstat, [handle, STAT_GPA, 0, 0], &[]), err(libc::EBADF));
        assert_eq!(h.send(Opcode::Getdents, [handle, 0, 0, 0], &one), err(libc::EBADF));
        assert_eq!(h.send(Opcode::Ftruncate, [handle, 0, 0, 0], &[]), err(libc::EBADF));
        assert_eq!(h.send(Opcode::Fsync, [handle, 0, 0, 0], &[]), err(libc::EBADF));
        assert_eq!(h.send(Opcode::Close, [handle, 0, 0, 0], &[]), err(libc::EBADF));
        let plus_one = handle.wrapping_add(1);
        if plus_one != 0 {
            assert_eq!(h.send(Opcode::Chmod, [0, 0o600, plus_one, 0], &[]), err(libc::EBADF));
            assert_eq!(h.send(Opcode::Utimens, [0, 0, 0, plus_one], &[]), err(libc::EBADF));
        }
    }
}

#[test]
fn the_open_file_table_is_capped_with_emfile() {
    // Let this process hold the table's worth of fds (the soft limit is often 1024).
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out-pointer / in-pointer for the rlimit calls.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    let mut h = Harness::new(&[]);
    fs::write(h.host("mount0/f"), b"").unwrap();
    let mut opened = 0;
    let last = loop {
        let result = h.open(0, "f", O_RDONLY, 0);
        if result < 0 {
            break result;
        }
        opened += 1;
        assert!(opened <= litebox_vmm::files::MAX_OPEN_FILES, "no cap");
    };
    // EMFILE: from the table at 4096 files, or from the host if its limit is lower.
    assert_eq!(last, err(libc::EMFILE));
    if limit.rlim_max > 5000 {
        assert_eq!(opened, litebox_vmm::files::MAX_OPEN_FILES);
    }
    close(&mut h, FIRST_FILE_HANDLE + 7);
    assert_eq!(h.open(0, "f", O_RDONLY, 0), (FIRST_FILE_HANDLE + 7) as i64);
}

// ---- read-only mounts ----------------------------------------------------------------------

#[test]
fn every_change_on_a_read_only_mount_is_erofs() {
    let mut h = Harness::new(&[true]);
    let ro = h.host("mount1");
    fs::write(ro.join("f"), b"keep").unwrap();
    fs::create_dir(ro.join("d")).unwrap();
    std::os::unix::fs::symlink("f", ro.join("l")).unwrap();
    let snapshot = |dir: &Path| {
        let mut names: Vec<_> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };
    let before = snapshot(&ro);

    // Opens that would write, truncate or create.
    for (path, flags) in [
        ("f", O_WRONLY),
        ("f", O_RDWR),
        ("f", O_RDONLY | O_TRUNC),
        ("f", O_WRONLY | O_APPEND),
        ("new", O_WRONLY | O_CREAT),
        ("new", O_RDONLY | O_CREAT),
        ("d", libc::O_TMPFILE as u64 | O_RDWR),
    ] {
        assert_eq!(h.open(1, path, flags, 0o644), err(libc::EROFS), "open {path} {flags:#o}");
    }
    // Reading works, and so does what Linux allows on a read-only file system: O_CREAT of an
    // existing file without writing; O_CREAT|O_EXCL of one is EEXIST; a missing directory
    // is ENOENT.
    let handle = h.open_ok(1, "f", O_RDONLY);
    assert_eq!(h.read(handle, 10).unwrap(), b"keep");
    assert!(h.open(1, "f", O_RDONLY | O_CREAT, 0o644) >= 16);
    assert_eq!(h.open(1, "f", O_RDONLY | O_CREAT | O_EXCL, 0o644), err(libc::EEXIST));
    assert_eq!(h.open(1, "nodir/new", O_RDONLY | O_CREAT, 0o644), err(libc::ENOENT));

    // Data and metadata changes through a handle from the ro mount.
    let one = [SgEntry { gpa: BUFFER_GPA, len: 1 }];
    assert_eq!(h.send(Opcode::Write, [handle, 0, 0, 0], &one), err(libc::EROFS));
    assert_eq!(h.send(Opcode::Pwrite, [handle, 0, 0, 0], &one), err(libc::EROFS));
    assert_eq!(h.send(Opcode::Ftruncate, [handle, 0, 0, 0], &[]), err(libc::EROFS));
    assert_eq!(h.send(Opcode::Chmod, [1, 0o777, handle + 1, 0], &[]), err(libc::EROFS));
    assert_eq!(h.send(Opcode::Utimens, [1, 0, 0, handle + 1], &[]), err(libc::EROFS));
    assert_eq!(h.send(Opcode::Fsync, [handle, 0, 0, 0], &[]), 0);

    // Path requests.
    assert_eq!(h.path_op(Opcode::Mkdir, [1, 0o777, 0, 0], "new"), err(libc::EROFS));
    assert_eq!(h.path_op(Opcode::Mkdir, [1, 0o777, 0, 0], "d"), err(libc::EEXIST));
    assert_eq!(h.path_op(Opcode::Unlink, [1, 0, 0, 0], "f"), err(libc::EROFS));
    assert_eq!(h.path_op(Opcode::Unlink, [1, AT_REMOVEDIR, 0, 0], "d"), err(libc::EROFS));
    assert_eq!(h.two_paths(Opcode::Rename, [1, 1], 0, "f", "g"), err(libc::EROFS));
    assert_eq!(h.two_paths(Opcode::Link, [1, 1], 0, "f", "g"), err(libc::EROFS));
    assert_eq!(h.symlink(1, "f", "s"), err(libc::EROFS));
    assert_eq!(h.path_op(Opcode::Chmod, [1, 0o777, 0, 0], "f"), err(libc::EROFS));
    assert_eq!(h.path_op(Opcode::Utimens, [1, 0, 0, 0], "f"), err(libc::EROFS));
    assert_eq!(h.path_op(Opcode::Utimens, [1, 0, AT_SYMLINK_NOFOLLOW, 0], "l"), err(libc::EROFS));
    assert_eq!(h.path_op(Opcode::Access, [1, 2, 0, 0], "f"), err(libc::EROFS));
    assert_eq!(h.path_op(Opcode::Access, [1, 4, 0, 0], "f"), 0);
    // Rename and link from a ro mount to a writable one: EXDEV (the mounts differ).
    assert_eq!(h.two_paths(Opcode::Rename, [1, 0], 0, "f", "g"), err(libc::EXDEV));

    assert_eq!(snapshot(&ro), before);
    assert_eq!(fs::read(ro.join("f")).unwrap(), b"keep");
    assert_eq!(fs::metadata(ro.join("f")).unwrap().permissions().mode() & 0o777, 0o644);
}

#[test]
fn a_missing_host_directory_is_a_setup_error() {
    let mount = Mount { host: "/nonexistent/dir".into(), guest: "/x".into(), read_only: false };
    let error = FileService::new(&[mount]).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/dir"), "{error}");
    assert_eq!(error.exit_code(), 125);
    let _ = CString::new("unused");
}

#[test]
fn a_path_range_that_wraps_around_is_efault() {
    let mut h = Harness::new(&[]);
    // The old path's bytes end inside a range that starts near the top of the address space.
    let sg = [SgEntry { gpa: u64::MAX - 3, len: 8 }];
    assert_eq!(h.send(Opcode::Rename, [0, 0, 0, 4], &sg), err(libc::EFAULT));
    assert_eq!(h.send(Opcode::Symlink, [0, 2, 0, 0], &sg), err(libc::EFAULT));
}
