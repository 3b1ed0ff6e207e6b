//! The subcommands, one module each.

mod daemon_io;
mod derivation;
mod eval;
mod eval_env;
mod filtered_nar;
mod hash;
mod instantiate;
mod key;
mod nar;
mod narinfo;
mod repl;
mod store;
mod store_path;

use clap::Subcommand;

/// Every top-level subcommand.
#[derive(Subcommand)]
pub enum Command {
    /// Compute and convert hashes (like `nix-hash` and `nix hash`).
    #[command(subcommand)]
    Hash(hash::HashCommand),
    /// Compute store paths without adding anything (like `nix-store --add`).
    #[command(subcommand, name = "store-path")]
    StorePath(store_path::StorePathCommand),
    /// Pack, unpack and list NAR archives (like `nix-store --dump/--restore`, `nix nar ls`).
    #[command(subcommand)]
    Nar(nar::NarCommand),
    /// Show derivations (like `nix derivation show`).
    #[command(subcommand)]
    Derivation(derivation::DerivationCommand),
    /// Generate signing keys (like `nix key`).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Sign and verify `.narinfo` files.
    #[command(subcommand)]
    Narinfo(narinfo::NarInfoCommand),
    /// Evaluate a Nix expression (like `nix-instantiate --eval`).
    Eval(eval::EvalArgs),
    /// Evaluate and write store derivations through the daemon (like `nix-instantiate`).
    Instantiate(instantiate::InstantiateArgs),
    /// Evaluate, build through the daemon and link the results (like `nix-build`).
    Build(instantiate::BuildArgs),
    /// Evaluate expressions interactively (like `nix repl`).
    Repl(repl::ReplArgs),
    /// Talk to a store daemon (like `nix store`, `nix path-info`, `nix-store --gc`).
    Store(store::StoreArgs),
}

/// Runs one subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Hash(c) => hash::run(c),
        Command::StorePath(c) => store_path::run(c),
        Command::Nar(c) => nar::run(c),
        Command::Derivation(c) => derivation::run(c),
        Command::Key(c) => key::run(c),
        Command::Narinfo(c) => narinfo::run(c),
        Command::Store(c) => store::run(c),
        Command::Instantiate(c) => instantiate::run_instantiate(c),
        Command::Build(c) => instantiate::run_build(c),
        Command::Repl(c) => repl::run(c),
        Command::Eval(c) => {
            let code = eval::run(c)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
    }
}
