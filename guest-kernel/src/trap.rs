//! Where every entry into ring 0 lands (`arch::trap_common` calls [`handle`]): syscalls from
//! either entry path, page faults, the legacy vsyscall page, the boot-time syscall-path
//! detection, and every other exception. An exception in the program becomes the signal Linux
//! would raise and ends it; an exception in the kernel is a panic.

use shim_abi::{ExitKind, GuestStats, DIRECT_MAP_BASE, GUEST_STATS_GPA, VSYSCALL_PAGE};

use crate::arch::{self, SyscallPath, TrapFrame, VECTOR_SYSCALL_NATIVE};
use crate::mm::space::{Access, FaultError};
use crate::process::{end_program, Kernel};
use crate::syscall;

pub static KERNEL: spin::Mutex<Option<Kernel>> = spin::Mutex::new(None);

pub const SIGTRAP: u64 = 5;
pub const SIGILL: u64 = 4;
pub const SIGBUS: u64 = 7;
pub const SIGFPE: u64 = 8;
pub const SIGKILL: u64 = 9;
pub const SIGSEGV: u64 = 11;

const VECTOR_DIVIDE: u64 = 0;
const VECTOR_DEBUG: u64 = 1;
const VECTOR_BREAKPOINT: u64 = 3;
const VECTOR_OVERFLOW: u64 = 4;
const VECTOR_BOUND: u64 = 5;
const VECTOR_INVALID_OPCODE: u64 = 6;
const VECTOR_DEVICE_NOT_AVAILABLE: u64 = 7;
const VECTOR_SEGMENT_NOT_PRESENT: u64 = 11;
const VECTOR_STACK_FAULT: u64 = 12;
const VECTOR_GENERAL_PROTECTION: u64 = 13;
const VECTOR_PAGE_FAULT: u64 = 14;
const VECTOR_X87: u64 = 16;
const VECTOR_ALIGNMENT: u64 = 17;
const VECTOR_SIMD: u64 = 19;

/// Page-fault error code bits.
const PF_WRITE: u64 = 1 << 1;
const PF_INSTRUCTION: u64 = 1 << 4;

pub fn stats() -> *mut GuestStats {
    (DIRECT_MAP_BASE + GUEST_STATS_GPA) as *mut GuestStats
}

/// Called by `trap_common` with the saved registers, on the kernel stack.
pub extern "C" fn handle(frame: &mut TrapFrame) {
    if !frame.from_user() && !arch::is_detection_trap(frame) {
        kernel_exception(frame);
    }
    let Some(mut guard) = KERNEL.try_lock() else {
        panic!("trap {} re-entered the kernel at rip {:#x}", frame.vector, frame.rip);
    };
    let kernel = guard.as_mut().expect("trap before the kernel was initialised");

    match frame.vector {
        VECTOR_SYSCALL_NATIVE => {
            let (rip, flags) = (frame.rcx, frame.r11);
            syscall::dispatch(kernel, frame);
            frame.return_from_syscall(true, rip, flags);
        }
        VECTOR_BREAKPOINT if arch::is_pvm_syscall(frame) => {
            let (rip, flags) = (frame.rcx, frame.r11);
            syscall::dispatch(kernel, frame);
            frame.return_from_syscall(false, rip, flags);
        }
        VECTOR_BREAKPOINT if arch::is_detection_trap(frame) => start_program(kernel, frame),
        VECTOR_PAGE_FAULT => page_fault(kernel, frame),
        VECTOR_INVALID_OPCODE if is_software_interrupt(kernel, frame.rip) => {
            // PVM hosts raise #UD for `int n` from ring 3 whatever the gate says; Linux (and
            // this kernel on VT-x, through its DPL-0 gates) raises #GP: SIGSEGV at address 0.
            drop(guard);
            end_program(ExitKind::Signal, SIGSEGV, 0, frame.rip);
        }
        vector => {
            let signal = signal_for(vector);
            drop(guard);
            end_program(ExitKind::Signal, signal, fault_address(frame), frame.rip);
        }
    }
}

