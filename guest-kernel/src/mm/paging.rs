//! The program's page tables: 4-level x86-64 paging over the PML4 the VMM built (its lower
//! half is the program's, its upper half the kernel's). Tables are edited through the direct
//! map; the TLB is flushed per page, or whole for long ranges.

use crate::arch;
use crate::mm::frames::FrameAllocator;
use crate::mm::phys_to_virt;
use shim_abi::{PAGE_SIZE, PROT_EXEC, PROT_WRITE};

pub const PTE_PRESENT: u64 = 1;
pub const PTE_WRITABLE: u64 = 1 << 1;
pub const PTE_USER: u64 = 1 << 2;
pub const PTE_HUGE: u64 = 1 << 7;
pub const PTE_NO_EXECUTE: u64 = 1 << 63;
pub const PTE_ADDRESS: u64 = 0x000f_ffff_ffff_f000;

/// Flushing this many pages one by one costs more than reloading CR3.
const FLUSH_ALL_THRESHOLD: u64 = 32;

/// Leaf flags for a user page with `PROT_*` bits `prot` (never called for `PROT_NONE`).
pub fn user_leaf_flags(prot: u32) -> u64 {
    let mut flags = PTE_PRESENT | PTE_USER;
    if prot & PROT_WRITE != 0 {
        flags |= PTE_WRITABLE;
    }
    if prot & PROT_EXEC == 0 {
        flags |= PTE_NO_EXECUTE;
    }
    flags
}

pub struct PageTables {
    pml4: u64,
}

fn table(gpa: u64) -> *mut u64 {
    phys_to_virt(gpa & PTE_ADDRESS).cast::<u64>()
}

fn index(virt: u64, level: u32) -> usize {
    ((virt >> (12 + 9 * level)) & 511) as usize
}

impl PageTables {
    pub fn new(pml4: u64) -> Self {
        Self { pml4 }
    }

    /// The leaf entry for `virt`, allocating the tables on the way when `frames` is given.
    /// `None` if a table is missing (and not allocated) or the walk meets a huge page.
    pub fn leaf(&mut self, virt: u64, frames: Option<&mut FrameAllocator>) -> Option<*mut u64> {
        let mut frames = frames;
        let mut table_gpa = self.pml4;
        for level in (1..4).rev() {
            // SAFETY: table_gpa is a page-table frame (the PML4, or one this walk read from a
            // present entry or allocated), reached through the direct map.
            let entry = unsafe { table(table_gpa).add(index(virt, level)) };
            // SAFETY: as above.
            let mut value = unsafe { entry.read_volatile() };
            if value & PTE_PRESENT == 0 {
                let frame = frames.as_deref_mut()?.allocate()?;
                value = frame | PTE_PRESENT | PTE_WRITABLE | PTE_USER;
                // SAFETY: as above; the new table frame is zero, so it maps nothing yet.
                unsafe { entry.write_volatile(value) };
            } else if value & PTE_HUGE != 0 {
                return None;
            }
            table_gpa = value & PTE_ADDRESS;
        }
        // SAFETY: table_gpa is now a page table (level 1) frame.
        Some(unsafe { table(table_gpa).add(index(virt, 0)) })
    }

    /// The leaf entry for `virt` without allocating, or the next address worth looking at
    /// (the end of the region a missing table would have covered).
    fn walk_existing(&self, virt: u64) -> Result<*mut u64, u64> {
        let mut table_gpa = self.pml4;
        for level in (1..4).rev() {
            // SAFETY: table_gpa is a page-table frame reached through the direct map.
            let value = unsafe { table(table_gpa).add(index(virt, level)).read_volatile() };
            if value & PTE_PRESENT == 0 || value & PTE_HUGE != 0 {
                let span_shift = 12 + 9 * level;
                return Err(((virt >> span_shift) + 1) << span_shift);
            }
            table_gpa = value & PTE_ADDRESS;
        }
        // SAFETY: table_gpa is a level-1 page table.
        Ok(unsafe { table(table_gpa).add(index(virt, 0)) })
    }

    /// The leaf entry's value for `virt`, or 0 if nothing maps it.
    pub fn lookup(&mut self, virt: u64) -> u64 {
        match self.leaf(virt, None) {
            // SAFETY: `leaf` returned a pointer into a page table.
            Some(entry) => unsafe { entry.read_volatile() },
            None => 0,
        }
    }

    /// Maps `pages` pages from `virt` to the physically contiguous frames from `gpa`.
    pub fn map_contiguous(
        &mut self,
        frames: &mut FrameAllocator,
        virt: u64,
        gpa: u64,
        pages: u64,
        flags: u64,
    ) -> Option<()> {
        let mut page = 0;
        while page < pages {
            let entry = self.leaf(virt + page * PAGE_SIZE, Some(frames))?;
            // Fill the rest of this page table without walking again.
            let in_table = 512 - index(virt + page * PAGE_SIZE, 0) as u64;
            let run = in_table.min(pages - page);
            for offset in 0..run {
                // SAFETY: entry + offset stays inside the same page table (run <= in_table).
                unsafe {
                    entry
                        .add(offset as usize)
                        .write_volatile((gpa + (page + offset) * PAGE_SIZE) | flags);
                }
            }
            page += run;
        }
        Some(())
    }

    /// Calls `f` with each leaf entry in `[start, end)` that holds a frame (present, or kept
    /// non-present by `PROT_NONE`); `f` may rewrite it. Returns how many entries `f` changed.
    pub fn for_each_mapped(
        &mut self,
        start: u64,
        end: u64,
        mut f: impl FnMut(u64, &mut u64) -> bool,
    ) -> u64 {
        let mut changed = 0;
        let mut virt = start;
        while virt < end {
            let entry = match self.walk_existing(virt) {
                Ok(entry) => entry,
                Err(next) => {
                    virt = next;
                    continue;
                }
            };
            let run_end = (((virt >> 21) + 1) << 21).min(end);
            let mut offset = 0;
            while virt < run_end {
                // SAFETY: the run stays within one page table.
                let slot = unsafe { &mut *entry.add(offset) };
                if *slot & PTE_ADDRESS != 0 && f(virt, slot) {
                    changed += 1;
                }
                offset += 1;
                virt += PAGE_SIZE;
            }
        }
        changed
    }

    /// Makes the TLB forget `[start, end)` after entries there changed.
    pub fn flush(&self, start: u64, end: u64) {
        let pages = (end - start) / PAGE_SIZE;
        if pages > FLUSH_ALL_THRESHOLD {
            arch::flush_tlb();
        } else {
            let mut virt = start;
            while virt < end {
                arch::invalidate_page(virt);
                virt += PAGE_SIZE;
            }
        }
    }
}
