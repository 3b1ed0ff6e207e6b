//! Requests that build or realise: `BuildPaths`, `BuildPathsWithResults`, `BuildDerivation`,
//! `EnsurePath`.

use bytes::BytesMut;
use nix_formats::derivation::Derivation;
use nix_formats::derived_path::DerivedPath;
use nix_formats::store_path::StorePath;

use super::wire_struct;
use crate::error::ProtocolError;
use crate::ops::basic_derivation::BasicDerivation;
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::types::BuildMode;
use crate::wire::{DecodeError, Decoder};

/// `BuildPaths`: the derived paths (their form changed at 1.30), then from 1.15 the build mode.
/// Reply: `1`. Nix refuses [`BuildMode::Repair`] from untrusted clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPaths {
    /// What to build or substitute.
    pub paths: Vec<DerivedPath>,
    /// How (from 1.15; [`BuildMode::Normal`] before).
    pub mode: BuildMode,
}

impl WireEncode for BuildPaths {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        self.paths.encode(out, ctx)?;
        if ctx.at_least(15) {
            self.mode.encode(out, ctx)?;
        }
        Ok(())
    }
}

impl WireDecode for BuildPaths {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let paths = Vec::decode(d, ctx)?;
        let mode = if ctx.at_least(15) { BuildMode::decode(d, ctx)? } else { BuildMode::Normal };
        Ok(Self { paths, mode })
    }
}

wire_struct! {
    /// `BuildPathsWithResults`: the derived paths and the build mode (always). Reply: a keyed
    /// build result per path.
    BuildPathsWithResults {
        /// What to build or substitute.
        paths: Vec<DerivedPath>,
        /// How.
        mode: BuildMode,
    }
}

wire_struct! {
    /// `EnsurePath`: the path. Reply: `1`.
    EnsurePath { /// The path to make valid.
        path: StorePath }
}

/// `BuildDerivation`: the `.drv` path, the derivation without its input derivations
/// ([`BasicDerivation`]), the build mode. Reply: the build result. Nix lets untrusted clients
/// build only content-addressed derivations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDerivation {
    /// The derivation's store path (it need not exist).
    pub drv_path: StorePath,
    /// The derivation; its name must be the one in `drv_path`.
    pub drv: BasicDerivation,
    /// How.
    pub mode: BuildMode,
}

fn drv_name<'a>(drv_path: &'a StorePath, ctx: &WireCtx) -> Result<&'a str, ProtocolError> {
    Derivation::name_from_path(drv_path).ok_or_else(|| ProtocolError::NotADerivation(ctx.store_dir.print(drv_path)))
}

impl WireEncode for BuildDerivation {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        let name = drv_name(&self.drv_path, ctx)?;
        if name != self.drv.name {
            return Err(ctx.unrepresentable(format!("a derivation named '{}' at '{}'", self.drv.name, self.drv_path)));
        }
        self.drv_path.encode(out, ctx)?;
        self.drv.encode(out, ctx)?;
        self.mode.encode(out, ctx)
    }
}

impl WireDecode for BuildDerivation {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let drv_path = StorePath::decode(d, ctx)?;
        let drv = BasicDerivation::decode(d, ctx, drv_name(&drv_path, ctx)?)?;
        let mode = BuildMode::decode(d, ctx)?;
        Ok(Self { drv_path, drv, mode })
    }
}
