//! The compound replies: their types and wire forms.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::realisation::Realisation;
use nix_formats::store_path::StorePath;

use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::wire::encoder::{put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

/// What a substituter knows about a path (`QuerySubstitutablePathInfo(s)`): deriver (`""` =
/// none), references, download size, NAR size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubstitutablePathInfo {
    /// The derivation that built it, if known.
    pub deriver: Option<StorePath>,
    /// Its references.
    pub references: BTreeSet<StorePath>,
    /// The size of the download (compressed NAR) in bytes.
    pub download_size: u64,
    /// The size of its NAR in bytes.
    pub nar_size: u64,
}

impl WireEncode for SubstitutablePathInfo {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        self.deriver.encode(out, ctx)?;
        self.references.encode(out, ctx)?;
        put_u64(out, self.download_size);
        put_u64(out, self.nar_size);
        Ok(())
    }
}

impl WireDecode for SubstitutablePathInfo {
    /// A deriver, a set of references and two sizes.
    const MIN_WIRE_LEN: usize = 32;

    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        Ok(Self {
            deriver: Option::<StorePath>::decode(d, ctx)?,
            references: BTreeSet::decode(d, ctx)?,
            download_size: d.read_u64()?,
            nar_size: d.read_u64()?,
        })
    }
}

/// `QueryMissing`'s reply: three sets of paths, then download and NAR sizes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MissingPaths {
    /// Derivations that would be built.
    pub will_build: BTreeSet<StorePath>,
    /// Paths that would be substituted.
    pub will_substitute: BTreeSet<StorePath>,
    /// Paths that can be neither built nor substituted.
    pub unknown: BTreeSet<StorePath>,
    /// Total download size in bytes.
    pub download_size: u64,
    /// Total NAR size in bytes.
    pub nar_size: u64,
}

impl WireEncode for MissingPaths {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        self.will_build.encode(out, ctx)?;
        self.will_substitute.encode(out, ctx)?;
        self.unknown.encode(out, ctx)?;
        put_u64(out, self.download_size);
        put_u64(out, self.nar_size);
        Ok(())
    }
}

impl WireDecode for MissingPaths {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        Ok(Self {
            will_build: BTreeSet::decode(d, ctx)?,
            will_substitute: BTreeSet::decode(d, ctx)?,
            unknown: BTreeSet::decode(d, ctx)?,
            download_size: d.read_u64()?,
            nar_size: d.read_u64()?,
        })
    }
}

/// `CollectGarbage`'s reply: the paths (a set of strings, not necessarily store paths), the
/// bytes freed, and an obsolete number (written as 0, ignored when read).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GcResult {
    /// The deleted paths, or the live/dead ones for the listing actions.
    pub paths: BTreeSet<String>,
    /// Bytes freed.
    pub bytes_freed: u64,
}

impl WireEncode for GcResult {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        self.paths.encode(out, ctx)?;
        put_u64(out, self.bytes_freed);
        put_u64(out, 0);
        Ok(())
    }
}

impl WireDecode for GcResult {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let paths = BTreeSet::decode(d, ctx)?;
        let bytes_freed = d.read_u64()?;
        let _obsolete = d.read_u64()?;
        Ok(Self { paths, bytes_freed })
    }
}

/// The GC roots (`FindRoots`' reply), Nix's `Roots`: for each store path, the links that keep it
/// alive. Wire form: the number of links, then for each link its path and the store path, in the
/// order of this map (by store path, then link).
pub type Roots = BTreeMap<StorePath, BTreeSet<String>>;

pub(super) fn encode_roots(roots: &Roots, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
    put_u64(out, roots.values().map(|links| links.len() as u64).sum());
    for (target, links) in roots {
        for link in links {
            put_str(out, link);
            target.encode(out, ctx)?;
        }
    }
    Ok(())
}

pub(super) fn decode_roots(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Roots, DecodeError> {
    let count = d.read_count()?;
    let mut roots = Roots::new();
    // Each root is two strings.
    d.items(count, 16, |d| {
        let link = d.read_str()?.to_owned();
        let target = StorePath::decode(d, ctx)?;
        roots.entry(target).or_default().insert(link);
        Ok(())
    })?;
    Ok(roots)
}

/// `AddToStore`'s reply, whose form changed at 1.25.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one reply per operation; boxing would only add noise
pub enum AddToStoreReply {
    /// 1.25 on: the new path's info.
    Info(ValidPathInfo),
    /// Before 1.25: the new path. Encoding [`AddToStoreReply::Info`] at these versions writes
    /// only its path, so a server can always answer with the info.
    Path(StorePath),
}

impl AddToStoreReply {
    /// The new path.
    pub fn path(&self) -> &StorePath {
        match self {
            Self::Info(info) => &info.path,
            Self::Path(path) => path,
        }
    }
}

impl WireEncode for AddToStoreReply {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        match (self, ctx.at_least(25)) {
            (Self::Info(info), true) => info.encode(out, ctx),
            (Self::Path(_), true) => Err(ctx.unrepresentable("a bare path as AddToStore's reply")),
            (reply, false) => reply.path().encode(out, ctx),
        }
    }
}

impl WireDecode for AddToStoreReply {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        if ctx.at_least(25) {
            Ok(Self::Info(ValidPathInfo::decode(d, ctx)?))
        } else {
            Ok(Self::Path(StorePath::decode(d, ctx)?))
        }
    }
}

/// `QueryRealisation`'s reply (at most one element in practice), whose form changed at 1.31.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealisationReply {
    /// Before 1.31: the output paths. Encoding [`RealisationReply::Realisations`] at these
    /// versions writes their output paths.
    Paths(BTreeSet<StorePath>),
    /// 1.31 on: the realisations (as JSON strings).
    Realisations(BTreeSet<Realisation>),
}

impl WireEncode for RealisationReply {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        match (self, ctx.at_least(31)) {
            (Self::Realisations(r), true) => r.encode(out, ctx),
            (Self::Paths(_), true) => Err(ctx.unrepresentable("bare paths as QueryRealisation's reply")),
            (Self::Realisations(r), false) => {
                r.iter().map(|r| r.out_path.clone()).collect::<BTreeSet<_>>().encode(out, ctx)
            }
            (Self::Paths(p), false) => p.encode(out, ctx),
        }
    }
}

impl WireDecode for RealisationReply {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        if ctx.at_least(31) {
            Ok(Self::Realisations(BTreeSet::decode(d, ctx)?))
        } else {
            Ok(Self::Paths(BTreeSet::decode(d, ctx)?))
        }
    }
}
