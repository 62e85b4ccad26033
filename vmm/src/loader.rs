//! Loads the program: checks its ELF header with `goblin`, decides the user address-space
//! layout, writes its segments, the vDSO and the initial stack (argv, envp, auxv) into guest
//! memory, and describes all of it to the guest kernel in the [`BootInfo`].
//!
//! The VMM writes guest memory at host speed; the guest kernel only maps what is described
//! here, so a start costs no copying in ring 0.

use std::collections::BTreeMap;
use std::path::Path;

use goblin::elf::header::{EM_X86_64, ET_DYN, ET_EXEC};
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use goblin::elf::Elf;
use shim_abi::{
    BootInfo, SegmentMapping, MAX_SEGMENTS, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE,
    USER_END,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::error::{Error, Result};

/// Where a static-pie program is placed (Linux's `ELF_ET_DYN_BASE` on x86-64).
const PIE_LOAD_BIAS: u64 = 0x5555_5555_4000;
/// Top of the main thread's stack, and how far it may grow (`RLIMIT_STACK`).
const STACK_TOP: u64 = 0x7fff_ffff_e000;
const STACK_LIMIT_BYTES: u64 = 8 << 20;
/// Bytes left below the initial stack pointer in the prepared stack pages.
const STACK_SLACK: u64 = 2 * PAGE_SIZE;
/// The vDSO sits this far below the lowest stack address; mmap allocates below it.
const VDSO_GAP: u64 = 16 << 20;

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;
const AT_SYSINFO_EHDR: u64 = 33;

/// The user and group ids the program runs as (the guest kernel reports the same).
pub const PROGRAM_UID: u64 = 1000;
pub const PROGRAM_GID: u64 = 1000;

/// What the program is started with.
pub struct ProgramArgs<'a> {
    /// `argv`, `argv[0]` included.
    pub argv: &'a [Vec<u8>],
    /// `envp` entries, `KEY=VALUE`.
    pub envp: &'a [Vec<u8>],
    /// `AT_EXECFN`: the path the program was started by.
    pub exec_path: &'a [u8],
}

/// A checked ELF executable: what the loader needs from its headers.
pub struct Program {
    bytes: Vec<u8>,
    entry: u64,
    load_bias: u64,
    phdr_virt: u64,
    phent: u64,
    phnum: u64,
    /// (file offset, file size, virtual address, memory size, PROT_* bits) per PT_LOAD.
    segments: Vec<(u64, u64, u64, u64, u32)>,
}

/// Reads the image file at `path`, refusing anything that isn't a regular file of at most
/// `limit` bytes (it could not fit in guest memory anyway). Opened without blocking and
/// checked on the open file, so a FIFO with no writer, `/dev/zero` or a file swapped in
/// after a check can't hang the VMM or fill its memory.
pub fn read_image(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    let unreadable = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => Error::ImageNotFound { path: path.to_path_buf() },
        _ => Error::ImageUnreadable { path: path.to_path_buf(), source },
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(not_executable(path, "is a directory"));
    }
    if !meta.is_file() {
        return Err(not_executable(path, "is not a regular file (a device, FIFO or socket)"));
    }
    if meta.len() > limit {
        let size = meta.len();
        let reason = format!("is {size} bytes, more than the guest memory of {limit} bytes");
        return Err(not_executable(path, reason + " (raise --memory)"));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(not_executable(path, "grew beyond the guest memory while being read"));
    }
    Ok(bytes)
}

fn not_executable(path: &Path, reason: impl Into<String>) -> Error {
    Error::ImageNotExecutable { path: path.to_path_buf(), reason: reason.into() }
}

