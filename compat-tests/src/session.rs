//! A scenario's run against one daemon: the steps it takes (client commands, snapshots of
//! directories the clients wrote) and their records.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::client::{Client, RawOutput};
use crate::daemon::DaemonKind;
use crate::env::Env;
use crate::held_open::HeldOpen;
use crate::normalise::Normaliser;
use crate::outcome::{hex, Record, StdoutMode};
use crate::User;

/// A run of a scenario against one daemon, with one client (Nix version and user).
#[derive(Debug)]
pub struct Session<'e> {
    env: &'e Env,
    client: Client,
    daemon: DaemonKind,
    normaliser: Normaliser,
    records: Vec<Record>,
}

impl<'e> Session<'e> {
    /// A session of `client` against `daemon` (already serving `env`).
    pub fn new(env: &'e Env, client: Client, daemon: DaemonKind) -> Self {
        Self { env, client, daemon, normaliser: env.normaliser(), records: Vec::new() }
    }

    /// The client steps run with (unless [`Step::as_root`]).
    pub fn client(&self) -> Client {
        self.client
    }

    /// Whether the session's user is trusted by the daemon (root).
    pub fn trusted(&self) -> bool {
        self.client.user == User::Root
    }

    /// Which daemon serves this run.
    pub fn daemon(&self) -> DaemonKind {
        self.daemon
    }

    /// The environment.
    pub fn env(&self) -> &Env {
        self.env
    }

    /// The store directory.
    pub fn store_dir(&self) -> String {
        self.env.store_dir().to_string_lossy().into_owned()
    }

    /// Writes an input file (the same in both runs) and returns its path.
    pub fn input(&self, name: &str, contents: &[u8]) -> String {
        self.env.write_input(name, contents, false).to_string_lossy().into_owned()
    }

    /// Writes an executable input file and returns its path.
    pub fn input_exec(&self, name: &str, contents: &[u8]) -> String {
        self.env.write_input(name, contents, true).to_string_lossy().into_owned()
    }

    /// Creates an input symlink and returns its path.
    pub fn input_symlink(&self, name: &str, target: &str) -> String {
        self.env.write_input_symlink(name, target).to_string_lossy().into_owned()
    }

    /// A path in the session user's work directory (writable by it, emptied between runs).
    pub fn work(&self, name: &str) -> String {
        self.env.work(self.client.user).join(name).to_string_lossy().into_owned()
    }

    /// The signing key pair of this environment: secret key file and public key.
    pub fn key_pair(&self) -> (String, String) {
        let (secret, public) = self.env.key_pair();
        (secret.to_string_lossy().into_owned(), public)
    }

