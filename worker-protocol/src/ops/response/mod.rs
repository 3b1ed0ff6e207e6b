//! [`Response`]: what the server sends for each operation after `STDERR_LAST`, as Nix 2.26's
//! daemon writes it and its client reads it, at every version.
//!
//! The convention for every operation: the server first sends its logger messages and then
//! `STDERR_LAST` (or `STDERR_ERROR` with an error, and no reply); the reply below follows
//! `STDERR_LAST` directly. Some operations have an empty reply; `NarFromPath` has a raw NAR in
//! its place (see [`Opcode::reply_data`]). Numbers the client reads with Nix's `readInt` (the
//! `1` acknowledgements and most flags) are accepted as any 32-bit number, as Nix accepts them.

mod types;

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;
use nix_formats::build_result::{BuildResult, KeyedBuildResult};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::store_path::StorePath;
use tokio::io::AsyncRead;

pub use self::types::{AddToStoreReply, GcResult, MissingPaths, RealisationReply, Roots, SubstitutablePathInfo};
use super::opcode::Opcode;
use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::types::UnkeyedValidPathInfo;
use crate::wire::encoder::{put_bool, put_str, put_u64};
use crate::wire::{DecodeError, Decoder, WireReader};

/// The reply to an operation, one variant per operation Nix 2.26 serves. Unit variants send
/// either the number `1` ("acknowledged") or nothing, as noted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Whether the path is valid.
    IsValidPath(bool),
    /// Whether the path can be substituted.
    HasSubstitutes(bool),
    /// The path's NAR hash (SHA-256, written as bare hex).
    QueryPathHash(Hash),
    /// The path's references.
    QueryReferences(BTreeSet<StorePath>),
    /// The paths that refer to the path.
    QueryReferrers(BTreeSet<StorePath>),
    /// The new path's info (1.25 on) or the new path.
    AddToStore(AddToStoreReply),
    /// The new path.
    AddTextToStore(StorePath),
    /// `1`.
    BuildPaths,
    /// `1`.
    EnsurePath,
    /// `1`.
    AddTempRoot,
    /// `1`.
    AddIndirectRoot,
    /// `1`.
    SyncWithGC,
    /// The GC roots.
    FindRoots(Roots),
    /// `1` (the export itself came in `STDERR_WRITE` messages).
    ExportPath,
    /// The deriver, if known (`""` for none).
    QueryDeriver(Option<StorePath>),
    /// Nothing.
    SetOptions,
    /// The collected (or listed) paths and the bytes freed.
    CollectGarbage(GcResult),
    /// What a substituter knows of the path: `0`, or `1` and the info.
    QuerySubstitutablePathInfo(Option<SubstitutablePathInfo>),
    /// The derivation's output paths.
    QueryDerivationOutputs(BTreeSet<StorePath>),
    /// Every valid path.
    QueryAllValidPaths(BTreeSet<StorePath>),
    /// The path info: from 1.17 a validity flag, then the info if valid; before, the info (an
    /// invalid path is an error then).
    QueryPathInfo(Option<UnkeyedValidPathInfo>),
    /// The imported paths, in import order.
    ImportPaths(Vec<StorePath>),
    /// The derivation's output names.
    QueryDerivationOutputNames(BTreeSet<String>),
    /// The path with that hash part (`""` for none).
    QueryPathFromHashPart(Option<StorePath>),
    /// What the substituters know, per path (a count, then path and info for each).
    QuerySubstitutablePathInfos(BTreeMap<StorePath, SubstitutablePathInfo>),
    /// The valid paths among those asked about.
    QueryValidPaths(BTreeSet<StorePath>),
    /// The substitutable paths among those asked about.
    QuerySubstitutablePaths(BTreeSet<StorePath>),
    /// The valid derivations that produce the path.
    QueryValidDerivers(BTreeSet<StorePath>),
    /// `1`.
    OptimiseStore,
    /// Whether errors remain.
    VerifyStore(bool),
    /// The build result.
    BuildDerivation(BuildResult),
    /// `1`.
    AddSignatures,
    /// Nothing typed: the NAR follows `STDERR_LAST` raw.
    NarFromPath,
    /// Nothing.
    AddToStoreNar,
    /// What would be built, substituted or is unknown, and the sizes.
    QueryMissing(MissingPaths),
    /// The derivation's outputs, with their paths where known (`""` for unknown).
    QueryDerivationOutputMap(BTreeMap<String, Option<StorePath>>),
    /// Nothing.
    RegisterDrvOutput,
    /// The realisation (before 1.31: its output path), if known.
    QueryRealisation(RealisationReply),
    /// Nothing.
    AddMultipleToStore,
    /// `1`.
    AddBuildLog,
    /// A keyed build result per requested path.
    BuildPathsWithResults(Vec<KeyedBuildResult>),
    /// The symlink's absolute path.
    AddPermRoot(String),
}

