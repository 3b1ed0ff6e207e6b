//! `ClientConnection` offering older protocol versions to the real Nix 2.8 `nix-daemon`, which
//! then speaks them: `AddToStore` before 1.25 (an inline NAR, text by `AddTextToStore`),
//! `AddToStoreNar` pulled with `STDERR_READ` (1.21, 1.22) and inline (1.20), `AddMultipleToStore`
//! as single additions before 1.32, and derived paths in their old form before 1.30. The results
//! must equal those at the daemon's own version. These tests need Nix installed
//! (`scripts/test-all.sh` installs it) and fail without it.

mod nix_env;

use std::collections::BTreeSet;

use nix_env::*;
use nix_formats::derived_path::DerivedPath;
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::path_info::ValidPathInfo;
use worker_protocol::ops::request::add::{CaMethodAlgo, IngestionMethod};
use worker_protocol::types::BuildMode;
use worker_protocol::ProtocolVersion;

fn nar_of(contents: &[u8]) -> Vec<u8> {
    let mut w = nix_formats::nar::Writer::new(Vec::new());
    w.regular_bytes(true, contents).unwrap();
    w.finish().unwrap()
}

const METHODS: [CaMethodAlgo; 4] = [
    CaMethodAlgo { method: IngestionMethod::Nar, algo: Algorithm::Sha256 },
    CaMethodAlgo { method: IngestionMethod::Nar, algo: Algorithm::Sha1 },
    CaMethodAlgo { method: IngestionMethod::Flat, algo: Algorithm::Sha256 },
    CaMethodAlgo { method: IngestionMethod::Text, algo: Algorithm::Sha256 },
];

#[tokio::test]
async fn older_versions_give_the_same_results() {
    let nix = NixDaemon::start().await;
    let store = nix.store_dir();

    // The reference: every method at the daemon's own version.
    let mut newest = nix.connect().await;
    assert_eq!(newest.version(), ProtocolVersion::new(1, 34));
    let mut reference = Vec::new();
    for (i, method) in METHODS.iter().enumerate() {
        let data = match method.method {
            IngestionMethod::Nar => nar_of(format!("script {i}\n").as_bytes()),
            _ => format!("data {i}\n").into_bytes(),
        };
        let info = newest.add_to_store(&format!("item-{i}"), *method, &BTreeSet::new(), false, &mut &data[..]).await.unwrap();
        reference.push((data, info));
    }
    drop(newest);

    for minor in [20, 21, 22, 24, 30] {
        let mut c = nix.connect_at(ProtocolVersion::new(1, minor)).await;
        assert_eq!(c.version(), ProtocolVersion::new(1, minor));
        for (i, (method, (data, expected))) in METHODS.iter().zip(&reference).enumerate() {
            let info = c.add_to_store(&format!("item-{i}"), *method, &BTreeSet::new(), false, &mut &data[..]).await.unwrap();
            assert_eq!(info.path, expected.path, "1.{minor} {method}");
            assert_eq!((&info.nar_hash, info.nar_size, &info.ca), (&expected.nar_hash, expected.nar_size, &expected.ca), "1.{minor} {method}");
        }

        // AddToStoreNar in the version's form, then AddMultipleToStore (one by one before 1.32).
        let nar = nar_of(format!("imported at 1.{minor}\n").as_bytes());
        let path = store.make_fixed_output_path(&format!("nar-{minor}"), true, &Hash::of(Algorithm::Sha256, &nar), [], false).unwrap();
        let mut info = ValidPathInfo::new(path, Hash::of(Algorithm::Sha256, &nar));
        info.nar_size = nar.len() as u64;
        let mut with_tail = nar.clone();
        with_tail.extend_from_slice(b"trailing bytes stay unread");
        let mut source = &with_tail[..];
        c.add_to_store_nar(&info, &mut source, false, true).await.unwrap();
        assert_eq!(source, b"trailing bytes stay unread");
        assert_eq!(nix.nix_bytes("nix-store", &["--dump", &nix.print(&info.path)]).await, nar);
        let got = c.query_path_info(&info.path).await.unwrap().unwrap();
        nix.assert_info_matches_nix(&got).await;

        let nars = [nar_of(format!("first {minor}").as_bytes()), nar_of(format!("second {minor}").as_bytes())];
        let items: Vec<_> = nars
            .iter()
            .enumerate()
            .map(|(k, nar)| {
                let name = format!("multi-{minor}-{k}");
                let hash = Hash::of(Algorithm::Sha256, nar);
                let mut info = ValidPathInfo::new(store.make_fixed_output_path(&name, true, &hash, [], false).unwrap(), hash);
                info.nar_size = nar.len() as u64;
                (info, &nar[..])
            })
            .collect();
        let paths: BTreeSet<_> = items.iter().map(|(info, _)| info.path.clone()).collect();
        c.add_multiple_to_store(items, false, true).await.unwrap();
        assert_eq!(c.query_valid_paths(&paths, false).await.unwrap(), paths);

        // NarFromPath and an opaque "build" (a valid path needs nothing) in the old forms.
        let mut dumped = Vec::new();
        c.nar_from_path(&info.path, &mut dumped).await.unwrap();
        assert_eq!(dumped, nar);
        c.build_paths(&[DerivedPath::Opaque(info.path.clone())], BuildMode::Normal).await.unwrap();
    }
}
