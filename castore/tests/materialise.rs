//! Materialisation: canonical metadata, hardlinks into the pool, sharing, copies across file
//! systems, atomicity.
#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use castore::{Castore, MaterialiseError, Node};
use common::Spec;

fn file(contents: &[u8], executable: bool) -> Spec {
    Spec::File { contents: contents.to_vec(), executable }
}

fn dir(entries: Vec<(&str, Spec)>) -> Spec {
    Spec::Dir(entries.into_iter().map(|(n, s)| (n.as_bytes().to_vec(), s)).collect::<BTreeMap<_, _>>())
}

fn sample() -> Spec {
    dir(vec![
        ("bin", dir(vec![("tool", file(b"#!/bin/sh\necho hi\n", true))])),
        ("share", dir(vec![("a.txt", file(b"same\n", false)), ("b.txt", file(b"same\n", false)), ("empty", dir(vec![]))])),
        ("link", Spec::Symlink(b"share/a.txt".to_vec())),
        ("setuid-ish", file(b"mode bits beyond 0755 are dropped\n", true)),
    ])
}

/// Checks canonical metadata of everything under `path`.
fn assert_canonical(path: &Path) {
    let meta = fs::symlink_metadata(path).unwrap();
    assert_eq!(meta.mtime(), 1, "{}", path.display());
    let mode = meta.mode() & 0o7777;
    if meta.is_dir() {
        assert_eq!(mode, 0o555, "{}", path.display());
        for entry in fs::read_dir(path).unwrap() {
            assert_canonical(&entry.unwrap().path());
        }
    } else if meta.is_file() {
        assert!(mode == 0o444 || mode == 0o555, "{} has mode {mode:o}", path.display());
    }
}

#[test]
fn materialised_trees_are_canonical_and_share_inodes_with_the_pool() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    common::write(&sample(), &source);
    fs::set_permissions(source.join("setuid-ish"), fs::Permissions::from_mode(0o6755)).unwrap();
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let root = store.ingest_path(&source).unwrap().root;

    let first = tmp.path().join("first");
    store.materialise_atomically(&root, &first).unwrap();
    assert_canonical(&first);
    assert_eq!(common::dump(&first), common::dump(&source));
    assert_eq!(fs::symlink_metadata(first.join("setuid-ish")).unwrap().mode() & 0o7777, 0o555);
    assert_eq!(fs::read_link(first.join("link")).unwrap(), Path::new("share/a.txt"));

    // Identical files share the pool's inode: a.txt, b.txt and the pool entry.
    let a = fs::metadata(first.join("share/a.txt")).unwrap();
    let b = fs::metadata(first.join("share/b.txt")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 3);
    let Node::Directory { .. } = root else { panic!("root is not a directory") };

    // A second tree sharing a file shares the inode too; a third, materialised, as well.
    let other_source = tmp.path().join("other-src");
    common::write(&dir(vec![("copy.txt", file(b"same\n", false)), ("tool", file(b"#!/bin/sh\necho hi\n", true))]), &other_source);
    let other = store.ingest_path(&other_source).unwrap().root;
    let second = tmp.path().join("second");
    store.materialise(&other, &second).unwrap();
    assert_canonical(&second);
    assert_eq!(fs::metadata(second.join("copy.txt")).unwrap().ino(), a.ino());
    assert_eq!(fs::metadata(first.join("share/a.txt")).unwrap().nlink(), 4);
    let tool = fs::metadata(second.join("tool")).unwrap();
    assert_eq!(tool.ino(), fs::metadata(first.join("bin/tool")).unwrap().ino());
    assert_eq!(tool.mode() & 0o7777, 0o555);

    // Deleting the trees frees the blobs.
    castore::remove_tree(&first).unwrap();
    castore::remove_tree(&second).unwrap();
    assert!(!first.exists() && !second.exists());
    let stats = store.blobs().sweep_unused().unwrap();
    assert_eq!(stats.files, 3);
}

