//! Round trips between the writer, the reader, the file system and a reference encoder, and the
//! reader's rejections of malformed archives.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::hash::{Algorithm, Hash};

/// An in-memory file system tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tree {
    Regular { executable: bool, contents: Vec<u8> },
    Symlink { target: Vec<u8> },
    Directory(BTreeMap<Vec<u8>, Tree>),
}

fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
    while out.len() % 8 != 0 {
        out.push(0);
    }
}

/// The reference encoder: the grammar written out directly.
pub(crate) fn encode(tree: &Tree) -> Vec<u8> {
    fn node(out: &mut Vec<u8>, tree: &Tree) {
        push_str(out, b"(");
        push_str(out, b"type");
        match tree {
            Tree::Regular { executable, contents } => {
                push_str(out, b"regular");
                if *executable {
                    push_str(out, b"executable");
                    push_str(out, b"");
                }
                push_str(out, b"contents");
                push_str(out, contents);
            }
            Tree::Symlink { target } => {
                push_str(out, b"symlink");
                push_str(out, b"target");
                push_str(out, target);
            }
            Tree::Directory(entries) => {
                push_str(out, b"directory");
                for (name, child) in entries {
                    for t in [&b"entry"[..], b"(", b"name", name, b"node"] {
                        push_str(out, t);
                    }
                    node(out, child);
                    push_str(out, b")");
                }
            }
        }
        push_str(out, b")");
    }
    let mut out = Vec::new();
    push_str(&mut out, MAGIC);
    node(&mut out, tree);
    out
}

pub(crate) fn write_with_writer(tree: &Tree) -> Vec<u8> {
    fn node(w: &mut Writer<&mut Vec<u8>>, tree: &Tree, streamed: bool) {
        match tree {
            Tree::Regular { executable, contents } if streamed => {
                w.regular(*executable, contents.len() as u64, &mut &contents[..]).unwrap()
            }
            Tree::Regular { executable, contents } => w.regular_bytes(*executable, contents).unwrap(),
            Tree::Symlink { target } => w.symlink(target).unwrap(),
            Tree::Directory(entries) => {
                w.start_directory().unwrap();
                for (i, (name, child)) in entries.iter().enumerate() {
                    w.entry(name).unwrap();
                    node(w, child, i % 2 == 0);
                }
                w.end_directory().unwrap();
            }
        }
    }
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    node(&mut w, tree, true);
    w.finish().unwrap();
    out
}

/// Reads one node (whose first event is `first`) with the reader.
fn read_node<R: Read>(reader: &mut Reader<R>) -> Result<Tree, ReadError> {
    match reader.next()?.expect("a node event") {
        Event::Regular { executable, size } => {
            let mut contents = Vec::new();
            reader.contents().read_to_end(&mut contents).map_err(ReadError::Io)?;
            assert_eq!(contents.len() as u64, size);
            Ok(Tree::Regular { executable, contents })
        }
        Event::Symlink { target } => Ok(Tree::Symlink { target: target.to_vec() }),
        Event::DirectoryStart => {
            let mut entries = BTreeMap::new();
            loop {
                let name = match reader.next()?.expect("entry or end") {
                    Event::Entry { name } => name.to_vec(),
                    Event::DirectoryEnd => return Ok(Tree::Directory(entries)),
                    other => panic!("unexpected {other:?}"),
                };
                let child = read_node(reader)?;
                entries.insert(name, child);
            }
        }
        other => panic!("unexpected {other:?}"),
    }
}

pub(crate) fn read_tree(bytes: &[u8]) -> Result<(Tree, u64), ReadError> {
    let mut reader = Reader::new(Cursor::new(bytes), Limits::default());
    let tree = read_node(&mut reader)?;
    assert!(reader.next()?.is_none());
    assert!(reader.is_done());
    Ok((tree, reader.position()))
}

fn arb_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z]{1,3}".prop_map(String::into_bytes),
        "[A-Za-z0-9._~ -]{1,12}".prop_map(String::into_bytes),
        "[äöü日本]{1,3}".prop_map(String::into_bytes),
        proptest::collection::vec(1u8..=255, 1..6),
    ]
    .prop_filter("valid entry name", |n| is_valid_entry_name(n))
}

fn arb_tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(executable, contents)| Tree::Regular { executable, contents }),
        (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..3000))
            .prop_map(|(executable, contents)| Tree::Regular { executable, contents }),
        proptest::collection::vec(1u8..=255, 1..30).prop_map(|target| Tree::Symlink { target }),
        Just(Tree::Directory(BTreeMap::new())),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        proptest::collection::btree_map(arb_name(), inner, 0..6).prop_map(Tree::Directory)
    })
}

