//! End-to-end tests: real, unmodified Linux programs run by the real `litebox-vmm` binary on
//! the machine's `/dev/kvm`. Wherever a native run means something, the sandboxed run must
//! match it byte for byte on stdout and in the exit code. The programs are Debian's
//! busybox-static and the test images built by `cargo xtask images` (sources in `images/`).
//!
//! Also covered: what the sandbox says and returns for bad inputs (missing, non-ELF and dynamic
//! images, a bad flag), for programs killed by a signal, and for `--timeout`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    assert_code, assert_one_error_line, assert_same, busybox, has_interp, image, kill_line,
    pseudo_random_bytes, run, Place, Program,
};

/// Runs `busybox ARGS` in the sandbox and natively and demands the same stdout and status.
fn busybox_same(args: &[&str], stdin: Option<&[u8]>) -> common::Run {
    let mut program = Program::new(busybox()).args(args.iter().copied());
    if let Some(bytes) = stdin {
        program = program.stdin(bytes);
    }
    let sandboxed = program.sandboxed();
    assert_same(&sandboxed, &program.native());
    sandboxed
}

// ---- busybox ---------------------------------------------------------------------------------

#[test]
fn busybox_echo() {
    let run = busybox_same(&["echo", "hello,", "sandboxed  world", "", "-x"], None);
    assert_eq!(run.stdout_text(), "hello, sandboxed  world  -x\n");
}

#[test]
fn busybox_printf() {
    busybox_same(
        &["printf", "%s=%d (%x) %5.2f|\n", "a", "42", "255", "3.14159"],
        None,
    );
    busybox_same(&["printf", "[%s]\n", "one", "two words", "three"], None);
}

#[test]
fn busybox_true_and_false() {
    let truth = busybox_same(&["true"], None);
    assert_code(&truth, 0);
    let falsehood = busybox_same(&["false"], None);
    assert_code(&falsehood, 1);
}

#[test]
fn busybox_seq() {
    let run = busybox_same(&["seq", "1", "100000"], None);
    assert!(
        run.stdout.ends_with(b"\n99999\n100000\n"),
        "{}",
        run.report()
    );
}

#[test]
fn busybox_sha256sum_of_stdin() {
    let data = pseudo_random_bytes(1 << 20);
    busybox_same(&["sha256sum"], Some(&data));
}

#[test]
fn busybox_cat_from_stdin() {
    // Arbitrary bytes, newlines and NULs included, must come through unchanged.
    let data = pseudo_random_bytes(200 * 1024);
    let run = busybox_same(&["cat"], Some(&data));
    assert!(
        run.stdout == data,
        "cat changed its input\n{}",
        run.report()
    );
}

#[test]
fn busybox_wc_from_stdin() {
    let text: String = (0..5000)
        .map(|i| format!("line {i} of some words\n"))
        .collect();
    busybox_same(&["wc"], Some(text.as_bytes()));
}

#[test]
fn busybox_uname_machine() {
    let run = busybox_same(&["uname", "-m"], None);
    assert_eq!(run.stdout_text(), "x86_64\n");
}

#[test]
fn busybox_date_is_host_time() {
    let before = unix_seconds();
    let run = Program::new(busybox()).args(["date", "+%s"]).sandboxed();
    let after = unix_seconds();

    assert_code(&run, 0);
    let guest: u64 = run
        .stdout_text()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("date printed no number ({e})\n{}", run.report()));
    assert!(
        before.saturating_sub(1) <= guest && guest <= after + 1,
        "guest time {guest} is not within 1 s of the host's [{before}, {after}]"
    );
}

#[test]
fn busybox_sleep_takes_its_time() {
    // What starting and ending a sandbox costs, so the sleep's own duration can be judged.
    let baseline = Program::new(busybox()).args(["true"]).sandboxed();
    assert_code(&baseline, 0);

    let run = Program::new(busybox()).args(["sleep", "0.3"]).sandboxed();
    assert_code(&run, 0);
    assert!(
        run.wall >= Duration::from_millis(300),
        "slept too little\n{}",
        run.report()
    );
    assert!(
        run.wall < Duration::from_secs(1) + baseline.wall,
        "slept too long (an empty run takes {:?})\n{}",
        baseline.wall,
        run.report()
    );
}

