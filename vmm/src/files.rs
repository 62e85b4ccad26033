//! Host directories granted with `--dir HOST:GUEST[:ro]`, served to the guest's file requests.
//!
//! (Being written: every file opcode answers `ENOSYS` until then.)

use shim_abi::Request;
use vm_memory::GuestMemoryMmap;

/// The open host directories and files of one sandbox.
#[derive(Debug, Default)]
pub struct FileService {}

impl FileService {
    /// Carries out a file request (`Opcode::Open` and the path and handle requests, and the
    /// stdio-style requests on handles >= `FIRST_FILE_HANDLE`).
    pub fn handle(&mut self, memory: &GuestMemoryMmap, request: &Request) -> i64 {
        let _ = (memory, request);
        -i64::from(libc::ENOSYS)
    }
}
