//! `cargo xtask images`: builds the test programs of `images/` into `<workspace>/target/images/`,
//! where the integration tests look for them. C programs are built with musl-gcc (one with
//! glibc's gcc), the Rust demo with cargo for `x86_64-unknown-linux-musl`. A program is rebuilt
//! only when one of its sources is newer than it, and every result is checked to be the kind of
//! ELF it is meant to be (static, static-pie) before it replaces the old one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, ensure, Context, Result};

use crate::elf::{self, ET_DYN, ET_EXEC};
use crate::{cargo, describe, run_checked};

#[derive(Clone, Copy)]
enum Toolchain {
    /// `musl-gcc -static`.
    MuslStatic,
    /// `musl-gcc -static-pie`, with the start files Debian's musl-gcc.specs leaves out.
    MuslStaticPie,
    /// glibc's `gcc -static`.
    GlibcStatic,
}

/// One C test program: its output name, its source in `images/c/`, and how it is built.
struct CImage {
    name: &'static str,
    source: &'static str,
    toolchain: Toolchain,
}

const C_IMAGES: &[CImage] = &[
    c("hello-musl", "hello.c", Toolchain::MuslStatic),
    c("hello-musl-pie", "hello.c", Toolchain::MuslStaticPie),
    c("args-env-glibc", "args-env.c", Toolchain::GlibcStatic),
    c("args-env-musl", "args-env.c", Toolchain::MuslStatic),
    c("null-deref", "null-deref.c", Toolchain::MuslStatic),
    c("ud2", "ud2.c", Toolchain::MuslStatic),
    c("div-zero", "div-zero.c", Toolchain::MuslStatic),
    c("int3", "int3.c", Toolchain::MuslStatic),
    c("spin", "spin.c", Toolchain::MuslStatic),
    c("wild-pointers", "wild-pointers.c", Toolchain::MuslStatic),
    c("clock-musl", "clock.c", Toolchain::MuslStatic),
    c("clock-glibc", "clock.c", Toolchain::GlibcStatic),
    c("syscalls", "syscalls.c", Toolchain::MuslStatic),
    c("fs-syscalls", "fs-syscalls.c", Toolchain::MuslStatic),
    c("abuse", "abuse.c", Toolchain::MuslStatic),
    c("eat-memory", "eat-memory.c", Toolchain::MuslStatic),
    c("unsupported", "unsupported.c", Toolchain::MuslStatic),
    c("tmpfs-sparse", "tmpfs-sparse.c", Toolchain::MuslStatic),
    c("raise-musl", "raise.c", Toolchain::MuslStatic),
    c("raise-glibc", "raise.c", Toolchain::GlibcStatic),
    c("writev-many", "writev-many.c", Toolchain::MuslStatic),
    c("mmap-merge", "mmap-merge.c", Toolchain::MuslStatic),
    c("select-musl", "select.c", Toolchain::MuslStatic),
    c("select-glibc", "select.c", Toolchain::GlibcStatic),
    c("reserve", "reserve.c", Toolchain::MuslStatic),
    c("reused-pages", "reused-pages.c", Toolchain::MuslStatic),
    c("bench-syscalls", "bench-syscalls.c", Toolchain::MuslStatic),
    c("hello-big", "hello-big.c", Toolchain::MuslStatic),
    c("peak-rss", "peak-rss.c", Toolchain::MuslStatic),
    c("open-many", "open-many.c", Toolchain::MuslStatic),
    c("slashes-musl", "slashes.c", Toolchain::MuslStatic),
    c("dotdot-musl", "dotdot.c", Toolchain::MuslStatic),
    c("transfers-musl", "transfers.c", Toolchain::MuslStatic),
    c("transfers-glibc", "transfers.c", Toolchain::GlibcStatic),
];

const fn c(name: &'static str, source: &'static str, toolchain: Toolchain) -> CImage {
    CImage {
        name,
        source,
        toolchain,
    }
}

/// Reference outputs the tests compare with, copied next to the images.
const EXPECTED_FILES: &[&str] =
    &["wild-pointers.expected", "abuse.expected", "abuse-fatal.expected"];

/// Where musl's own start files may live (Debian's musl-dev, then musl's default prefix).
const MUSL_LIB_DIRS: &[&str] = &["/usr/lib/x86_64-linux-musl", "/usr/lib/musl/lib"];

pub fn build_all(root: &Path) -> Result<()> {
    let sources = root.join("images");
    let out_dir = root.join("target/images");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("can't create {}", out_dir.display()))?;

    let mut built = Vec::new();
    for image in C_IMAGES {
        let source = sources.join("c").join(image.source);
        let output = out_dir.join(image.name);
        if !up_to_date(&output, std::slice::from_ref(&source))? {
            build_c(image, &source, &output)?;
            built.push(image.name);
        }
    }

    for name in EXPECTED_FILES {
        let source = sources.join("c").join(name);
        let output = out_dir.join(name);
        if !up_to_date(&output, std::slice::from_ref(&source))? {
            std::fs::copy(&source, &output).with_context(|| {
                format!("can't copy {} to {}", source.display(), output.display())
            })?;
            built.push(name);
        }
    }

    if build_rust_demo(root, &out_dir)? {
        built.push("rust-demo");
    }

    if !built.is_empty() {
        eprintln!(
            "xtask images: built {} in {}",
            built.join(" "),
            out_dir.display()
        );
    }
    Ok(())
}