    /// Overwrites a file inside the store in place (as root, read-only bits restored), as a
    /// disk error or a careless user would: for `--verify --check-contents`.
    pub fn corrupt(&self, path: &str, contents: &[u8]) {
        let path = Path::new(path);
        let mode = crate::must(fs::metadata(path), "corrupt: stat").permissions().mode();
        crate::must(fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o200)), "corrupt: chmod");
        crate::must(fs::write(path, contents), "corrupt: write");
        crate::must(fs::set_permissions(path, fs::Permissions::from_mode(mode)), "corrupt: chmod back");
    }

    /// Removes a file or symlink the scenario made (a GC root, say); a missing one is fine.
    pub fn remove(&self, path: &str) {
        let _ = fs::remove_file(path);
    }

    /// Starts a process that keeps `path` (a file in the store) open until the guard is dropped:
    /// a runtime root.
    pub fn hold_open(&self, path: &str) -> HeldOpen {
        HeldOpen::new(path)
    }

    /// Runs client commands (program first) at the same time, as the session's user, and records
    /// them in the given order (stdout as text, stderr compared). Against the reference daemon
    /// each must succeed.
    pub fn parallel(&mut self, commands: &[Vec<String>]) -> Vec<Outcome> {
        let (client, env) = (self.client, self.env);
        let raws: Vec<RawOutput> = std::thread::scope(|scope| {
            let handles: Vec<_> = commands.iter().map(|args| scope.spawn(move || client.run(env, args, None))).collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle.join().unwrap_or_else(|_| RawOutput { exit: None, stdout: Vec::new(), stderr: b"<client thread panicked>".to_vec() })
                })
                .collect()
        });
        let mut outcomes = Vec::new();
        for (args, raw) in commands.iter().zip(raws) {
            let label = format!(
                "[{} as {}, in parallel] {}",
                client.kind.name(),
                client.user.name(),
                self.normaliser.text(&args.join(" "))
            );
            if self.daemon == DaemonKind::Reference {
                assert!(
                    raw.exit == Some(0),
                    "scenario expectation broken against the reference daemon: {label} failed ({:?}): {}",
                    raw.exit,
                    String::from_utf8_lossy(&raw.stderr)
                );
            }
            self.records.push(Record::of(label, &raw, StdoutMode::Text, true, &self.normaliser));
            outcomes.push(Outcome { raw });
        }
        outcomes
    }

    /// A client command (program first), to be configured and [`Step::run`].
    pub fn cmd<I, S>(&mut self, args: I) -> Step<'_, 'e>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Step {
            session: self,
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            stdin: None,
            mode: StdoutMode::Text,
            as_root: false,
            compare_stderr: true,
            sort_stderr: false,
            expect: Expect::Anything,
        }
    }

    /// Records a listing of `dir` (names, types, modes, sizes; contents of small text files,
    /// SHA-256 of the others) as a step, so what clients wrote there is compared too.
    pub fn snapshot(&mut self, label: &str, dir: &str) {
        let mut listing = String::new();
        list_tree(Path::new(dir), Path::new(""), &mut listing);
        let raw = RawOutput { exit: Some(0), stdout: listing.into_bytes(), stderr: Vec::new() };
        let record = Record::of(format!("snapshot {label}: {dir}"), &raw, StdoutMode::Text, false, &self.normaliser);
        let record = Record { label: self.normaliser.text(&record.label), ..record };
        self.records.push(record);
    }

    /// The records so far.
    pub fn into_records(self) -> Vec<Record> {
        self.records
    }
}

/// What the reference daemon's run must show for a step (a check of the scenario itself; the
/// daemon under test is compared with the reference instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Anything,
    Success,
    Failure,
}

/// One client command of a session, configured with the builder methods.
#[derive(Debug)]
pub struct Step<'s, 'e> {
    session: &'s mut Session<'e>,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    mode: StdoutMode,
    as_root: bool,
    compare_stderr: bool,
    sort_stderr: bool,
    expect: Expect,
}

impl Step<'_, '_> {
    /// Compares stdout as JSON.
    pub fn json(mut self) -> Self {
        self.mode = StdoutMode::Json;
        self
    }

    /// Compares stdout byte for byte.
    pub fn binary(mut self) -> Self {
        self.mode = StdoutMode::Binary;
        self
    }

    /// Compares stdout's lines in sorted order.
    pub fn sorted(mut self) -> Self {
        self.mode = StdoutMode::SortedLines;
        self
    }

    /// Feeds `bytes` on stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs as root whatever the session's user (to set up state for an untrusted user's step).
    pub fn as_root(mut self) -> Self {
        self.as_root = true;
        self
    }

    /// Compares stderr's lines in sorted order (for clients that work in parallel, like Nix
    /// 2.26's `nix copy`, whose progress lines come in any order).
    pub fn sorted_stderr(mut self) -> Self {
        self.sort_stderr = true;
        self
    }

    /// Does not compare stderr (only for output that legitimately differs and cannot be
    /// normalised).
    pub fn ignore_stderr(mut self) -> Self {
        self.compare_stderr = false;
        self
    }

    /// The scenario expects success against the reference daemon (checked there only).
    pub fn expect_ok(mut self) -> Self {
        self.expect = Expect::Success;
        self
    }

