//! Lexical path handling as Nix does it (no symlink resolution).

/// Canonicalizes an absolute path lexically: removes `.`, empty components and trailing slashes,
/// and resolves `..` against the preceding component (`/..` is `/`).
pub fn canonicalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return "/".into();
    }
    let mut out = String::with_capacity(path.len());
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    out
}

/// The directory part of a path (`dirOf`): everything before the last slash, `/` for top-level
/// entries, `.` when there is no slash.
pub fn dir_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The last component of a path (`baseNameOf`), ignoring one trailing slash.
pub fn base_name(path: &str) -> &str {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths() {
        assert_eq!(canonicalize("/a/./b/../c/"), "/a/c");
        assert_eq!(canonicalize("/.."), "/");
        assert_eq!(canonicalize("//a//b"), "/a/b");
    }

    #[test]
    fn dir_and_base() {
        assert_eq!(dir_of("/a/b"), "/a");
        assert_eq!(dir_of("/a"), "/");
        assert_eq!(dir_of("a"), ".");
        assert_eq!(base_name("/a/b/"), "b");
    }
}
