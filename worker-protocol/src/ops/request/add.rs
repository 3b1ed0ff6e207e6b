//! Requests that add data to the store or stream it out: `AddToStore` (both forms),
//! `AddTextToStore`, `AddToStoreNar`, `AddMultipleToStore`, `AddBuildLog`, `AddSignatures`,
//! `ImportPaths`, `ExportPath`, `NarFromPath`, `RegisterDrvOutput`.

use std::collections::BTreeSet;
use std::fmt;

use bytes::{Bytes, BytesMut};
use nix_formats::hash::Algorithm;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::realisation::{DrvOutput, Realisation};
use nix_formats::store_path::StorePath;

use super::wire_struct;
use crate::error::ProtocolError;
use crate::ops::payload::{Content, Payload};
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::version::ProtocolVersion;
use crate::wire::encoder::{put_bool, put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

/// How `AddToStore` ingests and hashes the data (Nix's `ContentAddressMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngestionMethod {
    /// A text file with references (`text:`).
    Text,
    /// A single file, hashed flat (`fixed:`).
    Flat,
    /// Any file system object, hashed as a NAR (`fixed:r:`).
    Nar,
    /// Git's tree hashing (`fixed:git:`; experimental in Nix). The data is sent as a NAR.
    Git,
}

/// An ingestion method with its hash algorithm, written `text:sha256`, `fixed:sha256`,
/// `fixed:r:sha256` or `fixed:git:sha1` (Nix's `renderWithAlgo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaMethodAlgo {
    /// The method.
    pub method: IngestionMethod,
    /// The hash algorithm.
    pub algo: Algorithm,
}

impl fmt::Display for CaMethodAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.method {
            IngestionMethod::Text => "text:",
            IngestionMethod::Flat => "fixed:",
            IngestionMethod::Nar => "fixed:r:",
            IngestionMethod::Git => "fixed:git:",
        };
        write!(f, "{prefix}{}", self.algo)
    }
}

impl CaMethodAlgo {
    /// Parses the forms [`fmt::Display`] writes. Nix also ignores anything after a further `:`;
    /// this parser refuses it.
    pub fn parse(s: &str) -> Result<Self, ProtocolError> {
        let (method, algo) = if let Some(algo) = s.strip_prefix("text:") {
            (IngestionMethod::Text, algo)
        } else if let Some(rest) = s.strip_prefix("fixed:") {
            if let Some(algo) = rest.strip_prefix("r:") {
                (IngestionMethod::Nar, algo)
            } else if let Some(algo) = rest.strip_prefix("git:") {
                (IngestionMethod::Git, algo)
            } else {
                (IngestionMethod::Flat, rest)
            }
        } else {
            let short = s.chars().take(200).collect();
            return Err(nix_formats::content_address::ContentAddressError::BadPrefix(short).into());
        };
        Ok(Self { method, algo: algo.parse()? })
    }

    /// What the data is sent as: the file's bytes for `text` and flat, a NAR otherwise.
    pub fn content(self) -> Content {
        match self.method {
            IngestionMethod::Text | IngestionMethod::Flat => Content::FileContents,
            IngestionMethod::Nar | IngestionMethod::Git => Content::Nar,
        }
    }
}

impl WireEncode for CaMethodAlgo {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_str(out, &self.to_string());
        Ok(())
    }
}

impl WireDecode for CaMethodAlgo {
    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        Ok(Self::parse(d.read_str()?)?)
    }
}

/// `AddToStore`, whose form changed at 1.25. Reply: the new path's info (1.25 on) or its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddToStore {
    /// 1.25 on: name, method with algorithm, references, repair flag; then the data as a framed
    /// stream.
    Framed(AddToStoreFramed),
    /// Before 1.25: name, "fixed" flag, "recursive" flag, algorithm; then a NAR inline.
    Legacy(AddToStoreLegacy),
}

wire_struct! {
    /// The fields of `AddToStore` from 1.25.
    AddToStoreFramed {
        /// The name of the new path.
        name: String,
        /// How the data is ingested and hashed.
        method: CaMethodAlgo,
        /// The paths the data refers to.
        references: BTreeSet<StorePath>,
        /// Replace an existing path whose contents are corrupt.
        repair: bool,
    }
}

/// The fields of `AddToStore` before 1.25. The data is always a NAR: of the file for the flat
/// method, of the object otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddToStoreLegacy {
    /// The name of the new path.
    pub name: String,
    /// False only for the common case of a SHA-256 NAR hash (a compatibility quirk: Nix then
    /// ignores `recursive` and `algo`).
    pub fixed: bool,
    /// Hash the NAR (true) or the file's contents (false).
    pub recursive: bool,
    /// The hash algorithm.
    pub algo: Algorithm,
}

