//! Micro-benchmarks of the host-side pieces a ring request goes through, with criterion:
//! decoding a request slot, and the `FileService` serving `stat` (a path resolved beneath a
//! mount with `openat2`), `open`+`close` and `fstat` of a handle, on a guest memory this
//! benchmark owns. No VM is created: this is the VMM's share of a ring round trip.
//!
//! Run with `cargo bench -p litebox-benches --bench host`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use litebox_vmm::{FileService, Mount};
use shim_abi::{Opcode, Request, SgEntry};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use zerocopy::{FromBytes, IntoBytes};

/// Guest-physical layout of the benchmark's memory: SG list, path bytes, stat result.
const SG_GPA: u64 = 0x1000;
const PATH_GPA: u64 = 0x2000;
const STAT_GPA: u64 = 0x3000;
const MEMORY_BYTES: usize = 0x10000;

/// A file service over one temporary mount holding `dir/sub/file`.
struct Service {
    memory: GuestMemoryMmap,
    files: FileService,
    _dir: tempfile::TempDir,
}

impl Service {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("dir/sub")).expect("mkdir");
        std::fs::write(dir.path().join("dir/sub/file"), b"data").expect("write");
        let mount = Mount {
            host: dir.path().to_path_buf(),
            guest: "/m".into(),
            read_only: false,
        };
        let memory =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEMORY_BYTES)]).expect("memory");
        let files = FileService::new(&[mount]).expect("file service");
        Self {
            memory,
            files,
            _dir: dir,
        }
    }

    /// A request whose SG list names `path` (written once into guest memory).
    fn path_request(&self, opcode: Opcode, args: [u64; 4], path: &[u8]) -> Request {
        self.memory
            .write_slice(path, GuestAddress(PATH_GPA))
            .expect("path");
        let sg = [SgEntry {
            gpa: PATH_GPA,
            len: path.len() as u64,
        }];
        self.memory
            .write_slice(sg.as_bytes(), GuestAddress(SG_GPA))
            .expect("sg");
        Request {
            opcode: opcode as u32,
            sg_count: 1,
            user_data: 1,
            args,
            sg_gpa: SG_GPA,
            _reserved: 0,
        }
    }
}

fn request_decode(c: &mut Criterion) {
    let request = Request {
        opcode: Opcode::Fstat as u32,
        args: [3, STAT_GPA, 0, 0],
        ..Default::default()
    };
    let slot = request.as_bytes().to_vec();
    c.bench_function("ring: decode a request slot and its opcode", |b| {
        b.iter(|| {
            let request = Request::read_from_bytes(black_box(&slot)).expect("slot size");
            black_box(Opcode::from_u32(request.opcode))
        });
    });
}

fn file_service(c: &mut Criterion) {
    let mut service = Service::new();

    let stat = service.path_request(Opcode::Stat, [0, 0, STAT_GPA, 0], b"dir/sub/file");
    c.bench_function("files: stat of a 3-component path beneath a mount", |b| {
        b.iter(|| {
            let result = service.files.handle(&service.memory, black_box(&stat));
            assert_eq!(result, 0);
        });
    });

    let open = service.path_request(Opcode::Open, [0, 0, 0, 0], b"dir/sub/file");
    c.bench_function("files: open and close a file beneath a mount", |b| {
        b.iter(|| {
            let handle = service.files.handle(&service.memory, black_box(&open));
            let close = Request {
                opcode: Opcode::Close as u32,
                args: [handle as u64, 0, 0, 0],
                ..Default::default()
            };
            assert_eq!(service.files.handle(&service.memory, &close), 0);
        });
    });

    let handle = service.files.handle(&service.memory, &open);
    assert!(handle >= 0, "open: {handle}");
    let fstat = Request {
        opcode: Opcode::Fstat as u32,
        args: [handle as u64, STAT_GPA, 0, 0],
        ..Default::default()
    };
    c.bench_function("files: fstat of an open handle", |b| {
        b.iter(|| {
            let result = service.files.handle(&service.memory, black_box(&fstat));
            assert_eq!(result, 0);
        });
    });
}

criterion_group!(host, request_decode, file_service);
criterion_main!(host);
