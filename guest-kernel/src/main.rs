//! The litebox guest kernel: a `no_std` library kernel that runs one unmodified Linux x86-64
//! program in ring 3 inside a litebox-vmm micro-VM.
//!
//! The VMM has already done the bulk work (see `shim_abi`): the kernel image, the program's
//! segments, its initial stack and the vDSO are in guest memory and the boot page tables map
//! it. This kernel maps the program, answers its syscalls in the guest, and sends only what
//! must reach the outside world (stdio, the clock, entropy, the exit) over the request ring.
//!
//! Ring-0 code here may be interpreted instruction by instruction (PVM hosts), so every path
//! is short and nothing copies or zeroes bulk memory: the VMM moves data straight to and from
//! the program's pages named by guest-physical ranges.

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot;
mod errno;
mod fs;
mod heap;
mod logger;
mod mm;
mod process;
mod ring;
mod syscall;
mod time;
mod trap;
