//! What a client sends after a request: [`Upload`], written to a framed stream or straight to
//! the connection, with local failures (the data cannot be read, a NAR is malformed) kept apart
//! from failures of the connection ([`UploadError`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use nix_formats::path_info::ValidPathInfo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::error::ProtocolError;
use crate::nar_stream::NarStream;
use crate::ops::payload::{encode_multiple_count, encode_multiple_item_info};
use crate::ser::WireCtx;

/// A source of data to send, as a trait object.
pub(super) type DynSource<'a> = &'a mut (dyn AsyncRead + Unpin + Send);

/// The data that follows a request.
pub(super) enum Upload<'a> {
    /// Bytes sent as they come.
    Raw(DynSource<'a>),
    /// One NAR, checked as it passes; bytes after it are not read.
    Nar(DynSource<'a>),
    /// Bytes prepared here.
    Bytes(Vec<u8>),
    /// `AddMultipleToStore`'s stream: the count, then each path's info and NAR.
    Multiple(Vec<(ValidPathInfo, DynSource<'a>)>),
}

/// Why an upload stopped.
#[derive(Debug)]
pub(super) enum UploadError {
    /// The data could not be read, or is not a valid NAR; the connection is fine.
    Local(ProtocolError),
    /// Writing to the connection failed.
    Connection(ProtocolError),
}

impl UploadError {
    /// The error to report.
    pub(super) fn into_error(self) -> ProtocolError {
        match self {
            Self::Local(e) | Self::Connection(e) => e,
        }
    }
}

/// A local read error as a protocol error: [`ProtocolError::BadNar`] and other protocol errors
/// as they are, plain I/O errors as [`ProtocolError::Source`].
fn local_error(e: io::Error) -> ProtocolError {
    match ProtocolError::from_io(e) {
        ProtocolError::Io(e) => ProtocolError::Source(e),
        ProtocolError::UnexpectedEof => ProtocolError::Source(io::ErrorKind::UnexpectedEof.into()),
        other => other,
    }
}

fn local(e: io::Error) -> UploadError {
    UploadError::Local(local_error(e))
}

fn connection(e: io::Error) -> UploadError {
    UploadError::Connection(ProtocolError::from_io(e))
}

/// Copies all of `from` to `to`.
async fn copy<F, T>(from: &mut F, to: &mut T) -> Result<(), UploadError>
where
    F: AsyncRead + Unpin + ?Sized,
    T: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = from.read(&mut buf).await.map_err(local)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await.map_err(connection)?;
    }
}

impl Upload<'_> {
    /// Writes the data to `out` (without flushing).
    pub(super) async fn write_to<O>(self, out: &mut O, ctx: &WireCtx, nar_limits: nix_formats::nar::Limits) -> Result<(), UploadError>
    where
        O: AsyncWrite + Unpin + ?Sized,
    {
        match self {
            Upload::Raw(source) => copy(source, out).await,
            Upload::Nar(source) => copy(&mut NarStream::new(source, nar_limits), out).await,
            Upload::Bytes(bytes) => out.write_all(&bytes).await.map_err(connection),
            Upload::Multiple(items) => {
                let mut head = BytesMut::new();
                encode_multiple_count(&mut head, items.len() as u64);
                out.write_all(&head).await.map_err(connection)?;
                for (info, source) in items {
                    head.clear();
                    encode_multiple_item_info(&mut head, &info, ctx).map_err(UploadError::Local)?;
                    out.write_all(&head).await.map_err(connection)?;
                    copy(&mut NarStream::new(source, nar_limits), out).await?;
                }
                Ok(())
            }
        }
    }
}

/// Wraps a local source answering `STDERR_READ`, so that its read errors come out of
/// `process_stderr` as [`ProtocolError::Source`] rather than as errors of the connection.
pub(super) struct SourceReader<'a> {
    inner: DynSource<'a>,
}

impl<'a> SourceReader<'a> {
    pub(super) fn new(inner: DynSource<'a>) -> Self {
        Self { inner }
    }
}

impl AsyncRead for SourceReader<'_> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut *this.inner).poll_read(cx, out) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(local_error(e).into_io())),
            other => other,
        }
    }
}
