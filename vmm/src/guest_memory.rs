//! Typed access to guest memory for the ABI structures in `shim_abi` (which derive `zerocopy`
//! traits, not `vm-memory`'s): every access is bounds-checked by `vm-memory` and copies bytes,
//! so a guest-controlled address can never make the host touch memory outside the guest.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Reads a `T` at guest-physical address `gpa`.
pub fn read<T: FromBytes + IntoBytes>(memory: &GuestMemoryMmap, gpa: u64) -> Result<T, String> {
    let mut value = T::new_zeroed();
    memory
        .read_slice(value.as_mut_bytes(), GuestAddress(gpa))
        .map_err(|error| format!("reading {} bytes at GPA {gpa:#x}: {error}", size_of::<T>()))?;
    Ok(value)
}

/// Writes `value` at guest-physical address `gpa`.
pub fn write<T: IntoBytes + Immutable>(
    memory: &GuestMemoryMmap,
    gpa: u64,
    value: &T,
) -> Result<(), String> {
    memory
        .write_slice(value.as_bytes(), GuestAddress(gpa))
        .map_err(|error| format!("writing {} bytes at GPA {gpa:#x}: {error}", size_of::<T>()))
}
