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

/// The generated `/proc` files: the program's own arguments and environment, its mappings,
/// the guest's memory (enough for `busybox free`) and its uptime.
#[test]
fn proc_files_describe_the_program_and_the_guest() {
    let cmdline = Program::new(busybox())
        .args(["cat", "/proc/self/cmdline"])
        .env("A", "1")
        .sandboxed();
    assert_code(&cmdline, 0);
    let argv0 = busybox().to_str().expect("a UTF-8 path").to_owned();
    assert_eq!(cmdline.stdout, format!("{argv0}\0cat\0/proc/self/cmdline\0").into_bytes());

    let environ = Program::new(busybox())
        .args(["cat", "/proc/self/environ"])
        .env("A", "1")
        .env("B", "two")
        .sandboxed();
    assert_eq!(environ.stdout, b"A=1\0B=two\0", "{}", environ.report());

    let maps = sandboxed_busybox(&[], &["cat", "/proc/self/maps"]);
    assert_code(&maps, 0);
    let text = maps.stdout_text();
    for name in ["[stack]", "[heap]", "[vdso]", "r-xp"] {
        assert!(text.contains(name), "no {name} in\n{text}");
    }

    let meminfo = sandboxed_busybox(&["--memory", "256M"], &["cat", "/proc/meminfo"]);
    let total_kib: u64 = meminfo
        .stdout_text()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().strip_suffix(" kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no MemTotal in\n{}", meminfo.report()));
    assert!(total_kib > 200 << 10 && total_kib <= 256 << 10, "MemTotal {total_kib} kB");
    let free = sandboxed_busybox(&["--memory", "256M"], &["free"]);
    assert_code(&free, 0);
    assert!(free.stdout_text().starts_with("              total"), "{}", free.report());

    // A full tmpfs doesn't stop them: they are the kernel's, not the program's files.
    let tmpfs_full = sandboxed_busybox(&["--tmpfs-size", "1"], &["cat", "/proc/meminfo"]);
    assert_code(&tmpfs_full, 0);
    // Nor does the program own them.
    let chmod = sandboxed_busybox(&[], &["chmod", "666", "/proc/self/cmdline"]);
    assert_code(&chmod, 1);

    let uptime = sandboxed_busybox(&[], &["cat", "/proc/uptime"]);
    let fields: Vec<f64> =
        uptime.stdout_text().split_whitespace().filter_map(|f| f.parse().ok()).collect();
    assert!(fields.len() == 2 && fields[0] < 60.0, "{}", uptime.report());
}

/// `ls /proc/self/fd` lists the open fds (stdio, and the directory `ls` itself has open).
#[test]
fn proc_self_fd_lists_the_open_fds() {
    let run = sandboxed_busybox(&[], &["ls", "/proc/self/fd"]);
    assert_code(&run, 0);
    assert_eq!(run.stdout_text(), "0\n1\n2\n3\n", "{}", run.report());
}

