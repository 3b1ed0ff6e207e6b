//! The strict NAR reader on arbitrary bytes, and everything built on it.
//!
//! Properties checked on every input:
//! - the reader yields the same events and the same outcome whether the input arrives whole or in
//!   tiny reads interrupted by `ErrorKind::Interrupted`; contents read through it are the archive's
//!   bytes at the offset it reports, and its `path()` follows the events;
//! - after an error it stays poisoned; after the end it stays done;
//! - its heap use is bounded by the limits alone, never by lengths found in the input (a 2^64
//!   length must not allocate); `list`, `copy` and `validate_and_hash` stay within input-sized
//!   bounds;
//! - `list`, `copy` and `validate_and_hash` accept exactly what the reader accepts, and agree with
//!   it (listing = the events, copy = the consumed prefix, hash = SHA-256 of that prefix);
//! - a valid archive has one encoding: writing its events back with `nar::Writer` gives exactly
//!   the consumed bytes.
#![no_main]

#[path = "common/alloc.rs"]
mod alloc;

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::nar::{self, Event, Limits, ListEntry, ListNode, ReadError, Reader, Writer};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// Tight limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits { max_depth: 12, max_name_len: 64, max_target_len: 256, max_path_len: 320 };

/// What the reader may hold at once under [`LIMITS`], whatever the input: its 64 KiB skip
/// buffer, the path and one previous name per open directory, the symlink target, and an error
/// (with at most a name pair or a target in it); with room for vector growth.
const READER_HEAP_BOUND: usize = 64 * 1024 + 16 * 1024;

/// A node or directory event, owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    Regular { executable: bool, size: u64, offset: u64 },
    Symlink(Vec<u8>),
    DirectoryStart,
    Entry(Vec<u8>),
    DirectoryEnd,
}

/// Hands out the input in reads of 1 to 7 bytes and fails every fifth read with `Interrupted`.
struct Trickle<'a> {
    data: &'a [u8],
    calls: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % 5 == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.data.len()).min(1 + self.calls % 7);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Walks every event, reading some files' contents fully, some partly and skipping others, and
/// checks what the reader reports against the input. Returns the events and the archive's size.
fn walk<R: Read>(input: R, data: &[u8], scratch: &mut [u8]) -> (Vec<Owned>, Result<u64, String>) {
    let mut reader = Reader::new(input, LIMITS);
    let mut events = Vec::new();
    // Lengths of the paths of the open directories, to check `Reader::path`.
    let mut dir_path_lens: Vec<usize> = Vec::new();
    let mut files = 0usize;
    let outcome = loop {
        let event = match reader.next() {
            Ok(Some(e)) => e,
            Ok(None) => break Ok(reader.position()),
            Err(e) => break Err(e),
        };
        let owned = match event {
            Event::Regular { executable, size } => Owned::Regular { executable, size, offset: reader.position() },
            Event::Symlink { target } => Owned::Symlink(target.to_vec()),
            Event::DirectoryStart => Owned::DirectoryStart,
            Event::Entry { name } => Owned::Entry(name.to_vec()),
            Event::DirectoryEnd => Owned::DirectoryEnd,
        };
        match &owned {
            Owned::DirectoryStart => dir_path_lens.push(reader.path().len()),
            Owned::DirectoryEnd => {
                let len = dir_path_lens.pop().expect("DirectoryEnd without DirectoryStart");
                assert_eq!(reader.path().len(), len);
            }
            Owned::Entry(name) => {
                let parent = *dir_path_lens.last().expect("Entry outside a directory");
                let path = reader.path();
                assert!(path.ends_with(name));
                let expected_len = if parent == 0 { name.len() } else { parent + 1 + name.len() };
                assert_eq!(path.len(), expected_len);
                assert!(path.len() <= LIMITS.max_path_len);
                assert!(dir_path_lens.len() <= LIMITS.max_depth);
            }
            Owned::Regular { size, offset, .. } => {
                files += 1;
                assert_eq!(reader.remaining_contents(), *size);
                // 0: read everything, 1: read about half, 2: skip.
                let want = match files % 3 {
                    0 => *size,
                    1 => *size / 2,
                    _ => 0,
                };
                let mut done = 0u64;
                let mut failed = false;
                while done < want {
                    let chunk = (want - done).min(scratch.len() as u64) as usize;
                    let n = match reader.read_contents(&mut scratch[..chunk]) {
                        Ok(n) => n,
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    };
                    assert!(n > 0 && n <= chunk);
                    let at = (*offset + done) as usize;
                    assert_eq!(&scratch[..n], &data[at..at + n]);
                    done += n as u64;
                    assert_eq!(reader.remaining_contents(), *size - done);
                }
                if failed {
                    assert!(matches!(reader.read_contents(scratch), Err(ReadError::Poisoned)));
                    events.push(owned);
                    break Err(ReadError::Truncated);
                }
                if *size == done {
                    assert_eq!(reader.read_contents(scratch).unwrap(), 0);
                }
            }
            Owned::Symlink(_) => {}
        }
        events.push(owned);
    };
    match outcome {
        Ok(size) => {
            assert!(reader.is_done());
            assert!(dir_path_lens.is_empty());
            assert!(matches!(reader.next(), Ok(None)));
            assert_eq!(reader.position(), size);
            (events, Ok(size))
        }
        Err(e) => {
            assert!(!reader.is_done());
            assert!(matches!(reader.next(), Err(ReadError::Poisoned)));
            // Contents reads inside a broken archive end as a truncation whatever the reader says.
            let message = if matches!(e, ReadError::Truncated) { "truncated".to_owned() } else { e.to_string() };
            (events, Err(message))
        }
    }
}

