//! The operations that ask about paths and derivations.

use std::collections::{BTreeMap, BTreeSet};

use nix_formats::content_address::ContentAddress;
use nix_formats::derived_path::DerivedPath;
use nix_formats::hash::Hash;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::realisation::{DrvOutput, Realisation};
use nix_formats::store_path::StorePath;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{reply, ClientConnection};
use crate::error::ProtocolError;
use crate::logger::LogSink;
use crate::ops::request::query::*;
use crate::ops::response::{MissingPaths, RealisationReply, SubstitutablePathInfo};
use crate::ops::{Request, Response};

impl<R, W, K> ClientConnection<R, W, K>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    K: LogSink,
{
    /// `IsValidPath`: whether `path` is valid.
    pub async fn is_valid_path(&mut self, path: &StorePath) -> Result<bool, ProtocolError> {
        let request = Request::IsValidPath(IsValidPath { path: path.clone() });
        reply!(self.call(request), Response::IsValidPath(valid) => valid)
    }

    /// `QueryValidPaths`: which of `paths` are valid, substituting missing ones first if
    /// `substitute` (from 1.27; ignored before).
    pub async fn query_valid_paths(
        &mut self,
        paths: &BTreeSet<StorePath>,
        substitute: bool,
    ) -> Result<BTreeSet<StorePath>, ProtocolError> {
        let request = Request::QueryValidPaths(QueryValidPaths { paths: paths.clone(), substitute });
        reply!(self.call(request), Response::QueryValidPaths(valid) => valid)
    }

    /// `QueryAllValidPaths`: every valid path.
    pub async fn query_all_valid_paths(&mut self) -> Result<BTreeSet<StorePath>, ProtocolError> {
        reply!(self.call(Request::QueryAllValidPaths(QueryAllValidPaths {})), Response::QueryAllValidPaths(all) => all)
    }

    /// `QueryPathInfo`: what the store knows of `path`, or `None` if it is not valid. (Before
    /// 1.17 the daemon reports an invalid path as an error.)
    pub async fn query_path_info(&mut self, path: &StorePath) -> Result<Option<ValidPathInfo>, ProtocolError> {
        let request = Request::QueryPathInfo(QueryPathInfo { path: path.clone() });
        reply!(self.call(request), Response::QueryPathInfo(info) => info.map(|i| i.with_path(path.clone())))
    }

    /// `QueryPathFromHashPart`: the valid path whose hash part is `hash_part`, if any.
    pub async fn query_path_from_hash_part(&mut self, hash_part: &str) -> Result<Option<StorePath>, ProtocolError> {
        let request = Request::QueryPathFromHashPart(QueryPathFromHashPart { hash_part: hash_part.to_owned() });
        reply!(self.call(request), Response::QueryPathFromHashPart(path) => path)
    }

    /// `QueryReferrers`: the valid paths that refer to `path`.
    pub async fn query_referrers(&mut self, path: &StorePath) -> Result<BTreeSet<StorePath>, ProtocolError> {
        let request = Request::QueryReferrers(QueryReferrers { path: path.clone() });
        reply!(self.call(request), Response::QueryReferrers(paths) => paths)
    }

    /// `QueryValidDerivers`: the valid derivations that produce `path`.
    pub async fn query_valid_derivers(&mut self, path: &StorePath) -> Result<BTreeSet<StorePath>, ProtocolError> {
        let request = Request::QueryValidDerivers(QueryValidDerivers { path: path.clone() });
        reply!(self.call(request), Response::QueryValidDerivers(paths) => paths)
    }

    /// `QueryDerivationOutputMap` (from 1.22): the outputs of the derivation `drv_path`, with
    /// their paths where known.
    pub async fn query_derivation_output_map(
        &mut self,
        drv_path: &StorePath,
    ) -> Result<BTreeMap<String, Option<StorePath>>, ProtocolError> {
        self.require(22, "QueryDerivationOutputMap")?;
        let request = Request::QueryDerivationOutputMap(QueryDerivationOutputMap { path: drv_path.clone() });
        reply!(self.call(request), Response::QueryDerivationOutputMap(map) => map)
    }

    /// `QuerySubstitutablePaths`: which of `paths` the daemon's substituters have.
    pub async fn query_substitutable_paths(
        &mut self,
        paths: &BTreeSet<StorePath>,
    ) -> Result<BTreeSet<StorePath>, ProtocolError> {
        let request = Request::QuerySubstitutablePaths(QuerySubstitutablePaths { paths: paths.clone() });
        reply!(self.call(request), Response::QuerySubstitutablePaths(paths) => paths)
    }

