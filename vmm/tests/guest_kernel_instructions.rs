//! Scans the embedded guest kernel's machine code for instructions that kill or hang the VM
//! when ring 0 is interpreted (PVM hosts; see shared/platform-probes/FINDINGS.md): SSE and
//! AVX, x87, popcnt, BMI, ADX, crc32, cmpxchg16b, rdtscp, rdpid, movbe, xsave and xgetbv,
//! `int n` and executed `int3`, lar/lsl/verr/verw, invpcid, stac/clac, vmcall/vmmcall.
//!
//! `int3` bytes are allowed only as the linker's padding in front of a 16-byte aligned
//! function start. The `.user_entry` page is left out: it runs in ring 3 on PVM hosts, where
//! its `int3` is the syscall path.

use goblin::elf::Elf;
use iced_x86::{CpuidFeature, Decoder, DecoderOptions, Instruction, Mnemonic};

fn forbidden_feature(feature: CpuidFeature) -> bool {
    use CpuidFeature::*;
    matches!(
        feature,
        FPU | FPU287 | FPU387 | SSE | SSE2 | SSE3 | SSSE3 | SSE4_1 | SSE4_2 | SSE4A | AVX | AVX2
            | FMA | F16C | AVX512F | AVX512VL | AVX512BW | AVX512DQ | POPCNT | LZCNT | BMI1
            | BMI2 | ADX | CMPXCHG16B | RDTSCP | RDPID | MOVBE | XSAVE | XSAVEOPT | XSAVEC
            | XSAVES | SMAP | INVPCID | VMX | SVM | MMX
    )
}

fn forbidden_mnemonic(mnemonic: Mnemonic) -> bool {
    matches!(
        mnemonic,
        Mnemonic::Int
            | Mnemonic::Into
            | Mnemonic::Lar
            | Mnemonic::Lsl
            | Mnemonic::Verr
            | Mnemonic::Verw
            | Mnemonic::Xgetbv
            | Mnemonic::Vmcall
            | Mnemonic::Vmmcall
    )
}

#[test]
fn guest_kernel_has_no_instruction_fatal_in_interpreted_ring_0() {
    let image = litebox_vmm::guest_kernel_image();
    let elf = Elf::parse(image).expect("the embedded guest kernel is an ELF file");
    let mut scanned = 0usize;
    let mut findings = Vec::new();

    for section in &elf.section_headers {
        let name = elf.shdr_strtab.get_at(section.sh_name).unwrap_or("");
        let executable = section.sh_flags & u64::from(goblin::elf::section_header::SHF_EXECINSTR) != 0;
        if !executable || name == ".user_entry" || section.sh_size == 0 {
            continue;
        }
        let start = section.sh_offset as usize;
        let code = &image[start..start + section.sh_size as usize];
        let mut decoder = Decoder::with_ip(64, code, section.sh_addr, DecoderOptions::NONE);
        let mut instruction = Instruction::default();
        while decoder.can_decode() {
            decoder.decode_out(&mut instruction);
            scanned += 1;
            let ip = instruction.ip();
            if instruction.is_invalid() {
                findings.push(format!("{ip:#x}: undecodable bytes"));
                continue;
            }
            if instruction.mnemonic() == Mnemonic::Int3 {
                if !is_padding(code, (ip - section.sh_addr) as usize, section.sh_addr) {
                    findings.push(format!("{ip:#x}: int3 that is not padding"));
                }
                continue;
            }
            let bad_feature = instruction.cpuid_features().iter().copied().find(|f| forbidden_feature(*f));
            if let Some(feature) = bad_feature {
                findings.push(format!("{ip:#x}: {:?} (needs {feature:?})", instruction.mnemonic()));
            } else if forbidden_mnemonic(instruction.mnemonic()) {
                findings.push(format!("{ip:#x}: {:?}", instruction.mnemonic()));
            }
        }
    }

    assert!(scanned > 1000, "only {scanned} instructions scanned: is the kernel image right?");
    assert!(findings.is_empty(), "fatal instructions in the guest kernel:\n{}", findings.join("\n"));
}

/// True if the `int3` at `offset` belongs to a run of `int3` bytes that ends at a 16-byte
/// aligned address (the padding between functions).
fn is_padding(code: &[u8], offset: usize, base: u64) -> bool {
    let mut end = offset;
    while end < code.len() && code[end] == 0xcc {
        end += 1;
    }
    (base + end as u64) % 16 == 0 || end == code.len()
}

#[test]
fn the_scan_catches_a_forbidden_instruction() {
    // popcnt rax, rbx: must be flagged by the same rule the scan uses.
    let code = [0xf3, 0x48, 0x0f, 0xb8, 0xc3];
    let mut decoder = Decoder::with_ip(64, &code, 0, DecoderOptions::NONE);
    let instruction = decoder.decode();
    assert!(instruction.cpuid_features().iter().any(|f| forbidden_feature(*f)));
}
