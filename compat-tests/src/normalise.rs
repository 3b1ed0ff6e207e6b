//! What legitimately differs between two daemons' runs of one scenario, replaced by fixed
//! placeholders: the test root's path (for readable reports), process ids, temporary directory
//! names, the daemon's version string and registration times.

use serde_json::Value;

/// Normalises text and JSON of one environment (its root directory).
#[derive(Debug, Clone)]
pub struct Normaliser {
    root: String,
}

/// Markers after which a run of digits is a process id or counter that differs between runs.
const NUMBER_AFTER: &[(&str, &str)] = &[("{temp:", "PID"), ("/proc/", "PID"), ("/nix-", "N")];

impl Normaliser {
    /// A normaliser for the environment rooted at `root`.
    pub fn new(root: &str) -> Self {
        Self { root: root.to_owned() }
    }

    /// Normalises a text output: the root becomes `$ROOT`, process ids in temporary roots and
    /// `/proc` links become `PID`, temporary directory counters `N`, and a `Version: ...` line
    /// (the daemon's version in `nix store info`/`ping`) becomes `Version: <version>`.
    pub fn text(&self, text: &str) -> String {
        let replaced = text.replace(&self.root, "$ROOT");
        let mut lines: Vec<String> = Vec::new();
        for line in replaced.split_inclusive('\n') {
            let body = line.trim_end_matches('\n');
            let ending = &line[body.len()..];
            if is_busy_retry(body) {
                continue;
            }
            let body = if body.starts_with("Version: ") {
                "Version: <version>".to_owned()
            } else if let Some(figures) = hard_link_figures(body) {
                figures
            } else {
                normalise_numbers(body)
            };
            lines.push(format!("{body}{ending}"));
        }
        lines.concat()
    }

    /// Normalises JSON: registration times become 0, `version` strings (the daemon's, in `nix
    /// store info --json`) `<version>`, every other string as [`Normaliser::text`].
    pub fn json(&self, value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(key, value)| {
                        let value = if key == "registrationTime" && value.is_number() {
                            Value::from(0)
                        } else if key == "version" && value.is_string() {
                            // `nix store info --json`: the daemon's version.
                            Value::from("<version>")
                        } else {
                            self.json(value)
                        };
                        (self.text(&key), value)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.json(v)).collect()),
            Value::String(s) => Value::String(self.text(&s)),
            other => other,
        }
    }
}

/// The figures of hard-linking reports (`nix-store --optimise`'s `X MiB freed by hard-linking
/// N files`, the collector's `note: currently hard linking saves X MiB`): casnix stores each
/// file once from the start (its pool is always "optimised"), so these numbers differ from
/// Nix's by design; the lines themselves must be there.
fn hard_link_figures(line: &str) -> Option<String> {
    if line.starts_with("note: currently hard linking saves ") && line.ends_with(" MiB") {
        return Some("note: currently hard linking saves <n> MiB".to_owned());
    }
    let (amount, rest) = line.split_once(" MiB freed by hard-linking ")?;
    let count = rest.strip_suffix(" files")?;
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-');
    (numeric(amount) && numeric(count)).then(|| "<n> MiB freed by hard-linking <n> files".to_owned())
}

/// Nix's warning that it retries a busy SQLite database: timing, not behaviour.
fn is_busy_retry(line: &str) -> bool {
    line.starts_with("warning: ") && line.contains("SQLite database") && line.ends_with("is busy")
}

/// Replaces the digits of process ids and temporary directory counters (`{temp:123}`,
/// `/proc/123/`, `/tmp/nix-123-0`) by placeholders. Only names inside temporary directories get
/// the `-N` treatment, so store path names with digits stay as they are.
fn normalise_numbers(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    'outer: while !rest.is_empty() {
        for (marker, placeholder) in NUMBER_AFTER {
            if let Some(after) = rest.strip_prefix(marker) {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                if digits > 0 {
                    out.push_str(marker);
                    out.push_str(placeholder);
                    rest = &after[digits..];
                    if *marker == "/nix-" {
                        // Nix's temporary directories: `nix-<pid>-<counter>`.
                        if let Some(tail) = rest.strip_prefix('-') {
                            let more = tail.bytes().take_while(u8::is_ascii_digit).count();
                            if more > 0 {
                                out.push_str("-N");
                                rest = &tail[more..];
                            }
                        }
                    }
                    continue 'outer;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_root_pids_and_version() {
        let n = Normaliser::new("/tmp/compat-x");
        assert_eq!(
            n.text("{temp:123} -> /tmp/compat-x/store/abc-a1\n/proc/77/maps -> x\nVersion: 2.8.0\n"),
            "{temp:PID} -> $ROOT/store/abc-a1\n/proc/PID/maps -> x\nVersion: <version>\n"
        );
        assert_eq!(n.text("in /tmp/nix-4242-7/x"), "in /tmp/nix-N-N/x");
        assert_eq!(n.text("a\nwarning: error: SQLite database '/tmp/compat-x/state/db/db.sqlite' is busy\nb\n"), "a\nb\n");
        assert_eq!(n.text("/tmp/compat-x/store/abc-hello-2.10"), "$ROOT/store/abc-hello-2.10");
    }

    #[test]
    fn hard_link_figures_are_placeholders() {
        let n = Normaliser::new("/r");
        assert_eq!(n.text("0.07 MiB freed by hard-linking 5 files\n"), "<n> MiB freed by hard-linking <n> files\n");
        assert_eq!(n.text("note: currently hard linking saves -0.00 MiB"), "note: currently hard linking saves <n> MiB");
        // Other lines with these words stay.
        assert_eq!(n.text("x MiB freed by hard-linking y files"), "x MiB freed by hard-linking y files");
    }

    #[test]
    fn json_times_zeroed() {
        let n = Normaliser::new("/r");
        let v = serde_json::json!({"/r/store/a": {"registrationTime": 1700000000, "narSize": 5}});
        assert_eq!(n.json(v), serde_json::json!({"$ROOT/store/a": {"registrationTime": 0, "narSize": 5}}));
        let info = serde_json::json!({"url": "daemon", "version": "2.26.3"});
        assert_eq!(n.json(info), serde_json::json!({"url": "daemon", "version": "<version>"}));
    }
}
