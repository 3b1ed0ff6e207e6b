//! The Nix clients: Debian bookworm's Nix 2.8 on the host and Debian trixie's Nix 2.26 in its
//! root (run in a private mount namespace with `/proc`, `/dev` and `/tmp` bound in, then
//! chrooted), each as root or as the untrusted user, always talking to the daemon's socket.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::{trixie_root, Env};
use crate::must;

/// Which Nix runs the commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// Nix 2.8 (Debian bookworm's `nix-bin`, installed on the host).
    Nix28,
    /// Nix 2.26 (Debian trixie's `nix-bin` in [`trixie_root`]).
    Nix226,
}

impl ClientKind {
    /// Both clients.
    pub const ALL: [ClientKind; 2] = [ClientKind::Nix28, ClientKind::Nix226];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Nix28 => "nix-2.8",
            ClientKind::Nix226 => "nix-2.26",
        }
    }
}

/// Who runs the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum User {
    /// root: in the daemons' `trusted-users`.
    Root,
    /// The untrusted user ([`crate::user::UNTRUSTED_USER`]).
    Untrusted,
}

impl User {
    /// Both users.
    pub const ALL: [User; 2] = [User::Root, User::Untrusted];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            User::Root => "root",
            User::Untrusted => "untrusted",
        }
    }
}

/// How long one client command may take before it is killed and recorded as timed out (a hung
/// daemon must not hang the test run).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The shell script that runs a command in the trixie root: `$1` is the root, the rest the
/// command. `unshare -m` makes the mounts private to this process tree.
pub(crate) const CHROOT_SCRIPT: &str = r#"root=$1; shift
mount --rbind /proc "$root/proc" && mount --rbind /dev "$root/dev" && mount --bind /tmp "$root/tmp" && exec chroot "$root" "$@""#;

/// What a command did.
#[derive(Debug, Clone)]
pub struct RawOutput {
    /// Exit code; `None` when killed by a signal or timed out.
    pub exit: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// A client (Nix version and user) in an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// Which Nix.
    pub kind: ClientKind,
    /// As whom.
    pub user: User,
}

impl Client {
    /// The environment variables the client gets (and nothing else).
    fn vars(&self, env: &Env) -> Vec<(String, String)> {
        let p = |sub: &str| env.path(sub).to_string_lossy().into_owned();
        let home = env.home(self.user).to_string_lossy().into_owned();
        vec![
            ("PATH".into(), "/usr/bin:/bin:/usr/sbin:/sbin".into()),
            ("HOME".into(), home),
            ("USER".into(), if self.user == User::Root { "root".into() } else { crate::user::UNTRUSTED_USER.into() }),
            ("NIX_STORE_DIR".into(), p("store")),
            ("NIX_STATE_DIR".into(), p("state")),
            ("NIX_LOG_DIR".into(), p("log")),
            ("NIX_CONF_DIR".into(), p("client-conf")),
            ("NIX_DAEMON_SOCKET_PATH".into(), env.socket().to_string_lossy().into_owned()),
            ("NIX_REMOTE".into(), "daemon".into()),
        ]
    }

    /// Runs `args` (program first) with `stdin`, in `user`'s work directory.
    pub fn run(&self, env: &Env, args: &[String], stdin: Option<&[u8]>) -> RawOutput {
        let work = env.work(self.user);
        let mut inner: Vec<String> = Vec::new();
        if self.user == User::Untrusted {
            let ids = env.untrusted_ids();
            inner.extend(["setpriv".into(), format!("--reuid={}", ids.uid), format!("--regid={}", ids.gid)]);
            inner.extend(["--clear-groups".into(), "--".into()]);
        }
        inner.extend(["env".into(), "-i".into(), "-C".into(), work.to_string_lossy().into_owned()]);
        inner.extend(self.vars(env).into_iter().map(|(k, v)| format!("{k}={v}")));
        inner.extend(args.iter().cloned());
        let mut cmd = match self.kind {
            ClientKind::Nix28 => {
                let mut cmd = Command::new(&inner[0]);
                cmd.args(&inner[1..]);
                cmd
            }
            ClientKind::Nix226 => {
                let mut cmd = Command::new("unshare");
                cmd.args(["-m", "sh", "-c", CHROOT_SCRIPT, "sh"]).arg(trixie_root()).args(&inner);
                cmd
            }
        };
        run_with_timeout(&mut cmd, stdin)
    }
}

/// Runs a command in its own process group, feeding `stdin` and collecting both outputs; kills
/// the group after [`COMMAND_TIMEOUT`].
pub(crate) fn run_with_timeout(cmd: &mut Command, stdin: Option<&[u8]>) -> RawOutput {
    use std::os::unix::process::CommandExt;
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = must(cmd.spawn(), "spawn client");
    let writer = child.stdin.take().map(|mut pipe| {
        let data = stdin.unwrap_or_default().to_vec();
        std::thread::spawn(move || {
            // The command may exit without reading everything (a refusal): that is its result.
            let _ = pipe.write_all(&data);
        })
    });
    let out_reader = reader(child.stdout.take());
    let err_reader = reader(child.stderr.take());
    let exit = wait_or_kill(&mut child);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let stdout = out_reader.join().unwrap_or_default();
    let mut stderr = err_reader.join().unwrap_or_default();
    if exit.is_none() {
        stderr.extend_from_slice(b"\n<compat-tests: killed by a signal or timed out>\n");
    }
    RawOutput { exit, stdout, stderr }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

fn wait_or_kill(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                crate::daemon::kill_group(child);
                return None;
            }
        }
    }
}

