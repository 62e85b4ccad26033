//! The guest-physical frame allocator.
//!
//! Frames come first from a bump pointer over memory nobody has used (zero on the host), then
//! from a stack of frames that were freed and discarded by the host (zero again). Freed frames
//! wait in `to_discard` until [`FrameAllocator::discard_freed`] sends them to the host in one
//! request, so a large `munmap` costs one exit, and ring 0 never zeroes a page.

use alloc::vec::Vec;

use shim_abi::{Opcode, PAGE_SIZE};

use crate::ring;

pub struct FrameAllocator {
    next_fresh: u64,
    end: u64,
    reusable: Vec<u64>,
    to_discard: Vec<u64>,
    total: u64,
}

impl FrameAllocator {
    /// Frames in `[start, end)` (both page-aligned GPAs) are the allocator's.
    pub fn new(start: u64, end: u64) -> Self {
        Self {
            next_fresh: start,
            end,
            reusable: Vec::new(),
            to_discard: Vec::new(),
            total: (end - start) / PAGE_SIZE,
        }
    }

    /// A zero-filled frame, or `None` when guest memory is exhausted.
    pub fn allocate(&mut self) -> Option<u64> {
        if let Some(frame) = self.reusable.pop() {
            return Some(frame);
        }
        if self.next_fresh >= self.end {
            self.discard_freed();
            return self.reusable.pop();
        }
        let frame = self.next_fresh;
        self.next_fresh += PAGE_SIZE;
        Some(frame)
    }

    /// `pages` physically contiguous zero-filled frames from memory nobody has used yet (the
    /// first GPA), or `None` when that much isn't left there. Constant work, whatever `pages`.
    pub fn allocate_contiguous(&mut self, pages: u64) -> Option<u64> {
        let bytes = pages.checked_mul(PAGE_SIZE)?;
        let end = self.next_fresh.checked_add(bytes)?;
        if end > self.end {
            return None;
        }
        let first = self.next_fresh;
        self.next_fresh = end;
        Some(first)
    }

    /// Takes back a frame the program no longer maps.
    pub fn free(&mut self, frame: u64) {
        self.to_discard.push(frame);
    }

    /// Frames still available to [`FrameAllocator::allocate`].
    pub fn available(&self) -> u64 {
        (self.end - self.next_fresh) / PAGE_SIZE
            + self.reusable.len() as u64
            + self.to_discard.len() as u64
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Asks the host to drop the contents of freed frames, then makes them reusable.
    pub fn discard_freed(&mut self) {
        if self.to_discard.is_empty() {
            return;
        }
        // Not sorted: a sort is costly in ring 0, and unmapping frees frames in address order.
        let mut index = 0;
        while index < self.to_discard.len() {
            ring::with_ring(|ring| {
                let mut sg = ring.sg_list(shim_abi::MAX_SG_PER_REQUEST);
                while index < self.to_discard.len() && sg.push(self.to_discard[index], PAGE_SIZE)
                {
                    index += 1;
                }
                ring.call(Opcode::DiscardFrames, [0; 4], Some(&sg));
            });
        }
        if self.reusable.is_empty() {
            core::mem::swap(&mut self.reusable, &mut self.to_discard);
        } else {
            self.reusable.append(&mut self.to_discard);
        }
    }
}
