//! The vCPU exit loop. The only exits a healthy guest causes are the doorbell (`out` to
//! [`DOORBELL_PORT`]) and `hlt` (sleep until the ring header's wake time). A triple fault is
//! reported with the registers; any other exit is a guest error. The watchdog (`--timeout`,
//! `--cpu-time`) kicks the vCPU out of `KVM_RUN` with a signal; the run also ends at the
//! doorbell where the program passed `--max-output`.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
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
    /// The watchdog stopped the run at a limit.
    Expired(Expired),
    /// The program reached the output limit; it asked to write this many more bytes.
    OutputLimit(u64),
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

/// Which limit the watchdog enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// The wall-clock deadline (`--timeout`).
    Wall,
    /// The vCPU thread's CPU time (`--cpu-time`).
    CpuTime,
}

/// Watches the run's limits from a thread of its own and, once one is passed, records which
/// and kicks the vCPU thread out of `KVM_RUN` (again every few ms until the run stops). It is
/// started on the vCPU thread before the run, and before any seccomp filter, since it is a
/// thread.
///
/// CPU time is the vCPU thread's own (`pthread_getcpuclockid`): guest execution inside
/// `KVM_RUN` and the VMM's work on the guest's requests, but not the time the guest sleeps.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    expired: Arc<AtomicU8>,
    handle: Option<thread::JoinHandle<()>>,
}

const NOT_EXPIRED: u8 = 0;

impl Watchdog {
    pub fn start(deadline: Option<Instant>, cpu_limit: Option<Duration>) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let expired = Arc::new(AtomicU8::new(NOT_EXPIRED));
        if deadline.is_none() && cpu_limit.is_none() {
            return Ok(Self { stop, expired, handle: None });
        }
        install_kick_handler();
        // SAFETY: pthread_self has no preconditions.
        let vcpu_thread = unsafe { libc::pthread_self() };
        let cpu_clock = match cpu_limit {
            Some(limit) => Some((thread_cpu_clock(vcpu_thread)?, limit)),
            None => None,
        };

        let (stop_flag, expired_flag) = (stop.clone(), expired.clone());
        let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
        let watch = move || {
            let _ = started_tx.send(());
            while !stop_flag.load(Ordering::Acquire) {
                let now = Instant::now();
                let wall_left = deadline.map(|at| at.saturating_duration_since(now));
                let cpu_left =
                    cpu_clock.map(|(clock, limit)| limit.saturating_sub(cpu_time(clock)));
                let which = match (wall_left, cpu_left) {
                    (Some(Duration::ZERO), _) => Some(Expired::Wall),
                    (_, Some(Duration::ZERO)) => Some(Expired::CpuTime),
                    _ => None,
                };
                if let Some(which) = which {
                    let _ = expired_flag.compare_exchange(
                        NOT_EXPIRED,
                        which as u8 + 1,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    // SAFETY: the vCPU thread outlives the watchdog (it joins it on drop).
                    unsafe { libc::pthread_kill(vcpu_thread, kick_signal()) };
                    thread::sleep(Duration::from_millis(5));
                } else {
                    // CPU time can't pass faster than wall time, so waking when either limit
                    // could be reached is enough.
                    let wait = [wall_left, cpu_left, Some(Duration::from_millis(50))];
                    thread::park_timeout(wait.into_iter().flatten().min().unwrap_or_default());
                }
            }
        };
        let handle = thread::Builder::new().name("litebox-watchdog".to_string()).spawn(watch)?;
        // Wait until the thread runs its own code: the C library's thread start-up (robust
        // futex list, rseq, signal stack) must be over before a seccomp filter goes on.
        let _ = started_rx.recv();
        Ok(Self { stop, expired, handle: Some(handle) })
    }

    /// The limit that was passed, if any.
    pub fn expired(&self) -> Option<Expired> {
        match self.expired.load(Ordering::Acquire) {
            1 => Some(Expired::Wall),
            2 => Some(Expired::CpuTime),
            _ => None,
        }
    }
}

/// The CPU-time clock of `thread`.
fn thread_cpu_clock(thread: libc::pthread_t) -> io::Result<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `thread` is a live thread (the caller itself); `clock` is a valid out-pointer.
    let result = unsafe { libc::pthread_getcpuclockid(thread, &mut clock) };
    if result == 0 {
        Ok(clock)
    } else {
        Err(io::Error::from_raw_os_error(result))
    }
}

/// CPU time used so far on `clock`.
fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid out-pointer; a thread CPU clock is readable from any thread of
    // the process while that thread lives (the vCPU thread joins the watchdog before ending).
    unsafe { libc::clock_gettime(clock, &mut now) };
    Duration::new(now.tv_sec.try_into().unwrap_or(0), now.tv_nsec.try_into().unwrap_or(0))
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
        if let Some(expired) = watchdog.expired() {
            return LoopEnd::Expired(expired);
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
                let processed = service.process();
                if let Some(refused) = service.stdio.output_refused() {
                    return LoopEnd::OutputLimit(refused);
                }
                match processed {
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
    if watchdog.expired().is_none() {
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