/// The VMM's stdio read through `/proc/self/fd` as Linux shows the host fd behind it, so
/// `/dev/stdin` resolves instead of leading back to itself: `/dev/null`, or a pipe.
#[test]
fn stdio_fds_read_as_the_host_fd_behind_them() {
    let program = Program::new(busybox()).args(["readlink", "-f", "/dev/stdin"]);
    let sandboxed = program.sandboxed();
    assert_same(&sandboxed, &program.native());
    assert_eq!(sandboxed.stdout_text(), "/dev/null\n", "{}", sandboxed.report());

    let piped = Program::new(busybox()).args(["readlink", "/proc/self/fd/0"]).stdin(&b""[..]);
    let run = piped.sandboxed();
    assert_code(&run, 0);
    let text = run.stdout_text();
    assert!(text.starts_with("pipe:[") && text.ends_with("]\n"), "{}", run.report());
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

/// The exerciser again, with DIR in a host directory mounted read-write.
#[test]
fn fs_syscalls_in_a_mount_match_native() {
    let native_dir = fresh_dir("fs-syscalls-native-for-mount");
    let native = Program::new(image("fs-syscalls")).args([path_str(&native_dir)]).native();
    assert_code(&native, 0);
    let mounted = fresh_dir("fs-syscalls-mounted");
    let sandboxed = Program::new(image("fs-syscalls"))
        .flags(["--dir", &format!("{}:/work", path_str(&mounted))])
        .args(["/work"])
        .sandboxed();
    assert_same(&sandboxed, &native);
    // What the program left behind is on the host, byte for byte like the native run's.
    assert_eq!(snapshot(&mounted), snapshot(&native_dir));
}

/// read, write, pread64 and pwrite64 on a mounted file, into and out of every kind of buffer
/// and through dup'd, closed, reused and replaced fds, answer as on Linux (both C libraries).
/// These calls take the kernel's short path, which leaves the buffer checks to the host.
#[test]
fn transfers_on_a_mounted_file_match_native() {
    for name in ["transfers-musl", "transfers-glibc"] {
        let native_dir = fresh_dir(&format!("{name}-native"));
        let native = Program::new(image(name)).args([path_str(&native_dir)]).native();
        assert_code(&native, 0);
        let mounted = fresh_dir(&format!("{name}-mounted"));
        let sandboxed = Program::new(image(name))
            .flags(["--dir", &format!("{}:/work", path_str(&mounted))])
            .args(["/work"])
            .sandboxed();
        assert_same(&sandboxed, &native);
        assert!(sandboxed.stdout_text().contains("pread into its own code: -1 Bad address"));
        assert_eq!(snapshot(&mounted), snapshot(&native_dir));
    }
}

/// A trailing '/' demands a directory, in a mount and in /tmp alike: unlink, rmdir and rename
/// never act on a symlink's target through it, and a file named with one is ENOTDIR.
#[test]
fn trailing_slashes_match_native_in_a_mount_and_in_tmp() {
    let native_dir = fresh_dir("slashes-native");
    let native = Program::new(image("slashes-musl")).args([path_str(&native_dir)]).native();
    assert_code(&native, 0);
    assert!(native.stdout_text().contains("left: d2 dangling dl e f fl"), "{}", native.report());
    let mounted = fresh_dir("slashes-mounted");
    let in_mount = Program::new(image("slashes-musl"))
        .flags(["--dir", &format!("{}:/work", path_str(&mounted))])
        .args(["/work"])
        .sandboxed();
    assert_same(&in_mount, &native);
    let in_tmp =
        Program::new(image("slashes-musl")).flags(["--workdir", "/tmp/s"]).args(["/tmp/s"]);
    assert_same(&in_tmp.sandboxed(), &native);
}

/// `..` after a symlink goes to the parent of its target, in a mount and in /tmp alike, and
/// the working directory is where chdir really went: `unlink("link/../f")` removes the file
/// beside the link's target, never the one beside the link.
#[test]
fn dotdot_after_symlinks_matches_native_in_a_mount_and_in_tmp() {
    let native_dir = fresh_dir("dotdot-native");
    let native = Program::new(image("dotdot-musl")).args([path_str(&native_dir)]).native();
    assert_code(&native, 0);
    assert!(native.stdout_text().contains("chdir ..                 cwd ./d1\n"));
    let mounted = fresh_dir("dotdot-mounted");
    let in_mount = Program::new(image("dotdot-musl"))
        .flags(["--dir", &format!("{}:/work", path_str(&mounted))])
        .args(["/work"])
        .sandboxed();
    assert_same(&in_mount, &native);
    assert!(mounted.join("f").exists() && !mounted.join("d1/f").exists());
    let in_tmp =
        Program::new(image("dotdot-musl")).flags(["--workdir", "/tmp/s"]).args(["/tmp/s"]);
    assert_same(&in_tmp.sandboxed(), &native);
}

// ---- busybox over a mounted directory --------------------------------------------------------

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A small tree: text files, a 64 KiB binary, nested directories, an empty directory, a
/// name with a space, and a relative symlink. Every mtime is fixed so listings compare.
fn make_tree(root: &Path) {
    let file = |relative: &str, bytes: &[u8]| {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("writing a fixture file");
    };
    file("a.txt", b"alpha\nbeta\ngamma\n");
    let numbered: String = (1..=1000).map(|n| format!("line {}\n", (n * 7919) % 1000)).collect();
    file("b.txt", numbered.as_bytes());
    file("sub/c.txt", b"see beta here\n");
    file("sub/deeper/d.bin", &common::pseudo_random_bytes(64 << 10));
    file("with space.txt", b"spaced\n");
    std::fs::create_dir_all(root.join("empty")).expect("mkdir");
    std::os::unix::fs::symlink("../a.txt", root.join("sub/link")).expect("symlink");
    fix_mtimes(root);
}

/// Sets every file's and directory's mtime (not the symlinks') to one fixed time.
fn fix_mtimes(root: &Path) {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    let mut entries: Vec<PathBuf> = walk(root);
    entries.reverse();
    entries.push(root.to_path_buf());
    for path in entries {
        if path.is_symlink() {
            continue;
        }
        let handle = std::fs::File::open(&path).expect("opening for set_modified");
        handle.set_modified(time).expect("set_modified");
    }
}

/// Every path beneath `root`, parents first, sorted.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("read_dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        out.push(path.clone());
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        }
    }
    out
}

