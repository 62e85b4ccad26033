//! Builds the guest program's vDSO (`linux-vdso.so.1`) for `vmm/build.rs`, which includes this
//! file with `#[path = "build/vdso.rs"] mod vdso;` and embeds the result.
//!
//! The target the guest code is built for, `x86_64-unknown-none`, cannot produce a cdylib, so
//! this is two steps: a nested `cargo build` of the `guest-kernel/vdso` crate (a position
//! independent `staticlib` in a workspace of its own, with its own target directory so the
//! outer cargo's lock is never waited on) and a link of that archive with the toolchain's
//! `rust-lld` into a shared object, using the crate's linker script (`vdso.ld`) and version
//! script (`vdso.ver`). The result is then checked: one read+execute `PT_LOAD` at address and
//! file offset 0 plus a `PT_DYNAMIC`, both symbol hash tables, and no dynamic relocation of any
//! kind, because the guest kernel maps it at an arbitrary page-aligned address and nobody
//! relocates it. Every failure panics with a message that says what to do.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The guest code's target.
const TARGET: &str = "x86_64-unknown-none";
/// Rust flags of the nested build (cargo's `CARGO_ENCODED_RUSTFLAGS`, one flag per field).
/// Small code model: the vDSO runs in the lower half, unlike the target's kernel default.
const RUSTFLAGS: [&str; 2] = ["-Crelocation-model=pic", "-Ccode-model=small"];
/// The functions the vDSO exports (each also under its libc name, as a weak alias).
const EXPORTS: [&str; 5] = [
    "__vdso_clock_gettime",
    "__vdso_gettimeofday",
    "__vdso_time",
    "__vdso_getcpu",
    "__vdso_clock_getres",
];

/// Variables an outer cargo sets for a build script, or a user for the outer build, that must
/// not leak into the nested build.
const LEAKING_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "RUSTC_LINKER",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_CRATE_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
];
/// Prefixes of such variables.
const LEAKING_PREFIXES: &[&str] = &[
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_PROFILE_",
];

/// Builds `guest-kernel/vdso` and links it into `<out_dir>/vdso.so`; returns that path.
///
/// Also tells cargo to rerun the build script when the vDSO's sources or `shim-abi` change.
/// The caller hands the path to the crate (`cargo:rustc-env=LITEBOX_VDSO_PATH=...`), which
/// `vmm/tests/vdso_elf.rs` relies on.
pub fn build_vdso(workspace_root: &Path, out_dir: &Path) -> PathBuf {
    let crate_dir = workspace_root.join("guest-kernel").join("vdso");
    let shim_abi = workspace_root.join("shim-abi");
    for input in [
        crate_dir.join("src"),
        crate_dir.join("Cargo.toml"),
        crate_dir.join("Cargo.lock"),
        crate_dir.join("vdso.ld"),
        crate_dir.join("vdso.ver"),
        shim_abi.join("src"),
        shim_abi.join("Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", input.display());
    }

    let target_dir = workspace_root.join("target").join("guest-vdso");
    let archive = cargo_build(&crate_dir, &target_dir);
    let so = out_dir.join("vdso.so");
    link(&crate_dir, &archive, &so);
    let bytes = std::fs::read(&so)
        .unwrap_or_else(|err| panic!("vDSO: cannot read {} after linking: {err}", so.display()));
    if let Err(problem) = check_shared_object(&bytes) {
        panic!(
            "vDSO: {} is not loadable without relocation: {problem}; fix guest-kernel/vdso \
             (its code or vdso.ld) so that it is",
            so.display()
        );
    }
    so
}

