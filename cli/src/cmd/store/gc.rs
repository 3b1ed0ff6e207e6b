//! `casnix store gc`, `casnix store delete` and `casnix store verify`: garbage collection and
//! store checks through the daemon, printed as `nix-store --gc`, `--delete` and `--verify` do.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::{bail, Result};
use clap::Args;
use worker_protocol::ops::request::gc::{CollectGarbage, GcAction};
use worker_protocol::ops::response::GcResult;

use super::connect::{daemon_error, StoreLocation};
use super::paths::parse_store_path;

/// Options of `casnix store gc`.
#[derive(Args)]
pub struct GcArgs {
    /// Stop after freeing this many bytes (a number, optionally with K, M, G or T).
    #[arg(long = "max-freed", alias = "max", value_name = "N", value_parser = parse_size)]
    pub(super) max_freed: Option<u64>,
    /// List the roots (`LINK -> PATH`) instead of collecting.
    #[arg(long, group = "what")]
    pub(super) print_roots: bool,
    /// List the live paths instead of collecting.
    #[arg(long, group = "what")]
    pub(super) print_live: bool,
    /// List the dead paths instead of collecting.
    #[arg(long, group = "what")]
    pub(super) print_dead: bool,
}

/// Options of `casnix store delete`.
#[derive(Args)]
pub struct DeleteArgs {
    /// The store paths to delete (each must be dead).
    #[arg(required = true)]
    pub(super) paths: Vec<String>,
}

/// Options of `casnix store verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Check that the contents of every path match their NAR hashes.
    #[arg(long)]
    pub(super) check_contents: bool,
    /// Repair what is broken (the daemon allows it for trusted clients only).
    #[arg(long)]
    pub(super) repair: bool,
}

/// A byte count as Nix reads one: digits and an optional K, M, G or T (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'K') => (&text[..text.len() - 1], 10),
        Some(b'M') => (&text[..text.len() - 1], 20),
        Some(b'G') => (&text[..text.len() - 1], 30),
        Some(b'T') => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    // Nix takes a negative number as 0.
    if let Some(negative) = digits.strip_prefix('-') {
        if negative.parse::<u64>().is_ok() {
            return Ok(0);
        }
    }
    let n: u64 = digits.parse().map_err(|_| format!("'{text}' is not a byte count"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("'{text}' is too large"))
}

/// Nix's summary line: `N store paths deleted, X.XX MiB freed`.
fn freed_text(result: &GcResult) -> String {
    let mib = result.bytes_freed as f64 / (1024.0 * 1024.0);
    format!("{} store paths deleted, {mib:.2} MiB freed", result.paths.len())
}

pub(super) fn print_freed(result: &GcResult) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{}", freed_text(result))?;
    Ok(())
}

/// Collects garbage (or lists roots, live or dead paths).
pub async fn gc(location: &StoreLocation, args: GcArgs) -> Result<()> {
    let mut conn = location.connect().await?;
    if args.print_roots {
        let roots = conn.find_roots().await.map_err(daemon_error)?;
        // By link, then path, as Nix sorts them.
        let lines: BTreeSet<(String, String)> = roots
            .iter()
            .flat_map(|(target, links)| links.iter().map(|l| (l.clone(), conn.store_dir().print(target))))
            .collect();
        let mut out = std::io::stdout().lock();
        for (link, target) in lines {
            writeln!(out, "{link} -> {target}")?;
        }
        return Ok(());
    }
    let action = match (args.print_live, args.print_dead) {
        (true, _) => GcAction::ReturnLive,
        (_, true) => GcAction::ReturnDead,
        _ => GcAction::DeleteDead,
    };
    let options = CollectGarbage {
        action,
        paths_to_delete: BTreeSet::new(),
        ignore_liveness: false,
        max_freed: args.max_freed.unwrap_or(u64::MAX),
    };
    let result = conn.collect_garbage(&options).await.map_err(daemon_error)?;
    if action == GcAction::DeleteDead {
        return print_freed(&result);
    }
    let mut out = std::io::stdout().lock();
    for path in &result.paths {
        writeln!(out, "{path}")?;
    }
    Ok(())
}

/// Deletes the given paths if they are dead.
pub async fn delete(location: &StoreLocation, args: DeleteArgs) -> Result<()> {
    let mut conn = location.connect().await?;
    let mut paths = BTreeSet::new();
    for arg in &args.paths {
        paths.insert(parse_store_path(conn.store_dir(), arg)?);
    }
    let result = conn.delete_paths(&paths).await.map_err(daemon_error)?;
    print_freed(&result)
}

/// Checks the store; fails if errors remain.
pub async fn verify(location: &StoreLocation, args: VerifyArgs) -> Result<()> {
    let mut conn = location.connect().await?;
    let errors = conn.verify_store(args.check_contents, args.repair).await.map_err(daemon_error)?;
    if errors {
        bail!("not all store errors were fixed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("3G"), Ok(3 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("-5"), Ok(0));
        assert!(parse_size("").is_err() && parse_size("K").is_err() && parse_size("12x").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn freed_line() {
        // Nix prints two decimals of MiB.
        let result = GcResult { paths: ["a".into(), "b".into()].into(), bytes_freed: 1_572_864 };
        assert_eq!(freed_text(&result), "2 store paths deleted, 1.50 MiB freed");
        assert_eq!(freed_text(&GcResult::default()), "0 store paths deleted, 0.00 MiB freed");
    }
}
