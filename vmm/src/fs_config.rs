//! The sandbox's file-system policy: checking the `--dir`/`--workdir` settings when the
//! sandbox is built, and writing the [`FsConfig`] page the guest kernel reads at boot
//! (always, even with no mounts: it also carries the working directory, the tmpfs size and
//! what `/proc/self/exe` names).
//!
//! Only the VMM knows the host side of a mount; the guest sees mount ids, flags and guest
//! paths.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use shim_abi::{FsConfig, CONFIG_PATH_BYTES, FS_CONFIG_GPA, MAX_MOUNTS, MOUNT_READ_ONLY};
use vm_memory::GuestMemoryMmap;
use zerocopy::FromZeros;

use crate::error::{Error, Result};
use crate::files::Mount;

/// Guest directories the guest kernel provides itself; a mount may not hide them.
const RESERVED: [&str; 2] = ["dev", "proc"];

/// Checks every mount and normalises its guest path (`//` collapsed, no trailing `/`).
pub fn check_mounts(mounts: &mut [Mount]) -> Result<()> {
    if mounts.len() > MAX_MOUNTS {
        return Err(Error::Config(format!(
            "{} --dir mounts given, at most {MAX_MOUNTS} are supported: merge some directories",
            mounts.len()
        )));
    }
    for index in 0..mounts.len() {
        let mount = &mounts[index];
        let spec = spec(mount);
        let fail = |reason: String| Error::Mount { spec: spec.clone(), reason };

        match std::fs::metadata(&mount.host) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(fail(format!(
                    "the host path {} is not a directory: name a directory",
                    mount.host.display()
                )))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(fail(format!(
                    "the host directory {} does not exist: create it or fix the path",
                    mount.host.display()
                )))
            }
            Err(error) => {
                return Err(fail(format!(
                    "the host directory {} is unusable ({error}): check its permissions",
                    mount.host.display()
                )))
            }
        }
        let guest = normalise_mount_point(&mount.guest).map_err(fail)?;
        if mounts[..index].iter().any(|earlier| earlier.guest == guest) {
            return Err(fail(format!(
                "the guest path {} is already mounted: give each --dir its own guest path",
                guest.display()
            )));
        }
        mounts[index].guest = guest;
    }

    // A mount inside another needs its mount point there, as on Linux: else listings of the
    // outer directory would leave it out.
    for mount in mounts.iter() {
        let outer = mounts.iter().filter(|other| other.guest != mount.guest);
        let Some((outer, point)) = beneath_innermost(outer, &mount.guest) else { continue };
        if !point.is_dir() {
            return Err(Error::Mount {
                spec: spec(mount),
                reason: format!(
                    "its mount point {} is no directory under --dir {} (create it first)",
                    point.display(),
                    spec(outer)
                ),
            });
        }
    }
    Ok(())
}

/// `HOST:GUEST[:ro]` as the user wrote it, for messages.
fn spec(mount: &Mount) -> String {
    let ro = if mount.read_only { ":ro" } else { "" };
    format!("{}:{}{ro}", mount.host.display(), mount.guest.display())
}

/// An absolute guest path without `.`/`..`, not `/`, not under `/dev` or `/proc`, and short
/// enough for the configuration page.
fn normalise_mount_point(guest: &Path) -> std::result::Result<PathBuf, String> {
    let shown = guest.display();
    if !guest.is_absolute() {
        return Err(format!("the guest path {shown} is not absolute: start it with '/'"));
    }
    let mut normal = PathBuf::from("/");
    for component in guest.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => normal.push(name),
            // `Path::components` already drops inner `.`, so look at the bytes for those.
            _ => return Err(format!("the guest path {shown} contains '.' or '..': spell it out")),
        }
    }
    if guest.as_os_str().as_bytes().split(|&b| b == b'/').any(|name| name == b"." || name == b"..")
    {
        return Err(format!("the guest path {shown} contains '.' or '..': spell it out"));
    }
    if normal == Path::new("/") {
        return Err("the guest path may not be '/': mount beneath it, e.g. /data".to_string());
    }
    let first = normal.components().nth(1).map(|c| c.as_os_str().as_bytes().to_vec());
    if first.is_some_and(|first| RESERVED.iter().any(|r| r.as_bytes() == first)) {
        return Err(format!(
            "the guest path {shown} is under /dev or /proc, which the sandbox provides: pick \
             another"
        ));
    }
    check_config_path(&normal).map_err(|reason| format!("the guest path {reason}"))?;
    Ok(normal)
}

