//! `casnix-daemon`: serves Nix clients on the daemon socket (see the library's documentation).

// `store::StoreError` is large; it is made once per failed request.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use daemon::listen;
use daemon::locations::{Backend, Locations};
use daemon::peer::Trust;
use daemon::session::{self, Shared};
use daemon::settings::{RawSettings, Settings};
use daemon::store_mount::StoreMount;
use daemon::version::version_line;

/// casnix-daemon: a drop-in replacement for nix-daemon. With no arguments it serves the store
/// at NIX_STORE_DIR (/nix/store) on the socket NIX_DAEMON_SOCKET_PATH
/// (/nix/var/nix/daemon-socket/socket), configured by NIX_CONF_DIR/nix.conf.
#[derive(Debug, Parser)]
#[command(name = "casnix-daemon", disable_version_flag = true)]
struct Args {
    /// Print the version and exit.
    #[arg(long)]
    version: bool,
    /// Serve one session on standard input and output (as `ssh-ng://` uses it).
    #[arg(long)]
    stdio: bool,
    /// Trust every client.
    #[arg(long, conflicts_with = "force_untrusted")]
    force_trusted: bool,
    /// Trust no client.
    #[arg(long)]
    force_untrusted: bool,
    /// The store to serve: `local`, a directory (a chroot store), `local?root=…`, or
    /// `daemon`/`unix://PATH` to forward to another daemon. Wins over NIX_REMOTE.
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    /// The store directory (overrides NIX_STORE_DIR).
    #[arg(long, value_name = "DIR")]
    store_dir: Option<String>,
    /// The state directory (overrides NIX_STATE_DIR).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The socket to listen on (overrides NIX_DAEMON_SOCKET_PATH).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Set a nix.conf setting, as Nix's `--option NAME VALUE`.
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append)]
    option: Vec<String>,
    /// Accepted for compatibility with `nix daemon` (`--daemon` is implied).
    #[arg(long, hide = true)]
    daemon: bool,
}

fn locations(args: &Args) -> anyhow::Result<(Locations, Backend)> {
    let mut locations = Locations::from_env();
    if let Some(dir) = &args.store_dir {
        locations.store_dir = dir.clone();
    }
    if let Some(dir) = &args.state_dir {
        locations.socket = dir.join("daemon-socket").join("socket");
        locations.state_dir = dir.clone();
    }
    if let Some(socket) = &args.socket {
        locations.socket = socket.clone();
    }
    let url = match &args.store {
        Some(url) => url.clone(),
        // As nix-daemon: a daemon serves its local store unless told otherwise; NIX_REMOTE
        // only matters for --stdio (where `daemon` means forwarding to the running one).
        None if args.stdio => std::env::var("NIX_REMOTE").unwrap_or_default(),
        None => String::new(),
    };
    let backend = locations.apply_store_url(&url)?;
    Ok((locations, backend))
}

fn settings(args: &Args, locations: &Locations) -> anyhow::Result<Settings> {
    let nix_config = std::env::var("NIX_CONFIG").ok();
    let mut raw = RawSettings::load(&locations.conf_dir, nix_config.as_deref())
        .with_context(|| format!("reading '{}'", locations.conf_dir.join("nix.conf").display()))?;
    for pair in args.option.chunks(2) {
        if let [name, value] = pair {
            raw.set(name, value);
        }
    }
    Ok(Settings::from_raw(raw)?)
}

/// A read-only store (NixOS mounts it so) is remounted writable in a private mount namespace,
/// as Nix does for every process running as root.
fn make_store_writable(args: &Args) -> anyhow::Result<()> {
    let (locations, backend) = locations(args)?;
    if backend != Backend::Local {
        return Ok(());
    }
    let real = locations.real_store_dir.clone().unwrap_or_else(|| PathBuf::from(&locations.store_dir));
    if daemon::store_mount::make_store_writable(&real)? == StoreMount::Remounted {
        tracing::info!(store = %real.display(), "the store is on a read-only mount: remounted writable for the daemon");
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (locations, backend) = locations(&args)?;
    let settings = settings(&args, &locations)?;
    let forced = match (args.force_trusted, args.force_untrusted) {
        (true, _) => Some(Trust::Trusted),
        (_, true) => Some(Trust::Untrusted),
        _ => None,
    };
    let socket = locations.socket.clone();
    let shared = Arc::new(Shared::new(settings, locations, forced));
    if args.stdio {
        let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
        return match backend {
            Backend::Local => session::serve(stdio, None, &shared).await,
            Backend::Proxy(target) => listen::proxy(stdio, &target).await,
        };
    }
    // Fail early, with a clear message, when the store cannot be opened at all.
    // and clean up after adds that a crash interrupted (once, not per connection).
    if backend == Backend::Local {
        let store = session::open_store(&shared.locations).await.context("opening the store")?;
        let recovered = tokio::task::spawn_blocking(move || store.recover()).await?;
        match recovered {
            Ok(r) => tracing::debug!(?r, "recovered"),
            Err(e) => tracing::warn!("cleaning up after interrupted adds: {e}"),
        }
    }
    let listener = listen::bind(&socket)?;
    tracing::info!(socket = %socket.display(), "casnix-daemon listening");
    listen::run(listener, backend, shared).await
}

fn main() -> std::process::ExitCode {
    // The `native` sandbox's helper is this executable run with its own arguments (it must
    // start while the process has a single thread).
    if let Some(code) = sandbox::native::helper::dispatch() {
        std::process::exit(code);
    }
    let args = Args::parse();
    if args.version {
        println!("{}", version_line());
        return std::process::ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // Before any thread starts: a mount namespace is unshared per thread.
    if let Err(e) = make_store_writable(&args) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    store::descriptors::raise_descriptor_limit();
    // Each connection holds a blocking-pool thread for its life (its own runtime runs there).
    let runtime = match tokio::runtime::Builder::new_multi_thread().max_blocking_threads(4096).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