impl AddToStoreLegacy {
    /// The method and algorithm Nix derives from the flags.
    pub fn method(&self) -> CaMethodAlgo {
        match (self.fixed, self.recursive) {
            (false, _) => CaMethodAlgo { method: IngestionMethod::Nar, algo: Algorithm::Sha256 },
            (true, true) => CaMethodAlgo { method: IngestionMethod::Nar, algo: self.algo },
            (true, false) => CaMethodAlgo { method: IngestionMethod::Flat, algo: self.algo },
        }
    }
}

const FRAMED_ADD_TO_STORE: u8 = 25;

impl AddToStore {
    /// What follows the fields: a framed stream of the data from 1.25, a NAR inline before.
    pub fn payload(&self) -> Payload {
        match self {
            AddToStore::Framed(f) => Payload::Framed(f.method.content()),
            AddToStore::Legacy(_) => Payload::InlineNar,
        }
    }
}

impl WireEncode for AddToStore {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        match (self, ctx.at_least(FRAMED_ADD_TO_STORE)) {
            (AddToStore::Framed(f), true) => f.encode(out, ctx),
            (AddToStore::Legacy(l), false) => {
                put_str(out, &l.name);
                put_bool(out, l.fixed);
                put_bool(out, l.recursive);
                put_str(out, &l.algo.to_string());
                Ok(())
            }
            (AddToStore::Framed(_), false) => Err(ctx.unrepresentable("the framed form of AddToStore")),
            (AddToStore::Legacy(_), true) => Err(ctx.unrepresentable("the legacy form of AddToStore")),
        }
    }
}

impl WireDecode for AddToStore {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        if ctx.at_least(FRAMED_ADD_TO_STORE) {
            return Ok(AddToStore::Framed(AddToStoreFramed::decode(d, ctx)?));
        }
        let name = d.read_str()?.to_owned();
        let fixed = d.read_bool("fixed flag")?;
        // Nix reads an 8-bit number and refuses anything above 1.
        let recursive = d.read_bool("file ingestion method")?;
        let algo = d.read_str()?.parse().map_err(ProtocolError::from)?;
        Ok(AddToStore::Legacy(AddToStoreLegacy { name, fixed, recursive, algo }))
    }
}

wire_struct! {
    /// `AddTextToStore` (obsolete since 1.25): name, contents, references. Reply: the new path.
    AddTextToStore {
        /// The name of the new path.
        name: String,
        /// The file's contents.
        text: Bytes,
        /// The paths the text refers to.
        references: BTreeSet<StorePath>,
    }
}

/// `AddToStoreNar`: a full path info (path, deriver, NAR hash as hex, references, registration
/// time, NAR size, ultimate flag, signatures, content address — always all of them), then repair
/// and "don't check signatures" flags; then the NAR: framed from 1.23, pulled with `STDERR_READ`
/// at 1.21 and 1.22, inline before. No reply after `STDERR_LAST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddToStoreNar {
    /// The path and what is known about it. Nix ignores `ultimate` from untrusted clients.
    pub info: ValidPathInfo,
    /// Replace an existing path whose contents are corrupt.
    pub repair: bool,
    /// Skip the signature check (honoured by Nix for trusted clients only).
    pub dont_check_sigs: bool,
}

/// The path-info fields of `AddToStoreNar` are written as from 1.16 at every version.
fn info_ctx(ctx: &WireCtx) -> WireCtx {
    ctx.clone().with_version(ctx.version.max(ProtocolVersion::new(1, 16)))
}

impl AddToStoreNar {
    /// How the NAR follows, at `version`.
    pub fn payload(version: ProtocolVersion) -> Payload {
        if version.at_least(1, 23) {
            Payload::Framed(Content::Nar)
        } else if version.at_least(1, 21) {
            Payload::StderrReadPulled(Content::Nar)
        } else {
            Payload::InlineNar
        }
    }
}

impl WireEncode for AddToStoreNar {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        self.info.encode(out, &info_ctx(ctx))?;
        put_bool(out, self.repair);
        put_bool(out, self.dont_check_sigs);
        Ok(())
    }
}

impl WireDecode for AddToStoreNar {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let info = ValidPathInfo::decode(d, &info_ctx(ctx))?;
        let repair = d.read_bool("repair flag")?;
        let dont_check_sigs = d.read_bool("dontCheckSigs flag")?;
        Ok(Self { info, repair, dont_check_sigs })
    }
}

wire_struct! {
    /// `AddMultipleToStore`: repair and "don't check signatures" flags, then a framed stream of
    /// the paths ([`Content::MultiplePaths`]). No reply after `STDERR_LAST`.
    AddMultipleToStore {
        /// Replace existing paths whose contents are corrupt.
        repair: bool,
        /// Skip signature checks (honoured by Nix for trusted clients only).
        dont_check_sigs: bool,
    }
}

/// `AddBuildLog`: the derivation's path as a base name (`<hash>-<name>.drv`, without the store
/// directory), then the log as a framed stream. Reply: `1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddBuildLog {
    /// The derivation the log belongs to.
    pub drv_path: StorePath,
}