#[test]
fn busybox_env_is_exactly_the_given_pairs() {
    let program = Program::new(busybox())
        .args(["env"])
        .env("A", "1")
        .env("B", "two");
    let run = program.sandboxed();
    assert_code(&run, 0);
    assert_eq!(run.stdout_text(), "A=1\nB=two\n", "{}", run.report());
    assert_same(&run, &program.native());

    // A key given twice keeps its last value, as with `docker run -e`.
    let twice = Program::new(busybox()).args(["env"]).env("A", "1").env("A", "2").sandboxed();
    assert_eq!(twice.stdout_text(), "A=2\n", "{}", twice.report());
}

#[test]
fn busybox_env_is_empty_by_default() {
    let run = Program::new(busybox()).args(["env"]).sandboxed();
    assert_code(&run, 0);
    assert_eq!(
        run.stdout_text(),
        "",
        "the host's environment leaked\n{}",
        run.report()
    );
}

// ---- our test programs -----------------------------------------------------------------------

#[test]
fn hello_musl() {
    let program = Program::new(image("hello-musl"));
    let run = program.sandboxed();
    assert_same(&run, &program.native());
    assert_eq!(run.stdout_text(), "hello, world\n");
}

#[test]
fn hello_musl_static_pie_with_args() {
    let program = Program::new(image("hello-musl-pie")).args(["first", "second arg", "", "-v"]);
    let run = program.sandboxed();
    assert_same(&run, &program.native());
    assert_eq!(run.stdout_text(), "hello, world\nfirst\nsecond arg\n\n-v\n");
}

#[test]
fn rust_demo() {
    let program = Program::new(image("rust-demo")).args(["alpha", "beta gamma"]);
    let run = program.sandboxed();
    assert_same(&run, &program.native());
    assert_code(&run, 0);
    assert!(
        run.stdout_text().contains("\nelapsed ok\n"),
        "{}",
        run.report()
    );

    let program = Program::new(image("rust-demo")).args(["--exit", "7"]);
    let run = program.sandboxed();
    assert_same(&run, &program.native());
    assert_code(&run, 7);
}

fn args_and_env(name: &str) {
    let path = image(name);
    let program = Program::new(&path)
        .args(["one", "two words", ""])
        .env("A", "1")
        .env("B", "two words")
        .env("EMPTY", "");
    let run = program.sandboxed();
    assert_same(&run, &program.native());

    let expected = format!(
        "argc=4\nargv[0]={}\nargv[1]=one\nargv[2]=two words\nargv[3]=\n\
         env: A=1\nenv: B=two words\nenv: EMPTY=\n",
        path.display()
    );
    assert_eq!(run.stdout_text(), expected, "{}", run.report());
}

#[test]
fn args_env_glibc() {
    args_and_env("args-env-glibc");
}

#[test]
fn args_env_musl() {
    args_and_env("args-env-musl");
}

#[test]
fn argv0_flag_renames_the_program() {
    let path = image("args-env-musl");
    let run = Program::new(&path)
        .flags(["--argv0", "renamed"])
        .args(["x"])
        .sandboxed();

    let mut native = Command::new(&path);
    native.arg0("renamed").arg("x").env_clear();
    let native = run_native(native);
    assert_same(&run, &native);
    assert_eq!(run.stdout_text(), "argc=2\nargv[0]=renamed\nargv[1]=x\n");
}

#[test]
fn syscalls_answered_like_linux() {
    let path = image("syscalls");
    let native = Program::new(&path).native();
    assert_code(&native, 0);

    let run = Program::new(&path).args(["--expect-cwd", "/"]).sandboxed();
    assert!(
        !run.stdout_text().contains("FAIL"),
        "a check failed\n{}",
        run.report()
    );
    assert!(
        run.stdout_text().contains("syscalls done: "),
        "{}",
        run.report()
    );
    assert_code(&run, 0);
}

