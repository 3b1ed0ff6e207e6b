//! `AddMultipleToStore`: small paths are added in batches, large ones streamed; a batch with a
//! bad path fails with its error and leaves the connection usable.

#![allow(clippy::unwrap_used)]

mod common;

use common::{nar_path, Daemon};

/// More than one batch holds (32 MiB), so this NAR is streamed into the store on its own.
const LARGE: usize = 33 << 20;

#[tokio::test(flavor = "current_thread")]
async fn small_paths_batch_large_ones_stream_and_duplicates_are_skipped() {
    let daemon = Daemon::start("");
    let store_dir = daemon.store_dir();
    let mut conn = daemon.connect().await;
    let mut items = Vec::new();
    for n in 0..300 {
        items.push(nar_path(
            &store_dir,
            &format!("small-{n}"),
            format!("small path {n}\n").as_bytes(),
        ));
    }
    let large: Vec<u8> = (0..LARGE).map(|i| (i % 251) as u8).collect();
    items.insert(150, nar_path(&store_dir, "large", &large));
    // The same path twice in one request: Nix skips the second as valid already.
    items.push(items[3].clone());
    let paths: Vec<_> = items.iter().map(|(info, _)| info.path.clone()).collect();
    let large_nar_size = items[150].0.nar_size;
    assert!(large_nar_size > LARGE as u64);
    let sources: Vec<_> = items
        .into_iter()
        .map(|(info, nar)| (info, std::io::Cursor::new(nar)))
        .collect();
    conn.add_multiple_to_store(sources, false, false)
        .await
        .unwrap();
    for path in &paths {
        let info = conn.query_path_info(path).await.unwrap();
        assert!(info.is_some(), "{path} is not valid");
    }
    let large_info = conn.query_path_info(&paths[150]).await.unwrap().unwrap();
    assert_eq!(
        large_info.nar_size, large_nar_size,
        "NAR size of the large path"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_bad_path_fails_the_request_and_the_connection_goes_on() {
    let daemon = Daemon::start("");
    let store_dir = daemon.store_dir();
    let mut conn = daemon.connect().await;
    let good = nar_path(&store_dir, "good", b"good\n");
    let (mut bad_info, bad_nar) = nar_path(&store_dir, "bad", b"bad\n");
    bad_info.nar_hash = good.0.nar_hash.clone();
    let after = nar_path(&store_dir, "after", b"after\n");
    let items = vec![good.clone(), (bad_info.clone(), bad_nar), after.clone()];
    let sources: Vec<_> = items
        .into_iter()
        .map(|(info, nar)| (info, std::io::Cursor::new(nar)))
        .collect();
    let err = conn
        .add_multiple_to_store(sources, false, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("hash mismatch"), "{err}");
    assert!(conn
        .query_path_info(&bad_info.path)
        .await
        .unwrap()
        .is_none());
    // Still usable: the same paths, correct this time, are added.
    let fixed = nar_path(&store_dir, "bad", b"bad\n");
    let sources: Vec<_> = [good, fixed, after]
        .into_iter()
        .map(|(info, nar)| (info, std::io::Cursor::new(nar)))
        .collect();
    conn.add_multiple_to_store(sources, false, false)
        .await
        .unwrap();
    assert!(conn
        .query_path_info(&bad_info.path)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "current_thread")]
async fn a_nar_longer_than_its_info_says_is_refused() {
    let daemon = Daemon::start("");
    let store_dir = daemon.store_dir();
    let mut conn = daemon.connect().await;
    let first = nar_path(&store_dir, "first", b"first\n");
    let (mut short_info, nar) = nar_path(&store_dir, "understated", b"some contents\n");
    short_info.nar_size -= 8;
    let sources = vec![
        (first.0.clone(), std::io::Cursor::new(first.1.clone())),
        (short_info.clone(), std::io::Cursor::new(nar)),
    ];
    let err = conn
        .add_multiple_to_store(sources, false, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("size"), "{err}");
    assert!(conn
        .query_path_info(&short_info.path)
        .await
        .unwrap()
        .is_none());
    // The path before it was complete and is added, as Nix adds it.
    assert!(conn.query_path_info(&first.0.path).await.unwrap().is_some());
}

/// A path whose one file names `previous`, which it refers to.
fn chain_link(
    store_dir: &nix_formats::store_path::StoreDir,
    n: usize,
    previous: Option<&nix_formats::store_path::StorePath>,
) -> (nix_formats::path_info::ValidPathInfo, Vec<u8>) {
    let contents = match previous {
        Some(p) => format!("link {n} after {}\n", store_dir.print(p)),
        None => "the first link\n".to_owned(),
    };
    let references: Vec<_> = previous.into_iter().cloned().collect();
    common::nar_path_referring(store_dir, &format!("link-{n}"), contents.as_bytes(), &references)
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_chain_is_added_batch_after_batch_with_its_references() {
    // Several batches (each started while the next is read): every path refers to the one
    // before it, so a batch registered before the one it refers to would show.
    let daemon = Daemon::start("");
    let store_dir = daemon.store_dir();
    let mut conn = daemon.connect().await;
    let mut items: Vec<(nix_formats::path_info::ValidPathInfo, Vec<u8>)> = Vec::new();
    for n in 0..400 {
        let previous = items.last().map(|(info, _)| info.path.clone());
        items.push(chain_link(&store_dir, n, previous.as_ref()));
    }
    let last = items.last().unwrap().0.path.clone();
    let sources: Vec<_> = items.iter().map(|(info, nar)| (info.clone(), std::io::Cursor::new(nar.clone()))).collect();
    conn.add_multiple_to_store(sources, false, false).await.unwrap();
    for (info, _) in &items {
        let stored = conn.query_path_info(&info.path).await.unwrap().unwrap();
        assert_eq!(stored.references, info.references, "{}", info.path);
    }
    let closure = common::ok(daemon.nix("nix-store").args(["-qR", &store_dir.print(&last)]));
    assert_eq!(closure.lines().count(), 400);
    assert_eq!(common::ok(daemon.nix("nix-store").args(["--verify", "--check-contents"])), "");
}

#[tokio::test(flavor = "current_thread")]
async fn a_bad_path_in_a_later_batch_fails_the_request_after_the_earlier_batches() {
    let daemon = Daemon::start("");
    let store_dir = daemon.store_dir();
    let mut conn = daemon.connect().await;
    let mut items: Vec<_> = (0..300).map(|n| nar_path(&store_dir, &format!("p-{n}"), format!("{n}\n").as_bytes())).collect();
    let good_hash = items[0].0.nar_hash.clone();
    items[200].0.nar_hash = good_hash;
    let sources: Vec<_> = items.iter().map(|(info, nar)| (info.clone(), std::io::Cursor::new(nar.clone()))).collect();
    let err = conn.add_multiple_to_store(sources, false, false).await.unwrap_err();
    assert!(err.to_string().contains("hash mismatch"), "{err}");
    assert!(conn.query_path_info(&items[200].0.path).await.unwrap().is_none());
    // The first batch (started before the bad path was even read) was added, as Nix adds the
    // paths before a bad one; the connection goes on.
    assert!(conn.query_path_info(&items[0].0.path).await.unwrap().is_some());
    assert!(conn.is_valid_path(&items[299].0.path).await.is_ok());
}