#[test]
fn existing_destinations_are_refused_and_nothing_is_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    common::write(&sample(), &source);
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let root = store.ingest_path(&source).unwrap().root;
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    assert!(matches!(store.materialise_atomically(&root, &dest), Err(MaterialiseError::DestinationExists(_))));
    assert!(matches!(store.materialise(&root, &dest), Err(MaterialiseError::DestinationExists(_))));
    fs::remove_dir(&dest).unwrap();

    // A missing blob fails the materialisation, and the temporary tree is removed.
    let Node::Directory { digest, size } = root else { panic!("root is not a directory") };
    let closure = castore::DirectoryService::closure(store.directories(), &digest, size).unwrap();
    assert!(closure.len() >= 4);
    for (_, directory) in closure.iter() {
        for (_, node) in directory.entries() {
            if let Node::File { digest, .. } = node {
                store.blobs().remove_if_unused(digest).unwrap();
            }
        }
    }
    assert!(store.materialise_atomically(&root, &dest).is_err());
    let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}"); // src and castore only
}

#[test]
fn other_file_systems_get_copies() {
    let shm = Path::new("/dev/shm");
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("src");
    common::write(&sample(), &source);
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let root = store.ingest_path(&source).unwrap().root;
    let pool_dev = fs::metadata(tmp.path()).unwrap().dev();
    let Ok(target_parent) = tempfile::tempdir_in(shm) else { return };
    if fs::metadata(target_parent.path()).unwrap().dev() == pool_dev {
        return; // Same file system here: nothing to test.
    }
    let dest = target_parent.path().join("tree");
    store.materialise_atomically(&root, &dest).unwrap();
    assert_canonical(&dest);
    assert_eq!(common::dump(&dest), common::dump(&source));
    assert_eq!(fs::metadata(dest.join("share/a.txt")).unwrap().nlink(), 1);
    castore::remove_tree(&dest).unwrap();

    // A root file that cannot be linked is copied beside its destination and renamed.
    let file_root = store.ingest_path(&source.join("share/a.txt")).unwrap().root;
    let dest = target_parent.path().join("file");
    store.materialise_atomically(&file_root, &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), fs::read(source.join("share/a.txt")).unwrap());
    assert_eq!(fs::metadata(&dest).unwrap().nlink(), 1);
    assert_canonical(&dest);
    assert_eq!(fs::read_dir(target_parent.path()).unwrap().count(), 1);
}

#[test]
fn root_files_and_symlinks_materialise() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, b"contents").unwrap();
    let root = store.ingest_path(&file).unwrap().root;
    let dest = tmp.path().join("g");
    store.materialise_atomically(&root, &dest).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"contents");
    assert_canonical(&dest);
    let link = tmp.path().join("l");
    std::os::unix::fs::symlink("f", &link).unwrap();
    let root = store.ingest_path(&link).unwrap().root;
    let dest = tmp.path().join("m");
    store.materialise_atomically(&root, &dest).unwrap();
    assert_eq!(fs::read_link(&dest).unwrap(), Path::new("f"));
    assert_eq!(fs::symlink_metadata(&dest).unwrap().mtime(), 1);
}

#[test]
fn root_files_and_symlinks_share_the_pool_inode_and_replace_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, b"contents").unwrap();
    let file_root = store.ingest_path(&file).unwrap().root;
    let link = tmp.path().join("l");
    std::os::unix::fs::symlink("f", &link).unwrap();
    let link_root = store.ingest_path(&link).unwrap().root;

    // The file is the pool's inode, and nothing but the two names is left.
    let (g, m) = (out.join("g"), out.join("m"));
    store.materialise_many_atomically(&[(&file_root, &g), (&link_root, &m)]).unwrap();
    assert!(fs::metadata(&g).unwrap().nlink() >= 2);
    assert_canonical(&g);
    assert_eq!(fs::read_link(&m).unwrap(), Path::new("f"));
    let mut names: Vec<_> = fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["g", "m"]);

    // Existing destinations, of either kind, are refused and left as they were.
    fs::write(out.join("x"), b"mine").unwrap();
    std::os::unix::fs::symlink("elsewhere", out.join("y")).unwrap();
    for (root, dest) in [(&file_root, out.join("x")), (&link_root, out.join("x")), (&file_root, out.join("y")), (&link_root, out.join("y"))] {
        assert!(matches!(store.materialise_atomically(root, &dest), Err(MaterialiseError::DestinationExists(_))));
    }
    assert_eq!(fs::read(out.join("x")).unwrap(), b"mine");
    assert_eq!(fs::read_link(out.join("y")).unwrap(), Path::new("elsewhere"));
    assert_eq!(fs::read_dir(&out).unwrap().count(), 4);
}

