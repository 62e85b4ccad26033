//! The run's limits, each ending the way a user of `docker run` and `ulimit` expects:
//! `--cpu-time` with 152 (SIGXCPU, as RLIMIT_CPU), `--max-output` with 153 (SIGXFSZ, as
//! RLIMIT_FSIZE: the crossing write is cut short, the next one ends the run), `--max-fds` as
//! RLIMIT_NOFILE (EMFILE), and `--memory` bounding the host's resident memory.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_code, busybox, image, Program};
use litebox_vmm::{ExitStatus, Input, Output, Sandbox};

#[test]
fn cpu_time_ends_a_spinning_program_with_152() {
    let started = Instant::now();
    let flags = ["--cpu-time", "1s", "--timeout", "50s"];
    let run = Program::new(image("spin")).flags(flags).sandboxed();
    assert_code(&run, 152);
    assert!(started.elapsed() < Duration::from_secs(40), "the wall timeout ended it instead");
    let report = run.stderr_text();
    assert!(
        report.lines().count() == 1 && report.contains("--cpu-time of 1s"),
        "expected one line naming the limit:\n{}",
        run.report()
    );
}

/// `--timeout` ends a run whose output is stuck in a pipe nobody reads, in about the time
/// it names (a blocked host write gives way to the watchdog's signal).
#[test]
fn timeout_ends_a_program_blocked_writing_to_a_full_pipe() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_litebox-vmm"))
        .args(["--timeout", "1s", "--image"])
        .arg(busybox())
        .args(["--", "dd", "if=/dev/zero", "bs=1M", "count=10"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting litebox-vmm");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for litebox-vmm") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("still blocked 20 s after a --timeout of 1s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(124), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn cpu_time_does_not_count_sleep() {
    let run = Program::new(busybox()).args(["sleep", "2"]);
    let run = run.flags(["--cpu-time", "1s"]).sandboxed();
    assert_code(&run, 0);
}

#[test]
fn max_output_cuts_the_output_and_ends_the_run_with_153() {
    let run = Program::new(busybox()).args(["yes"]).flags(["--max-output", "1000"]).sandboxed();
    assert_code(&run, 153);
    assert_eq!(run.stdout, b"y\n".repeat(500), "not exactly the first 1000 bytes");
    let report = run.stderr_text();
    assert!(
        report.contains("--max-output of 1000 bytes") && report.contains("dropped"),
        "no report of the dropped output:\n{}",
        run.report()
    );
}

#[test]
fn max_output_counts_stdout_and_stderr_at_the_byte() {
    // "1\n2\n3\n" is 6 bytes: exactly the limit is fine.
    let seq = |limit: &str| {
        Program::new(busybox()).args(["seq", "3"]).flags(["--max-output", limit]).sandboxed()
    };
    let exact = seq("6");
    assert_code(&exact, 0);
    assert_eq!(exact.stdout, b"1\n2\n3\n");

    // One byte less: the write is cut to 5 bytes, busybox retries the last one and is stopped.
    let short = seq("5");
    assert_code(&short, 153);
    assert_eq!(short.stdout, b"1\n2\n3");

    // stderr shares the budget: busybox's usage message alone passes 10 bytes.
    let stderr = Program::new(busybox()).args(["cat", "--no-such-flag"]);
    let stderr = stderr.flags(["--max-output", "10"]).sandboxed();
    assert_code(&stderr, 153);
    let native = Program::new(busybox()).args(["cat", "--no-such-flag"]).native();
    let (program, vmm) = stderr.stderr.split_at(10.min(stderr.stderr.len()));
    assert_eq!(program, &native.stderr[..10], "not the first 10 bytes of the message");
    assert!(vmm.starts_with(b"litebox-vmm: "), "then the VMM's report:\n{}", stderr.report());
}

#[test]
fn limits_through_the_library() {
    let output = Sandbox::builder(busybox())
        .arg("yes")
        .max_output(10)
        .stdin(Input::Null)
        .stdout(Output::Capture)
        .stderr(Output::Capture)
        .timeout(common::run_limit())
        .build()
        .and_then(Sandbox::run)
        .expect("running yes");
    assert!(
        matches!(output.status, ExitStatus::OutputLimitExceeded { refused } if refused > 0),
        "{:?}",
        output.status
    );
    assert_eq!(output.exit_code(), 153);
    assert_eq!(output.stdout, b"y\n".repeat(5));

    let spin = Sandbox::builder(image("spin"))
        .cpu_time(Duration::from_millis(500))
        .timeout(common::run_limit())
        .build()
        .and_then(Sandbox::run)
        .expect("running spin");
    assert_eq!(spin.status, ExitStatus::CpuTimeExceeded);
    assert_eq!(spin.exit_code(), 152);

    let files = Sandbox::builder(image("open-many"))
        .max_fds(5)
        .stdout(Output::Capture)
        .build()
        .and_then(Sandbox::run)
        .expect("running open-many");
    let text = String::from_utf8_lossy(&files.stdout);
    assert_eq!(text, "RLIMIT_NOFILE 5 5\nopened 2, then EMFILE\n");
}

#[test]
fn max_fds_is_the_programs_rlimit_nofile() {
    let limited = Program::new(image("open-many")).flags(["--max-fds", "10"]).sandboxed();
    assert_code(&limited, 0);
    assert_eq!(limited.stdout_text(), "RLIMIT_NOFILE 10 10\nopened 7, then EMFILE\n");

    let default = Program::new(image("open-many")).sandboxed();
    assert_code(&default, 0);
    assert_eq!(default.stdout_text(), "RLIMIT_NOFILE 1024 1024\nopened 1021, then EMFILE\n");

    for bad in ["0", "1025", "many"] {
        let run = Program::new(image("open-many")).flags(["--max-fds", bad]).sandboxed();
        assert_code(&run, 125);
        let report = run.stderr_text();
        assert!(report.contains("--max-fds") || report.contains("descriptor"), "{report}");
    }
    for bad in [["--cpu-time", "0"], ["--max-output", "lots"]] {
        let run = Program::new(image("hello-musl")).flags(bad).sandboxed();
        assert_code(&run, 125);
    }
}

/// The host's resident memory while a program uses all of its guest memory stays within the
/// guest memory plus the VMM's own small overhead (measured at about 4 MiB; 16 MiB allowed).
#[test]
fn memory_bounds_the_hosts_resident_memory() {
    const GUEST_MIB: u64 = 128;
    const OVERHEAD_MIB: u64 = 16;
    let mut command = Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
    command
        .args(["--memory", &format!("{GUEST_MIB}M"), "--image"])
        .arg(image("eat-memory"))
        .arg("--")
        .arg("1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0);
    #[expect(clippy::zombie_processes, reason = "reaped below with wait4, for its rusage")]
    let child = command.spawn().expect("starting litebox-vmm");

    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = i32::try_from(child.id()).expect("a pid fits i32");
    // SAFETY: `pid` is our own child, not yet reaped; both out-pointers are valid.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "status {status:#x}");

    let peak_mib = u64::try_from(usage.ru_maxrss).expect("positive") / 1024;
    eprintln!("peak RSS with --memory {GUEST_MIB}M: {peak_mib} MiB");
    assert!(peak_mib >= GUEST_MIB / 2, "the guest did not use its memory ({peak_mib} MiB)");
    assert!(
        peak_mib <= GUEST_MIB + OVERHEAD_MIB,
        "peak RSS {peak_mib} MiB is more than {GUEST_MIB} MiB + {OVERHEAD_MIB} MiB"
    );
}
