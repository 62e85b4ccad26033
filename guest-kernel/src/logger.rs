//! `log` for the guest: each record is formatted into a kernel buffer and sent on the ring
//! (`Opcode::Log`); the VMM prints it with a `guest:` prefix. Each line costs one exit: the
//! buffer is reused by the next record, so the host must have read it before that (a posted
//! line would go out with the next doorbell, by when later records had overwritten it). Logs
//! are rare (each unsupported syscall once, or debug levels). Also the panic handler, which
//! reports through the ring.

use core::fmt::Write;

use shim_abi::{Opcode, KERNEL_VIRT_BASE};

use crate::{arch, ring};

const LINE_BYTES: usize = 512;

/// A fixed buffer that truncates instead of failing.
struct LineBuffer {
    bytes: [u8; LINE_BYTES],
    len: usize,
}

impl Write for LineBuffer {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        let room = LINE_BYTES - self.len;
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

struct RingLogger;

static LOGGER: RingLogger = RingLogger;
static LOG_LINE: spin::Mutex<LineBuffer> =
    spin::Mutex::new(LineBuffer { bytes: [0; LINE_BYTES], len: 0 });

impl log::Log for RingLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Some(mut line) = LOG_LINE.try_lock() else { return };
        line.len = 0;
        let _ = write!(line, "{}", record.args());
        let len = line.len;
        ring::try_with_ring(|ring| {
            let mut sg = ring.sg_list(1);
            sg.push(line.bytes.as_ptr() as u64 - KERNEL_VIRT_BASE, len as u64);
            ring.call(Opcode::Log, [record.level() as u64, 0, 0, 0], Some(&sg));
        });
    }

    fn flush(&self) {}
}

/// Installs the logger with the level the VMM asked for in the boot info.
pub fn init(level: u32) {
    let filter = match level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter);
}

static PANIC_LINE: spin::Mutex<LineBuffer> =
    spin::Mutex::new(LineBuffer { bytes: [0; LINE_BYTES], len: 0 });

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // A panic inside the panic path must not recurse into a held lock: report without text.
    if let Some(mut line) = PANIC_LINE.try_lock() {
        line.len = 0;
        let _ = write!(line, "{}", info);
        let len = line.len;
        ring::emergency_send(Opcode::Panic, [0; 4], &line.bytes[..len]);
    } else {
        ring::emergency_send(Opcode::Panic, [0; 4], b"panic while panicking");
    }
    loop {
        ring::set_wake_at(0);
        arch::halt();
    }
}
