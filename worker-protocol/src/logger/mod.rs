//! The logger channel ("stderr"): the messages a daemon sends between reading a request and
//! writing its reply, byte-exact with Nix 2.26 (and 2.8, whose rules are the same).
//!
//! Each message is a code ([`codes`]) and its fields:
//!
//! | message | fields | versions |
//! |---|---|---|
//! | `STDERR_NEXT` | a log line (Nix's daemons end it with `\n`; clients strip trailing space) | all |
//! | `STDERR_WRITE` | data for the client's sink | all |
//! | `STDERR_READ` | a count; the client answers with a byte string of at most that many bytes, empty at the end of its data | all |
//! | `STDERR_LAST` | none; the reply follows | all |
//! | `STDERR_ERROR` | message and exit status; from 1.26 a structured [`RemoteError`] | all |
//! | `STDERR_START_ACTIVITY` | id, level, type, text, fields, parent | 1.20 |
//! | `STDERR_STOP_ACTIVITY` | id | 1.20 |
//! | `STDERR_RESULT` | id, type, fields | 1.20 |
//!
//! Fields are a count and, per field, a tag (0 number, 1 string) and the value.
//!
//! What Nix's daemon (`TunnelLogger`) sends, and so [`ServerLogger`] and [`encode_for`]:
//! - log lines are dropped when their level is above the verbosity the client sent in
//!   `SetOptions` (until then, Info); activities, stops and results are never filtered;
//! - before 1.20, an activity with a text becomes the log line `text...` (filtered by its level),
//!   and everything else about activities, build output included, is dropped;
//! - between operations (no request being handled), log output is held back until the next one;
//! - every message is flushed at once.
//!
//! The parts:
//! - [`LogMessage`], [`LogMessage::encode`], [`downgrade`]/[`encode_for`] (what a client of a
//!   version and verbosity gets) and [`read_message`];
//! - the client side: [`process_stderr`] with a [`LogSink`] (e.g. [`LogCollector`]), answering
//!   `STDERR_READ` from a local reader;
//! - the daemon side: [`ServerLogger`] and [`PullSource`], which pulls a client's data with
//!   `STDERR_READ` in bounded chunks, so a large NAR never sits in memory.
//!
//! ```
//! use worker_protocol::logger::{read_message, ActivityId, ActivityType, LogMessage, ServerLogger, Verbosity};
//! use worker_protocol::{ProtocolVersion, WireCtx};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let version = ProtocolVersion::new(1, 19);
//! let mut logger = ServerLogger::new(Vec::new(), version);
//! logger.start_work().await?;
//! logger.log(Verbosity::Debug, "not wanted").await?;
//! logger.log(Verbosity::Info, "hello").await?;
//! let id = logger.start_activity(Verbosity::Info, ActivityType::Build, "building foo", vec![], ActivityId::NONE).await?;
//! logger.stop_activity(id).await?;
//! logger.last().await?;
//!
//! // A 1.19 client gets the log line, the activity as a line, and the end.
//! let sent = logger.into_inner();
//! let ctx = WireCtx::worker(version);
//! let mut r = &sent[..];
//! assert_eq!(read_message(&mut r, &ctx).await?, LogMessage::Next(b"hello\n".to_vec()));
//! assert_eq!(read_message(&mut r, &ctx).await?, LogMessage::Next(b"building foo...\n".to_vec()));
//! assert_eq!(read_message(&mut r, &ctx).await?, LogMessage::Last);
//! assert!(r.is_empty());
//! # Ok::<(), worker_protocol::ProtocolError>(())
//! # }).unwrap();
//! ```

mod client;
pub mod codes;
mod message;
mod pull;
mod read;
mod remote_error;
mod server;
#[cfg(test)]
mod tests;
mod types;

pub use client::{process_stderr, LogCollector, LogSink, MAX_READ_ANSWER};
pub use message::{downgrade, encode_for, LogMessage};
pub use pull::PullSource;
pub use read::read_message;
pub use remote_error::{RemoteError, DEFAULT_STATUS};
pub use server::{ServerLogger, MAX_PENDING, MAX_WRITE_CHUNK};
pub use types::{ActivityId, ActivityType, Field, LogFilter, ResultType, Verbosity};
