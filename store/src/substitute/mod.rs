//! Substituters: paths taken from binary caches or other local stores instead of being built
//! (Nix's `PathSubstitutionGoal`). Only `file://` caches and local stores (`local`, `/path`) are
//! read (casnix has no network client); other URLs are skipped. A cache's paths must be signed by one of the trusted keys when
//! `require-sigs` is on, unless the cache is `trusted=1` or the path is content-addressed. A
//! content-addressed path without references may come from a cache with another store
//! directory (`?store=/other/store`): its path there is computed from its address.

mod binary_cache;
mod decompress;
mod local_source;
mod realisations;

use std::collections::{BTreeMap, BTreeSet};

use nix_formats::content_address::ContentAddress;
use nix_formats::narinfo::NarInfo;
use nix_formats::signature::TrustedKeys;
use nix_formats::store_path::{StoreDir, StorePath};

pub use binary_cache::BinaryCache;
pub use decompress::decompressor;
pub use local_source::LocalSource;

use crate::{Store, StoreError};

/// The most paths one substitution brings in (its closure).
const MAX_CLOSURE: usize = 1 << 20;

/// Why reading a substituter failed.
#[derive(Debug, thiserror::Error)]
pub enum SubstituteError {
    /// Reading a cache's file failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// A cache's file is larger than any such file should be.
    #[error("'{0}' is too large")]
    TooLarge(String),
    /// A narinfo could not be parsed or describes another path.
    #[error("invalid narinfo '{file}': {reason}")]
    BadNarInfo {
        /// The file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A NAR is compressed in a way casnix cannot read.
    #[error("unsupported compression method '{0}'")]
    UnsupportedCompression(String),
    /// The cache's `nix-cache-info` names another store directory.
    #[error("binary cache '{url}' is for Nix stores with prefix '{theirs}', not '{ours}'")]
    WrongStoreDir {
        /// The cache.
        url: String,
        /// Its store directory.
        theirs: String,
        /// The one expected.
        ours: String,
    },
    /// A reference of the path could not be substituted.
    #[error("some references of path '{0}' could not be realised")]
    IncompleteClosure(String),
    /// The closure to substitute is larger than [`MAX_CLOSURE`].
    #[error("the closure of '{0}' is too large to substitute")]
    ClosureTooLarge(String),
    /// Adding the path to the store failed.
    #[error(transparent)]
    Store(Box<StoreError>),
}

impl From<StoreError> for SubstituteError {
    fn from(e: StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

/// One substituter: a `file://` binary cache or a local store.
#[derive(Debug)]
pub enum Source {
    /// A binary cache on the file system.
    Cache(BinaryCache),
    /// A local Nix store.
    Local(Box<LocalSource>),
}

impl Source {
    /// Opens the substituter at `url` (`Ok(None)`: a kind casnix cannot read).
    pub fn open(url: &str, store_dir: &StoreDir) -> Result<Option<Self>, SubstituteError> {
        if let Some(cache) = BinaryCache::open(url, store_dir)? {
            return Ok(Some(Self::Cache(cache)));
        }
        Ok(LocalSource::open(url)?.map(|l| Self::Local(Box::new(l))))
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        match self {
            Self::Cache(c) => c.url(),
            Self::Local(l) => l.url(),
        }
    }

    /// The store directory its paths live in.
    pub fn store_dir(&self) -> &StoreDir {
        match self {
            Self::Cache(c) => c.store_dir(),
            Self::Local(l) => l.store_dir(),
        }
    }

    /// Its priority (lower is tried first).
    pub fn priority(&self) -> u64 {
        match self {
            Self::Cache(c) => c.priority(),
            Self::Local(l) => l.priority(),
        }
    }

    /// Whether its paths are taken without signatures.
    pub fn trusted(&self) -> bool {
        match self {
            Self::Cache(c) => c.trusted(),
            Self::Local(_) => false,
        }
    }

    /// What it knows of `path` (in its store directory).
    pub fn query(&self, path: &StorePath) -> Result<Option<NarInfo>, SubstituteError> {
        match self {
            Self::Cache(c) => c.query(path),
            Self::Local(l) => l.query(path),
        }
    }

    /// The NAR `info` describes, uncompressed.
    pub fn nar(&self, info: &NarInfo) -> Result<Box<dyn std::io::Read>, SubstituteError> {
        match self {
            Self::Cache(c) => c.nar(info),
            Self::Local(l) => l.nar(info),
        }
    }
}

/// The substituters a store uses, in the order they are tried (by priority), and the rules
/// for their signatures.
#[derive(Debug, Default)]
pub struct Substituters {
    caches: Vec<Source>,
    keys: TrustedKeys,
    require_sigs: bool,
}

/// What a substitution tells its caller as it goes.
#[derive(Debug)]
pub enum SubstituteEvent<'a> {
    /// A path is being copied from a cache (Nix: "copying path '…' from '…'").
    Copying {
        /// The path, in the local store.
        path: &'a StorePath,
        /// The cache's URL.
        from: &'a str,
    },
    /// A cache was passed over (Nix's warnings, such as a missing signature).
    Warning(String),
}

/// What a substituter knows of a path (Nix's `SubstitutablePathInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitutable {
    /// The derivation that built it.
    pub deriver: Option<StorePath>,
    /// Its references.
    pub references: BTreeSet<StorePath>,
    /// The size of the (compressed) file to fetch, 0 if unknown.
    pub download_size: u64,
    /// The size of its NAR.
    pub nar_size: u64,
}

impl Substituters {
    /// Opens the caches at `urls` for a store at `store_dir`; caches that cannot be opened are
    /// reported through `warn` and left out, URLs casnix cannot read are skipped.
    pub fn open(
        urls: &[String],
        store_dir: &StoreDir,
        keys: TrustedKeys,
        require_sigs: bool,
        warn: &mut dyn FnMut(String),
    ) -> Self {
        let mut caches = Vec::new();
        let mut seen = BTreeSet::new();
        for url in urls {
            if !seen.insert(url.clone()) {
                continue;
            }
            match Source::open(url, store_dir) {
                Ok(Some(cache)) => caches.push(cache),
                Ok(None) => tracing::debug!(url, "substituter skipped: only file:// caches and local stores are read"),
                Err(e) => warn(e.to_string()),
            }
        }
        caches.sort_by_key(Source::priority);
        Self { caches, keys, require_sigs }
    }

