//! Run statistics: exits by kind, ring requests and bytes (counted by the host), syscalls by
//! name and page faults (counted by the guest kernel, read back after the run), and the time
//! from VMM start to the program's first instruction and to its exit.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use shim_abi::syscall_names::syscall_name;
use shim_abi::GuestStats;

#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// vCPU exits by kind ("doorbell", "hlt", ...).
    pub exits: BTreeMap<&'static str, u64>,
    /// Ring requests by opcode.
    pub requests: BTreeMap<&'static str, u64>,
    /// Bytes moved by read/write/random requests.
    pub ring_bytes: u64,
    /// Syscalls by name (numbers Linux has no name for are shown as numbers).
    pub syscalls: BTreeMap<String, u64>,
    /// Page faults the guest kernel resolved.
    pub page_faults: u64,
    /// Time from sandbox start to the VM's creation being done (KVM, memory, loading).
    pub setup: Duration,
    /// Time from sandbox start to the program's first instruction.
    pub to_first_instruction: Option<Duration>,
    /// Time from sandbox start to the program's end.
    pub to_exit: Duration,
}

impl Stats {
    pub(crate) fn count_exit(&mut self, kind: &'static str) {
        *self.exits.entry(kind).or_default() += 1;
    }

    pub(crate) fn count_request(&mut self, opcode: &'static str) {
        *self.requests.entry(opcode).or_default() += 1;
    }

    /// Takes the guest kernel's counters.
    pub(crate) fn absorb_guest(&mut self, guest: &GuestStats) {
        self.page_faults = guest.page_faults;
        for (number, &count) in guest.syscalls.iter().enumerate() {
            if count > 0 {
                let name = syscall_name(number as u64)
                    .map_or_else(|| format!("#{number}"), str::to_string);
                self.syscalls.insert(name, count);
            }
        }
        if guest.other_syscalls > 0 {
            self.syscalls.insert("(out of range)".to_string(), guest.other_syscalls);
        }
    }

    pub fn total_exits(&self) -> u64 {
        self.exits.values().sum()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |map: Vec<(String, u64)>| {
            map.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        };
        writeln!(f, "litebox-vmm stats:")?;
        writeln!(f, "  setup (KVM, memory, loading): {:.3} ms", ms(self.setup))?;
        match self.to_first_instruction {
            Some(time) => writeln!(f, "  start to first instruction: {:.3} ms", ms(time))?,
            None => writeln!(f, "  start to first instruction: not reached")?,
        }
        writeln!(f, "  start to exit: {:.3} ms", ms(self.to_exit))?;
        let exits = self.exits.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        writeln!(f, "  exits: {} ({})", self.total_exits(), list(exits))?;
        let requests: Vec<(String, u64)> =
            self.requests.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let total: u64 = requests.iter().map(|(_, v)| v).sum();
        writeln!(f, "  ring requests: {total} ({}), {} bytes", list(requests), self.ring_bytes)?;
        let mut syscalls: Vec<(String, u64)> =
            self.syscalls.iter().map(|(k, v)| (k.clone(), *v)).collect();
        syscalls.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: u64 = syscalls.iter().map(|(_, v)| v).sum();
        writeln!(f, "  syscalls: {total} ({})", list(syscalls))?;
        write!(f, "  page faults: {}", self.page_faults)
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