#[test]
fn wild_pointers_get_efault() {
    let expected = std::fs::read(image("wild-pointers.expected")).expect("reading .expected");
    let run = Program::new(image("wild-pointers"))
        .stdin(&b"abc\n"[..])
        .sandboxed();
    assert_code(&run, 0);
    assert!(
        run.stdout == expected,
        "differs from wild-pointers.expected:\n{}\n{}",
        String::from_utf8_lossy(&expected),
        run.report()
    );
}

// ---- programs killed by a signal -------------------------------------------------------------

/// The program dies by `signal` natively, and in the sandbox litebox-vmm exits 128+signal and
/// says so in one line naming the program and the signal.
fn killed_by(name: &str, signal: i32, signal_name: &str) -> String {
    let path = image(name);
    let native = Program::new(&path).native();
    assert_code(&native, 128 + signal);

    let run = Program::new(&path).sandboxed();
    assert_code(&run, 128 + signal);
    let line = kill_line(&run);
    let wanted = format!("killed by {signal_name} (signal {signal})");
    assert!(line.contains(&wanted), "expected `{wanted}` in: {line}");
    assert!(
        line.contains(&path.display().to_string()),
        "no program path in: {line}"
    );
    line
}

#[test]
fn null_deref_is_sigsegv_at_zero() {
    let line = killed_by("null-deref", 11, "SIGSEGV");
    let at = line
        .find("fault address 0x0")
        .unwrap_or_else(|| panic!("no `fault address 0x0` in: {line}"));
    let next = line[at + "fault address 0x0".len()..].chars().next();
    assert!(
        !next.is_some_and(|c| c.is_ascii_hexdigit()),
        "not address 0: {line}"
    );
    assert!(line.contains("rip 0x"), "no rip in: {line}");
}

#[test]
fn ud2_is_sigill() {
    killed_by("ud2", 4, "SIGILL");
}

#[test]
fn div_zero_is_sigfpe() {
    killed_by("div-zero", 8, "SIGFPE");
}

#[test]
fn int3_is_sigtrap() {
    killed_by("int3", 5, "SIGTRAP");
}

/// `litebox-vmm … 2>&1 | head -1`: the reader leaves, the program dies of SIGPIPE (141, as
/// natively, and as quietly as a shell leaves it), and litebox-vmm's own stderr, on the same
/// closed pipe, must not turn that into a panic (which its seccomp filter then killed).
#[test]
fn a_reader_leaving_a_shared_stdout_and_stderr_pipe_is_sigpipe() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_litebox-vmm"))
        .args(["--image", busybox().to_str().expect("utf-8"), "--", "yes"])
        .env("RUST_BACKTRACE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(writer.try_clone().expect("dup"))
        .stderr(writer)
        .spawn()
        .expect("start litebox-vmm");
    let mut first = [0u8; 2];
    std::io::Read::read_exact(&mut &reader, &mut first).expect("the first line");
    assert_eq!(&first, b"y\n");
    drop(reader);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(141), "{status:?}");
}

/// A stdio stream closed for litebox-vmm (`>&-`, `<&-`) is closed for the program too: it
/// gets EBADF, as natively, instead of a /dev/null that swallows its output.
#[test]
fn stdio_closed_for_the_vmm_is_closed_for_the_program() {
    for (closed_fd, args) in [(1, ["echo", "hi"]), (0, ["wc", "-c"]), (2, ["ls", "/missing"])] {
        let close_it = move |command: &mut Command| {
            // SAFETY: runs in the forked child before exec; close is async-signal-safe.
            unsafe {
                command.pre_exec(move || {
                    libc::close(closed_fd);
                    Ok(())
                });
            }
        };
        let mut sandboxed = Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
        sandboxed.args(["--image", busybox().to_str().expect("utf-8"), "--"]).args(args);
        close_it(&mut sandboxed);
        let mut native = Command::new(busybox());
        native.args(args);
        close_it(&mut native);
        let (sandboxed, native) =
            (run(sandboxed, Place::Sandbox, None), run(native, Place::Native, None));
        assert_same(&sandboxed, &native);
        assert_code(&sandboxed, 1);
        if closed_fd != 2 {
            let said = sandboxed.stderr_text().contains("Bad file descriptor");
            assert!(said, "{}", sandboxed.report());
        } else {
            assert_eq!(sandboxed.stderr_text(), "", "{}", sandboxed.report());
        }
    }
}

