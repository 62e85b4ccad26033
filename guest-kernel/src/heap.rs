//! The kernel heap: a fixed region in the kernel's `.bss` (zeroed by the VMM for free), managed
//! by `linked_list_allocator`. It holds the kernel's own bookkeeping (VMA lists, fd tables),
//! never program data.

use linked_list_allocator::LockedHeap;

const HEAP_BYTES: usize = 4 << 20;

#[repr(C, align(4096))]
struct HeapRegion([u8; HEAP_BYTES]);

static mut HEAP_REGION: HeapRegion = HeapRegion([0; HEAP_BYTES]);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Hands the heap region to the allocator. Called once at boot.
pub fn init() {
    // SAFETY: called once before any allocation; the region is a static used only here.
    unsafe {
        let start = core::ptr::addr_of_mut!(HEAP_REGION).cast::<u8>();
        ALLOCATOR.lock().init(start, HEAP_BYTES);
    }
}