/// What a tree holds: relative paths with their kind and contents or link target.
fn snapshot(root: &Path) -> Vec<(String, String, Vec<u8>)> {
    walk(root)
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(root).expect("beneath root").display().to_string();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            if meta.is_symlink() {
                let target = std::fs::read_link(&path).expect("readlink");
                (relative, "link".into(), target.display().to_string().into_bytes())
            } else if meta.is_dir() {
                (relative, "dir".into(), Vec::new())
            } else {
                let mode = format!("file {:o}", std::os::unix::fs::PermissionsExt::mode(&meta.permissions()));
                (relative, mode, std::fs::read(&path).expect("read"))
            }
        })
        .collect()
}

/// Runs busybox with `args` natively in one copy of the tree and in the sandbox with another
/// copy mounted at /data (the working directory), and returns both runs and both copies.
struct Compared {
    native: common::Run,
    sandboxed: common::Run,
    native_dir: PathBuf,
    mounted_dir: PathBuf,
}

fn busybox_over_mount(test: &str, args: &[&str]) -> Compared {
    let native_dir = fresh_dir(&format!("{test}-native"));
    let mounted_dir = fresh_dir(&format!("{test}-mounted"));
    make_tree(&native_dir);
    make_tree(&mounted_dir);

    let mut native = std::process::Command::new(busybox());
    native.args(args).current_dir(&native_dir).env_clear();
    let native = common::run(native, common::Place::Native, None);

    let mut sandboxed = std::process::Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
    sandboxed
        .arg("--dir")
        .arg(format!("{}:/data", path_str(&mounted_dir)))
        .args(["--workdir", "/data", "--image"])
        .arg(busybox())
        .arg("--")
        .args(args);
    let sandboxed = common::run(sandboxed, common::Place::Sandbox, None);
    Compared { native, sandboxed, native_dir, mounted_dir }
}

/// Same status, same stdout and the same tree afterwards.
fn assert_same_everywhere(compared: &Compared) {
    assert_same(&compared.sandboxed, &compared.native);
    assert_eq!(
        snapshot(&compared.mounted_dir),
        snapshot(&compared.native_dir),
        "the trees differ after `{}`",
        compared.sandboxed.command
    );
}

#[test]
fn busybox_ls_la_over_a_mount() {
    let compared = busybox_over_mount("ls-la", &["ls", "-la", ".", "sub", "sub/deeper"]);
    assert_code(&compared.sandboxed, 0);
    // Owners differ by design (the host's user is the guest's uid 1000), and `..` of the
    // mount point is the guest's root (so it and the block totals that count it differ):
    // compare everything else.
    let normalise = |run: &common::Run| -> Vec<String> {
        run.stdout_text()
            .lines()
            .filter(|line| !line.ends_with(" ..") && !line.starts_with("total "))
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() > 4 {
                    [&fields[..2], &fields[4..]].concat().join(" ")
                } else {
                    fields.join(" ")
                }
            })
            .collect()
    };
    assert_eq!(normalise(&compared.sandboxed), normalise(&compared.native));
    assert!(compared.sandboxed.stdout_text().contains("link -> ../a.txt"));
}

#[test]
fn busybox_find_over_a_mount() {
    assert_same_everywhere(&busybox_over_mount("find", &["find", "."]));
    assert_same_everywhere(&busybox_over_mount("find-type", &["find", ".", "-type", "f"]));
}

#[test]
fn busybox_cat_wc_sort_head_tail_over_a_mount() {
    for (name, args) in [
        ("cat", &["cat", "a.txt", "sub/c.txt", "with space.txt", "sub/link"][..]),
        ("wc", &["wc", "a.txt", "b.txt", "sub/deeper/d.bin"]),
        ("sort", &["sort", "-n", "-k", "2", "b.txt"]),
        ("head", &["head", "-n", "7", "b.txt"]),
        ("tail", &["tail", "-n", "7", "b.txt"]),
        ("tail-c", &["tail", "-c", "100", "sub/deeper/d.bin"]),
    ] {
        let compared = busybox_over_mount(name, args);
        assert_code(&compared.sandboxed, 0);
        assert_same_everywhere(&compared);
    }
}

#[test]
fn busybox_grep_r_over_a_mount() {
    let compared = busybox_over_mount("grep", &["grep", "-r", "beta", "."]);
    assert_code(&compared.sandboxed, 0);
    assert_same_everywhere(&compared);
}

