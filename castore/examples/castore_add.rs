//! Adds a tree the way a store would: ingest it (blobs, directories, NAR hash) and materialise it
//! by hardlinks under `SCRATCH/store/`. For timing against `nix-store --add` (not a test).
//!
//! Usage: `castore_add TREE SCRATCH_DIR [unsynced] [nar]` — with `nar`, TREE is a NAR file to
//! ingest instead of a directory.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

use castore::{Castore, CastoreConfig, Durability};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [tree, scratch, flags @ ..] = args.as_slice() else {
        return Err("usage: castore_add TREE SCRATCH_DIR [unsynced] [nar]".into());
    };
    let (tree, scratch) = (PathBuf::from(tree), PathBuf::from(scratch));
    let mut config = CastoreConfig::new(scratch.join("castore"));
    if flags.iter().any(|f| f == "unsynced") {
        config.durability = Durability::Unsynced;
    }
    let store = Castore::open_with(config)?;
    let start = Instant::now();
    let ingested = if flags.iter().any(|f| f == "nar") {
        store.ingest_nar(BufReader::with_capacity(1 << 20, File::open(&tree)?))?
    } else {
        store.ingest_path(&tree)?
    };
    let ingest = start.elapsed();
    std::fs::create_dir_all(scratch.join("store"))?;
    let dest = scratch.join("store").join(format!("{}-tree", &ingested.nar_hash.to_nix32()[..32]));
    if !dest.exists() {
        store.materialise_atomically(&ingested.root, &dest)?;
    }
    println!(
        "{} {} bytes; ingest {:.3} s, total {:.3} s",
        ingested.nar_hash,
        ingested.nar_size,
        ingest.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
