//! The file-system flags of the `litebox-vmm` command line: `--dir HOST:GUEST[:ro]`,
//! `--workdir` and `--tmpfs-size`. Every bad form ends the run with status 125 and one line on
//! stderr that names the offending input; good ones still run the program.

mod common;

use std::process::Command;

use common::{assert_code, assert_one_error_line, image, run, Place};

/// Runs `litebox-vmm FLAGS --image IMAGE` and returns the run.
fn sandbox(flags: &[&str], image: &str) -> common::Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
    command.args(flags).arg("--image").arg(image);
    run(command, Place::Sandbox, None)
}

/// The run failed with 125 and its single error line mentions every one of `needles`.
fn assert_refused(flags: &[&str], needles: &[&str]) {
    // The image is never looked at: the configuration is checked first.
    let run = sandbox(flags, "/nonexistent-image");
    assert_code(&run, 125);
    let line = assert_one_error_line(&run);
    for needle in needles {
        assert!(line.contains(needle), "{flags:?}: {line:?} does not mention {needle:?}");
    }
}

#[test]
fn malformed_dir_flags_are_refused() {
    let host = std::env::temp_dir();
    let host = host.to_str().unwrap();
    assert_refused(&["--dir", host], &[host, "HOST:GUEST"]);
    assert_refused(&["--dir", ":/data"], &[":/data", "HOST:GUEST"]);
    assert_refused(&["--dir", &format!("{host}:")], &["HOST:GUEST"]);
    assert_refused(&["--dir", &format!("{host}::ro")], &["HOST:GUEST"]);
    assert_refused(&["--dir", &format!("{host}:/x:ro:ro")], &["more than one option"]);
}

#[test]
fn bad_host_directories_are_refused() {
    assert_refused(&["--dir", "/nonexistent/dir:/data"], &["/nonexistent/dir", "does not exist"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let file = file.path().to_str().unwrap();
    assert_refused(&["--dir", &format!("{file}:/data")], &[file, "not a directory"]);
}

#[test]
fn bad_guest_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().to_str().unwrap();
    let mount = |guest: &str| format!("{host}:{guest}");
    assert_refused(&["--dir", &mount("data")], &["data", "not absolute"]);
    assert_refused(&["--dir", &mount("/")], &["'/'"]);
    assert_refused(&["--dir", &mount("//")], &["'/'"]);
    assert_refused(&["--dir", &mount("/a/../b")], &["/a/../b", "'..'"]);
    assert_refused(&["--dir", &mount("/a/./b")], &["/a/./b", "'.'"]);
    assert_refused(&["--dir", &mount("/dev")], &["/dev", "/dev or /proc"]);
    assert_refused(&["--dir", &mount("/proc/sys:ro")], &["/proc/sys", "/dev or /proc"]);
    let long = format!("/{}", "x".repeat(300));
    assert_refused(&["--dir", &mount(&long)], &["longer than 256 bytes"]);
    // The same guest path twice, even spelled differently.
    let twice = ["--dir", &mount("/data"), "--dir", &mount("//data/")];
    assert_refused(&twice, &["/data", "already mounted"]);
}

/// A mount inside another needs its mount point in the outer host directory, as on Linux;
/// with it, listings of the outer directory show the inner mount.
#[test]
fn a_nested_mount_needs_its_mount_point() {
    let (outer, inner) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (outer_path, inner_path) = (outer.path().to_str().unwrap(), inner.path().to_str().unwrap());
    std::fs::write(inner.path().join("inside"), "x").unwrap();
    let flags = [
        "--dir".to_string(),
        format!("{outer_path}:/data"),
        "--dir".to_string(),
        format!("{inner_path}:/data/sub"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    assert_refused(&flags, &["/data/sub", "mount point", "create it first"]);

    std::fs::create_dir(outer.path().join("sub")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
    let busybox = common::busybox();
    command.args(&flags).arg("--image").arg(&busybox).args(["--", "find", "/data"]);
    let listed = run(command, Place::Sandbox, None);
    assert_code(&listed, 0);
    assert_eq!(listed.stdout_text(), "/data\n/data/sub\n/data/sub/inside\n", "{}", listed.report());
}

#[test]
fn too_many_mounts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().to_str().unwrap();
    let specs: Vec<String> = (0..13).map(|i| format!("{host}:/m{i}")).collect();
    let flags: Vec<&str> = specs.iter().flat_map(|spec| ["--dir", spec.as_str()]).collect();
    assert_refused(&flags, &["13 --dir mounts", "at most 12"]);
}

#[test]
fn bad_workdir_and_tmpfs_size_are_refused() {
    assert_refused(&["--workdir", "relative/dir"], &["--workdir relative/dir", "absolute"]);
    assert_refused(&["--tmpfs-size", "lots"], &["lots", "--tmpfs-size"]);
    assert_refused(&["--tmpfs-size", "0"], &["tmpfs size"]);

    // Inside a mount the directory must exist on the host; the sandbox's own trees are not
    // working directories.
    let dir = tempfile::tempdir().unwrap();
    let mount = format!("{}:/data", dir.path().to_str().unwrap());
    let flags = ["--dir", mount.as_str(), "--workdir", "/data/missing"];
    assert_refused(&flags, &["--workdir /data/missing", "not a directory", "create it first"]);
    assert_refused(&["--workdir", "/dev/null"], &["--workdir /dev/null", "provides"]);
    assert_refused(&["--workdir", "/proc/self"], &["--workdir /proc/self", "provides"]);
}

/// A working directory outside the mounts is created in the guest, as `docker run -w` does.
#[test]
fn a_workdir_outside_the_mounts_is_created() {
    let flags = ["--workdir", "/work/here"];
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
    command.args(flags).arg("--image").arg(common::busybox());
    command.args(["--", "sh", "-c", "pwd; ls -a"]);
    let listed = run(command, Place::Sandbox, None);
    assert_code(&listed, 0);
    assert_eq!(listed.stdout_text(), "/work/here\n.\n..\n", "{}", listed.report());

    // It belongs to the program's user, who can create files in it.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
    command.args(flags).arg("--image").arg(common::busybox());
    command.args(["--", "touch", "made-here"]);
    let touched = run(command, Place::Sandbox, None);
    assert_code(&touched, 0);
}

#[test]
fn good_file_system_flags_still_run_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().to_str().unwrap();
    let hello = image("hello-musl");
    let flags = [
        "--dir",
        &format!("{host}:/data"),
        "--dir",
        &format!("{host}://ro-data/:ro"),
        "--workdir",
        "//data/./x/..",
        "--tmpfs-size",
        "16M",
    ];
    let run = sandbox(&flags, hello.to_str().unwrap());
    assert_code(&run, 0);
    assert!(run.stdout_text().contains("hello"), "{}", run.report());
}