/// Runs the nested `cargo build`; returns the path of the static library it produced.
fn cargo_build(crate_dir: &Path, target_dir: &Path) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let manifest = crate_dir.join("Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(crate_dir)
        // Our stdout is read by cargo as build-script directives; keep the child off it.
        .stdout(Stdio::from(std::io::stderr()));
    for (key, _) in env::vars_os() {
        let Some(name) = key.to_str() else { continue };
        if LEAKING_VARS.contains(&name) || LEAKING_PREFIXES.iter().any(|p| name.starts_with(p)) {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.join("\u{1f}"));

    let status = cmd.status().unwrap_or_else(|err| {
        panic!(
            "vDSO: cannot run {} to build the vDSO: {err}",
            cargo.to_string_lossy()
        )
    });
    if !status.success() {
        panic!(
            "vDSO: `cargo build --release --target {TARGET} --manifest-path {}` failed \
             ({status}); its errors are above. The target must be installed: \
             `rustup target add {TARGET}`",
            manifest.display()
        );
    }
    let archive = target_dir
        .join(TARGET)
        .join("release")
        .join("liblitebox_vdso.a");
    if !archive.is_file() {
        panic!(
            "vDSO: the nested build succeeded but left no {}",
            archive.display()
        );
    }
    archive
}

/// Links the archive into the shared object `so` with the toolchain's `rust-lld`.
fn link(crate_dir: &Path, archive: &Path, so: &Path) {
    let lld = rust_lld();
    let mut cmd = Command::new(&lld);
    cmd.args([
        "-flavor",
        "gnu",
        "-shared",
        "--hash-style=both",
        "-soname",
        "linux-vdso.so.1",
    ])
    .arg("--version-script")
    .arg(crate_dir.join("vdso.ver"))
    .arg("-T")
    .arg(crate_dir.join("vdso.ld"))
    .args([
        "--gc-sections",
        "-Bsymbolic",
        "--no-undefined",
        "--build-id=none",
    ])
    .args([
        "-z",
        "noexecstack",
        "-z",
        "max-page-size=4096",
        "-z",
        "common-page-size=4096",
    ])
    .arg("--strip-all");
    for export in EXPORTS {
        // Pull the exported functions out of the archive; nothing else references them.
        cmd.arg("--undefined").arg(export);
    }
    cmd.arg("-o")
        .arg(so)
        .arg(archive)
        .stdout(Stdio::from(std::io::stderr()));
    let status = cmd
        .status()
        .unwrap_or_else(|err| panic!("vDSO: cannot run the linker {}: {err}", lld.display()));
    if !status.success() {
        panic!(
            "vDSO: linking {} into {} with {} failed ({status}); its errors are above",
            archive.display(),
            so.display(),
            lld.display()
        );
    }
}

/// The toolchain's `rust-lld`: `<sysroot>/lib/rustlib/<host>/bin/rust-lld`.
fn rust_lld() -> PathBuf {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let ask = |args: &[&str]| -> String {
        let output = Command::new(&rustc)
            .args(args)
            .output()
            .unwrap_or_else(|err| {
                panic!(
                    "vDSO: cannot run {} {args:?}: {err}",
                    rustc.to_string_lossy()
                )
            });
        if !output.status.success() {
            panic!(
                "vDSO: {} {args:?} failed ({})",
                rustc.to_string_lossy(),
                output.status
            );
        }
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let sysroot = ask(&["--print", "sysroot"]).trim().to_owned();
    let host = match env::var("HOST") {
        Ok(host) => host,
        Err(_) => ask(&["-vV"])
            .lines()
            .find_map(|line| line.strip_prefix("host: "))
            .map(|host| host.trim().to_owned())
            .unwrap_or_else(|| panic!("vDSO: `rustc -vV` names no host triple")),
    };
    let lld = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(&host)
        .join("bin/rust-lld");
    if !lld.is_file() {
        panic!(
            "vDSO: no linker at {}; the vDSO is linked with the rust-lld that ships with the \
             Rust toolchain (reinstall the toolchain, e.g. `rustup toolchain install stable`)",
            lld.display()
        );
    }
    lld
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_TLS: u32 = 7;
const PF_W: u32 = 2;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_RELA: u64 = 7;
const DT_SONAME: u64 = 14;
const DT_REL: u64 = 17;
const DT_TEXTREL: u64 = 22;
const DT_JMPREL: u64 = 23;
const DT_RELR: u64 = 36;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_RELACOUNT: u64 = 0x6fff_fff9;
const DT_RELCOUNT: u64 = 0x6fff_fffa;
const DT_VERDEF: u64 = 0x6fff_fffc;

/// Checks what the guest kernel and the libcs rely on; returns the first problem found.
fn check_shared_object(elf: &[u8]) -> Result<(), String> {
    let read = |offset: usize, len: usize| -> Result<u64, String> {
        let bytes = offset
            .checked_add(len)
            .and_then(|end| elf.get(offset..end))
            .ok_or_else(|| format!("truncated at byte {offset}"))?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0, |acc, &b| (acc << 8) | u64::from(b)))
    };
    let index = |value: u64| usize::try_from(value).map_err(|_| format!("{value:#x} too big"));

    if elf.get(..4) != Some(b"\x7fELF".as_slice()) || read(4, 1)? != 2 || read(5, 1)? != 1 {
        return Err("not a little-endian ELF64 file".into());
    }
    if read(16, 2)? != 3 {
        return Err("not a shared object (ET_DYN)".into());
    }
    let phoff = index(read(32, 8)?)?;
    let phentsize = index(read(54, 2)?)?;
    let phnum = index(read(56, 2)?)?;

    let mut loads = 0;
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let (kind, flags) = (read(ph, 4)?, read(ph + 4, 4)?);
        let (offset, vaddr) = (read(ph + 8, 8)?, read(ph + 16, 8)?);
        let (filesz, memsz) = (read(ph + 32, 8)?, read(ph + 40, 8)?);
        match u32::try_from(kind).unwrap_or(u32::MAX) {
            PT_LOAD => {
                loads += 1;
                if offset != 0 || vaddr != 0 || filesz != memsz {
                    return Err(format!(
                        "its PT_LOAD is at offset {offset:#x}, address {vaddr:#x}, with \
                         {filesz:#x} bytes in the file and {memsz:#x} in memory; the loader \
                         expects one PT_LOAD at 0 whose memory image is the file"
                    ));
                }
                if flags & u64::from(PF_W) != 0 {
                    return Err("its PT_LOAD is writable, but it is mapped read-only".into());
                }
            }
            PT_DYNAMIC => dynamic = Some((index(offset)?, index(filesz)?)),
            PT_INTERP | PT_TLS => return Err(format!("it has a program header of type {kind}")),
            _ => {}
        }
    }
    if loads != 1 {
        return Err(format!("it has {loads} PT_LOAD segments instead of one"));
    }
    let (dyn_offset, dyn_size) = dynamic.ok_or("it has no PT_DYNAMIC")?;

    let mut seen = Vec::new();
    for entry in (dyn_offset..dyn_offset + dyn_size).step_by(16) {
        let tag = read(entry, 8)?;
        if tag == DT_NULL {
            break;
        }
        let forbidden = [DT_NEEDED, DT_RELA, DT_REL, DT_TEXTREL, DT_JMPREL, DT_RELR];
        if forbidden.contains(&tag) || tag == DT_RELACOUNT || tag == DT_RELCOUNT {
            return Err(format!(
                "its dynamic section has tag {tag:#x} (relocations or needs)"
            ));
        }
        seen.push(tag);
    }
    let required = [
        (DT_HASH, "DT_HASH"),
        (DT_GNU_HASH, "DT_GNU_HASH"),
        (DT_SYMTAB, "DT_SYMTAB"),
        (DT_STRTAB, "DT_STRTAB"),
        (DT_VERSYM, "DT_VERSYM"),
        (DT_VERDEF, "DT_VERDEF"),
        (DT_SONAME, "DT_SONAME"),
    ];
    for (tag, name) in required {
        if !seen.contains(&tag) {
            return Err(format!("its dynamic section lacks {name}"));
        }
    }
    Ok(())
}
