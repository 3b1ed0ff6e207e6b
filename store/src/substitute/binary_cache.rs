//! A `file://` binary cache read as a substituter: `nix-cache-info`, `<hash>.narinfo` files and
//! the NAR files they point at (what `nix copy --to file://…` writes).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use nix_formats::narinfo::NarInfo;
use nix_formats::store_path::{StoreDir, StorePath};

use super::decompress::decompressor;
use super::SubstituteError;

/// The largest `.narinfo` or `nix-cache-info` file read.
const MAX_INFO_FILE: u64 = 1 << 20;

/// Nix's default priority of a binary cache.
const DEFAULT_PRIORITY: u64 = 50;

/// One binary cache on the local file system.
#[derive(Debug, Clone)]
pub struct BinaryCache {
    url: String,
    root: PathBuf,
    store_dir: StoreDir,
    priority: u64,
    trusted: bool,
}

/// `%XX` decoding (URL parameters such as `remote-store=…%3f…`).
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(value)) => {
                out.push(value);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a small text file, or `None` when it does not exist.
fn read_small(path: &std::path::Path) -> Result<Option<String>, SubstituteError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SubstituteError::Io(e)),
    };
    let mut text = String::new();
    file.take(MAX_INFO_FILE + 1).read_to_string(&mut text).map_err(SubstituteError::Io)?;
    if text.len() as u64 > MAX_INFO_FILE {
        return Err(SubstituteError::TooLarge(path.display().to_string()));
    }
    Ok(Some(text))
}

impl BinaryCache {
    /// Opens the cache at `url` (`file:///dir?store=…&priority=…&trusted=…`); its store
    /// directory is the `store` parameter, else `default_store_dir`. `Ok(None)` for URLs of
    /// other kinds (casnix has no network client). Fails when `nix-cache-info` names another
    /// store directory, as Nix does.
    pub fn open(url: &str, default_store_dir: &StoreDir) -> Result<Option<Self>, SubstituteError> {
        let Some(rest) = url.strip_prefix("file://") else { return Ok(None) };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let params: BTreeMap<String, String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        let store_dir = params.get("store").map_or_else(|| default_store_dir.clone(), |d| StoreDir::new(d));
        let root = PathBuf::from(percent_decode(path));
        let mut priority = DEFAULT_PRIORITY;
        if let Some(info) = read_small(&root.join("nix-cache-info"))? {
            for line in info.lines() {
                let Some((key, value)) = line.split_once(':') else { continue };
                let value = value.trim();
                match key.trim() {
                    "StoreDir" if value != store_dir.as_str() => {
                        return Err(SubstituteError::WrongStoreDir {
                            url: url.to_owned(),
                            theirs: value.to_owned(),
                            ours: store_dir.as_str().to_owned(),
                        })
                    }
                    "Priority" => priority = value.parse().unwrap_or(priority),
                    _ => {}
                }
            }
        }
        if let Some(p) = params.get("priority").and_then(|p| p.parse().ok()) {
            priority = p;
        }
        let trusted = params.get("trusted").is_some_and(|t| t == "1" || t == "true");
        Ok(Some(Self { url: url.to_owned(), root, store_dir, priority, trusted }))
    }

    /// The URL the cache was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store directory the cache's paths live in.
    pub fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    /// Its priority (lower is tried first).
    pub fn priority(&self) -> u64 {
        self.priority
    }

    /// Whether its paths are taken without signatures (`trusted=1`).
    pub fn trusted(&self) -> bool {
        self.trusted
    }

    /// The narinfo of `path` (a path in the cache's store directory), or `None` when the cache
    /// does not have it. A narinfo for another path is an error.
    pub fn query(&self, path: &StorePath) -> Result<Option<NarInfo>, SubstituteError> {
        let file = self.root.join(format!("{}.narinfo", path.hash_part()));
        let Some(text) = read_small(&file)? else { return Ok(None) };
        let info = NarInfo::parse(&self.store_dir, &text)
            .map_err(|e| SubstituteError::BadNarInfo { file: file.display().to_string(), reason: e.to_string() })?;
        if info.info.path != *path {
            return Err(SubstituteError::BadNarInfo {
                file: file.display().to_string(),
                reason: format!("it describes '{}'", self.store_dir.print(&info.info.path)),
            });
        }
        Ok(Some(info))
    }

    /// The realisation `id` (`realisations/<id>.doi`), or `None` when the cache has none.
    pub fn query_realisation(
        &self,
        id: &nix_formats::realisation::DrvOutput,
    ) -> Result<Option<nix_formats::realisation::Realisation>, SubstituteError> {
        let file = self.root.join("realisations").join(format!("{id}.doi"));
        let Some(text) = read_small(&file)? else { return Ok(None) };
        nix_formats::realisation::Realisation::from_json(&text)
            .map(Some)
            .map_err(|e| SubstituteError::BadNarInfo { file: file.display().to_string(), reason: e.to_string() })
    }

    /// The NAR of `info`, decompressed.
    pub fn nar(&self, info: &NarInfo) -> Result<Box<dyn Read>, SubstituteError> {
        if info.url.split('/').any(|c| c == "..") || info.url.starts_with('/') {
            return Err(SubstituteError::BadNarInfo { file: info.url.clone(), reason: "the NAR's URL leaves the cache".into() });
        }
        let file = std::fs::File::open(self.root.join(&info.url)).map_err(SubstituteError::Io)?;
        decompressor(&info.compression, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parameters_and_cache_info_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nix-cache-info"), "StoreDir: /fnord/store\nPriority: 30\n").unwrap();
        let ours = StoreDir::new("/nix/store");
        let url = format!("file://{}?store=/fnord/store", dir.path().display());
        let cache = BinaryCache::open(&url, &ours).unwrap().unwrap();
        assert_eq!(cache.store_dir().as_str(), "/fnord/store");
        assert_eq!(cache.priority(), 30);
        assert!(!cache.trusted());
        let url = format!("file://{}?store=%2Ffnord%2Fstore&priority=10&trusted=1", dir.path().display());
        let cache = BinaryCache::open(&url, &ours).unwrap().unwrap();
        assert_eq!((cache.priority(), cache.trusted()), (10, true));
        let wrong = format!("file://{}", dir.path().display());
        assert!(matches!(BinaryCache::open(&wrong, &ours), Err(SubstituteError::WrongStoreDir { .. })));
        assert!(BinaryCache::open("https://cache.nixos.org", &ours).unwrap().is_none());
    }

    #[test]
    fn nar_urls_may_not_leave_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = StoreDir::new("/nix/store");
        let cache = BinaryCache::open(&format!("file://{}", dir.path().display()), &store_dir).unwrap().unwrap();
        let path = StorePath::from_base_name("7rjj86a15146cq1d2qy3qzjfa4c7sy2i-x").unwrap();
        let info = nix_formats::path_info::ValidPathInfo::new(path, nix_formats::hash::Hash::of(nix_formats::hash::Algorithm::Sha256, b""));
        let narinfo = NarInfo::new(info, "../../etc/passwd", "none");
        assert!(matches!(cache.nar(&narinfo), Err(SubstituteError::BadNarInfo { .. })));
    }
}
