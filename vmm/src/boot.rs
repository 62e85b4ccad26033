//! Builds the VM a guest kernel starts in: guest memory, the boot page tables, the kernel image
//! (loaded with `linux-loader`), and one vCPU already in 64-bit long mode. There are no
//! emulated devices: no PIC, PIT, serial port or virtio; the guest talks only through the ring.

use std::io::Cursor;

use kvm_bindings::{kvm_segment, kvm_userspace_memory_region, kvm_xcrs, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use linux_loader::loader::elf::Elf as ElfLoader;
use linux_loader::loader::KernelLoader;
use shim_abi::{
    BOOT_PAGE_TABLES_GPA, DIRECT_MAP_BASE, HUGE_PAGE_SIZE, KERNEL_GPA, KERNEL_VIRT_BASE, PAGE_SIZE,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::error::{Error, Result};

/// Guest memory size bounds.
pub const MIN_MEMORY: u64 = 64 << 20;
pub const MAX_MEMORY: u64 = 64 << 30;

const PTE_PRESENT: u64 = 1;
const PTE_WRITABLE: u64 = 1 << 1;
const PTE_HUGE: u64 = 1 << 7;
const PTE_GLOBAL: u64 = 1 << 8;
const PTE_NO_EXECUTE: u64 = 1 << 63;

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_AM: u64 = 1 << 18;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_PGE: u64 = 1 << 7;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_OSXSAVE: u64 = 1 << 18;
const EFER_SCE: u64 = 1;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// Selectors the guest kernel's GDT uses (Linux layout).
const KERNEL_CS: u16 = 0x10;
const KERNEL_DS: u16 = 0x18;

/// Allocates guest memory: one anonymous, private, lazily-backed region from GPA 0.
pub fn create_memory(vm: &VmFd, size: u64) -> Result<GuestMemoryMmap> {
    let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size as usize)])
        .map_err(|error| Error::GuestMemory(format!("allocating {size} bytes: {error}")))?;
    for (slot, region) in memory.iter().enumerate() {
        let host_address = memory
            .get_host_address(region.start_addr())
            .map_err(|error| Error::GuestMemory(error.to_string()))?;
        let region = kvm_userspace_memory_region {
            slot: slot as u32,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host_address as u64,
            flags: 0,
        };
        // SAFETY: the region is a live mapping owned by `memory`, which outlives the VM (the
        // sandbox drops the VM first).
        unsafe { vm.set_user_memory_region(region) }
            .map_err(Error::kvm("KVM_SET_USER_MEMORY_REGION"))?;
    }
    Ok(memory)
}

/// Loads the guest kernel ELF at its physical addresses; returns (entry, end GPA).
pub fn load_kernel(memory: &GuestMemoryMmap, kernel: &[u8]) -> Result<(u64, u64)> {
    let mut image = Cursor::new(kernel);
    let loaded = ElfLoader::load(memory, None, &mut image, None)
        .map_err(|error| Error::GuestFailure(format!("loading the guest kernel: {error}")))?;
    // linux-loader skips segments with no file bytes (the kernel's .bss), so the end of the
    // image is taken from the program headers themselves.
    let elf = goblin::elf::Elf::parse(kernel)
        .map_err(|error| Error::GuestFailure(format!("parsing the guest kernel: {error}")))?;
    let end = elf
        .program_headers
        .iter()
        .filter(|header| header.p_type == goblin::elf::program_header::PT_LOAD)
        .map(|header| header.p_paddr + header.p_memsz)
        .fold(loaded.kernel_end.max(KERNEL_GPA), u64::max);
    Ok((loaded.kernel_load.0, end.div_ceil(PAGE_SIZE) * PAGE_SIZE))
}

