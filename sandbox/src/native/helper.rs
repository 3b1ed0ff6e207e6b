//! `casnix-build-sandbox`: the single-threaded helper of the `native` backend (the daemon is
//! multi-threaded, so it never forks itself into namespaces). It runs as the zygote
//! ([`super::zygote`]), which forks one process per build running [`build`] here, or in its
//! expose mode ([`super::expose`]).
//!
//! A build's process (outside) reads the [`HelperRequest`] and forks into new namespaces: the
//! child is PID 1 of the new PID namespace (with the namespaces' capabilities); once the
//! parent wrote the id maps, it sets the root up, drops every capability, installs the seccomp
//! filter and becomes the builder. The build's process waits for it and reports how it ended.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::confine::CompiledFilter;
use super::protocol::{HelperRequest, HELPER_ARG, NO_NAMESPACES, SETUP_ERROR, STATUS, UNSHARED, ZYGOTE_ARG};
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

/// The helper's entry point: the zygote with [`ZYGOTE_ARG`], the expose mode with
/// [`super::expose::EXPOSE_ARG`]; returns its exit code.
pub fn main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(at) = args.iter().position(|a| a == super::expose::EXPOSE_ARG) {
        return super::expose::main(&args[at + 1..]);
    }
    if args.iter().any(|a| a == ZYGOTE_ARG) {
        return super::zygote::main();
    }
    eprintln!("casnix-build-sandbox: the native sandbox backend runs this with '{ZYGOTE_ARG}' or '{}'", super::expose::EXPOSE_ARG);
    2
}

/// One build's process, forked by the zygote: talks to the backend on `control`, gives the
/// builder `log` as its stdout and stderr, loads `filter` when it is the plan's. Does not
/// return.
pub fn build(control: OwnedFd, log: OwnedFd, filter: Option<&CompiledFilter>) -> ! {
    let control = UnixStream::from(control);
    let mut status = &control;
    let line = match outside(BufReader::new(&control), &control, log, filter) {
        Ok(wait_status) => format!("{STATUS}{wait_status}\n"),
        Err(message) => format!("{SETUP_ERROR}{}\n", message.replace('\n', " ")),
    };
    let _ = status.write_all(line.as_bytes());
    drop(control);
    sys::exit_now(0)
}

fn read_request(input: &mut impl BufRead) -> Result<HelperRequest, String> {
    let mut line = Vec::new();
    input.read_until(b'\n', &mut line).map_err(|e| format!("reading the request: {e}"))?;
    if line.is_empty() {
        return Err("the backend sent no request".into());
    }
    serde_json::from_slice(&line).map_err(|e| format!("decoding the request: {e}"))
}

/// The build's process outside: forks the sandbox's first process into new namespaces,
/// writes their id maps (as Nix's parent does), tells the backend the process ids, and
/// returns the first process's raw wait status once it ended.
fn outside(mut input: impl BufRead, mut status: impl Write, log: OwnedFd, filter: Option<&CompiledFilter>) -> Result<i32, String> {
    let request = read_request(&mut input)?;
    drop(input);
    // Supplementary groups cannot be changed once the maps deny it; a privileged helper drops
    // them now (an unprivileged one keeps them, unmapped, as Nix's builders do).
    if rustix::process::geteuid().is_root() {
        let _ = rustix::thread::set_thread_groups(&[]);
    }
    let (mut wait_for_maps, maps_written) = std::io::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    let (mut errors, error_pipe) = std::io::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    // The helper has one thread, so forking is safe: the child is PID 1 of the new PID
    // namespace, with every capability in the new user namespace.
    let forked = sys::fork_into(sys::Namespaces { network: !request.plan.network }).map_err(|e| {
        format!(
            "{NO_NAMESPACES}cannot create the build sandbox's namespaces ({e}); user namespaces may be disabled \
             (see /proc/sys/user/max_user_namespaces), or use 'sandbox = false'"
        )
    })?;
    let pid = match forked {
        sys::Forked::Child => {
            drop((errors, maps_written));
            // Nothing can be done before the id maps exist.
            let mut byte = [0u8; 1];
            if !matches!(wait_for_maps.read(&mut byte), Ok(1)) {
                sys::exit_now(SETUP_FAILED);
            }
            drop(wait_for_maps);
            inside(&request, log, filter, error_pipe)
        }
        sys::Forked::Parent(pid) => pid,
    };
    drop((wait_for_maps, error_pipe));
    // Only the sandbox holds the log pipe now: it closes when the sandbox is gone.
    drop(log);
    let kill = || {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        let _ = sys::wait(pid);
    };
    if let Err(e) = write_id_maps(pid, &request.plan) {
        kill();
        return Err(e);
    }
    // Held until the status is sent, so that the sandbox's mounts are torn down afterwards.
    let mount_namespace = std::fs::File::open(format!("/proc/{pid}/ns/mnt"));
    let mut maps_written = maps_written;
    if let Err(e) = maps_written.write_all(b"g") {
        kill();
        return Err(format!("starting the sandbox: {e}"));
    }
    drop(maps_written);
    let own = rustix::process::getpid().as_raw_nonzero();
    writeln!(status, "{UNSHARED}{own} {pid}").and_then(|()| status.flush()).map_err(|e| format!("reporting: {e}"))?;
    // Set-up errors come through the pipe, which closes (close-on-exec) when the builder runs.
    let mut error = String::new();
    let _ = errors.read_to_string(&mut error);
    let wait_status = sys::wait(pid).map_err(|e| format!("waiting for the sandbox: {e}"))?;
    std::mem::forget(mount_namespace);
    if !error.trim().is_empty() {
        return Err(error.trim().to_owned());
    }
    Ok(wait_status)
}

/// Writes the id maps of the user namespace of process `pid`.
fn write_id_maps(pid: libc::pid_t, plan: &crate::plan::SandboxPlan) -> Result<(), String> {
    let lines = |maps: &[crate::plan::IdMap]| maps.iter().map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count)).collect::<String>();
    let write = |name: &str, contents: String| {
        std::fs::write(format!("/proc/{pid}/{name}"), contents).map_err(|e| format!("writing /proc/{pid}/{name}: {e}"))
    };
    write("uid_map", lines(&plan.uid_map))?;
    write("setgroups", "deny".into())?;
    write("gid_map", lines(&plan.gid_map))
}

/// The sandbox's first process (forked by the build's process): sets the sandbox up and
/// becomes the builder. An error goes to `errors` and the process ends.
fn inside(request: &HelperRequest, log: OwnedFd, filter: Option<&CompiledFilter>, mut errors: std::io::PipeWriter) -> ! {
    let error = match become_builder(request, log, filter) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = errors.write_all(error.as_bytes());
    drop(errors);
    sys::exit_now(SETUP_FAILED)
}

fn become_builder(request: &HelperRequest, log: OwnedFd, filter: Option<&CompiledFilter>) -> Result<std::convert::Infallible, String> {
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
    let stdout = log.try_clone().map_err(|e| format!("duplicating the log descriptor: {e}"))?;
    let mut command = Command::new(OsStr::from_bytes(&request.builder));
    command
        .args(request.args.iter().map(|a| OsStr::from_bytes(a)))
        .env_clear()
        .envs(request.env.iter().map(|(k, v)| (OsStr::from_bytes(k), OsStr::from_bytes(v))))
        .current_dir(&plan.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(log));
    confine::drop_capabilities()?;
    confine::install_seccomp(&plan.seccomp, filter)?;
    let e = command.exec();
    Err(format!("executing '{}': {e}", String::from_utf8_lossy(&request.builder)))
}
