//! `casnix key generate|public`: `nix key generate-secret` and `nix key convert-secret-to-public`.

use std::io::{self, Read};

use anyhow::{Context, Result};
use clap::Subcommand;
use nix_formats::signature::SecretKey;

/// The key subcommands.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Print a new ed25519 secret key named NAME (`name:base64`).
    Generate {
        /// The key's name, conventionally the cache's host name and a number (`cache.example.org-1`).
        name: String,
    },
    /// Read a secret key on standard input and print its public key.
    Public,
}

/// The most we read from standard input for one key.
const MAX_KEY_INPUT: u64 = 64 * 1024;

/// Runs a key subcommand.
pub fn run(command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Generate { name } => {
            let key = SecretKey::generate(&name).context("cannot generate a key")?;
            println!("{}", key.to_text());
        }
        KeyCommand::Public => {
            let mut text = String::new();
            io::stdin()
                .take(MAX_KEY_INPUT)
                .read_to_string(&mut text)
                .context("cannot read the secret key from standard input")?;
            let key = SecretKey::parse(text.trim()).context("invalid secret key")?;
            println!("{}", key.public());
        }
    }
    Ok(())
}
