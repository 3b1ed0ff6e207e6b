//! Typed serialisers: [`WireEncode`] and [`WireDecode`] for every value the worker and serve
//! protocols carry, parameterised by a [`WireCtx`] (protocol, version, store directory, limits).
//!
//! | type | wire form |
//! |---|---|
//! | `u64`, `u32`, `bool` | one `u64` (`u32` must fit 32 bits, `bool` must be 0 or 1) |
//! | `String`, [`bytes::Bytes`] | a byte string (`String` must be UTF-8) |
//! | `Vec<T>`, `BTreeSet<T>`, `BTreeMap<K, V>` | count, then elements (keys and values alternate) |
//! | [`StorePath`](nix_formats::store_path::StorePath) | the full path; `Option<StorePath>`: `""` is none |
//! | [`ContentAddress`](nix_formats::content_address::ContentAddress) | its text; `Option<…>`: `""` is none |
//! | [`DrvOutput`](nix_formats::realisation::DrvOutput), [`Realisation`](nix_formats::realisation::Realisation) | `<algo>:<hex>!<output>`; compact JSON |
//! | [`DerivedPath`](nix_formats::derived_path::DerivedPath) | a string; its form changed at worker 1.30 |
//! | [`BuildResult`](nix_formats::build_result::BuildResult) | version-gated fields, different in the serve protocol |
//! | [`UnkeyedValidPathInfo`](crate::types::UnkeyedValidPathInfo), [`ValidPathInfo`](nix_formats::path_info::ValidPathInfo) | version-gated fields, different in the serve protocol |
//! | [`BuildMode`](crate::types::BuildMode), `Option<`[`TrustedFlag`](crate::types::TrustedFlag)`>` | a small number |
//! | [`ClientHandshakeInfo`](crate::types::ClientHandshakeInfo), [`BuildOptions`](crate::types::BuildOptions) | version-gated fields |
//!
//! Sets and maps are written in ascending order. Like Nix, readers accept them in any order and
//! keep the last of duplicate keys.

mod build;
mod collections;
mod handshake_info;
mod path_info;
mod serve;
mod store;
#[cfg(test)]
pub(crate) mod strategies;
#[cfg(test)]
mod tests;

use bytes::BytesMut;
use nix_formats::store_path::StoreDir;

use crate::error::ProtocolError;
use crate::limits::Limits;
use crate::version::{ProtocolVersion, SERVE_PROTOCOL_VERSION, WORKER_PROTOCOL_VERSION};
use crate::wire::{DecodeError, Decoder};

/// Which protocol a value travels in; a few types are encoded differently in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The worker protocol (daemon socket, `ssh-ng://`), versions 1.x.
    Worker,
    /// The serve protocol (`nix-store --serve`, `ssh://`), versions 2.x.
    Serve,
}

/// Everything a serialiser needs to know besides the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireCtx {
    /// The protocol.
    pub protocol: Protocol,
    /// The negotiated version.
    pub version: ProtocolVersion,
    /// The store directory that full store paths are printed with and parsed against.
    pub store_dir: StoreDir,
    /// The bounds on decoded values.
    pub limits: Limits,
}

impl WireCtx {
    /// The worker protocol at `version`, store `/nix/store`, default limits.
    pub fn worker(version: ProtocolVersion) -> Self {
        Self { protocol: Protocol::Worker, version, store_dir: StoreDir::default(), limits: Limits::DEFAULT }
    }

    /// The serve protocol at `version`, store `/nix/store`, default limits.
    pub fn serve(version: ProtocolVersion) -> Self {
        Self { protocol: Protocol::Serve, version, store_dir: StoreDir::default(), limits: Limits::DEFAULT }
    }

    /// The same context with another store directory.
    pub fn with_store_dir(mut self, store_dir: StoreDir) -> Self {
        self.store_dir = store_dir;
        self
    }

    /// The same context with other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same context at another version.
    pub fn with_version(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    /// Whether the version is at least `1.minor` (worker) or `2.minor` (serve).
    pub fn at_least(&self, minor: u8) -> bool {
        self.version.minor() >= minor
    }

    pub(crate) fn unrepresentable(&self, what: impl Into<String>) -> ProtocolError {
        ProtocolError::Unrepresentable { what: what.into(), version: self.version }
    }
}

impl Default for WireCtx {
    /// The worker protocol at its newest version.
    fn default() -> Self {
        Self::worker(WORKER_PROTOCOL_VERSION)
    }
}

/// The newest context of `protocol`.
pub fn newest(protocol: Protocol) -> WireCtx {
    match protocol {
        Protocol::Worker => WireCtx::worker(WORKER_PROTOCOL_VERSION),
        Protocol::Serve => WireCtx::serve(SERVE_PROTOCOL_VERSION),
    }
}

/// A value that can be written to the wire.
pub trait WireEncode {
    /// Appends the value's encoding at `ctx` to `out`. Fails only when the value cannot be
    /// expressed at `ctx`'s version (or lacks a field that must be sent).
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError>;
}

/// A value that can be read from the wire.
pub trait WireDecode: Sized {
    /// The fewest bytes a value of this type takes on the wire, in every protocol and version.
    /// Collection decoders report it for each item still to come when their input runs out
    /// (see [`Decoder::items`]), so that a [`crate::wire::WireReader`] waits for that much
    /// before decoding again. It must never exceed the real size: a type that claims too much
    /// makes a reader wait for bytes that never come. `0`, the default, claims nothing.
    const MIN_WIRE_LEN: usize = 0;

    /// Decodes one value at `ctx` from `d`.
    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError>;
}

impl<T: WireEncode + ?Sized> WireEncode for &T {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        (**self).encode(out, ctx)
    }
}

/// Encodes `value` at `ctx` into a new buffer.
pub fn encode_to_bytes<T: WireEncode + ?Sized>(value: &T, ctx: &WireCtx) -> Result<BytesMut, ProtocolError> {
    let mut out = BytesMut::new();
    value.encode(&mut out, ctx)?;
    Ok(out)
}

/// Decodes exactly one `T` from `input`: running out of input is [`ProtocolError::UnexpectedEof`]
/// and bytes left over are [`ProtocolError::TrailingBytes`].
pub fn decode_exact<T: WireDecode>(input: &[u8], ctx: &WireCtx) -> Result<T, ProtocolError> {
    let mut d = Decoder::new(input, ctx.limits);
    let value = T::decode(&mut d, ctx).map_err(DecodeError::at_eof)?;
    match d.remaining().len() {
        0 => Ok(value),
        n => Err(ProtocolError::TrailingBytes(n)),
    }
}
