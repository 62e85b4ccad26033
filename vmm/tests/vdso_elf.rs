//! Checks the vDSO that `vmm/build.rs` builds and embeds (`LITEBOX_VDSO_PATH`) the way the
//! guest program's libc will use it, on the host.
//!
//! First the ELF itself, parsed with goblin: a shared object named `linux-vdso.so.1` with one
//! read+execute `PT_LOAD` whose memory image is the file, `DT_HASH` and `DT_GNU_HASH`, no
//! dynamic relocation, and the ten exported functions in version node `LINUX_2.6`. Then the
//! bytes are mapped at a fresh page-aligned address with a fake `shim_abi::VvarPage` one page
//! below, as the guest kernel does; the functions are found by walking the dynamic symbol table
//! the way static musl does (and through both hash tables, as glibc does), called, and compared
//! with the host's clocks.

use std::ffi::{c_int, c_long, c_uint, c_void};
use std::ptr;
use std::time::Duration;

use goblin::elf::dynamic::{DT_GNU_HASH, DT_HASH, DT_NEEDED, DT_TEXTREL};
use goblin::elf::header::{EM_X86_64, ET_DYN};
use goblin::elf::program_header::{PF_W, PF_X, PT_DYNAMIC, PT_LOAD};
use goblin::elf::sym::{STB_GLOBAL, STB_WEAK, STT_FUNC};
use goblin::elf::Elf;
use shim_abi::VvarPage;

const VDSO: &[u8] = include_bytes!(env!("LITEBOX_VDSO_PATH"));
const PAGE: usize = 4096;
const VERSION: &str = "LINUX_2.6";
/// The names the vDSO exports (`__vdso_<name>`, and `<name>` as a weak alias).
const NAMES: [&str; 5] = [
    "clock_gettime",
    "gettimeofday",
    "time",
    "getcpu",
    "clock_getres",
];
/// How far a vDSO reading may be from the host's.
const TOLERANCE_NS: i128 = 50_000_000;

type ClockFn = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> c_int;
type GettimeofdayFn = unsafe extern "C" fn(*mut libc::timeval, *mut Timezone) -> c_int;
type TimeFn = unsafe extern "C" fn(*mut libc::time_t) -> libc::time_t;
type GetcpuFn = unsafe extern "C" fn(*mut c_uint, *mut c_uint, *mut c_void) -> c_long;

/// Linux's `struct timezone`.
#[repr(C)]
struct Timezone {
    minuteswest: c_int,
    dsttime: c_int,
}

// ---------------------------------------------------------------------------------------------
// The ELF file.
// ---------------------------------------------------------------------------------------------

#[test]
fn elf_is_an_unrelocated_shared_object() {
    let elf = Elf::parse(VDSO).expect("the vDSO parses as ELF");
    assert!(elf.is_64 && elf.little_endian);
    assert_eq!(elf.header.e_type, ET_DYN, "a shared object");
    assert_eq!(elf.header.e_machine, EM_X86_64);
    assert_eq!(elf.soname, Some("linux-vdso.so.1"));
    assert!(
        elf.libraries.is_empty(),
        "needs no library: {:?}",
        elf.libraries
    );
    assert!(elf.interpreter.is_none());

    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|ph| ph.p_type == PT_LOAD)
        .collect();
    assert_eq!(loads.len(), 1, "one PT_LOAD");
    let load = loads[0];
    assert_eq!(
        (load.p_offset, load.p_vaddr),
        (0, 0),
        "linked at 0, from the ELF header on"
    );
    assert_eq!(load.p_filesz, load.p_memsz, "the memory image is the file");
    assert!(load.p_filesz <= VDSO.len() as u64);
    assert_eq!(load.p_flags & PF_W, 0, "mapped read-only");
    assert_ne!(load.p_flags & PF_X, 0, "mapped executable");
    assert!(elf.program_headers.iter().any(|ph| ph.p_type == PT_DYNAMIC));
    assert!(VDSO.len() <= 2 * PAGE, "small: {} bytes", VDSO.len());

    assert!(elf.dynrelas.is_empty(), "no RELA relocations");
    assert!(elf.dynrels.is_empty(), "no REL relocations");
    assert!(elf.pltrelocs.is_empty(), "no PLT relocations");
    let dynamic = elf.dynamic.as_ref().expect("a dynamic section");
    let tags: Vec<u64> = dynamic.dyns.iter().map(|d| d.d_tag).collect();
    for (tag, name) in [(DT_HASH, "DT_HASH"), (DT_GNU_HASH, "DT_GNU_HASH")] {
        assert!(tags.contains(&tag), "has {name}");
    }
    for tag in [DT_NEEDED, DT_TEXTREL] {
        assert!(!tags.contains(&tag), "has no tag {tag:#x}");
    }
    let info = &dynamic.info;
    assert_eq!(
        (info.relasz, info.relsz, info.pltrelsz, info.relacount),
        (0, 0, 0, 0)
    );
    assert!(!info.textrel);
}

