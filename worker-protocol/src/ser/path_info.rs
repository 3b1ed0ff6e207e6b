//! Serialisers for [`UnkeyedValidPathInfo`] and [`ValidPathInfo`].

use std::collections::BTreeSet;

use bytes::BytesMut;
use nix_formats::content_address::ContentAddress;
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;

use super::{Protocol, WireCtx, WireDecode, WireEncode};
use crate::error::ProtocolError;
use crate::types::UnkeyedValidPathInfo;
use crate::wire::encoder::{put_bool, put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

/// A path info without its path.
///
/// Worker: deriver (`""` = none), NAR hash as 64 hex digits without prefix, references,
/// registration time, NAR size; from 1.16 the ultimate flag, signatures and content address.
///
/// Serve: deriver, references, download size (written as the NAR size, ignored when read), NAR
/// size; from 2.4 the NAR hash as `sha256:<nix32>`, content address and signatures. Serve carries
/// no registration time and no ultimate flag; decoding leaves them 0 and false.
impl WireEncode for UnkeyedValidPathInfo {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        InfoFields {
            deriver: &self.deriver,
            nar_hash: &self.nar_hash,
            references: &self.references,
            registration_time: self.registration_time,
            nar_size: self.nar_size,
            ultimate: self.ultimate,
            sigs: &self.sigs,
            ca: &self.ca,
        }
        .encode(out, ctx)
    }
}

/// The fields of an unkeyed path info, borrowed from either info type.
struct InfoFields<'a> {
    deriver: &'a Option<StorePath>,
    nar_hash: &'a Hash,
    references: &'a BTreeSet<StorePath>,
    registration_time: u64,
    nar_size: u64,
    ultimate: bool,
    sigs: &'a BTreeSet<String>,
    ca: &'a Option<ContentAddress>,
}

impl InfoFields<'_> {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        match ctx.protocol {
            Protocol::Worker => {
                if self.nar_hash.algorithm() != Algorithm::Sha256 {
                    return Err(ctx.unrepresentable(format!("a {} NAR hash", self.nar_hash.algorithm())));
                }
                self.deriver.encode(out, ctx)?;
                put_str(out, &self.nar_hash.to_base16());
                self.references.encode(out, ctx)?;
                put_u64(out, self.registration_time);
                put_u64(out, self.nar_size);
                if ctx.at_least(16) {
                    put_bool(out, self.ultimate);
                    self.sigs.encode(out, ctx)?;
                    self.ca.encode(out, ctx)?;
                }
            }
            Protocol::Serve => {
                self.deriver.encode(out, ctx)?;
                self.references.encode(out, ctx)?;
                put_u64(out, self.nar_size);
                put_u64(out, self.nar_size);
                if ctx.at_least(4) {
                    put_str(out, &self.nar_hash.to_string());
                    self.ca.encode(out, ctx)?;
                    self.sigs.encode(out, ctx)?;
                }
            }
        }
        Ok(())
    }
}

impl WireDecode for UnkeyedValidPathInfo {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let deriver = Option::<StorePath>::decode(d, ctx)?;
        match ctx.protocol {
            Protocol::Worker => {
                let nar_hash = Hash::parse_any(d.read_str()?, Some(Algorithm::Sha256))?;
                let mut info = UnkeyedValidPathInfo::new(nar_hash);
                info.deriver = deriver;
                info.references = BTreeSet::decode(d, ctx)?;
                info.registration_time = d.read_u64()?;
                info.nar_size = d.read_u64()?;
                if ctx.at_least(16) {
                    info.ultimate = d.read_bool("ultimate flag")?;
                    info.sigs = BTreeSet::decode(d, ctx)?;
                    info.ca = Option::<ContentAddress>::decode(d, ctx)?;
                }
                Ok(info)
            }
            Protocol::Serve => {
                let mut info = UnkeyedValidPathInfo::new(UnkeyedValidPathInfo::unknown_nar_hash());
                info.deriver = deriver;
                info.references = BTreeSet::decode(d, ctx)?;
                let _download_size = d.read_u64()?;
                info.nar_size = d.read_u64()?;
                if ctx.at_least(4) {
                    let hash = d.read_str()?;
                    if !hash.is_empty() {
                        info.nar_hash = Hash::parse_prefixed(hash)?;
                    }
                    info.ca = Option::<ContentAddress>::decode(d, ctx)?;
                    info.sigs = BTreeSet::decode(d, ctx)?;
                }
                Ok(info)
            }
        }
    }
}

/// A path info: the store path, then the unkeyed record.
impl WireEncode for ValidPathInfo {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        self.path.encode(out, ctx)?;
        InfoFields {
            deriver: &self.deriver,
            nar_hash: &self.nar_hash,
            references: &self.references,
            registration_time: self.registration_time,
            nar_size: self.nar_size,
            ultimate: self.ultimate,
            sigs: &self.sigs,
            ca: &self.ca,
        }
        .encode(out, ctx)
    }
}

impl WireDecode for ValidPathInfo {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let path = StorePath::decode(d, ctx)?;
        Ok(UnkeyedValidPathInfo::decode(d, ctx)?.with_path(path))
    }
}
