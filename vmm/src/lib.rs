//! litebox-vmm: a KVM micro-VMM that runs one unmodified static Linux x86-64 program under a
//! small Rust library kernel, with no emulated devices. The program's system calls are answered
//! in the guest; only stdio, the clock, entropy and the exit reach the host, over a
//! shared-memory request ring that the host checks request by request.
//!
//! ```no_run
//! use litebox_vmm::{Output, Sandbox};
//! let outcome = Sandbox::builder("/bin/busybox")
//!     .args(["echo", "hello"])
//!     .stdout(Output::Capture)
//!     .build()?
//!     .run()?;
//! assert_eq!(outcome.stdout, b"hello\n");
//! # Ok::<(), litebox_vmm::Error>(())
//! ```

mod boot;
mod error;
pub mod files;
mod fs_config;
#[doc(hidden)]
pub mod fuzzing;
mod guest_memory;
mod loader;
mod ring;
mod sandbox;
pub mod seccomp;
mod stats;
mod stdio;
mod vcpu;

pub use error::{Error, Result};
pub use files::{FileService, Mount};
pub use seccomp::{one_malloc_arena, Confinement};
pub use sandbox::{ExitStatus, RunOutcome, Sandbox, SandboxBuilder, DEFAULT_MEMORY};
pub use stats::Stats;
pub use stdio::{Input, Output};

/// The embedded guest kernel ELF (for tools that inspect it, such as the instruction scan).
pub fn guest_kernel_image() -> &'static [u8] {
    sandbox::guest_kernel()
}