impl WireEncode for AddBuildLog {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_str(out, &self.drv_path.to_string());
        Ok(())
    }
}

impl WireDecode for AddBuildLog {
    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        Ok(Self { drv_path: StorePath::from_base_name(d.read_str()?)? })
    }
}

wire_struct! {
    /// `AddSignatures`: the path and the signatures to add. Reply: `1`.
    AddSignatures {
        /// The path.
        path: StorePath,
        /// The signatures, `<key name>:<base64>`.
        sigs: BTreeSet<String>,
    }
}

wire_struct! {
    /// `ImportPaths` (obsolete): no fields; the server then pulls the paths in
    /// `nix-store --export` form with `STDERR_READ`. Reply: the imported paths.
    ImportPaths {}
}

wire_struct! {
    /// `NarFromPath`: the path. After `STDERR_LAST` the server sends its NAR, raw.
    NarFromPath { /// The path to stream.
        path: StorePath }
}

/// `ExportPath` (obsolete): the path and an obsolete "sign" number (read by Nix as a 32-bit
/// number and ignored). The export comes in `STDERR_WRITE` messages. Reply: `1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPath {
    /// The path to export.
    pub path: StorePath,
    /// The obsolete "sign" flag (true when non-zero).
    pub sign: bool,
}

impl WireEncode for ExportPath {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        self.path.encode(out, ctx)?;
        put_u64(out, self.sign.into());
        Ok(())
    }
}

impl WireDecode for ExportPath {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let path = StorePath::decode(d, ctx)?;
        let sign = d.read_u32("sign flag")? != 0;
        Ok(Self { path, sign })
    }
}

/// `RegisterDrvOutput`: from 1.31 the realisation (its JSON); before, the output id and the
/// output path as a base name, so signatures and dependent realisations are not sent. No reply
/// after `STDERR_LAST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterDrvOutput {
    /// The realisation to register.
    pub realisation: Realisation,
}

impl WireEncode for RegisterDrvOutput {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        if ctx.at_least(31) {
            return self.realisation.encode(out, ctx);
        }
        self.realisation.id.encode(out, ctx)?;
        put_str(out, &self.realisation.out_path.to_string());
        Ok(())
    }
}

impl WireDecode for RegisterDrvOutput {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        if ctx.at_least(31) {
            return Ok(Self { realisation: Realisation::decode(d, ctx)? });
        }
        let id = DrvOutput::decode(d, ctx)?;
        let out_path = StorePath::from_base_name(d.read_str()?)?;
        Ok(Self { realisation: Realisation::new(id, out_path) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_strings() {
        for (s, method, algo) in [
            ("text:sha256", IngestionMethod::Text, Algorithm::Sha256),
            ("fixed:sha1", IngestionMethod::Flat, Algorithm::Sha1),
            ("fixed:r:sha512", IngestionMethod::Nar, Algorithm::Sha512),
            ("fixed:git:sha1", IngestionMethod::Git, Algorithm::Sha1),
        ] {
            let m = CaMethodAlgo::parse(s).unwrap();
            assert_eq!(m, CaMethodAlgo { method, algo });
            assert_eq!(m.to_string(), s);
        }
        for bad in ["", "sha256", "r:sha256", "fixed:", "fixed:r:sha256:", "text:sha3", "fixed:git:r:sha1"] {
            assert!(CaMethodAlgo::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(CaMethodAlgo::parse("text:sha256").unwrap().content(), Content::FileContents);
        assert_eq!(CaMethodAlgo::parse("fixed:git:sha1").unwrap().content(), Content::Nar);
    }

    #[test]
    fn legacy_flags() {
        let l = |fixed, recursive, algo| AddToStoreLegacy { name: "x".into(), fixed, recursive, algo }.method();
        assert_eq!(l(false, false, Algorithm::Md5), CaMethodAlgo { method: IngestionMethod::Nar, algo: Algorithm::Sha256 });
        assert_eq!(l(true, true, Algorithm::Sha1), CaMethodAlgo { method: IngestionMethod::Nar, algo: Algorithm::Sha1 });
        assert_eq!(l(true, false, Algorithm::Sha256), CaMethodAlgo { method: IngestionMethod::Flat, algo: Algorithm::Sha256 });
    }

    #[test]
    fn nar_payload_by_version() {
        assert_eq!(AddToStoreNar::payload(ProtocolVersion::new(1, 38)), Payload::Framed(Content::Nar));
        assert_eq!(AddToStoreNar::payload(ProtocolVersion::new(1, 23)), Payload::Framed(Content::Nar));
        assert_eq!(AddToStoreNar::payload(ProtocolVersion::new(1, 22)), Payload::StderrReadPulled(Content::Nar));
        assert_eq!(AddToStoreNar::payload(ProtocolVersion::new(1, 21)), Payload::StderrReadPulled(Content::Nar));
        assert_eq!(AddToStoreNar::payload(ProtocolVersion::new(1, 20)), Payload::InlineNar);
    }
}
