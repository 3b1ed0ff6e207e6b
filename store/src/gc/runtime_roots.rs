//! Runtime roots (Nix's `findRuntimeRoots` on Linux): store paths that running processes use,
//! found in `/proc/<pid>/{exe,cwd,fd/*}` (link targets), `/proc/<pid>/maps` (mapped files) and
//! `/proc/<pid>/environ` (anything that looks like a store path). Processes that vanish or
//! cannot be read are skipped, as Nix skips them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

/// At most this many bytes of one `maps` or `environ` file are read.
const MAX_PROC_FILE: u64 = 16 << 20;

/// Candidate targets found, each with the `/proc` entries that name it.
pub(crate) type Unchecked = BTreeMap<String, BTreeSet<String>>;

/// Scans `/proc`. `store_prefix` is the store directory followed by `/`; only targets that start
/// with it are kept (whether they name valid paths is the caller's question).
pub(crate) fn scan(store_prefix: &str) -> Unchecked {
    let mut found = Unchecked::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return found };
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        scan_process(pid, store_prefix, &mut found);
    }
    found.retain(|target, _| target.starts_with(store_prefix));
    found
}

fn scan_process(pid: &str, store_prefix: &str, found: &mut Unchecked) {
    let dir = Path::new("/proc").join(pid);
    read_link(&dir.join("exe"), found);
    read_link(&dir.join("cwd"), found);
    if let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
        for fd in fds.flatten() {
            if !fd.file_name().to_string_lossy().starts_with('.') {
                read_link(&fd.path(), found);
            }
        }
    }
    let maps = dir.join("maps");
    if let Some(text) = read_bounded(&maps) {
        for line in text.split(|b| *b == b'\n') {
            if let Some(file) = mapped_file(line) {
                found.entry(file.to_owned()).or_default().insert(maps.display().to_string());
            }
        }
    }
    let environ = dir.join("environ");
    if let Some(env) = read_bounded(&environ) {
        for path in store_paths_in(&env, store_prefix) {
            found.entry(path).or_default().insert(environ.display().to_string());
        }
    }
}

/// Records the target of the link `link` if it is absolute.
fn read_link(link: &Path, found: &mut Unchecked) {
    let Ok(target) = std::fs::read_link(link) else { return };
    if let Some(target) = target.to_str().filter(|t| t.starts_with('/')) {
        found.entry(target.to_owned()).or_default().insert(link.display().to_string());
    }
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_PROC_FILE).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The file of one `maps` line, as Nix's pattern takes it: exactly six fields, the last an
/// absolute path (so lines with spaces in the name or a ` (deleted)` mark are skipped).
fn mapped_file(line: &[u8]) -> Option<&str> {
    let line = std::str::from_utf8(line).ok()?;
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    match fields.as_slice() {
        [_, _, _, _, _, file] if file.starts_with('/') => Some(file),
        _ => None,
    }
}

/// Every match of Nix's pattern `<store>/[0-9a-z]+[0-9a-zA-Z+\-._?=]*` in `bytes`, left to
/// right without overlaps.
fn store_paths_in(bytes: &[u8], store_prefix: &str) -> Vec<String> {
    let first = |b: u8| b.is_ascii_digit() || b.is_ascii_lowercase();
    let rest = |b: u8| b.is_ascii_alphanumeric() || b"+-._?=".contains(&b);
    let prefix = store_prefix.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = memchr::memmem::find(&bytes[at..], prefix) {
        let start = at + found;
        let mut end = start + prefix.len();
        if end < bytes.len() && first(bytes[end]) {
            end += 1;
            while end < bytes.len() && rest(bytes[end]) {
                end += 1;
            }
            out.push(String::from_utf8_lossy(&bytes[start..end]).into_owned());
            at = end;
        } else {
            at = start + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_as_nix_reads_them() {
        assert_eq!(
            mapped_file(b"7f00-7f01 r-xp 00000000 08:01 1234   /nix/store/abc-glibc/lib/libc.so.6"),
            Some("/nix/store/abc-glibc/lib/libc.so.6")
        );
        assert_eq!(mapped_file(b"7f00-7f01 r-xp 00000000 08:01 1234 /tmp/x (deleted)"), None);
        assert_eq!(mapped_file(b"7f00-7f01 rw-p 00000000 00:00 0 [heap]"), None);
        assert_eq!(mapped_file(b"7f00-7f01 rw-p 00000000 00:00 0"), None);
    }

    #[test]
    fn environment_store_paths() {
        let env = b"PATH=/s/abc-foo/bin:/s/def-b.a_r+1?=x/bin\0X=/s/\0Y=/s/Zup\0Z=/s//s/9";
        assert_eq!(store_paths_in(env, "/s/"), ["/s/abc-foo", "/s/def-b.a_r+1?=x", "/s/9"]);
    }
}
