//! A local Nix store read as a substituter (`local`, `local?root=…`, `/path`, with the
//! `store`, `state` and `real` parameters): path infos from its database (opened read-only),
//! NARs serialised from its store directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc;

use nix_formats::narinfo::NarInfo;
use nix_formats::store_path::{StoreDir, StorePath};

use super::SubstituteError;
use crate::db::{Db, OpenMode};

/// How many 64 KiB chunks of a NAR wait between the thread serialising it and its reader.
const PIPE_CHUNKS: usize = 4;

/// A local store on this machine.
pub struct LocalSource {
    url: String,
    store_dir: StoreDir,
    real_store_dir: PathBuf,
    db: Db,
    priority: u64,
}

impl std::fmt::Debug for LocalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSource").field("url", &self.url).field("real_store_dir", &self.real_store_dir).finish()
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
}

impl LocalSource {
    /// Opens the store `url` names (`Ok(None)`: not a local store URL). Its store directory is
    /// the `store` parameter, else `$NIX_STORE_DIR`; its state the `state` parameter, else
    /// `<root>/nix/var/nix` with `root`, else `$NIX_STATE_DIR`.
    pub fn open(url: &str) -> Result<Option<Self>, SubstituteError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let root = match base {
            "local" => None,
            path if path.starts_with('/') => Some(path.to_owned()),
            _ => return Ok(None),
        };
        let mut params: BTreeMap<&str, String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k, super::binary_cache::percent_decode(v))
            })
            .collect();
        let root = root.or_else(|| params.remove("root"));
        let store = params.remove("store").unwrap_or_else(|| env_or("NIX_STORE_DIR", "/nix/store"));
        let (real, state) = match &root {
            Some(root) => (format!("{root}{store}"), format!("{root}/nix/var/nix")),
            None => (store.clone(), env_or("NIX_STATE_DIR", "/nix/var/nix")),
        };
        let real = params.remove("real").unwrap_or(real);
        let state = params.remove("state").unwrap_or(state);
        let store_dir = StoreDir::new(&store);
        let db = Db::open(std::path::Path::new(&state), store_dir.clone(), OpenMode::ReadOnly)
            .map_err(|e| SubstituteError::Io(std::io::Error::other(format!("opening the store '{url}': {e}"))))?;
        let priority = params.get("priority").and_then(|p| p.parse().ok()).unwrap_or(0);
        Ok(Some(Self { url: url.to_owned(), store_dir, real_store_dir: PathBuf::from(real), db, priority }))
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its store directory.
    pub fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    /// Its priority (`priority` parameter, default 0).
    pub fn priority(&self) -> u64 {
        self.priority
    }

    /// The info of `path` as a narinfo (uncompressed, no file), if valid there.
    pub fn query(&self, path: &StorePath) -> Result<Option<NarInfo>, SubstituteError> {
        let info = self.db.query_path_info(path).map_err(|e| SubstituteError::Io(std::io::Error::other(e.to_string())))?;
        Ok(info.map(|info| NarInfo::new(info, String::new(), "none")))
    }

    /// The realisation `id`, if the store has one.
    pub fn query_realisation(
        &self,
        id: &nix_formats::realisation::DrvOutput,
    ) -> Result<Option<nix_formats::realisation::Realisation>, SubstituteError> {
        self.db.query_realisation(id).map_err(|e| SubstituteError::Io(std::io::Error::other(e.to_string())))
    }

    /// The NAR of `info`'s path, serialised from the store directory by a thread of its own.
    pub fn nar(&self, info: &NarInfo) -> Result<Box<dyn Read>, SubstituteError> {
        let real = self.real_store_dir.join(info.info.path.to_string());
        std::fs::symlink_metadata(&real).map_err(SubstituteError::Io)?;
        let (tx, rx) = mpsc::sync_channel(PIPE_CHUNKS);
        std::thread::Builder::new()
            .name("substitute-nar".into())
            .spawn(move || {
                let mut writer = ChunkWriter { tx: tx.clone() };
                if let Err(e) = nix_formats::nar::dump_path(&real, &mut writer) {
                    let _ = tx.send(Err(e.to_string()));
                }
            })
            .map_err(SubstituteError::Io)?;
        Ok(Box::new(ChunkReader { rx, current: Vec::new(), position: 0 }))
    }
}

/// The writing end: each write is sent as a chunk.
struct ChunkWriter {
    tx: mpsc::SyncSender<Result<Vec<u8>, String>>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(64 * 1024);
        self.tx.send(Ok(buf[..n].to_vec())).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The reading end: ends when the writer is gone; a serialisation error is a read error.
struct ChunkReader {
    rx: mpsc::Receiver<Result<Vec<u8>, String>>,
    current: Vec<u8>,
    position: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.position = 0;
                }
                Ok(Err(e)) => return Err(std::io::Error::other(e)),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}