/// Compiles to a temporary file, checks it, then moves it into place, so a failed build never
/// leaves a half-written or wrong image behind that looks up to date.
fn build_c(image: &CImage, source: &Path, output: &Path) -> Result<()> {
    let temporary = output.with_extension("tmp");
    let mut command = match image.toolchain {
        Toolchain::MuslStatic => {
            let mut command = Command::new("musl-gcc");
            command.args(["-static", "-O2", "-Wall", "-Wextra"]);
            command.arg("-o").arg(&temporary).arg(source);
            command
        }
        Toolchain::GlibcStatic => {
            let mut command = Command::new("gcc");
            command.args(["-static", "-O2", "-Wall", "-Wextra"]);
            command.arg("-o").arg(&temporary).arg(source);
            command
        }
        Toolchain::MuslStaticPie => static_pie_command(source, &temporary)?,
    };
    run_checked(&mut command).with_context(|| format!("building {}", image.name))?;

    let summary = elf::inspect(&temporary)?;
    ensure!(
        !summary.has_interp,
        "{} came out dynamic (it has a PT_INTERP)",
        image.name
    );
    let wanted = match image.toolchain {
        Toolchain::MuslStaticPie => ET_DYN,
        Toolchain::MuslStatic | Toolchain::GlibcStatic => ET_EXEC,
    };
    ensure!(
        summary.file_type == wanted,
        "{} has ELF type {}, not {wanted}",
        image.name,
        summary.file_type
    );

    std::fs::rename(&temporary, output)
        .with_context(|| format!("can't move {} into place", temporary.display()))
}

/// Debian's musl-gcc.specs ignores `-static-pie`: it would link musl's dynamic `Scrt1.o` with
/// an interpreter. So name musl's self-relocating `rcrt1.o` and the other start files ourselves
/// and tell the linker what gcc's own specs would: static, PIE, no dynamic linker.
fn static_pie_command(source: &Path, output: &Path) -> Result<Command> {
    let Some(musl) = MUSL_LIB_DIRS
        .iter()
        .map(Path::new)
        .find(|d| d.join("rcrt1.o").exists())
    else {
        bail!(
            "musl's rcrt1.o is in none of {}: install musl-dev",
            MUSL_LIB_DIRS.join(" ")
        );
    };
    let crtbegin = gcc_file("crtbeginS.o")?;
    let crtend = gcc_file("crtendS.o")?;

    let mut command = Command::new("musl-gcc");
    command.args([
        "-static-pie",
        "-fPIE",
        "-O2",
        "-Wall",
        "-Wextra",
        "-nostartfiles",
    ]);
    command.args([
        "-Wl,-static",
        "-Wl,-pie",
        "-Wl,--no-dynamic-linker",
        "-Wl,-z,text",
    ]);
    command.arg("-o").arg(output);
    command
        .arg(musl.join("rcrt1.o"))
        .arg(musl.join("crti.o"))
        .arg(crtbegin);
    command.arg(source);
    command.arg(crtend).arg(musl.join("crtn.o"));
    Ok(command)
}

/// The path of one of gcc's own support files (`crtbeginS.o`, …).
fn gcc_file(name: &str) -> Result<PathBuf> {
    let mut command = Command::new("musl-gcc");
    command.arg(format!("-print-file-name={name}"));
    let output = command
        .output()
        .with_context(|| format!("can't start {}", describe(&command)))?;
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    ensure!(
        output.status.success() && path.is_absolute() && path.exists(),
        "gcc has no {name} (asked {})",
        describe(&command)
    );
    Ok(path)
}

/// Builds the Rust demo when any file of its package is newer than the image; true if built.
fn build_rust_demo(root: &Path, out_dir: &Path) -> Result<bool> {
    let package = root.join("images/rust-demo");
    let output = out_dir.join("rust-demo");
    let mut sources = Vec::new();
    collect_files(&package, &mut sources)?;
    if up_to_date(&output, &sources)? {
        return Ok(false);
    }

    let target_dir = root.join("target/images-rust");
    let mut command = cargo(root);
    command.args([
        "build",
        "--release",
        "--target",
        "x86_64-unknown-linux-musl",
    ]);
    command
        .arg("--manifest-path")
        .arg(package.join("Cargo.toml"));
    command.arg("--target-dir").arg(&target_dir);
    run_checked(&mut command).context("building rust-demo")?;

    let built = target_dir.join("x86_64-unknown-linux-musl/release/rust-demo");
    let summary = elf::inspect(&built)?;
    ensure!(
        !summary.has_interp,
        "rust-demo came out dynamic (it has a PT_INTERP)"
    );
    let temporary = output.with_extension("tmp");
    std::fs::copy(&built, &temporary)
        .with_context(|| format!("can't copy {} to {}", built.display(), temporary.display()))?;
    std::fs::rename(&temporary, &output)
        .with_context(|| format!("can't move {} into place", temporary.display()))?;
    Ok(true)
}

/// Every file under `dir`, skipping cargo's `target/`.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("can't list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("can't list {}", dir.display()))?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if entry.file_name() != "target" {
                collect_files(&path, files)?;
            }
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Whether `output` exists and no source is newer than it. A missing source is an error: the
/// image can't be built either.
fn up_to_date(output: &Path, sources: &[PathBuf]) -> Result<bool> {
    let Ok(built) = std::fs::metadata(output).and_then(|m| m.modified()) else {
        return Ok(false);
    };
    let mut newest = SystemTime::UNIX_EPOCH;
    for source in sources {
        let modified = std::fs::metadata(source)
            .and_then(|m| m.modified())
            .with_context(|| format!("can't read the source {}", source.display()))?;
        newest = newest.max(modified);
    }
    Ok(newest <= built)
}
