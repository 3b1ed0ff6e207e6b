//! One step's result as compared between the daemons: the command, its exit code, its stdout
//! (text, JSON or binary, normalised) and its stderr (normalised, unless the step opts out).

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::client::RawOutput;
use crate::diff;
use crate::normalise::Normaliser;

/// How a step's stdout is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdoutMode {
    /// Normalised text, line by line.
    Text,
    /// Normalised text with its lines sorted (for outputs whose order depends on process ids).
    SortedLines,
    /// Parsed as JSON and compared as values (registration times zeroed).
    Json,
    /// Bytes compared exactly (NARs, export archives); reports show size and SHA-256.
    Binary,
}

/// A step's stdout, ready for comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// Normalised text.
    Text(String),
    /// Parsed, normalised JSON.
    Json(Value),
    /// Raw bytes, shown by size and SHA-256.
    Binary {
        /// Length in bytes.
        len: usize,
        /// SHA-256, hex.
        sha256: String,
    },
}

impl Shown {
    /// Builds the comparable form of `stdout` in `mode`.
    pub fn new(stdout: &[u8], mode: StdoutMode, normaliser: &Normaliser) -> Self {
        match mode {
            StdoutMode::Text => Shown::Text(normaliser.text(&String::from_utf8_lossy(stdout))),
            StdoutMode::SortedLines => {
                let text = normaliser.text(&String::from_utf8_lossy(stdout));
                let mut lines: Vec<&str> = text.lines().collect();
                lines.sort_unstable();
                Shown::Text(lines.iter().map(|l| format!("{l}\n")).collect())
            }
            StdoutMode::Json => match serde_json::from_slice::<Value>(stdout) {
                Ok(value) => Shown::Json(normaliser.json(value)),
                // Not JSON (a failed command prints nothing): compared as text.
                Err(_) => Shown::Text(normaliser.text(&String::from_utf8_lossy(stdout))),
            },
            StdoutMode::Binary => Shown::Binary { len: stdout.len(), sha256: hex(&Sha256::digest(stdout)) },
        }
    }

    /// The text a report diffs.
    pub fn render(&self) -> String {
        match self {
            Shown::Text(text) => text.clone(),
            Shown::Json(value) => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
            Shown::Binary { len, sha256 } => format!("<{len} bytes, sha256 {sha256}>\n"),
        }
    }
}

/// One step of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// What ran: the client, the user and the normalised command line (or a snapshot's name).
    pub label: String,
    /// Exit code (`None`: killed or timed out).
    pub exit: Option<i32>,
    /// Standard output.
    pub stdout: Shown,
    /// Normalised standard error, `None` when the step does not compare it.
    pub stderr: Option<String>,
}

impl Record {
    /// The record of a command's output.
    pub fn of(label: String, raw: &RawOutput, mode: StdoutMode, compare_stderr: bool, normaliser: &Normaliser) -> Self {
        Record {
            label,
            exit: raw.exit,
            stdout: Shown::new(&raw.stdout, mode, normaliser),
            stderr: compare_stderr.then(|| normaliser.text(&String::from_utf8_lossy(&raw.stderr))),
        }
    }

    /// The record as text (for `CASNIX_COMPAT_SHOW`).
    pub fn show(&self) -> String {
        format!(
            "$ {}\n  exit {:?}\n{}{}",
            self.label,
            self.exit,
            indent(&self.stdout.render()),
            self.stderr.as_deref().map(|e| indent(&format!("stderr:\n{e}"))).unwrap_or_default()
        )
    }

    /// A readable account of how `other` (under test) differs from `self` (reference), or
    /// `None` when they agree.
    pub fn difference(&self, other: &Record) -> Option<String> {
        if self == other {
            return None;
        }
        let mut out = String::new();
        if self.label != other.label {
            out.push_str(&format!("  command differs (an earlier result differed):\n  - {}\n  + {}\n", self.label, other.label));
        }
        if self.exit != other.exit {
            out.push_str(&format!("  exit code: reference {:?}, under test {:?}\n", self.exit, other.exit));
        }
        if self.stdout != other.stdout {
            out.push_str("  stdout (- reference, + under test):\n");
            out.push_str(&indent(&diff::lines(&self.stdout.render(), &other.stdout.render())));
        }
        if self.stderr != other.stderr {
            out.push_str("  stderr (- reference, + under test):\n");
            out.push_str(&indent(&diff::lines(
                self.stderr.as_deref().unwrap_or("<not compared>"),
                other.stderr.as_deref().unwrap_or("<not compared>"),
            )));
        }
        Some(out)
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