    /// Whether there is no cache to try.
    pub fn is_empty(&self) -> bool {
        self.caches.is_empty()
    }

    /// The caches, in the order they are tried.
    pub fn caches(&self) -> &[Source] {
        &self.caches
    }

    /// The narinfo for `path` (in `store_dir`) in `cache`, rewritten to `path`; `ca`, when
    /// known, finds the path in a cache with another store directory. `None` when the cache
    /// does not have it or has an unusable one (reported through `events`).
    fn lookup(
        &self,
        cache: &Source,
        store_dir: &StoreDir,
        path: &StorePath,
        ca: Option<&ContentAddress>,
        events: &mut dyn FnMut(SubstituteEvent),
    ) -> Result<Option<NarInfo>, SubstituteError> {
        let their_path = match ca {
            Some(ca) => match ca.store_path(cache.store_dir(), path.name(), [], false) {
                Ok(p) => p,
                Err(_) => return Ok(None),
            },
            None if cache.store_dir() != store_dir => return Ok(None),
            None => path.clone(),
        };
        let Some(mut narinfo) = cache.query(&their_path)? else { return Ok(None) };
        if cache.store_dir() != store_dir || their_path != *path {
            // Only a content-addressed path without references keeps its meaning elsewhere.
            if !narinfo.info.is_content_addressed(cache.store_dir()) || !narinfo.info.references.is_empty() {
                events(SubstituteEvent::Warning(format!(
                    "substituter '{}' has an incompatible path info for '{}'",
                    cache.url(),
                    store_dir.print(path)
                )));
                return Ok(None);
            }
            narinfo.info.path = path.clone();
        }
        if self.require_sigs && !cache.trusted() && narinfo.info.check_signatures(store_dir, &self.keys).unwrap_or(0) == 0 {
            events(SubstituteEvent::Warning(format!(
                "ignoring substitute for '{}' from '{}', as it's not signed by any of the keys in 'trusted-public-keys'",
                store_dir.print(path),
                cache.url()
            )));
            return Ok(None);
        }
        narinfo.info.ultimate = false;
        narinfo.info.registration_time = 0;
        Ok(Some(narinfo))
    }