/// Reads a flag as Nix's `readInt` does: a 32-bit number, true when non-zero.
fn int_flag(d: &mut Decoder<'_>, what: &'static str) -> Result<bool, DecodeError> {
    Ok(d.read_u32(what)? != 0)
}

/// Reads the `1` that acknowledges an operation (Nix reads and ignores it).
fn ack(d: &mut Decoder<'_>) -> Result<(), DecodeError> {
    d.read_u32("acknowledgement").map(drop)
}

impl Response {
    /// The operation this replies to.
    pub fn opcode(&self) -> Opcode {
        use Response as R;
        match self {
            R::IsValidPath(_) => Opcode::IsValidPath,
            R::HasSubstitutes(_) => Opcode::HasSubstitutes,
            R::QueryPathHash(_) => Opcode::QueryPathHash,
            R::QueryReferences(_) => Opcode::QueryReferences,
            R::QueryReferrers(_) => Opcode::QueryReferrers,
            R::AddToStore(_) => Opcode::AddToStore,
            R::AddTextToStore(_) => Opcode::AddTextToStore,
            R::BuildPaths => Opcode::BuildPaths,
            R::EnsurePath => Opcode::EnsurePath,
            R::AddTempRoot => Opcode::AddTempRoot,
            R::AddIndirectRoot => Opcode::AddIndirectRoot,
            R::SyncWithGC => Opcode::SyncWithGC,
            R::FindRoots(_) => Opcode::FindRoots,
            R::ExportPath => Opcode::ExportPath,
            R::QueryDeriver(_) => Opcode::QueryDeriver,
            R::SetOptions => Opcode::SetOptions,
            R::CollectGarbage(_) => Opcode::CollectGarbage,
            R::QuerySubstitutablePathInfo(_) => Opcode::QuerySubstitutablePathInfo,
            R::QueryDerivationOutputs(_) => Opcode::QueryDerivationOutputs,
            R::QueryAllValidPaths(_) => Opcode::QueryAllValidPaths,
            R::QueryPathInfo(_) => Opcode::QueryPathInfo,
            R::ImportPaths(_) => Opcode::ImportPaths,
            R::QueryDerivationOutputNames(_) => Opcode::QueryDerivationOutputNames,
            R::QueryPathFromHashPart(_) => Opcode::QueryPathFromHashPart,
            R::QuerySubstitutablePathInfos(_) => Opcode::QuerySubstitutablePathInfos,
            R::QueryValidPaths(_) => Opcode::QueryValidPaths,
            R::QuerySubstitutablePaths(_) => Opcode::QuerySubstitutablePaths,
            R::QueryValidDerivers(_) => Opcode::QueryValidDerivers,
            R::OptimiseStore => Opcode::OptimiseStore,
            R::VerifyStore(_) => Opcode::VerifyStore,
            R::BuildDerivation(_) => Opcode::BuildDerivation,
            R::AddSignatures => Opcode::AddSignatures,
            R::NarFromPath => Opcode::NarFromPath,
            R::AddToStoreNar => Opcode::AddToStoreNar,
            R::QueryMissing(_) => Opcode::QueryMissing,
            R::QueryDerivationOutputMap(_) => Opcode::QueryDerivationOutputMap,
            R::RegisterDrvOutput => Opcode::RegisterDrvOutput,
            R::QueryRealisation(_) => Opcode::QueryRealisation,
            R::AddMultipleToStore => Opcode::AddMultipleToStore,
            R::AddBuildLog => Opcode::AddBuildLog,
            R::BuildPathsWithResults(_) => Opcode::BuildPathsWithResults,
            R::AddPermRoot(_) => Opcode::AddPermRoot,
        }
    }