impl Program {
    /// Parses and checks `bytes` (the file at `path`).
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
            return Err(not_executable(path, "not an ELF executable"));
        }
        let elf = Elf::parse(&bytes)
            .map_err(|error| not_executable(path, format!("malformed ELF file ({error})")))?;
        if !elf.is_64 || elf.header.e_machine != EM_X86_64 {
            let machine = goblin::elf::header::machine_to_str(elf.header.e_machine);
            return Err(not_executable(
                path,
                format!("built for {machine} ({}-bit), not x86-64", if elf.is_64 { 64 } else { 32 }),
            ));
        }
        if let Some(interp) = elf.program_headers.iter().find(|ph| ph.p_type == PT_INTERP) {
            let interpreter = elf.interpreter.map(str::to_string).unwrap_or_else(|| {
                format!("an interpreter at file offset {:#x}", interp.p_offset)
            });
            return Err(Error::ImageDynamic { path: path.to_path_buf(), interpreter });
        }
        let load_bias = match elf.header.e_type {
            ET_EXEC => 0,
            ET_DYN => PIE_LOAD_BIAS,
            other => {
                return Err(not_executable(path, format!("ELF type {other} is not an executable")))
            }
        };

        let mut segments = Vec::new();
        for header in elf.program_headers.iter().filter(|ph| ph.p_type == PT_LOAD) {
            let in_file = header.p_offset.checked_add(header.p_filesz);
            if in_file.is_none_or(|end| end > bytes.len() as u64) || header.p_filesz > header.p_memsz
            {
                return Err(not_executable(path, "a loadable segment lies outside the file"));
            }
            let start = header.p_vaddr.checked_add(load_bias);
            let end = start.and_then(|start| start.checked_add(header.p_memsz));
            if end.is_none_or(|end| end > USER_END) || start.is_some_and(|start| start < PAGE_SIZE)
            {
                return Err(not_executable(path, "a loadable segment lies outside user memory"));
            }
            let mut prot = 0;
            if header.p_flags & PF_R != 0 {
                prot |= PROT_READ;
            }
            if header.p_flags & PF_W != 0 {
                prot |= PROT_WRITE;
            }
            if header.p_flags & PF_X != 0 {
                prot |= PROT_EXEC;
            }
            segments.push((
                header.p_offset,
                header.p_filesz,
                header.p_vaddr + load_bias,
                header.p_memsz,
                prot,
            ));
        }
        if segments.is_empty() {
            return Err(not_executable(path, "the ELF file has no loadable segment"));
        }

        let phdr_virt = match elf.program_headers.iter().find(|ph| ph.p_type == PT_PHDR) {
            Some(phdr) => phdr.p_vaddr + load_bias,
            None => {
                let first = elf
                    .program_headers
                    .iter()
                    .find(|ph| ph.p_type == PT_LOAD && ph.p_offset == 0)
                    .map(|ph| ph.p_vaddr + load_bias);
                first.map(|base| base + elf.header.e_phoff).unwrap_or(0)
            }
        };
        let entry = elf.header.e_entry + load_bias;
        let phent = u64::from(elf.header.e_phentsize);
        let phnum = u64::from(elf.header.e_phnum);
        Ok(Self { entry, load_bias, phdr_virt, phent, phnum, segments, bytes })
    }

    /// Pages the program image needs in guest memory.
    fn page_map(&self) -> BTreeMap<u64, u32> {
        let mut pages = BTreeMap::new();
        for &(_, _, virt, memsz, prot) in &self.segments {
            let first = virt & !(PAGE_SIZE - 1);
            let end = (virt + memsz).div_ceil(PAGE_SIZE) * PAGE_SIZE;
            let mut page = first;
            while page < end {
                *pages.entry(page).or_insert(0) |= prot;
                page += PAGE_SIZE;
            }
        }
        pages
    }
}

/// Hands out guest-physical pages for what the VMM prepares, from `next` up to `end`.
pub struct GpaBump {
    pub next: u64,
    pub end: u64,
}

impl GpaBump {
    fn take(&mut self, pages: u64) -> Result<u64> {
        let gpa = self.next;
        let end = pages.checked_mul(PAGE_SIZE).and_then(|bytes| gpa.checked_add(bytes));
        match end {
            Some(end) if end <= self.end => {
                self.next = end;
                Ok(gpa)
            }
            _ => Err(Error::GuestMemory(
                "the program does not fit in guest memory (raise --memory)".to_string(),
            )),
        }
    }
}

fn write(memory: &GuestMemoryMmap, gpa: u64, bytes: &[u8]) -> Result<()> {
    memory
        .write_slice(bytes, GuestAddress(gpa))
        .map_err(|error| Error::GuestMemory(format!("writing {} bytes at {gpa:#x}: {error}", bytes.len())))
}