#[test]
fn elf_exports_the_linux_functions_in_linux_2_6() {
    let elf = Elf::parse(VDSO).expect("the vDSO parses as ELF");
    let versym = elf.versym.as_ref().expect("a .gnu.version section");
    let verdef = elf.verdef.as_ref().expect("a .gnu.version_d section");
    let version_name = |index: u16| -> Option<String> {
        verdef
            .iter()
            .find(|def| def.vd_ndx == index)
            .and_then(|def| {
                let aux = def.iter().next()?;
                elf.dynstrtab.get_at(aux.vda_name).map(str::to_owned)
            })
    };

    let lookup = |name: &str| {
        let (index, sym) = elf
            .dynsyms
            .iter()
            .enumerate()
            .find(|(_, sym)| elf.dynstrtab.get_at(sym.st_name) == Some(name))
            .unwrap_or_else(|| panic!("{name} is in .dynsym"));
        let version = versym
            .get_at(index)
            .expect("every dynamic symbol has a version");
        assert!(!version.is_hidden(), "{name} is the default version");
        assert_eq!(
            version_name(version.version()).as_deref(),
            Some(VERSION),
            "{name}'s node"
        );
        assert_eq!(sym.st_type(), STT_FUNC, "{name} is a function");
        assert_ne!(sym.st_shndx, 0, "{name} is defined");
        assert!(sym.st_size > 0, "{name} has a size");
        sym
    };
    for name in NAMES {
        let real = lookup(&format!("__vdso_{name}"));
        let alias = lookup(name);
        assert_eq!(real.st_bind(), STB_GLOBAL, "__vdso_{name} is global");
        assert_eq!(alias.st_bind(), STB_WEAK, "{name} is a weak alias");
        assert_eq!(
            alias.st_value, real.st_value,
            "{name} aliases __vdso_{name}"
        );
    }
    let exported = elf.dynsyms.iter().filter(|sym| sym.st_shndx != 0).count();
    assert_eq!(exported, 2 * NAMES.len(), "exports nothing else");
}

// ---------------------------------------------------------------------------------------------
// Symbol lookup over the mapped image, as the libcs do it.
// ---------------------------------------------------------------------------------------------

/// Reads a little-endian number of `N` bytes at `offset` of `image`.
fn le<const N: usize>(image: &[u8], offset: u64) -> u64 {
    let start = usize::try_from(offset).expect("offset fits usize");
    let bytes = &image[start..start + N];
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// The NUL-terminated string at `offset` of `image`.
fn c_str(image: &[u8], offset: u64) -> &[u8] {
    let start = usize::try_from(offset).expect("offset fits usize");
    let len = image[start..]
        .iter()
        .position(|&b| b == 0)
        .expect("a NUL-terminated string");
    &image[start..start + len]
}

/// The tables a loader finds through `PT_DYNAMIC`, as offsets from the ELF header.
struct DynTables {
    strtab: u64,
    symtab: u64,
    hash: Option<u64>,
    gnu_hash: Option<u64>,
    versym: Option<u64>,
    verdef: Option<u64>,
}

const SYM_SIZE: u64 = 24;

/// Walks the ELF header, the program headers and the dynamic section like musl's
/// `__vdsosym`: the load base is `ehdr + p_offset - p_vaddr` of the `PT_LOAD`.
fn dyn_tables(image: &[u8]) -> DynTables {
    let phoff = le::<8>(image, 32);
    let phentsize = le::<2>(image, 54);
    let phnum = le::<2>(image, 56);
    let (mut dynv, mut base) = (None, None);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32::try_from(le::<4>(image, ph)).expect("p_type") {
            PT_LOAD => base = Some(le::<8>(image, ph + 8).wrapping_sub(le::<8>(image, ph + 16))),
            PT_DYNAMIC => dynv = Some(le::<8>(image, ph + 8)),
            _ => {}
        }
    }
    let (dynv, base) = (dynv.expect("PT_DYNAMIC"), base.expect("PT_LOAD"));
    let mut tables = DynTables {
        strtab: 0,
        symtab: 0,
        hash: None,
        gnu_hash: None,
        versym: None,
        verdef: None,
    };
    for entry in (dynv..).step_by(16) {
        let (tag, value) = (le::<8>(image, entry), le::<8>(image, entry + 8));
        let at = base.wrapping_add(value);
        match tag {
            0 => break,
            5 => tables.strtab = at,
            6 => tables.symtab = at,
            4 => tables.hash = Some(at),
            DT_GNU_HASH => tables.gnu_hash = Some(at),
            0x6fff_fff0 => tables.versym = Some(at),
            0x6fff_fffc => tables.verdef = Some(at),
            _ => {}
        }
    }
    assert!(
        tables.strtab != 0 && tables.symtab != 0,
        "DT_STRTAB and DT_SYMTAB"
    );
    tables
}

