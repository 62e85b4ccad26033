//! Memory syscalls: argument checking in Linux's order and errnos, over `mm::space`.

use shim_abi::{PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, USER_END};

use crate::errno::{Errno, SysResult};
use crate::mm::space::{Vma, VmaKind, MMAP_MIN_ADDR};
use crate::mm::{page_ceil, page_floor};
use crate::fs::tmpfs::{Body, Device};
use crate::process::{Description, FileKind, Kernel, O_ACCMODE, O_PATH, O_WRONLY};
use crate::syscall::io::{read_description, Pieces};

use alloc::sync::Arc;
use alloc::vec::Vec;

/// Pages read per request when a file is mapped.
const FILE_MAP_BATCH: u64 = 512;

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MAP_HUGETLB: u64 = 0x4_0000;
const MAP_NORESERVE: u64 = 0x4000;

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

const PROT_ALL: u64 = (PROT_READ | PROT_WRITE | PROT_EXEC) as u64;

/// Checks `[addr, addr + len)` is page-aligned user space; returns the page-rounded end.
fn user_span(addr: u64, len: u64) -> Result<u64, Errno> {
    if addr % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let end = page_ceil(addr.checked_add(len).ok_or(Errno::EINVAL)?).ok_or(Errno::EINVAL)?;
    if end > USER_END {
        return Err(Errno::EINVAL);
    }
    Ok(end)
}

pub fn mmap(
    kernel: &mut Kernel,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: u64,
    offset: u64,
) -> SysResult {
    if len == 0 || offset % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    // Like Linux, mmap ignores protection bits it doesn't know (mprotect refuses them).
    let prot = prot & PROT_ALL;
    let shared = match flags & MAP_TYPE {
        MAP_SHARED | MAP_SHARED_VALIDATE => true,
        MAP_PRIVATE => false,
        _ => return Err(Errno::EINVAL),
    };
    let file = if flags & MAP_ANONYMOUS == 0 {
        mappable_file(kernel, fd, prot, shared)?
    } else {
        None
    };
    if flags & MAP_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    let len = page_ceil(len).ok_or(Errno::ENOMEM)?;
    // Like Linux's default overcommit: only writable memory the program may expect to use is
    // checked against what could back it; a reservation (PROT_NONE, read-only, or
    // MAP_NORESERVE, as Go's and the JVM's heaps start) may be larger than guest memory.
    if prot & u64::from(PROT_WRITE) != 0 && flags & MAP_NORESERVE == 0 {
        check_commit(kernel, len)?;
    }

    let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        // Linux: an unaligned address is EINVAL, one that leaves user space ENOMEM.
        let end = user_span(addr, len).map_err(|_| {
            if addr % PAGE_SIZE != 0 { Errno::EINVAL } else { Errno::ENOMEM }
        })?;
        if addr < MMAP_MIN_ADDR {
            return Err(Errno::EPERM);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 && flags & MAP_FIXED == 0 {
            if kernel.space.find_free(len, addr) != Some(addr) {
                return Err(Errno::EEXIST);
            }
        }
        kernel.space.unmap(&mut kernel.frames, addr, end);
        addr
    } else {
        kernel.space.find_free(len, page_floor(addr)).ok_or(Errno::ENOMEM)?
    };

    // MAP_GROWSDOWN mappings do not grow yet; they behave as fixed-size anonymous memory.
    let kind = VmaKind::Anonymous;
    kernel.space.insert(Vma { start, end: start + len, prot: prot as u32, shared, kind });
    if let Some(description) = file {
        if let Err(errno) = fill_from_file(kernel, &description, start, len, offset) {
            kernel.space.unmap(&mut kernel.frames, start, start + len);
            return Err(errno);
        }
    }
    Ok(start)
}

/// The open file `fd` if `mmap` can map it (`None`: map anonymous memory, as for /dev/zero).
///
/// A file mapping is a private copy read in when it is made: writes to the file later are not
/// seen through it, and shared writable file mappings are refused with `ENODEV`.
fn mappable_file(
    kernel: &Kernel,
    fd: u64,
    prot: u64,
    shared: bool,
) -> Result<Option<Arc<Description>>, Errno> {
    let description = kernel.files.get(fd)?.description;
    let flags = description.status_flags();
    if flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if flags & O_ACCMODE == O_WRONLY {
        return Err(Errno::EACCES);
    }
    let writes = prot & u64::from(PROT_WRITE) != 0;
    match &description.kind {
        FileKind::Host { directory: false, .. } => {}
        FileKind::Tmpfs(ino) => match kernel.vfs.tmpfs.get(*ino).body {
            Body::File { .. } => {}
            Body::Device(Device::Zero) => return Ok(None),
            _ => return Err(Errno::ENODEV),
        },
        _ => return Err(Errno::ENODEV),
    }
    if shared && writes {
        return Err(Errno::ENODEV);
    }
    Ok(Some(description))
}

