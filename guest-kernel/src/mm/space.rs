//! The program's address space: a sorted list of VMAs over the lower half, and the operations
//! Linux's memory syscalls need (mmap placement, munmap, mprotect, mremap, brk, madvise) plus
//! the demand-paging fault handler.
//!
//! Anonymous memory is mapped lazily: a fault maps a small aligned window of zero frames
//! around the faulting page ("fault-around"), because each trap costs far more than a few
//! page-table writes on PVM hosts. mremap moves page-table entries, never data.

use alloc::vec::Vec;

use shim_abi::{PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, USER_END};

use crate::errno::Errno;
use crate::mm::frames::FrameAllocator;
use crate::mm::paging::{user_leaf_flags, PageTables, PTE_ADDRESS, PTE_PRESENT};

/// Lowest address a program may map (Linux's default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x10000;
/// Pages mapped by one anonymous fault, aligned to this many pages.
const FAULT_AROUND_PAGES: u64 = 16;
/// How far below the stack VMA a fault may still grow the stack (Linux's guard gap).
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    /// `mmap` memory (and the program image after boot: it is anonymous memory now).
    Anonymous,
    /// The heap grown by `brk`.
    Heap,
    /// The main thread's stack; grows down on faults.
    Stack,
    /// The vDSO and its data page: not the program's to unmap or change.
    Vdso,
}

#[derive(Clone, Copy, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub shared: bool,
    pub kind: VmaKind,
}

/// What kind of access faulted.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub write: bool,
    pub execute: bool,
}

/// Why a fault could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No mapping, or the mapping forbids the access: SIGSEGV.
    Segv,
    /// Guest memory is exhausted.
    OutOfMemory,
}

pub struct AddressSpace {
    pub tables: PageTables,
    /// Sorted, non-overlapping, neighbours merged where Linux would merge them. A sorted
    /// `Vec`: an insert or removal moves every entry after it, which stays cheap only while
    /// merging keeps the list short; thousands of distinct mappings (alternating
    /// protections) would want a B-tree here.
    vmas: Vec<Vma>,
    pub brk_start: u64,
    pub brk: u64,
    mmap_top: u64,
    stack_limit: u64,
}

/// Whether `a`, followed by `b`, may be one VMA: plain private anonymous memory with the
/// same protection, end to end (as Linux merges such neighbours).
fn mergeable(a: &Vma, b: &Vma) -> bool {
    a.end == b.start
        && a.kind == VmaKind::Anonymous
        && b.kind == VmaKind::Anonymous
        && a.prot == b.prot
        && !a.shared
        && !b.shared
}

pub fn prot_allows(prot: u32, access: Access) -> bool {
    if access.execute {
        prot & PROT_EXEC != 0
    } else if access.write {
        prot & PROT_WRITE != 0
    } else {
        prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0
    }
}

impl AddressSpace {
    pub fn new(tables: PageTables, brk_start: u64, mmap_top: u64, stack_limit: u64) -> Self {
        Self { tables, vmas: Vec::new(), brk_start, brk: brk_start, mmap_top, stack_limit }
    }

    /// The program's mappings, in address order.
    pub fn vmas(&self) -> &[Vma] {
        &self.vmas
    }

