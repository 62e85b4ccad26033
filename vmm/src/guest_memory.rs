//! Typed access to guest memory for the ABI structures in `shim_abi` (which derive `zerocopy`
//! traits, not `vm-memory`'s): every access is bounds-checked by `vm-memory` and copies bytes,
//! so a guest-controlled address can never make the host touch memory outside the guest.

use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Reads a `T` at guest-physical address `gpa`.
pub fn read<T: FromBytes + IntoBytes>(memory: &GuestMemoryMmap, gpa: u64) -> Result<T, String> {
    let mut value = T::new_zeroed();
    memory
        .read_slice(value.as_mut_bytes(), GuestAddress(gpa))
        .map_err(|error| format!("reading {} bytes at GPA {gpa:#x}: {error}", size_of::<T>()))?;
    Ok(value)
}

/// Writes `value` at guest-physical address `gpa`.
pub fn write<T: IntoBytes + Immutable>(
    memory: &GuestMemoryMmap,
    gpa: u64,
    value: &T,
) -> Result<(), String> {
    memory
        .write_slice(value.as_bytes(), GuestAddress(gpa))
        .map_err(|error| format!("writing {} bytes at GPA {gpa:#x}: {error}", size_of::<T>()))
}

/// The host address of the guest range `gpa..gpa + len`, if all of it lies inside one region
/// of guest memory (`None` otherwise, including when `gpa + len` overflows). A zero-length
/// range is always accepted and yields a dangling, never-dereferenced pointer.
///
/// The pointer stays valid as long as `memory`; callers turn it into a slice or an `iovec`
/// only while the vCPU is stopped (requests are served on the vCPU's own thread).
pub fn host_range(memory: &GuestMemoryMmap, gpa: u64, len: u64) -> Option<*mut u8> {
    let len_usize = usize::try_from(len).ok()?;
    if len == 0 {
        return Some(std::ptr::NonNull::dangling().as_ptr());
    }
    let end = gpa.checked_add(len)?;
    if !memory.address_in_range(GuestAddress(end - 1)) {
        return None;
    }
    let slice = memory.get_slice(GuestAddress(gpa), len_usize).ok()?;
    Some(slice.ptr_guard_mut().as_ptr())
}

/// The errno-space value (positive, beyond every errno) `sg_list` returns for a user page that
/// is not present: negated like an errno, it is the completion `RESULT_PAGE_NOT_PRESENT`.
pub const PAGE_NOT_PRESENT: i32 = -(shim_abi::RESULT_PAGE_NOT_PRESENT as i32);

/// The scatter-gather entries of `request` as guest-physical ranges, bounded in count
/// (`MAX_SG_PER_REQUEST`) and total size (`MAX_BYTES_PER_REQUEST`): `EINVAL` beyond them,
/// `EFAULT` when the list itself is not in guest memory. The errno is positive.
///
/// Entries marked `SG_USER_VIRTUAL` are translated through the guest's page tables (see
/// [`translate_user`]); a page that is not present yields [`PAGE_NOT_PRESENT`] after its
/// address was stored in the ring header's `fault_address`.
pub fn sg_list(
    memory: &GuestMemoryMmap,
    request: &shim_abi::Request,
) -> Result<Vec<shim_abi::SgEntry>, i32> {
    let (entries, _) = sg_list_split(memory, request, request.sg_count)?;
    Ok(entries)
}

