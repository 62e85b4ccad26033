//! Time: the TSC, scaled by the frequency the VMM reads from `KVM_GET_TSC_KHZ`, anchored to the
//! host's clocks by one `ReadClock` request at boot. The same parameters are published in the
//! vDSO's data page, so programs read the clock in ring 3 with no exit at all.

use shim_abi::{ClockReading, Opcode, VvarPage};

use crate::arch;
use crate::mm::phys_to_virt;
use crate::ring;

pub const NSEC_PER_SEC: u64 = 1_000_000_000;

pub struct Clock {
    params: VvarPage,
}

impl Clock {
    /// Reads the host's clocks once and derives the TSC → nanoseconds mapping.
    pub fn calibrate(tsc_khz: u64, scratch_gpa: u64) -> Self {
        let before = arch::rdtsc();
        ring::with_ring(|ring| ring.call(Opcode::ReadClock, [scratch_gpa, 0, 0, 0], None));
        let after = arch::rdtsc();
        // SAFETY: scratch_gpa is a kernel-owned frame the host just filled with a ClockReading.
        let reading = unsafe { phys_to_virt(scratch_gpa).cast::<ClockReading>().read_volatile() };
        let params = VvarPage {
            sequence: 0,
            _reserved: 0,
            tsc_base: before + (after - before) / 2,
            ns_per_tsc_mult: VvarPage::mult_for_tsc_khz(tsc_khz),
            monotonic_base_ns: reading.monotonic_ns,
            realtime_base_ns: reading.realtime_ns,
        };
        Self { params }
    }

    /// Writes the parameters into the vvar page the program's vDSO reads.
    pub fn publish(&self, vvar_gpa: u64) {
        let page = phys_to_virt(vvar_gpa).cast::<VvarPage>();
        // SAFETY: the vvar frame belongs to the kernel (mapped read-only for the program).
        unsafe { page.write_volatile(self.params) };
    }

    pub fn tsc_base(&self) -> u64 {
        self.params.tsc_base
    }

    pub fn monotonic_ns(&self) -> u64 {
        self.params.monotonic_base_ns + self.params.ns_since_base(arch::rdtsc())
    }

    pub fn realtime_ns(&self) -> u64 {
        self.params.realtime_base_ns + self.params.ns_since_base(arch::rdtsc())
    }

    /// Nanoseconds since the kernel booted (for `sysinfo`'s uptime).
    pub fn uptime_ns(&self) -> u64 {
        self.params.ns_since_base(arch::rdtsc())
    }

    /// Halts until the monotonic clock reaches `deadline_ns`; the VMM sleeps meanwhile.
    pub fn sleep_until(&self, deadline_ns: u64) {
        while self.monotonic_ns() < deadline_ns {
            ring::set_wake_at(deadline_ns);
            arch::halt();
        }
        ring::set_wake_at(0);
    }
}