    /// The VMA containing `addr`.
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        let index = self.vmas.partition_point(|vma| vma.end <= addr);
        self.vmas.get(index).filter(|vma| vma.start <= addr)
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        let index = self.vmas.partition_point(|vma| vma.end <= start);
        self.vmas.get(index).is_some_and(|vma| vma.start < end)
    }

    /// Adds a VMA over a range that holds none, merged with a neighbour it continues.
    ///
    /// Merging keeps the list short, as Linux keeps its own: a program's `mmap`s land next to
    /// each other, and every list operation here is linear (an insert moves the entries after
    /// it, at about a microsecond per word moved in interpreted ring 0 on PVM hosts).
    pub fn insert(&mut self, vma: Vma) {
        let index = self.vmas.partition_point(|existing| existing.end <= vma.start);
        let joins_previous = index > 0 && mergeable(&self.vmas[index - 1], &vma);
        let joins_next = self.vmas.get(index).is_some_and(|next| mergeable(&vma, next));
        match (joins_previous, joins_next) {
            (true, true) => {
                self.vmas[index - 1].end = self.vmas[index].end;
                self.vmas.remove(index);
            }
            (true, false) => self.vmas[index - 1].end = vma.end,
            (false, true) => self.vmas[index].start = vma.start,
            (false, false) => self.vmas.insert(index, vma),
        }
    }

    /// Merges the neighbouring VMAs from the one that ends at or holds `start` through
    /// those that begin by `end`, where they may be one (after `mprotect` changed them).
    fn merge_range(&mut self, start: u64, end: u64) {
        let mut index = self.vmas.partition_point(|vma| vma.end < start);
        while index + 1 < self.vmas.len() && self.vmas[index].start <= end {
            if mergeable(&self.vmas[index], &self.vmas[index + 1]) {
                self.vmas[index].end = self.vmas[index + 1].end;
                self.vmas.remove(index + 1);
            } else {
                index += 1;
            }
        }
    }

    /// Maps frames the VMM filled (the program image, the stack top, the vDSO) as a VMA.
    pub fn map_prepared(
        &mut self,
        frames: &mut FrameAllocator,
        vma: Vma,
        gpa: u64,
    ) -> Result<(), Errno> {
        let pages = (vma.end - vma.start) / PAGE_SIZE;
        if vma.prot != 0 {
            let flags = user_leaf_flags(vma.prot);
            self.tables
                .map_contiguous(frames, vma.start, gpa, pages, flags)
                .ok_or(Errno::ENOMEM)?;
        }
        self.insert(vma);
        Ok(())
    }

    /// Maps already-filled frames into the existing VMA around `virt` (the prepared stack top).
    pub fn populate(
        &mut self,
        frames: &mut FrameAllocator,
        virt: u64,
        gpa: u64,
        pages: u64,
    ) -> Result<(), Errno> {
        let prot = self.find(virt).ok_or(Errno::EFAULT)?.prot;
        self.tables
            .map_contiguous(frames, virt, gpa, pages, user_leaf_flags(prot))
            .ok_or(Errno::ENOMEM)
    }

    // -----------------------------------------------------------------------------------------
    // Placement.
    // -----------------------------------------------------------------------------------------

    /// A free range of `len` bytes: at `hint` if it is free, else the highest gap below the
    /// mmap top.
    pub fn find_free(&self, len: u64, hint: u64) -> Option<u64> {
        if hint >= MMAP_MIN_ADDR && hint % PAGE_SIZE == 0 {
            if let Some(end) = hint.checked_add(len) {
                if end <= self.mmap_top && !self.overlaps(hint, end) {
                    return Some(hint);
                }
            }
        }
        let mut top = self.mmap_top;
        for vma in self.vmas.iter().rev() {
            if vma.start >= top {
                continue;
            }
            if vma.end <= top && top - vma.end >= len {
                return Some(top - len);
            }
            top = top.min(vma.start);
            if vma.kind == VmaKind::Stack {
                top = top.min(self.stack_limit);
            }
        }
        (top >= MMAP_MIN_ADDR + len).then(|| top - len)
    }

    // -----------------------------------------------------------------------------------------
    // Unmapping and protection.
    // -----------------------------------------------------------------------------------------

    /// Splits VMAs so that `addr` is a boundary (no-op if it is already one).
    fn split_at(&mut self, addr: u64) {
        let index = self.vmas.partition_point(|vma| vma.end <= addr);
        if let Some(vma) = self.vmas.get(index).copied() {
            if vma.start < addr && addr < vma.end {
                self.vmas[index].end = addr;
                self.vmas.insert(index + 1, Vma { start: addr, ..vma });
            }
        }
    }

    /// Removes every mapping in `[start, end)` and frees its frames.
    pub fn unmap(&mut self, frames: &mut FrameAllocator, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        self.vmas.retain(|vma| vma.end <= start || vma.start >= end);

        let changed = self.tables.for_each_mapped(start, end, |_, entry| {
            frames.free(*entry & PTE_ADDRESS);
            *entry = 0;
            true
        });
        if changed > 0 {
            self.tables.flush(start, end);
        }
        frames.discard_freed();
    }

    /// True if every page of `[start, end)` is in some VMA.
    pub fn fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut cursor = start;
        let mut index = self.vmas.partition_point(|vma| vma.end <= start);
        while cursor < end {
            match self.vmas.get(index) {
                Some(vma) if vma.start <= cursor => cursor = vma.end,
                _ => return false,
            }
            index += 1;
        }
        true
    }

    /// `mprotect`: every page must be mapped.
    pub fn protect(&mut self, start: u64, end: u64, prot: u32) -> Result<(), Errno> {
        if !self.fully_mapped(start, end) {
            return Err(Errno::ENOMEM);
        }
        self.split_at(start);
        self.split_at(end);
        for vma in self.vmas.iter_mut().filter(|vma| vma.start >= start && vma.end <= end) {
            vma.prot = prot;
        }
        self.merge_range(start, end);
        let flags = user_leaf_flags(prot);
        let changed = self.tables.for_each_mapped(start, end, |_, entry| {
            // PROT_NONE keeps the frame but drops the present bit; the VMA keeps the rest.
            let frame = *entry & PTE_ADDRESS;
            *entry = if prot == 0 { frame } else { frame | flags };
            true
        });
        if changed > 0 {
            self.tables.flush(start, end);
        }
        Ok(())
    }

    /// `madvise(MADV_DONTNEED)`: private anonymous pages read as zero afterwards.
    pub fn discard(&mut self, frames: &mut FrameAllocator, start: u64, end: u64) {
        let vmas: Vec<Vma> = self
            .vmas
            .iter()
            .filter(|vma| vma.start < end && start < vma.end && !vma.shared)
            .copied()
            .collect();
        for vma in vmas {
            let (from, to) = (vma.start.max(start), vma.end.min(end));
            let changed = self.tables.for_each_mapped(from, to, |_, entry| {
                frames.free(*entry & PTE_ADDRESS);
                *entry = 0;
                true
            });
            if changed > 0 {
                self.tables.flush(from, to);
            }
        }
        frames.discard_freed();
    }

    // -----------------------------------------------------------------------------------------
    // brk and mremap.
    // -----------------------------------------------------------------------------------------

    /// `brk`: moves the program break if the new heap fits; returns the break either way.
    pub fn set_brk(&mut self, frames: &mut FrameAllocator, requested: u64) -> u64 {
        let Some(new_end) = crate::mm::page_ceil(requested) else { return self.brk };
        if requested < self.brk_start || new_end > self.mmap_top {
            return self.brk;
        }
        let old_end = crate::mm::page_ceil(self.brk).unwrap_or(self.brk);
        if new_end > old_end {
            if self.overlaps(old_end, new_end + PAGE_SIZE) {
                return self.brk;
            }
            match self.vmas.iter_mut().find(|vma| vma.kind == VmaKind::Heap) {
                Some(heap) => heap.end = new_end,
                None => self.insert(Vma {
                    start: old_end,
                    end: new_end,
                    prot: PROT_READ | PROT_WRITE,
                    shared: false,
                    kind: VmaKind::Heap,
                }),
            }
        } else if new_end < old_end {
            self.unmap(frames, new_end, old_end);
            if new_end > self.brk_start {
                let heap_start = crate::mm::page_ceil(self.brk_start).unwrap_or(self.brk_start);
                if new_end > heap_start && self.find(heap_start).is_none() {
                    self.insert(Vma {
                        start: heap_start,
                        end: new_end,
                        prot: PROT_READ | PROT_WRITE,
                        shared: false,
                        kind: VmaKind::Heap,
                    });
                }
            }
        }
        self.brk = requested;
        requested
    }

    /// Moves the page-table entries of `[from, from + len)` to `to` (no data is copied).
    pub fn move_pages(&mut self, frames: &mut FrameAllocator, from: u64, to: u64, len: u64) {
        let mut moves: Vec<(u64, u64)> = Vec::new();
        self.tables.for_each_mapped(from, from + len, |virt, entry| {
            moves.push((virt - from, *entry));
            *entry = 0;
            true
        });
        self.tables.flush(from, from + len);
        for (offset, value) in moves {
            if let Some(entry) = self.tables.leaf(to + offset, Some(frames)) {
                // SAFETY: `leaf` returned a pointer into a page table.
                unsafe { entry.write_volatile(value) };
            } else {
                frames.free(value & PTE_ADDRESS);
            }
        }
    }

    /// `mremap`. `old`/`old_len`/`new_len` are page-aligned by the caller.
    pub fn remap(
        &mut self,
        frames: &mut FrameAllocator,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed_to: Option<u64>,
    ) -> Result<u64, Errno> {
        let vma = *self.find(old).ok_or(Errno::EFAULT)?;
        let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;
        if old_end > vma.end {
            return Err(Errno::EFAULT);
        }
        if vma.kind == VmaKind::Vdso {
            return Err(Errno::EINVAL);
        }

        if let Some(target) = fixed_to {
            let target_end = target.checked_add(new_len).ok_or(Errno::EINVAL)?;
            if target_end > USER_END || (target < old_end && old < target_end) {
                return Err(Errno::EINVAL);
            }
            self.unmap(frames, target, target_end);
            return Ok(self.relocate(frames, vma, old, old_len, new_len, target));
        }

        if new_len <= old_len {
            self.unmap(frames, old + new_len, old_end);
            return Ok(old);
        }
        let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        if old_end == vma.end && grow_end <= self.mmap_top && !self.overlaps(old_end, grow_end) {
            self.split_at(old);
            let index = self.vmas.partition_point(|existing| existing.end <= old);
            self.vmas[index].end = grow_end;
            return Ok(old);
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let target = self.find_free(new_len, 0).ok_or(Errno::ENOMEM)?;
        Ok(self.relocate(frames, vma, old, old_len, new_len, target))
    }

    fn relocate(
        &mut self,
        frames: &mut FrameAllocator,
        vma: Vma,
        old: u64,
        old_len: u64,
        new_len: u64,
        target: u64,
    ) -> u64 {
        let keep = old_len.min(new_len);
        self.move_pages(frames, old, target, keep);
        self.unmap(frames, old, old + old_len);
        let kind = if vma.kind == VmaKind::Stack { VmaKind::Anonymous } else { vma.kind };
        self.insert(Vma { start: target, end: target + new_len, kind, ..vma });
        target
    }

    // -----------------------------------------------------------------------------------------
    // Page faults.
    // -----------------------------------------------------------------------------------------

    /// Resolves a fault at `addr` by mapping zero frames, growing the stack if needed.
    pub fn handle_fault(
        &mut self,
        frames: &mut FrameAllocator,
        addr: u64,
        access: Access,
    ) -> Result<(), FaultError> {
        let page = crate::mm::page_floor(addr);
        let vma = match self.find(addr) {
            Some(vma) => *vma,
            None => self.grow_stack(page).ok_or(FaultError::Segv)?,
        };
        if !prot_allows(vma.prot, access) {
            return Err(FaultError::Segv);
        }
        if self.tables.lookup(page) & PTE_PRESENT != 0 {
            // Present and allowed by the VMA: a stale TLB entry. Flushing resolves it.
            self.tables.flush(page, page + PAGE_SIZE);
            return Ok(());
        }

        let window = FAULT_AROUND_PAGES * PAGE_SIZE;
        let from = (page & !(window - 1)).max(vma.start);
        let to = ((page & !(window - 1)) + window).min(vma.end);
        let flags = user_leaf_flags(vma.prot);
        let mut virt = from;
        while virt < to {
            let entry = self.tables.leaf(virt, Some(frames)).ok_or(FaultError::OutOfMemory)?;
            // SAFETY: `leaf` returned a pointer into a page table.
            let value = unsafe { entry.read_volatile() };
            if value & PTE_PRESENT == 0 && value & PTE_ADDRESS == 0 {
                let frame = match frames.allocate() {
                    Some(frame) => frame,
                    None if virt == page => return Err(FaultError::OutOfMemory),
                    None => break,
                };
                // SAFETY: as above.
                unsafe { entry.write_volatile(frame | flags) };
            }
            virt += PAGE_SIZE;
        }
        Ok(())
    }

    /// Extends the stack VMA down to `page` when the fault is just below it.
    pub fn grow_stack(&mut self, page: u64) -> Option<Vma> {
        let index = self.vmas.partition_point(|vma| vma.end <= page);
        let stack = self.vmas.get_mut(index)?;
        let reachable = page >= self.stack_limit && page + STACK_GUARD_GAP >= stack.start;
        if stack.kind != VmaKind::Stack || !reachable {
            return None;
        }
        let below_ok = index == 0 || self.vmas[index - 1].end <= page;
        if !below_ok {
            return None;
        }
        self.vmas[index].start = page;
        Some(self.vmas[index])
    }
}