#[test]
fn busybox_changes_over_a_mount_reach_the_host() {
    for (name, args) in [
        ("cp-r", &["cp", "-r", "sub", "copy"][..]),
        ("mv", &["mv", "sub", "moved"]),
        ("rm-r", &["rm", "-r", "sub"]),
        ("mkdir-p", &["mkdir", "-p", "x/y/z"]),
        ("touch", &["touch", "-d", "2001-02-03 04:05:06", "a.txt", "new.txt"]),
        ("chmod", &["chmod", "600", "a.txt"]),
        ("ln-s", &["ln", "-s", "b.txt", "b.link"]),
    ] {
        let compared = busybox_over_mount(name, args);
        assert_code(&compared.sandboxed, 0);
        assert_same_everywhere(&compared);
    }
}

/// `tar cf` in the sandbox and `tar xf` natively, and the other way round, rebuild the tree.
#[test]
fn busybox_tar_round_trip_over_a_mount() {
    let created = busybox_over_mount("tar-cf", &["tar", "cf", "sub.tar", "sub"]);
    assert_code(&created.sandboxed, 0);
    let extract_native = fresh_dir("tar-extract-native");
    let mut tar = std::process::Command::new(busybox());
    tar.args(["tar", "xf"]).arg(created.mounted_dir.join("sub.tar")).current_dir(&extract_native);
    assert_code(&common::run(tar, common::Place::Native, None), 0);
    assert_eq!(snapshot(&extract_native.join("sub")), snapshot(&created.native_dir.join("sub")));

    let extract_mounted = fresh_dir("tar-extract-mounted");
    std::fs::copy(created.native_dir.join("sub.tar"), extract_mounted.join("sub.tar"))
        .expect("copying the native archive");
    let run = sandboxed_busybox(
        &["--dir", &format!("{}:/x", path_str(&extract_mounted)), "--workdir", "/x"],
        &["tar", "xf", "sub.tar"],
    );
    assert_code(&run, 0);
    assert_eq!(snapshot(&extract_mounted.join("sub")), snapshot(&created.native_dir.join("sub")));
}

/// The count of ring requests of `kind` in a `--stats` report on stderr.
fn ring_requests(run: &common::Run, kind: &str) -> u64 {
    let text = run.stderr_text();
    let line = text
        .lines()
        .find(|line| line.trim_start().starts_with("ring requests:"))
        .unwrap_or_else(|| panic!("no ring requests in the stats\n{}", run.report()));
    let inside = line.split_once('(').and_then(|(_, rest)| rest.split_once(')'));
    inside
        .map_or("", |(inside, _)| inside)
        .split(", ")
        .filter_map(|entry| entry.rsplit_once(' '))
        .find(|(name, _)| *name == kind)
        .map_or(0, |(_, count)| count.parse().expect("a request count"))
}

/// `dd` with large blocks through a mount: each 4 MiB read and write is one ring request
/// (the host walks the program's pages itself, so the guest names the buffer once), the
/// fresh buffer is mapped when the host finds its pages missing, and the copy is byte for
/// byte. `of=/dev/null` opens with `O_TRUNC`, which a device ignores, as on Linux.
#[test]
fn dd_with_large_blocks_over_a_mount() {
    let dir = fresh_dir("dd-large-blocks");
    let data = common::pseudo_random_bytes(24 << 20);
    std::fs::write(dir.join("big.bin"), &data).expect("writing 24 MiB");
    let mount = format!("{}:/data", path_str(&dir));
    let flags = ["--stats", "--dir", mount.as_str(), "--workdir", "/data"];

    let copy = sandboxed_busybox(&flags, &["dd", "if=big.bin", "of=copy.bin", "bs=4M"]);
    assert_code(&copy, 0);
    assert!(
        copy.stderr_text().starts_with("6+0 records in\n6+0 records out\n"),
        "{}",
        copy.report()
    );
    assert!(std::fs::read(dir.join("copy.bin")).expect("the copy") == data, "copy differs");
    // Reads: six of data, the one that finds the end, and the first one sent again once
    // the fresh buffer is mapped. Writes: six of data and dd's report on stderr.
    assert_eq!(ring_requests(&copy, "read"), 8, "{}", copy.report());
    assert_eq!(ring_requests(&copy, "write"), 7, "{}", copy.report());

    let args = ["dd", "if=big.bin", "of=/dev/null", "bs=1M"];
    let mut native = std::process::Command::new(busybox());
    native.args(args).current_dir(&dir).env_clear();
    let native = common::run(native, common::Place::Native, None);
    let sandboxed = sandboxed_busybox(&flags[1..], &args);
    assert_same(&sandboxed, &native);
    assert_eq!(sandboxed.stderr_text(), native.stderr_text(), "{}", sandboxed.report());
}