/// The listing that `nar::list` must give for these events.
fn expected_listing(events: &[Owned]) -> Vec<ListEntry> {
    let mut path: Vec<u8> = Vec::new();
    let mut dir_path_lens = Vec::new();
    let mut listing = Vec::new();
    for event in events {
        let node = match event {
            Owned::Regular { executable, size, offset } => {
                ListNode::Regular { executable: *executable, size: *size, nar_offset: *offset }
            }
            Owned::Symlink(target) => ListNode::Symlink { target: target.clone() },
            Owned::DirectoryStart => {
                dir_path_lens.push(path.len());
                ListNode::Directory
            }
            Owned::Entry(name) => {
                let parent = *dir_path_lens.last().expect("entry in a directory");
                path.truncate(parent);
                if parent > 0 {
                    path.push(b'/');
                }
                path.extend_from_slice(name);
                continue;
            }
            Owned::DirectoryEnd => {
                let len = dir_path_lens.pop().expect("directory end");
                path.truncate(len);
                continue;
            }
        };
        listing.push(ListEntry { path: path.clone(), node });
    }
    listing
}

/// Writes the events back with `nar::Writer`, alternating its two ways of taking contents.
fn rewrite(events: &[Owned], data: &[u8]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new());
    for (i, event) in events.iter().enumerate() {
        match event {
            Owned::Regular { executable, size, offset } => {
                let contents = &data[*offset as usize..(*offset + *size) as usize];
                if i % 2 == 0 {
                    writer.regular(*executable, *size, &mut &contents[..]).unwrap();
                } else {
                    writer.regular_bytes(*executable, contents).unwrap();
                }
            }
            Owned::Symlink(target) => writer.symlink(target).unwrap(),
            Owned::DirectoryStart => writer.start_directory().unwrap(),
            Owned::Entry(name) => writer.entry(name).unwrap(),
            Owned::DirectoryEnd => writer.end_directory().unwrap(),
        }
    }
    writer.finish().unwrap()
}

fuzz_target!(|data: &[u8]| {
    let mut scratch = vec![0u8; 4096];

    let ((events, outcome), peak) = alloc::peak_during(|| walk(data, data, &mut scratch[..13]));
    // The events themselves are the harness's; the reader's own share is what matters.
    let event_bytes: usize = events
        .iter()
        .map(|e| {
            std::mem::size_of::<Owned>()
                + match e {
                    Owned::Symlink(v) | Owned::Entry(v) => v.len(),
                    _ => 0,
                }
        })
        .sum();
    assert!(
        peak <= READER_HEAP_BOUND + 2 * event_bytes + 1024,
        "reader used {peak} bytes of heap (events {event_bytes})"
    );

    let (trickle_events, trickle_outcome) = walk(Trickle { data, calls: 0 }, data, &mut scratch[..]);
    assert_eq!(trickle_events, events);
    assert_eq!(trickle_outcome, outcome);

    let (listing, peak) = alloc::peak_during(|| nar::list(data, &LIMITS));
    assert!(peak <= READER_HEAP_BOUND + 64 * data.len(), "list used {peak} bytes for {} input bytes", data.len());
    let (hashed, peak) = alloc::peak_during(|| nar::validate_and_hash(data, Algorithm::Sha256, &LIMITS));
    assert!(peak <= READER_HEAP_BOUND + 1024, "validate_and_hash used {peak} bytes");
    let mut copied = Vec::new();
    let (copy_result, peak) = alloc::peak_during(|| nar::copy(data, &mut copied, &LIMITS));
    assert!(peak <= READER_HEAP_BOUND + 64 * 1024 + 2 * data.len() + 1024, "copy used {peak} bytes");
    assert!(data.starts_with(&copied));

    match outcome {
        Ok(size) => {
            let consumed = &data[..size as usize];
            assert_eq!(listing.unwrap(), expected_listing(&events));
            assert_eq!(hashed.unwrap(), (Hash::of(Algorithm::Sha256, consumed), size));
            assert_eq!(copy_result.unwrap(), size);
            assert_eq!(copied, consumed);
            assert_eq!(rewrite(&events, data), consumed, "a valid NAR has exactly one encoding");
        }
        Err(_) => {
            assert!(listing.is_err());
            assert!(hashed.is_err());
            assert!(copy_result.is_err());
        }
    }
});