/// musl's `checkver`: is symbol version index `vsym` the non-base definition named `vername`?
fn check_version(image: &[u8], t: &DynTables, vsym: u64, vername: &str) -> bool {
    let Some(mut def) = t.verdef else { return true };
    let vsym = vsym & 0x7fff;
    loop {
        let (flags, ndx) = (le::<2>(image, def + 2), le::<2>(image, def + 4));
        if flags & 1 == 0 && ndx & 0x7fff == vsym {
            break;
        }
        let next = le::<4>(image, def + 16);
        if next == 0 {
            return false;
        }
        def += next;
    }
    let aux = def + le::<4>(image, def + 12);
    c_str(image, t.strtab + le::<4>(image, aux)) == vername.as_bytes()
}

/// Does symbol `index` match `name` in `vername`, with musl's type, binding and section checks?
fn symbol_matches(image: &[u8], t: &DynTables, index: u64, vername: &str, name: &str) -> bool {
    let sym = t.symtab + index * SYM_SIZE;
    let info = le::<1>(image, sym + 4);
    let ok_types = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 5); // NOTYPE OBJECT FUNC COMMON
    let ok_binds = (1 << 1) | (1 << 2) | (1 << 10); // GLOBAL WEAK GNU_UNIQUE
    (1u64 << (info & 0xf)) & ok_types != 0
        && (1u64 << (info >> 4)) & ok_binds != 0
        && le::<2>(image, sym + 6) != 0
        && c_str(image, t.strtab + le::<4>(image, sym)) == name.as_bytes()
        && t.versym.is_none_or(|versym| {
            check_version(image, t, le::<2>(image, versym + 2 * index), vername)
        })
}

fn st_value(t: &DynTables, image: &[u8], index: u64) -> u64 {
    le::<8>(image, t.symtab + index * SYM_SIZE + 8)
}

/// musl's `__vdsosym`: a linear scan of the `DT_HASH` chain count's worth of symbols.
fn musl_vdsosym(image: &[u8], vername: &str, name: &str) -> Option<u64> {
    let t = dyn_tables(image);
    let nchain = le::<4>(image, t.hash.expect("musl needs DT_HASH") + 4);
    (0..nchain)
        .find(|&i| symbol_matches(image, &t, i, vername, name))
        .map(|i| st_value(&t, image, i))
}

