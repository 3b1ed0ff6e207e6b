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
        /// The bytes (for the first difference's offset in reports).
        bytes: Vec<u8>,
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
            StdoutMode::Binary => Shown::Binary { len: stdout.len(), sha256: hex(&Sha256::digest(stdout)), bytes: stdout.to_vec() },
        }
    }

    /// The text a report diffs.
    pub fn render(&self) -> String {
        match self {
            Shown::Text(text) => text.clone(),
            Shown::Json(value) => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
            Shown::Binary { len, sha256, .. } => format!("<{len} bytes, sha256 {sha256}>\n"),
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
            if let (Shown::Binary { bytes: a, .. }, Shown::Binary { bytes: b, .. }) = (&self.stdout, &other.stdout) {
                out.push_str(&indent(&first_byte_difference(a, b)));
            }
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

/// Where two byte strings first differ, with 32 bytes of each from a little before, as printable
/// text (NARs and export archives are mostly names and contents).
fn first_byte_difference(a: &[u8], b: &[u8]) -> String {
    let offset = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let start = offset.saturating_sub(8);
    let window = |bytes: &[u8]| -> String {
        bytes[start.min(bytes.len())..(start + 32).min(bytes.len())]
            .iter()
            .map(|&c| if c.is_ascii_graphic() || c == b' ' { char::from(c) } else { '.' })
            .collect()
    };
    format!("   first difference at byte {offset}:\n - {}\n + {}\n", window(a), window(b))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(stdout: Shown, stderr: &str) -> Record {
        Record { label: "[c] cmd".into(), exit: Some(0), stdout, stderr: Some(stderr.into()) }
    }

    #[test]
    fn equal_records_have_no_difference() {
        let a = record(Shown::Text("x\n".into()), "");
        assert_eq!(a.difference(&a.clone()), None);
    }

    #[test]
    fn differences_name_exit_stdout_and_stderr() {
        let a = record(Shown::Text("x\n".into()), "warning\n");
        let b = Record { exit: Some(1), ..record(Shown::Text("y\n".into()), "error: no\n") };
        let report = a.difference(&b).unwrap_or_default();
        assert!(report.contains("exit code: reference Some(0), under test Some(1)"), "{report}");
        assert!(report.contains(" - x") && report.contains(" + y"), "{report}");
        assert!(report.contains(" - warning") && report.contains(" + error: no"), "{report}");
    }

    #[test]
    fn binary_differences_show_the_offset() {
        let n = Normaliser::new("/r");
        let a = record(Shown::new(b"nix-archive-1 regular", StdoutMode::Binary, &n), "");
        let b = record(Shown::new(b"nix-archive-1 executable", StdoutMode::Binary, &n), "");
        let report = a.difference(&b).unwrap_or_default();
        assert!(report.contains("first difference at byte 14"), "{report}");
    }

    #[test]
    fn json_compares_values_not_text() {
        let n = Normaliser::new("/r");
        let a = Shown::new(br#"{"a":1,"b":[2],"registrationTime":5}"#, StdoutMode::Json, &n);
        let b = Shown::new(br#"{ "b": [2], "a": 1, "registrationTime": 9 }"#, StdoutMode::Json, &n);
        assert_eq!(a, b);
        let c = Shown::new(br#"{"a":2,"b":[2]}"#, StdoutMode::Json, &n);
        assert_ne!(a, c);
    }
}