/// busybox `cat` and `cp` use sendfile: between a mounted file and the VMM's stdout, or two
/// mounted files, the host copies (splice requests) and the data never passes through guest
/// memory (no read or write requests); the bytes are the file's. `--max-output` still cuts
/// such output at the byte and ends the run with 153.
#[test]
fn sendfile_from_a_mounted_file_is_done_by_the_host() {
    let dir = fresh_dir("splice");
    let data = common::pseudo_random_bytes(40 << 20);
    std::fs::write(dir.join("big.bin"), &data).expect("writing 40 MiB");
    let mount = format!("{}:/data", path_str(&dir));
    let flags = ["--stats", "--dir", mount.as_str(), "--workdir", "/data"];

    let cat = sandboxed_busybox(&flags, &["cat", "big.bin"]);
    assert_code(&cat, 0);
    assert!(cat.stdout == data, "cat's output differs from the file
{}", cat.report());
    // busybox asks for 16 MiB at a time: three calls move the data, a fourth finds the end.
    assert_eq!(ring_requests(&cat, "splice"), 4, "{}", cat.report());
    assert_eq!(ring_requests(&cat, "read"), 0, "{}", cat.report());

    let cp = sandboxed_busybox(&flags, &["cp", "big.bin", "copy.bin"]);
    assert_code(&cp, 0);
    assert!(std::fs::read(dir.join("copy.bin")).expect("the copy") == data, "copy differs");
    assert!(ring_requests(&cp, "splice") >= 3, "{}", cp.report());
    assert_eq!(ring_requests(&cp, "read"), 0, "{}", cp.report());

    let limit = ["--max-output", "1000", "--dir", mount.as_str()];
    let limited = sandboxed_busybox(&limit, &["cat", "/data/big.bin"]);
    assert_code(&limited, 153);
    assert!(limited.stdout == data[..1000], "not the first 1000 bytes\n{}", limited.report());
}

/// `cat` to a full disk (stdout on /dev/full) fails as natively, from a mounted file and from
/// a pipe on stdin: sendfile passes nothing on, and the input isn't consumed by the attempt,
/// so busybox's read/write fallback meets the same error and reports it.
#[test]
fn cat_to_a_full_disk_reports_the_error() {
    let dir = fresh_dir("full-disk");
    std::fs::write(dir.join("a.txt"), b"hello world\n").expect("writing the file");
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let outcome = |mut command: std::process::Command, stdin: &[u8]| {
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(full())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting the program");
        let mut pipe = child.stdin.take().expect("stdin is piped");
        std::io::Write::write_all(&mut pipe, stdin).expect("feeding stdin");
        drop(pipe);
        let output = child.wait_with_output().expect("waiting for it");
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let mount = format!("{}:/data", path_str(&dir));
    for (args, stdin) in [(&["cat", "/data/a.txt"][..], &b""[..]), (&["cat"][..], &b"abc\n"[..])] {
        let mut sandboxed = std::process::Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
        sandboxed.args(["--dir", &mount, "--image"]).arg(busybox()).arg("--").args(args);
        let mut native = std::process::Command::new(busybox());
        let native_args: Vec<String> =
            args.iter().map(|a| a.replace("/data", path_str(&dir))).collect();
        native.args(&native_args);
        let (code, stderr) = outcome(sandboxed, stdin);
        let (native_code, native_stderr) = outcome(native, stdin);
        assert_eq!(code, native_code, "{args:?}: {stderr}");
        assert_eq!(stderr, native_stderr, "{args:?}");
        assert!(stderr.contains("No space left on device"), "{args:?}: {stderr}");
    }
}

/// A program that rewrites a set-user-ID file in a read-write mount leaves it without the
/// bit, as Linux does for a writer without CAP_FSETID, even when the VMM runs as root.
#[test]
fn rewriting_a_set_user_id_file_clears_the_bit() {
    use std::os::unix::fs::PermissionsExt;
    let dir = fresh_dir("set-user-id");
    std::fs::write(dir.join("tool"), b"#!/bin/sh\necho original\n").expect("writing the file");
    std::fs::set_permissions(dir.join("tool"), std::fs::Permissions::from_mode(0o4755))
        .expect("making it set-user-ID");
    let mount = format!("{}:/out", path_str(&dir));
    let args = ["dd", "if=/dev/zero", "of=/out/tool", "bs=4", "count=1", "conv=notrunc"];
    let run = sandboxed_busybox(&["--dir", &mount], &args);
    assert_code(&run, 0);
    let mode = std::fs::metadata(dir.join("tool")).expect("the file").permissions().mode();
    assert_eq!(mode & 0o7777, 0o755, "{}", run.report());
}

/// sha256sum of a 100 MiB file through a read-only mount equals the native sum.
#[test]
fn busybox_sha256sum_of_100_mib_over_a_mount() {
    let dir = fresh_dir("sha256-100m");
    let chunk = common::pseudo_random_bytes(1 << 20);
    let mut big = Vec::with_capacity(100 << 20);
    for index in 0..100u8 {
        big.extend(chunk.iter().map(|b| b.wrapping_add(index)));
    }
    std::fs::write(dir.join("big.bin"), &big).expect("writing 100 MiB");

    let mut native = std::process::Command::new(busybox());
    native.args(["sha256sum", "big.bin"]).current_dir(&dir);
    let native = common::run(native, common::Place::Native, None);
    let sandboxed = sandboxed_busybox(
        &["--dir", &format!("{}:/data:ro", path_str(&dir)), "--workdir", "/data"],
        &["sha256sum", "big.bin"],
    );
    assert_same(&sandboxed, &native);
    assert_eq!(sandboxed.stdout_text().len(), 64 + 2 + 7 + 1);
}

// ---- the policy: escapes and read-only mounts --------------------------------------------------

/// A tree whose symlinks all point out of the mount, and a secret next to it.
fn escape_fixture(test: &str) -> (PathBuf, PathBuf) {
    let base = fresh_dir(test);
    let mounted = base.join("granted");
    std::fs::create_dir_all(mounted.join("inner")).expect("mkdir");
    std::fs::write(base.join("secret"), "HOST SECRET\n").expect("secret");
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, mounted.join(name)).expect("symlink");
    };
    link(path_str(&base.join("secret")), "absolute");
    link("../secret", "relative");
    link("inner/../../secret", "through-inner");
    link("chain2", "chain1");
    link("relative", "chain2");
    link("/", "root");
    link("..", "parent");
    (base, mounted)
}

