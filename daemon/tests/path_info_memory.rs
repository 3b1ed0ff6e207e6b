//! A connection's memory of path infos (as Nix's daemon keeps one per connection): repeated
//! questions are answered from it, and any change of the store through the daemon, by any
//! connection, makes every connection ask the database again.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{ok, Daemon};

/// Adds a file with Nix's client, as a process of its own that is gone afterwards (so no
/// temporary root of a live client keeps the path).
fn add_with_nix(daemon: &Daemon, name: &str, contents: &[u8]) -> nix_formats::store_path::StorePath {
    let file = daemon.file(name, contents);
    let printed = ok(daemon.nix("nix-store").arg("--add").arg(&file));
    daemon.store_dir().parse(printed.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_by_another_connection_is_seen_at_once() {
    let daemon = Daemon::start("");
    let path = add_with_nix(&daemon, "doomed", b"deleted by another client");
    let mut conn = daemon.connect().await;
    assert!(conn.query_path_info(&path).await.unwrap().is_some());
    assert!(conn.is_valid_path(&path).await.unwrap());

    ok(daemon.nix("nix-store").arg("--delete").arg(daemon.store_dir().print(&path)));
    assert_eq!(conn.query_path_info(&path).await.unwrap(), None);
    assert!(!conn.is_valid_path(&path).await.unwrap());
    assert!(conn.query_references(&path).await.is_err(), "an invalid path has no references");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_questions_are_answered_from_memory_until_the_store_changes() {
    let daemon = Daemon::start("");
    let path = add_with_nix(&daemon, "remembered", b"deleted behind the daemon's back");
    let mut conn = daemon.connect().await;
    let info = conn.query_path_info(&path).await.unwrap().unwrap();

    // Deleted by a process that writes the database itself: the daemon cannot know, so the
    // connection that asked before answers from memory, as Nix's daemon does; a new
    // connection reads the database.
    let mut local = daemon.nix("nix-store");
    local.env("NIX_REMOTE", "local").arg("--delete").arg(daemon.store_dir().print(&path));
    ok(&mut local);
    assert_eq!(conn.query_path_info(&path).await.unwrap(), Some(info));
    assert!(conn.is_valid_path(&path).await.unwrap());
    let mut fresh = daemon.connect().await;
    assert_eq!(fresh.query_path_info(&path).await.unwrap(), None);

    // Any change through the daemon, here another connection's add, ends the memory.
    fresh.add_text_to_store("unrelated", b"a change", &BTreeSet::new()).await.unwrap();
    assert_eq!(conn.query_path_info(&path).await.unwrap(), None);
    assert!(!conn.is_valid_path(&path).await.unwrap());
}
