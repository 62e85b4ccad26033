//! The VMM confined by seccomp: the CLI filters every one of its threads once the VM is set up
//! (the kernel shows `Seccomp: 2` and `NoNewPrivs: 1` for each), a forbidden syscall kills it
//! with `SIGSYS` instead of being allowed, and a library user who asks for
//! `Confinement::Thread` gets a filtered run thread while its own threads stay free.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_code, image, Program};
use litebox_vmm::{Confinement, ExitStatus, Input, Output, Sandbox};

/// The value of `field` (e.g. "Seccomp") in a `/proc/.../status` file.
fn status_field(status_path: &Path, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(status_path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|value| value.trim().to_string())
}

/// `(thread name, Seccomp, NoNewPrivs)` of every thread of process `pid`.
fn threads_of(pid: u32) -> Vec<(String, String, String)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .flatten()
        .map(|task| {
            let status = task.path().join("status");
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            (
                comm.trim().to_string(),
                status_field(&status, "Seccomp").unwrap_or_default(),
                status_field(&status, "NoNewPrivs").unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn the_cli_confines_every_thread_once_the_vm_is_set_up() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_litebox-vmm"))
        .args(["--timeout", "20s", "--image"])
        .arg(image("spin"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting litebox-vmm");

    // The filter goes on after setup; wait until every thread shows it (the vCPU spins).
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        seen = threads_of(child.id());
        let confined = |t: &(String, String, String)| t.1 == "2" && t.2 == "1";
        if seen.len() >= 3 && seen.iter().all(confined) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().expect("waiting for litebox-vmm");

    // main, the run thread and the watchdog: all in seccomp filter mode, no new privileges.
    assert!(seen.len() >= 3, "expected the main, run and watchdog threads: {seen:?}");
    assert!(seen.iter().any(|t| t.0 == "litebox-run"), "no run thread: {seen:?}");
    for (name, seccomp, no_new_privs) in &seen {
        assert_eq!(seccomp, "2", "thread {name} is not in seccomp filter mode: {seen:?}");
        assert_eq!(no_new_privs, "1", "thread {name} may still gain privileges: {seen:?}");
    }
    assert_eq!(status.signal(), Some(libc::SIGKILL), "it was still running: {status}");
}

#[test]
fn a_forbidden_syscall_kills_the_vmm() {
    // Control: the same run without the forbidden call is fine.
    let clean = Program::new(image("hello-musl")).sandboxed();
    assert_code(&clean, 0);

    // Once confined, the VMM opens a host file by path: the kernel kills the whole process.
    let mut command = Command::new(env!("CARGO_BIN_EXE_litebox-vmm"));
    command.arg("--attempt-forbidden-syscall").arg("--image").arg(image("hello-musl"));
    let output = command.stdin(Stdio::null()).output().expect("running litebox-vmm");
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSYS),
        "the forbidden open was not killed: {} (stderr: {})",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty(), "the guest ran after the forbidden syscall");
}

#[test]
fn a_library_run_confines_only_its_own_thread() {
    // The spinning guest keeps the run thread busy while this thread looks at it.
    let run = thread::spawn(|| {
        Sandbox::builder(image("spin"))
            .confinement(Confinement::Thread)
            .timeout(Duration::from_secs(3))
            .stdin(Input::Null)
            .stdout(Output::Capture)
            .build()
            .expect("building the sandbox")
            .run()
            .expect("running the sandbox")
    });
    let started = Instant::now();
    let mut run_thread = None;
    while run_thread.is_none() && started.elapsed() < Duration::from_secs(10) {
        run_thread = threads_of(std::process::id())
            .into_iter()
            .find(|t| t.0 == "litebox-run" && t.1 == "2");
        thread::sleep(Duration::from_millis(20));
    }
    let outcome = run.join().expect("the sandbox thread panicked");

    let run_thread = run_thread.expect("no confined litebox-run thread appeared");
    assert_eq!(run_thread.2, "1", "the run thread may still gain privileges");
    assert_eq!(outcome.status, ExitStatus::TimedOut);
    let own = status_field(Path::new("/proc/thread-self/status"), "Seccomp");
    assert_eq!(own.as_deref(), Some("0"), "the embedder's thread was filtered");

    // The embedder is unaffected: it opens host files and runs more sandboxes.
    let hello = Sandbox::builder(image("hello-musl"))
        .stdout(Output::Capture)
        .build()
        .and_then(Sandbox::run)
        .expect("an unconfined run after a confined one");
    assert_eq!(hello.stdout, b"hello, world\n");
}
