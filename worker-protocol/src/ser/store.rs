//! Serialisers for store paths, content addresses, derivation output ids and realisations.

use bytes::BytesMut;
use nix_formats::content_address::ContentAddress;
use nix_formats::realisation::{DrvOutput, Realisation};
use nix_formats::store_path::StorePath;

use super::{WireCtx, WireDecode, WireEncode};
use crate::error::ProtocolError;
use crate::wire::encoder::put_str;
use crate::wire::{DecodeError, Decoder};

/// A store path, as its full path in the context's store directory.
impl WireEncode for StorePath {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        put_str(out, &ctx.store_dir.print(self));
        Ok(())
    }
}

impl WireDecode for StorePath {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        Ok(ctx.store_dir.parse(d.read_str()?)?)
    }
}

/// An optional store path: `""` is none.
impl WireEncode for Option<StorePath> {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        match self {
            Some(p) => p.encode(out, ctx),
            None => {
                put_str(out, "");
                Ok(())
            }
        }
    }
}

impl WireDecode for Option<StorePath> {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        match d.read_str()? {
            "" => Ok(None),
            s => Ok(Some(ctx.store_dir.parse(s)?)),
        }
    }
}

/// A content address, as `text:…`, `fixed:…` or `fixed:r:…`.
impl WireEncode for ContentAddress {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_str(out, &self.to_string());
        Ok(())
    }
}

impl WireDecode for ContentAddress {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        Ok(ContentAddress::parse(d.read_str()?)?)
    }
}

/// An optional content address: `""` is none.
impl WireEncode for Option<ContentAddress> {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_str(out, &self.as_ref().map(ToString::to_string).unwrap_or_default());
        Ok(())
    }
}

impl WireDecode for Option<ContentAddress> {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        Ok(ContentAddress::parse_opt(d.read_str()?)?)
    }
}

/// A derivation output id, `<algo>:<hex>!<output>`.
impl WireEncode for DrvOutput {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_str(out, &self.to_string());
        Ok(())
    }
}

impl WireDecode for DrvOutput {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        Ok(DrvOutput::parse(d.read_str()?)?)
    }
}

/// A realisation, as a string holding its compact JSON.
impl WireEncode for Realisation {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_str(out, &self.to_json());
        Ok(())
    }
}

impl WireDecode for Realisation {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        Ok(Realisation::from_json(d.read_str()?)?)
    }
}
