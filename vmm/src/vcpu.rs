//! The vCPU exit loop. The only exits a healthy guest causes are the doorbell (`out` to
//! [`DOORBELL_PORT`]) and `hlt` (sleep until the ring header's wake time). A triple fault is
//! reported with the registers; any other exit is a guest error. The `--timeout` watchdog
//! kicks the vCPU out of `KVM_RUN` with a signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use kvm_ioctls::{VcpuExit, VcpuFd};
use shim_abi::{RingHeader, DOORBELL_PORT, RING_GPA};

use crate::ring::{monotonic_ns, RingEnd, RingService};

/// How the vCPU loop ended.
#[derive(Debug)]
pub enum LoopEnd {
    Ring(RingEnd),
    TimedOut,
    Failed(String),
}

/// The signal that interrupts `KVM_RUN` and blocking host calls on the vCPU thread.
fn kick_signal() -> i32 {
    libc::SIGRTMIN()
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the (empty) kick handler once per process, without `SA_RESTART`, so that the
/// signal makes `KVM_RUN`, `read` and `poll` return `EINTR`.
fn install_kick_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Registration fails only for an invalid signal number; SIGRTMIN is valid.
        let _ = vmm_sys_util::signal::register_signal_handler(kick_signal(), on_kick);
    });
}

/// Sends the kick signal to the vCPU thread until `stop` is set, from `deadline` on. Started
/// on the vCPU thread before the run (and before any seccomp filter, since it is a thread).
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(deadline: Option<Instant>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let Some(deadline) = deadline else { return Ok(Self { stop, fired, handle: None }) };
        install_kick_handler();
        // SAFETY: pthread_self has no preconditions.
        let vcpu_thread = unsafe { libc::pthread_self() };
        let (stop_flag, fired_flag) = (stop.clone(), fired.clone());
        let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
        let handle = thread::Builder::new().name("litebox-watchdog".to_string()).spawn(move || {
            let _ = started_tx.send(());
            while !stop_flag.load(Ordering::Acquire) {
                let now = Instant::now();
                if now >= deadline {
                    fired_flag.store(true, Ordering::Release);
                    // SAFETY: the vCPU thread outlives the watchdog (it joins it on drop).
                    unsafe { libc::pthread_kill(vcpu_thread, kick_signal()) };
                    thread::sleep(Duration::from_millis(5));
                } else {
                    thread::park_timeout((deadline - now).min(Duration::from_millis(50)));
                }
            }
        })?;
        // Wait until the thread runs its own code: the C library's thread start-up (robust
        // futex list, rseq, signal stack) must be over before a seccomp filter goes on.
        let _ = started_rx.recv();
        Ok(Self { stop, fired, handle: Some(handle) })
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

/// Runs the vCPU until the program ends, the deadline passes or the guest fails.
pub fn run(vcpu: &mut VcpuFd, service: &mut RingService<'_>, watchdog: &Watchdog) -> LoopEnd {
    loop {
        if watchdog.fired() {
            return LoopEnd::TimedOut;
        }
        let exit = match vcpu.run() {
            Ok(exit) => exit,
            Err(error) if error.errno() == libc::EINTR || error.errno() == libc::EAGAIN => {
                service.stats.count_exit("interrupted");
                continue;
            }
            Err(error) => return LoopEnd::Failed(format!("KVM_RUN failed: {error}")),
        };
        match exit {
            VcpuExit::IoOut(DOORBELL_PORT, _) => {
                service.stats.count_exit("doorbell");
                match service.process() {
                    Ok(None) => {}
                    Ok(Some(end)) => return LoopEnd::Ring(end),
                    Err(message) => return LoopEnd::Failed(message),
                }
            }
            VcpuExit::Hlt => {
                service.stats.count_exit("hlt");
                if let Some(end) = sleep_until_wake(service, watchdog) {
                    return end;
                }
            }
            VcpuExit::Shutdown => {
                let registers = describe_registers(vcpu);
                return LoopEnd::Failed(format!("the guest triple-faulted ({registers})"));
            }
            VcpuExit::IoOut(port, _) => {
                return LoopEnd::Failed(format!("unexpected port write to {port:#x}"))
            }
            other => {
                let what = format!("{other:?}");
                let registers = describe_registers(vcpu);
                return LoopEnd::Failed(format!("unexpected vCPU exit {what} ({registers})"));
            }
        }
    }
}

/// The guest halted: sleep until the time it asked for, or end the run if it asked for none.
fn sleep_until_wake(service: &mut RingService<'_>, watchdog: &Watchdog) -> Option<LoopEnd> {
    let header: RingHeader = match crate::guest_memory::read(service.memory, RING_GPA) {
        Ok(header) => header,
        Err(error) => return Some(LoopEnd::Failed(error)),
    };
    if header.wake_at_ns == 0 {
        return Some(LoopEnd::Failed("the guest kernel halted for good".to_string()));
    }
    let now = monotonic_ns();
    let mut sleep = Duration::from_nanos(header.wake_at_ns.saturating_sub(now));
    if let Some(deadline) = service.deadline {
        sleep = sleep.min(deadline.saturating_duration_since(Instant::now()));
    }
    if !watchdog.fired() {
        thread::sleep(sleep);
    }
    None
}

fn describe_registers(vcpu: &VcpuFd) -> String {
    let regs = vcpu.get_regs();
    let sregs = vcpu.get_sregs();
    match (regs, sregs) {
        (Ok(r), Ok(s)) => format!(
            "rip {:#x} rsp {:#x} rflags {:#x} cs {:#x} cr2 {:#x} cr3 {:#x} rax {:#x} rdi {:#x} \
             rsi {:#x}",
            r.rip, r.rsp, r.rflags, s.cs.selector, s.cr2, s.cr3, r.rax, r.rdi, r.rsi
        ),
        _ => "registers unavailable".to_string(),
    }
}
