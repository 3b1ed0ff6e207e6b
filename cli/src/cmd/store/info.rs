//! `casnix store ping` (alias `info`): connects and prints what Nix 2.26's `nix store info`
//! prints, followed by the negotiated protocol version.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde_json::{Map, Value};
use worker_protocol::types::TrustedFlag;

use super::connect::StoreLocation;

/// Options of `casnix store ping`.
#[derive(Args)]
pub struct PingArgs {
    /// Print a JSON object (`url`, `version`, `trusted`, as Nix 2.26) instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints the store URL, the daemon's Nix version (if it sent one), whether it trusts us (if it
/// said), and the protocol version.
///
/// Nix prints the lines as notices on stderr; casnix prints them on stdout, where scripts can
/// read them. `Trusted` is `1` or `0` as Nix prints it.
pub async fn ping(location: &StoreLocation, args: PingArgs) -> Result<()> {
    let conn = location.connect().await?;
    let version = conn.daemon_nix_version();
    let trusted = conn.remote_trusts_us().map(|t| t == TrustedFlag::Trusted);
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut obj = Map::new();
        obj.insert("url".into(), location.url.clone().into());
        if let Some(v) = version {
            obj.insert("version".into(), v.into());
        }
        if let Some(t) = trusted {
            obj.insert("trusted".into(), t.into());
        }
        writeln!(out, "{}", Value::Object(obj))?;
        return Ok(());
    }
    writeln!(out, "Store URL: {}", location.url)?;
    if let Some(v) = version {
        writeln!(out, "Version: {v}")?;
    }
    if let Some(t) = trusted {
        writeln!(out, "Trusted: {}", u8::from(t))?;
    }
    writeln!(out, "Protocol: {}", conn.version())?;
    Ok(())
}
