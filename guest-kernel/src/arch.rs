//! x86-64 mechanics: the boot entry, GDT/TSS/IDT, the trap frame, and the two syscall entry
//! paths. Everything here is ring-0 glue; the decisions are made by `trap::handle`.
//!
//! Every exception and every syscall arrives at `trap_common`, which saves the general
//! registers into a [`TrapFrame`] on the kernel stack and calls `trap::handle`. The return path
//! is `iretq`, except for a syscall that entered through `SYSCALL` on a VT-x/AMD-V host, which
//! leaves by `SYSRETQ` when its return address is canonical.
//!
//! The two syscall entry paths (chosen once at boot by `detect_syscall_path`):
//! - **native**: `MSR_LSTAR` points at `syscall_entry_native` in ring 0; it switches to the
//!   kernel stack and builds the same frame an exception would.
//! - **PVM**: a ring-3 `syscall` jumps to `MSR_LSTAR` without leaving ring 3, so `MSR_LSTAR`
//!   points at a one-instruction stub in a user-executable page that does `int3` through a
//!   DPL-3 gate (the cheapest way into ring 0 measured on those hosts).

use core::arch::{asm, global_asm};
use core::ptr::addr_of;

use x86_64::instructions::tables::load_tss;
use x86_64::registers::model_specific::Msr;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::DescriptorTablePointer;
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// Selectors, in the layout `SYSCALL`/`SYSRET` require (Linux's layout).
pub const KERNEL_CS: u16 = 0x10;
pub const USER_DS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;

/// `TrapFrame::vector` of a syscall that entered through the native `SYSCALL` path.
pub const VECTOR_SYSCALL_NATIVE: u64 = 0x100;

/// Where the `.user_entry` page is mapped for ring 3 (in the kernel half, outside every
/// program mapping, and not the vsyscall page).
pub const USER_ENTRY_VIRT: u64 = 0xffff_ffff_ff00_0000;
/// Offsets inside the `.user_entry` page (see the assembly below).
pub const PVM_SYSCALL_STUB_OFFSET: u64 = 0;
const DETECT_LSTAR_OFFSET: u64 = 16;
const DETECT_USER_OFFSET: u64 = 32;

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_FMASK: u32 = 0xc000_0084;
pub const MSR_FS_BASE: u32 = 0xc000_0100;

/// RFLAGS bits cleared on `SYSCALL`: TF, IF, DF, IOPL, NT, AC.
const SYSCALL_FLAGS_MASK: u64 = 0x4_7700;
/// RFLAGS bits a program may set: CF PF AF ZF SF TF DF OF (and AC, ID, RF are left out).
const USER_FLAGS: u64 = 0xcd5 | 0x100 | 0x400 | 0x80;
const RFLAGS_IF: u64 = 0x200;
const RFLAGS_FIXED: u64 = 0x2;