/// Backs `[start, start + len)` with fresh frames holding the file's bytes from `offset`.
fn fill_from_file(
    kernel: &mut Kernel,
    description: &Description,
    start: u64,
    len: u64,
    offset: u64,
) -> Result<(), Errno> {
    let size = crate::syscall::fs::description_stat(kernel, description)?.size as u64;
    let bytes = size.saturating_sub(offset).min(len);
    let pages = bytes.div_ceil(PAGE_SIZE);
    check_commit(kernel, pages * PAGE_SIZE)?;
    let mut done = 0;
    while done < pages {
        let batch = (pages - done).min(FILE_MAP_BATCH);
        let mut list = Vec::with_capacity(batch as usize);
        for _ in 0..batch {
            list.push((kernel.frames.allocate().ok_or(Errno::ENOMEM)?, PAGE_SIZE));
        }
        for (index, &(gpa, _)) in list.iter().enumerate() {
            kernel.space.populate(&mut kernel.frames, start + (done + index as u64) * PAGE_SIZE, gpa, 1)?;
        }
        let at = offset + done * PAGE_SIZE;
        read_description(kernel, description, &Pieces::from_list(list), Some(at))?;
        done += batch;
    }
    Ok(())
}

pub fn munmap(kernel: &mut Kernel, addr: u64, len: u64) -> SysResult {
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = user_span(addr, len)?;
    kernel.space.unmap(&mut kernel.frames, addr, end);
    Ok(0)
}

pub fn mprotect(kernel: &mut Kernel, addr: u64, len: u64, prot: u64) -> SysResult {
    // PROT_GROWSDOWN/PROT_GROWSUP are accepted and ignored.
    let prot = prot & !0x0300_0000;
    if prot & !PROT_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let end = user_span(addr, len).map_err(|errno| match errno {
        Errno::EINVAL if addr % PAGE_SIZE == 0 => Errno::ENOMEM,
        other => other,
    })?;
    if addr == end {
        return Ok(0);
    }
    kernel.space.protect(addr, end, prot as u32)?;
    Ok(0)
}

/// Frames kept back from new writable memory for page tables, the tmpfs and pipes.
const RESERVED_FRAMES: u64 = 512;

/// `ENOMEM` unless `bytes` of new writable memory could still be backed by free frames.
/// Memory is mapped lazily, so this is a promise, not a reservation: a program that maps more
/// than it touches can still run out later and is then killed as by Linux's OOM killer.
fn check_commit(kernel: &Kernel, bytes: u64) -> Result<(), Errno> {
    let pages = bytes.div_ceil(PAGE_SIZE);
    if pages.saturating_add(RESERVED_FRAMES) > kernel.frames.available() {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

pub fn brk(kernel: &mut Kernel, requested: u64) -> SysResult {
    let current = kernel.space.brk;
    if requested > current && check_commit(kernel, requested - current).is_err() {
        return Ok(current);
    }
    Ok(kernel.space.set_brk(&mut kernel.frames, requested))
}

pub fn mremap(
    kernel: &mut Kernel,
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: u64,
) -> SysResult {
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0 || old % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    let old_len = page_ceil(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_ceil(new_len).ok_or(Errno::EINVAL)?;
    if new_len > old_len {
        check_commit(kernel, new_len - old_len)?;
    }
    if new_len == 0 || old_len == 0 {
        // old_len 0 duplicates a shared mapping on Linux; not supported here.
        return Err(Errno::EINVAL);
    }
    let fixed = if flags & MREMAP_FIXED != 0 {
        user_span(new_addr, new_len)?;
        Some(new_addr)
    } else {
        None
    };
    let may_move = flags & MREMAP_MAYMOVE != 0;
    kernel.space.remap(&mut kernel.frames, old, old_len, new_len, may_move, fixed)
}

const MADV_DONTNEED: u64 = 4;
const MADV_REMOVE: u64 = 9;

pub fn madvise(kernel: &mut Kernel, addr: u64, len: u64, advice: u64) -> SysResult {
    let end = user_span(addr, len)?;
    match advice {
        // NORMAL RANDOM SEQUENTIAL WILLNEED FREE DONTFORK DOFORK MERGEABLE UNMERGEABLE
        // HUGEPAGE NOHUGEPAGE DONTDUMP DODUMP WIPEONFORK KEEPONFORK COLD PAGEOUT: hints only.
        0..=3 | 8 | 10..=22 | MADV_DONTNEED => {}
        // MADV_REMOVE needs a shared file mapping; there are none.
        MADV_REMOVE => return Err(Errno::EINVAL),
        _ => return Err(Errno::EINVAL),
    }
    if !kernel.space.fully_mapped(addr, end) {
        return Err(Errno::ENOMEM);
    }
    if advice == MADV_DONTNEED {
        kernel.space.discard(&mut kernel.frames, addr, end);
    }
    Ok(0)
}