/// Normalises the working directory: absolute, `//` and trailing `/` collapsed, `.` dropped
/// and `..` applied.
pub fn normalise_workdir(workdir: &Path) -> Result<PathBuf> {
    let fail =
        |reason: String| Error::Config(format!("--workdir {}: {reason}", workdir.display()));
    if !workdir.is_absolute() {
        return Err(fail("not an absolute guest path: start it with '/'".to_string()));
    }
    let mut normal = PathBuf::from("/");
    for component in workdir.components() {
        match component {
            Component::Normal(name) => normal.push(name),
            Component::ParentDir => {
                normal.pop();
            }
            _ => {}
        }
    }
    check_config_path(&normal).map_err(fail)?;
    Ok(normal)
}

/// The working directory must be something the program can enter: inside a mount, an
/// existing directory of the host's (checked here, once, so the mistake is the user's one
/// line and not a program failing later); elsewhere, a directory the guest kernel creates in
/// its tmpfs at boot, as `docker run -w` does, but not in the trees the sandbox provides
/// (`/dev`, `/proc`) nor one of its `/etc` files.
pub fn check_workdir(workdir: &Path, mounts: &[Mount]) -> Result<()> {
    let fail =
        |reason: String| Error::Config(format!("--workdir {}: {reason}", workdir.display()));
    if let Some((mount, host)) = beneath_innermost(mounts.iter(), workdir) {
        if !host.is_dir() {
            return Err(fail(format!(
                "{} is not a directory under --dir {}:{} (create it first)",
                host.display(),
                mount.host.display(),
                mount.guest.display()
            )));
        }
        return Ok(());
    }
    let provided = ["/dev", "/proc", "/etc/passwd", "/etc/group", "/etc/hostname"];
    if provided.iter().any(|tree| workdir.starts_with(tree)) {
        return Err(fail("is in the tree the sandbox provides: pick another".to_string()));
    }
    Ok(())
}

/// The innermost of `mounts` that holds guest path `guest`, and where `guest` lies on the
/// host beneath it.
fn beneath_innermost<'a>(
    mounts: impl Iterator<Item = &'a Mount>,
    guest: &Path,
) -> Option<(&'a Mount, PathBuf)> {
    let mount = mounts
        .filter(|mount| guest.starts_with(&mount.guest))
        .max_by_key(|mount| mount.guest.as_os_str().len())?;
    let relative = guest.strip_prefix(&mount.guest).unwrap_or(Path::new(""));
    Some((mount, mount.host.join(relative)))
}

fn check_config_path(path: &Path) -> std::result::Result<(), String> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(format!("{} contains a NUL byte", path.display()));
    }
    if bytes.len() > CONFIG_PATH_BYTES {
        return Err(format!(
            "{} is longer than {CONFIG_PATH_BYTES} bytes: use a shorter path",
            path.display()
        ));
    }
    Ok(())
}

/// What `/proc/self/exe` should name: the image's guest path when a mount's host directory
/// contains it, else its absolute host path; `None` if that does not fit the page.
pub fn exe_path(image: &Path, mounts: &[Mount]) -> Option<Vec<u8>> {
    let canonical = std::fs::canonicalize(image)
        .or_else(|_| std::path::absolute(image))
        .unwrap_or_else(|_| image.to_path_buf());
    let guest = mounts.iter().find_map(|mount| {
        let host = std::fs::canonicalize(&mount.host).ok()?;
        let rest = canonical.strip_prefix(&host).ok()?;
        Some(if rest.as_os_str().is_empty() {
            mount.guest.clone()
        } else {
            mount.guest.join(rest)
        })
    });
    let path = guest.unwrap_or(canonical).as_os_str().as_bytes().to_vec();
    (path.len() <= CONFIG_PATH_BYTES).then_some(path)
}

