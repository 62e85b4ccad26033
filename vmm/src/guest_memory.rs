//! Typed access to guest memory for the ABI structures in `shim_abi` (which derive `zerocopy`
//! traits, not `vm-memory`'s): every access is bounds-checked by `vm-memory` and copies bytes,
//! so a guest-controlled address can never make the host touch memory outside the guest.

use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
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

/// The host address of the guest range `gpa..gpa + len`, if all of it lies inside one region
/// of guest memory (`None` otherwise, including when `gpa + len` overflows). A zero-length
/// range is always accepted and yields a dangling, never-dereferenced pointer.
///
/// The pointer stays valid as long as `memory`; callers turn it into a slice or an `iovec`
/// only while the vCPU is stopped (requests are served on the vCPU's own thread).
pub fn host_range(memory: &GuestMemoryMmap, gpa: u64, len: u64) -> Option<*mut u8> {
    let len_usize = usize::try_from(len).ok()?;
    if len == 0 {
        return Some(std::ptr::NonNull::dangling().as_ptr());
    }
    let end = gpa.checked_add(len)?;
    if !memory.address_in_range(GuestAddress(end - 1)) {
        return None;
    }
    let slice = memory.get_slice(GuestAddress(gpa), len_usize).ok()?;
    Some(slice.ptr_guard_mut().as_ptr())
}

/// The scatter-gather entries of `request`, bounded in count (`MAX_SG_PER_REQUEST`) and total
/// size (`MAX_BYTES_PER_REQUEST`): `EINVAL` beyond them, `EFAULT` when the list itself is not
/// in guest memory. The errno is positive.
pub fn sg_list(
    memory: &GuestMemoryMmap,
    request: &shim_abi::Request,
) -> Result<Vec<shim_abi::SgEntry>, i32> {
    if request.sg_count > shim_abi::MAX_SG_PER_REQUEST {
        return Err(libc::EINVAL);
    }
    let mut entries = vec![shim_abi::SgEntry::default(); request.sg_count as usize];
    let mut total: u64 = 0;
    for (index, entry) in entries.iter_mut().enumerate() {
        let at = request
            .sg_gpa
            .checked_add(index as u64 * 16)
            .ok_or(libc::EFAULT)?;
        *entry = read(memory, at).map_err(|_| libc::EFAULT)?;
        total = total.checked_add(entry.len).ok_or(libc::EINVAL)?;
    }
    if total > shim_abi::MAX_BYTES_PER_REQUEST {
        return Err(libc::EINVAL);
    }
    Ok(entries)
}