/// A host symlink that leaves its mount is followed in the guest's namespace, never on the
/// host, as a container follows one in a bind-mounted directory: the secret next to the
/// mount is out of reach whatever the link says, and `/` means the guest's root.
#[test]
fn symlinks_out_of_a_mount_lead_into_the_guest_never_the_host() {
    let (_base, mounted) = escape_fixture("escape");
    let flags = ["--dir".to_string(), format!("{}:/data", path_str(&mounted))];
    for name in ["absolute", "relative", "through-inner", "chain1", "parent/secret"] {
        let path = format!("/data/{name}");
        let program = Program::new(busybox()).flags(flags.iter().cloned());
        let run = program.args(["cat", &path]).sandboxed();
        assert_code(&run, 1);
        assert!(!run.stdout_text().contains("HOST SECRET"), "{name} leaked:\n{}", run.report());
        assert!(run.stderr_text().contains("No such file"), "{name}:\n{}", run.report());
    }
    let run = Program::new(busybox())
        .flags(flags.iter().cloned())
        .args(["head", "-n1", "/data/root/etc/passwd"])
        .sandboxed();
    assert_code(&run, 0);
    assert_eq!(run.stdout_text(), "root:x:0:0:root:/root:/bin/sh\n", "{}", run.report());
    // `..` in the guest's own spelling never reaches the host: it is resolved in the guest,
    // where /data/.. is the guest's root.
    let run = Program::new(busybox())
        .flags(flags.iter().cloned())
        .args(["cat", "/data/../secret", "/data/inner/../../secret"])
        .sandboxed();
    assert_code(&run, 1);
    assert!(run.stderr_text().contains("No such file"), "{}", run.report());
}

