//! Builds the guest kernel (and its vDSO) for `x86_64-unknown-none` and hands their paths to
//! the VMM crate, so that `litebox-vmm` is one self-contained binary.
//!
//! The guest is a separate cargo workspace (`guest-kernel/`) with its own target and flags in
//! `guest-kernel/.cargo/config.toml`; it is built by a nested cargo into `target/guest`. Cargo
//! sets variables for build scripts that would leak into the nested build, so they are removed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/vdso.rs"]
mod vdso;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace_root = manifest_dir.parent().expect("vmm/ sits in the workspace").to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));

    let kernel = build_guest_kernel(&workspace_root);
    println!("cargo:rustc-env=LITEBOX_GUEST_KERNEL_PATH={}", kernel.display());

    let vdso = vdso::build_vdso(&workspace_root, &out_dir);
    println!("cargo:rustc-env=LITEBOX_VDSO_PATH={}", vdso.display());
}

/// Runs `cargo build --release` in `guest-kernel/` and returns the kernel ELF's path.
fn build_guest_kernel(workspace_root: &Path) -> PathBuf {
    let guest_dir = workspace_root.join("guest-kernel");
    let target_dir = workspace_root.join("target").join("guest");
    for watched in ["guest-kernel/src", "guest-kernel/Cargo.toml", "guest-kernel/linker.ld",
        "guest-kernel/.cargo/config.toml", "guest-kernel/build.rs", "shim-abi/src",
        "shim-abi/Cargo.toml"]
    {
        println!("cargo:rerun-if-changed={}", workspace_root.join(watched).display());
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .current_dir(&guest_dir)
        .args(["build", "--release", "--target-dir"])
        .arg(&target_dir);
    clean_cargo_environment(&mut command);

    let status = command.status().expect("could not start cargo to build the guest kernel");
    assert!(status.success(), "building the guest kernel (guest-kernel/) failed");
    target_dir.join("x86_64-unknown-none").join("release").join("litebox-guest-kernel")
}

/// Removes what an outer cargo sets for build scripts and a nested cargo would obey.
fn clean_cargo_environment(command: &mut Command) {
    const EXACT: &[&str] = &[
        "CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER", "RUSTC_WRAPPER", "CARGO_MAKEFLAGS",
        "MAKEFLAGS", "MFLAGS", "OUT_DIR", "TARGET", "HOST", "PROFILE", "OPT_LEVEL", "DEBUG",
        "NUM_JOBS", "RUSTC", "RUSTDOC", "RUSTC_LINKER", "CARGO_PRIMARY_PACKAGE",
    ];
    const PREFIXES: &[&str] =
        &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "CARGO_MANIFEST_", "DEP_"];
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if EXACT.contains(&key) || PREFIXES.iter().any(|prefix| key.starts_with(prefix)) {
            command.env_remove(key);
        }
    }
}