    /// The first cache with a usable narinfo for `path`.
    fn find(
        &self,
        store_dir: &StoreDir,
        path: &StorePath,
        ca: Option<&ContentAddress>,
        events: &mut dyn FnMut(SubstituteEvent),
    ) -> Result<Option<(&Source, NarInfo)>, SubstituteError> {
        for cache in &self.caches {
            match self.lookup(cache, store_dir, path, ca, events) {
                Ok(Some(info)) => return Ok(Some((cache, info))),
                Ok(None) => {}
                Err(e) => events(SubstituteEvent::Warning(format!("substituter '{}': {e}", cache.url()))),
            }
        }
        Ok(None)
    }
}

impl Store {
    /// What the first substituter that has `path` knows of it (`ca`: its content address, when
    /// the caller knows it from a derivation).
    pub fn query_substitutable(
        &self,
        subs: &Substituters,
        path: &StorePath,
        ca: Option<&ContentAddress>,
    ) -> Result<Option<Substitutable>, SubstituteError> {
        let found = subs.find(self.store_dir(), path, ca, &mut |_| {})?;
        Ok(found.map(|(_, narinfo)| Substitutable {
            deriver: narinfo.info.deriver.clone(),
            references: narinfo.info.references.clone(),
            download_size: narinfo.file_size.unwrap_or(0),
            nar_size: narinfo.info.nar_size,
        }))
    }

    /// Substitutes `path` and the missing paths of its closure (references first). Returns
    /// `false` when no substituter has `path`; an error when one of its references cannot be
    /// substituted or a NAR is not what its narinfo says.
    pub fn substitute(
        &self,
        subs: &Substituters,
        path: &StorePath,
        ca: Option<&ContentAddress>,
        events: &mut dyn FnMut(SubstituteEvent),
    ) -> Result<bool, SubstituteError> {
        if self.is_valid(path)? {
            return Ok(true);
        }
        let Some(first) = subs.find(self.store_dir(), path, ca, events)? else { return Ok(false) };
        // The missing closure, then its paths ordered references first.
        let mut found: BTreeMap<StorePath, (&Source, NarInfo)> = BTreeMap::new();
        let mut queue = vec![path.clone()];
        found.insert(path.clone(), first);
        while let Some(next) = queue.pop() {
            let refs: Vec<StorePath> = found[&next].1.info.references.iter().filter(|r| **r != next).cloned().collect();
            for reference in refs {
                if found.contains_key(&reference) || self.is_valid(&reference)? {
                    continue;
                }
                if found.len() >= MAX_CLOSURE {
                    return Err(SubstituteError::ClosureTooLarge(self.print(path)));
                }
                let Some(item) = subs.find(self.store_dir(), &reference, None, events)? else {
                    return Err(SubstituteError::IncompleteClosure(self.print(&next)));
                };
                found.insert(reference.clone(), item);
                queue.push(reference);
            }
        }
        let mut emitted: BTreeSet<StorePath> = BTreeSet::new();
        let mut order: Vec<StorePath> = Vec::new();
        let mut stack = vec![(path.clone(), false)];
        while let Some((next, expanded)) = stack.pop() {
            if emitted.contains(&next) {
                continue;
            }
            if expanded {
                emitted.insert(next.clone());
                order.push(next);
                continue;
            }
            let refs: Vec<StorePath> = found[&next]
                .1
                .info
                .references
                .iter()
                .filter(|r| **r != next && found.contains_key(*r) && !emitted.contains(*r))
                .cloned()
                .collect();
            stack.push((next, true));
            stack.extend(refs.into_iter().map(|r| (r, false)));
        }
        let order: Vec<(&Source, NarInfo)> = order.iter().filter_map(|p| found.remove(p)).collect();
        for (cache, narinfo) in order {
            if self.is_valid(&narinfo.info.path)? {
                continue;
            }
            events(SubstituteEvent::Copying { path: &narinfo.info.path, from: cache.url() });
            let nar = cache.nar(&narinfo)?;
            self.add_nar(narinfo.info, nar, false)?;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