/// Writes the [`FsConfig`] page at `FS_CONFIG_GPA`.
pub fn write(
    memory: &GuestMemoryMmap,
    mounts: &[Mount],
    workdir: &Path,
    tmpfs_size: u64,
    exe_path: &[u8],
) -> Result<()> {
    let mut config = FsConfig::new_zeroed();
    config.mount_count = u32::try_from(mounts.len()).unwrap_or(0);
    config.tmpfs_size = tmpfs_size;
    config.workdir_len = copy_path(&mut config.workdir, workdir.as_os_str().as_bytes());
    config.exe_path_len = copy_path(&mut config.exe_path, exe_path);
    for (index, (entry, mount)) in config.mounts.iter_mut().zip(mounts).enumerate() {
        entry.id = u32::try_from(index).unwrap_or(u32::MAX);
        entry.flags = if mount.read_only { MOUNT_READ_ONLY } else { 0 };
        entry.guest_path_len =
            copy_path(&mut entry.guest_path, mount.guest.as_os_str().as_bytes());
    }
    crate::guest_memory::write(memory, FS_CONFIG_GPA, &config).map_err(Error::GuestMemory)
}

/// Copies `path` (already checked to fit) into a configuration field; returns its length.
fn copy_path(field: &mut [u8; CONFIG_PATH_BYTES], path: &[u8]) -> u32 {
    let len = path.len().min(CONFIG_PATH_BYTES);
    field[..len].copy_from_slice(&path[..len]);
    u32::try_from(len).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_normalised_or_refused() {
        let ok = |p: &str| normalise_mount_point(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(ok("//data///sub/").unwrap(), "/data/sub");
        assert_eq!(ok("/devices").unwrap(), "/devices");
        for bad in ["data", "/", "//", "/a/./b", "/a/../b", "/dev", "/dev/x", "/proc/1", "/a/."] {
            assert!(ok(bad).is_err(), "{bad} was accepted");
        }
        assert!(ok(&format!("/{}", "x".repeat(CONFIG_PATH_BYTES))).is_err());
    }

    #[test]
    fn workdir_is_normalised() {
        let normal = |p: &str| normalise_workdir(Path::new(p)).unwrap().display().to_string();
        assert_eq!(normal("/"), "/");
        assert_eq!(normal("//a//b/./c/../"), "/a/b");
        assert!(normalise_workdir(Path::new("a")).is_err());
    }

    #[test]
    fn exe_path_is_the_guest_path_under_a_mount() {
        let dir = std::env::temp_dir().join(format!("litebox-exe-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/prog"), b"").unwrap();
        let mount = Mount { host: dir.clone(), guest: "/work".into(), read_only: true };
        let image = dir.join("bin/../bin/prog");
        assert_eq!(exe_path(&image, std::slice::from_ref(&mount)).unwrap(), b"/work/bin/prog");
        let canonical = std::fs::canonicalize(&image).unwrap();
        assert_eq!(exe_path(&image, &[]).unwrap(), canonical.as_os_str().as_bytes());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_config_page_holds_mounts_workdir_and_sizes() {
        use vm_memory::GuestAddress;
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let mounts = [
            Mount { host: "/a".into(), guest: "/data".into(), read_only: false },
            Mount { host: "/b".into(), guest: "/ro".into(), read_only: true },
        ];
        write(&memory, &mounts, Path::new("/data"), 123 << 20, b"/data/prog").unwrap();
        let config: FsConfig = crate::guest_memory::read(&memory, FS_CONFIG_GPA).unwrap();
        assert_eq!(config.mount_count, 2);
        assert_eq!(config.tmpfs_size, 123 << 20);
        assert_eq!(&config.workdir[..config.workdir_len as usize], b"/data");
        assert_eq!(&config.exe_path[..config.exe_path_len as usize], b"/data/prog");
        let ro = &config.mounts[1];
        assert_eq!((ro.id, ro.flags), (1, MOUNT_READ_ONLY));
        assert_eq!(&ro.guest_path[..ro.guest_path_len as usize], b"/ro");
        assert_eq!(config.mounts[0].flags, 0);
    }
}
