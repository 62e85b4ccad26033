//! Memory management: guest-physical frames, the program's page tables, its address space
//! (VMAs, brk, mmap, faults) and checked access to its memory.
//!
//! Frames handed out are always zero without the kernel writing them: fresh ones come from
//! host memory the VMM never touched, and freed ones are given back to the host
//! (`Opcode::DiscardFrames`), which drops their contents before they are reused.

pub mod frames;
pub mod paging;
pub mod space;
pub mod user;

use shim_abi::{DIRECT_MAP_BASE, PAGE_SIZE};

/// The kernel's pointer to guest-physical address `gpa` (through the direct map).
pub fn phys_to_virt(gpa: u64) -> *mut u8 {
    (DIRECT_MAP_BASE + gpa) as *mut u8
}

pub fn page_floor(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// Rounds up to a page; `None` on overflow.
pub fn page_ceil(addr: u64) -> Option<u64> {
    Some(addr.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// The GPA of kernel memory at `ptr` (the kernel image, its heap, or the direct map).
pub fn kernel_gpa(ptr: *const u8) -> u64 {
    let address = ptr as u64;
    if address >= shim_abi::KERNEL_VIRT_BASE {
        address - shim_abi::KERNEL_VIRT_BASE
    } else {
        address - DIRECT_MAP_BASE
    }
}
