//! Serialiser for the serve protocol's [`BuildOptions`].

use bytes::BytesMut;

use super::{WireCtx, WireDecode, WireEncode};
use crate::error::ProtocolError;
use crate::types::BuildOptions;
use crate::wire::encoder::{put_bool, put_u64};
use crate::wire::{DecodeError, Decoder};

/// Build options: max silent time, build timeout; from 2.2 max log size; from 2.3 repeats and
/// the determinism flag; from 2.7 the keep-failed flag. Absent fields are sent as 0.
impl WireEncode for BuildOptions {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(out, self.max_silent_time);
        put_u64(out, self.build_timeout);
        if ctx.at_least(2) {
            put_u64(out, self.max_log_size.unwrap_or(0));
        }
        if ctx.at_least(3) {
            put_u64(out, self.nr_repeats.unwrap_or(0));
            put_bool(out, self.enforce_determinism.unwrap_or(false));
        }
        if ctx.at_least(7) {
            put_bool(out, self.keep_failed.unwrap_or(false));
        }
        Ok(())
    }
}

impl WireDecode for BuildOptions {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let mut o = BuildOptions { max_silent_time: d.read_u64()?, build_timeout: d.read_u64()?, ..Default::default() };
        if ctx.at_least(2) {
            o.max_log_size = Some(d.read_u64()?);
        }
        if ctx.at_least(3) {
            o.nr_repeats = Some(d.read_u64()?);
            o.enforce_determinism = Some(d.read_bool("enforce-determinism flag")?);
        }
        if ctx.at_least(7) {
            o.keep_failed = Some(d.read_bool("keep-failed flag")?);
        }
        Ok(o)
    }
}
