//! Guest paths: reading them from the program, and making them absolute and lexically
//! normal (no `.`, `..` or repeated `/`), which is the form the mount table and the tmpfs
//! walk take.
//!
//! `..` is applied lexically here; a path whose `..` follows a component that may be a
//! symlink is first rewritten by `syscall::dotdot`, which follows such links as Linux does.

use alloc::vec::Vec;

use shim_abi::{NAME_MAX, PAGE_SIZE, PATH_MAX};

use crate::errno::Errno;
use crate::process::Kernel;

/// Reads the NUL-terminated path at user address `addr` (without its NUL). `ENOENT` for an
/// empty path unless `allow_empty`; `ENAMETOOLONG` past `PATH_MAX`.
pub fn read_user_path(kernel: &mut Kernel, addr: u64, allow_empty: bool) -> Result<Vec<u8>, Errno> {
    let mut path = Vec::new();
    let mut at = addr;
    loop {
        let in_page = (PAGE_SIZE - (at & (PAGE_SIZE - 1))) as usize;
        let room = PATH_MAX as usize - path.len();
        let chunk = in_page.min(room).min(256);
        let mut buffer = [0u8; 256];
        kernel.space.copy_from_user(&mut kernel.frames, at, &mut buffer[..chunk])?;
        if let Some(end) = buffer[..chunk].iter().position(|&b| b == 0) {
            path.extend_from_slice(&buffer[..end]);
            break;
        }
        path.extend_from_slice(&buffer[..chunk]);
        if path.len() >= PATH_MAX as usize {
            return Err(Errno::ENAMETOOLONG);
        }
        at += chunk as u64;
    }
    if path.is_empty() && !allow_empty {
        return Err(Errno::ENOENT);
    }
    Ok(path)
}

/// A normal absolute path and whether the caller's spelling ended in `/` (which demands a
/// directory).
pub struct Normal {
    pub path: Vec<u8>,
    pub trailing_slash: bool,
}

/// `path` made absolute against `base` (itself normal and absolute) and normalised.
pub fn normalize(base: &[u8], path: &[u8]) -> Result<Normal, Errno> {
    let mut parts: Vec<&[u8]> = Vec::new();
    if path.first() != Some(&b'/') {
        parts.extend(base.split(|&b| b == b'/').filter(|c| !c.is_empty()));
    }
    for component in path.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            name if name.len() > NAME_MAX as usize => return Err(Errno::ENAMETOOLONG),
            name => parts.push(name),
        }
    }
    let trailing_slash = path.len() > 1 && path.ends_with(b"/")
        || path.ends_with(b"/.")
        || path.ends_with(b"/..")
        || path == b"."
        || path == b"..";
    Ok(Normal { path: join(&parts), trailing_slash })
}

/// "/" followed by the components joined with "/".
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>().max(1));
    for part in parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The components of a normal absolute path.
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// The parent of a normal absolute path ("/" for "/").
pub fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(slash) => &path[..slash],
    }
}

/// True if normal absolute `path` is `prefix` or lies beneath it.
pub fn is_within(path: &[u8], prefix: &[u8]) -> bool {
    path.starts_with(prefix) && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}