    /// Appends the reply at `ctx`'s version. Fails for a value the version cannot carry.
    pub fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        use Response as R;
        match self {
            R::IsValidPath(b) | R::HasSubstitutes(b) | R::VerifyStore(b) => put_bool(out, *b),
            R::QueryPathHash(hash) => {
                if hash.algorithm() != Algorithm::Sha256 {
                    return Err(ctx.unrepresentable(format!("a {} NAR hash", hash.algorithm())));
                }
                put_str(out, &hash.to_base16());
            }
            R::QueryReferences(p)
            | R::QueryReferrers(p)
            | R::QueryDerivationOutputs(p)
            | R::QueryAllValidPaths(p)
            | R::QueryValidPaths(p)
            | R::QuerySubstitutablePaths(p)
            | R::QueryValidDerivers(p) => p.encode(out, ctx)?,
            R::AddToStore(reply) => reply.encode(out, ctx)?,
            R::AddTextToStore(path) => path.encode(out, ctx)?,
            R::BuildPaths
            | R::EnsurePath
            | R::AddTempRoot
            | R::AddIndirectRoot
            | R::SyncWithGC
            | R::ExportPath
            | R::OptimiseStore
            | R::AddSignatures
            | R::AddBuildLog => put_u64(out, 1),
            R::SetOptions | R::NarFromPath | R::AddToStoreNar | R::RegisterDrvOutput | R::AddMultipleToStore => {}
            R::FindRoots(roots) => types::encode_roots(roots, out, ctx)?,
            R::QueryDeriver(p) | R::QueryPathFromHashPart(p) => p.encode(out, ctx)?,
            R::CollectGarbage(r) => r.encode(out, ctx)?,
            R::QuerySubstitutablePathInfo(info) => match info {
                None => put_u64(out, 0),
                Some(info) => {
                    put_u64(out, 1);
                    info.encode(out, ctx)?;
                }
            },
            R::QueryPathInfo(info) => match (info, ctx.at_least(17)) {
                (Some(info), true) => {
                    put_bool(out, true);
                    info.encode(out, ctx)?;
                }
                (None, true) => put_bool(out, false),
                (Some(info), false) => info.encode(out, ctx)?,
                (None, false) => return Err(ctx.unrepresentable("an invalid path as QueryPathInfo's reply")),
            },
            R::ImportPaths(paths) => paths.encode(out, ctx)?,
            R::QueryDerivationOutputNames(names) => names.encode(out, ctx)?,
            R::QuerySubstitutablePathInfos(infos) => infos.encode(out, ctx)?,
            R::BuildDerivation(result) => result.encode(out, ctx)?,
            R::QueryMissing(missing) => missing.encode(out, ctx)?,
            R::QueryDerivationOutputMap(map) => map.encode(out, ctx)?,
            R::QueryRealisation(reply) => reply.encode(out, ctx)?,
            R::BuildPathsWithResults(results) => results.encode(out, ctx)?,
            R::AddPermRoot(link) => put_str(out, link),
        }
        Ok(())
    }

    /// Decodes the reply to `op` at `ctx`'s version. A removed operation gives
    /// [`ProtocolError::RemovedOperation`].
    pub fn decode(op: Opcode, d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Response, DecodeError> {
        use Response as R;
        let paths = |d: &mut Decoder<'_>| BTreeSet::<StorePath>::decode(d, ctx);
        Ok(match op {
            Opcode::IsValidPath => R::IsValidPath(int_flag(d, "validity flag")?),
            Opcode::HasSubstitutes => R::HasSubstitutes(int_flag(d, "substitutable flag")?),
            Opcode::VerifyStore => R::VerifyStore(int_flag(d, "errors flag")?),
            Opcode::QueryPathHash => R::QueryPathHash(Hash::parse_any(d.read_str()?, Some(Algorithm::Sha256))?),
            Opcode::QueryReferences => R::QueryReferences(paths(d)?),
            Opcode::QueryReferrers => R::QueryReferrers(paths(d)?),
            Opcode::QueryDerivationOutputs => R::QueryDerivationOutputs(paths(d)?),
            Opcode::QueryAllValidPaths => R::QueryAllValidPaths(paths(d)?),
            Opcode::QueryValidPaths => R::QueryValidPaths(paths(d)?),
            Opcode::QuerySubstitutablePaths => R::QuerySubstitutablePaths(paths(d)?),
            Opcode::QueryValidDerivers => R::QueryValidDerivers(paths(d)?),
            Opcode::AddToStore => R::AddToStore(AddToStoreReply::decode(d, ctx)?),
            Opcode::AddTextToStore => R::AddTextToStore(StorePath::decode(d, ctx)?),
            Opcode::BuildPaths => ack(d).map(|()| R::BuildPaths)?,
            Opcode::EnsurePath => ack(d).map(|()| R::EnsurePath)?,
            Opcode::AddTempRoot => ack(d).map(|()| R::AddTempRoot)?,
            Opcode::AddIndirectRoot => ack(d).map(|()| R::AddIndirectRoot)?,
            Opcode::SyncWithGC => ack(d).map(|()| R::SyncWithGC)?,
            Opcode::ExportPath => ack(d).map(|()| R::ExportPath)?,
            Opcode::OptimiseStore => ack(d).map(|()| R::OptimiseStore)?,
            Opcode::AddSignatures => ack(d).map(|()| R::AddSignatures)?,
            Opcode::AddBuildLog => ack(d).map(|()| R::AddBuildLog)?,
            Opcode::SetOptions => R::SetOptions,
            Opcode::NarFromPath => R::NarFromPath,
            Opcode::AddToStoreNar => R::AddToStoreNar,
            Opcode::RegisterDrvOutput => R::RegisterDrvOutput,
            Opcode::AddMultipleToStore => R::AddMultipleToStore,
            Opcode::FindRoots => R::FindRoots(types::decode_roots(d, ctx)?),
            Opcode::QueryDeriver => R::QueryDeriver(Option::<StorePath>::decode(d, ctx)?),
            Opcode::QueryPathFromHashPart => R::QueryPathFromHashPart(Option::<StorePath>::decode(d, ctx)?),
            Opcode::CollectGarbage => R::CollectGarbage(GcResult::decode(d, ctx)?),
            Opcode::QuerySubstitutablePathInfo => R::QuerySubstitutablePathInfo(
                if int_flag(d, "substitutable flag")? { Some(SubstitutablePathInfo::decode(d, ctx)?) } else { None },
            ),
            Opcode::QueryPathInfo => R::QueryPathInfo(
                if !ctx.at_least(17) || d.read_bool("validity flag")? {
                    Some(UnkeyedValidPathInfo::decode(d, ctx)?)
                } else {
                    None
                },
            ),
            Opcode::ImportPaths => R::ImportPaths(Vec::decode(d, ctx)?),
            Opcode::QueryDerivationOutputNames => R::QueryDerivationOutputNames(BTreeSet::decode(d, ctx)?),
            Opcode::QuerySubstitutablePathInfos => R::QuerySubstitutablePathInfos(BTreeMap::decode(d, ctx)?),
            Opcode::BuildDerivation => R::BuildDerivation(BuildResult::decode(d, ctx)?),
            Opcode::QueryMissing => R::QueryMissing(MissingPaths::decode(d, ctx)?),
            Opcode::QueryDerivationOutputMap => R::QueryDerivationOutputMap(BTreeMap::decode(d, ctx)?),
            Opcode::QueryRealisation => R::QueryRealisation(RealisationReply::decode(d, ctx)?),
            Opcode::BuildPathsWithResults => R::BuildPathsWithResults(Vec::decode(d, ctx)?),
            Opcode::AddPermRoot => R::AddPermRoot(d.read_str()?.to_owned()),
            Opcode::QueryFailedPaths | Opcode::ClearFailedPaths => {
                return Err(ProtocolError::RemovedOperation(op.code()).into())
            }
        })
    }

    /// Reads the reply to `op` from a connection (after `STDERR_LAST`).
    pub async fn read<R: AsyncRead + Unpin>(
        op: Opcode,
        r: &mut WireReader<R>,
        ctx: &WireCtx,
    ) -> Result<Response, ProtocolError> {
        r.read_with(ctx, |d, ctx| Response::decode(op, d, ctx)).await
    }
}
