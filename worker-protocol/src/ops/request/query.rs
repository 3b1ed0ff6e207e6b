//! Requests that ask about paths and derivations without changing the store.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;
use nix_formats::content_address::ContentAddress;
use nix_formats::derived_path::DerivedPath;
use nix_formats::realisation::DrvOutput;
use nix_formats::store_path::StorePath;

use super::wire_struct;
use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::wire::encoder::put_u64;
use crate::wire::{DecodeError, Decoder};

wire_struct! {
    /// `IsValidPath`: the path. Reply: a flag.
    IsValidPath { /// The path asked about.
        path: StorePath }
}
wire_struct! {
    /// `HasSubstitutes` (obsolete): the path. Reply: a flag.
    HasSubstitutes { /// The path asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryPathHash` (obsolete): the path. Reply: its NAR hash.
    QueryPathHash { /// The path asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryReferences` (obsolete): the path. Reply: its references.
    QueryReferences { /// The path asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryReferrers`: the path. Reply: the paths that refer to it.
    QueryReferrers { /// The path asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryDeriver` (obsolete): the path. Reply: its deriver, if known.
    QueryDeriver { /// The path asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryValidDerivers`: the path. Reply: the valid derivations that produce it.
    QueryValidDerivers { /// The path asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryDerivationOutputs` (obsolete): the derivation. Reply: its output paths.
    QueryDerivationOutputs { /// The derivation asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryDerivationOutputNames` (obsolete): the derivation. Reply: its output names.
    QueryDerivationOutputNames { /// The derivation asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryDerivationOutputMap`: the derivation. Reply: its outputs and their known paths.
    QueryDerivationOutputMap { /// The derivation asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryPathInfo`: the path. Reply: its path info, if valid.
    QueryPathInfo { /// The path asked about.
        path: StorePath }
}
wire_struct! {
    /// `QuerySubstitutablePathInfo` (obsolete): the path. Reply: what a substituter knows of it.
    QuerySubstitutablePathInfo { /// The path asked about.
        path: StorePath }
}
wire_struct! {
    /// `QueryPathFromHashPart`: a hash part (not checked by Nix). Reply: the path, if any.
    QueryPathFromHashPart { /// The 32-character hash part.
        hash_part: String }
}
wire_struct! {
    /// `QueryAllValidPaths`: no arguments. Reply: every valid path.
    QueryAllValidPaths {}
}
wire_struct! {
    /// `QuerySubstitutablePaths`: the paths. Reply: those that can be substituted.
    QuerySubstitutablePaths { /// The paths asked about.
        paths: BTreeSet<StorePath> }
}
wire_struct! {
    /// `QueryMissing`: the targets. Reply: what would be built, substituted or is unknown.
    QueryMissing { /// The derived paths to realise.
        targets: Vec<DerivedPath> }
}
wire_struct! {
    /// `QueryRealisation`: the derivation output id. Reply: its realisation, if any.
    QueryRealisation { /// The derivation output asked about.
        id: DrvOutput }
}

/// `QueryValidPaths`: a set of paths, then from 1.27 whether to substitute the missing ones
/// first (read by Nix as a 32-bit number, true when non-zero). Reply: the valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryValidPaths {
    /// The paths asked about.
    pub paths: BTreeSet<StorePath>,
    /// Substitute missing paths first (1.27 on; false before).
    pub substitute: bool,
}

impl WireEncode for QueryValidPaths {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        self.paths.encode(out, ctx)?;
        if ctx.at_least(27) {
            put_u64(out, self.substitute.into());
        }
        Ok(())
    }
}

impl WireDecode for QueryValidPaths {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let paths = BTreeSet::decode(d, ctx)?;
        let substitute = ctx.at_least(27) && d.read_u32("substitute flag")? != 0;
        Ok(Self { paths, substitute })
    }
}

/// `QuerySubstitutablePathInfos`: from 1.22 a map from path to its optional content address
/// (which lets substituters find content-addressed paths); before, a set of paths. Reply: what
/// the substituters know of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySubstitutablePathInfos {
    /// The paths asked about, with their content addresses where known (always none before 1.22).
    pub paths: BTreeMap<StorePath, Option<ContentAddress>>,
}

impl WireEncode for QuerySubstitutablePathInfos {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        if ctx.at_least(22) {
            return self.paths.encode(out, ctx);
        }
        put_u64(out, self.paths.len() as u64);
        for path in self.paths.keys() {
            path.encode(out, ctx)?;
        }
        Ok(())
    }
}

impl WireDecode for QuerySubstitutablePathInfos {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let paths = if ctx.at_least(22) {
            BTreeMap::decode(d, ctx)?
        } else {
            BTreeSet::<StorePath>::decode(d, ctx)?.into_iter().map(|p| (p, None)).collect()
        };
        Ok(Self { paths })
    }
}