/// Writes the boot page tables: a direct map of all guest memory at [`DIRECT_MAP_BASE`] and
/// the first GiB at [`KERNEL_VIRT_BASE`] (for the kernel image), both with 2 MiB pages.
/// Returns the PML4's GPA.
pub fn write_page_tables(memory: &GuestMemoryMmap, size: u64) -> Result<u64> {
    let pml4 = BOOT_PAGE_TABLES_GPA;
    let direct_pdpt = pml4 + PAGE_SIZE;
    let kernel_pdpt = direct_pdpt + PAGE_SIZE;
    let kernel_pd = kernel_pdpt + PAGE_SIZE;
    let first_direct_pd = kernel_pd + PAGE_SIZE;
    let gigabytes = size.div_ceil(1 << 30);
    if first_direct_pd + gigabytes * PAGE_SIZE > KERNEL_GPA {
        return Err(Error::Config(format!("{size} bytes of guest memory is too much")));
    }

    let table_flags = PTE_PRESENT | PTE_WRITABLE;
    let huge = |gpa: u64| gpa | PTE_PRESENT | PTE_WRITABLE | PTE_HUGE | PTE_GLOBAL;
    let put = |gpa: u64, value: u64| {
        memory
            .write_obj(value, GuestAddress(gpa))
            .map_err(|error| Error::GuestMemory(format!("page tables at {gpa:#x}: {error}")))
    };

    put(pml4 + 8 * pml4_index(DIRECT_MAP_BASE), direct_pdpt | table_flags)?;
    put(pml4 + 8 * 511, kernel_pdpt | table_flags)?;
    put(kernel_pdpt + 8 * pdpt_index(KERNEL_VIRT_BASE), kernel_pd | table_flags)?;
    for entry in 0..512 {
        put(kernel_pd + 8 * entry, huge(entry * HUGE_PAGE_SIZE))?;
    }
    for gigabyte in 0..gigabytes {
        let pd = first_direct_pd + gigabyte * PAGE_SIZE;
        put(direct_pdpt + 8 * gigabyte, pd | table_flags)?;
        for entry in 0..512 {
            let gpa = (gigabyte << 30) + entry * HUGE_PAGE_SIZE;
            if gpa >= size {
                break;
            }
            put(pd + 8 * entry, huge(gpa) | PTE_NO_EXECUTE)?;
        }
    }
    Ok(pml4)
}

fn pml4_index(virt: u64) -> u64 {
    (virt >> 39) & 511
}

fn pdpt_index(virt: u64) -> u64 {
    (virt >> 30) & 511
}

/// Creates vCPU 0 in long mode at `entry`, with the host's supported CPUID and the FPU/SSE/AVX
/// state enabled for ring 3.
pub fn create_vcpu(kvm: &Kvm, vm: &VmFd, pml4: u64, entry: u64) -> Result<VcpuFd> {
    let vcpu = vm.create_vcpu(0).map_err(Error::kvm("KVM_CREATE_VCPU"))?;

    let cpuid: CpuId = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(Error::kvm("KVM_GET_SUPPORTED_CPUID"))?;
    vcpu.set_cpuid2(&cpuid).map_err(Error::kvm("KVM_SET_CPUID2"))?;

    let mut sregs = vcpu.get_sregs().map_err(Error::kvm("KVM_GET_SREGS"))?;
    let code = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: KERNEL_CS,
        type_: 11,
        present: 1,
        dpl: 0,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        ..Default::default()
    };
    let data = kvm_segment {
        selector: KERNEL_DS,
        type_: 3,
        l: 0,
        db: 1,
        ..code
    };
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.ss = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.cr3 = pml4;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
    sregs.cr4 = CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
    sregs.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    vcpu.set_sregs(&sregs).map_err(Error::kvm("KVM_SET_SREGS"))?;

    // XCR0: x87, SSE and AVX (and AVX-512 when the host has all of it) for ring 3.
    let supported_xcr0 = cpuid
        .as_slice()
        .iter()
        .find(|leaf| leaf.function == 0xd && leaf.index == 0)
        .map_or(0x3, |leaf| u64::from(leaf.eax) | (u64::from(leaf.edx) << 32));
    let mut xcr0 = supported_xcr0 & 0x7;
    if supported_xcr0 & 0xe0 == 0xe0 {
        xcr0 |= 0xe0;
    }
    let mut xcrs = kvm_xcrs { nr_xcrs: 1, ..Default::default() };
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = xcr0 | 1;
    // Hosts without XSAVE support refuse this; the program then just has no AVX.
    let _ = vcpu.set_xcrs(&xcrs);

    let regs = kvm_bindings::kvm_regs { rip: entry, rflags: 0x2, ..Default::default() };
    vcpu.set_regs(&regs).map_err(Error::kvm("KVM_SET_REGS"))?;
    Ok(vcpu)
}
