//! Boot: from the VMM's first instruction to the program's. Reads the boot info, loads the
//! descriptor tables, maps what the VMM prepared (program segments, stack top, vDSO), reads the
//! clock once, then detects which syscall entry path this host needs by running one `syscall`
//! in ring 3; the trap that follows starts the program (`trap::start_program`).

use shim_abi::{
    BootInfo, ABI_VERSION, BOOT_INFO_GPA, BOOT_MAGIC, PAGE_SIZE, PROT_READ,
};

use crate::arch::{self, SyscallPath};
use crate::mm::frames::FrameAllocator;
use crate::mm::paging::{PageTables, PTE_ADDRESS, PTE_PRESENT, PTE_USER};
use crate::mm::phys_to_virt;
use crate::mm::space::{AddressSpace, Vma, VmaKind};
use crate::process::{default_rlimits, FdTable, Kernel, SignalState};
use crate::time::Clock;
use crate::fs::Vfs;
use crate::{heap, logger, trap};
use alloc::vec::Vec;

/// The stack VMA starts at least this large, like Linux's initial stack mapping.
const INITIAL_STACK_BYTES: u64 = 128 << 10;

/// Where the program starts: (entry point, initial stack pointer).
static PROGRAM_START: spin::Once<(u64, u64)> = spin::Once::new();

pub fn program_start() -> (u64, u64) {
    *PROGRAM_START.get().expect("boot recorded the program's start")
}

/// The kernel's entry point, called by `_start` on the boot stack.
pub extern "C" fn kernel_main() -> ! {
    heap::init();
    // By reference, not copied: a copy of the page-sized block is a byte loop of interpreted
    // ring 0 on PVM hosts (milliseconds). The VMM wrote it before the vCPU started and never
    // writes it again.
    // SAFETY: the VMM wrote a BootInfo at BOOT_INFO_GPA; the direct map covers it, and
    // nothing writes it while the kernel runs.
    let boot: &BootInfo = unsafe { &*phys_to_virt(BOOT_INFO_GPA).cast::<BootInfo>() };
    logger::init(boot.log_level);
    assert!(boot.magic == BOOT_MAGIC, "boot info has a bad magic number");
    assert!(boot.abi_version == ABI_VERSION, "boot info ABI {} != {ABI_VERSION}", boot.abi_version);
    arch::init_descriptor_tables();

    let mut frames = FrameAllocator::new(boot.free_gpa, boot.memory_size);
    let mut tables = PageTables::new(arch::read_cr3());
    crate::ring::set_page_table_root(arch::read_cr3());
    map_user_entry_page(&mut tables, &mut frames);

    let scratch_gpa = frames.allocate().expect("a frame for host replies");
    let clock = Clock::calibrate(boot.tsc_khz, scratch_gpa);
    clock.publish(boot.vvar_gpa);
    // SAFETY: the stats page is guest memory reserved for these counters.
    unsafe { (*trap::stats()).boot_clock_tsc = clock.tsc_base() };

    let mut space = AddressSpace::new(tables, boot.brk_start, boot.mmap_top, boot.stack_limit);
    map_prepared_segments(boot, &mut space, &mut frames);

    let now = crate::fs::tmpfs::Time::from_ns(clock.realtime_ns());
    let vfs = Vfs::from_config(&mut frames, now);

    let kernel = Kernel {
        frames,
        space,
        files: FdTable::with_stdio(boot.closed_stdio),
        vfs,
        bounce: Vec::new(),
        next_pipe_id: 1,
        signals: SignalState::new(),
        clock,
        syscall_path: SyscallPath::Pvm,
        rlimits: default_rlimits(boot.max_fds),
        clear_child_tid: 0,
        robust_list: 0,
        memory_size: boot.memory_size,
        unsupported_logged: [0; 8],
        scratch_gpa,
        thread_name: *b"main\0\0\0\0\0\0\0\0\0\0\0\0",
        args: (boot.arg_start, boot.arg_end),
        environment: (boot.env_start, boot.env_end),
    };
    *trap::KERNEL.lock() = Some(kernel);
    PROGRAM_START.call_once(|| (boot.entry, boot.stack_pointer));

    // The detection stub runs on the program's prepared stack, below its arguments.
    let detection_stack = (boot.stack_pointer - 1024) & !0xf;
    let frame = arch::begin_syscall_detection(detection_stack);
    arch::enter_first(&frame)
}

/// Makes the `.user_entry` page executable by ring 3 at `arch::USER_ENTRY_VIRT`.
fn map_user_entry_page(tables: &mut PageTables, frames: &mut FrameAllocator) {
    // The kernel half's top-level entry must allow user access for any page below it to; the
    // leaves of the kernel's own mappings stay supervisor-only.
    let pml4 = phys_to_virt(arch::read_cr3()).cast::<u64>();
    // SAFETY: entry 511 of the live PML4 (the kernel half's last slot), via the direct map.
    unsafe {
        let slot = pml4.add(511);
        slot.write_volatile(slot.read_volatile() | PTE_USER);
    }
    let entry = tables.leaf(arch::USER_ENTRY_VIRT, Some(frames)).expect("user entry tables");
    // SAFETY: `leaf` returned the page-table slot for USER_ENTRY_VIRT.
    unsafe { entry.write_volatile((arch::user_entry_gpa() & PTE_ADDRESS) | PTE_PRESENT | PTE_USER) };
    arch::invalidate_page(arch::USER_ENTRY_VIRT);
}

/// Maps the VMM-filled segments: the program image, the vDSO (+ its data page), the stack top.
fn map_prepared_segments(boot: &BootInfo, space: &mut AddressSpace, frames: &mut FrameAllocator) {
    let count = (boot.segment_count as usize).min(boot.segments.len());
    for segment in &boot.segments[..count] {
        let end = segment.virt + segment.pages * PAGE_SIZE;
        if end == boot.stack_top {
            let start = segment.virt.min(boot.stack_top - INITIAL_STACK_BYTES);
            let stack = Vma { start, end, prot: segment.prot, shared: false, kind: VmaKind::Stack };
            space.insert(stack);
            space
                .populate(frames, segment.virt, segment.gpa, segment.pages)
                .expect("mapping the initial stack");
            continue;
        }
        let kind = if segment.virt == boot.vdso_virt { VmaKind::Vdso } else { VmaKind::Anonymous };
        let vma = Vma { start: segment.virt, end, prot: segment.prot, shared: false, kind };
        space.map_prepared(frames, vma, segment.gpa).expect("mapping a program segment");
    }

    let vvar_virt = boot.vdso_virt - PAGE_SIZE;
    let vvar = Vma {
        start: vvar_virt,
        end: boot.vdso_virt,
        prot: PROT_READ,
        shared: false,
        kind: VmaKind::Vdso,
    };
    space.map_prepared(frames, vvar, boot.vvar_gpa).expect("mapping the vvar page");
}