/// Like [`sg_list`], in two groups: what the first `split` entries the guest wrote translate
/// to, and what the rest do. Translation changes the number of entries (a user range becomes
/// one per physically contiguous run), so a request that counts entries, such as `Copy`, must
/// be split here, before translating; nothing is merged across the two groups.
pub fn sg_list_split(
    memory: &GuestMemoryMmap,
    request: &shim_abi::Request,
    split: u32,
) -> Result<(Vec<shim_abi::SgEntry>, Vec<shim_abi::SgEntry>), i32> {
    if request.sg_count > shim_abi::MAX_SG_PER_REQUEST || split > request.sg_count {
        return Err(libc::EINVAL);
    }
    let mut first = Vec::with_capacity(split as usize);
    let mut second = Vec::new();
    let mut total: u64 = 0;
    let mut root = None;
    for index in 0..u64::from(request.sg_count) {
        let entries = if index < u64::from(split) { &mut first } else { &mut second };
        let at = request.sg_gpa.checked_add(index * 16).ok_or(libc::EFAULT)?;
        let entry: shim_abi::SgEntry = read(memory, at).map_err(|_| libc::EFAULT)?;
        total = total.checked_add(entry.len).ok_or(libc::EINVAL)?;
        if total > shim_abi::MAX_BYTES_PER_REQUEST {
            return Err(libc::EINVAL);
        }
        if entry.gpa & shim_abi::SG_USER_VIRTUAL == 0 {
            entries.push(entry);
            continue;
        }
        let root = match root {
            Some(root) => root,
            None => {
                let header: shim_abi::RingHeader =
                    read(memory, shim_abi::RING_GPA).map_err(|_| libc::EFAULT)?;
                *root.insert(header.page_table_root)
            }
        };
        let access = if entry.gpa & shim_abi::SG_HOST_WRITES != 0 {
            UserAccess::Write
        } else {
            UserAccess::Read
        };
        let virt = entry.gpa & !(shim_abi::SG_USER_VIRTUAL | shim_abi::SG_HOST_WRITES);
        match translate_user(memory, root, virt, entry.len, access, entries) {
            Ok(()) => {}
            Err(Translation::NotPresent(address)) => {
                let mut header: shim_abi::RingHeader =
                    read(memory, shim_abi::RING_GPA).map_err(|_| libc::EFAULT)?;
                header.fault_address = address;
                write(memory, shim_abi::RING_GPA, &header).map_err(|_| libc::EFAULT)?;
                return Err(PAGE_NOT_PRESENT);
            }
            Err(Translation::Fault) => return Err(libc::EFAULT),
        }
        if first.len() + second.len() > 4 * shim_abi::MAX_SG_PER_REQUEST as usize {
            return Err(libc::EINVAL);
        }
    }
    Ok((first, second))
}

/// Why a user range could not be translated.
#[derive(Debug, PartialEq, Eq)]
pub enum Translation {
    /// The page holding this address is not present: the guest should map it and retry.
    NotPresent(u64),
    /// Not user memory at all (the kernel half, a supervisor page, or tables outside guest
    /// memory): the request fails with `EFAULT`.
    Fault,
}

/// What the host will do to a user range, and so what the page walk demands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAccess {
    Read,
    /// The writable bit too, on every level (a ring-3 store needs it there).
    Write,
}

const PTE_PRESENT: u64 = 1;
const PTE_WRITABLE: u64 = 1 << 1;
const PTE_USER: u64 = 1 << 2;
const PTE_HUGE: u64 = 1 << 7;
const PTE_ADDRESS: u64 = 0x000f_ffff_ffff_f000;

/// Appends the guest-physical pieces of user range `virt..virt + len`, walking the 4-level
/// page tables rooted at `root` in guest memory. Every level must be present and allow user
/// access, exactly as the CPU would demand of ring 3, so no kernel page can be named.
/// Physically contiguous pages are merged.
///
/// With [`UserAccess::Write`] every level must also be writable (a read-only page is
/// `Fault`: the guest maps no page read-only inside a writable mapping, so there is nothing
/// to fault in; copy-on-write would need `NotPresent`-style retries here). The guest marks
/// the ranges the host writes (`SG_HOST_WRITES`); an unmarked range the host only reads, for
/// which present and user suffice because the guest keeps every page the program may not read
/// (`PROT_NONE`) not present.
pub fn translate_user(
    memory: &GuestMemoryMmap,
    root: u64,
    virt: u64,
    len: u64,
    access: UserAccess,
    out: &mut Vec<shim_abi::SgEntry>,
) -> Result<(), Translation> {
    let end = virt.checked_add(len).ok_or(Translation::Fault)?;
    if end > shim_abi::USER_END {
        return Err(Translation::Fault);
    }
    // Merged only with pieces of this range: an entry before it may be counted or parsed on
    // its own (a path, a copy's last source).
    let first_piece = out.len();
    let mut at = virt;
    while at < end {
        let (phys, page_size) = walk(memory, root, at, access)?;
        let chunk = (page_size - (at & (page_size - 1))).min(end - at);
        let ours = out.len() > first_piece;
        match out.last_mut() {
            Some(last) if ours && last.gpa.checked_add(last.len) == Some(phys) => last.len += chunk,
            _ => out.push(shim_abi::SgEntry { gpa: phys, len: chunk }),
        }
        at += chunk;
    }
    Ok(())
}

