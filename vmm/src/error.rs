//! The errors a sandbox can end with before or instead of the program's own exit, and the
//! `docker run`-style exit status each maps to (125 sandbox, 126 not executable, 127 missing).

use std::io;
use std::path::PathBuf;

/// What went wrong, with the input that was wrong. Each message is one line that says what to
/// do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: no such file (check the --image path)")]
    ImageNotFound { path: PathBuf },

    #[error("{path}: cannot read the image: {source}")]
    ImageUnreadable { path: PathBuf, source: io::Error },

    #[error("{path}: cannot execute: {reason}")]
    ImageNotExecutable { path: PathBuf, reason: String },

    #[error("{path}: is a dynamically linked program (it asks for {interpreter}); only static \
             programs run in litebox-vmm so far: rebuild it with -static or -static-pie")]
    ImageDynamic { path: PathBuf, interpreter: String },

    #[error("/dev/kvm: {source} (is KVM enabled, and may this user open /dev/kvm read-write?)")]
    KvmUnavailable { source: io::Error },

    #[error("KVM {operation} failed: {source}")]
    Kvm { operation: &'static str, source: kvm_ioctls::Error },

    #[error("{path}: cannot open the --dir host directory: {source} (check that it exists, is a \
             directory and that this user may search it)")]
    MountUnusable { path: PathBuf, source: io::Error },

    #[error("--dir {spec}: {reason}")]
    Mount { spec: String, reason: String },

    #[error("invalid sandbox configuration: {0}")]
    Config(String),

    #[error("guest memory: {0}")]
    GuestMemory(String),

    #[error("guest kernel panicked: {0}")]
    GuestPanic(String),

    #[error("guest failure: {0}")]
    GuestFailure(String),

    #[error("{what}: {source}")]
    Host { what: &'static str, source: io::Error },

    #[error("seccomp: {step} the VMM's filter failed: {source} (does this kernel support \
             seccomp filters? run without confinement to debug)")]
    Confinement { step: &'static str, source: seccompiler::Error },
}

impl Error {
    /// The exit status `litebox-vmm` ends with for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::ImageNotFound { .. } => 127,
            Error::ImageUnreadable { .. }
            | Error::ImageNotExecutable { .. }
            | Error::ImageDynamic { .. } => 126,
            _ => 125,
        }
    }

    pub(crate) fn kvm(operation: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Self {
        move |source| Error::Kvm { operation, source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