pub(crate) fn materialize(tree: &Tree, path: &Path) {
    match tree {
        Tree::Regular { executable, contents } => {
            std::fs::write(path, contents).unwrap();
            let mode = if *executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        Tree::Symlink { target } => {
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path).unwrap()
        }
        Tree::Directory(entries) => {
            std::fs::create_dir(path).unwrap();
            for (name, child) in entries {
                materialize(child, &path.join(std::ffi::OsStr::from_bytes(name)));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn writer_matches_reference_and_reader_round_trips(tree in arb_tree()) {
        let bytes = write_with_writer(&tree);
        prop_assert_eq!(&bytes, &encode(&tree));
        let mut with_trailer = bytes.clone();
        with_trailer.extend_from_slice(b"sentinel");
        let (back, position) = read_tree(&with_trailer).unwrap();
        prop_assert_eq!(back, tree);
        prop_assert_eq!(position, bytes.len() as u64);

        let (hash, size) = validate_and_hash(Cursor::new(&with_trailer), Algorithm::Sha256, &Limits::default()).unwrap();
        prop_assert_eq!(hash, Hash::of(Algorithm::Sha256, &bytes));
        prop_assert_eq!(size, bytes.len() as u64);
        let mut copied = Vec::new();
        prop_assert_eq!(copy(Cursor::new(&with_trailer), &mut copied, &Limits::default()).unwrap(), size);
        prop_assert_eq!(copied, bytes);
    }

    #[test]
    fn file_system_round_trip(tree in arb_tree()) {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        materialize(&tree, &source);
        let mut dumped = Vec::new();
        dump_path(&source, &mut dumped).unwrap();
        prop_assert_eq!(&dumped, &encode(&tree));
        let restored = dir.path().join("restored");
        restore(Cursor::new(&dumped), &restored, &Limits::default()).unwrap();
        let mut again = Vec::new();
        dump_path(&restored, &mut again).unwrap();
        prop_assert_eq!(again, dumped);
    }

    #[test]
    fn mutated_archives_never_panic(tree in arb_tree(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = encode(&tree);
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let _ = list(Cursor::new(&bytes), &Limits::default());
    }

    #[test]
    fn every_strict_prefix_is_truncated(tree in arb_tree()) {
        let bytes = encode(&tree);
        for cut in (0..bytes.len()).step_by(3) {
            let err = list(Cursor::new(&bytes[..cut]), &Limits::default()).unwrap_err();
            prop_assert!(err.is_truncated(), "cut {}: {}", cut, err);
        }
    }
}

fn tokens(tokens: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        push_str(&mut out, t);
    }
    out
}

fn read_err(bytes: &[u8]) -> ReadError {
    read_err_with(bytes, Limits::default())
}

fn read_err_with(bytes: &[u8], limits: Limits) -> ReadError {
    list(Cursor::new(bytes), &limits).unwrap_err()
}

const HEAD: &[&[u8]] = &[MAGIC, b"(", b"type"];

fn nar(rest: &[&[u8]]) -> Vec<u8> {
    let mut all = HEAD.to_vec();
    all.extend_from_slice(rest);
    tokens(&all)
}

#[test]
fn rejects_bad_magic() {
    assert!(matches!(read_err(&tokens(&[b"nix-archive-2"])), ReadError::NotANar));
    assert!(matches!(read_err(&tokens(&[b"nix-archive-11"])), ReadError::NotANar));
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"nix-archive-1");
    assert!(matches!(read_err(&huge), ReadError::NotANar));
    assert!(read_err(b"").is_truncated());
}

#[test]
fn rejects_unknown_tags_and_types() {
    assert!(matches!(read_err(&nar(&[b"fifo", b")"])), ReadError::UnknownFileType { got } if got == b"fifo"));
    assert!(matches!(
        read_err(&tokens(&[MAGIC, b"[", b"type"])),
        ReadError::BadTag { expected: "(", got } if got == b"["
    ));
    assert!(matches!(
        read_err(&nar(&[b"symlink", b"targets", b"x", b")"])),
        ReadError::BadTag { expected: "target", .. }
    ));
    assert!(matches!(
        read_err(&nar(&[b"directory", b"entri"])),
        ReadError::BadTag { expected: "entry' or ')", .. }
    ));
    assert!(matches!(
        read_err(&nar(&[b"regular", b"contents", b"x", b"executable", b""])),
        ReadError::BadTag { expected: ")", got } if got == b"executable"
    ));
    assert!(matches!(read_err(&nar(&[b"regular", b"executable", b"yes"])), ReadError::NonEmptyExecutableMarker));
    let long_tag = [b'a'; MAX_TAG_LEN + 1];
    assert!(matches!(read_err(&nar(&[&long_tag])), ReadError::TooLong { what: Field::Tag, len: 33, max: 32 }));
    // A tag of exactly the maximum length is read (and then found unknown).
    assert!(matches!(read_err(&nar(&[&long_tag[..MAX_TAG_LEN]])), ReadError::UnknownFileType { .. }));
}

#[test]
fn rejects_bad_symlink_targets() {
    assert!(matches!(read_err(&nar(&[b"symlink", b"target", b"", b")"])), ReadError::InvalidSymlinkTarget { .. }));
    assert!(matches!(read_err(&nar(&[b"symlink", b"target", b"a\0b", b")"])), ReadError::InvalidSymlinkTarget { .. }));
    let long = vec![b'x'; MAX_TARGET_LEN + 1];
    assert!(matches!(
        read_err(&nar(&[b"symlink", b"target", &long, b")"])),
        ReadError::TooLong { what: Field::SymlinkTarget, .. }
    ));
    let ok = vec![b'x'; MAX_TARGET_LEN];
    list(Cursor::new(nar(&[b"symlink", b"target", &ok, b")"])), &Limits::default()).unwrap();
}

fn dir_with_names(names: &[&[u8]]) -> Vec<u8> {
    let mut all: Vec<&[u8]> = HEAD.to_vec();
    all.push(b"directory");
    for name in names {
        all.extend_from_slice(&[b"entry", b"(", b"name", name, b"node", b"(", b"type", b"directory", b")", b")"]);
    }
    all.push(b")");
    tokens(&all)
}

#[test]
fn checks_names_and_their_order() {
    list(Cursor::new(dir_with_names(&[b"a", b"b", b"\xff"])), &Limits::default()).unwrap();
    assert!(matches!(
        read_err(&dir_with_names(&[b"b", b"a"])),
        ReadError::UnsortedOrDuplicate { previous, name } if previous == b"b" && name == b"a"
    ));
    assert!(matches!(read_err(&dir_with_names(&[b"a", b"a"])), ReadError::UnsortedOrDuplicate { .. }));
    for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
        assert!(matches!(read_err(&dir_with_names(&[bad])), ReadError::InvalidName { .. }), "{bad:?}");
    }
    let long = vec![b'n'; MAX_NAME_LEN + 1];
    assert!(matches!(read_err(&dir_with_names(&[&long])), ReadError::TooLong { what: Field::Name, .. }));
    let tight = Limits { max_name_len: 2, ..Limits::default() };
    assert!(matches!(read_err_with(&dir_with_names(&[b"abc"]), tight), ReadError::TooLong { what: Field::Name, .. }));
}

/// An archive of directories nested `depth` deep under the root, with names of `name_len` bytes.
fn nested(depth: usize, name_len: usize) -> Vec<u8> {
    let name = vec![b'd'; name_len];
    let mut all: Vec<&[u8]> = HEAD.to_vec();
    all.push(b"directory");
    for _ in 0..depth {
        all.extend_from_slice(&[b"entry", b"(", b"name", &name, b"node", b"(", b"type", b"directory"]);
    }
    for _ in 0..depth {
        all.extend_from_slice(&[b")", b")"]);
    }
    all.push(b")");
    tokens(&all)
}

#[test]
fn limits_depth_and_path_length() {
    let limits = Limits { max_depth: 5, ..Limits::default() };
    assert_eq!(list(Cursor::new(nested(5, 1)), &limits).unwrap().len(), 6);
    assert!(matches!(read_err_with(&nested(6, 1), limits), ReadError::TooDeep { max: 5 }));
    assert_eq!(list(Cursor::new(nested(1024, 1)), &Limits::default()).unwrap().len(), 1025);
    assert!(matches!(read_err(&nested(1025, 1)), ReadError::TooDeep { max: 1024 }));
    // 16 names of 255 bytes and 15 slashes: 4095 bytes; a 17th exceeds 4096.
    list(Cursor::new(nested(16, 255)), &Limits::default()).unwrap();
    assert!(matches!(read_err(&nested(17, 255)), ReadError::TooLong { what: Field::Path, .. }));
}

#[test]
fn reading_contents_partly_then_skipping() {
    let tree = Tree::Directory(BTreeMap::from([
        (b"a".to_vec(), Tree::Regular { executable: false, contents: vec![1; 100_000] }),
        (b"b".to_vec(), Tree::Regular { executable: true, contents: b"hello".to_vec() }),
    ]));
    let bytes = encode(&tree);
    let mut reader = Reader::new(Cursor::new(&bytes), Limits::default());
    assert_eq!(reader.next().unwrap(), Some(Event::DirectoryStart));
    assert_eq!(reader.next().unwrap(), Some(Event::Entry { name: b"a" }));
    assert_eq!(reader.path(), b"a");
    assert_eq!(reader.next().unwrap(), Some(Event::Regular { executable: false, size: 100_000 }));
    let mut buf = [0u8; 10];
    assert_eq!(reader.read_contents(&mut buf).unwrap(), 10);
    assert_eq!(reader.remaining_contents(), 99_990);
    assert_eq!(reader.next().unwrap(), Some(Event::Entry { name: b"b" }));
    assert_eq!(reader.path(), b"b");
    assert_eq!(reader.next().unwrap(), Some(Event::Regular { executable: true, size: 5 }));
    let mut s = String::new();
    reader.contents().read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello");
    assert_eq!(reader.read_contents(&mut buf).unwrap(), 0);
    assert_eq!(reader.next().unwrap(), Some(Event::DirectoryEnd));
    assert_eq!(reader.next().unwrap(), None);
    assert_eq!(reader.next().unwrap(), None);
    assert_eq!(reader.position(), bytes.len() as u64);
}

#[test]
fn truncated_contents_through_the_read_adapter() {
    let bytes = nar(&[b"regular", b"contents", b"0123456789"]);
    let mut reader = Reader::new(Cursor::new(&bytes[..bytes.len() - 10]), Limits::default());
    assert!(matches!(reader.next().unwrap(), Some(Event::Regular { size: 10, .. })));
    let err = reader.contents().read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(matches!(reader.next(), Err(ReadError::Poisoned)));
}

#[test]
fn poisoned_after_error() {
    let mut reader = Reader::new(Cursor::new(dir_with_names(&[b"b", b"a"])), Limits::default());
    let err = loop {
        match reader.next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("accepted"),
            Err(e) => break e,
        }
    };
    assert!(err.is_malformed());
    assert!(matches!(reader.next(), Err(ReadError::Poisoned)));
}

