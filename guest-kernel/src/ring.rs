//! The guest side of the request ring (`shim_abi`): submission, doorbell, completion.
//!
//! The doorbell is a synchronous port write, so [`Ring::call`] returns with its completion in
//! hand. Requests that need no answer (log lines, frame discards) are [`Ring::post`]ed and ride
//! along with the next doorbell, so they cost no exit of their own. The ring and the
//! scatter-gather arena are reached through the kernel's direct map of guest memory.

use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{compiler_fence, Ordering};

use shim_abi::{
    Completion, Opcode, Request, RingHeader, SgEntry, CQ_OFFSET, DIRECT_MAP_BASE, RING_ENTRIES,
    RING_GPA, SG_ARENA_ENTRIES, SG_ARENA_GPA, SQ_OFFSET,
};

use crate::arch;
use crate::errno::Errno;

/// `user_data` of posted requests, whose completions nobody waits for.
const POSTED: u64 = u64::MAX;

pub struct Ring {
    /// Requests submitted since the last doorbell.
    pending: u32,
    /// Scatter-gather entries used since the last doorbell.
    sg_used: u64,
    next_user_data: u64,
}

fn header() -> *mut RingHeader {
    (DIRECT_MAP_BASE + RING_GPA) as *mut RingHeader
}

fn sq_slot(index: u32) -> *mut Request {
    let slot = u64::from(index % RING_ENTRIES);
    (DIRECT_MAP_BASE + RING_GPA + SQ_OFFSET + slot * 64) as *mut Request
}

fn cq_slot(index: u32) -> *const Completion {
    let slot = u64::from(index % RING_ENTRIES);
    (DIRECT_MAP_BASE + RING_GPA + CQ_OFFSET + slot * 16) as *const Completion
}

fn sg_slot(index: u64) -> *mut SgEntry {
    (DIRECT_MAP_BASE + SG_ARENA_GPA + index * 16) as *mut SgEntry
}

/// A scatter-gather list being built in the arena for one request.
pub struct SgList {
    first: u64,
    count: u32,
    capacity: u32,
    /// The next entry starts a new group (it is never merged into the previous one).
    group_start: bool,
}

impl SgList {
    /// Appends a GPA range, merging it with the previous entry when contiguous. Returns false
    /// (and appends nothing) when the list is full.
    pub fn push(&mut self, gpa: u64, len: u64) -> bool {
        if self.count > 0 && !self.group_start {
            let last = sg_slot(self.first + u64::from(self.count) - 1);
            // SAFETY: `last` is inside the arena (first + count <= SG_ARENA_ENTRIES).
            let mut entry = unsafe { read_volatile(last) };
            if entry.gpa + entry.len == gpa {
                entry.len += len;
                // SAFETY: as above.
                unsafe { write_volatile(last, entry) };
                return true;
            }
        }
        if self.count == self.capacity {
            return false;
        }
        // SAFETY: first + count < first + capacity <= SG_ARENA_ENTRIES.
        unsafe { write_volatile(sg_slot(self.first + u64::from(self.count)), SgEntry { gpa, len }) };
        self.count += 1;
        self.group_start = false;
        true
    }

    /// Ends a group of entries: the next one pushed is kept separate even if contiguous
    /// (a copy's sources and destinations are counted apart).
    pub fn end_group(&mut self) {
        self.group_start = true;
    }
}

impl Ring {
    pub const fn new() -> Self {
        Self { pending: 0, sg_used: 0, next_user_data: 0 }
    }

    /// Starts a scatter-gather list for the next request (at most `max` entries).
    pub fn sg_list(&mut self, max: u32) -> SgList {
        if self.sg_used + u64::from(max) > SG_ARENA_ENTRIES {
            self.doorbell();
        }
        let capacity = max.min(shim_abi::MAX_SG_PER_REQUEST);
        let first = self.sg_used;
        self.sg_used += u64::from(capacity);
        SgList { first, count: 0, capacity, group_start: false }
    }

    fn submit(&mut self, opcode: Opcode, args: [u64; 4], sg: Option<&SgList>, user_data: u64) {
        if self.pending == RING_ENTRIES {
            self.doorbell();
        }
        let (sg_gpa, sg_count) = match sg {
            Some(list) => (SG_ARENA_GPA + list.first * 16, list.count),
            None => (0, 0),
        };
        let request =
            Request { opcode: opcode as u32, sg_count, user_data, args, sg_gpa, _reserved: 0 };
        // SAFETY: the ring page is guest memory reserved for the ring, mapped in the direct
        // map; only this kernel writes the submission queue and `sq_tail`.
        unsafe {
            let header = header();
            let tail = read_volatile(&(*header).sq_tail);
            write_volatile(sq_slot(tail), request);
            compiler_fence(Ordering::Release);
            write_volatile(&mut (*header).sq_tail, tail.wrapping_add(1));
        }
        self.pending += 1;
    }