/// A SIGSEGV the program sends itself names no faulting address, since none faulted.
#[test]
fn a_segv_sent_by_kill_reports_no_fault() {
    let run = Program::new(busybox()).args(["sh", "-c", "kill -SEGV $$"]).sandboxed();
    assert_code(&run, 139);
    assert_eq!(
        run.stderr_text().trim_end(),
        format!("litebox-vmm: {}: killed by SIGSEGV (signal 11)", busybox().display()),
        "{}",
        run.report()
    );
}

#[test]
fn timeout_ends_a_spinning_program() {
    let run = Program::new(image("spin"))
        .flags(["--timeout", "1s"])
        .sandboxed();
    assert_code(&run, 124);
    assert!(
        run.wall < Duration::from_secs(5),
        "took {:?}\n{}",
        run.wall,
        run.report()
    );
}

// ---- bad inputs ------------------------------------------------------------------------------

#[test]
fn missing_image_is_127() {
    let path = scratch_dir().join("no-such-program");
    let run = Program::new(&path).sandboxed();
    assert_code(&run, 127);
    let line = assert_one_error_line(&run);
    assert!(
        line.contains(&path.display().to_string()),
        "no path in: {line}"
    );
}

#[test]
fn text_file_is_126() {
    let path = scratch_dir().join("not-an-elf.txt");
    std::fs::write(&path, "just some text\n").expect("writing the text file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let run = Program::new(&path).sandboxed();
    assert_code(&run, 126);
    assert_one_error_line(&run);
}

/// Images that aren't regular files are refused at once, before anything is read: a device
/// that never ends, a FIFO nobody writes to (either would hang or fill the VMM), and a
/// directory.
#[test]
fn devices_fifos_and_directories_are_126_at_once() {
    let fifo = scratch_dir().join("image-fifo");
    let _ = std::fs::remove_file(&fifo);
    let c_path = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: `c_path` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo");
    for path in [PathBuf::from("/dev/zero"), fifo, scratch_dir()] {
        let started = std::time::Instant::now();
        let run = Program::new(&path).flags(["--timeout", "10s"]).sandboxed();
        assert_code(&run, 126);
        let line = assert_one_error_line(&run);
        assert!(line.contains(&path.display().to_string()), "no path in: {line}");
        assert!(started.elapsed().as_secs() < 5, "{} took {:?}", path.display(), started.elapsed());
    }
}

/// A timeout too long to add to the clock means no timeout, not a crash.
#[test]
fn an_endless_timeout_is_no_timeout() {
    let run = Program::new(image("hello-musl"))
        .flags(["--timeout", "9223372036854775807s"])
        .sandboxed();
    assert_code(&run, 0);
    assert_eq!(run.stdout_text(), "hello, world\n", "{}", run.report());
}

#[test]
fn dynamic_elf_is_126() {
    let path = PathBuf::from("/bin/true");
    assert!(
        has_interp(&path),
        "/bin/true should be coreutils' dynamic build"
    );
    let run = Program::new(&path).sandboxed();
    assert_code(&run, 126);
    let line = assert_one_error_line(&run);
    assert!(
        line.to_lowercase().contains("dynamic"),
        "no `dynamic` in: {line}"
    );
}

/// A guest memory size that isn't a whole number of pages is rounded up, not refused by KVM.
#[test]
fn memory_of_any_size_is_rounded_up_to_pages() {
    let run = Program::new(image("hello-musl")).flags(["--memory", "100000000"]).sandboxed();
    assert_code(&run, 0);
}

#[test]
fn bad_flag_is_125() {
    let run = Program::new(image("hello-musl"))
        .flags(["--memory", "lots"])
        .sandboxed();
    assert_code(&run, 125);
    assert_one_error_line(&run);
    assert!(
        run.stdout.is_empty(),
        "the program ran anyway\n{}",
        run.report()
    );
}

/// A bad command line is one line that names what is wrong: the missing `--image`, the flag
/// whose value is negative (not taken for another flag), a mistyped `--dir` option.
#[test]
fn bad_command_lines_name_what_is_wrong() {
    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
        command.args(args);
        common::run(command, common::Place::Sandbox, None)
    };
    let hello = image("hello-musl");
    let hello = hello.to_str().expect("utf-8 path");
    for (args, named) in [
        (vec![], "--image <PROG>"),
        (vec!["--memory", "-5M", "--image", hello], "'-5M' for '--memory <SIZE>'"),
        (vec!["--timeout", "-1", "--image", hello], "'-1' for '--timeout <DURATION>'"),
        (vec!["--dir", "/tmp:/data:RO", "--image", hello], "unknown option \"RO\""),
    ] {
        let run = cli(&args);
        assert_code(&run, 125);
        let line = assert_one_error_line(&run);
        assert!(line.contains(named), "{named:?} not in: {line}");
    }
}

