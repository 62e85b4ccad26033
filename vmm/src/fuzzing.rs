//! A harness that feeds arbitrary ring contents and arbitrary guest memory to the host-side
//! request handler ([`RingService`] and the [`FileService`] behind it), for the property test
//! (`vmm/tests/ring_fuzz.rs`) and the `cargo fuzz` target (`fuzz/`). Not a stable API.
//!
//! Guest memory is mapped between two `PROT_NONE` guard pages, so a host access even one byte
//! outside it crashes the harness instead of passing unseen. The input bytes are decoded into
//! one doorbell's worth of requests: each field is picked by a selector byte among values
//! that reach deep into the handler (valid opcodes, handles, GPAs inside, at the edge of and
//! outside guest memory, paths that try to escape the mount, sizes of 0, 1 and 2^63) or taken
//! raw, so random bytes exercise more than the decoder's first `EINVAL`.

use std::io;
use std::path::{Path, PathBuf};

use shim_abi::{
    Request, RingHeader, SgEntry, FIRST_FILE_HANDLE, RING_ENTRIES, RING_GPA, SG_HOST_WRITES,
    SG_USER_VIRTUAL, SQ_OFFSET,
};
use vm_memory::{GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};
use zerocopy::FromZeros;

use crate::files::{FileService, Mount};
use crate::guest_memory;
pub use crate::ring::RingEnd;
use crate::ring::RingService;
use crate::stats::Stats;
use crate::stdio::{Input, Output, Stdio};

/// Bytes of guest memory the harness gives the handler.
pub const MEMORY_BYTES: usize = 1 << 20;
const MEMORY_SIZE: u64 = MEMORY_BYTES as u64;
/// Where the decoded scatter-gather lists go (64 entries per request).
const SG_GPA: u64 = 0x8000;
/// Where the dictionary of paths goes, one per 256 bytes.
const PATHS_GPA: u64 = 0x20000;
/// Where the raw input bytes are copied, as data for writes.
const DATA_OFFSET: usize = 0x40000;
const DATA_GPA: u64 = DATA_OFFSET as u64;
const PAGE: usize = 4096;
/// A guest page-table tree (PML4, PDPT, PD, PT, one page each) for user-virtual SG entries.
const TABLES_GPA: u64 = 0x30000;
/// Where the tree maps its 4 KiB pages: user address `USER_VIRT + i * 4096` is data page `i`
/// (every seventh missing, page 5 supervisor-only); the next 2 MiB are one huge page at GPA
/// 0 that runs past the end of guest memory.
const USER_VIRT: u64 = 0x40_0000;
const USER_PAGES: u64 = 192;

/// Paths a program might use to leave its mount, and ordinary ones.
const PATHS: &[&[u8]] = &[
    b"", b"a", b"sub", b"sub/b", b"..", b"../outside/secret", b"/", b"/etc/passwd",
    b"escape", b"escape/x", b"absolute", b"sub/../../outside", b"new", b"sub/new", b".",
    b"a/", b"\0", b"a\0b", b"//a", b"sub/./b",
];

/// Guest memory in an anonymous mapping with a guard page on each side.
pub struct GuardedMemory {
    mapping: *mut u8,
    mapping_len: usize,
    memory: GuestMemoryMmap,
}

