//! Serialisers for numbers, booleans, strings, lists, sets and maps.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};

use super::{WireCtx, WireDecode, WireEncode};
use crate::error::ProtocolError;
use crate::wire::encoder::{put_bool, put_bytes, put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

impl WireEncode for u64 {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(out, *self);
        Ok(())
    }
}

impl WireDecode for u64 {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        d.read_u64()
    }
}

impl WireEncode for u32 {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(out, (*self).into());
        Ok(())
    }
}

impl WireDecode for u32 {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        d.read_u32("32-bit number")
    }
}

impl WireEncode for bool {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_bool(out, *self);
        Ok(())
    }
}

impl WireDecode for bool {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        d.read_bool("boolean")
    }
}

impl WireEncode for str {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_str(out, self);
        Ok(())
    }
}

impl WireEncode for String {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_str(out, self);
        Ok(())
    }
}

impl WireDecode for String {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        d.read_str().map(str::to_owned)
    }
}

/// Raw byte strings, which need not be UTF-8 (log lines, file contents).
impl WireEncode for Bytes {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_bytes(out, self);
        Ok(())
    }
}

impl WireDecode for Bytes {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        d.read_bytes().map(Bytes::copy_from_slice)
    }
}

fn encode_seq<'a, T, I>(out: &mut BytesMut, ctx: &WireCtx, items: I) -> Result<(), ProtocolError>
where
    T: WireEncode + 'a,
    I: ExactSizeIterator<Item = &'a T>,
{
    put_u64(out, items.len() as u64);
    for item in items {
        item.encode(out, ctx)?;
    }
    Ok(())
}

fn decode_seq<T: WireDecode>(
    d: &mut Decoder<'_>,
    ctx: &WireCtx,
    mut push: impl FnMut(T),
) -> Result<(), DecodeError> {
    let count = d.read_count()?;
    d.nested(|d| d.items(count, T::MIN_WIRE_LEN, |d| T::decode(d, ctx).map(&mut push)))
}

impl<T: WireEncode> WireEncode for [T] {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        encode_seq(out, ctx, self.iter())
    }
}

impl<T: WireEncode> WireEncode for Vec<T> {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        encode_seq(out, ctx, self.iter())
    }
}

impl<T: WireDecode> WireDecode for Vec<T> {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let mut out = Vec::new();
        decode_seq(d, ctx, |item| out.push(item))?;
        Ok(out)
    }
}

impl<T: WireEncode> WireEncode for BTreeSet<T> {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        encode_seq(out, ctx, self.iter())
    }
}

impl<T: WireDecode + Ord> WireDecode for BTreeSet<T> {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let mut out = BTreeSet::new();
        decode_seq(d, ctx, |item| {
            out.insert(item);
        })?;
        Ok(out)
    }
}

impl<K: WireEncode, V: WireEncode> WireEncode for BTreeMap<K, V> {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(out, self.len() as u64);
        for (k, v) in self {
            k.encode(out, ctx)?;
            v.encode(out, ctx)?;
        }
        Ok(())
    }
}

impl<K: WireDecode + Ord, V: WireDecode> WireDecode for BTreeMap<K, V> {
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let count = d.read_count()?;
        d.nested(|d| {
            let mut out = BTreeMap::new();
            d.items(count, K::MIN_WIRE_LEN + V::MIN_WIRE_LEN, |d| {
                let k = K::decode(d, ctx)?;
                let v = V::decode(d, ctx)?;
                out.insert(k, v);
                Ok(())
            })?;
            Ok(out)
        })
    }
}
