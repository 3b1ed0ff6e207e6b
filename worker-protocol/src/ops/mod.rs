//! The worker protocol's operations, message by message, for versions 1.21 (Nix 2.0) to 1.38
//! (Nix 2.26; Lix speaks 1.35). Only the messages: the connection loop that reads opcodes, runs
//! the logger channel and moves payloads is built on top of this.
//!
//! An operation goes like this on the wire:
//!
//! 1. The client sends the [`Opcode`] (a `u64`) and the request's fields ([`Request`]; its
//!    [`Request::encode`] writes both, [`Request::decode`] reads the fields once the server has
//!    read the opcode).
//! 2. Some requests are followed by data ([`Request::payload`]): a framed stream, a NAR inline,
//!    or data the server pulls with `STDERR_READ` once it has started.
//! 3. The server sends logger messages (`STDERR_NEXT`, activities, ...) and then `STDERR_LAST`,
//!    or `STDERR_ERROR` and an error instead of a reply.
//! 4. After `STDERR_LAST` comes the [`Response`], whose form may be empty; `NarFromPath` sends a
//!    raw NAR instead ([`Opcode::reply_data`]).
//!
//! Modules: [`opcode`] (numbers, status, Nix's refusal texts), [`request`] (one struct per
//! operation, grouped), [`response`] (replies), [`set_options`] ([`ClientOptions`] and what an
//! untrusted client may override), [`basic_derivation`] (`BuildDerivation`'s derivation),
//! [`payload`] (what follows a request or reply, and the records inside those streams).
//!
//! Encoders fail with [`crate::ProtocolError::Unrepresentable`] for values the version cannot
//! carry (the framed `AddToStore` before 1.25, a derivation path as an opaque derived path before
//! 1.30, ...); where a newer reply carries more than an older one (`AddToStore`'s path info,
//! `QueryRealisation`'s realisations), encoding the newer form at an older version writes what
//! the older form holds, so a server can always build the newest reply.

pub mod basic_derivation;
pub mod opcode;
pub mod payload;
pub mod request;
pub mod response;
pub mod set_options;

#[cfg(test)]
mod strategies;
#[cfg(test)]
mod tests;

pub use basic_derivation::BasicDerivation;
pub use opcode::{OpStatus, Opcode};
pub use payload::{Content, Payload, ReplyData};
pub use request::Request;
pub use response::Response;
pub use set_options::ClientOptions;
