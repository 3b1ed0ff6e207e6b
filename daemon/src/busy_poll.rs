//! A connection's socket that briefly polls for the client's next request after answering one.
//!
//! A client that asks many small questions in a row (closure walks, `nix copy`'s validity
//! checks, path-info loops) sends its next request within microseconds of receiving an answer.
//! Going to sleep in `epoll_wait` in between costs a wake-up per request, which on a virtual
//! machine is a large part of a round trip (more than the whole answer, for a remembered path
//! info). So after a reply, a read that would wait first retries the socket for up to
//! [`POLL_WINDOW`], yielding the processor between tries (so that on a busy machine whatever
//! else is runnable, often the client itself, goes first); only then does it wait as usual.
//!
//! Polling only pays when clients answer quickly, so it adapts: after [`MISSES_BEFORE_PAUSE`]
//! windows in a row that saw nothing, it stops polling until a request is seen to arrive
//! within the window again (measured from the reply when the connection is woken). Reads
//! that do not follow a reply (the rest of a request, uploads) never poll.

use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a read that follows a reply polls before waiting. A benchmark client on this
/// project's 2-core VM sends its next request 40–60 µs after a reply when the machine is quiet
/// (its own wake-up is most of that): a 40 µs window missed about half of them (12–19k round
/// trips/s), 100 µs catches nearly all (21–24k/s); 200 µs was no better.
pub const POLL_WINDOW: Duration = Duration::from_micros(100);

/// Windows in a row that saw nothing before polling pauses.
const MISSES_BEFORE_PAUSE: u32 = 4;

/// A stream (a connected socket) whose reads poll briefly after a reply: see the module.
#[derive(Debug)]
pub struct BusyPoll<S> {
    inner: S,
    /// When the last reply was written, if nothing was read since.
    replied_at: Option<Instant>,
    /// Whether the window after the last reply was polled already.
    polled: bool,
    /// Polling windows in a row that saw nothing.
    misses: u32,
}

impl<S> BusyPoll<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner, replied_at: None, polled: false, misses: 0 }
    }

    /// Passes on a write's outcome, noting a reply if something was written to the client.
    fn note_written(&mut self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.replied_at = Some(Instant::now());
            self.polled = false;
        }
        written
    }

    /// Whether polling is on (not paused after misses).
    fn polling(&self) -> bool {
        self.misses < MISSES_BEFORE_PAUSE
    }
}

/// One non-blocking `recv` into `buf`: `None` if nothing is there yet.
fn try_recv(fd: impl AsFd, buf: &mut ReadBuf<'_>) -> Option<io::Result<()>> {
    let unfilled = buf.initialize_unfilled();
    match rustix::net::recv(fd, unfilled, rustix::net::RecvFlags::DONTWAIT) {
        Ok((n, _)) => {
            buf.advance(n);
            Some(Ok(()))
        }
        Err(rustix::io::Errno::AGAIN) => None,
        Err(rustix::io::Errno::INTR) => None,
        Err(e) => Some(Err(e.into())),
    }
}

impl<S: AsyncRead + AsFd + Unpin> AsyncRead for BusyPoll<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let Some(replied_at) = this.replied_at else { return result };
        if result.is_ready() {
            // Ready at once, or woken: learn whether the request came within the window.
            this.replied_at = None;
            if replied_at.elapsed() <= POLL_WINDOW {
                this.misses = 0;
            }
            return result;
        }
        if this.polled || !this.polling() || buf.remaining() == 0 {
            return result;
        }
        // Not there yet, and the waker is registered: poll the socket through the window. If
        // the request comes now, the registration only causes one spurious wake-up later.
        this.polled = true;
        let deadline = replied_at + POLL_WINDOW;
        loop {
            if let Some(received) = try_recv(this.inner.as_fd(), buf) {
                this.replied_at = None;
                this.misses = 0;
                return Poll::Ready(received);
            }
            if Instant::now() >= deadline {
                this.misses += 1;
                return Poll::Pending;
            }
            // Let whatever else is runnable here (the client, perhaps) go first.
            std::thread::yield_now();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BusyPoll<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, data);
        self.note_written(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_written(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixStream;

    /// The client's side: reads `reply` bytes, waits `delay`, sends `next`.
    async fn answer(client: &mut UnixStream, reply: usize, delay: Duration, next: &[u8]) {
        let mut buf = vec![0; reply];
        client.read_exact(&mut buf).await.unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        client.write_all(next).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_are_read_whether_they_come_within_the_window_or_later() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let mut server = BusyPoll::new(server);
        let client_side = tokio::spawn(async move {
            answer(&mut client, 5, Duration::ZERO, b"quick").await;
            answer(&mut client, 5, Duration::from_millis(20), b"late!").await;
            // Reads the last reply and goes away.
            let mut buf = [0; 5];
            client.read_exact(&mut buf).await.unwrap();
        });
        let mut buf = [0; 5];
        server.write_all(b"reply").await.unwrap();
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"quick");
        server.write_all(b"reply").await.unwrap();
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"late!");
        // The late one was waited for after a window that saw nothing.
        assert!(server.misses >= 1, "{}", server.misses);
        // The client goes away after a reply: the (polling) read ends.
        server.write_all(b"reply").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        client_side.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn polling_pauses_after_empty_windows_and_resumes_for_quick_clients() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let mut server = BusyPoll::new(server);
        let rounds = MISSES_BEFORE_PAUSE as usize + 1;
        let client_side = tokio::spawn(async move {
            for _ in 0..rounds {
                answer(&mut client, 1, Duration::from_millis(5), b"s").await;
            }
            // Quick answers from now on (as many as the server asks for).
            loop {
                let mut buf = [0; 1];
                if client.read(&mut buf).await.unwrap() == 0 {
                    return;
                }
                client.write_all(b"q").await.unwrap();
            }
        });
        let mut buf = [0; 1];
        for _ in 0..rounds {
            server.write_all(b"r").await.unwrap();
            server.read_exact(&mut buf).await.unwrap();
        }
        assert!(!server.polling(), "paused after {} empty windows", server.misses);
        // A quick answer, seen when woken within the window, resumes polling (the machine may
        // be slow to wake us: a few tries).
        let mut resumed = false;
        for _ in 0..200 {
            server.write_all(b"r").await.unwrap();
            server.read_exact(&mut buf).await.unwrap();
            if server.polling() {
                resumed = true;
                break;
            }
        }
        assert!(resumed);
        drop(server);
        client_side.await.unwrap();
    }
}
