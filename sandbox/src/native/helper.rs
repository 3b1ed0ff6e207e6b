//! `casnix-build-sandbox`: the single-threaded helper the `native` backend runs for each build
//! (the daemon is multi-threaded, so it never forks itself into namespaces).
//!
//! The helper (outside) reads the [`HelperRequest`], creates the namespaces, waits for the
//! backend to write the id maps, then runs itself again with [`INSIDE_ARG`]: that process is
//! PID 1 of the new PID namespace (with the helper's capabilities passed on as ambient ones);
//! it sets the root up, drops every capability, installs the seccomp filter and becomes the
//! builder. The helper waits for it and ends the same way.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use super::protocol::{HelperRequest, GO, HELPER_ARG, INSIDE_ARG, NO_NAMESPACES, SETUP_ERROR, UNSHARED};
use super::{confine, setup, sys};

/// The exit code of a helper that could not set the sandbox up.
const SETUP_FAILED: i32 = 125;

/// For programs that embed the helper: when the first argument is [`HELPER_ARG`] or
/// [`INSIDE_ARG`], runs the helper and returns its exit code; `None` otherwise. Must be called
/// first thing in `main`, while the process has one thread.
pub fn dispatch() -> Option<i32> {
    let first = std::env::args_os().nth(1)?;
    (first == HELPER_ARG || first == INSIDE_ARG).then(main)
}

/// The helper's entry point; returns its exit code (or does not return: it ends as its builder
/// ended, or becomes the builder).
pub fn main() -> i32 {
    if std::env::args_os().nth(1).is_some_and(|a| a == INSIDE_ARG) {
        return inside();
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
    let encoded = serde_json::to_vec(&request).map_err(|e| format!("encoding the request: {e}"))?;
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
    confine::pass_capabilities_on()?;
    let exe = std::env::current_exe().map_err(|e| format!("finding the helper's executable: {e}"))?;
    let mut first = Command::new(exe)
        .arg(INSIDE_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the sandbox's first process: {e}"))?;
    let mut child_in = first.stdin.take().ok_or("no pipe to the sandbox")?;
    let mut child_out = first.stdout.take().ok_or("no pipe from the sandbox")?;
    // A failed write means the process ended; its status says why.
    let _ = child_in.write_all(&encoded).and_then(|()| child_in.write_all(b"\n"));
    drop(child_in);
    let mut error = String::new();
    let _ = child_out.read_to_string(&mut error);
    let exit = first.wait().map_err(|e| format!("waiting for the sandbox: {e}"))?;
    if !error.trim().is_empty() {
        return Err(error.trim().to_owned());
    }
    if let Some(signal) = exit.signal() {
        // Ends the same way (nothing here handles signals, so the default action applies).
        if let Some(signal) = rustix::process::Signal::from_named_raw(signal) {
            let _ = rustix::process::kill_process(rustix::process::getpid(), signal);
        }
        return Ok(128 + signal);
    }
    Ok(exit.code().unwrap_or(SETUP_FAILED))
}

/// The sandbox's first process: sets the sandbox up and becomes the builder. Errors go to
/// stdout, which the helper reads until the builder starts.
fn inside() -> i32 {
    let error = match become_builder() {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let mut out = std::io::stdout();
    let _ = out.write_all(error.as_bytes());
    let _ = out.flush();
    SETUP_FAILED
}

fn become_builder() -> Result<std::convert::Infallible, String> {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let request = read_request(&mut BufReader::new(std::io::stdin().lock()))?;
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
