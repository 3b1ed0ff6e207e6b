//! A connection's socket that briefly polls for the client's next request after answering one,
//! and leaves that request queued until it has answered it.
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
//!
//! The first read after a reply *peeks* (`MSG_PEEK`): the request's bytes stay in the socket
//! until the next reply has been written, or until the next read, whichever comes first. On a
//! unix socket, taking bytes off the queue gives the sender its buffer space back, and the
//! kernel wakes whoever sleeps on the sender's socket for that, including a client asleep
//! waiting for our answer (both a blocking `read` and an `epoll_wait` for input are woken).
//! Consumed at once, the request wakes the client for nothing while we compute the answer, and
//! the answer has to wake it again; consumed after the answer, it costs no extra wake-up. On
//! this project's 2-core VM the benchmark client's round trips (tokio, `epoll`) went from
//! 22–25k/s to 30–34k/s; Nix 2.8's `nix-store` (blocking reads, usually not yet asleep when its
//! request is taken) showed no change, 2,000 look-ups in 0.13–0.14 s either way.

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

/// A stream (a connected socket) whose reads poll briefly after a reply and peek at the
/// request that follows it: see the module.
#[derive(Debug)]
pub struct BusyPoll<S: AsFd> {
    inner: S,
    /// When the last reply was written, if nothing was read since.
    replied_at: Option<Instant>,
    /// Whether the window after the last reply was polled already.
    polled: bool,
    /// Polling windows in a row that saw nothing.
    misses: u32,
    /// Bytes already handed to the reader by peeking that are still queued in the socket.
    peeked: usize,
}

impl<S: AsFd> BusyPoll<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner, replied_at: None, polled: false, misses: 0, peeked: 0 }
    }

    /// Whether polling is on (not paused after misses).
    fn polling(&self) -> bool {
        self.misses < MISSES_BEFORE_PAUSE
    }

    /// Notes that the request after the reply at `replied_at` has been seen.
    fn request_seen(&mut self, replied_at: Instant) {
        self.replied_at = None;
        if replied_at.elapsed() <= POLL_WINDOW {
            self.misses = 0;
        }
    }
}

impl<S: AsFd> Drop for BusyPoll<S> {
    /// Takes peeked bytes off the queue before the socket closes: a unix socket closed with
    /// unread bytes resets the connection, and the client should see the end of the stream.
    fn drop(&mut self) {
        if let Err(e) = self.consume_peeked() {
            tracing::debug!("closing: {e}");
        }
    }
}

impl<S: AsFd> BusyPoll<S> {
    /// Takes the peeked bytes off the socket's queue (they were read already).
    fn consume_peeked(&mut self) -> io::Result<()> {
        // Every read and write comes here: nothing to do (and no buffer to clear) in most.
        if self.peeked == 0 {
            return Ok(());
        }
        let mut scratch = [0u8; 1024];
        while self.peeked > 0 {
            let wanted = self.peeked.min(scratch.len());
            match rustix::net::recv(self.inner.as_fd(), &mut scratch[..wanted], rustix::net::RecvFlags::DONTWAIT) {
                Ok((0, _)) => return Err(io::Error::other("peeked bytes are no longer in the socket")),
                // `recv` returns at most `wanted` bytes.
                Ok((n, _)) => self.peeked -= n,
                Err(rustix::io::Errno::INTR) => {}
                // AGAIN included: what was peeked cannot have gone, so this is not "try later".
                Err(e) => return Err(io::Error::other(format!("consuming peeked bytes: {e}"))),
            }
        }
        Ok(())
    }

    /// Passes on a write's outcome: if something was written to the client, notes the reply
    /// and takes the request it answers off the socket's queue (an error doing so is met
    /// again by the next read, which consumes first).
    fn note_written(&mut self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.replied_at = Some(Instant::now());
            self.polled = false;
            if let Err(e) = self.consume_peeked() {
                tracing::debug!("after a reply: {e}");
            }
        }
        written
    }
}

/// One non-blocking peek into `buf`: `None` if nothing is there yet, otherwise the bytes
/// copied (zero at end of stream).
fn try_peek(fd: impl AsFd, buf: &mut ReadBuf<'_>) -> Option<io::Result<usize>> {
    let unfilled = buf.initialize_unfilled();
    match rustix::net::recv(fd, unfilled, rustix::net::RecvFlags::DONTWAIT | rustix::net::RecvFlags::PEEK) {
        Ok((n, _)) => {
            buf.advance(n);
            Some(Ok(n))
        }
        Err(rustix::io::Errno::AGAIN) => None,
        Err(rustix::io::Errno::INTR) => None,
        Err(e) => Some(Err(e.into())),
    }
}