/// A tree mounted at its own host path behaves as it does natively even through absolute
/// symlinks, which name paths in that tree (the `--dir $PWD:$PWD` habit of `docker run -v`).
#[test]
fn absolute_symlinks_in_a_tree_mounted_at_its_own_path_match_native() {
    let dir = fresh_dir("same-path");
    let at = |relative: &str| format!("{}/{relative}", path_str(&dir));
    std::fs::create_dir_all(dir.join("real/deeper")).expect("mkdir");
    std::fs::write(dir.join("real/file"), "through an absolute link\n").expect("file");
    std::fs::write(dir.join("real/deeper/leaf"), "leaf\n").expect("leaf");
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, dir.join(name)).expect("symlink");
    };
    link(&at("real/file"), "abs-file");
    link(&at("real"), "abs-dir");
    link("abs-dir/deeper", "relative-through-absolute");
    link(&at("abs-file"), "chain");
    link(&at("nothing"), "dangling");
    link(&at("abs-dir/.."), "abs-parent");

    let mount = format!("{}:{}", path_str(&dir), path_str(&dir));
    for args in [
        vec!["cat".to_string(), at("abs-file"), at("abs-dir/file"), at("chain")],
        vec!["cat".to_string(), at("relative-through-absolute/leaf")],
        vec!["ls".to_string(), at("abs-dir/"), at("abs-parent/real")],
        vec!["find".to_string(), "-L".to_string(), at("abs-dir"), at("relative-through-absolute")],
        vec!["readlink".to_string(), "-f".to_string(), at("chain")],
        vec!["stat".to_string(), "-L".to_string(), "-c".to_string(), "%n %s %F".to_string(),
            at("chain"), at("abs-dir"), at("relative-through-absolute")],
        vec!["cat".to_string(), at("dangling")],
        vec!["ls".to_string(), at("abs-dir/missing")],
    ] {
        let program = Program::new(busybox()).flags(["--dir", &mount]).args(args.iter());
        assert_same(&program.sandboxed(), &program.native());
    }

    // Writing through a dangling absolute link creates its target on the host.
    let run = sandboxed_busybox(&["--dir", &mount], &["cp", &at("real/file"), &at("dangling")]);
    assert_code(&run, 0);
    let created = std::fs::read_to_string(dir.join("nothing")).expect("the created target");
    assert_eq!(created, "through an absolute link\n");
}

/// A relative link that leaves its mount is followed from the directory it really is in,
/// not from the path spelled to reach it through a symlink inside the mount.
#[test]
fn a_relative_link_out_of_a_mount_starts_from_its_real_directory() {
    let base = fresh_dir("leaving-from-real-dir");
    std::fs::create_dir_all(base.join("a/b/m/deep/er")).expect("mkdir");
    std::fs::create_dir_all(base.join("a/x")).expect("mkdir");
    std::fs::write(base.join("a/x/file"), "reached\n").expect("file");
    std::os::unix::fs::symlink("deep/er", base.join("a/b/m/inner")).expect("symlink");
    std::os::unix::fs::symlink("../../../../x", base.join("a/b/m/deep/er/out")).expect("symlink");
    let flags = [
        "--dir".to_string(),
        format!("{}:/a/b/m", path_str(&base.join("a/b/m"))),
        "--dir".to_string(),
        format!("{}:/a/x", path_str(&base.join("a/x"))),
    ];
    let run = Program::new(busybox())
        .flags(flags.iter().cloned())
        .args(["cat", "/a/b/m/inner/out/file"])
        .sandboxed();
    assert_code(&run, 0);
    assert_eq!(run.stdout_text(), "reached\n", "{}", run.report());
}

