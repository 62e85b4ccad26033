//! Tests of litebox-vmm as a library, the way a control plane embeds it: `Sandbox::builder`
//! → `build` → `run`, output captured in memory. Two sandboxes run at the same time on two
//! threads, each a VM of its own on the real `/dev/kvm`, and neither may see the other's
//! output.

mod common;

use std::thread;

use litebox_vmm::{Input, Output, Sandbox};

/// Runs `busybox seq FIRST LAST` in a sandbox; returns stdout and the exit code.
fn seq_in_sandbox(first: u32, last: u32) -> Result<(Vec<u8>, i32), String> {
    let (first, last) = (first.to_string(), last.to_string());
    let run = || -> Result<_, litebox_vmm::Error> {
        let outcome = Sandbox::builder(common::busybox())
            .args(["seq", first.as_str(), last.as_str()])
            .stdin(Input::Null)
            .stdout(Output::Capture)
            .timeout(common::run_limit())
            .build()?
            .run()?;
        Ok((outcome.stdout.clone(), outcome.exit_code()))
    };
    run().map_err(|e| e.to_string())
}

fn seq_text(first: u32, last: u32) -> String {
    (first..=last).map(|n| format!("{n}\n")).collect()
}

#[test]
fn two_sandboxes_at_once() {
    let ranges = [(1, 20000), (50000, 70000)];
    let handles: Vec<_> = ranges
        .iter()
        .map(|&(first, last)| thread::spawn(move || seq_in_sandbox(first, last)))
        .collect();

    for (handle, (first, last)) in handles.into_iter().zip(ranges) {
        let (stdout, code) = handle
            .join()
            .expect("sandbox thread panicked")
            .unwrap_or_else(|e| panic!("sandbox for seq {first} {last} failed: {e}"));
        assert_eq!(code, 0, "seq {first} {last} exited {code}");
        assert!(
            stdout == seq_text(first, last).as_bytes(),
            "seq {first} {last}: wrong output ({} bytes, starting {:?})",
            stdout.len(),
            String::from_utf8_lossy(&stdout[..stdout.len().min(64)])
        );
    }
}

#[test]
fn builder_runs_a_test_image_with_args_and_env() {
    let outcome = Sandbox::builder(common::image("args-env-musl"))
        .arg("only")
        .argv0("demo")
        .env("K", "V")
        .memory(256 << 20)
        .timeout(common::run_limit())
        .stdin(Input::Bytes(b"unused\n".to_vec()))
        .stdout(Output::Capture)
        .stderr(Output::Capture)
        .build()
        .expect("building the sandbox")
        .run()
        .expect("running the sandbox");
    assert_eq!(
        outcome.exit_code(),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "argc=2\nargv[0]=demo\nargv[1]=only\nenv: K=V\n"
    );
}

/// With stdout captured in memory the host can't splice a file to it, so `cat` of a mounted
/// file (sendfile) falls back to copying through the guest, and the capture has every byte.
#[test]
fn captured_stdout_gets_a_mounted_file_sent_with_sendfile() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("library-sendfile");
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    let data = common::pseudo_random_bytes(3 << 20);
    std::fs::write(dir.join("data.bin"), &data).expect("writing the file");
    let outcome = Sandbox::builder(common::busybox())
        .args(["cat", "/data/data.bin"])
        .dir(&dir, "/data", true)
        .stdin(Input::Null)
        .stdout(Output::Capture)
        .timeout(common::run_limit())
        .build()
        .and_then(|sandbox| sandbox.run())
        .unwrap_or_else(|e| panic!("the sandbox failed: {e}"));
    assert_eq!(outcome.exit_code(), 0);
    assert!(outcome.stdout == data, "captured {} bytes of {}", outcome.stdout.len(), data.len());
}
