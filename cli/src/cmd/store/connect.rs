//! Which daemon to talk to, connecting to it, its log messages on stderr, and its errors as
//! one-line messages.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix_formats::store_path::StoreDir;
use worker_protocol::connection::{ClientConfig, ClientConnection, UnixClientConnection};
use worker_protocol::logger::{LogMessage, LogSink, ResultType, Verbosity};
use worker_protocol::ops::ClientOptions;
use worker_protocol::ProtocolError;

/// A connection to the daemon whose log messages go to stderr.
pub type Connection = UnixClientConnection<StderrLogs>;

/// Where the daemon listens, and the store URL Nix would print for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLocation {
    /// The socket.
    pub socket: PathBuf,
    /// `daemon` for the default socket, `unix://PATH` otherwise (as Nix's `getUri`).
    pub url: String,
}

/// The default socket, as Nix finds it: `NIX_DAEMON_SOCKET_PATH`, else
/// `$NIX_STATE_DIR/daemon-socket/socket`, else `/nix/var/nix/daemon-socket/socket`.
fn default_socket() -> PathBuf {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(path) = non_empty("NIX_DAEMON_SOCKET_PATH") {
        return normalise(Path::new(&path));
    }
    let state = non_empty("NIX_STATE_DIR").map_or_else(|| PathBuf::from("/nix/var/nix"), PathBuf::from);
    normalise(&state.join("daemon-socket/socket"))
}

/// The path with repeated and trailing slashes and `.` components removed (not resolving
/// symlinks, as Nix's `canonPath` does not either).
fn normalise(path: &Path) -> PathBuf {
    path.components().collect()
}

impl StoreLocation {
    /// The store `--store` names, else `NIX_REMOTE`: `daemon`, `auto` or empty for the default
    /// socket (casnix speaks to daemons only, so `auto` means the daemon), or `unix://PATH`
    /// (an empty PATH is the default socket). Anything else is refused.
    pub fn resolve(store: Option<&str>) -> Result<Self> {
        let spec = match store {
            Some(s) => s.to_owned(),
            None => std::env::var("NIX_REMOTE").unwrap_or_default(),
        };
        let default = default_socket();
        let socket = match spec.as_str() {
            "" | "daemon" | "auto" => default.clone(),
            s if s.starts_with("unix://") => {
                let rest = &s["unix://".len()..];
                if rest.contains('?') {
                    bail!("store URL parameters are not supported: '{s}'");
                }
                if rest.is_empty() {
                    default.clone()
                } else {
                    normalise(Path::new(rest))
                }
            }
            other => bail!("unsupported store '{other}': casnix talks to daemons only (use 'daemon' or 'unix://PATH')"),
        };
        let url = if socket == default { "daemon".to_owned() } else { format!("unix://{}", socket.display()) };
        Ok(Self { socket, url })
    }

    /// Connects, does the handshake and sends the default options, as Nix's clients do.
    pub async fn connect(&self) -> Result<Connection> {
        let cfg = ClientConfig { store_dir: StoreDir::from_env(), ..ClientConfig::default() };
        let conn = ClientConnection::connect_unix(&self.socket, &cfg)
            .await
            .map_err(daemon_error)
            .with_context(|| format!("cannot connect to the daemon at '{}'", self.socket.display()))?;
        let mut conn = conn.with_sink(StderrLogs::new());
        conn.set_options(&ClientOptions::default()).await.map_err(daemon_error)?;
        Ok(conn)
    }
}

/// A daemon's error as a one-line message: its own text for the errors it reports (with colour
/// codes removed unless stderr is a terminal, as Nix prints them), the protocol error otherwise.
/// I/O errors stay in the error's chain (so a broken pipe can be told apart), each once.
pub fn daemon_error(e: ProtocolError) -> anyhow::Error {
    match e {
        ProtocolError::Remote { message, .. } => anyhow!("{}", for_stderr(message.as_bytes())),
        ProtocolError::Io(e) => anyhow::Error::new(e),
        ProtocolError::Sink(e) => anyhow::Error::new(e).context("cannot write the output"),
        ProtocolError::Source(e) => anyhow::Error::new(e).context("cannot read the data to send"),
        other => anyhow!("{other}"),
    }
}

/// Text for stderr: ANSI escape sequences removed unless stderr is a terminal.
fn for_stderr(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    if std::io::stderr().is_terminal() {
        return text.into_owned();
    }
    strip_ansi(&text)
}

/// Removes ANSI escape sequences (`ESC [` parameters and a final letter).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Prints the daemon's log lines, the activities Nix's plain logger shows (`text...`) and build
/// output on stderr.
#[derive(Debug, Default)]
pub struct StderrLogs {
    verbosity: Verbosity,
}

impl StderrLogs {
    /// A sink showing what Nix shows by default (up to [`Verbosity::Info`]).
    pub fn new() -> Self {
        Self::default()
    }

    fn line(&self, text: &[u8]) -> Result<(), ProtocolError> {
        let text = for_stderr(text);
        writeln!(std::io::stderr().lock(), "{}", text.trim_end()).map_err(ProtocolError::Sink)
    }
}

impl LogSink for StderrLogs {
    async fn log(&mut self, message: LogMessage) -> Result<(), ProtocolError> {
        match message {
            LogMessage::Next(text) => self.line(&text),
            LogMessage::StartActivity { level, text, .. } if level <= self.verbosity && !text.is_empty() => {
                let mut text = text;
                text.extend_from_slice(b"...");
                self.line(&text)
            }
            LogMessage::Result { kind: ResultType::BuildLogLine, fields, .. } => match fields.first().and_then(|f| f.as_bytes()) {
                Some(line) => self.line(line),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;

    #[test]
    fn store_urls() {
        let default = StoreLocation::resolve(Some("daemon")).unwrap();
        assert_eq!(default.url, "daemon");
        assert_eq!(StoreLocation::resolve(Some("unix://")).unwrap(), default);
        assert_eq!(StoreLocation::resolve(Some("auto")).unwrap(), default);
        let other = StoreLocation::resolve(Some("unix:///tmp//x/sock/")).unwrap();
        assert_eq!(other.socket, PathBuf::from("/tmp/x/sock"));
        assert_eq!(other.url, "unix:///tmp/x/sock");
        let same = StoreLocation::resolve(Some(&format!("unix://{}", default.socket.display()))).unwrap();
        assert_eq!(same.url, "daemon");
        assert!(StoreLocation::resolve(Some("local")).is_err());
        assert!(StoreLocation::resolve(Some("ssh://host")).is_err());
        assert!(StoreLocation::resolve(Some("unix:///tmp/s?trusted=1")).is_err());
    }

    #[test]
    fn ansi_codes_are_removed() {
        assert_eq!(strip_ansi("path '\u{1b}[35;1m/nix/store/x\u{1b}[0m' is bad"), "path '/nix/store/x' is bad");
        assert_eq!(strip_ansi("plain \u{1b} text"), "plain \u{1b} text");
    }
}