    /// `QuerySubstitutablePathInfos`: what the substituters know of `paths` (each with its content
    /// address, if known, which is sent from 1.22).
    pub async fn query_substitutable_path_infos(
        &mut self,
        paths: &BTreeMap<StorePath, Option<ContentAddress>>,
    ) -> Result<BTreeMap<StorePath, SubstitutablePathInfo>, ProtocolError> {
        let request = Request::QuerySubstitutablePathInfos(QuerySubstitutablePathInfos { paths: paths.clone() });
        reply!(self.call(request), Response::QuerySubstitutablePathInfos(infos) => infos)
    }

    /// `QueryMissing`: what realising `targets` would build, substitute, or cannot do.
    pub async fn query_missing(&mut self, targets: &[DerivedPath]) -> Result<MissingPaths, ProtocolError> {
        let request = Request::QueryMissing(QueryMissing { targets: targets.to_vec() });
        reply!(self.call(request), Response::QueryMissing(missing) => missing)
    }

    /// `QueryRealisation` (from 1.27): the realisation of a derivation output, if known. Before
    /// 1.31 the daemon sends only the output path; the realisation then has no signatures.
    pub async fn query_realisation(&mut self, id: &DrvOutput) -> Result<Option<Realisation>, ProtocolError> {
        self.require(27, "QueryRealisation")?;
        let request = Request::QueryRealisation(QueryRealisation { id: id.clone() });
        reply!(self.call(request), Response::QueryRealisation(found) => match found {
            RealisationReply::Realisations(set) => set.into_iter().next(),
            RealisationReply::Paths(paths) => paths.into_iter().next().map(|p| Realisation::new(id.clone(), p)),
        })
    }

    /// `HasSubstitutes` (obsolete): whether `path` can be substituted.
    pub async fn has_substitutes(&mut self, path: &StorePath) -> Result<bool, ProtocolError> {
        let request = Request::HasSubstitutes(HasSubstitutes { path: path.clone() });
        reply!(self.call(request), Response::HasSubstitutes(yes) => yes)
    }

    /// `QueryPathHash` (obsolete): the NAR hash of `path`.
    pub async fn query_path_hash(&mut self, path: &StorePath) -> Result<Hash, ProtocolError> {
        let request = Request::QueryPathHash(QueryPathHash { path: path.clone() });
        reply!(self.call(request), Response::QueryPathHash(hash) => hash)
    }

    /// `QueryReferences` (obsolete): the references of `path`.
    pub async fn query_references(&mut self, path: &StorePath) -> Result<BTreeSet<StorePath>, ProtocolError> {
        let request = Request::QueryReferences(QueryReferences { path: path.clone() });
        reply!(self.call(request), Response::QueryReferences(paths) => paths)
    }

    /// `QueryDeriver` (obsolete): the deriver of `path`, if known.
    pub async fn query_deriver(&mut self, path: &StorePath) -> Result<Option<StorePath>, ProtocolError> {
        let request = Request::QueryDeriver(QueryDeriver { path: path.clone() });
        reply!(self.call(request), Response::QueryDeriver(deriver) => deriver)
    }

    /// `QuerySubstitutablePathInfo` (obsolete): what the substituters know of `path`.
    pub async fn query_substitutable_path_info(
        &mut self,
        path: &StorePath,
    ) -> Result<Option<SubstitutablePathInfo>, ProtocolError> {
        let request = Request::QuerySubstitutablePathInfo(QuerySubstitutablePathInfo { path: path.clone() });
        reply!(self.call(request), Response::QuerySubstitutablePathInfo(info) => info)
    }

    /// `QueryDerivationOutputs` (obsolete): the output paths of the derivation `drv_path`.
    pub async fn query_derivation_outputs(&mut self, drv_path: &StorePath) -> Result<BTreeSet<StorePath>, ProtocolError> {
        let request = Request::QueryDerivationOutputs(QueryDerivationOutputs { path: drv_path.clone() });
        reply!(self.call(request), Response::QueryDerivationOutputs(paths) => paths)
    }

    /// `QueryDerivationOutputNames` (obsolete): the output names of the derivation `drv_path`.
    pub async fn query_derivation_output_names(&mut self, drv_path: &StorePath) -> Result<BTreeSet<String>, ProtocolError> {
        let request = Request::QueryDerivationOutputNames(QueryDerivationOutputNames { path: drv_path.clone() });
        reply!(self.call(request), Response::QueryDerivationOutputNames(names) => names)
    }
}