/// Links from one mount into another and into the guest's /tmp, absolute and relative, are
/// followed there; renames and links across two of them are EXDEV, as between mounts.
#[test]
fn symlinks_lead_from_a_mount_into_other_mounts_and_tmp() {
    let base = fresh_dir("between-mounts");
    let (one, two) = (base.join("one"), base.join("two"));
    std::fs::create_dir_all(&one).expect("mkdir");
    std::fs::create_dir_all(&two).expect("mkdir");
    std::fs::write(two.join("file"), "in the second mount\n").expect("file");
    for (target, name) in [
        ("/two/file", "absolute-to-two"),
        ("../two/file", "relative-to-two"),
        ("/two", "two-dir"),
        ("/tmp/note", "to-tmp"),
    ] {
        std::os::unix::fs::symlink(target, one.join(name)).expect("symlink");
    }
    let flags = [
        "--dir".to_string(),
        format!("{}:/one", path_str(&one)),
        "--dir".to_string(),
        format!("{}:/two", path_str(&two)),
    ];
    let run = |args: &[&str]| {
        Program::new(busybox()).flags(flags.iter().cloned()).args(args.iter().copied()).sandboxed()
    };
    let cat = run(&["cat", "/one/absolute-to-two", "/one/relative-to-two", "/one/two-dir/file"]);
    assert_code(&cat, 0);
    assert_eq!(cat.stdout_text(), "in the second mount\n".repeat(3), "{}", cat.report());

    // busybox sh can't fork: its builtins write /tmp/note and read it back through the link.
    let script = "echo noted > /tmp/note && read line < /one/to-tmp && echo \"$line\"";
    let tmp = run(&["sh", "-c", script]);
    assert_code(&tmp, 0);
    assert_eq!(tmp.stdout_text(), "noted\n", "{}", tmp.report());

    // Links bouncing between the mounts: a loop, and chains of 30 hops (followed) and of 45
    // (more than Linux's 40: ELOOP).
    std::os::unix::fs::symlink("/two/loop", one.join("loop")).expect("symlink");
    std::os::unix::fs::symlink("/one/loop", two.join("loop")).expect("symlink");
    for (chain, hops) in [("short", 30), ("long", 45)] {
        for hop in 0..hops {
            let (dir, next) = if hop % 2 == 0 { (&one, "two") } else { (&two, "one") };
            let target = match hop + 1 == hops {
                true => "/two/file".to_string(),
                false => format!("/{next}/{chain}{}", hop + 1),
            };
            std::os::unix::fs::symlink(target, dir.join(format!("{chain}{hop}"))).expect("link");
        }
    }
    let looped = run(&["cat", "/one/loop", "/one/long0"]);
    assert_code(&looped, 1);
    let loops = looped.stderr_text().matches("Too many levels of symbolic links").count();
    assert_eq!(loops, 2, "{}", looped.report());
    let chained = run(&["cat", "/one/short0"]);
    assert_code(&chained, 0);
    assert_eq!(chained.stdout_text(), "in the second mount\n", "{}", chained.report());

    let moved = run(&["mv", "/one/two-dir/file", "/one/two-dir/renamed"]);
    assert_code(&moved, 0);
    assert!(two.join("renamed").exists(), "{}", moved.report());
    let linked = run(&["ln", "/one/two-dir/renamed", "/one/hard"]);
    assert_code(&linked, 1);
    assert!(linked.stderr_text().contains("cross-device"), "{}", linked.report());
}

#[test]
fn a_read_only_mount_refuses_every_change() {
    let dir = fresh_dir("read-only");
    make_tree(&dir);
    let before = snapshot(&dir);
    let flags = ["--dir", &format!("{}:/data:ro", path_str(&dir)), "--workdir", "/data"];
    for args in [
        &["touch", "new.txt"][..],
        &["touch", "a.txt"],
        &["rm", "a.txt"],
        &["mkdir", "newdir"],
        &["mv", "a.txt", "z.txt"],
        &["chmod", "777", "a.txt"],
        &["ln", "-s", "a.txt", "l"],
        &["ln", "a.txt", "hard"],
        &["rmdir", "empty"],
        &["cp", "b.txt", "a.txt"],
        &["chown", "1000:1000", "a.txt"],
    ] {
        let run = sandboxed_busybox(&flags, args);
        assert_code(&run, 1);
        assert!(
            run.stderr_text().contains("Read-only file system"),
            "{args:?}:\n{}",
            run.report()
        );
    }
    let reads = sandboxed_busybox(&flags, &["cat", "a.txt"]);
    assert_eq!(reads.stdout_text(), "alpha\nbeta\ngamma\n");
    assert_eq!(snapshot(&dir), before, "a read-only mount changed");
}

/// Nothing outside the granted directories exists for the program.
#[test]
fn only_granted_directories_are_visible() {
    let run = sandboxed_busybox(&[], &["ls", "/usr", "/home", "/root", "/bin"]);
    assert_code(&run, 1);
    assert_eq!(run.stdout_text(), "", "{}", run.report());
}

/// Writing one byte far beyond a /tmp file's end never panics the guest kernel: within the
/// tmpfs size limit it works, past it the write is `EFBIG` (by default) or `ENOSPC` (when the
/// limit is larger than the kernel can index), and the file is unharmed either way.
#[test]
fn sparse_writes_far_into_tmp_fail_cleanly() {
    let expected_default = "pwrite at 1048576: 1 ok, size 1048577\n\
        pwrite at 2147483648: -1 File too large, size 1048577\n\
        pwrite at 1125899906842624: -1 File too large, size 1048577\n\
        read back at 1 MiB: 1 'x'\n";
    let run = Program::new(image("tmpfs-sparse")).sandboxed();
    assert_code(&run, 0);
    assert_eq!(run.stdout_text(), expected_default, "{}", run.report());

    let big = Program::new(image("tmpfs-sparse")).flags(["--memory", "16G"]).sandboxed();
    assert_code(&big, 0);
    let text = big.stdout_text();
    assert!(text.starts_with("pwrite at 1048576: 1 ok"), "{}", big.report());
    assert!(text.ends_with("read back at 1 MiB: 1 'x'\n"), "{}", big.report());
}
