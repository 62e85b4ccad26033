//! Arbitrary bytes as one doorbell's worth of ring requests and guest memory, served by the
//! real `RingService` over two real mounts (see `litebox_vmm::fuzzing`). A panic, a host
//! access outside guest memory (guard pages) or a broken property is a crash.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use litebox_vmm::fuzzing::Fixture;

/// The mounts' directory, one per fuzzing process, under the system's temporary directory.
fn root() -> &'static std::path::Path {
    static ROOT: OnceLock<std::path::PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("litebox-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("creating the fuzzing directory");
        root
    })
}

thread_local! {
    static FIXTURE: Fixture = Fixture::new(root().to_path_buf()).expect("the fuzzing fixture");
}

fuzz_target!(|input: &[u8]| {
    FIXTURE.with(|fixture| {
        if let Err(broken) = fixture.check(input) {
            panic!("{broken}");
        }
    });
});
