//! The host-side request handler under arbitrary input: `proptest` feeds random ring contents
//! and guest memory (decoded by `litebox_vmm::fuzzing` into requests that reach deep into the
//! handler) to `RingService` over two real mounts, and the corpus the `cargo fuzz` target
//! keeps (`fuzz/corpus/ring/`) is replayed through the same checks. For every input:
//!
//! - no panic, and no host access outside guest memory (guard pages around it would crash);
//! - every request consumed gets a completion, or the run ends, or the queue was corrupt;
//! - nothing outside the granted mounts is read (a secret beside them never reaches guest
//!   memory) or changed, and the read-only mount stays as it was.
//!
//! `PROPTEST_CASES` sets the number of cases (default 1500); `cargo xtask fuzz --minutes N`
//! runs the coverage-guided fuzzer for real.

use std::path::{Path, PathBuf};

use litebox_vmm::fuzzing::Fixture;
use proptest::prelude::*;

thread_local! {
    static FIXTURE: (tempfile::TempDir, Fixture) = {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let fixture = Fixture::new(dir.path().to_path_buf()).expect("the fuzzing fixture");
        (dir, fixture)
    };
}

fn check(input: &[u8]) -> Result<(), String> {
    FIXTURE.with(|(_, fixture)| fixture.check(input))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_rings_stay_inside_guest_memory_and_the_mounts(
        input in prop::collection::vec(any::<u8>(), 0..2048)
    ) {
        if let Err(broken) = check(&input) {
            return Err(TestCaseError::fail(broken));
        }
    }
}

#[test]
fn the_fuzz_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ring");
    let entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the fuzz corpus {} is missing: {e}", dir.display()))
        .map(|entry| entry.expect("an entry").path())
        .collect();
    assert!(entries.len() >= 10, "the corpus holds only {} inputs", entries.len());
    for path in &entries {
        let input = std::fs::read(path).expect("a corpus input");
        if let Err(broken) = check(&input) {
            panic!("{}: {broken}", path.display());
        }
    }
}
