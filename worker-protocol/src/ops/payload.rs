//! [`Payload`] and [`ReplyData`]: the bytes that travel with an operation besides its typed
//! fields, and how the connection layer finds their end. Also the small typed records inside some
//! payloads ([`AddMultipleToStore`](super::request::add::AddMultipleToStore) items,
//! [`ExportTrailer`]).

use bytes::BytesMut;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::store_path::StorePath;

use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::version::ProtocolVersion;
use crate::wire::encoder::{put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

/// What follows a request's typed fields on the client-to-server stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Payload {
    /// Nothing: the request is complete.
    None,
    /// A framed stream ([`crate::framed`]) follows at once. The server starts its work (and may
    /// send logger messages) before reading it; the client reads logger messages while it sends.
    Framed(Content),
    /// A NAR follows at once, raw and without a length: only the NAR grammar tells where it ends,
    /// so it must be read with a NAR parser (`nix_formats::nar`).
    InlineNar,
    /// Nothing follows at once. After starting its work the server asks for the data in pieces:
    /// it sends `STDERR_READ` with a byte count, and the client answers each with a byte string
    /// of at most that many bytes (an empty one means the data has ended).
    StderrReadPulled(Content),
}

/// What the bytes of a [`Payload`] hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// One NAR.
    Nar,
    /// The raw contents of a single file (not a NAR): `AddToStore` with the flat or text method.
    FileContents,
    /// `AddMultipleToStore`'s stream: a `u64` count, then for each path a
    /// [`ValidPathInfo`] at version 1.16 (see [`decode_multiple_item_info`]) followed by its NAR.
    MultiplePaths,
    /// `ImportPaths`' stream (`nix-store --export` form): for each path a `u64` 1, its NAR and an
    /// [`ExportTrailer`]; then a `u64` 0.
    ExportedPaths,
    /// A build log, raw bytes.
    BuildLog,
}

impl Payload {
    /// Whether any bytes follow the typed fields right away (framed or inline).
    pub fn follows_request(self) -> bool {
        matches!(self, Payload::Framed(_) | Payload::InlineNar)
    }
}

/// What the server sends besides the typed reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyData {
    /// Nothing.
    None,
    /// A NAR follows `STDERR_LAST` directly, raw and in place of a typed reply (`NarFromPath`).
    NarAfterLast,
    /// During the work the server sends the data in `STDERR_WRITE` messages (`ExportPath`: the
    /// path in `nix-store --export` form, one record without the leading `1`); the typed reply
    /// follows `STDERR_LAST` as usual.
    StderrWrite,
}

/// The protocol version at which `AddMultipleToStore` encodes each item's path info, whatever
/// the connection's version (Nix writes and reads them at 1.16).
pub const MULTIPLE_ITEM_VERSION: ProtocolVersion = ProtocolVersion::new(1, 16);

fn item_ctx(ctx: &WireCtx) -> WireCtx {
    ctx.clone().with_version(MULTIPLE_ITEM_VERSION)
}

/// Appends the count that opens an `AddMultipleToStore` stream.
pub fn encode_multiple_count(out: &mut BytesMut, count: u64) {
    put_u64(out, count);
}

/// Appends one `AddMultipleToStore` item's path info (its NAR follows it in the stream).
pub fn encode_multiple_item_info(out: &mut BytesMut, info: &ValidPathInfo, ctx: &WireCtx) -> Result<(), ProtocolError> {
    info.encode(out, &item_ctx(ctx))
}

/// Decodes one `AddMultipleToStore` item's path info. Nix clears the ultimate flag of what it
/// receives this way; this decoder keeps it as sent.
pub fn decode_multiple_item_info(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<ValidPathInfo, DecodeError> {
    ValidPathInfo::decode(d, &item_ctx(ctx))
}

/// The magic number between a NAR and its trailer in `nix-store --export` form.
pub const EXPORT_MAGIC: u64 = 0x4558_494e;

/// What follows each NAR in `nix-store --export` form (`ExportPath`, `ImportPaths`): the magic
/// number, the path, its references, its deriver and a legacy signature flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTrailer {
    /// The path the NAR belongs to.
    pub path: StorePath,
    /// Its references.
    pub references: std::collections::BTreeSet<StorePath>,
    /// Its deriver, if any.
    pub deriver: Option<StorePath>,
    /// A legacy signature (flag 1 and a string); Nix writes none and ignores one it reads.
    pub legacy_signature: Option<String>,
}

impl WireEncode for ExportTrailer {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(out, EXPORT_MAGIC);
        self.path.encode(out, ctx)?;
        self.references.encode(out, ctx)?;
        self.deriver.encode(out, ctx)?;
        match &self.legacy_signature {
            None => put_u64(out, 0),
            Some(sig) => {
                put_u64(out, 1);
                put_str(out, sig);
            }
        }
        Ok(())
    }
}

impl WireDecode for ExportTrailer {
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let magic = d.read_u64()?;
        if magic != EXPORT_MAGIC {
            return Err(ProtocolError::BadMagic { expected: EXPORT_MAGIC, got: magic }.into());
        }
        let path = StorePath::decode(d, ctx)?;
        let references = WireDecode::decode(d, ctx)?;
        let deriver = Option::<StorePath>::decode(d, ctx)?;
        // Nix reads the flag as a 32-bit number and takes 1 to mean "a signature follows".
        let legacy_signature = match d.read_u32("legacy signature flag")? {
            1 => Some(d.read_str()?.to_owned()),
            _ => None,
        };
        Ok(Self { path, references, deriver, legacy_signature })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ser::strategies::{store_path, text, unkeyed_info};
    use crate::ser::{decode_exact, encode_to_bytes};
    use crate::version::WORKER_PROTOCOL_VERSION;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn export_trailer_round_trip(
            path in store_path(),
            references in proptest::collection::btree_set(store_path(), 0..4),
            deriver in proptest::option::of(store_path()),
            legacy_signature in proptest::option::of(text()),
        ) {
            let ctx = WireCtx::worker(WORKER_PROTOCOL_VERSION);
            let t = ExportTrailer { path, references, deriver, legacy_signature };
            let bytes = encode_to_bytes(&t, &ctx).unwrap();
            prop_assert_eq!(decode_exact::<ExportTrailer>(&bytes, &ctx).unwrap(), t);
        }

        #[test]
        fn multiple_items_use_version_16(info in unkeyed_info(), path in store_path(), minor in 21u8..=38) {
            let ctx = WireCtx::worker(ProtocolVersion::new(1, minor));
            let info = info.with_path(path);
            let mut out = BytesMut::new();
            encode_multiple_item_info(&mut out, &info, &ctx).unwrap();
            prop_assert_eq!(&out[..], &encode_to_bytes(&info, &item_ctx(&ctx)).unwrap()[..]);
            let back = decode_multiple_item_info(&mut Decoder::new(&out, ctx.limits), &ctx).unwrap();
            prop_assert_eq!(back, info);
        }
    }

    #[test]
    fn export_trailer_magic_is_checked() {
        let ctx = WireCtx::default();
        let bytes = 7u64.to_le_bytes();
        assert!(matches!(decode_exact::<ExportTrailer>(&bytes, &ctx), Err(ProtocolError::BadMagic { got: 7, .. })));
        assert!(Payload::InlineNar.follows_request() && !Payload::StderrReadPulled(Content::Nar).follows_request());
    }
}