impl GuardedMemory {
    pub fn new() -> io::Result<Self> {
        let size = MEMORY_BYTES;
        let mapping_len = size + 2 * PAGE;
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let mapping = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapping_len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mapping = mapping.cast::<u8>();
        // SAFETY: the page after the first guard lies inside the mapping just made.
        let guest = unsafe { mapping.add(PAGE) };
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: `guest..guest + size` lies inside the mapping.
        if unsafe { libc::mprotect(guest.cast(), size, prot) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: `guest..guest + size` is a readable, writable part of a live mapping with
        // these flags, and `Self` unmaps it only after dropping `memory`.
        let region = unsafe { MmapRegion::build_raw(guest, size, prot, flags) }
            .map_err(|error| io::Error::other(error.to_string()))?;
        let region = GuestRegionMmap::new(region, GuestAddress(0))
            .ok_or_else(|| io::Error::other("the guest region does not fit"))?;
        let memory = GuestMemoryMmap::from_regions(vec![region])
            .map_err(|error| io::Error::other(error.to_string()))?;
        Ok(Self { mapping, mapping_len, memory })
    }

    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// A copy of all of guest memory.
    pub fn contents(&self) -> Vec<u8> {
        let mut bytes = vec![0; MEMORY_BYTES];
        let _ = vm_memory::Bytes::read_slice(&self.memory, &mut bytes, GuestAddress(0));
        bytes
    }

    /// Zeroes guest memory (the pages are dropped and read as zero again).
    pub fn clear(&self) {
        // SAFETY: the guest part of the mapping is private anonymous memory owned by `self`.
        unsafe {
            libc::madvise(self.mapping.add(PAGE).cast(), MEMORY_BYTES, libc::MADV_DONTNEED)
        };
    }
}

impl Drop for GuardedMemory {
    fn drop(&mut self) {
        // SAFETY: the whole mapping was made by `new`. `memory` refers to it but does not own
        // it (vm-memory never unmaps a raw region) and is dropped right after this body
        // without touching the bytes.
        unsafe { libc::munmap(self.mapping.cast(), self.mapping_len) };
    }
}

/// What one case did, for the properties the caller checks.
#[derive(Debug)]
pub struct CaseOutcome {
    /// Requests the guest submitted (`sq_tail - sq_head` as decoded).
    pub submitted: u32,
    /// What `process` returned: the run's end, `None`, or the error that stops the VMM.
    pub result: Result<Option<RingEnd>, String>,
    /// Requests the host consumed (`sq_head` after minus before).
    pub consumed: u32,
    /// Completions posted (`cq_tail` after minus before).
    pub completed: u32,
}

/// Reads bytes off the input; past its end every read is zero.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> u8 {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        byte
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn raw(&mut self, len: usize) -> u64 {
        (0..len).fold(0, |value, index| value | u64::from(self.u8()) << (8 * index))
    }

    /// A number for an argument or a GPA, picked among the interesting ones.
    fn value(&mut self) -> u64 {
        match self.u8() % 12 {
            0 => 0,
            1 => u64::from(self.u8()),
            2 => DATA_GPA + self.raw(2),
            3 => MEMORY_SIZE - u64::from(self.u8()),
            4 => FIRST_FILE_HANDLE + u64::from(self.u8() % 8),
            5 => u64::MAX - u64::from(self.u8()),
            6 => self.raw(8),
            7 => 1 << (self.u8() % 64),
            8 => u64::from(self.u8() % 3),
            9 => PATHS_GPA + 256 * (usize::from(self.u8()) % PATHS.len()) as u64,
            10 => MEMORY_SIZE + self.raw(2),
            _ => RING_GPA + self.raw(2) % 0x3000,
        }
    }

    /// One scatter-gather entry: mostly a dictionary path or a data range.
    fn sg_entry(&mut self) -> SgEntry {
        let mut entry = SgEntry::new_zeroed();
        match self.u8() % 6 {
            0 | 1 => {
                let index = usize::from(self.u8()) % PATHS.len();
                entry.gpa = PATHS_GPA + 256 * index as u64;
                entry.len = PATHS[index].len() as u64;
            }
            2 => {
                entry.gpa = DATA_GPA + self.raw(2);
                entry.len = self.raw(2);
            }
            3 => {
                let back = u64::from(self.u8());
                entry.gpa = MEMORY_SIZE - back;
                entry.len = back + u64::from(self.u8());
            }
            4 => {
                // A user range the host translates through the tables: mapped, missing,
                // supervisor, read-only, huge and past guest memory, or outside the tree;
                // sometimes marked as one the host writes into.
                let marks = if self.u8() % 2 == 0 {
                    SG_USER_VIRTUAL
                } else {
                    SG_USER_VIRTUAL | SG_HOST_WRITES
                };
                entry.gpa = marks | (USER_VIRT + self.raw(3) % (4 << 20));
                entry.len = self.raw(3) % (1 << 20);
            }
            _ => {
                entry.gpa = self.value();
                entry.len = self.value();
            }
        }
        entry
    }
}

/// The page-table tree at `TABLES_GPA` (see `USER_VIRT`).
fn write_page_tables(memory: &GuestMemoryMmap) {
    const PRESENT: u64 = 1;
    const WRITABLE: u64 = 2;
    const USER: u64 = 4;
    const HUGE: u64 = 1 << 7;
    let table = |level: u64| TABLES_GPA + level * PAGE as u64;
    let user_table = PRESENT | WRITABLE | USER;
    let _ = guest_memory::write(memory, table(0), &(table(1) | user_table));
    let _ = guest_memory::write(memory, table(1), &(table(2) | user_table));
    let _ = guest_memory::write(memory, table(2) + 2 * 8, &(table(3) | user_table));
    let _ = guest_memory::write(memory, table(2) + 3 * 8, &(user_table | HUGE));
    for page in 0..USER_PAGES {
        let frame = DATA_GPA + page * PAGE as u64;
        let flags = match page {
            5 => PRESENT | WRITABLE,
            6 => PRESENT | USER,
            page if page % 7 == 3 => 0,
            _ => user_table,
        };
        let _ = guest_memory::write(memory, table(3) + page * 8, &(frame | flags));
    }
}