    /// The scenario expects failure against the reference daemon (checked there only).
    pub fn expect_fail(mut self) -> Self {
        self.expect = Expect::Failure;
        self
    }

    /// The scenario expects success if `ok`, failure otherwise (checked against the reference
    /// daemon only): for steps that only trusted users may take, `.expect(s.trusted())`.
    pub fn expect(mut self, ok: bool) -> Self {
        self.expect = if ok { Expect::Success } else { Expect::Failure };
        self
    }

    /// Runs the command, records it, and returns what it did.
    pub fn run(self) -> Outcome {
        let session = self.session;
        let client = if self.as_root { Client { user: User::Root, ..session.client } } else { session.client };
        let raw = client.run(session.env, &self.args, self.stdin.as_deref());
        let label = format!(
            "[{} as {}] {}",
            client.kind.name(),
            client.user.name(),
            session.normaliser.text(&self.args.join(" "))
        );
        if session.daemon == DaemonKind::Reference {
            let ok = raw.exit == Some(0);
            let wrong = match self.expect {
                Expect::Anything => false,
                Expect::Success => !ok,
                Expect::Failure => ok,
            };
            assert!(
                !wrong,
                "scenario expectation broken against the reference daemon: {label} expected {:?}, got exit {:?}\n\
                 stdout: {}\nstderr: {}",
                self.expect,
                raw.exit,
                String::from_utf8_lossy(&raw.stdout),
                String::from_utf8_lossy(&raw.stderr)
            );
        }
        let mut record = Record::of(label, &raw, self.mode, self.compare_stderr, &session.normaliser);
        if self.sort_stderr {
            record.stderr = record.stderr.map(|text| {
                let mut lines: Vec<&str> = text.lines().collect();
                lines.sort_unstable();
                lines.iter().map(|l| format!("{l}\n")).collect()
            });
        }
        session.records.push(record);
        Outcome { raw }
    }
}

/// What a step did, for later steps to use (raw, not normalised).
#[derive(Debug, Clone)]
pub struct Outcome {
    raw: RawOutput,
}

impl Outcome {
    /// Whether it exited with 0.
    pub fn success(&self) -> bool {
        self.raw.exit == Some(0)
    }

    /// Stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.raw.stdout).into_owned()
    }

    /// Stdout's raw bytes.
    pub fn stdout_bytes(&self) -> &[u8] {
        &self.raw.stdout
    }

    /// Stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.raw.stderr).into_owned()
    }

    /// Stdout's non-empty lines.
    pub fn lines(&self) -> Vec<String> {
        self.stdout().lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
    }

    /// Stdout's first line (a store path, usually), or "" when there is none.
    pub fn line(&self) -> String {
        self.lines().into_iter().next().unwrap_or_default()
    }
}

/// Appends one line per entry below `dir` (sorted), relative to it.
fn list_tree(dir: &Path, rel: &Path, out: &mut String) {
    let Ok(entries) = fs::read_dir(dir.join(rel)) else {
        out.push_str(&format!("{}: <missing>\n", rel.display()));
        return;
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let path = dir.join(&rel);
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap_or_default();
            out.push_str(&format!("{} -> {}\n", rel.display(), target.display()));
        } else if meta.is_dir() {
            out.push_str(&format!("{}/ {mode:o}\n", rel.display()));
            list_tree(dir, &rel, out);
        } else {
            let contents = fs::read(&path).unwrap_or_default();
            match std::str::from_utf8(&contents) {
                Ok(text) if contents.len() <= 4096 => {
                    out.push_str(&format!("{} {mode:o} {} bytes:\n", rel.display(), contents.len()));
                    for line in text.lines() {
                        out.push_str(&format!("    {line}\n"));
                    }
                }
                _ => out.push_str(&format!(
                    "{} {mode:o} {} bytes sha256 {}\n",
                    rel.display(),
                    contents.len(),
                    hex(&Sha256::digest(&contents))
                )),
            }
        }
    }
}
