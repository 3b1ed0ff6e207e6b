//! [`Request`]: what a client sends for each operation after the opcode, as Nix 2.26's daemon
//! reads it (`daemon.cc`) and its client writes it (`remote-store.cc`), at every version.
//!
//! Each operation has a struct with named fields in a submodule by group ([`query`], [`add`],
//! [`build`], [`gc`]; `SetOptions` carries [`ClientOptions`]), with its own
//! [`WireEncode`]/[`WireDecode`] for the fields. [`Request`] ties them to their [`Opcode`]s.
//! Data that follows the fields (NARs, logs, path streams) is not part of the request: see
//! [`Request::payload`].

pub mod add;
pub mod build;
pub mod gc;
pub mod query;

use bytes::BytesMut;
use tokio::io::AsyncRead;

use self::add::*;
use self::build::*;
use self::gc::*;
use self::query::*;
use super::opcode::Opcode;
use super::payload::{Content, Payload};
use super::set_options::ClientOptions;
use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::version::ProtocolVersion;
use crate::wire::encoder::put_u64;
use crate::wire::{DecodeError, Decoder, WireReader};

/// Defines a request struct whose fields are written in order with their own serialisers.
macro_rules! wire_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::ser::WireEncode for $name {
            #[allow(unused_variables)]
            fn encode(
                &self,
                out: &mut ::bytes::BytesMut,
                ctx: &$crate::ser::WireCtx,
            ) -> Result<(), $crate::error::ProtocolError> {
                $($crate::ser::WireEncode::encode(&self.$field, out, ctx)?;)*
                Ok(())
            }
        }

        impl $crate::ser::WireDecode for $name {
            #[allow(unused_variables)]
            fn decode(
                d: &mut $crate::wire::Decoder<'_>,
                ctx: &$crate::ser::WireCtx,
            ) -> Result<Self, $crate::wire::DecodeError> {
                Ok(Self { $($field: <$ty as $crate::ser::WireDecode>::decode(d, ctx)?,)* })
            }
        }
    };
}
pub(crate) use wire_struct;

macro_rules! requests {
    ($($name:ident($ty:ty),)*) => {
        /// A request: one variant per operation Nix 2.26 serves, named after its [`Opcode`].
        /// The removed operations (`QueryFailedPaths`, `ClearFailedPaths`) have none.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[allow(missing_docs)] // each variant is documented by its struct
        pub enum Request {
            $($name($ty),)*
        }

        impl Request {
            /// The operation.
            pub fn opcode(&self) -> Opcode {
                match self {
                    $(Request::$name(_) => Opcode::$name,)*
                }
            }

            /// Appends the fields (not the opcode) at `ctx`'s version. Fails for a value the
            /// version cannot carry.
            pub fn encode_body(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
                match self {
                    $(Request::$name(r) => r.encode(out, ctx),)*
                }
            }

            /// Decodes the fields of operation `op` (its opcode already read) at `ctx`'s
            /// version. A removed operation gives [`ProtocolError::RemovedOperation`].
            pub fn decode(op: Opcode, d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Request, DecodeError> {
                match op {
                    $(Opcode::$name => Ok(Request::$name(<$ty>::decode(d, ctx)?)),)*
                    Opcode::QueryFailedPaths | Opcode::ClearFailedPaths => {
                        Err(ProtocolError::RemovedOperation(op.code()).into())
                    }
                }
            }
        }

        $(
            impl From<$ty> for Request {
                fn from(r: $ty) -> Self {
                    Request::$name(r)
                }
            }
        )*
    };
}

requests! {
    IsValidPath(IsValidPath),
    HasSubstitutes(HasSubstitutes),
    QueryPathHash(QueryPathHash),
    QueryReferences(QueryReferences),
    QueryReferrers(QueryReferrers),
    AddToStore(AddToStore),
    AddTextToStore(AddTextToStore),
    BuildPaths(BuildPaths),
    EnsurePath(EnsurePath),
    AddTempRoot(AddTempRoot),
    AddIndirectRoot(AddIndirectRoot),
    SyncWithGC(SyncWithGC),
    FindRoots(FindRoots),
    ExportPath(ExportPath),
    QueryDeriver(QueryDeriver),
    SetOptions(ClientOptions),
    CollectGarbage(CollectGarbage),
    QuerySubstitutablePathInfo(QuerySubstitutablePathInfo),
    QueryDerivationOutputs(QueryDerivationOutputs),
    QueryAllValidPaths(QueryAllValidPaths),
    QueryPathInfo(QueryPathInfo),
    ImportPaths(ImportPaths),
    QueryDerivationOutputNames(QueryDerivationOutputNames),
    QueryPathFromHashPart(QueryPathFromHashPart),
    QuerySubstitutablePathInfos(QuerySubstitutablePathInfos),
    QueryValidPaths(QueryValidPaths),
    QuerySubstitutablePaths(QuerySubstitutablePaths),
    QueryValidDerivers(QueryValidDerivers),
    OptimiseStore(OptimiseStore),
    VerifyStore(VerifyStore),
    BuildDerivation(BuildDerivation),
    AddSignatures(AddSignatures),
    NarFromPath(NarFromPath),
    AddToStoreNar(AddToStoreNar),
    QueryMissing(QueryMissing),
    QueryDerivationOutputMap(QueryDerivationOutputMap),
    RegisterDrvOutput(RegisterDrvOutput),
    QueryRealisation(QueryRealisation),
    AddMultipleToStore(AddMultipleToStore),
    AddBuildLog(AddBuildLog),
    BuildPathsWithResults(BuildPathsWithResults),
    AddPermRoot(AddPermRoot),
}

impl Request {
    /// Appends the whole message: the opcode, then the fields.
    pub fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(out, self.opcode().code());
        self.encode_body(out, ctx)
    }

    /// Decodes a whole message: the opcode, then the fields. An unknown opcode gives
    /// [`ProtocolError::UnknownOpcode`].
    pub fn decode_message(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Request, DecodeError> {
        let op = Opcode::from_u64(d.read_u64()?)?;
        Request::decode(op, d, ctx)
    }

    /// Reads the fields of operation `op` (its opcode already read) from a connection. The bytes
    /// of [`Request::payload`], if any, are left unread.
    pub async fn read<R: AsyncRead + Unpin>(
        op: Opcode,
        r: &mut WireReader<R>,
        ctx: &WireCtx,
    ) -> Result<Request, ProtocolError> {
        r.read_with(ctx, |d, ctx| Request::decode(op, d, ctx)).await
    }

    /// What follows the fields on the client's stream at `version`, and how its end is found.
    pub fn payload(&self, version: ProtocolVersion) -> Payload {
        match self {
            Request::AddToStore(r) => r.payload(),
            Request::AddToStoreNar(_) => AddToStoreNar::payload(version),
            Request::AddMultipleToStore(_) => Payload::Framed(Content::MultiplePaths),
            Request::AddBuildLog(_) => Payload::Framed(Content::BuildLog),
            Request::ImportPaths(_) => Payload::StderrReadPulled(Content::ExportedPaths),
            _ => Payload::None,
        }
    }
}