/// True if the user instruction at `rip` is `int imm8` (opcode 0xCD).
fn is_software_interrupt(kernel: &mut Kernel, rip: u64) -> bool {
    kernel.space.read_user::<u8>(&mut kernel.frames, rip) == Ok(0xcd)
}

/// The signal Linux raises for an exception in user mode.
fn signal_for(vector: u64) -> u64 {
    match vector {
        VECTOR_DIVIDE | VECTOR_X87 | VECTOR_SIMD => SIGFPE,
        VECTOR_DEBUG | VECTOR_BREAKPOINT => SIGTRAP,
        VECTOR_INVALID_OPCODE | VECTOR_DEVICE_NOT_AVAILABLE => SIGILL,
        VECTOR_ALIGNMENT | VECTOR_STACK_FAULT | VECTOR_SEGMENT_NOT_PRESENT => SIGBUS,
        VECTOR_OVERFLOW | VECTOR_BOUND | VECTOR_GENERAL_PROTECTION => SIGSEGV,
        _ => SIGSEGV,
    }
}

/// `si_addr` as Linux reports it: the faulting data address for page faults, else the
/// instruction (0 for #GP, as Linux does).
fn fault_address(frame: &TrapFrame) -> u64 {
    match frame.vector {
        VECTOR_PAGE_FAULT => arch::read_cr2(),
        VECTOR_GENERAL_PROTECTION | VECTOR_STACK_FAULT | VECTOR_SEGMENT_NOT_PRESENT => 0,
        _ => frame.rip,
    }
}

/// The first trap after boot: the detection stub reported how `syscall` behaves here. Pick
/// the entry path and turn this trap's return into the program's first instruction.
fn start_program(kernel: &mut Kernel, frame: &mut TrapFrame) {
    let path = arch::finish_syscall_detection(frame);
    kernel.syscall_path = path;
    log::debug!(
        "syscall entry: {}",
        match path {
            SyscallPath::Native => "SYSCALL/SYSRET into ring 0 (VT-x/AMD-V host)",
            SyscallPath::Pvm => "SYSCALL stays in ring 3; LSTAR stub enters by int3 (PVM host)",
        }
    );
    let (entry, stack_pointer) = crate::boot::program_start();
    *frame = TrapFrame::user(entry, stack_pointer);
    // SAFETY: the stats page is guest memory reserved for these counters.
    unsafe { (*stats()).program_start_tsc = arch::rdtsc() };
}

fn page_fault(kernel: &mut Kernel, frame: &mut TrapFrame) {
    let address = arch::read_cr2();
    let access = Access {
        write: frame.error_code & PF_WRITE != 0,
        execute: frame.error_code & PF_INSTRUCTION != 0,
    };

    if crate::mm::page_floor(address) == VSYSCALL_PAGE && access.execute && frame.rip == address {
        if syscall::emulate_vsyscall(kernel, frame) {
            return;
        }
    }

    match kernel.space.handle_fault(&mut kernel.frames, address, access) {
        Ok(()) => {
            // SAFETY: the stats page is guest memory reserved for these counters.
            unsafe { (*stats()).page_faults += 1 };
        }
        Err(FaultError::Segv) => {
            end_program(ExitKind::Signal, SIGSEGV, address, frame.rip);
        }
        Err(FaultError::OutOfMemory) => {
            log::error!("out of guest memory at {address:#x}: the program is killed");
            end_program(ExitKind::Signal, SIGKILL, address, frame.rip);
        }
    }
}

/// An exception in ring 0 is a kernel bug: report it as a panic with the registers.
fn kernel_exception(frame: &TrapFrame) -> ! {
    panic!(
        "kernel exception {} (error {:#x}) at rip {:#x}, cr2 {:#x}, rsp {:#x}, rax {:#x}",
        frame.vector,
        frame.error_code,
        frame.rip,
        arch::read_cr2(),
        frame.rsp,
        frame.rax
    );
}