/// Registers saved on every entry into ring 0; the layout `trap_common` pushes.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }

    /// A fresh ring-3 context starting at `rip` with stack `rsp`.
    pub fn user(rip: u64, rsp: u64) -> Self {
        Self {
            rip,
            rsp,
            cs: u64::from(USER_CS),
            ss: u64::from(USER_DS),
            rflags: RFLAGS_IF | RFLAGS_FIXED,
            ..Self::default()
        }
    }

    /// Arranges the return of a syscall to `rip` with flags `user_rflags` (both from the
    /// program: RCX and R11 at the `syscall`), through `SYSRETQ` when `native` and safe.
    pub fn return_from_syscall(&mut self, native: bool, rip: u64, user_rflags: u64) {
        self.rip = rip;
        self.rflags = (user_rflags & USER_FLAGS) | RFLAGS_IF | RFLAGS_FIXED;
        self.cs = u64::from(USER_CS);
        self.ss = u64::from(USER_DS);
        // SYSRETQ to a non-canonical RCX faults in ring 0 with the user's stack: use iretq.
        let canonical = rip < 0x0000_8000_0000_0000;
        if native && canonical {
            self.vector = VECTOR_SYSCALL_NATIVE;
            self.rcx = self.rip;
            self.r11 = self.rflags;
        } else {
            self.vector = 0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stacks.
// ---------------------------------------------------------------------------------------------

const KERNEL_STACK_BYTES: usize = 64 * 1024;
const DOUBLE_FAULT_STACK_BYTES: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack<const N: usize>([u8; N]);

/// The one kernel stack: boot runs on it, then every trap (TSS.RSP0 and the native entry).
#[no_mangle]
static mut KERNEL_STACK: Stack<KERNEL_STACK_BYTES> = Stack([0; KERNEL_STACK_BYTES]);
static mut DOUBLE_FAULT_STACK: Stack<DOUBLE_FAULT_STACK_BYTES> =
    Stack([0; DOUBLE_FAULT_STACK_BYTES]);

/// Top of [`KERNEL_STACK`]; read by `syscall_entry_native`.
#[no_mangle]
static mut KERNEL_STACK_TOP: u64 = 0;
/// The program's `%rsp` between `syscall_entry_native`'s first two instructions.
#[no_mangle]
static mut SYSCALL_USER_RSP: u64 = 0;

fn stack_top<const N: usize>(stack: *const Stack<N>) -> u64 {
    stack as u64 + N as u64
}

// ---------------------------------------------------------------------------------------------
// Entry points (assembly).
// ---------------------------------------------------------------------------------------------

global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    lea {stack}(%rip), %rsp
    add ${stack_bytes}, %rsp
    xor %ebp, %ebp
    call {kernel_main}
    ud2

    .text
    .macro TRAP_NOERR vec
    .balign 16
trap_stub_\vec:
    pushq $0
    pushq $\vec
    jmp trap_common
    .endm
    .macro TRAP_ERR vec
    .balign 16
trap_stub_\vec:
    pushq $\vec
    jmp trap_common
    .endm

    .balign 16
    .global trap_stub_0
    TRAP_NOERR 0
    TRAP_NOERR 1
    TRAP_NOERR 2
    TRAP_NOERR 3
    TRAP_NOERR 4
    TRAP_NOERR 5
    TRAP_NOERR 6
    TRAP_NOERR 7
    TRAP_ERR 8
    TRAP_NOERR 9
    TRAP_ERR 10
    TRAP_ERR 11
    TRAP_ERR 12
    TRAP_ERR 13
    TRAP_ERR 14
    TRAP_NOERR 15
    TRAP_NOERR 16
    TRAP_ERR 17
    TRAP_NOERR 18
    TRAP_NOERR 19
    TRAP_NOERR 20
    TRAP_ERR 21
    TRAP_NOERR 22
    TRAP_NOERR 23
    TRAP_NOERR 24
    TRAP_NOERR 25
    TRAP_NOERR 26
    TRAP_NOERR 27
    TRAP_NOERR 28
    TRAP_ERR 29
    TRAP_ERR 30
    TRAP_NOERR 31

    .balign 16
trap_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    cld
    call {handle}
    cmpq ${syscall_vector}, 15*8(%rsp)
    je 1f
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq
1:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    mov 40(%rsp), %rsp
    sysretq

    /* SYSCALL on a VT-x/AMD-V host: ring 0, IF clear, still on the program's stack. */
    .balign 16
    .global syscall_entry_native
syscall_entry_native:
    mov %rsp, SYSCALL_USER_RSP(%rip)
    mov KERNEL_STACK_TOP(%rip), %rsp
    pushq ${user_ds}
    pushq SYSCALL_USER_RSP(%rip)
    push %r11
    pushq ${user_cs}
    push %rcx
    pushq $0
    pushq ${syscall_vector}
    jmp trap_common

    /* The page ring 3 may execute (mapped at USER_ENTRY_VIRT). Offsets are fixed. */
    .section .user_entry, "ax"
    .balign 4096
pvm_syscall_stub:
    int3
    ud2
    .balign 16
detect_lstar_stub:
    mov %cs, %rax
    int3
    ud2
    .balign 16
detect_user_code:
    syscall
    ud2
"#,
    stack = sym KERNEL_STACK,
    stack_bytes = const KERNEL_STACK_BYTES,
    kernel_main = sym crate::boot::kernel_main,
    handle = sym crate::trap::handle,
    syscall_vector = const VECTOR_SYSCALL_NATIVE,
    user_ds = const USER_DS,
    user_cs = const USER_CS,
    options(att_syntax)
);

extern "C" {
    fn syscall_entry_native();
    static __user_entry_start: u8;
}

/// The address of trap stub `vector` (stubs are 16 bytes apart, starting at `trap_stub_0`).
fn trap_stub(vector: usize) -> u64 {
    extern "C" {
        fn trap_stub_0();
    }
    trap_stub_0 as *const () as u64 + 16 * vector as u64
}

/// Guest-physical address of the `.user_entry` page.
pub fn user_entry_gpa() -> u64 {
    let virt = addr_of!(__user_entry_start) as u64;
    virt - shim_abi::KERNEL_VIRT_BASE
}

// ---------------------------------------------------------------------------------------------
// Descriptor tables.
// ---------------------------------------------------------------------------------------------

static mut TSS: TaskStateSegment = TaskStateSegment::new();
static mut GDT: GlobalDescriptorTable<10> = GlobalDescriptorTable::empty();
/// The 32 exception vectors only. Nothing raises the others (there are no interrupts) but
/// `int n`, and a vector past the IDT's limit raises #GP (SIGSEGV, as on Linux) just as a
/// DPL-0 gate would; filling 224 such gates cost about 2 ms of interpreted ring 0 at boot.
static mut IDT: [[u64; 2]; EXCEPTION_VECTORS] = [[0; 2]; EXCEPTION_VECTORS];
const EXCEPTION_VECTORS: usize = 32;

/// A 64-bit interrupt gate (type 0xE: interrupts stay off in the handler) to `handler`.
fn interrupt_gate(handler: u64, dpl: u64, ist: u64) -> [u64; 2] {
    let low = (handler & 0xffff)
        | (u64::from(KERNEL_CS) << 16)
        | (ist << 32)
        | ((0x8e | (dpl << 5)) << 40)
        | (((handler >> 16) & 0xffff) << 48);
    [low, handler >> 32]
}

/// Raw descriptors for the slots the `x86_64` crate has no constructor for.
const CODE32_USER: u64 = 0x00cf_fb00_0000_ffff;

/// Loads the kernel's GDT (Linux layout), TSS (RSP0 and a double-fault stack) and IDT.
/// The VMM started the vCPU with these selectors already in CS/SS/DS, so they are not reloaded.
pub fn init_descriptor_tables() {
    // SAFETY: boot runs once on one vCPU before any trap can arrive, so nothing else touches
    // these statics while they are set up; they live for the whole run.
    unsafe {
        let kernel_stack = addr_of!(KERNEL_STACK);
        KERNEL_STACK_TOP = stack_top(kernel_stack);
        let tss = &mut *core::ptr::addr_of_mut!(TSS);
        tss.privilege_stack_table[0] = VirtAddr::new(stack_top(kernel_stack));
        tss.interrupt_stack_table[0] = VirtAddr::new(stack_top(addr_of!(DOUBLE_FAULT_STACK)));

        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        gdt.append(Descriptor::UserSegment(0)); // 0x08: unused
        let kernel_code = gdt.append(Descriptor::kernel_code_segment()); // 0x10
        gdt.append(Descriptor::kernel_data_segment()); // 0x18
        gdt.append(Descriptor::UserSegment(CODE32_USER)); // 0x23: SYSRET's base selector
        gdt.append(Descriptor::user_data_segment()); // 0x2b
        gdt.append(Descriptor::user_code_segment()); // 0x33
        let tss_selector = gdt.append(Descriptor::tss_segment(&*core::ptr::addr_of!(TSS)));
        debug_assert_eq!(kernel_code.0, KERNEL_CS);
        gdt.load_unsafe();
        load_tss(SegmentSelector(tss_selector.0));

        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (vector, gate) in idt.iter_mut().enumerate() {
            // `int3` (vector 3) may come from ring 3: breakpoints and the PVM syscall stub.
            let dpl = if vector == 3 { 3 } else { 0 };
            // The double fault runs on its own stack (IST 1), whatever broke the kernel stack.
            let ist = if vector == 8 { 1 } else { 0 };
            *gate = interrupt_gate(trap_stub(vector), dpl, ist);
        }
        let pointer = DescriptorTablePointer {
            limit: (core::mem::size_of::<[[u64; 2]; EXCEPTION_VECTORS]>() - 1) as u16,
            base: VirtAddr::new(idt.as_ptr() as u64),
        };
        x86_64::instructions::tables::lidt(&pointer);
    }
}

// ---------------------------------------------------------------------------------------------
// Syscall entry selection.
// ---------------------------------------------------------------------------------------------

/// How ring 3's `syscall` reaches this kernel on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallPath {
    /// `SYSCALL` enters ring 0 at `syscall_entry_native` (VT-x, AMD-V).
    Native,
    /// `SYSCALL` stays in ring 3; the stub at LSTAR does `int3` (PVM).
    Pvm,
}

