//! What the report says about where it ran: the git revision of the workspace and a short
//! description of the machine (CPU, cores, memory, kernel, which KVM module backs
//! `/dev/kvm`) and of the comparison tools' versions.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

/// `{"commit": ..., "dirty": ...}` of the git work tree at `root`, or nulls without git.
pub fn revision(root: &Path) -> Value {
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
    json!({ "commit": commit, "dirty": dirty })
}

/// The machine and tools, as far as /proc, /sys and `--version` tell.
pub fn describe() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, name)| name.trim().to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok();
    let kvm: Vec<&str> = ["kvm_pvm", "kvm_intel", "kvm_amd"]
        .into_iter()
        .filter(|module| Path::new("/sys/module").join(module).exists())
        .collect();
    json!({
        "cpu": cpu,
        "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "memory_mib": memory_kib.map(|kib| kib / 1024),
        "kernel": kernel.map(|k| k.trim().to_string()),
        "kvm_modules": kvm,
        "tools": {
            "bwrap": version("bwrap", "--version"),
            "qemu-x86_64": version("qemu-x86_64", "--version"),
            "busybox": version("/bin/busybox", "--help"),
        },
    })
}

/// The first line a tool prints about itself.
fn version(program: &str, flag: &str) -> Option<String> {
    let output = Command::new(program).arg(flag).output().ok()?;
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(str::to_string)
}

/// One line for the report's heading, e.g. `AMD EPYC, 2 CPUs, kvm_pvm, Linux 6.18`.
pub fn one_line(machine: &Value) -> String {
    let kvm: Vec<&str> = machine["kvm_modules"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "{}, {} CPUs, {} MiB, KVM: {}, Linux {}",
        machine["cpu"].as_str().unwrap_or("unknown CPU"),
        machine["logical_cpus"],
        machine["memory_mib"],
        if kvm.is_empty() {
            "none".to_string()
        } else {
            kvm.join("+")
        },
        machine["kernel"].as_str().unwrap_or("?"),
    )
}