/// Fills `boot` with the program's layout and writes its pages, the vDSO and the stack.
pub fn load(
    memory: &GuestMemoryMmap,
    bump: &mut GpaBump,
    program: &Program,
    vdso: &[u8],
    args: &ProgramArgs<'_>,
    boot: &mut BootInfo,
) -> Result<()> {
    let mut segments: Vec<SegmentMapping> = Vec::new();

    // The program image: one guest page per virtual page, runs made of consecutive pages.
    let pages = program.page_map();
    let mut virt_to_gpa = BTreeMap::new();
    for (&page, &prot) in &pages {
        let gpa = bump.take(1)?;
        virt_to_gpa.insert(page, gpa);
        match segments.last_mut() {
            Some(last)
                if last.virt + last.pages * PAGE_SIZE == page
                    && last.gpa + last.pages * PAGE_SIZE == gpa
                    && last.prot == prot =>
            {
                last.pages += 1
            }
            _ => segments.push(SegmentMapping { virt: page, gpa, pages: 1, prot, _reserved: 0 }),
        }
    }
    for &(offset, filesz, virt, _, _) in &program.segments {
        let mut done = 0;
        while done < filesz {
            let at = virt + done;
            let in_page = PAGE_SIZE - (at % PAGE_SIZE);
            let chunk = in_page.min(filesz - done);
            let gpa = virt_to_gpa[&(at & !(PAGE_SIZE - 1))] + at % PAGE_SIZE;
            let from = (offset + done) as usize;
            write(memory, gpa, &program.bytes[from..from + chunk as usize])?;
            done += chunk;
        }
    }
    let image_end = pages.keys().next_back().map_or(0, |last| last + PAGE_SIZE);

    // The vDSO, with its data page (kept by the guest kernel) just below it.
    let vdso_pages = (vdso.len() as u64).div_ceil(PAGE_SIZE);
    let stack_limit = STACK_TOP - STACK_LIMIT_BYTES;
    let vdso_virt = stack_limit - VDSO_GAP;
    let vvar_gpa = bump.take(1)?;
    let vdso_gpa = bump.take(vdso_pages)?;
    write(memory, vdso_gpa, vdso)?;
    segments.push(SegmentMapping {
        virt: vdso_virt,
        gpa: vdso_gpa,
        pages: vdso_pages,
        prot: PROT_READ | PROT_EXEC,
        _reserved: 0,
    });

    // The initial stack, built top down.
    let stack = build_stack(program, args, vdso_virt);
    let stack_pages = (stack.bytes.len() as u64 + STACK_SLACK).div_ceil(PAGE_SIZE);
    let stack_gpa = bump.take(stack_pages)?;
    let stack_bottom = STACK_TOP - stack_pages * PAGE_SIZE;
    let offset_in_pages = STACK_TOP - stack.start - stack_bottom;
    let _ = offset_in_pages;
    write(memory, stack_gpa + (stack.start - stack_bottom), &stack.bytes)?;
    segments.push(SegmentMapping {
        virt: stack_bottom,
        gpa: stack_gpa,
        pages: stack_pages,
        prot: PROT_READ | PROT_WRITE,
        _reserved: 0,
    });

    if segments.len() > MAX_SEGMENTS {
        return Err(Error::ImageNotExecutable {
            path: Path::new(std::str::from_utf8(args.exec_path).unwrap_or("image")).to_path_buf(),
            reason: format!("too many loadable segments ({})", segments.len()),
        });
    }
    boot.entry = program.entry;
    boot.stack_pointer = stack.start;
    boot.stack_top = STACK_TOP;
    boot.stack_limit = stack_limit;
    boot.brk_start = image_end;
    boot.mmap_top = vdso_virt - 2 * PAGE_SIZE;
    boot.vdso_virt = vdso_virt;
    boot.vvar_gpa = vvar_gpa;
    boot.arg_start = stack.arg_start;
    boot.arg_end = stack.env_start;
    boot.env_start = stack.env_start;
    boot.env_end = stack.env_end;
    boot.segment_count = segments.len() as u32;
    boot.segments[..segments.len()].copy_from_slice(&segments);
    Ok(())
}

