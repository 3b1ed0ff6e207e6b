//! `casnix`: the command-line tool of casnix.
//!
//! Each subcommand lives in its own module under `cmd/` and mirrors a Nix command; this file only
//! parses arguments, dispatches, and turns errors into one line on stderr and a non-zero exit.

mod alloc;
mod cmd;

use clap::Parser;

/// mimalloc instead of glibc's malloc (`alloc.rs` says why).
#[global_allocator]
static GLOBAL: alloc::MiMalloc = alloc::MiMalloc;

/// casnix: a content-addressed Nix store, daemon and evaluator.
#[derive(Parser)]
#[command(name = "casnix", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() {
    let cli = Cli::parse();
    // Local-store adds keep a descriptor per blob until the flush.
    store::descriptors::raise_descriptor_limit();
    if let Err(e) = cmd::run(cli.command) {
        if is_broken_pipe(&e) {
            std::process::exit(141);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// `casnix nar pack DIR | head` must end quietly, as Nix's tools do.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
