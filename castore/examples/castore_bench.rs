//! Throughput of castore's main operations on a given tree (a measuring tool, not a test).
//!
//! Usage: `cargo run --release -p castore --example castore_bench -- TREE SCRATCH_DIR [unsynced]`
//!
//! Ingests TREE into a fresh castore under SCRATCH_DIR, then times: NAR hash from the castore,
//! NAR rendering, NAR ingest (of the rendered NAR, from a file) into a second fresh castore,
//! re-ingesting the tree (all blobs present), and atomic materialisation.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::time::Instant;

use castore::{Castore, CastoreConfig, Durability};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(tree), Some(scratch)) = (args.next(), args.next()) else {
        return Err("usage: castore_bench TREE SCRATCH_DIR".into());
    };
    let (tree, scratch) = (PathBuf::from(tree), PathBuf::from(scratch));
    let durability = match args.next() {
        Some(arg) if arg == "unsynced" => Durability::Unsynced,
        _ => Durability::Synced,
    };
    let open = |name: &str| {
        let mut config = CastoreConfig::new(scratch.join(name));
        config.durability = durability;
        Castore::open_with(config)
    };
    println!("durability: {durability:?}");
    std::fs::create_dir_all(&scratch)?;
    let timed = |what: &str, start: Instant, bytes: u64| {
        let secs = start.elapsed().as_secs_f64();
        println!("{what:<28} {secs:>7.3} s  {:>8.1} MiB/s", bytes as f64 / secs / (1 << 20) as f64);
    };

    let store = open("a")?;
    let start = Instant::now();
    let ingested = store.ingest_path(&tree)?;
    let (root, hash, size) = (ingested.root, ingested.nar_hash, ingested.nar_size);
    timed("ingest_path (new blobs)", start, size);
    println!("  root {root:?}\n  nar {hash} ({size} bytes)");

    let start = Instant::now();
    assert_eq!(store.nar_hash(&root)?, (hash.clone(), size));
    timed("nar_hash", start, size);

    let start = Instant::now();
    let root2 = store.ingest_path(&tree)?.root;
    timed("ingest_path (blobs present)", start, size);
    assert_eq!(root, root2);

    let nar_path = scratch.join("tree.nar");
    let start = Instant::now();
    store.render_nar(&root, BufWriter::new(File::create(&nar_path)?))?;
    timed("render_nar to file", start, size);

    let other = open("b")?;
    let start = Instant::now();
    let ingested = other.ingest_nar(BufReader::with_capacity(1 << 20, File::open(&nar_path)?))?;
    timed("ingest_nar (new blobs)", start, size);
    assert_eq!(ingested.root, root);
    assert_eq!((ingested.nar_hash, ingested.nar_size), (hash, size));

    let dest = scratch.join("materialised");
    let start = Instant::now();
    store.materialise_atomically(&root, &dest)?;
    timed("materialise_atomically", start, size);
    castore::remove_tree(&dest)?;
    castore::remove_tree(&scratch.join("a"))?;
    castore::remove_tree(&scratch.join("b"))?;
    std::fs::remove_file(nar_path)?;
    Ok(())
}
