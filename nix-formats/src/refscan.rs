//! Reference scanning: finding which store paths a file tree mentions, as Nix does after a build.
//!
//! Nix looks for the 32-character hash parts of candidate store paths in the NAR serialisation of
//! the tree (file contents, symlink targets and entry names alike). It checks every window of 32
//! bytes that are all nix32 characters, so a hash part inside a longer run of nix32 characters is
//! found too. [`RefScanner`] does the same over a stream fed in chunks of any size: a hash part
//! split across two chunks is still found.
//!
//! The scan skips ahead on any byte that is not a nix32 character (up to 32 bytes at a time) and
//! checks each full window against a small bitmap before looking it up, so it runs at memory speed
//! on binary data.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read, Write};
use std::path::Path;

use crate::nar::{self, WriteError};
use crate::nixbase32::ALPHABET;
use crate::store_path::{StorePath, HASH_PART_LEN};

/// Length of a hash part: the window the scanner looks at.
const WINDOW: usize = HASH_PART_LEN;

/// Bits in the prefilter bitmap (indexed by a hash of a window's first 8 bytes).
const PREFILTER_BITS: usize = 1 << 16;

/// Which bytes are nix32 characters.
static IS_NIX32: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = true;
        i += 1;
    }
    table
};

/// Errors from building a [`RefScanner`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefScanError {
    /// A candidate is not 32 nix32 characters.
    #[error("'{0}' is not a store path hash part (32 nix32 characters)")]
    InvalidHashPart(String),
}

/// A streaming scanner for the hash parts of candidate store paths.
///
/// Feed it bytes with [`feed`](Self::feed) (or as an [`io::Write`]); [`found`](Self::found) then
/// holds the candidates seen. Once every candidate has been found, feeding returns at once.
#[derive(Debug, Clone)]
pub struct RefScanner {
    /// Candidates not found yet.
    remaining: HashSet<[u8; WINDOW]>,
    /// One bit per prefilter slot; set for every candidate's slot.
    prefilter: Box<[u64]>,
    found: BTreeSet<String>,
    /// The stream's trailing nix32 characters (fewer than a window), which a hash part starting
    /// in an earlier chunk may continue from.
    tail: [u8; WINDOW - 1],
    tail_len: usize,
}

