//! The Nix worker protocol (versions 1.21 to 1.38, daemon socket and `ssh-ng://`) and the serve
//! protocol (2.x, `nix-store --serve`), byte-exact with Nix 2.26.
//!
//! Layers, from the bottom:
//! - [`wire`]: `u64`s and padded byte strings; an incremental [`wire::Decoder`] over byte slices
//!   that tells "need more bytes" apart from errors, encoders into [`bytes::BytesMut`], async
//!   helpers over tokio's `AsyncRead`/`AsyncWrite`, and [`wire::WireReader`] that decodes typed
//!   values from a stream.
//! - [`ser`]: [`WireEncode`]/[`WireDecode`] for every value the protocols carry, at a given
//!   [`WireCtx`] (protocol, version, store directory, [`Limits`]).
//! - [`handshake`]: both sides of the worker and serve handshakes.
//! - [`framed`]: the framed streams that carry NARs and path infos without holding them in memory.
//! - [`logger`]: the logger channel (log lines, activities, errors, and data pulled from or
//!   pushed to the client) on both sides, by version and verbosity.
//! - [`ops`]: the operations: [`ops::Opcode`], each operation's [`ops::Request`] and
//!   [`ops::Response`] at every version, and the [`ops::Payload`] that follows some requests.
//! - [`nar_stream`]: reading exactly one NAR off a stream (for NARs sent without a length).
//! - [`connection`]: both sides of a connection over any `AsyncRead + AsyncWrite`:
//!   [`connection::ServerConnection`] (typed requests in, replies and log messages out) and
//!   [`connection::ClientConnection`] (a method per operation).
//!
//! Nothing here touches a store: values come from and go to `nix-formats` types. Every decoder
//! enforces [`Limits`] and fails with a typed [`ProtocolError`]; none panics on hostile input.
//!
//! ```
//! use worker_protocol::ser::{decode_exact, encode_to_bytes};
//! use worker_protocol::wire::{DecodeError, Decoder};
//! use worker_protocol::{ProtocolVersion, WireCtx, WireDecode};
//!
//! let ctx = WireCtx::worker(ProtocolVersion::new(1, 38));
//! let bytes = encode_to_bytes(&vec!["hi".to_owned()], &ctx)?;
//! assert_eq!(&bytes[..], b"\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0hi\0\0\0\0\0\0");
//! let back: Vec<String> = decode_exact(&bytes, &ctx)?;
//! assert_eq!(back, ["hi"]);
//! // A cut-off message asks for more bytes instead of failing.
//! let partial = Vec::<String>::decode(&mut Decoder::new(&bytes[..16], ctx.limits), &ctx);
//! assert!(matches!(partial, Err(DecodeError::Incomplete { needed: 8 })));
//! # Ok::<(), worker_protocol::ProtocolError>(())
//! ```

pub mod connection;
pub mod error;
pub mod framed;
pub mod handshake;
pub mod limits;
pub mod logger;
pub mod nar_stream;
pub mod ops;
pub mod ser;
pub mod stderr;
pub mod types;
pub mod version;
pub mod wire;

pub use error::ProtocolError;
pub use limits::Limits;
pub use ser::{Protocol, WireCtx, WireDecode, WireEncode};
pub use version::ProtocolVersion;
