//! [`PieceList`]: the ranges of one ring request, inline while there are few.
//!
//! Most requests name one or two ranges, and on PVM hosts, where ring 0 is interpreted, a
//! `Vec`'s first push and its drop measured well over 100 µs (the growth path and the
//! allocator). Four ranges live in the list itself; a fifth moves them to the heap. (Not the
//! `smallvec` crate: its allocation-failure path formats a `Layout`, which compiles to
//! `tzcnt`, an instruction the kernel must not contain.)

use alloc::vec::Vec;
use core::ops::Deref;

const INLINE: usize = 4;

/// `(address, length)` ranges, in order.
pub enum PieceList {
    Inline { ranges: [(u64, u64); INLINE], len: usize },
    Heap(Vec<(u64, u64)>),
}

impl PieceList {
    pub const fn new() -> Self {
        Self::Inline { ranges: [(0, 0); INLINE], len: 0 }
    }

    pub fn from_vec(ranges: Vec<(u64, u64)>) -> Self {
        Self::Heap(ranges)
    }

    pub fn push(&mut self, range: (u64, u64)) {
        match self {
            Self::Inline { ranges, len } if *len < INLINE => {
                ranges[*len] = range;
                *len += 1;
            }
            Self::Inline { ranges, .. } => {
                let mut heap = Vec::with_capacity(INLINE * 4);
                heap.extend_from_slice(ranges);
                heap.push(range);
                *self = Self::Heap(heap);
            }
            Self::Heap(heap) => heap.push(range),
        }
    }

    pub fn last_mut(&mut self) -> Option<&mut (u64, u64)> {
        match self {
            Self::Inline { ranges, len } => ranges[..*len].last_mut(),
            Self::Heap(heap) => heap.last_mut(),
        }
    }

    pub fn clear(&mut self) {
        match self {
            Self::Inline { len, .. } => *len = 0,
            Self::Heap(heap) => heap.clear(),
        }
    }
}

impl Deref for PieceList {
    type Target = [(u64, u64)];

    fn deref(&self) -> &[(u64, u64)] {
        match self {
            Self::Inline { ranges, len } => &ranges[..*len],
            Self::Heap(heap) => heap,
        }
    }
}