// ---- helpers ---------------------------------------------------------------------------------

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn run_native(command: Command) -> common::Run {
    run(command, Place::Native, None)
}

/// A directory of this test crate's own for files the tests make.
fn scratch_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("programs");
    std::fs::create_dir_all(&dir).expect("creating the scratch directory");
    dir
}

/// musl and glibc both read the clock through our vDSO (no clock_gettime syscall in 10,000
/// reads), and the legacy vsyscall page is emulated (exactly one gettimeofday and one time
/// syscall are counted: the two vsyscall calls).
#[test]
fn clock_reads_use_the_vdso_and_vsyscalls_are_emulated() {
    for name in ["clock-musl", "clock-glibc"] {
        let run = Program::new(image(name)).flags(["--stats"]).args(["v"]).sandboxed();
        assert_code(&run, 0);
        assert!(!run.stdout_text().contains("FAIL"), "{}", run.report());
        assert!(run.stdout_text().contains("ok vsyscall-time"), "{}", run.report());
        let stats = run.stderr_text();
        let syscalls = stats
            .lines()
            .find(|line| line.trim_start().starts_with("syscalls:"))
            .unwrap_or_else(|| panic!("no syscalls line in --stats\n{}", run.report()));
        assert!(!syscalls.contains("clock_gettime"), "{name}: {syscalls}");
        assert!(syscalls.contains("gettimeofday 1") && syscalls.contains("time 1"), "{syscalls}");
    }
}

/// Syscalls the kernel lacks return ENOSYS every time and are logged once each, by name
/// (or by number when the number has no name), each line naming its own syscall even when
/// several are logged between two doorbells.
#[test]
fn unsupported_syscalls_are_enosys_and_logged_once_by_name() {
    let run = Program::new(image("unsupported")).flags(["--log-level", "info"]).sandboxed();
    assert_code(&run, 0);
    assert_eq!(
        run.stdout_text(),
        "socket: -1 ENOSYS\nshmget: -1 ENOSYS\nsocket again: -1 ENOSYS\nptrace: -1 ENOSYS\n\
         number 1000: -1 ENOSYS\nshmget again: -1 ENOSYS\n",
        "{}",
        run.report()
    );
    let logged: Vec<String> = run
        .stderr_text()
        .lines()
        .filter(|line| line.contains("syscall"))
        .map(|line| line.split_once("guest: ").map_or(line, |(_, message)| message).to_owned())
        .collect();
    assert_eq!(
        logged,
        [
            "unsupported syscall socket (41): ENOSYS",
            "unsupported syscall shmget (29): ENOSYS",
            "unsupported syscall ptrace (101): ENOSYS",
            "unknown syscall number 1000: ENOSYS",
        ],
        "{}",
        run.report()
    );
}