/// Points LSTAR at the detection stub and returns the ring-3 context that runs `syscall`
/// once; the trap that follows reports the privilege level the stub ran at.
pub fn begin_syscall_detection(user_stack: u64) -> TrapFrame {
    write_msr(MSR_STAR, (0x23u64 << 48) | (u64::from(KERNEL_CS) << 32));
    write_msr(MSR_FMASK, SYSCALL_FLAGS_MASK);
    write_msr(MSR_LSTAR, USER_ENTRY_VIRT + DETECT_LSTAR_OFFSET);
    TrapFrame::user(USER_ENTRY_VIRT + DETECT_USER_OFFSET, user_stack)
}

/// True if `frame` is the trap the detection stub raises.
pub fn is_detection_trap(frame: &TrapFrame) -> bool {
    frame.vector == 3 && frame.rip == USER_ENTRY_VIRT + DETECT_LSTAR_OFFSET + 4
}

/// Chooses the entry path from what the detection stub saw (`%cs` in RAX) and installs it.
pub fn finish_syscall_detection(frame: &TrapFrame) -> SyscallPath {
    let path = if frame.rax & 3 == 3 { SyscallPath::Pvm } else { SyscallPath::Native };
    let lstar = match path {
        SyscallPath::Native => syscall_entry_native as *const () as u64,
        SyscallPath::Pvm => USER_ENTRY_VIRT + PVM_SYSCALL_STUB_OFFSET,
    };
    write_msr(MSR_LSTAR, lstar);
    path
}

