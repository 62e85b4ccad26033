//! The generated files of `/proc`: `/proc/meminfo`, `/proc/uptime` and
//! `/proc/self/{cmdline,environ,maps}`. They are tmpfs files created the first time a path
//! naming `/proc` is looked up (at boot each entry would cost about a millisecond of
//! interpreted ring 0, for files most programs never read), and every open, and every read
//! from the start, fills the file anew from the kernel's state, as Linux produces them when
//! read.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::errno::Errno;
use crate::fs::GeneratedFile as Generated;
use crate::fs::tmpfs::{Body, Ino, S_IFREG};
use crate::mm::kernel_gpa;
use crate::mm::space::{Vma, VmaKind};
use crate::process::{Description, FileKind, Kernel, O_WRONLY};

use super::io::{self, Pieces};

/// Creates the generated files once, if `path` (as the program spelled it) names `/proc`.
pub fn create_if_named(kernel: &mut Kernel, path: &[u8]) {
    // Once created, no path need be scanned again.
    if kernel.vfs.generated_created || !path.windows(4).any(|part| part == b"proc") {
        return;
    }
    create(kernel);
}

/// Creates the generated files, unless done already. True if this call created them.
pub fn create(kernel: &mut Kernel) -> bool {
    if kernel.vfs.generated_created {
        return false;
    }
    kernel.vfs.generated_created = true;
    let now = crate::fs::tmpfs::Time::from_ns(kernel.clock.realtime_ns());
    let proc_dir = kernel.vfs.tmpfs.mkdir_p(b"/proc", now);
    let self_dir = kernel.vfs.tmpfs.mkdir_p(b"/proc/self", now);
    let files: [(Ino, &[u8], Generated); 5] = [
        (proc_dir, b"meminfo", Generated::Meminfo),
        (proc_dir, b"uptime", Generated::Uptime),
        (self_dir, b"cmdline", Generated::Cmdline),
        (self_dir, b"environ", Generated::Environ),
        (self_dir, b"maps", Generated::Maps),
    ];
    for (dir, name, what) in files {
        let body = Body::File { pages: Vec::new(), size: 0 };
        // Root's, so the program can't chmod, truncate or write them (Linux refuses all).
        let mode = S_IFREG | 0o444;
        if let Ok(ino) = kernel.vfs.tmpfs.create(dir, name, mode, 0, body, now) {
            kernel.vfs.generated.push((ino, what));
        }
    }
    true
}

/// Refills `ino` if it is a generated file (on open, and on a read from its start).
pub fn refresh(kernel: &mut Kernel, ino: Ino) -> Result<(), Errno> {
    let Some(&(_, what)) = kernel.vfs.generated.iter().find(|(file, _)| *file == ino) else {
        return Ok(());
    };
    super::fs::truncate_tmpfs(kernel, ino, 0)?;
    let description = Description::new(FileKind::Tmpfs(ino), Vec::new(), O_WRONLY);
    // The text, for the files the kernel writes itself; it lives until the copy is done.
    let text: Vec<u8>;
    let pieces = match what {
        Generated::Cmdline | Generated::Environ => {
            // The program's own memory, as Linux reads it: what it wrote there since shows.
            let (start, end) = match what {
                Generated::Cmdline => kernel.args,
                _ => kernel.environment,
            };
            // Up to the first page it can't read, as Linux stops there too.
            let mut pieces = Pieces::new();
            let len = end.saturating_sub(start);
            if len > 0 {
                pieces.gather(kernel, start, len, false, len);
            }
            pieces
        }
        Generated::Meminfo | Generated::Uptime | Generated::Maps => {
            text = match what {
                Generated::Meminfo => meminfo(kernel),
                Generated::Uptime => uptime(kernel),
                _ => maps(kernel.space.vmas()),
            }
            .into_bytes();
            Pieces::from_list(alloc::vec![(kernel_gpa(text.as_ptr()), text.len() as u64)])
        }
    };
    if pieces.bytes > 0 {
        // Not the program's files: they don't count against (or fail at) `--tmpfs-size`.
        let limit = core::mem::replace(&mut kernel.vfs.tmpfs.limit_pages, u64::MAX);
        let written = io::write_description(kernel, &description, &pieces, Some(0));
        kernel.vfs.tmpfs.limit_pages = limit;
        written?;
    }
    Ok(())
}

/// `/proc/meminfo`: the guest's memory as the frame allocator and the tmpfs see it.
fn meminfo(kernel: &Kernel) -> String {
    let kib = |pages: u64| pages * (shim_abi::PAGE_SIZE / 1024);
    let free = kib(kernel.frames.available());
    let tmpfs = kib(kernel.vfs.tmpfs.used_pages);
    let rows = [
        // What the kernel can hand out: guest memory less the kernel and the VMM's setup.
        ("MemTotal", kib(kernel.frames.total())),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", tmpfs),
        ("SwapCached", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Shmem", tmpfs),
    ];
    let mut text = String::new();
    for (name, value) in rows {
        let _ = writeln!(text, "{:<16}{value:>8} kB", alloc::format!("{name}:"));
    }
    text
}

/// `/proc/uptime`: seconds since boot, and (one vCPU, never idle while this runs) 0 idle.
fn uptime(kernel: &Kernel) -> String {
    let centiseconds = kernel.clock.uptime_ns() / 10_000_000;
    alloc::format!("{}.{:02} 0.00\n", centiseconds / 100, centiseconds % 100)
}

/// `/proc/self/maps`: one line per mapping, named as Linux names the stack, heap and vDSO.
fn maps(vmas: &[Vma]) -> String {
    let mut text = String::new();
    for vma in vmas {
        let flag = |bit: u32, letter: char| if vma.prot & bit != 0 { letter } else { '-' };
        let line_start = text.len();
        let _ = write!(
            text,
            "{:08x}-{:08x} {}{}{}{} 00000000 00:00 0",
            vma.start,
            vma.end,
            flag(1, 'r'),
            flag(2, 'w'),
            flag(4, 'x'),
            if vma.shared { 's' } else { 'p' },
        );
        let name = match vma.kind {
            VmaKind::Stack => "[stack]",
            VmaKind::Heap => "[heap]",
            VmaKind::Vdso if vma.prot & 4 != 0 => "[vdso]",
            VmaKind::Vdso => "[vvar]",
            VmaKind::Anonymous => "",
        };
        if !name.is_empty() {
            // Linux pads the name to column 73.
            while text.len() - line_start < 73 {
                text.push(' ');
            }
            text.push_str(name);
        }
        text.push('\n');
    }
    text
}
