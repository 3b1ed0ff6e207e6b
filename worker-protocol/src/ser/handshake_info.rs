//! Serialisers for the trust flag and [`ClientHandshakeInfo`].

use bytes::BytesMut;

use super::{WireCtx, WireDecode, WireEncode};
use crate::error::ProtocolError;
use crate::types::{ClientHandshakeInfo, TrustedFlag};
use crate::wire::encoder::{put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

/// An optional trust flag: 0 unknown, 1 trusted, 2 not trusted.
impl WireEncode for Option<TrustedFlag> {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(
            out,
            match self {
                None => 0,
                Some(TrustedFlag::Trusted) => 1,
                Some(TrustedFlag::NotTrusted) => 2,
            },
        );
        Ok(())
    }
}

impl WireDecode for Option<TrustedFlag> {
    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        match d.read_u64()? {
            0 => Ok(None),
            1 => Ok(Some(TrustedFlag::Trusted)),
            2 => Ok(Some(TrustedFlag::NotTrusted)),
            value => Err(ProtocolError::BadValue { what: "trust flag", value }.into()),
        }
    }
}

/// The daemon's side of the handshake: from worker 1.33 its Nix version string, from 1.35 the
/// optional trust flag. Nothing at all before 1.33.
impl WireEncode for ClientHandshakeInfo {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        if ctx.at_least(33) {
            let version = self.daemon_nix_version.as_deref().ok_or(ProtocolError::MissingField("daemon Nix version"))?;
            put_str(out, version);
        }
        if ctx.at_least(35) {
            self.remote_trusts_us.encode(out, ctx)?;
        }
        Ok(())
    }
}

impl WireDecode for ClientHandshakeInfo {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let mut info = ClientHandshakeInfo::default();
        if ctx.at_least(33) {
            info.daemon_nix_version = Some(d.read_str()?.to_owned());
        }
        if ctx.at_least(35) {
            info.remote_trusts_us = Option::<TrustedFlag>::decode(d, ctx)?;
        }
        Ok(info)
    }
}