    /// Queues a request that needs no answer; it is sent with the next doorbell.
    pub fn post(&mut self, opcode: Opcode, args: [u64; 4], sg: Option<&SgList>) {
        self.submit(opcode, args, sg, POSTED);
    }

    /// Sends a request (and everything queued before it) and returns its result.
    pub fn call(&mut self, opcode: Opcode, args: [u64; 4], sg: Option<&SgList>) -> i64 {
        let user_data = self.next_user_data;
        self.next_user_data = (self.next_user_data + 1) % POSTED;
        self.submit(opcode, args, sg, user_data);
        self.doorbell();
        self.take_completion(user_data)
    }

    /// Like [`Ring::call`], mapping a negative result to its errno.
    pub fn call_checked(
        &mut self,
        opcode: Opcode,
        args: [u64; 4],
        sg: Option<&SgList>,
    ) -> Result<u64, Errno> {
        let result = self.call(opcode, args, sg);
        u64::try_from(result).map_err(|_| Errno::from_result(result))
    }

    fn doorbell(&mut self) {
        compiler_fence(Ordering::SeqCst);
        arch::ring_doorbell();
        compiler_fence(Ordering::SeqCst);
        self.pending = 0;
        self.sg_used = 0;
    }

    /// Consumes completions up to the one for `user_data`.
    fn take_completion(&mut self, user_data: u64) -> i64 {
        // SAFETY: the completion queue is ring memory in the direct map; the host wrote the
        // entries up to `cq_tail` before the doorbell returned.
        unsafe {
            let header = header();
            let tail = read_volatile(&(*header).cq_tail);
            let mut head = read_volatile(&(*header).cq_head);
            let mut result = -i64::from(shim_abi::errno::EIO);
            while head != tail {
                let completion = read_volatile(cq_slot(head));
                head = head.wrapping_add(1);
                if completion.user_data == user_data {
                    result = completion.result;
                }
            }
            write_volatile(&mut (*header).cq_head, head);
            result
        }
    }

}

static RING: spin::Mutex<Ring> = spin::Mutex::new(Ring::new());

/// Runs `f` with the ring. The kernel is single-threaded with interrupts off, so the lock is
/// never contended; finding it held means re-entry (a bug), reported instead of spinning.
pub fn with_ring<R>(f: impl FnOnce(&mut Ring) -> R) -> R {
    let mut ring = RING.try_lock().expect("request ring re-entered");
    f(&mut ring)
}

/// Like [`with_ring`], but gives up when the ring is in use (for log lines).
pub fn try_with_ring(f: impl FnOnce(&mut Ring)) {
    if let Some(mut ring) = RING.try_lock() {
        f(&mut ring);
    }
}

/// Tells the host where the page tables are (for `SG_USER_VIRTUAL` entries).
pub fn set_page_table_root(root: u64) {
    // SAFETY: ring header field owned by the guest, in the direct map.
    unsafe { write_volatile(&mut (*header()).page_table_root, root) };
}

/// The user address the host last reported not present.
pub fn fault_address() -> u64 {
    // SAFETY: ring header field the host writes before completing, in the direct map.
    unsafe { read_volatile(&(*header()).fault_address) }
}

/// Sets the time the VMM should resume a halted vCPU (guest monotonic ns; 0: never).
pub fn set_wake_at(monotonic_ns: u64) {
    // SAFETY: ring header field owned by the guest, in the direct map.
    unsafe { write_volatile(&mut (*header()).wake_at_ns, monotonic_ns) };
}

/// Sends a message on the panic path, where the kernel's state may be inconsistent: writes one
/// request straight into the ring without going through [`Ring`].
pub fn emergency_send(opcode: Opcode, args: [u64; 4], message: &[u8]) {
    let sg_index = SG_ARENA_ENTRIES - 1;
    let gpa = message.as_ptr() as u64 - shim_abi::KERNEL_VIRT_BASE;
    let direct = message.as_ptr() as u64 >= DIRECT_MAP_BASE
        && (message.as_ptr() as u64) < shim_abi::KERNEL_VIRT_BASE;
    let gpa = if direct { message.as_ptr() as u64 - DIRECT_MAP_BASE } else { gpa };
    // SAFETY: the last arena slot and the ring are reserved guest memory in the direct map.
    unsafe {
        write_volatile(sg_slot(sg_index), SgEntry { gpa, len: message.len() as u64 });
        let header = header();
        let tail = read_volatile(&(*header).sq_tail);
        let request = Request {
            opcode: opcode as u32,
            sg_count: u32::from(!message.is_empty()),
            user_data: POSTED,
            args,
            sg_gpa: SG_ARENA_GPA + sg_index * 16,
            _reserved: 0,
        };
        write_volatile(sq_slot(tail), request);
        write_volatile(&mut (*header).sq_tail, tail.wrapping_add(1));
    }
    arch::ring_doorbell();
}
