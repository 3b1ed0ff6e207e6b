//! `casnix store ...`: commands that talk to a store daemon over the worker protocol (Nix's
//! own `nix-daemon` or casnix's), each a thin layer over `worker_protocol`'s `ClientConnection`.
//!
//! The store is chosen by `--store` (`daemon`, `unix://PATH`, `local`), else by `NIX_REMOTE`,
//! else the default socket (see [`connect`]); `local` opens casnix's own store in this process
//! (see [`local`]). Each command runs on a current-thread tokio runtime of its
//! own.

mod add;
pub(super) mod bridge;
pub(super) mod connect;
mod gc;
mod info;
mod local;
mod nar;
mod path_info;
mod paths;

use anyhow::Result;
use clap::{Args, Subcommand};

/// The store subcommands with their common options.
#[derive(Args)]
pub struct StoreArgs {
    /// The store to talk to: `daemon` (the default socket), `unix://PATH`, or `local` (casnix's
    /// own store in `NIX_STORE_DIR`/`NIX_STATE_DIR`, opened in this process). Defaults to
    /// `NIX_REMOTE`, then to the default socket (`NIX_DAEMON_SOCKET_PATH`, else
    /// `$NIX_STATE_DIR/daemon-socket/socket`, else `/nix/var/nix/daemon-socket/socket`).
    #[arg(long, global = true, value_name = "URL")]
    store: Option<String>,
    #[command(subcommand)]
    command: StoreCommand,
}

/// The store subcommands.
#[derive(Subcommand)]
pub(super) enum StoreCommand {
    /// Check that the store can be reached and show its version and trust (like `nix store info`).
    #[command(alias = "info")]
    Ping(info::PingArgs),
    /// Add a file or directory to the store and print its path (like `nix-store --add`).
    Add(add::AddArgs),
    /// Show information about store paths (like `nix path-info`).
    #[command(name = "path-info")]
    PathInfo(path_info::PathInfoArgs),
    /// Print a file inside a store path (like `nix store cat`).
    Cat(nar::CatArgs),
    /// Write the NAR serialisation of a store path to standard output (like `nix-store --dump`).
    Dump(nar::DumpArgs),
    /// Collect garbage, or list roots, live or dead paths (like `nix-store --gc`).
    Gc(gc::GcArgs),
    /// Delete store paths that are not alive (like `nix-store --delete`).
    Delete(gc::DeleteArgs),
    /// Check the store's consistency (like `nix-store --verify`).
    Verify(gc::VerifyArgs),
}

/// Runs a store subcommand.
pub fn run(args: StoreArgs) -> Result<()> {
    if local::is_local(args.store.as_deref()) {
        return local::run(args.command);
    }
    let location = connect::StoreLocation::resolve(args.store.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async move {
        match args.command {
            StoreCommand::Ping(a) => info::ping(&location, a).await,
            StoreCommand::Add(a) => add::add(&location, a).await,
            StoreCommand::PathInfo(a) => path_info::path_info(&location, a).await,
            StoreCommand::Cat(a) => nar::cat(&location, a).await,
            StoreCommand::Dump(a) => nar::dump(&location, a).await,
            StoreCommand::Gc(a) => gc::gc(&location, a).await,
            StoreCommand::Delete(a) => gc::delete(&location, a).await,
            StoreCommand::Verify(a) => gc::verify(&location, a).await,
        }
    })
}