/// The guest-physical address of user address `virt` and the size of its page.
fn walk(
    memory: &GuestMemoryMmap,
    root: u64,
    virt: u64,
    access: UserAccess,
) -> Result<(u64, u64), Translation> {
    let demanded = match access {
        UserAccess::Read => PTE_USER,
        UserAccess::Write => PTE_USER | PTE_WRITABLE,
    };
    let mut table = root & PTE_ADDRESS;
    for level in (0..4).rev() {
        let index = (virt >> (12 + 9 * level)) & 511;
        let entry: u64 = read(memory, table + index * 8).map_err(|_| Translation::Fault)?;
        if entry & PTE_PRESENT == 0 {
            return Err(Translation::NotPresent(virt & !0xfff));
        }
        if entry & demanded != demanded {
            return Err(Translation::Fault);
        }
        let page_size = 1u64 << (12 + 9 * level);
        if level == 0 || (entry & PTE_HUGE != 0 && level <= 2) {
            let base = entry & PTE_ADDRESS & !(page_size - 1);
            let phys = base + (virt & (page_size - 1));
            if !memory.address_in_range(GuestAddress(phys)) {
                return Err(Translation::Fault);
            }
            return Ok((phys, page_size));
        }
        table = entry & PTE_ADDRESS;
    }
    Err(Translation::Fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: u64 = 0x1000;
    const PDPT: u64 = 0x2000;
    const PD: u64 = 0x3000;
    const PT: u64 = 0x4000;
    const USER_TABLE: u64 = PTE_PRESENT | PTE_USER | 2;

    /// 4 MiB of guest memory with user address 0x40_0000 mapped through four levels to
    /// GPAs 0x10_0000, 0x10_1000 (contiguous) and 0x20_0000, a supervisor page at 0x40_3000,
    /// a missing page at 0x40_4000, and a 2 MiB page at user 0x60_0000 → GPA 0x20_0000.
    fn memory_with_tables() -> GuestMemoryMmap {
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        write(&memory, ROOT, &(PDPT | USER_TABLE)).unwrap();
        write(&memory, PDPT, &(PD | USER_TABLE)).unwrap();
        write(&memory, PD + 2 * 8, &(PT | USER_TABLE)).unwrap();
        write(&memory, PD + 3 * 8, &(0x20_0000 | USER_TABLE | PTE_HUGE)).unwrap();
        write(&memory, PT, &(0x10_0000 | USER_TABLE)).unwrap();
        write(&memory, PT + 8, &(0x10_1000 | USER_TABLE)).unwrap();
        write(&memory, PT + 2 * 8, &(0x20_0000 | USER_TABLE)).unwrap();
        write(&memory, PT + 3 * 8, &(0x10_3000 | PTE_PRESENT | 2)).unwrap();
        memory
    }

    fn translate(
        memory: &GuestMemoryMmap,
        virt: u64,
        len: u64,
    ) -> Result<Vec<(u64, u64)>, Translation> {
        let mut out = Vec::new();
        translate_user(memory, ROOT, virt, len, UserAccess::Read, &mut out)?;
        Ok(out.iter().map(|entry| (entry.gpa, entry.len)).collect())
    }

    #[test]
    fn contiguous_pages_merge_and_others_split() {
        let memory = memory_with_tables();
        let pieces = translate(&memory, 0x40_0800, 0x2000).unwrap();
        assert_eq!(pieces, vec![(0x10_0800, 0x1800), (0x20_0000, 0x800)]);
    }

    #[test]
    fn a_range_never_merges_into_the_entry_before_it() {
        let memory = memory_with_tables();
        let before = shim_abi::SgEntry { gpa: 0x0f_f000, len: 0x1000 };
        let mut out = vec![before];
        translate_user(&memory, ROOT, 0x40_0000, 0x2000, UserAccess::Read, &mut out).unwrap();
        let pieces: Vec<(u64, u64)> = out.iter().map(|entry| (entry.gpa, entry.len)).collect();
        assert_eq!(pieces, vec![(0x0f_f000, 0x1000), (0x10_0000, 0x2000)]);
    }

    #[test]
    fn a_huge_page_is_one_piece() {
        let memory = memory_with_tables();
        let pieces = translate(&memory, 0x60_1000, 0x10_0000).unwrap();
        assert_eq!(pieces, vec![(0x20_1000, 0x10_0000)]);
    }

    #[test]
    fn a_missing_page_is_reported_by_address() {
        let memory = memory_with_tables();
        assert_eq!(translate(&memory, 0x40_4010, 16), Err(Translation::NotPresent(0x40_4000)));
        assert_eq!(translate(&memory, 0x50_0000, 1), Err(Translation::NotPresent(0x50_0000)));
    }

    #[test]
    fn supervisor_kernel_half_and_wrapping_ranges_are_faults() {
        let memory = memory_with_tables();
        assert_eq!(translate(&memory, 0x40_3000, 1), Err(Translation::Fault));
        assert_eq!(translate(&memory, 0xffff_8000_0000_0000, 1), Err(Translation::Fault));
        assert_eq!(translate(&memory, shim_abi::USER_END - 1, 2), Err(Translation::Fault));
        assert_eq!(translate(&memory, u64::MAX, 2), Err(Translation::Fault));
    }

    #[test]
    fn a_host_write_demands_the_writable_bit_on_every_level() {
        let memory = memory_with_tables();
        let read_only_leaf = 0x10_5000 | PTE_PRESENT | PTE_USER;
        write(&memory, PT + 5 * 8, &read_only_leaf).unwrap();
        let mut out = Vec::new();
        let mut write_to =
            |virt| translate_user(&memory, ROOT, virt, 1, UserAccess::Write, &mut out);
        assert_eq!(write_to(0x40_0000), Ok(()));
        assert_eq!(write_to(0x40_5000), Err(Translation::Fault));
        assert_eq!(translate(&memory, 0x40_5000, 1), Ok(vec![(0x10_5000, 1)]));

        // A read-only directory entry makes everything below it read-only, as on the CPU.
        write(&memory, PD + 2 * 8, &(PT | PTE_PRESENT | PTE_USER)).unwrap();
        let mut out = Vec::new();
        let through_read_only_table =
            translate_user(&memory, ROOT, 0x40_0000, 1, UserAccess::Write, &mut out);
        assert_eq!(through_read_only_table, Err(Translation::Fault));
        assert_eq!(translate(&memory, 0x40_0000, 1), Ok(vec![(0x10_0000, 1)]));
    }

    #[test]
    fn tables_or_frames_outside_guest_memory_are_faults() {
        let memory = memory_with_tables();
        write(&memory, PT + 4 * 8, &(0x1_0000_0000 | USER_TABLE)).unwrap();
        assert_eq!(translate(&memory, 0x40_4000, 1), Err(Translation::Fault));
        let mut out = Vec::new();
        let outside_root =
            translate_user(&memory, 0x7000_0000, 0x40_0000, 1, UserAccess::Read, &mut out);
        assert_eq!(outside_root, Err(Translation::Fault));
    }
}