/// Writes the decoded ring, SG lists, paths and data into guest memory; returns the header
/// as submitted.
fn lay_out(memory: &GuestMemoryMmap, input: &[u8]) -> RingHeader {
    let mut cursor = Cursor { bytes: input, at: 0 };
    for (index, path) in PATHS.iter().enumerate() {
        let _ = vm_memory::Bytes::write_slice(
            memory,
            path,
            GuestAddress(PATHS_GPA + 256 * index as u64),
        );
    }
    let data_len = input.len().min(MEMORY_BYTES - DATA_OFFSET);
    let _ = vm_memory::Bytes::write_slice(memory, &input[..data_len], GuestAddress(DATA_GPA));
    write_page_tables(memory);

    let mut header = RingHeader::new_zeroed();
    header.page_table_root = if cursor.u8() % 8 == 0 { cursor.value() } else { TABLES_GPA };
    header.sq_head = if cursor.u8().is_multiple_of(4) { cursor.u32() } else { 0 };
    let count = u32::from(cursor.u8() % 9);
    header.sq_tail = match cursor.u8() % 16 {
        0 => cursor.u32(),
        _ => header.sq_head.wrapping_add(count),
    };
    header.cq_tail = if cursor.u8().is_multiple_of(4) { cursor.u32() } else { 0 };

    for index in 0..count.min(RING_ENTRIES) {
        let mut request = Request::new_zeroed();
        request.opcode = match cursor.u8() % 8 {
            0 => cursor.u32(),
            _ => u32::from(cursor.u8() % 36),
        };
        request.user_data = cursor.raw(8);
        request.args = [cursor.value(), cursor.value(), cursor.value(), cursor.value()];
        let sg_list = SG_GPA + u64::from(index) * 64 * 16;
        let (sg_count, sg_gpa) = match cursor.u8() % 8 {
            0 => (cursor.u32(), cursor.value()),
            1 => (cursor.u8().into(), sg_list),
            selector => (u32::from(selector) - 2, sg_list),
        };
        request.sg_count = sg_count;
        request.sg_gpa = sg_gpa;
        for entry in 0..u64::from(sg_count.min(64)) {
            let _ = guest_memory::write(memory, sg_list + entry * 16, &cursor.sg_entry());
        }
        let slot = u64::from(header.sq_head.wrapping_add(index) % RING_ENTRIES);
        let _ = guest_memory::write(memory, RING_GPA + SQ_OFFSET + slot * 64, &request);
    }
    let _ = guest_memory::write(memory, RING_GPA, &header);
    header
}

/// Serves one doorbell of the decoded `input` against `mounts` (the first writable, any
/// further ones as given). Stdio is captured, so no host fd but the mounts' is touched.
pub fn run_case(
    memory: &GuardedMemory,
    mounts: &[Mount],
    input: &[u8],
) -> io::Result<CaseOutcome> {
    memory.clear();
    let guest = memory.memory();
    let before = lay_out(guest, input);

    let mut files = FileService::new(mounts).map_err(io::Error::other)?;
    let mut stdio = Stdio::new(Input::Bytes(input.to_vec()), Output::Capture, Output::Capture);
    stdio.limit_output(1 << 20);
    let mut stats = Stats::default();
    let mut service = RingService {
        memory: guest,
        stdio: &mut stdio,
        files: &mut files,
        stats: &mut stats,
        deadline: None,
        clock_read_at: None,
    };
    let result = service.process();

    // The host writes its indices back last; a request may have overwritten the rest of the
    // header (it is the guest's own memory), so only those two are compared.
    let after: RingHeader = guest_memory::read(guest, RING_GPA).map_err(io::Error::other)?;
    Ok(CaseOutcome {
        submitted: before.sq_tail.wrapping_sub(before.sq_head),
        result,
        consumed: after.sq_head.wrapping_sub(before.sq_head),
        completed: after.cq_tail.wrapping_sub(before.cq_tail),
    })
}