/// True if `frame` is the PVM stub's `int3` (RIP is just past it).
pub fn is_pvm_syscall(frame: &TrapFrame) -> bool {
    frame.vector == 3 && frame.rip == USER_ENTRY_VIRT + PVM_SYSCALL_STUB_OFFSET + 1
}

// ---------------------------------------------------------------------------------------------
// Small privileged operations.
// ---------------------------------------------------------------------------------------------

pub fn write_msr(msr: u32, value: u64) {
    // SAFETY: only called with the architectural MSRs above and values valid for them.
    unsafe { Msr::new(msr).write(value) }
}

pub fn read_msr(msr: u32) -> u64 {
    // SAFETY: only called with architectural MSRs that exist on every x86-64 CPU.
    unsafe { Msr::new(msr).read() }
}

pub fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

pub fn read_cr3() -> u64 {
    x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64()
}

pub fn invalidate_page(virt: u64) {
    // SAFETY: invlpg only drops a TLB entry.
    unsafe { asm!("invlpg [{}]", in(reg) virt, options(nostack, preserves_flags)) }
}

pub fn flush_tlb() {
    x86_64::instructions::tlb::flush_all();
}

pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Rings the doorbell: the VMM handles the submission queue before this returns.
pub fn ring_doorbell() {
    // SAFETY: the doorbell port is reserved for this; `out` has no other effect here.
    unsafe {
        asm!("out dx, al", in("dx") shim_abi::DOORBELL_PORT, in("al") 0u8,
            options(nostack, preserves_flags))
    }
}

/// Stops the vCPU until the VMM resumes it (it sleeps until `RingHeader::wake_at_ns`).
pub fn halt() {
    // SAFETY: with interrupts off and no irqchip, `hlt` exits to the VMM and resumes after it.
    unsafe { asm!("hlt", options(nostack, nomem, preserves_flags)) }
}

/// Enters ring 3 (or wherever `frame` says) for the first time; never returns.
pub fn enter_first(frame: &TrapFrame) -> ! {
    // SAFETY: `frame` is a valid ring-3 context built by the kernel; iretq loads it.
    unsafe {
        asm!(
            "push {ss}", "push {rsp}", "push {rflags}", "push {cs}", "push {rip}", "iretq",
            ss = in(reg) frame.ss, rsp = in(reg) frame.rsp, rflags = in(reg) frame.rflags,
            cs = in(reg) frame.cs, rip = in(reg) frame.rip, options(noreturn)
        )
    }
}
