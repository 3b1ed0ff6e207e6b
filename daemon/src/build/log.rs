//! A build's log: sent to the client as it comes (as build-log-line results of the build's
//! activity; plain lines for old clients), kept whole for `nix log`, and its tail kept for the
//! error message.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use store::StoreError;
use worker_protocol::logger::{ActivityId, ActivityType, Field, LogMessage, ResultType, Verbosity};

use crate::bridge::LogTx;

/// Lines of the log's tail kept for the error message (Nix's `log-lines`).
pub const TAIL_LINES: usize = 25;
/// The most bytes of one build's log kept for `nix log`.
const MAX_KEPT: usize = 64 << 20;

/// Where Nix keeps the log of `drv_base` (`<log_dir>/drvs/<2 chars>/<rest>.bz2`).
pub fn build_log_path(log_dir: &Path, drv_base: &str) -> PathBuf {
    let (head, tail) = drv_base.split_at(drv_base.len().min(2));
    log_dir.join("drvs").join(head).join(format!("{tail}.bz2"))
}

/// Writes a build log as Nix does: bzip2-compressed, to a temporary then renamed. With
/// `replace` off an existing log is kept (as `AddBuildLog` does).
pub fn write_build_log(log_dir: &Path, drv_base: &str, log: &[u8], replace: bool) -> Result<(), StoreError> {
    let path = build_log_path(log_dir, drv_base);
    if !replace && path.exists() {
        return Ok(());
    }
    let parent = path.parent().unwrap_or(log_dir);
    std::fs::create_dir_all(parent).map_err(StoreError::io("creating directory", parent))?;
    let temp = path.with_extension(format!("bz2.tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let file = std::fs::File::create(&temp)?;
        let mut encoder = bzip2::write::BzEncoder::new(file, bzip2::Compression::best());
        encoder.write_all(log)?;
        encoder.finish()?.sync_all()?;
        std::fs::rename(&temp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        StoreError::io("writing build log", &path)(e)
    })
}

/// Collects one build's output and forwards it to the client.
#[derive(Debug)]
pub struct BuildLog {
    tx: LogTx,
    activity: ActivityId,
    kept: Vec<u8>,
    tail: VecDeque<String>,
}

impl BuildLog {
    /// Starts the build's activity (`building '<drv>'`, Nix's fields: the derivation, the
    /// machine, round 1 of 1).
    pub fn start(tx: LogTx, drv_printed: &str, parent: ActivityId) -> Self {
        let activity = ActivityId::next();
        let _ = tx.send(LogMessage::StartActivity {
            id: activity,
            level: Verbosity::Info,
            kind: ActivityType::Build,
            text: format!("building '{drv_printed}'").into_bytes(),
            fields: vec![Field::String(drv_printed.as_bytes().to_vec()), Field::String(Vec::new()), Field::Int(1), Field::Int(1)],
            parent,
        });
        Self { tx, activity, kept: Vec::new(), tail: VecDeque::new() }
    }

    /// The whole log so far.
    pub fn contents(&self) -> &[u8] {
        &self.kept
    }

    /// The last lines, oldest first.
    pub fn tail(&self) -> impl Iterator<Item = &str> {
        self.tail.iter().map(String::as_str)
    }

    /// Ends the activity.
    pub fn finish(&self) {
        let _ = self.tx.send(LogMessage::StopActivity { id: self.activity });
    }
}

impl sandbox::LogSink for BuildLog {
    fn line(&mut self, line: &[u8]) {
        if self.kept.len() < MAX_KEPT {
            self.kept.extend_from_slice(line);
            self.kept.push(b'\n');
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(String::from_utf8_lossy(line).into_owned());
        let _ = self.tx.send(LogMessage::Result {
            id: self.activity,
            kind: ResultType::BuildLogLine,
            fields: vec![Field::String(line.to_vec())],
        });
    }
}
