//! The guest's file system end to end: the in-guest tmpfs (`/tmp`, `/dev`, `/etc`,
//! `/proc/self`), pipes, and host directories granted with `--dir`, exercised by real programs
//! (Debian's busybox-static and our own `fs-syscalls`) on the real `/dev/kvm`, compared with
//! native runs of the same binaries.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_code, assert_same, busybox, image, Program};

/// A fresh, empty directory of this test crate's own.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("files").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clearing an old scratch directory");
    }
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

fn sandboxed_busybox(flags: &[&str], args: &[&str]) -> common::Run {
    Program::new(busybox())
        .flags(flags.iter().copied())
        .args(args.iter().copied())
        .sandboxed()
}

// ---- the syscall exerciser -------------------------------------------------------------------

/// `fs-syscalls DIR` prints what each file syscall returned; the sandbox must print exactly
/// what Linux does, here with DIR in the guest's tmpfs.
#[test]
fn fs_syscalls_in_tmpfs_match_native() {
    let native_dir = fresh_dir("fs-syscalls-native-for-tmpfs");
    let native = Program::new(image("fs-syscalls"))
        .args([native_dir.to_str().expect("utf-8 path")])
        .native();
    assert_code(&native, 0);
    let sandboxed = Program::new(image("fs-syscalls")).args(["/tmp"]).sandboxed();
    assert_same(&sandboxed, &native);
    assert!(
        sandboxed.stdout_text().lines().count() > 200,
        "the exerciser printed too little:\n{}",
        sandboxed.report()
    );
}

// ---- tmpfs, devices and the standard files -------------------------------------------------

/// What a program writes to /tmp stays for the rest of its run and is gone in the next run.
#[test]
fn tmp_lives_for_one_run() {
    let script = "echo kept > /tmp/note; read line < /tmp/note; echo read: $line";
    let first = sandboxed_busybox(&[], &["sh", "-c", script]);
    assert_code(&first, 0);
    assert_eq!(first.stdout_text(), "read: kept\n", "{}", first.report());

    let second = sandboxed_busybox(&[], &["cat", "/tmp/note"]);
    assert_code(&second, 1);
    assert!(
        second.stderr_text().contains("No such file or directory"),
        "{}",
        second.report()
    );
}

#[test]
fn dev_zero_null_and_urandom() {
    let zeros = sandboxed_busybox(&[], &["od", "-An", "-tx1", "-N", "8", "/dev/zero"]);
    assert_code(&zeros, 0);
    assert_eq!(zeros.stdout_text().trim(), "00 00 00 00 00 00 00 00");

    let null = sandboxed_busybox(&[], &["wc", "-c", "/dev/null"]);
    assert_eq!(null.stdout_text().trim(), "0 /dev/null", "{}", null.report());

    let random = sandboxed_busybox(&[], &["head", "-c", "4096", "/dev/urandom"]);
    assert_code(&random, 0);
    assert_eq!(random.stdout.len(), 4096);
    assert!(random.stdout.iter().filter(|&&b| b == 0).count() < 100, "not random");
}

#[test]
fn dev_stdin_reads_the_hosts_stdin() {
    let run = Program::new(busybox())
        .args(["cat", "/dev/stdin"])
        .stdin(&b"through /dev/stdin\n"[..])
        .sandboxed();
    assert_code(&run, 0);
    assert_eq!(run.stdout_text(), "through /dev/stdin\n");
}

#[test]
fn etc_files_describe_one_unprivileged_user() {
    let whoami = sandboxed_busybox(&[], &["whoami"]);
    assert_eq!(whoami.stdout_text(), "user\n", "{}", whoami.report());
    let id = sandboxed_busybox(&[], &["id"]);
    assert_eq!(id.stdout_text(), "uid=1000(user) gid=1000(user)\n", "{}", id.report());
    let hostname = sandboxed_busybox(&[], &["cat", "/etc/hostname"]);
    assert_eq!(hostname.stdout_text(), "litebox\n");
}

#[test]
fn proc_self_exe_names_the_image() {
    let run = sandboxed_busybox(&[], &["readlink", "/proc/self/exe"]);
    assert_code(&run, 0);
    let expected = std::fs::canonicalize(busybox()).expect("busybox path");
    assert_eq!(run.stdout_text().trim(), expected.to_str().expect("utf-8"), "{}", run.report());
}

/// Outside /tmp the in-guest tree is root's: the program's user may read it, not change it.
#[test]
fn the_guest_tree_is_read_only_for_the_program() {
    let mkdir = sandboxed_busybox(&[], &["mkdir", "/new"]);
    assert_code(&mkdir, 1);
    assert!(mkdir.stderr_text().contains("Permission denied"), "{}", mkdir.report());

    let overwrite = sandboxed_busybox(&[], &["cp", "/etc/hostname", "/etc/passwd"]);
    assert_code(&overwrite, 1);
    assert!(overwrite.stderr_text().contains("Permission denied"), "{}", overwrite.report());
}

#[test]
fn ls_of_the_guest_root() {
    let run = sandboxed_busybox(&[], &["ls", "/", "/dev"]);
    assert_code(&run, 0);
    let text = run.stdout_text();
    for name in ["dev", "etc", "proc", "tmp", "null", "random", "stdin", "urandom", "zero"] {
        assert!(text.split_whitespace().any(|w| w == name), "{name} missing:\n{text}");
    }
}

#[allow(dead_code, reason = "used by the mount tests below")]
fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
