//! [`NarStream`] against `nix_formats::nar::Reader`: both accept the same archives, and the
//! stream stops exactly at the archive's end.

use std::io::Read;

use nix_formats::nar::{Limits, ReadError, Reader, Writer};
use proptest::prelude::*;
use tokio::io::AsyncReadExt;

use super::*;

/// A NAR with nested directories, an executable, a symlink and files.
fn sample_nar() -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    w.start_directory().unwrap();
    w.entry(b"a").unwrap();
    w.regular(false, 5, &mut &b"hello"[..]).unwrap();
    w.entry(b"b").unwrap();
    w.start_directory().unwrap();
    w.entry(b"exe").unwrap();
    w.regular(true, 0, &mut &b""[..]).unwrap();
    w.entry(b"link").unwrap();
    w.symlink(b"../a").unwrap();
    w.end_directory().unwrap();
    w.entry(b"c").unwrap();
    w.regular(false, 9, &mut &b"123456789"[..]).unwrap();
    w.end_directory().unwrap();
    w.finish().unwrap()
}

fn nar_of_file(contents: &[u8]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    w.regular(false, contents.len() as u64, &mut &contents[..]).unwrap();
    w.finish().unwrap()
}

/// What the strict synchronous reader makes of `bytes`: the archive's length, or an error.
fn sync_verdict(bytes: &[u8]) -> Result<u64, String> {
    let mut reader = Reader::new(bytes, Limits::default());
    loop {
        match reader.next() {
            Ok(Some(_)) => {
                let mut sink = Vec::new();
                reader.contents().read_to_end(&mut sink).map_err(|e| e.to_string())?;
            }
            Ok(None) => return Ok(reader.position()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// What [`NarStream`] makes of `bytes`, read in pieces of `chunk` bytes.
async fn async_verdict(bytes: &[u8], chunk: usize) -> Result<(u64, Vec<u8>), ProtocolError> {
    let mut stream = NarStream::new(bytes, Limits::default());
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = stream.read(&mut buf).await.map_err(ProtocolError::from_io)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(stream.is_done());
    Ok((stream.position(), out))
}

#[tokio::test]
async fn stops_at_the_end_and_leaves_the_rest() {
    let nar = sample_nar();
    let mut input = nar.clone();
    input.extend_from_slice(b"after the archive");
    for chunk in [1, 3, 8, 13, 4096] {
        let mut rest = &input[..];
        let mut stream = NarStream::new(&mut rest, Limits::default());
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, nar, "chunk {chunk}");
        assert_eq!(stream.position(), nar.len() as u64);
        drop(stream);
        assert_eq!(rest, b"after the archive");
    }
}

#[tokio::test]
async fn drain_skips_to_the_end() {
    let nar = nar_of_file(&vec![7u8; 300_000]);
    let mut input = nar.clone();
    input.extend_from_slice(&[1, 2, 3]);
    let mut rest = &input[..];
    let mut stream = NarStream::new(&mut rest, Limits::default());
    let mut first = [0u8; 100];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(stream.drain().await.unwrap(), nar.len() as u64 - 100);
    assert_eq!(stream.drain().await.unwrap(), 0);
    drop(stream);
    assert_eq!(rest, [1, 2, 3]);
}

#[tokio::test]
async fn errors_are_typed_and_sticky() {
    let nar = sample_nar();
    // Truncated.
    let err = async_verdict(&nar[..nar.len() - 8], 64).await.unwrap_err();
    assert!(matches!(err, ProtocolError::BadNar(ReadError::Truncated)), "{err:?}");
    // Not a NAR.
    let err = async_verdict(b"\x05\0\0\0\0\0\0\0hello\0\0\0", 64).await.unwrap_err();
    assert!(matches!(err, ProtocolError::BadNar(ReadError::NotANar)), "{err:?}");
    // Unsorted entries: swap the names "a" and "c".
    let mut bad = nar.clone();
    let a = bad.windows(16).position(|w| w == b"\x01\0\0\0\0\0\0\0a\0\0\0\0\0\0\0").unwrap();
    let c = bad.windows(16).position(|w| w == b"\x01\0\0\0\0\0\0\0c\0\0\0\0\0\0\0").unwrap();
    bad[a + 8] = b'c';
    bad[c + 8] = b'a';
    let err = async_verdict(&bad, 64).await.unwrap_err();
    assert!(matches!(err, ProtocolError::BadNar(ReadError::UnsortedOrDuplicate { .. })), "{err:?}");
    // After an error every read fails.
    let mut stream = NarStream::new(&nar[..20], Limits::default());
    let mut buf = [0u8; 64];
    while stream.read(&mut buf).await.is_ok() {}
    let again = stream.read(&mut buf).await.unwrap_err();
    assert!(matches!(ProtocolError::from_io(again), ProtocolError::BadNar(ReadError::Poisoned)));
}

#[tokio::test]
async fn limits_apply() {
    let mut w = Writer::new(Vec::new());
    w.start_directory().unwrap();
    w.entry(b"d").unwrap();
    w.start_directory().unwrap();
    w.entry(b"f").unwrap();
    w.regular(false, 0, &mut &b""[..]).unwrap();
    w.end_directory().unwrap();
    w.end_directory().unwrap();
    let nar = w.finish().unwrap();
    let shallow = Limits { max_depth: 1, ..Limits::default() };
    let mut stream = NarStream::new(&nar[..], shallow);
    let err = stream.drain().await.unwrap_err();
    assert!(matches!(err, ProtocolError::BadNar(ReadError::TooDeep { max: 1 })), "{err:?}");
    let mut stream = NarStream::new(&nar[..], Limits { max_depth: 2, ..Limits::default() });
    assert_eq!(stream.drain().await.unwrap(), nar.len() as u64);
    // A huge tag length is refused at once, without waiting for its bytes.
    let mut huge = nar[..24].to_vec();
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    let err = async_verdict(&huge, 64).await.unwrap_err();
    assert!(matches!(err, ProtocolError::BadNar(ReadError::TooLong { .. })), "{err:?}");
}

/// Random trees, written by `nix_formats`' writer.
fn arb_nar() -> impl Strategy<Value = Vec<u8>> {
    #[derive(Debug, Clone)]
    enum Node {
        File(bool, Vec<u8>),
        Link(Vec<u8>),
        Dir(Vec<Node>),
    }
    let leaf = prop_oneof![
        (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(x, c)| Node::File(x, c)),
        proptest::collection::vec(1u8..=255, 1..20).prop_map(Node::Link),
    ];
    let tree = leaf.prop_recursive(4, 24, 5, |inner| proptest::collection::vec(inner, 0..5).prop_map(Node::Dir));
    fn write(w: &mut Writer<Vec<u8>>, node: &Node) {
        match node {
            Node::File(x, c) => w.regular(*x, c.len() as u64, &mut &c[..]).unwrap(),
            Node::Link(t) => w.symlink(t).unwrap(),
            Node::Dir(children) => {
                w.start_directory().unwrap();
                for (i, child) in children.iter().enumerate() {
                    w.entry(format!("e{i:02}").as_bytes()).unwrap();
                    write(w, child);
                }
                w.end_directory().unwrap();
            }
        }
    }
    tree.prop_map(|node| {
        let mut w = Writer::new(Vec::new());
        write(&mut w, &node);
        w.finish().unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Valid archives pass through whole, whatever the read size.
    #[test]
    fn valid_archives_pass_through(nar in arb_nar(), chunk in 1usize..100) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (len, out) = rt.block_on(async_verdict(&nar, chunk)).unwrap();
        prop_assert_eq!(len, nar.len() as u64);
        prop_assert_eq!(out, nar);
    }

    /// Corrupted or cut archives: the stream accepts exactly when the strict reader does, and
    /// then consumes the same number of bytes.
    #[test]
    fn agrees_with_the_strict_reader(
        nar in arb_nar(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = nar.clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if do_cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let ours = rt.block_on(async_verdict(&bytes, 7)).map(|(len, _)| len);
        let theirs = sync_verdict(&bytes);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "stream {:?}, reader {:?}", ours.map_err(|e| e.to_string()), theirs),
        }
    }
}