#[test]
fn versions_of_a_tree_share_everything_but_their_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let files = 100;
    let mut roots = Vec::new();
    for version in 0..10u64 {
        let source = tmp.path().join(format!("v{version}"));
        fs::create_dir(&source).unwrap();
        for i in 0..files {
            // File `version - 1` changes in each version (1% of the files).
            let seed = if i + 1 == version as usize { 1000 + version } else { i as u64 };
            fs::write(source.join(format!("f{i}")), common::noise(20_000, seed)).unwrap();
        }
        let root = store.ingest_path(&source).unwrap().root;
        store.materialise_atomically(&root, &tmp.path().join(format!("store-v{version}"))).unwrap();
        roots.push(root);
        castore::remove_tree(&source).unwrap();
    }
    // 100 blobs for the first version, one more for each later one.
    let mut pool_bytes = 0;
    let mut pool_files = 0;
    for fan_out in fs::read_dir(tmp.path().join("castore/blobs")).unwrap() {
        let fan_out = fan_out.unwrap().path();
        if fan_out.ends_with("tmp") {
            continue;
        }
        for blob in fs::read_dir(fan_out).unwrap() {
            pool_files += 1;
            pool_bytes += blob.unwrap().metadata().unwrap().len();
        }
    }
    assert_eq!(pool_files, files + 9);
    assert_eq!(pool_bytes, (files as u64 + 9) * 20_000);
    // Every materialised file is one of the pool's inodes.
    let inodes: std::collections::HashSet<u64> = (0..10)
        .flat_map(|v| {
            let dir = tmp.path().join(format!("store-v{v}"));
            (0..files).map(move |i| fs::metadata(dir.join(format!("f{i}"))).unwrap().ino())
        })
        .collect();
    assert_eq!(inodes.len(), files + 9);
    assert_eq!(roots.iter().collect::<std::collections::HashSet<_>>().len(), 10);
}

#[test]
fn several_trees_materialise_together_and_a_failure_leaves_no_temporaries() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut roots = Vec::new();
    for n in 0..5 {
        let source = tmp.path().join(format!("src{n}"));
        common::write(
            &dir(vec![
                ("n", file(format!("{n}\n").as_bytes(), false)),
                ("sub", sample()),
            ]),
            &source,
        );
        roots.push((store.ingest_path(&source).unwrap().root, source));
    }
    let dests: Vec<_> = (0..5).map(|n| out.join(format!("t{n}"))).collect();
    let items: Vec<(&Node, &Path)> = roots
        .iter()
        .zip(&dests)
        .map(|((root, _), d)| (root, d.as_path()))
        .collect();
    store.materialise_many_atomically(&items[..3]).unwrap();
    for (n, dest) in dests.iter().enumerate().take(3) {
        assert_canonical(dest);
        assert_eq!(common::dump(dest), common::dump(&roots[n].1));
    }
    // t3 is built, then t1 is found in place: nothing of t3 and t1's new tree is left behind.
    let err = store
        .materialise_many_atomically(&[items[3], items[1]])
        .unwrap_err();
    assert!(
        matches!(err, MaterialiseError::DestinationExists(_)),
        "{err}"
    );
    let mut names: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["t0", "t1", "t2"]);
    store.materialise_many_atomically(&[]).unwrap();
}

#[test]
fn staged_blobs_are_readable_before_the_flush_and_after_it() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let store = Castore::open(tmp.path().join("castore")).unwrap();
    let mut nar = Vec::new();
    let contents = common::noise(3000, 7);
    let mut writer = nix_formats::nar::Writer::new(&mut nar);
    writer
        .regular(false, contents.len() as u64, &mut contents.as_slice())
        .unwrap();
    writer.finish().unwrap();
    let staged = store.ingest_nar_staged(nar.as_slice()).unwrap();
    let Node::File { digest, .. } = staged.ingested.root else {
        panic!("not a file")
    };
    assert!(
        !castore::BlobService::has(store.blobs(), &digest).unwrap(),
        "flushed before the commit"
    );
    let read = |store: &Castore| {
        let mut bytes = Vec::new();
        castore::BlobService::open_read(store.blobs(), &digest)
            .unwrap()
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    };
    assert_eq!(read(&store), contents);
    store.commit_staged([&staged]).unwrap();
    assert!(castore::BlobService::has(store.blobs(), &digest).unwrap());
    assert_eq!(read(&store), contents);
}
