//! The kernel heap: a fixed region in the kernel's `.bss` (zeroed by the VMM for free). It
//! holds the kernel's own bookkeeping (VMA lists, fd tables, request lists), never program
//! data.
//!
//! Small blocks come from size classes: each class keeps a free list threaded through its
//! free blocks, so an allocation or a free is a handful of instructions. That matters here
//! because on PVM hosts ring 0 is interpreted: a first-fit allocation from
//! `linked_list_allocator`, which walks its holes, measured about 360 µs for a push into an
//! empty `Vec` and its drop, most of a `write` syscall. Blocks larger than the biggest class
//! (and the classes' own storage once their slab is used up) come from
//! `linked_list_allocator`. Freed small blocks stay in their class.
//!
//! There is no lock, because a locked instruction is just as costly there (a spin lock's
//! acquire and release measured about 26 µs): ring 0 runs on one vCPU with interrupts off
//! (no irqchip; every gate is an interrupt gate), so nothing can allocate while an
//! allocation is under way. A re-entered allocator is a kernel panic, not a silent race.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, UnsafeCell};
use core::ptr::{addr_of_mut, null_mut, NonNull};

use linked_list_allocator::Heap;

const HEAP_BYTES: usize = 4 << 20;
/// The part of the heap carved into size-class blocks, bump-allocated on first use.
const SLAB_BYTES: usize = 1 << 20;

/// Block sizes, each a power of two so that a block carved at a multiple of its size is
/// aligned to it.
const CLASSES: [usize; 6] = [16, 32, 64, 128, 256, 512];

#[repr(C, align(4096))]
struct HeapRegion([u8; HEAP_BYTES]);

static mut HEAP_REGION: HeapRegion = HeapRegion([0; HEAP_BYTES]);

struct Allocator {
    /// Head of each class's free list (0: empty); a free block's first word is the next one.
    free: [usize; CLASSES.len()],
    /// Next unused byte of the slab, and its end.
    slab_next: usize,
    slab_end: usize,
    large: Heap,
}

struct KernelHeap {
    allocator: UnsafeCell<Allocator>,
    busy: Cell<bool>,
}

// SAFETY: the kernel runs on one vCPU and never with interrupts enabled in ring 0, so the
// heap is only ever used by one flow of control; `KernelHeap::with` checks that it is not
// re-entered. A second vCPU would need a real lock here.
unsafe impl Sync for KernelHeap {}

impl KernelHeap {
    /// Runs `f` with the allocator; panics if called from inside itself.
    fn with<R>(&self, f: impl FnOnce(&mut Allocator) -> R) -> R {
        assert!(!self.busy.replace(true), "the kernel heap was re-entered");
        // SAFETY: `busy` proves no other reference to the allocator is live (see `Sync`).
        let result = f(unsafe { &mut *self.allocator.get() });
        self.busy.set(false);
        result
    }
}

#[global_allocator]
static ALLOCATOR: KernelHeap = KernelHeap {
    allocator: UnsafeCell::new(Allocator {
        free: [0; CLASSES.len()],
        slab_next: 0,
        slab_end: 0,
        large: Heap::empty(),
    }),
    busy: Cell::new(false),
};

/// Hands the heap region to the allocator. Called once at boot, before any allocation.
pub fn init() {
    let start = addr_of_mut!(HEAP_REGION).cast::<u8>();
    ALLOCATOR.with(|allocator| {
        allocator.slab_next = start as usize;
        allocator.slab_end = start as usize + SLAB_BYTES;
        // SAFETY: the region is a static used by nothing but this allocator, handed over
        // once; the large heap gets the part after the slab.
        unsafe { allocator.large.init(start.add(SLAB_BYTES), HEAP_BYTES - SLAB_BYTES) };
    });
}

/// The size class that holds `layout`, if it is small enough for one.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align());
    CLASSES.iter().position(|&class| size <= class)
}

impl Allocator {
    fn allocate_small(&mut self, class: usize) -> *mut u8 {
        let head = self.free[class];
        if head != 0 {
            // SAFETY: a free-list entry is a free block of this class, its first word the
            // next entry (written by `free_small`).
            self.free[class] = unsafe { (head as *const usize).read() };
            return head as *mut u8;
        }
        let size = CLASSES[class];
        let block = (self.slab_next + size - 1) & !(size - 1);
        if block + size <= self.slab_end {
            self.slab_next = block + size;
            return block as *mut u8;
        }
        let layout = Layout::from_size_align(size, size).expect("a class is a valid layout");
        self.large.allocate_first_fit(layout).map_or(null_mut(), |block| block.as_ptr())
    }

    /// # Safety
    /// `block` came from `allocate_small(class)` and is no longer used.
    unsafe fn free_small(&mut self, block: *mut u8, class: usize) {
        // SAFETY: the block is at least 16 bytes, aligned to its class, and free (caller).
        unsafe { block.cast::<usize>().write(self.free[class]) };
        self.free[class] = block as usize;
    }
}

// SAFETY: every block handed out is either a class block, used by nobody else until it is
// freed and at least as large and as aligned as its layout asks, or comes from
// `linked_list_allocator`'s heap with the caller's layout; `with` serialises all access.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with(|allocator| match class_of(layout) {
            Some(class) => allocator.allocate_small(class),
            None => allocator.large.allocate_first_fit(layout).map_or(null_mut(), NonNull::as_ptr),
        })
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        self.with(|allocator| match class_of(layout) {
            // SAFETY: `alloc` gave this block out for the same layout, so from this class.
            Some(class) => unsafe { allocator.free_small(block, class) },
            // SAFETY: `alloc` gave this block out from the large heap with this layout.
            None => unsafe { allocator.large.deallocate(NonNull::new_unchecked(block), layout) },
        })
    }
}
