//! Checked access to the program's memory. Every pointer a program passes goes through here:
//! the range must lie in the user half, and each page must be mapped with the access the
//! syscall needs (faulting pages in as the program itself would). The kernel then reads or
//! writes small values through the direct map, or hands the host the page's GPA for bulk data.
//! A kernel access never faults, so a wild pointer is an `EFAULT`, never a kernel panic.

use shim_abi::{PAGE_SIZE, USER_END};

use crate::errno::Errno;
use crate::mm::frames::FrameAllocator;
use crate::mm::paging::{PTE_ADDRESS, PTE_PRESENT, PTE_USER, PTE_WRITABLE};
use crate::mm::phys_to_virt;
use crate::mm::space::{Access, AddressSpace};

/// The end of `[addr, addr + len)` if it lies in the user half.
pub fn user_range_end(addr: u64, len: u64) -> Result<u64, Errno> {
    let end = addr.checked_add(len).ok_or(Errno::EFAULT)?;
    if end > USER_END {
        return Err(Errno::EFAULT);
    }
    Ok(end)
}

impl AddressSpace {
    /// The GPA of the page holding user address `virt`, faulting it in if the VMA allows
    /// `write` (or read) access.
    pub fn user_page_gpa(
        &mut self,
        frames: &mut FrameAllocator,
        virt: u64,
        write: bool,
    ) -> Result<u64, Errno> {
        if virt >= USER_END {
            return Err(Errno::EFAULT);
        }
        let needed = PTE_PRESENT | PTE_USER | if write { PTE_WRITABLE } else { 0 };
        let mut entry = self.tables.lookup(virt);
        if entry & needed != needed {
            let access = Access { write, execute: false };
            self.handle_fault(frames, virt, access).map_err(|_| Errno::EFAULT)?;
            entry = self.tables.lookup(virt);
            if entry & needed != needed {
                return Err(Errno::EFAULT);
            }
        }
        Ok((entry & PTE_ADDRESS) + (virt & (PAGE_SIZE - 1)))
    }

    /// Copies `data` to user address `virt` (small structures only).
    pub fn copy_to_user(
        &mut self,
        frames: &mut FrameAllocator,
        virt: u64,
        data: &[u8],
    ) -> Result<(), Errno> {
        user_range_end(virt, data.len() as u64)?;
        let mut done = 0usize;
        while done < data.len() {
            let at = virt + done as u64;
            let gpa = self.user_page_gpa(frames, at, true)?;
            let in_page = (PAGE_SIZE - (at & (PAGE_SIZE - 1))) as usize;
            let chunk = in_page.min(data.len() - done);
            // SAFETY: gpa..gpa+chunk lies in one present, user-writable guest page, reached
            // through the direct map; `data` is kernel memory that does not overlap it.
            unsafe {
                core::ptr::copy_nonoverlapping(data[done..].as_ptr(), phys_to_virt(gpa), chunk)
            };
            done += chunk;
        }
        Ok(())
    }

    /// Copies from user address `virt` into `buf` (small structures only).
    pub fn copy_from_user(
        &mut self,
        frames: &mut FrameAllocator,
        virt: u64,
        buf: &mut [u8],
    ) -> Result<(), Errno> {
        user_range_end(virt, buf.len() as u64)?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = virt + done as u64;
            let gpa = self.user_page_gpa(frames, at, false)?;
            let in_page = (PAGE_SIZE - (at & (PAGE_SIZE - 1))) as usize;
            let chunk = in_page.min(buf.len() - done);
            // SAFETY: as in `copy_to_user`, reading instead of writing.
            unsafe {
                core::ptr::copy_nonoverlapping(phys_to_virt(gpa), buf[done..].as_mut_ptr(), chunk)
            };
            done += chunk;
        }
        Ok(())
    }

    /// Writes a plain value to user memory.
    pub fn write_user<T: zerocopy::IntoBytes + zerocopy::Immutable>(
        &mut self,
        frames: &mut FrameAllocator,
        virt: u64,
        value: &T,
    ) -> Result<(), Errno> {
        self.copy_to_user(frames, virt, value.as_bytes())
    }

    /// Reads a plain value from user memory.
    pub fn read_user<T: zerocopy::FromBytes + zerocopy::IntoBytes>(
        &mut self,
        frames: &mut FrameAllocator,
        virt: u64,
    ) -> Result<T, Errno> {
        let mut value = T::new_zeroed();
        self.copy_from_user(frames, virt, value.as_mut_bytes())?;
        Ok(value)
    }

    /// How much of `[virt, virt + len)`, from its start, the program's mappings allow the
    /// access to (`write` or read), growing the stack as a fault below it would. Constant
    /// work per mapping, none per page: the pages themselves are the host's to walk.
    pub fn accessible_prefix(&mut self, virt: u64, len: u64, write: bool) -> u64 {
        let Ok(end) = user_range_end(virt, len) else {
            return 0;
        };
        let access = Access { write, execute: false };
        let mut at = virt;
        while at < end {
            let vma = match self.find(at) {
                Some(vma) => *vma,
                None => match self.grow_stack(crate::mm::page_floor(at)) {
                    Some(vma) => vma,
                    None => break,
                },
            };
            if !crate::mm::space::prot_allows(vma.prot, access) {
                break;
            }
            at = vma.end.min(end);
        }
        at - virt
    }

    /// True if the page holding user address `virt` is mapped.
    pub fn is_present(&mut self, virt: u64) -> bool {
        self.tables.lookup(virt) & PTE_PRESENT != 0
    }
}
