//! `casnix store dump PATH` and `casnix store cat PATH/FILE`: a store path's NAR from the
//! daemon (`NarFromPath`), written out whole, or searched for one regular file.

use std::io::{BufReader, Read, Write};

use anyhow::{bail, Context, Result};
use clap::Args;
use nix_formats::nar::{Event, Limits, Reader};
use tokio::io::AsyncWriteExt;

use super::bridge;
use super::connect::{daemon_error, StoreLocation};
use super::paths::{parse_in_store, parse_store_path, require_valid};

/// Options of `casnix store dump`.
#[derive(Args)]
pub struct DumpArgs {
    /// The store path (or a symlink to it).
    pub(super) path: String,
}

/// Options of `casnix store cat`.
#[derive(Args)]
pub struct CatArgs {
    /// A file inside a store path, such as `/nix/store/…-hello/bin/hello`.
    pub(super) path: String,
}

/// Writes the NAR of the path to stdout (`nix-store --dump`, `nix store dump-path`).
pub async fn dump(location: &StoreLocation, args: DumpArgs) -> Result<()> {
    let mut conn = location.connect().await?;
    let path = parse_store_path(conn.store_dir(), &args.path)?;
    require_valid(&mut conn, &path).await?;
    let mut out = tokio::io::stdout();
    conn.nar_from_path(&path, &mut out).await.map_err(daemon_error)?;
    out.flush().await?;
    Ok(())
}

/// The components of a path inside a store path (`/a//b/./c/../d` is `a/b/d`).
pub(super) fn components(rest: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            name => out.push(name),
        }
    }
    out
}

/// Writes the contents of the regular file at `wanted` inside the NAR read from `source` to
/// stdout. `shown` names it in errors.
pub(super) fn extract(source: impl Read, wanted: &[u8], shown: &str) -> Result<()> {
    let mut reader = Reader::new(BufReader::with_capacity(64 << 10, source), Limits::default());
    loop {
        // What the event says, kept apart from the borrow of the reader.
        let kind = match reader.next().context("invalid NAR from the daemon")? {
            None => bail!("path '{shown}' does not exist"),
            Some(Event::Entry { .. }) => continue,
            Some(Event::Regular { .. }) => true,
            Some(_) => false,
        };
        if reader.path() != wanted {
            continue;
        }
        if !kind {
            bail!("path '{shown}' is not a regular file");
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        std::io::copy(&mut reader.contents(), &mut out)?;
        out.flush()?;
        return Ok(());
    }
}

/// Prints a regular file inside a store path (`nix store cat`). Symlinks are not followed.
pub async fn cat(location: &StoreLocation, args: CatArgs) -> Result<()> {
    let mut conn = location.connect().await?;
    let (path, rest) = parse_in_store(conn.store_dir(), &args.path)?;
    require_valid(&mut conn, &path).await?;
    let wanted = components(&rest).join("/").into_bytes();
    let shown = args.path.clone();
    let (mut sink, consumer) = bridge::consume(move |source| extract(source, &wanted, &shown));
    let streamed = conn.nar_from_path(&path, &mut sink).await;
    sink.shutdown().await?;
    streamed.map_err(daemon_error)?;
    consumer.await.context("the extracting thread failed")?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;

    #[test]
    fn path_components() {
        assert_eq!(components(""), Vec::<&str>::new());
        assert_eq!(components("/a//b/./c/../d/"), ["a", "b", "d"]);
        assert_eq!(components("/../x"), ["x"]);
    }

    #[test]
    fn finding_files() {
        let mut w = nix_formats::nar::Writer::new(Vec::new());
        w.start_directory().unwrap();
        w.entry(b"bin").unwrap();
        w.start_directory().unwrap();
        w.entry(b"hello").unwrap();
        w.regular_bytes(true, b"#!/bin/sh\n").unwrap();
        w.end_directory().unwrap();
        w.entry(b"link").unwrap();
        w.symlink(b"bin/hello").unwrap();
        w.end_directory().unwrap();
        let nar = w.finish().unwrap();
        assert!(extract(&nar[..], b"bin", "x/bin").unwrap_err().to_string().contains("is not a regular file"));
        assert!(extract(&nar[..], b"link", "x/link").unwrap_err().to_string().contains("is not a regular file"));
        assert!(extract(&nar[..], b"bin/nope", "x/bin/nope").unwrap_err().to_string().contains("does not exist"));
        assert!(extract(&nar[..], b"", "x").unwrap_err().to_string().contains("is not a regular file"));
    }
}
