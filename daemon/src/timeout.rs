//! I/O timeouts for one connection, so a misbehaving client is dropped without holding the
//! daemon's resources forever.
//!
//! [`TimedStream`] wraps the connection's stream:
//! - a write (or flush) that stays pending longer than the timeout fails: the client stopped
//!   reading its replies;
//! - a read that stays pending longer than the timeout fails, but only while a request is in
//!   progress: the wrapper arms itself when bytes arrive (the first bytes of a request) and
//!   the session disarms it through [`RequestTimer::idle`] once the reply is sent. Idle
//!   connections between requests never time out, and an operation that reads nothing while
//!   it works (a long build) is not affected.
//!
//! The clock restarts whenever bytes move, so a slow client that keeps making progress is
//! served. The timeout is `casnix-io-timeout` in `nix.conf` (seconds, default
//! [`DEFAULT_IO_TIMEOUT`]; `0` turns timeouts off).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::settings::Settings;

/// The `nix.conf` key holding the timeout in seconds.
pub const IO_TIMEOUT_KEY: &str = "casnix-io-timeout";
/// The timeout when `nix.conf` does not set one.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(300);

/// The timeout configured in `settings` (`None`: no timeouts). A value that is not a number of
/// seconds is reported and the default used.
pub fn io_timeout(settings: &Settings) -> Option<Duration> {
    let Some(value) = settings.raw.get(IO_TIMEOUT_KEY) else { return Some(DEFAULT_IO_TIMEOUT) };
    match value.trim().parse::<u64>() {
        Ok(0) => None,
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => {
            tracing::warn!(%value, "'{IO_TIMEOUT_KEY}' should be a number of seconds; using the default");
            Some(DEFAULT_IO_TIMEOUT)
        }
    }
}

/// The session's handle on a [`TimedStream`]: says when a request has been answered.
#[derive(Debug, Clone)]
pub struct RequestTimer {
    armed: Arc<AtomicBool>,
}

impl RequestTimer {
    /// The reply has been sent: reads may wait for the next request as long as they like.
    pub fn idle(&self) {
        self.armed.store(false, Ordering::Relaxed);
    }
}

/// One direction's clock: started when an operation first stays pending, stopped when it
/// completes.
#[derive(Debug, Default)]
struct Clock {
    sleep: Option<Pin<Box<Sleep>>>,
    running: bool,
}

impl Clock {
    fn stop(&mut self) {
        self.running = false;
    }

    /// Polls the clock for an operation that is pending; `Ready` once it has been pending
    /// for `limit`.
    fn poll_expired(&mut self, limit: Duration, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = Instant::now() + limit;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.running {
            sleep.as_mut().reset(deadline);
            self.running = true;
        }
        let expired = sleep.as_mut().poll(cx);
        if expired.is_ready() {
            self.running = false;
        }
        expired
    }
}

/// A stream whose stalled reads (during a request) and writes fail with
/// [`io::ErrorKind::TimedOut`]. See [the module documentation](self).
#[derive(Debug)]
pub struct TimedStream<S> {
    inner: S,
    limit: Option<Duration>,
    armed: Arc<AtomicBool>,
    read_clock: Clock,
    write_clock: Clock,
}

impl<S> TimedStream<S> {
    /// Wraps `inner` with the timeout `limit` (`None`: never time out), and returns the
    /// session's handle. The stream starts disarmed: a client may connect and wait.
    pub fn new(inner: S, limit: Option<Duration>) -> (Self, RequestTimer) {
        let armed = Arc::new(AtomicBool::new(false));
        let timer = RequestTimer { armed: Arc::clone(&armed) };
        let stream =
            Self { inner, limit, armed, read_clock: Clock::default(), write_clock: Clock::default() };
        (stream, timer)
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

fn timed_out(what: &str, limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the client {what} for {} s ({IO_TIMEOUT_KEY})", limit.as_secs_f64()),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.read_clock.stop();
                if result.is_ok() && buf.filled().len() > before {
                    this.armed.store(true, Ordering::Relaxed);
                }
                Poll::Ready(result)
            }
            Poll::Pending => match this.limit {
                Some(limit) if this.armed.load(Ordering::Relaxed) => {
                    this.read_clock.poll_expired(limit, cx).map(|()| Err(timed_out("sent nothing", limit)))
                }
                _ => {
                    this.read_clock.stop();
                    Poll::Pending
                }
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> TimedStream<S> {
    /// Passes a write-side poll through, failing it when it has been pending too long.
    fn poll_write_side<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => {
                self.write_clock.stop();
                Poll::Ready(result)
            }
            Poll::Pending => match self.limit {
                Some(limit) => {
                    self.write_clock.poll_expired(limit, cx).map(|()| Err(timed_out("read nothing", limit)))
                }
                None => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_side(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_side(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_side(cx, AsyncWrite::poll_flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_write_side(cx, AsyncWrite::poll_shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawSettings;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(5);

    fn settings(text: &str) -> Settings {
        Settings::from_raw(RawSettings::parse(text, std::path::Path::new("/")).unwrap()).unwrap()
    }

    #[test]
    fn the_timeout_comes_from_nix_conf() {
        assert_eq!(io_timeout(&settings("")), Some(DEFAULT_IO_TIMEOUT));
        assert_eq!(io_timeout(&settings("casnix-io-timeout = 7")), Some(Duration::from_secs(7)));
        assert_eq!(io_timeout(&settings("casnix-io-timeout = 0")), None);
        assert_eq!(io_timeout(&settings("casnix-io-timeout = soon")), Some(DEFAULT_IO_TIMEOUT));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_reads_never_time_out() {
        let (_client, server) = tokio::io::duplex(64);
        let (mut stream, _timer) = TimedStream::new(server, Some(LIMIT));
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(LIMIT * 100, stream.read(&mut byte)).await;
        assert!(read.is_err(), "the read should still be waiting: {read:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_stalled_mid_request_times_out_and_idle_disarms() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut stream, timer) = TimedStream::new(server, Some(LIMIT));
        client.write_all(b"half").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(stream.read(&mut buf).await.unwrap(), 4);
        let started = Instant::now();
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= LIMIT);

        // Once the request is answered, waiting for the next one is fine again.
        timer.idle();
        let read = tokio::time::timeout(LIMIT * 10, stream.read(&mut buf)).await;
        assert!(read.is_err(), "the read should still be waiting: {read:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn progress_restarts_the_clock() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut stream, _timer) = TimedStream::new(server, Some(LIMIT));
        let feeder = tokio::spawn(async move {
            for _ in 0..10 {
                client.write_all(b"x").await.unwrap();
                tokio::time::sleep(LIMIT / 2).await;
            }
            client
        });
        let mut buf = [0u8; 10];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"xxxxxxxxxx");
        drop(feeder.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_reads_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let (mut stream, _timer) = TimedStream::new(server, Some(LIMIT));
        let err = stream.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_limit_nothing_times_out() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut stream, _timer) = TimedStream::new(server, None);
        client.write_all(b"a").await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(stream.read(&mut buf).await.unwrap(), 1);
        let read = tokio::time::timeout(LIMIT * 10, stream.read(&mut buf)).await;
        assert!(read.is_err());
        let write = tokio::time::timeout(LIMIT * 10, stream.write_all(&[0u8; 4096])).await;
        assert!(write.is_err());
    }
}
