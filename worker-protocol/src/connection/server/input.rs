//! The server's input side: between requests a [`WireReader`], during a request with a streamed
//! payload the reader wrapped in whatever finds the payload's end; and [`PayloadReader`], the
//! `AsyncRead` a request's payload is read through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ProtocolError;
use crate::framed::FramedReader;
use crate::logger::{PullSource, ServerLogger};
use crate::nar_stream::NarStream;
use crate::ops::{Content, Payload};
use crate::ser::WireCtx;
use crate::wire::WireReader;

/// The connection's read side.
#[derive(Debug)]
pub(super) enum Input<R> {
    /// Between requests, or in one whose payload is absent or pulled.
    Idle(WireReader<R>),
    /// In a request whose payload is a framed stream.
    Framed(FramedReader<WireReader<R>>),
    /// In a request whose payload is a NAR inline.
    Nar(NarStream<WireReader<R>>),
    /// Out of step after an error.
    Broken,
}

impl<R: AsyncRead + Unpin> Input<R> {
    /// The reader between requests.
    pub(super) fn reader(&mut self) -> Result<&mut WireReader<R>, ProtocolError> {
        match self {
            Input::Idle(r) => Ok(r),
            Input::Broken => Err(ProtocolError::ConnectionBroken),
            Input::Framed(_) | Input::Nar(_) => Err(ProtocolError::OutOfTurn("a payload is still being read")),
        }
    }

    /// Marks the connection as out of step.
    pub(super) fn break_off(&mut self) {
        *self = Input::Broken;
    }

    /// Wraps the reader for a request's payload.
    pub(super) fn begin(
        &mut self,
        payload: Payload,
        ctx: &WireCtx,
        nar_limits: nix_formats::nar::Limits,
    ) -> Result<(), ProtocolError> {
        let reader = match std::mem::replace(self, Input::Broken) {
            Input::Idle(r) => r,
            Input::Broken => return Err(ProtocolError::ConnectionBroken),
            other => {
                *self = other;
                return Err(ProtocolError::OutOfTurn("a payload is still being read"));
            }
        };
        *self = match payload {
            Payload::Framed(_) => Input::Framed(FramedReader::new(reader, ctx.limits.max_frame_len)),
            Payload::InlineNar => Input::Nar(NarStream::new(reader, nar_limits)),
            Payload::None | Payload::StderrReadPulled(_) => Input::Idle(reader),
        };
        Ok(())
    }

    /// Skips what is left of a streamed payload and returns to the plain reader. On failure the
    /// connection is out of step.
    pub(super) async fn settle(&mut self) -> Result<(), ProtocolError> {
        let result = match self {
            Input::Idle(_) => return Ok(()),
            Input::Broken => return Err(ProtocolError::ConnectionBroken),
            Input::Framed(f) => f.drain().await.map(drop),
            Input::Nar(n) => n.drain().await.map(drop),
        };
        let previous = std::mem::replace(self, Input::Broken);
        if result.is_ok() {
            *self = match previous {
                Input::Framed(f) => Input::Idle(f.into_inner()),
                Input::Nar(n) => Input::Idle(n.into_inner()),
                other => other,
            };
        }
        result
    }

    /// A reader over the payload of the request being served. A pulled payload needs `logger`.
    pub(super) fn payload_reader<'a, W>(
        &'a mut self,
        payload: Payload,
        logger: Option<&'a mut ServerLogger<W>>,
    ) -> Result<PayloadReader<'a, R, W>, ProtocolError>
    where
        W: AsyncWrite + Unpin,
    {
        let content = match payload {
            Payload::None => None,
            Payload::Framed(c) | Payload::StderrReadPulled(c) => Some(c),
            Payload::InlineNar => Some(Content::Nar),
        };
        let source = match (self, payload) {
            (Input::Broken, _) => return Err(ProtocolError::ConnectionBroken),
            (Input::Framed(f), _) => Source::Framed(f),
            (Input::Nar(n), _) => Source::Nar(n),
            (Input::Idle(r), Payload::StderrReadPulled(_)) => {
                let logger = logger.ok_or(ProtocolError::OutOfTurn("a pulled payload needs the logger"))?;
                Source::Pulled(logger.pull_source(r)?)
            }
            (Input::Idle(_), _) => Source::Empty,
        };
        Ok(PayloadReader { source, content })
    }
}

/// Where a [`PayloadReader`] reads from.
enum Source<'a, R, W> {
    Empty,
    Framed(&'a mut FramedReader<WireReader<R>>),
    Nar(&'a mut NarStream<WireReader<R>>),
    Pulled(PullSource<'a, WireReader<R>, W>),
}

/// The payload of the request being served, as an `AsyncRead` that ends where the payload ends
/// (see [`super::ServerConnection::payload`]). Malformed framing or a malformed inline NAR comes
/// as an [`io::Error`] that [`ProtocolError::from_io`] turns back into the protocol error.
pub struct PayloadReader<'a, R, W> {
    source: Source<'a, R, W>,
    content: Option<Content>,
}

impl<R, W> PayloadReader<'_, R, W> {
    /// What the payload holds, or `None` for a request without one.
    pub fn content(&self) -> Option<Content> {
        self.content
    }

    /// Whether the client sends the payload only when asked (`STDERR_READ`), so that asking
    /// for more than will be used may fail the client (Nix's fails when asked past the end).
    /// A framed payload or an inline NAR ends where it ends and can be read ahead.
    pub fn is_pulled(&self) -> bool {
        matches!(self.source, Source::Pulled(_))
    }
}

impl<R, W> AsyncRead for PayloadReader<'_, R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().source {
            Source::Empty => Poll::Ready(Ok(())),
            Source::Framed(f) => Pin::new(&mut **f).poll_read(cx, out),
            Source::Nar(n) => Pin::new(&mut **n).poll_read(cx, out),
            Source::Pulled(p) => Pin::new(p).poll_read(cx, out),
        }
    }
}

impl<R, W> std::fmt::Debug for PayloadReader<'_, R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.source {
            Source::Empty => "empty",
            Source::Framed(_) => "framed",
            Source::Nar(_) => "inline NAR",
            Source::Pulled(_) => "pulled",
        };
        f.debug_struct("PayloadReader").field("source", &kind).field("content", &self.content).finish()
    }
}
