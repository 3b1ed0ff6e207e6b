//! `nix-store --export` and `--import` (see [`super::export_format`] for the bytes).

use std::collections::BTreeSet;
use std::io::{Read, Write};

use nix_formats::signature::TrustedKeys;
use nix_formats::hash::{Algorithm, HashingWriter};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;

use super::add::Ready;
use super::error::{Mismatch, StoreError};
use super::export_format::{read_u64, write_u64, ExportFormatError, ExportTrailer};
use super::path_lock::PathLock;
use super::Store;

impl Store {
    /// Writes `paths` (valid; references first, as Nix orders them) in Nix's export format.
    /// Each NAR is checked against its recorded hash while it is written
    /// ([`StoreError::ContentsChanged`]).
    pub fn export_paths<W: Write>(&self, paths: &BTreeSet<StorePath>, out: W) -> Result<W, StoreError> {
        let mut sorted = self.db.topo_sort_paths(paths)?;
        sorted.reverse();
        let mut out = out;
        let io = |e| StoreError::Export(ExportFormatError::Io(e));
        for path in sorted {
            let info = self.db.query_path_info(&path)?.ok_or_else(|| StoreError::InvalidPath(self.print(&path)))?;
            write_u64(&mut out, 1).map_err(io)?;
            let hashing = self.nar_from_path(&path, HashingWriter::new(out, Algorithm::Sha256))?;
            let (got, _, inner) = hashing.finish();
            out = inner;
            if got != info.nar_hash {
                return Err(StoreError::ContentsChanged(Box::new(Mismatch {
                    path: self.print(&path),
                    expected: info.nar_hash,
                    got,
                })));
            }
            let trailer = ExportTrailer { path, references: info.references, deriver: info.deriver };
            trailer.write(&mut out, &self.store_dir).map_err(io)?;
        }
        write_u64(&mut out, 0).map_err(io)?;
        Ok(out)
    }

    /// Reads Nix's export format and adds each path (Nix's `importPaths`): the NAR is ingested,
    /// the trailer read, and the path registered with the NAR's hash unless it is valid already.
    /// References must be valid or come earlier in the stream. Returns every path in the stream.
    pub fn import_paths(&self, input: impl Read) -> Result<Vec<StorePath>, StoreError> {
        self.import_paths_checked(input, None)
    }

    /// [`Store::import_paths`] with Nix's signature rule when `trusted` is given: a path that is
    /// neither content-addressed nor signed by one of the keys is refused
    /// ([`StoreError::Untrusted`]) before it is registered. The export format carries no
    /// signatures, so with keys given only content-addressed paths could pass (and exports carry
    /// no content address either): Nix refuses such imports from untrusted clients too.
    pub fn import_paths_checked(
        &self,
        mut input: impl Read,
        trusted: Option<&TrustedKeys>,
    ) -> Result<Vec<StorePath>, StoreError> {
        let mut imported = Vec::new();
        loop {
            match read_u64(&mut input)? {
                0 => break,
                1 => {}
                other => return Err(ExportFormatError::BadMarker(other).into()),
            }
            let _pool = self.pool_lock(false)?;
            let ingested = self.castore.ingest_nar(&mut input)?;
            let trailer = ExportTrailer::read(&mut input, &self.store_dir)?;
            let mut info = ValidPathInfo::new(trailer.path.clone(), ingested.nar_hash);
            info.nar_size = ingested.nar_size;
            info.references = trailer.references;
            info.deriver = trailer.deriver;
            self.add_temp_root(&info.path)?;
            if let Some(keys) = trusted {
                let signed = info.check_signatures(&self.store_dir, keys).map(|n| n > 0).unwrap_or(false);
                if !signed {
                    return Err(StoreError::Untrusted(self.print(&info.path)));
                }
            }
            if !self.db.is_valid(&info.path)? {
                let _lock = PathLock::acquire(&self.real_path(&info.path))?;
                if !self.db.is_valid(&info.path)? {
                    let derivation = self.derivation_of(&info.path, &ingested.root)?;
                    self.install_and_register(&[Ready { info, root: ingested.root, derivation }])?;
                }
            }
            imported.push(trailer.path);
        }
        Ok(imported)
    }
}
