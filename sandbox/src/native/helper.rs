//! `casnix-build-sandbox`: the single-threaded helper the `native` backend runs for each build
//! (the daemon is multi-threaded, so it never forks itself into namespaces).
//!
//! The helper (outside) reads the [`HelperRequest`], creates the namespaces, waits for the
//! backend to write the id maps, then forks: the child is PID 1 of the new PID namespace
//! (with the helper's capabilities in it); it sets the root up, drops every capability, installs the seccomp filter and becomes the
//! builder. The helper waits for it and ends the same way.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::protocol::{HelperRequest, GO, HELPER_ARG, NO_NAMESPACES, SETUP_ERROR, UNSHARED};
use super::{confine, setup, sys};

/// The exit code of a helper that could not set the sandbox up.
const SETUP_FAILED: i32 = 125;

/// For programs that embed the helper: when the first argument is [`HELPER_ARG`], runs the
/// helper and returns its exit code; `None` otherwise. Must be called first thing in `main`,
/// while the process has one thread.
pub fn dispatch() -> Option<i32> {
    let first = std::env::args_os().nth(1)?;
    (first == HELPER_ARG).then(main)
}

/// The helper's entry point (or, with [`super::expose::EXPOSE_ARG`], the expose mode's);
/// returns its exit code (or does not return: it ends as its builder
/// ended, or becomes the builder).
pub fn main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(at) = args.iter().position(|a| a == super::expose::EXPOSE_ARG) {
        return super::expose::main(&args[at + 1..]);
    }
    let mut status = std::io::stdout();
    match outside() {
        Ok(code) => code,
        Err(message) => {
            let line = format!("{SETUP_ERROR}{}\n", message.replace('\n', " "));
            let _ = status.write_all(line.as_bytes());
            let _ = status.flush();
            SETUP_FAILED
        }
    }
}

fn read_request(input: &mut impl BufRead) -> Result<HelperRequest, String> {
    let mut line = Vec::new();
    input.read_until(b'\n', &mut line).map_err(|e| format!("reading the request: {e}"))?;
    serde_json::from_slice(&line).map_err(|e| format!("decoding the request: {e}"))
}

/// The helper outside: namespaces, the handshake, then the sandbox's first process.
fn outside() -> Result<i32, String> {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let mut input = BufReader::new(std::io::stdin().lock());
    let request = read_request(&mut input)?;
    // Supplementary groups cannot be changed once the maps deny it; a privileged helper drops
    // them now (an unprivileged one keeps them, unmapped, as Nix's builders do).
    if rustix::process::geteuid().is_root() {
        let _ = rustix::thread::set_thread_groups(&[]);
    }
    sys::unshare(sys::Namespaces { network: !request.plan.network }).map_err(|e| {
        format!(
            "{NO_NAMESPACES}cannot create the build sandbox's namespaces ({e}); user namespaces may be disabled \
             (see /proc/sys/user/max_user_namespaces), or use 'sandbox = false'"
        )
    })?;
    let mut status = std::io::stdout();
    writeln!(status, "{UNSHARED}").and_then(|()| status.flush()).map_err(|e| format!("reporting: {e}"))?;
    let mut go = String::new();
    input.read_line(&mut go).map_err(|e| format!("waiting for the id maps: {e}"))?;
    if go.trim_end() != GO {
        return Err("the backend did not write the id maps".into());
    }
    drop(input);
    // The helper has one thread, so forking is safe: the child is PID 1 of the new PID
    // namespace and keeps every capability there (an exec would need them passed on).
    let (mut errors, error_pipe) = std::io::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    let pid = match sys::fork().map_err(|e| format!("starting the sandbox's first process: {e}"))? {
        sys::Forked::Child => {
            drop(errors);
            inside(&request, error_pipe)
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop(error_pipe);
    // Set-up errors come through the pipe, which closes (close-on-exec) when the builder runs.
    let mut error = String::new();
    let _ = errors.read_to_string(&mut error);
    let status = sys::wait(pid).map_err(|e| format!("waiting for the sandbox: {e}"))?;
    if !error.trim().is_empty() {
        return Err(error.trim().to_owned());
    }
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        // Ends the same way (nothing here handles signals, so the default action applies).
        if let Some(signal) = rustix::process::Signal::from_named_raw(signal) {
            let _ = rustix::process::kill_process(rustix::process::getpid(), signal);
        }
        return Ok(128 + signal);
    }
    Ok(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { SETUP_FAILED })
}

/// The sandbox's first process (forked by the helper): sets the sandbox up and becomes the
/// builder. An error goes to `errors` and the process ends.
fn inside(request: &HelperRequest, mut errors: std::io::PipeWriter) -> ! {
    let error = match become_builder(request) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = errors.write_all(error.as_bytes());
    drop(errors);
    sys::exit_now(SETUP_FAILED)
}

fn become_builder(request: &HelperRequest) -> Result<std::convert::Infallible, String> {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let plan = &request.plan;
    setup::enter_root(plan)?;
    rustix::process::setrlimit(
        rustix::process::Resource::Core,
        rustix::process::Rlimit { current: Some(0), maximum: None },
    )
    .map_err(|e| format!("setting the core size limit: {e}"))?;
    // A privileged helper's process is still root outside (unmapped inside): it becomes the
    // build user now, after the bounding set is emptied and before the other sets are.
    confine::drop_bounding_capabilities()?;
    if rustix::process::getuid().as_raw() != plan.uid || rustix::process::getgid().as_raw() != plan.gid {
        let gid = rustix::process::Gid::from_raw(plan.gid);
        let uid = rustix::process::Uid::from_raw(plan.uid);
        rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(|e| format!("setgid failed: {e}"))?;
        rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(|e| format!("setuid failed: {e}"))?;
    }
    let log = std::io::stderr().as_fd().try_clone_to_owned().map_err(|e| format!("duplicating stderr: {e}"))?;
    let mut command = Command::new(OsStr::from_bytes(&request.builder));
    command
        .args(request.args.iter().map(|a| OsStr::from_bytes(a)))
        .env_clear()
        .envs(request.env.iter().map(|(k, v)| (OsStr::from_bytes(k), OsStr::from_bytes(v))))
        .current_dir(&plan.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log));
    confine::drop_capabilities()?;
    confine::install_seccomp(&plan.seccomp)?;
    let e = command.exec();
    Err(format!("executing '{}': {e}", String::from_utf8_lossy(&request.builder)))
}
