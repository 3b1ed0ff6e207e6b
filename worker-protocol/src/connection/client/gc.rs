//! The operations about garbage collection and store maintenance.

use std::collections::BTreeSet;

use nix_formats::store_path::StorePath;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{reply, ClientConnection};
use crate::error::ProtocolError;
use crate::logger::LogSink;
use crate::ops::request::gc::*;
use crate::ops::response::{GcResult, Roots};
use crate::ops::{Request, Response};

impl<R, W, K> ClientConnection<R, W, K>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    K: LogSink,
{
    /// `AddTempRoot`: keeps `path` alive while this connection lasts.
    pub async fn add_temp_root(&mut self, path: &StorePath) -> Result<(), ProtocolError> {
        reply!(self.call(Request::AddTempRoot(AddTempRoot { path: path.clone() })), Response::AddTempRoot => ())
    }

    /// `AddIndirectRoot`: registers the symlink `link` (outside the store) as a GC root.
    pub async fn add_indirect_root(&mut self, link: &str) -> Result<(), ProtocolError> {
        let request = Request::AddIndirectRoot(AddIndirectRoot { link: link.to_owned() });
        reply!(self.call(request), Response::AddIndirectRoot => ())
    }

    /// `AddPermRoot` (Nix 2.19 and later; trusted clients only): makes `gc_root` a symlink to
    /// `path` and a GC root, and returns its absolute path.
    pub async fn add_perm_root(&mut self, path: &StorePath, gc_root: &str) -> Result<String, ProtocolError> {
        let request = Request::AddPermRoot(AddPermRoot { path: path.clone(), gc_root: gc_root.to_owned() });
        reply!(self.call(request), Response::AddPermRoot(link) => link)
    }

    /// `FindRoots`: the GC roots, by the store path they keep alive.
    pub async fn find_roots(&mut self) -> Result<Roots, ProtocolError> {
        reply!(self.call(Request::FindRoots(FindRoots {})), Response::FindRoots(roots) => roots)
    }

    /// `CollectGarbage`: lists or deletes paths as `options` say, and returns the paths and the
    /// bytes freed.
    pub async fn collect_garbage(&mut self, options: &CollectGarbage) -> Result<GcResult, ProtocolError> {
        reply!(self.call(Request::CollectGarbage(options.clone())), Response::CollectGarbage(result) => result)
    }

    /// `CollectGarbage` deleting exactly `paths` (if they are dead).
    pub async fn delete_paths(&mut self, paths: &BTreeSet<StorePath>) -> Result<GcResult, ProtocolError> {
        self.collect_garbage(&CollectGarbage {
            action: GcAction::DeleteSpecific,
            paths_to_delete: paths.clone(),
            ignore_liveness: false,
            max_freed: u64::MAX,
        })
        .await
    }

    /// `OptimiseStore`: deduplicates the store with hard links.
    pub async fn optimise_store(&mut self) -> Result<(), ProtocolError> {
        reply!(self.call(Request::OptimiseStore(OptimiseStore {})), Response::OptimiseStore => ())
    }

    /// `VerifyStore`: checks the store (and the contents' hashes with `check_contents`),
    /// repairing with `repair`. Returns whether errors remain.
    pub async fn verify_store(&mut self, check_contents: bool, repair: bool) -> Result<bool, ProtocolError> {
        let request = Request::VerifyStore(VerifyStore { check_contents, repair });
        reply!(self.call(request), Response::VerifyStore(errors) => errors)
    }

    /// `SyncWithGC` (obsolete): waits for a running garbage collection.
    pub async fn sync_with_gc(&mut self) -> Result<(), ProtocolError> {
        reply!(self.call(Request::SyncWithGC(SyncWithGC {})), Response::SyncWithGC => ())
    }
}