/// Makes `root/{mount,ro,outside}` for a case: a writable mount with a file, a directory and
/// symlinks that point out of it (relative and absolute), a read-only mount, and beside them
/// a directory the guest must never reach, holding `secret`.
pub fn make_tree(root: &Path, secret: &[u8]) -> io::Result<Vec<Mount>> {
    let mount = root.join("mount");
    let _ = std::fs::remove_dir_all(&mount);
    std::fs::create_dir_all(mount.join("sub"))?;
    std::fs::write(mount.join("a"), b"contents of a\n")?;
    std::fs::write(mount.join("sub/b"), b"b")?;
    std::os::unix::fs::symlink("../outside", mount.join("escape"))?;
    std::os::unix::fs::symlink(root.join("outside/secret"), mount.join("absolute"))?;
    std::fs::create_dir_all(root.join("ro"))?;
    std::fs::write(root.join("ro/keep"), b"read-only")?;
    std::fs::create_dir_all(root.join("outside"))?;
    std::fs::write(root.join("outside/secret"), secret)?;
    Ok(vec![
        Mount { host: mount, guest: "/m".into(), read_only: false },
        Mount { host: root.join("ro"), guest: "/ro".into(), read_only: true },
    ])
}

/// Everything one fuzzing process needs: a directory for the mounts, the secret kept beside
/// them, and the guarded guest memory. Not `Send`: one per thread.
pub struct Fixture {
    root: PathBuf,
    secret: Vec<u8>,
    memory: GuardedMemory,
}

impl Fixture {
    /// Uses `root` (an empty directory the caller owns) for the mounts and the secret.
    pub fn new(root: PathBuf) -> io::Result<Self> {
        let mut token = [0u8; 12];
        crate::loader::getrandom_host(&mut token);
        let hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let secret = format!("litebox-secret-{hex}").into_bytes();
        Ok(Self { root, secret, memory: GuardedMemory::new()? })
    }

    /// Runs one input and checks every property; `Err` names the one that broke:
    ///
    /// - every request consumed has a completion, but one that ended the run; only a corrupt
    ///   queue may stop the VMM;
    /// - nothing outside the granted mounts was read (the secret beside them never reaches
    ///   guest memory) or changed, and the read-only mount is as it was.
    ///
    /// A panic or a host access outside guest memory (a guard page) crashes the caller.
    pub fn check(&self, input: &[u8]) -> Result<(), String> {
        let mounts = make_tree(&self.root, &self.secret).map_err(|e| format!("the tree: {e}"))?;
        let ro_file = self.root.join("ro/keep");
        let ro_before = std::fs::metadata(&ro_file).map_err(|e| e.to_string())?;
        let outcome = run_case(&self.memory, &mounts, input)
            .map_err(|e| format!("the harness failed: {e}"))?;

        let CaseOutcome { submitted, consumed, completed, .. } = outcome;
        let complete = match &outcome.result {
            Ok(None) => consumed == submitted && completed == submitted,
            Ok(Some(_)) => consumed <= submitted && completed + 1 == consumed,
            Err(_) => submitted > RING_ENTRIES && consumed == 0 && completed == 0,
        };
        if !complete {
            return Err(format!("requests and completions don't match: {outcome:?}"));
        }

        // (An input that holds the secret itself proves nothing: the fuzzer learns it from the
        // comparison below and may put it in guest memory by hand.)
        let leaked = contains(&self.memory.contents(), &self.secret);
        if leaked && !contains(input, &self.secret) {
            return Err("the secret beside the mounts reached guest memory".to_string());
        }

        let root = &self.root;
        if names(root) != ["mount", "outside", "ro"] {
            return Err(format!("the directory of the mounts changed: {:?}", names(root)));
        }
        let secret_now = std::fs::read(root.join("outside/secret")).unwrap_or_default();
        if names(&root.join("outside")) != ["secret"] || secret_now != self.secret {
            return Err("the directory beside the mounts changed".to_string());
        }
        let ro_now = std::fs::metadata(&ro_file).map_err(|e| e.to_string())?;
        if names(&root.join("ro")) != ["keep"]
            || std::fs::read(&ro_file).unwrap_or_default() != b"read-only"
            || ro_now.permissions() != ro_before.permissions()
            || ro_now.modified().ok() != ro_before.modified().ok()
        {
            return Err("the read-only mount changed".to_string());
        }
        Ok(())
    }
}

/// Whether `needle` occurs in `haystack` (C's `memmem`: a byte-by-byte Rust loop over 1 MiB
/// would dominate an instrumented fuzzing run).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    // SAFETY: both pointers name live slices of the given lengths; memmem only reads them.
    let found = unsafe {
        let (start, len) = (haystack.as_ptr().cast(), haystack.len());
        libc::memmem(start, len, needle.as_ptr().cast(), needle.len())
    };
    !found.is_null()
}

/// The sorted names in `dir` (empty if it can't be read).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
