//! Just enough ELF reading for xtask to check what a compiler produced: the file type
//! (`ET_EXEC`/`ET_DYN`), the machine, and whether there is a `PT_INTERP` (a dynamic program).
//! Used on the test images after each build and on `/bin/busybox` by `setup`.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
const PT_INTERP: u32 = 3;

/// What xtask wants to know about an x86-64 ELF file.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub file_type: u16,
    pub has_interp: bool,
}

/// Reads `path` and summarises it; an error if it isn't a 64-bit little-endian x86-64 ELF.
pub fn inspect(path: &Path) -> Result<Summary> {
    let bytes = std::fs::read(path).with_context(|| format!("can't read {}", path.display()))?;
    summarize(&bytes).with_context(|| format!("{} is not a usable ELF", path.display()))
}

pub fn summarize(bytes: &[u8]) -> Result<Summary> {
    ensure!(
        bytes.len() >= 64 && bytes[..4] == *b"\x7fELF",
        "no ELF header"
    );
    ensure!(bytes[4] == 2 && bytes[5] == 1, "not 64-bit little-endian");
    ensure!(u16_at(bytes, 18)? == EM_X86_64, "not x86-64");

    let file_type = u16_at(bytes, 16)?;
    let phoff = usize::try_from(u64_at(bytes, 32)?)?;
    let phentsize = usize::from(u16_at(bytes, 54)?);
    let phnum = usize::from(u16_at(bytes, 56)?);
    ensure!(
        phentsize >= 56,
        "program header entries of {phentsize} bytes"
    );

    let mut has_interp = false;
    for index in 0..phnum {
        let offset = phoff + index * phentsize;
        if u32_at(bytes, offset)? == PT_INTERP {
            has_interp = true;
        }
    }
    Ok(Summary {
        file_type,
        has_interp,
    })
}

fn field<const N: usize>(bytes: &[u8], offset: usize) -> Result<[u8; N]> {
    let Some(slice) = bytes.get(offset..offset + N) else {
        bail!("truncated at byte {offset}");
    };
    Ok(slice.try_into()?)
}

fn u16_at(bytes: &[u8], offset: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(field(bytes, offset)?))
}

fn u32_at(bytes: &[u8], offset: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(field(bytes, offset)?))
}

fn u64_at(bytes: &[u8], offset: usize) -> Result<u64> {
    Ok(u64::from_le_bytes(field(bytes, offset)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal header with `types` as its program headers' `p_type`s.
    fn elf(file_type: u16, types: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64 + 56 * types.len()];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[16..18].copy_from_slice(&file_type.to_le_bytes());
        bytes[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
        let count = u16::try_from(types.len()).expect("few headers");
        bytes[56..58].copy_from_slice(&count.to_le_bytes());
        for (i, p_type) in types.iter().enumerate() {
            bytes[64 + 56 * i..68 + 56 * i].copy_from_slice(&p_type.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn static_and_dynamic_are_told_apart() {
        let static_exec = summarize(&elf(ET_EXEC, &[1, 1])).expect("valid");
        assert_eq!(
            static_exec,
            Summary {
                file_type: ET_EXEC,
                has_interp: false
            }
        );
        let dynamic = summarize(&elf(ET_DYN, &[6, PT_INTERP, 1])).expect("valid");
        assert_eq!(
            dynamic,
            Summary {
                file_type: ET_DYN,
                has_interp: true
            }
        );
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(summarize(b"#!/bin/sh\n").is_err());
        let mut truncated = elf(ET_EXEC, &[1, 1]);
        truncated.truncate(100);
        assert!(summarize(&truncated).is_err());
    }
}