/// The prefilter slot of a window (or candidate).
fn prefilter_slot(window: &[u8; WINDOW]) -> usize {
    let mut head = [0u8; 8];
    head.copy_from_slice(&window[..8]);
    (u64::from_le_bytes(head).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as usize
}

impl RefScanner {
    /// A scanner for the given hash parts (each 32 nix32 characters).
    pub fn new<I, S>(hash_parts: I) -> Result<Self, RefScanError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut scanner = Self::empty();
        for part in hash_parts {
            let part = part.as_ref();
            let window: [u8; WINDOW] = part
                .try_into()
                .ok()
                .filter(|w: &[u8; WINDOW]| w.iter().all(|&b| IS_NIX32[b as usize]))
                .ok_or_else(|| RefScanError::InvalidHashPart(String::from_utf8_lossy(&part[..part.len().min(100)]).into_owned()))?;
            scanner.add(window);
        }
        Ok(scanner)
    }

    /// A scanner for the hash parts of `paths`.
    pub fn for_store_paths<'a>(paths: impl IntoIterator<Item = &'a StorePath>) -> Self {
        let mut scanner = Self::empty();
        for path in paths {
            let mut window = [0u8; WINDOW];
            window.copy_from_slice(path.hash_part().as_bytes());
            scanner.add(window);
        }
        scanner
    }

    fn empty() -> Self {
        Self {
            remaining: HashSet::new(),
            prefilter: vec![0u64; PREFILTER_BITS / 64].into_boxed_slice(),
            found: BTreeSet::new(),
            tail: [0; WINDOW - 1],
            tail_len: 0,
        }
    }

    fn add(&mut self, window: [u8; WINDOW]) {
        let slot = prefilter_slot(&window);
        self.prefilter[slot / 64] |= 1 << (slot % 64);
        self.remaining.insert(window);
    }

    /// Scans the next `chunk` of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.remaining.is_empty() || chunk.is_empty() {
            return;
        }
        // Windows that start in the previous chunks' tail and end in this chunk.
        if self.tail_len > 0 {
            let take = chunk.len().min(WINDOW - 1);
            let mut joint = [0u8; 2 * (WINDOW - 1)];
            joint[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
            joint[self.tail_len..self.tail_len + take].copy_from_slice(&chunk[..take]);
            self.scan(&joint[..self.tail_len + take]);
        }
        self.scan(chunk);
        self.keep_tail(chunk);
    }

    /// Remembers the stream's trailing nix32 characters, at most a window minus one.
    fn keep_tail(&mut self, chunk: &[u8]) {
        let limit = chunk.len().min(WINDOW - 1);
        let run = chunk.iter().rev().take(limit).take_while(|&&b| IS_NIX32[b as usize]).count();
        if run < limit {
            // A non-nix32 byte ends any earlier run.
            self.tail[..run].copy_from_slice(&chunk[chunk.len() - run..]);
            self.tail_len = run;
            return;
        }
        // The last `limit` bytes all continue the run: keep the last WINDOW - 1 of tail + chunk.
        let keep_old = (WINDOW - 1 - limit).min(self.tail_len);
        self.tail.copy_within(self.tail_len - keep_old..self.tail_len, 0);
        self.tail[keep_old..keep_old + limit].copy_from_slice(&chunk[chunk.len() - limit..]);
        self.tail_len = keep_old + limit;
    }

    /// Checks every window that lies wholly within `s`.
    fn scan(&mut self, s: &[u8]) {
        let mut start = 0;
        // s[start..checked] are known to be nix32 characters.
        let mut checked = 0;
        'windows: while start + WINDOW <= s.len() {
            let end = start + WINDOW;
            // Check from the window's end backwards, so a bad byte skips as far as possible.
            let mut j = end;
            while j > checked {
                j -= 1;
                if !IS_NIX32[s[j] as usize] {
                    start = j + 1;
                    checked = start;
                    continue 'windows;
                }
            }
            checked = end;
            let mut window = [0u8; WINDOW];
            window.copy_from_slice(&s[start..end]);
            self.check(&window);
            start += 1;
        }
    }

    fn check(&mut self, window: &[u8; WINDOW]) {
        let slot = prefilter_slot(window);
        if self.prefilter[slot / 64] & (1 << (slot % 64)) == 0 {
            return;
        }
        if self.remaining.remove(window) {
            self.found.insert(String::from_utf8_lossy(window).into_owned());
        }
    }

    /// The hash parts found so far, sorted.
    pub fn found(&self) -> &BTreeSet<String> {
        &self.found
    }

    /// Whether every candidate has been found (further input cannot change the result).
    pub fn all_found(&self) -> bool {
        self.remaining.is_empty()
    }

    /// Those of `paths` whose hash part was found.
    pub fn found_store_paths<'a>(&self, paths: impl IntoIterator<Item = &'a StorePath>) -> BTreeSet<StorePath> {
        paths.into_iter().filter(|p| self.found.contains(p.hash_part())).cloned().collect()
    }

    /// Scans the NAR serialisation of the tree at `path`, as Nix does: file contents, symlink
    /// targets and entry names.
    pub fn scan_path(&mut self, path: &Path) -> Result<(), WriteError> {
        nar::dump_path(path, self)
    }

    /// Scans the NAR read from `input`, validating it on the way; returns the archive's size.
    /// Reading stops at the archive's end.
    pub fn scan_nar<R: Read>(&mut self, input: R, limits: &nar::Limits) -> Result<u64, nar::ReadError> {
        nar::copy(input, self, limits).map_err(|e| match e {
            nar::CopyError::Read(e) => e,
            // Feeding the scanner cannot fail; should it ever, report it as an I/O error.
            nar::CopyError::Write(e) => nar::ReadError::Io(e),
        })
    }

    /// Scans everything `input` yields until its end, with no NAR validation; returns the number
    /// of bytes read.
    pub fn scan_reader<R: Read>(&mut self, mut input: R) -> io::Result<u64> {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match input.read(&mut buffer) {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    self.feed(&buffer[..n]);
                    total += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for RefScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H1: &str = "09ymwqf5i9q7d4dm7x4pjjcqqj0qrcp5";
    const H2: &str = "g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q";
    const H3: &str = "n5wkd9frr45pa74if5gpz9j7mifg27fh";

    /// Nix's algorithm, applied to the whole input at once.
    fn reference(data: &[u8], candidates: &[&str]) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut i = 0;
        'outer: while i + WINDOW <= data.len() {
            for j in (0..WINDOW).rev() {
                if !IS_NIX32[data[i + j] as usize] {
                    i += j + 1;
                    continue 'outer;
                }
            }
            let window = &data[i..i + WINDOW];
            for c in candidates {
                if c.as_bytes() == window {
                    found.insert(c.to_string());
                }
            }
            i += 1;
        }
        found
    }

    fn scan_chunks(data: &[u8], candidates: &[&str], splits: &[usize]) -> BTreeSet<String> {
        let mut scanner = RefScanner::new(candidates).unwrap();
        let mut at = 0;
        for &s in splits {
            let s = s.clamp(at, data.len());
            scanner.feed(&data[at..s]);
            at = s;
        }
        scanner.feed(&data[at..]);
        scanner.found().clone()
    }

    #[test]
    fn finds_candidates_and_nothing_else() {
        let data = format!("foo /nix/store/{H1}-bar\0{H2}x");
        let found = scan_chunks(data.as_bytes(), &[H1, H2, H3], &[]);
        assert_eq!(found, BTreeSet::from([H1.to_string(), H2.to_string()]));
        // Almost-candidates: one character off, or cut short.
        let data = format!("{}y {}", &H3[..31], &H3[1..]);
        assert!(scan_chunks(data.as_bytes(), &[H3], &[]).is_empty());
    }

    #[test]
    fn finds_candidates_inside_longer_runs() {
        // As Nix: every offset of a nix32 run is a window.
        let data = format!("abc{H1}{H2}0123");
        assert_eq!(scan_chunks(data.as_bytes(), &[H1, H2], &[]).len(), 2);
        let overlapping = format!("{}{}", &H1[..5], H1);
        assert_eq!(scan_chunks(overlapping.as_bytes(), &[H1], &[]).len(), 1);
    }

    #[test]
    fn finds_a_candidate_split_at_every_point() {
        let data = format!("..{H1}..");
        for split in 0..=data.len() {
            assert_eq!(scan_chunks(data.as_bytes(), &[H1], &[split]).len(), 1, "split at {split}");
        }
        // One byte at a time.
        let splits: Vec<usize> = (0..data.len()).collect();
        assert_eq!(scan_chunks(data.as_bytes(), &[H1], &splits).len(), 1);
    }

    #[test]
    fn rejects_invalid_candidates() {
        assert!(RefScanner::new([&H1[..31]]).is_err());
        assert!(RefScanner::new([format!("{}e", &H1[..31])]).is_err());
        assert!(RefScanner::new([H1, H2]).is_ok());
    }

    #[test]
    fn store_path_helpers() {
        let paths: Vec<StorePath> =
            [H1, H2].iter().map(|h| StorePath::from_base_name(&format!("{h}-x")).unwrap()).collect();
        let mut scanner = RefScanner::for_store_paths(&paths);
        scanner.write_all(format!("-> {H2}-x").as_bytes()).unwrap();
        assert!(!scanner.all_found());
        assert_eq!(scanner.found_store_paths(&paths), BTreeSet::from([paths[1].clone()]));
    }

    #[test]
    fn scans_contents_targets_and_names_of_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("file"), format!("#!/nix/store/{H1}-bash/bin/sh").as_bytes()).unwrap();
        std::os::unix::fs::symlink(format!("/nix/store/{H2}-lib"), root.join("link")).unwrap();
        std::fs::write(root.join(format!("{H3}-named")), b"").unwrap();
        let mut scanner = RefScanner::new([H1, H2, H3, "00000000000000000000000000000000"]).unwrap();
        scanner.scan_path(&root).unwrap();
        assert_eq!(scanner.found().len(), 3);
        let mut via_reader = RefScanner::new([H1, H2, H3]).unwrap();
        let mut nar_bytes = Vec::new();
        nar::dump_path(&root, &mut nar_bytes).unwrap();
        assert_eq!(via_reader.scan_reader(&nar_bytes[..]).unwrap(), nar_bytes.len() as u64);
        assert_eq!(via_reader.found(), scanner.found());
        let mut via_nar = RefScanner::new([H1, H2, H3]).unwrap();
        nar_bytes.extend_from_slice(H1.as_bytes());
        let size = via_nar.scan_nar(&nar_bytes[..], &nar::Limits::default()).unwrap();
        assert_eq!(size, nar_bytes.len() as u64 - 32);
        assert_eq!(via_nar.found(), scanner.found());
        let mut garbage = RefScanner::new([H1]).unwrap();
        assert!(garbage.scan_nar(H1.as_bytes(), &nar::Limits::default()).is_err());
    }

    #[test]
    fn large_input_sanity() {
        // 32 MiB of mixed binary and nix32-heavy text, with candidates near the end (not timed).
        let mut data = Vec::with_capacity(32 << 20);
        let mut x: u64 = 1;
        while data.len() < 32 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 4 == 0 {
                data.extend(std::iter::repeat(ALPHABET[(x >> 8) as usize % 32]).take(200));
            } else {
                data.extend_from_slice(&x.to_le_bytes());
            }
        }
        data.extend_from_slice(H1.as_bytes());
        data.extend_from_slice(b"/");
        data.extend_from_slice(H2.as_bytes());
        let mut scanner = RefScanner::new([H1, H2, H3]).unwrap();
        for chunk in data.chunks(65536 + 7) {
            scanner.feed(chunk);
        }
        assert_eq!(scanner.found(), &BTreeSet::from([H1.to_string(), H2.to_string()]));
    }

    fn arb_data() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            prop::sample::select(vec![H1, H2, H3]).prop_map(|h| h.as_bytes().to_vec()),
            prop::sample::select(vec![H1, H2, H3]).prop_map(|h| h.as_bytes()[..20].to_vec()),
            proptest::collection::vec(prop::sample::select(ALPHABET.to_vec()), 0..40),
            proptest::collection::vec(any::<u8>(), 0..10),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn chunking_never_changes_the_result(
            data in arb_data(),
            mut splits in proptest::collection::vec(0usize..400, 0..8),
        ) {
            splits.sort_unstable();
            let candidates = [H1, H2, H3];
            prop_assert_eq!(scan_chunks(&data, &candidates, &splits), reference(&data, &candidates));
        }
    }
}
