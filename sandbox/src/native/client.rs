//! The backend's side of the zygote ([`super::zygote`]): one per helper (and its arguments)
//! in the process, started on the first build and again on the next build after it died;
//! each build gets its control channel and hands over its log pipe here.

use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::io::Errno;
use rustix::net::{AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType};

use super::protocol::ZYGOTE_ARG;
use crate::request::SandboxError;

/// A running zygote.
#[derive(Debug)]
struct Running {
    process: Child,
    socket: OwnedFd,
}

/// The zygote of one helper.
#[derive(Debug)]
pub struct Zygote {
    helper: PathBuf,
    helper_args: Vec<String>,
    running: Mutex<Option<Running>>,
}

/// What a build gets from the zygote.
#[derive(Debug)]
pub struct Started {
    /// The build's control channel.
    pub control: UnixStream,
    /// The read end of its log pipe.
    pub log: std::io::PipeReader,
}

type Registry = Mutex<Vec<Arc<Zygote>>>;

fn setup(message: String) -> SandboxError {
    SandboxError::Setup(message)
}

impl Zygote {
    /// The process's zygote for `helper` run with `helper_args` (not started yet if new).
    pub fn shared(helper: &std::path::Path, helper_args: &[String]) -> Arc<Zygote> {
        static ZYGOTES: OnceLock<Registry> = OnceLock::new();
        let registry = ZYGOTES.get_or_init(Registry::default);
        let mut zygotes = registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = zygotes.iter().find(|z| z.helper == helper && z.helper_args == helper_args) {
            return found.clone();
        }
        let zygote = Arc::new(Zygote { helper: helper.to_owned(), helper_args: helper_args.to_vec(), running: Mutex::new(None) });
        zygotes.push(zygote.clone());
        zygote
    }

    /// The zygote's process id, if it is running.
    pub fn pid(&self) -> Option<u32> {
        let mut running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let alive = running.as_mut().is_some_and(|r| matches!(r.process.try_wait(), Ok(None)));
        alive.then(|| running.as_ref().map(|r| r.process.id())).flatten()
    }

    fn spawn(&self) -> Result<Running, SandboxError> {
        let (ours, theirs) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
            .map_err(|e| setup(format!("creating the sandbox zygote's socket: {e}")))?;
        // A process group of its own: a signal to the daemon's group (a terminal's, or
        // `kill -- -PGID`) must not take running builds with it; it ends with the socket.
        let process = Command::new(&self.helper)
            .args(&self.helper_args)
            .arg(ZYGOTE_ARG)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(SandboxError::io(format!("running the sandbox helper '{}'", self.helper.display())))?;
        tracing::debug!(pid = process.id(), "started the sandbox zygote '{}'", self.helper.display());
        Ok(Running { process, socket: ours })
    }

    /// Has the zygote fork a process for a new build (starting the zygote if it is not
    /// running).
    pub fn start_build(&self) -> Result<Started, SandboxError> {
        let (control, theirs) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
            .map_err(|e| setup(format!("creating a build's control socket: {e}")))?;
        let (log, log_writer) = std::io::pipe().map_err(SandboxError::io("creating the log pipe"))?;
        let fds = [theirs.as_fd(), log_writer.as_fd()];
        let mut running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A zygote that died (killed, or its binary gone) is replaced; so is one whose socket
        // turns out to be closed.
        for attempt in 0..2 {
            if let Some(r) = running.as_mut() {
                if !matches!(r.process.try_wait(), Ok(None)) {
                    tracing::warn!(pid = r.process.id(), "the sandbox zygote has died; starting another");
                    *running = None;
                }
            }
            let zygote = match running.as_mut() {
                Some(zygote) => zygote,
                None => running.insert(self.spawn()?),
            };
            let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
            let mut ancillary = SendAncillaryBuffer::new(&mut space);
            ancillary.push(SendAncillaryMessage::ScmRights(&fds));
            let sent = loop {
                match rustix::net::sendmsg(&zygote.socket, &[IoSlice::new(&[0])], &mut ancillary, SendFlags::NOSIGNAL) {
                    Err(Errno::INTR) => continue,
                    other => break other,
                }
            };
            match sent {
                Ok(_) => break,
                Err(e) if attempt == 0 && matches!(e, Errno::PIPE | Errno::CONNRESET) => {
                    let mut dead = running.take();
                    if let Some(r) = dead.as_mut() {
                        let _ = r.process.kill();
                        let _ = r.process.wait();
                    }
                }
                Err(e) => return Err(setup(format!("sending a build to the sandbox zygote: {e}"))),
            }
        }
        drop(running);
        Ok(Started { control: UnixStream::from(control), log })
    }
}