/// Signals a program sends itself end it (or not) as they end the same binary natively:
/// `abort` is SIGABRT (134) with musl, whose `raise` blocks signals around its `tkill`, and
/// with glibc; `raise(SIGUSR1)` is 138; signal 0, an ignored signal, SIGCHLD (with and
/// without a handler, like the other signals ignored by default) and a kill of a process that
/// doesn't exist return as on Linux.
#[test]
fn signals_sent_to_self_match_native() {
    for image_name in ["raise-musl", "raise-glibc"] {
        let cases = ["abort", "usr1", "kill0", "ignored", "child", "caught", "other", "everyone"];
        for case in cases {
            let program = Program::new(image(image_name)).args([case]);
            let native = program.native();
            let sandboxed = program.sandboxed();
            assert_same(&sandboxed, &native);
        }
    }
}

/// `writev` of 1024 one-byte iovecs that don't touch each other writes all 1024 bytes in
/// one call, as Linux does, though one ring request carries fewer ranges; `readv` of a short
/// stdin returns what there was.
#[test]
fn writev_of_every_iovec_linux_allows() {
    let program = Program::new(image("writev-many")).stdin(&b"12345"[..]);
    let native = program.native();
    let sandboxed = program.sandboxed();
    assert_same(&sandboxed, &native);
    assert_eq!(sandboxed.stdout.len(), 1024);
    assert_eq!(sandboxed.stderr_text(), "writev: 1024, readv: 5\n", "{}", sandboxed.report());
}

/// Neighbouring anonymous mappings (which the kernel merges, as Linux does) keep every
/// page's contents and protection through mprotect, munmap and mremap across them.
#[test]
fn merged_mappings_behave_like_linux() {
    let program = Program::new(image("mmap-merge"));
    let native = program.native();
    assert_code(&native, 0);
    assert_same(&program.sandboxed(), &native);
}

/// select, pselect6 and ppoll answer as on Linux (musl and glibc call them differently).
#[test]
fn select_pselect_and_ppoll_match_native() {
    for name in ["select-musl", "select-glibc"] {
        let program = Program::new(image(name)).stdin(&b"a line\n"[..]);
        let native = program.native();
        assert_code(&native, 0);
        let sandboxed = program.sandboxed();
        assert_same(&sandboxed, &native);
        assert!(sandboxed.stdout_text().contains("waited 0.2 s: yes"), "{}", sandboxed.report());
    }
}

/// Reservations larger than guest memory (PROT_NONE and MAP_NORESERVE, as Go's and the JVM's
/// heaps start) succeed as on Linux, and the parts the program makes writable work.
#[test]
fn reservations_larger_than_guest_memory_succeed() {
    let program = Program::new(image("reserve"));
    let native = program.native();
    assert_code(&native, 0);
    let sandboxed = program.sandboxed();
    assert_same(&sandboxed, &native);
    assert_eq!(sandboxed.stdout_text().matches("mapped").count(), 3, "{}", sandboxed.report());
}

/// A buffer whose pages the kernel reused (so they lie in guest-physical memory in no order)
/// reaches a /tmp file and a pipe intact: the host splits a copy's sources from its targets
/// before it turns user ranges into physical pieces.
#[test]
fn buffers_on_reused_pages_reach_tmpfs_and_pipes_intact() {
    let program = Program::new(image("reused-pages"));
    let native = program.native();
    assert_code(&native, 0);
    let sandboxed = program.sandboxed();
    assert_same(&sandboxed, &native);
    assert_eq!(sandboxed.stdout_text().matches("same yes").count(), 2, "{}", sandboxed.report());
}
