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
    /// The builder's own activities (by its ids) that are passed on.
    children: std::collections::BTreeMap<u64, ActivityId>,
}

impl BuildLog {
    /// Starts the build's activity (`building '<drv>'`, Nix's fields: the derivation, the
    /// machine, round 1 of 1).
    pub fn start(tx: LogTx, drv_printed: &str, parent: ActivityId) -> Self {
        let activity = ActivityId::next();
        tx.msg(LogMessage::StartActivity {
            id: activity,
            level: Verbosity::Info,
            kind: ActivityType::Build,
            text: format!("building '{drv_printed}'").into_bytes(),
            fields: vec![Field::String(drv_printed.as_bytes().to_vec()), Field::String(Vec::new()), Field::Int(1), Field::Int(1)],
            parent,
        });
        Self { tx, activity, kept: Vec::new(), tail: VecDeque::new(), children: Default::default() }
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
        self.tx.msg(LogMessage::StopActivity { id: self.activity });
    }
}

impl BuildLog {
    /// Handles a `@nix {…}` line (Nix's `handleJSONLogMessage` with an untrusted builder):
    /// messages and phases pass on, activities only when they are file transfers; anything
    /// malformed is reported as Nix reports it.
    fn json_message(&mut self, json_text: &[u8]) {
        let value: serde_json::Value = match serde_json::from_slice(json_text) {
            Ok(v) => v,
            Err(e) => {
                return self.send_text(
                    Verbosity::Error,
                    &format!("\x1b[31;1merror:\x1b[0m bad JSON log message from the derivation builder: {e}"),
                )
            }
        };
        if let Err(why) = self.handle_json(&value) {
            self.send_text(
                Verbosity::Warn,
                &format!("\x1b[35;1mwarning:\x1b[0m Unable to handle a JSON message from the derivation builder: {why}"),
            );
        }
    }

    fn handle_json(&mut self, value: &serde_json::Value) -> Result<(), String> {
        let field = |name: &str| value.get(name).ok_or_else(|| format!("missing field '{name}'"));
        let int = |name: &str| field(name)?.as_u64().ok_or_else(|| format!("field '{name}' is not a number"));
        let text = |name: &str| field(name)?.as_str().map(str::to_owned).ok_or_else(|| format!("field '{name}' is not a string"));
        let action = value
            .as_object()
            .ok_or_else(|| "not a JSON object".to_owned())
            .and_then(|_| text("action"))?;
        let fields = |v: Option<&serde_json::Value>| -> Vec<Field> {
            v.and_then(|f| f.as_array())
                .map(|a| {
                    a.iter()
                        .map(|x| match x.as_u64() {
                            Some(n) => Field::Int(n),
                            None => Field::String(x.as_str().unwrap_or("").as_bytes().to_vec()),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        match action.as_str() {
            "msg" => {
                let level = Verbosity::from_wire(int("level")?).map_err(|e| e.to_string())?;
                let msg = text("msg")?;
                self.send_text(level, &msg);
            }
            "setPhase" => {
                let phase = text("phase")?;
                self.tx.msg(LogMessage::Result {
                    id: self.activity,
                    kind: ResultType::SetPhase,
                    fields: vec![Field::String(phase.into_bytes())],
                });
            }
            "start" => {
                let kind = ActivityType::from_code(u32::try_from(int("type")?).unwrap_or(u32::MAX));
                if kind == ActivityType::FileTransfer {
                    let id = ActivityId::next();
                    self.children.insert(int("id")?, id);
                    self.tx.msg(LogMessage::StartActivity {
                        id,
                        level: Verbosity::from_wire(int("level")?).map_err(|e| e.to_string())?,
                        kind,
                        text: text("text")?.into_bytes(),
                        fields: fields(value.get("fields")),
                        parent: self.activity,
                    });
                }
            }
            "stop" => {
                if let Some(id) = self.children.remove(&int("id")?) {
                    self.tx.msg(LogMessage::StopActivity { id });
                }
            }
            "result" => {
                if let Some(id) = self.children.get(&int("id")?).copied() {
                    let kind = ResultType::from_code(u32::try_from(int("type")?).unwrap_or(u32::MAX));
                    self.tx.msg(LogMessage::Result { id, kind, fields: fields(value.get("fields")) });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends a line of text at `level` (the client's verbosity decides).
    fn send_text(&self, level: Verbosity, text: &str) {
        self.tx.line(level, text);
    }
}

impl sandbox::LogSink for BuildLog {
    fn line(&mut self, line: &[u8]) {
        if let Some(json) = line.strip_prefix(b"@nix ") {
            return self.json_message(json);
        }
        if self.kept.len() < MAX_KEPT {
            self.kept.extend_from_slice(line);
            self.kept.push(b'\n');
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(String::from_utf8_lossy(line).into_owned());
        self.tx.msg(LogMessage::Result {
            id: self.activity,
            kind: ResultType::BuildLogLine,
            fields: vec![Field::String(line.to_vec())],
        });
    }
}
