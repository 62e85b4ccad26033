//! `cargo xtask setup`: makes sure the host has what building the images and running the tests
//! needs, installing the missing Debian packages with apt-get. When everything is already
//! present it runs no apt at all, so calling it before every test run costs milliseconds.
//! It also asks rustup for the two targets the project builds for.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::{describe, elf, run_checked};

/// A Debian package and how to tell it is installed without asking dpkg.
struct Requirement {
    package: &'static str,
    present: fn() -> bool,
}

/// What building the images and running the tests needs.
const BASE: &[Requirement] = &[
    Requirement {
        package: "musl-tools",
        present: || which("musl-gcc"),
    },
    Requirement {
        package: "busybox-static",
        present: static_busybox,
    },
    Requirement {
        package: "gcc",
        present: || which("gcc"),
    },
    Requirement {
        package: "binutils",
        present: || which("ld") && which("readelf") && which("objdump"),
    },
    // `gcc -static` (the glibc test image) needs glibc's static archive.
    Requirement {
        package: "libc6-dev",
        present: || Path::new("/usr/lib/x86_64-linux-gnu/libc.a").exists(),
    },
];

/// What the benchmarks compare against.
const BENCH: &[Requirement] = &[
    Requirement {
        package: "bubblewrap",
        present: || which("bwrap"),
    },
    Requirement {
        package: "qemu-user",
        present: || which("qemu-x86_64"),
    },
    Requirement {
        package: "hyperfine",
        present: || which("hyperfine"),
    },
    // The benchmark chart's text.
    Requirement {
        package: "fonts-dejavu-core",
        present: || Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists(),
    },
];

pub fn run(root: &Path, bench: bool) -> Result<()> {
    let wanted = BASE.iter().chain(if bench { BENCH } else { &[] });
    let missing: Vec<&str> = wanted
        .filter(|r| !(r.present)())
        .map(|r| r.package)
        .collect();
    if !missing.is_empty() {
        install(&missing)?;
        let wanted = BASE.iter().chain(if bench { BENCH } else { &[] });
        let still: Vec<&str> = wanted
            .filter(|r| !(r.present)())
            .map(|r| r.package)
            .collect();
        if !still.is_empty() {
            bail!(
                "installed, but still missing what these give: {}",
                still.join(" ")
            );
        }
    }

    rust_targets(root)
}

/// `apt-get update` once, then one `apt-get install -y` of everything missing.
fn install(packages: &[&str]) -> Result<()> {
    let sudo = if is_root() {
        false
    } else if which("sudo") {
        true
    } else {
        bail!(
            "setup needs root to install {}: run as root or install them yourself",
            packages.join(" ")
        );
    };
    eprintln!("xtask setup: installing {}", packages.join(" "));

    let apt = |args: &[&str]| {
        let mut command = if sudo {
            let mut command = Command::new("sudo");
            command.arg("apt-get");
            command
        } else {
            Command::new("apt-get")
        };
        command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        command
    };
    run_checked(&mut apt(&["update"]))?;
    let mut install = apt(&["install", "-y"]);
    install.args(packages);
    run_checked(&mut install)
}

/// The targets come from rust-toolchain.toml too; asking again is cheap and covers a toolchain
/// installed before the file named them.
fn rust_targets(root: &Path) -> Result<()> {
    if !which("rustup") {
        return Ok(());
    }
    let mut command = Command::new("rustup");
    command
        .args([
            "target",
            "add",
            "x86_64-unknown-none",
            "x86_64-unknown-linux-musl",
        ])
        .current_dir(root)
        .stdin(Stdio::null());
    let output = command
        .output()
        .with_context(|| format!("can't start {}", describe(&command)))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            describe(&command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Debian's `busybox` package is dynamic and lives in the same place: the tests need the static
/// one, which they run inside the sandbox.
fn static_busybox() -> bool {
    elf::inspect(Path::new("/bin/busybox")).is_ok_and(|summary| !summary.has_interp)
}

fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether an executable called `name` is on `PATH`.
pub fn which(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;

    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}