#[test]
fn list_paths_and_offsets() {
    let tree = Tree::Directory(BTreeMap::from([
        (b"bin".to_vec(), Tree::Directory(BTreeMap::from([(
            b"hello".to_vec(),
            Tree::Regular { executable: true, contents: b"#!/bin/sh\n".to_vec() },
        )]))),
        (b"link".to_vec(), Tree::Symlink { target: b"bin/hello".to_vec() }),
    ]));
    let bytes = encode(&tree);
    let entries = list(Cursor::new(&bytes), &Limits::default()).unwrap();
    let paths: Vec<&[u8]> = entries.iter().map(|e| e.path.as_slice()).collect();
    assert_eq!(paths, [&b""[..], b"bin", b"bin/hello", b"link"]);
    let ListNode::Regular { executable: true, size: 10, nar_offset } = entries[2].node else {
        panic!("{:?}", entries[2]);
    };
    assert_eq!(&bytes[nar_offset as usize..nar_offset as usize + 10], b"#!/bin/sh\n");
    assert_eq!(entries[3].node, ListNode::Symlink { target: b"bin/hello".to_vec() });
}

#[test]
fn restore_sets_modes_like_nix() {
    let tree = Tree::Directory(BTreeMap::from([
        (b"x".to_vec(), Tree::Regular { executable: true, contents: b"run".to_vec() }),
        (b"r".to_vec(), Tree::Regular { executable: false, contents: b"read".to_vec() }),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    restore(Cursor::new(encode(&tree)), &dest, &Limits::default()).unwrap();
    let mode = |p: &str| std::fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o7777;
    // Tests run with some umask `u`: files get 0666 & !u, plus 0111 when executable.
    let umask = 0o666 & !mode("r");
    assert_eq!(mode("x"), (0o666 & !umask) | 0o111);
    assert_eq!(std::fs::read(dest.join("x")).unwrap(), b"run");
    // The destination must not exist.
    let err = restore(Cursor::new(encode(&tree)), &dest, &Limits::default()).unwrap_err();
    assert!(matches!(err, RestoreError::Fs { ref path, ref source } if path == &dest && source.kind() == std::io::ErrorKind::AlreadyExists));
}

#[test]
fn restore_reports_malformed_archives() {
    let dir = tempfile::tempdir().unwrap();
    let err = restore(Cursor::new(dir_with_names(&[b"b", b"a"])), &dir.path().join("o"), &Limits::default()).unwrap_err();
    assert!(matches!(err, RestoreError::Read(ReadError::UnsortedOrDuplicate { .. })));
}

#[test]
fn copy_reports_write_errors() {
    struct Failing;
    impl std::io::Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let bytes = encode(&Tree::Symlink { target: b"x".to_vec() });
    assert!(matches!(copy(Cursor::new(&bytes), Failing, &Limits::default()), Err(CopyError::Write(_))));
}