/// The SysV ELF hash of `DT_HASH`.
fn elf_hash(name: &str) -> u64 {
    let mut h: u32 = 0;
    for &b in name.as_bytes() {
        h = (h << 4).wrapping_add(u32::from(b));
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    u64::from(h)
}

/// A lookup through `DT_HASH` buckets and chains (glibc without `DT_GNU_HASH`).
fn sysv_hash_lookup(image: &[u8], vername: &str, name: &str) -> Option<u64> {
    let t = dyn_tables(image);
    let hash = t.hash.expect("DT_HASH");
    let (nbucket, nchain) = (le::<4>(image, hash), le::<4>(image, hash + 4));
    let mut index = le::<4>(image, hash + 8 + 4 * (elf_hash(name) % nbucket));
    while index != 0 {
        assert!(index < nchain);
        if symbol_matches(image, &t, index, vername, name) {
            return Some(st_value(&t, image, index));
        }
        index = le::<4>(image, hash + 8 + 4 * nbucket + 4 * index);
    }
    None
}

/// The GNU hash of `DT_GNU_HASH`.
fn gnu_hash(name: &str) -> u64 {
    let h = name.bytes().fold(5381u32, |h, b| {
        h.wrapping_mul(33).wrapping_add(u32::from(b))
    });
    u64::from(h)
}

/// A lookup through `DT_GNU_HASH`'s bloom filter, buckets and chains (what glibc uses).
fn gnu_hash_lookup(image: &[u8], vername: &str, name: &str) -> Option<u64> {
    let t = dyn_tables(image);
    let table = t.gnu_hash.expect("DT_GNU_HASH");
    let (nbuckets, symoffset) = (le::<4>(image, table), le::<4>(image, table + 4));
    let (bloom_size, bloom_shift) = (le::<4>(image, table + 8), le::<4>(image, table + 12));
    let bloom = table + 16;
    let buckets = bloom + 8 * bloom_size;
    let chains = buckets + 4 * nbuckets;
    let h = gnu_hash(name);
    let word = le::<8>(image, bloom + 8 * ((h / 64) % bloom_size));
    let mask = (1u64 << (h % 64)) | (1u64 << ((h >> bloom_shift) % 64));
    if word & mask != mask {
        return None;
    }
    let mut index = le::<4>(image, buckets + 4 * (h % nbuckets));
    if index < symoffset {
        return None;
    }
    loop {
        let chain_hash = le::<4>(image, chains + 4 * (index - symoffset));
        if (chain_hash | 1) == (h | 1) && symbol_matches(image, &t, index, vername, name) {
            return Some(st_value(&t, image, index));
        }
        if chain_hash & 1 != 0 {
            return None;
        }
        index += 1;
    }
}

#[test]
fn every_lookup_finds_every_function() {
    let vdso = Mapping::new(VvarPage::default());
    let image = vdso.image();
    for name in NAMES {
        for symbol in [format!("__vdso_{name}"), name.to_owned()] {
            let musl = musl_vdsosym(image, VERSION, &symbol);
            assert!(musl.is_some(), "musl finds {symbol}");
            assert_eq!(
                sysv_hash_lookup(image, VERSION, &symbol),
                musl,
                "DT_HASH: {symbol}"
            );
            assert_eq!(
                gnu_hash_lookup(image, VERSION, &symbol),
                musl,
                "GNU hash: {symbol}"
            );
        }
        let real = musl_vdsosym(image, VERSION, &format!("__vdso_{name}"));
        assert_eq!(
            musl_vdsosym(image, VERSION, name),
            real,
            "{name} aliases __vdso_{name}"
        );
        assert_eq!(
            musl_vdsosym(image, "LINUX_2.5", name),
            None,
            "only in {VERSION}"
        );
    }
    for missing in [
        "__vdso_getrandom",
        "clock_settime",
        "__ehdr_start",
        "memcpy",
    ] {
        assert_eq!(
            musl_vdsosym(image, VERSION, missing),
            None,
            "{missing} is not exported"
        );
        assert_eq!(
            gnu_hash_lookup(image, VERSION, missing),
            None,
            "{missing} (GNU hash)"
        );
        assert_eq!(
            sysv_hash_lookup(image, VERSION, missing),
            None,
            "{missing} (DT_HASH)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Mapping and calling it.
// ---------------------------------------------------------------------------------------------

/// The vDSO mapped as the guest kernel maps it: the vvar page, then the image (read+exec).
struct Mapping {
    region: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(vvar: VvarPage) -> Self {
        let image_len = VDSO.len().div_ceil(PAGE) * PAGE;
        let len = PAGE + image_len;
        // SAFETY: an anonymous private mapping at an address the kernel chooses touches no
        // existing memory; the result is checked below.
        let region = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(
            region,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        let region = region.cast::<u8>();
        let mapping = Mapping { region, len };
        mapping.set_vvar(&vvar);
        // SAFETY: the region is `PAGE + image_len >= PAGE + VDSO.len()` bytes of fresh,
        // writable memory that nothing else refers to, so the copy stays inside it and does
        // not overlap `VDSO`. Then the image pages become read+exec, as in the guest.
        unsafe {
            ptr::copy_nonoverlapping(VDSO.as_ptr(), region.add(PAGE), VDSO.len());
            let rc = libc::mprotect(
                region.add(PAGE).cast(),
                image_len,
                libc::PROT_READ | libc::PROT_EXEC,
            );
            assert_eq!(rc, 0, "mprotect: {}", std::io::Error::last_os_error());
        }
        mapping
    }

    /// The address of the vDSO's ELF header.
    fn base(&self) -> usize {
        self.region as usize + PAGE
    }

    /// The mapped image, as a loader reads it.
    fn image(&self) -> &[u8] {
        // SAFETY: the image pages stay mapped readable for the life of `self` and are never
        // written after `new`.
        unsafe { std::slice::from_raw_parts(self.region.add(PAGE), VDSO.len()) }
    }

    /// Rewrites the vvar page field by field (the test plays the guest kernel).
    fn set_vvar(&self, vvar: &VvarPage) {
        let page = self.region.cast::<VvarPage>();
        // SAFETY: the first page of the region is ours, writable and page-aligned; the vDSO
        // only reads it, concurrently at most, which is why the writes are volatile and the
        // sequence protocol is what the test exercises.
        unsafe {
            ptr::addr_of_mut!((*page).tsc_base).write_volatile(vvar.tsc_base);
            ptr::addr_of_mut!((*page).ns_per_tsc_mult).write_volatile(vvar.ns_per_tsc_mult);
            ptr::addr_of_mut!((*page).monotonic_base_ns).write_volatile(vvar.monotonic_base_ns);
            ptr::addr_of_mut!((*page).realtime_base_ns).write_volatile(vvar.realtime_base_ns);
            ptr::addr_of_mut!((*page).sequence).write_volatile(vvar.sequence);
        }
    }

    fn set_sequence(&self, sequence: u32) {
        let page = self.region.cast::<VvarPage>();
        // SAFETY: as in `set_vvar`.
        unsafe { ptr::addr_of_mut!((*page).sequence).write_volatile(sequence) };
    }

    /// The address of exported function `name`, found the way musl finds it.
    fn symbol(&self, name: &str) -> usize {
        let value = musl_vdsosym(self.image(), VERSION, name);
        let value = value.unwrap_or_else(|| panic!("{name} not found"));
        self.base() + usize::try_from(value).expect("st_value fits usize")
    }

    fn clock_fn(&self, name: &str) -> ClockFn {
        let address = self.symbol(name);
        // SAFETY: `address` is the entry of a function the vDSO exports with this C signature
        // (`int (clockid_t, struct timespec *)`), mapped executable for the life of `self`.
        unsafe { std::mem::transmute::<usize, ClockFn>(address) }
    }

    fn clock_gettime(&self, clock: libc::clockid_t) -> (c_int, libc::timespec) {
        let mut ts = libc::timespec {
            tv_sec: -1,
            tv_nsec: -1,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        let rc = unsafe { self.clock_fn("__vdso_clock_gettime")(clock, &mut ts) };
        (rc, ts)
    }

    fn clock_getres(&self, clock: libc::clockid_t) -> (c_int, libc::timespec) {
        let mut ts = libc::timespec {
            tv_sec: -1,
            tv_nsec: -1,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        let rc = unsafe { self.clock_fn("__vdso_clock_getres")(clock, &mut ts) };
        (rc, ts)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `region`/`len` is exactly the mapping `new` made; no reference into it
        // outlives `self`.
        unsafe { libc::munmap(self.region.cast(), self.len) };
    }
}

fn host_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "host clock_gettime({clock})");
    ns(&ts)
}

fn ns(ts: &libc::timespec) -> i128 {
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` is available on every x86-64 CPU and unprivileged on Linux.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The host's `CLOCK_MONOTONIC` and `CLOCK_REALTIME` and the TSC, read together: retried
/// until all three were read within 100 µs, so a preemption can't skew the vvar page.
fn host_clocks_and_tsc() -> (i128, i128, u64) {
    loop {
        let before = host_ns(libc::CLOCK_MONOTONIC);
        let realtime = host_ns(libc::CLOCK_REALTIME);
        let tsc = rdtsc();
        let monotonic = host_ns(libc::CLOCK_MONOTONIC);
        if monotonic - before < 100_000 {
            return (monotonic, realtime, tsc);
        }
    }
}

/// The host's TSC rate, measured against `CLOCK_MONOTONIC` over 100 ms.
fn measure_tsc_khz() -> u64 {
    let (ns0, _, tsc0) = host_clocks_and_tsc();
    std::thread::sleep(Duration::from_millis(100));
    let (ns1, _, tsc1) = host_clocks_and_tsc();
    let khz = i128::from(tsc1 - tsc0) * 1_000_000 / (ns1 - ns0);
    u64::try_from(khz).expect("a positive TSC rate")
}

/// A vvar page that makes the vDSO's clocks follow the host's from now on.
fn host_vvar() -> VvarPage {
    let mult = VvarPage::mult_for_tsc_khz(measure_tsc_khz());
    let (monotonic, realtime, tsc) = host_clocks_and_tsc();
    VvarPage {
        sequence: 2,
        tsc_base: tsc,
        ns_per_tsc_mult: mult,
        monotonic_base_ns: u64::try_from(monotonic).expect("monotonic"),
        realtime_base_ns: u64::try_from(realtime).expect("realtime"),
        ..VvarPage::default()
    }
}

fn assert_close(what: &str, vdso_ns: i128, host_ns: i128) {
    let diff = vdso_ns - host_ns;
    assert!(
        diff.abs() < TOLERANCE_NS,
        "{what}: vDSO {vdso_ns} ns, host {host_ns} ns ({diff})"
    );
}

#[test]
fn clocks_follow_the_host() {
    let vdso = Mapping::new(host_vvar());
    // Let the TSC run so that the multiplier matters.
    std::thread::sleep(Duration::from_millis(200));
    for name in ["__vdso_clock_gettime", "clock_gettime"] {
        let clock_gettime = vdso.clock_fn(name);
        let checks = [
            (libc::CLOCK_REALTIME, libc::CLOCK_REALTIME),
            (libc::CLOCK_REALTIME_COARSE, libc::CLOCK_REALTIME),
            (libc::CLOCK_MONOTONIC, libc::CLOCK_MONOTONIC),
            (libc::CLOCK_MONOTONIC_RAW, libc::CLOCK_MONOTONIC),
            (libc::CLOCK_MONOTONIC_COARSE, libc::CLOCK_MONOTONIC),
            (libc::CLOCK_BOOTTIME, libc::CLOCK_MONOTONIC),
        ];
        for (clock, host_clock) in checks {
            let mut ts = libc::timespec {
                tv_sec: -1,
                tv_nsec: -1,
            };
            // SAFETY: `ts` is a valid, writable timespec.
            let rc = unsafe { clock_gettime(clock, &mut ts) };
            let host = host_ns(host_clock);
            assert_eq!(rc, 0, "{name}({clock})");
            assert!(
                (0..1_000_000_000).contains(&ts.tv_nsec),
                "{name}({clock}) tv_nsec"
            );
            assert_close(&format!("{name}({clock})"), ns(&ts), host);
        }
    }
    // Two readings in a row never go backwards.
    let (_, first) = vdso.clock_gettime(libc::CLOCK_MONOTONIC);
    let (_, second) = vdso.clock_gettime(libc::CLOCK_MONOTONIC);
    assert!(ns(&second) >= ns(&first));
    // A NULL timespec is refused like the system call does.
    // SAFETY: the vDSO checks for NULL before writing.
    let rc = unsafe { vdso.clock_fn("clock_gettime")(libc::CLOCK_MONOTONIC, ptr::null_mut()) };
    assert_eq!(rc, -libc::EFAULT);
}

#[test]
fn gettimeofday_time_and_getcpu() {
    let vdso = Mapping::new(host_vvar());
    std::thread::sleep(Duration::from_millis(100));

    // SAFETY: the address is the vDSO's gettimeofday, which has this C signature.
    let gettimeofday =
        unsafe { std::mem::transmute::<usize, GettimeofdayFn>(vdso.symbol("gettimeofday")) };
    let mut tv = libc::timeval {
        tv_sec: -1,
        tv_usec: -1,
    };
    let mut tz = Timezone {
        minuteswest: 0x5555,
        dsttime: 0x5555,
    };
    // SAFETY: `tv` and `tz` are valid and writable.
    let rc = unsafe { gettimeofday(&mut tv, &mut tz) };
    let host = host_ns(libc::CLOCK_REALTIME);
    assert_eq!(rc, 0);
    assert!((0..1_000_000).contains(&tv.tv_usec));
    let vdso_ns = (i128::from(tv.tv_sec) * 1_000_000 + i128::from(tv.tv_usec)) * 1000;
    assert_close("gettimeofday", vdso_ns, host);
    assert_eq!((tz.minuteswest, tz.dsttime), (0, 0), "a zeroed timezone");
    // SAFETY: NULL arguments are allowed.
    assert_eq!(unsafe { gettimeofday(ptr::null_mut(), ptr::null_mut()) }, 0);

    // SAFETY: the address is the vDSO's time, which has this C signature.
    let time = unsafe { std::mem::transmute::<usize, TimeFn>(vdso.symbol("__vdso_time")) };
    let mut stored: libc::time_t = -1;
    // SAFETY: `stored` is valid and writable; NULL is allowed.
    let (seconds, unstored) = unsafe { (time(&mut stored), time(ptr::null_mut())) };
    let host_seconds = host_ns(libc::CLOCK_REALTIME) / 1_000_000_000;
    assert_eq!(stored, seconds, "time stores what it returns");
    assert!(
        (i128::from(seconds) - host_seconds).abs() <= 1,
        "time {seconds} {host_seconds}"
    );
    assert!(unstored >= seconds);

    // SAFETY: the address is the vDSO's getcpu, which has this C signature.
    let getcpu = unsafe { std::mem::transmute::<usize, GetcpuFn>(vdso.symbol("getcpu")) };
    let (mut cpu, mut node): (c_uint, c_uint) = (77, 77);
    // SAFETY: `cpu` and `node` are valid and writable; NULL is allowed.
    unsafe {
        assert_eq!(getcpu(&mut cpu, &mut node, ptr::null_mut()), 0);
        assert_eq!(getcpu(ptr::null_mut(), ptr::null_mut(), ptr::null_mut()), 0);
    }
    assert_eq!((cpu, node), (0, 0));
}

#[test]
fn clock_getres_reports_tsc_and_coarse_resolutions() {
    let vdso = Mapping::new(host_vvar());
    let high = [
        libc::CLOCK_REALTIME,
        libc::CLOCK_MONOTONIC,
        libc::CLOCK_MONOTONIC_RAW,
        libc::CLOCK_BOOTTIME,
    ];
    for clock in high {
        let (rc, res) = vdso.clock_getres(clock);
        assert_eq!(
            (rc, res.tv_sec, res.tv_nsec),
            (0, 0, 1),
            "clock_getres({clock})"
        );
    }
    for clock in [libc::CLOCK_REALTIME_COARSE, libc::CLOCK_MONOTONIC_COARSE] {
        let (rc, res) = vdso.clock_getres(clock);
        assert_eq!(
            (rc, res.tv_sec, res.tv_nsec),
            (0, 0, 4_000_000),
            "clock_getres({clock})"
        );
    }
    // SAFETY: a NULL `res` is allowed.
    let rc = unsafe { vdso.clock_fn("clock_getres")(libc::CLOCK_MONOTONIC, ptr::null_mut()) };
    assert_eq!(rc, 0);

    // Other clocks go to the system call, so they get the host's answers.
    let (rc, res) = vdso.clock_getres(libc::CLOCK_PROCESS_CPUTIME_ID);
    let mut host = libc::timespec {
        tv_sec: -1,
        tv_nsec: -1,
    };
    // SAFETY: `host` is a valid, writable timespec.
    let host_rc = unsafe { libc::clock_getres(libc::CLOCK_PROCESS_CPUTIME_ID, &mut host) };
    assert_eq!(host_rc, 0);
    assert_eq!(
        (rc, res.tv_sec, res.tv_nsec),
        (0, host.tv_sec, host.tv_nsec)
    );
    assert_eq!(
        vdso.clock_getres(1234).0,
        -libc::EINVAL,
        "the raw -errno of the syscall"
    );
}

#[test]
fn other_clocks_fall_back_to_the_system_call() {
    let vdso = Mapping::new(host_vvar());
    // Burn some CPU so the process clock is well above zero.
    let spin_until = host_ns(libc::CLOCK_MONOTONIC) + 20_000_000;
    while host_ns(libc::CLOCK_MONOTONIC) < spin_until {}

    for clock in [
        libc::CLOCK_PROCESS_CPUTIME_ID,
        libc::CLOCK_THREAD_CPUTIME_ID,
    ] {
        let before = host_ns(clock);
        let (rc, ts) = vdso.clock_gettime(clock);
        let after = host_ns(clock);
        assert_eq!(rc, 0, "clock_gettime({clock}) through the syscall");
        assert!(
            before > 0 && before <= ns(&ts) && ns(&ts) <= after,
            "clock {clock}"
        );
    }
    assert_eq!(
        vdso.clock_gettime(1234).0,
        -libc::EINVAL,
        "the raw -errno of the syscall"
    );
    assert_eq!(
        vdso.clock_gettime(libc::CLOCK_TAI).0,
        0,
        "TAI via the syscall"
    );
}

#[test]
fn reads_the_vvar_page_below_its_own_header() {
    // Two copies at two addresses, each with its own vvar page and a frozen clock (mult 0),
    // so every reading is exactly the base: this also checks the arithmetic to the ns.
    let frozen = |monotonic_base_ns, realtime_base_ns| VvarPage {
        sequence: 0,
        tsc_base: rdtsc(),
        ns_per_tsc_mult: 0,
        monotonic_base_ns,
        realtime_base_ns,
        ..VvarPage::default()
    };
    let a = Mapping::new(frozen(123_456_789_012, 1_700_000_000_987_654_321));
    let b = Mapping::new(frozen(5_000_000_001, 42_999_999_999));
    assert_ne!(a.base(), b.base());

    let (rc, ts) = a.clock_gettime(libc::CLOCK_MONOTONIC);
    assert_eq!((rc, ts.tv_sec, ts.tv_nsec), (0, 123, 456_789_012));
    let (rc, ts) = a.clock_gettime(libc::CLOCK_REALTIME);
    assert_eq!((rc, ts.tv_sec, ts.tv_nsec), (0, 1_700_000_000, 987_654_321));
    let (rc, ts) = b.clock_gettime(libc::CLOCK_BOOTTIME);
    assert_eq!((rc, ts.tv_sec, ts.tv_nsec), (0, 5, 1));
    let (rc, ts) = b.clock_gettime(libc::CLOCK_REALTIME_COARSE);
    assert_eq!((rc, ts.tv_sec, ts.tv_nsec), (0, 42, 999_999_999));

    // SAFETY: the address is the vDSO's gettimeofday, which has this C signature.
    let gettimeofday =
        unsafe { std::mem::transmute::<usize, GettimeofdayFn>(a.symbol("gettimeofday")) };
    let mut tv = libc::timeval {
        tv_sec: -1,
        tv_usec: -1,
    };
    // SAFETY: `tv` is valid and writable, a NULL timezone is allowed.
    assert_eq!(unsafe { gettimeofday(&mut tv, ptr::null_mut()) }, 0);
    assert_eq!((tv.tv_sec, tv.tv_usec), (1_700_000_000, 987_654));
    // SAFETY: the address is the vDSO's time, which has this C signature.
    let time = unsafe { std::mem::transmute::<usize, TimeFn>(b.symbol("time")) };
    // SAFETY: a NULL pointer is allowed.
    assert_eq!(unsafe { time(ptr::null_mut()) }, 42);

    // 10^9 ns per tick (in 32.32 fixed point): each TSC tick since the base adds a second.
    let ticking = VvarPage {
        ns_per_tsc_mult: 1_000_000_000 << 32,
        ..frozen(0, 0)
    };
    let c = Mapping::new(ticking);
    let (_, ts) = c.clock_gettime(libc::CLOCK_MONOTONIC);
    let elapsed_ticks = rdtsc() - ticking.tsc_base;
    assert_eq!(ts.tv_nsec, 0);
    assert!(ts.tv_sec > 0 && ts.tv_sec.unsigned_abs() <= elapsed_ticks);
}

#[test]
fn waits_while_the_page_is_being_rewritten() {
    let vdso = Mapping::new(VvarPage {
        monotonic_base_ns: 1_000_000_000,
        ..VvarPage::default()
    });
    // The "kernel" starts rewriting the page: the sequence is odd.
    vdso.set_sequence(1);
    let clock_gettime = vdso.clock_fn("__vdso_clock_gettime") as usize;
    let reader = std::thread::spawn(move || {
        // SAFETY: the address is the vDSO's clock_gettime (it has this C signature), and the
        // mapping outlives this thread: it is joined before `vdso` is dropped.
        let f = unsafe { std::mem::transmute::<usize, ClockFn>(clock_gettime) };
        let mut ts = libc::timespec {
            tv_sec: -1,
            tv_nsec: -1,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        let rc = unsafe { f(libc::CLOCK_MONOTONIC, &mut ts) };
        (rc, ts.tv_sec, ts.tv_nsec)
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !reader.is_finished(),
        "the reader waits while the sequence is odd"
    );
    // The rewrite ends with new values and an even sequence.
    vdso.set_vvar(&VvarPage {
        sequence: 2,
        tsc_base: rdtsc(),
        monotonic_base_ns: 7_000_000_007,
        ..VvarPage::default()
    });
    let reading = reader.join().expect("the reader finishes");
    assert_eq!(reading, (0, 7, 7), "the reader sees only the finished page");
}