impl<S: AsyncRead + AsFd + Unpin> AsyncRead for BusyPoll<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // What an earlier read peeked comes before anything read now.
        if let Err(e) = this.consume_peeked() {
            return Poll::Ready(Err(e));
        }
        let Some(replied_at) = this.replied_at else { return Pin::new(&mut this.inner).poll_read(cx, buf) };
        if buf.remaining() == 0 {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let peek = |this: &mut Self, buf: &mut ReadBuf<'_>| {
            let peeked = try_peek(this.inner.as_fd(), buf)?;
            this.request_seen(replied_at);
            Some(peeked.map(|n| this.peeked = n))
        };
        if let Some(peeked) = peek(this, buf) {
            return Poll::Ready(peeked);
        }
        // Nothing yet: register the waker (or read what came meanwhile).
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if result.is_ready() {
            this.request_seen(replied_at);
            return result;
        }
        if this.polled || !this.polling() {
            return result;
        }
        // Poll the socket through the window. If the request comes now, the registration only
        // causes one spurious wake-up later.
        this.polled = true;
        let deadline = replied_at + POLL_WINDOW;
        loop {
            if let Some(peeked) = peek(this, buf) {
                return Poll::Ready(peeked);
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

impl<S: AsyncWrite + AsFd + Unpin> AsyncWrite for BusyPoll<S> {
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

    /// Bytes waiting in the socket's receive queue on `server`'s side.
    fn queued<S: AsFd>(server: &BusyPoll<S>) -> u64 {
        rustix::io::ioctl_fionread(server.inner.as_fd()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_after_a_reply_stays_queued_until_it_is_answered() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let mut server = BusyPoll::new(server);
        // The client sends each request only after the server's "answer" and "go", so what is
        // queued when the server looks between the two is known.
        let client_side = tokio::spawn(async move {
            answer(&mut client, 5, Duration::ZERO, b"request").await;
            answer(&mut client, 8, Duration::from_millis(20), b"late request").await;
            answer(&mut client, 8, Duration::ZERO, b"bye").await;
            // Reads the last reply and goes away.
            let mut buf = [0; 1];
            client.read_exact(&mut buf).await.unwrap();
        });
        server.write_all(b"hello").await.unwrap();
        let mut buf = [0; 7];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"request");
        assert_eq!(queued(&server), 7, "read, but still queued");
        server.write_all(b"answer").await.unwrap();
        assert_eq!(queued(&server), 0, "taken off the queue by the answer");
        server.write_all(b"go").await.unwrap();
        // One that comes after the polling window, when the connection was woken, too.
        let mut buf = [0; 12];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"late request");
        assert_eq!(queued(&server), 12);
        server.write_all(b"answer").await.unwrap();
        assert_eq!(queued(&server), 0);
        server.write_all(b"go").await.unwrap();
        let mut buf = [0; 3];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"bye");
        // A peeked end of stream is the end of stream.
        server.write_all(b"x").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        client_side.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_closed_with_a_peeked_request_ends_the_clients_stream_cleanly() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let mut server = BusyPoll::new(server);
        server.write_all(b"hello").await.unwrap();
        answer(&mut client, 5, Duration::ZERO, b"request").await;
        let mut buf = [0; 7];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(queued(&server), 7);
        // Closed without an answer: the client sees the end of the stream, not a reset (which
        // is what a unix socket closed with unread bytes gives its peer).
        drop(server);
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_after_a_peek_go_on_where_it_stopped() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let mut server = BusyPoll::new(server);
        let client_side = tokio::spawn(async move {
            answer(&mut client, 5, Duration::ZERO, b"0123456789").await;
            client
        });
        server.write_all(b"hello").await.unwrap();
        let mut buf = [0; 4];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"0123");
        // Not answered: the next reads take the peeked bytes off first and go on.
        let mut rest = [0; 6];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"456789");
        assert_eq!(queued(&server), 0);
        drop(client_side.await.unwrap());
    }

    /// A small deterministic generator (xorshift) for the stream test.
    struct Xorshift(u64);

    impl Xorshift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_stream_arrives_whole_and_in_order_whatever_the_reads_and_replies() {
        let (server, mut client) = UnixStream::pair().unwrap();
        let mut server = BusyPoll::new(server);
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let to_send = sent.clone();
        let client_side = tokio::spawn(async move {
            let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
            let mut at = 0;
            while at < to_send.len() {
                let n = (1 + rng.below(3000) as usize).min(to_send.len() - at);
                client.write_all(&to_send[at..at + n]).await.unwrap();
                at += n;
                if rng.below(4) == 0 {
                    tokio::task::yield_now().await;
                }
            }
            // Drain the server's replies until it closes its side.
            let mut sink = Vec::new();
            client.read_to_end(&mut sink).await.unwrap();
        });
        let mut rng = Xorshift(0x2545_f491_4f6c_dd1d);
        let mut received = Vec::new();
        while received.len() < sent.len() {
            let mut buf = vec![0; 1 + rng.below(5000) as usize];
            let n = server.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "stream ended early at {}", received.len());
            received.extend_from_slice(&buf[..n]);
            if rng.below(3) == 0 {
                server.write_all(b"reply").await.unwrap();
            }
        }
        assert_eq!(received.len(), sent.len());
        assert!(received == sent, "the bytes differ");
        server.shutdown().await.unwrap();
        drop(server);
        client_side.await.unwrap();
    }
}