/// The bytes of the initial stack and the address they start at (the initial `%rsp`).
struct StackImage {
    start: u64,
    bytes: Vec<u8>,
    /// Where the argument and environment strings lie (see `BootInfo::arg_start`); the
    /// arguments end where the environment starts.
    arg_start: u64,
    env_start: u64,
    env_end: u64,
}

/// Lays out the System V initial stack: argc, argv, envp, auxv, then the strings and the
/// AT_RANDOM bytes, all ending just below [`STACK_TOP`].
fn build_stack(program: &Program, args: &ProgramArgs<'_>, vdso_virt: u64) -> StackImage {
    // Strings and data, placed from the top down.
    let mut data: Vec<u8> = Vec::new();
    let place = |bytes: &[u8], data: &mut Vec<u8>| -> u64 {
        let mut with_nul = bytes.to_vec();
        with_nul.push(0);
        with_nul.extend_from_slice(data);
        *data = with_nul;
        data.len() as u64 // distance from the top
    };
    let top = STACK_TOP - 16; // keep a zero word at the very top
    let exec_fn = top - place(args.exec_path, &mut data);
    // Placed last first, so each list reads in order upwards, arguments below the
    // environment, as Linux lays them out (`/proc/self/cmdline` is one range).
    let env_end = exec_fn;
    let mut env_addrs: Vec<u64> =
        args.envp.iter().rev().map(|e| top - place(e, &mut data)).collect();
    env_addrs.reverse();
    let env_start = top - data.len() as u64;
    let mut arg_addrs: Vec<u64> =
        args.argv.iter().rev().map(|a| top - place(a, &mut data)).collect();
    arg_addrs.reverse();
    let arg_start = top - data.len() as u64;
    let platform = top - place(b"x86_64", &mut data);
    let mut random = [0u8; 16];
    getrandom_host(&mut random);
    // 16 random bytes (AT_RANDOM) without a NUL: prepend them by hand.
    let mut with_random = random.to_vec();
    with_random.extend_from_slice(&data);
    data = with_random;
    let random_addr = top - data.len() as u64;

    // The pointer block: argc, argv[], NULL, envp[], NULL, auxv pairs.
    let hwcap = u64::from(std::arch::x86_64::__cpuid(1).edx);
    let auxv: [(u64, u64); 19] = [
        (AT_SYSINFO_EHDR, vdso_virt),
        (AT_HWCAP, hwcap),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, 100),
        (AT_PHDR, program.phdr_virt),
        (AT_PHENT, program.phent),
        (AT_PHNUM, program.phnum),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, program.entry),
        (AT_UID, PROGRAM_UID),
        (AT_EUID, PROGRAM_UID),
        (AT_GID, PROGRAM_GID),
        (AT_EGID, PROGRAM_GID),
        (AT_SECURE, 0),
        (AT_RANDOM, random_addr),
        (AT_HWCAP2, 0),
        (AT_EXECFN, exec_fn),
        (AT_PLATFORM, platform),
    ];
    let mut words: Vec<u64> = vec![args.argv.len() as u64];
    words.extend(&arg_addrs);
    words.push(0);
    words.extend(&env_addrs);
    words.push(0);
    for (key, value) in auxv {
        words.extend([key, value]);
    }
    words.extend([AT_NULL, 0]);
    let _ = program.load_bias;

    // %rsp must be 16-byte aligned at the entry point, pointing at argc.
    let block_bytes = words.len() as u64 * 8;
    let start = (random_addr - block_bytes) & !15;
    let mut bytes = vec![0u8; (STACK_TOP - start) as usize];
    for (index, word) in words.iter().enumerate() {
        bytes[index * 8..index * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    let data_offset = (random_addr - start) as usize;
    bytes[data_offset..data_offset + data.len()].copy_from_slice(&data);
    StackImage { start, bytes, arg_start, env_start, env_end }
}

/// Fills `buffer` from the host's CSPRNG.
pub fn getrandom_host(buffer: &mut [u8]) {
    let mut filled = 0;
    while filled < buffer.len() {
        // SAFETY: the pointer and length name the unfilled tail of `buffer`.
        let got = unsafe {
            libc::getrandom(buffer[filled..].as_mut_ptr().cast(), buffer.len() - filled, 0)
        };
        if got > 0 {
            filled += got as usize;
        }
    }
}
