//! Writing new pool files with direct I/O (`O_DIRECT`), for [`Durability::Synced`] pools.
//!
//! A synced blob must reach the disk before it gets its name anyway, so its bytes need not pass
//! through the page cache: written directly from an aligned buffer, they skip the copy into
//! freshly allocated cache pages (on the virtual machines measured, that copy cost more than the
//! disk write) and the later write-back, and the `fsync` before the rename has only metadata
//! left to write. Direct writes need offsets, lengths and buffer addresses aligned to the
//! device's block size; [`ALIGN`] (4 KiB) covers the usual ones. The last partial block is
//! written padded with zeros and the file then truncated to its real length. Where the file
//! system refuses direct I/O (`EINVAL`: tmpfs, some network file systems), the file falls back to
//! ordinary writes.
//!
//! [`Durability::Synced`]: crate::Durability::Synced

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rustix::fs::OFlags;

/// Alignment of direct writes: offsets, lengths and buffer addresses.
pub(crate) const ALIGN: usize = 4096;

/// Blobs whose size is known to be below this are written through the page cache. A direct
/// write returns only when the device has the bytes, so writing many small files directly
/// makes each file wait for the device (with only their tail block in the page cache anyway);
/// through the page cache they are written out together by the flush's `syncfs` or parallel
/// `fsync`s, and save a second write and an `fcntl` each. Larger blobs keep the gain described
/// above.
pub(crate) const DIRECT_MIN: usize = 64 << 10;

/// Size of each direct write (and of each pooled buffer).
const BUFFER_SIZE: usize = 1 << 20;

/// Most idle buffers kept for reuse.
const POOL_LIMIT: usize = 16;

/// Idle buffers: allocating (and faulting in) 1 MiB per file would cost more than the copy.
static POOL: Mutex<Vec<AlignedBuffer>> = Mutex::new(Vec::new());

/// A buffer of [`BUFFER_SIZE`] bytes starting at an [`ALIGN`]-aligned address (inside a
/// slightly larger vector).
struct AlignedBuffer {
    bytes: Vec<u8>,
    start: usize,
}

impl AlignedBuffer {
    fn take() -> Option<Self> {
        if let Some(buffer) = POOL.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return Some(buffer);
        }
        let bytes = vec![0u8; BUFFER_SIZE + ALIGN];
        let start = bytes.as_ptr().align_offset(ALIGN);
        (start < ALIGN).then_some(Self { bytes, start })
    }

    fn give_back(self) {
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_LIMIT {
            pool.push(self);
        }
    }

    fn slice(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + BUFFER_SIZE]
    }
}

/// Creates `path` (exclusively, mode 0600) for writing, with `O_DIRECT` when `direct` and the
/// file system allows it. Returns the file and whether it is in direct mode.
pub(crate) fn create(path: &Path, direct: bool) -> io::Result<(File, bool)> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    if direct {
        let opened = options.clone().custom_flags(OFlags::DIRECT.bits() as i32).open(path);
        match opened {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
            other => return other.map(|file| (file, true)),
        }
    }
    options.open(path).map(|file| (file, false))
}

/// Writes a new file's bytes, directly when the file was opened so (see the module
/// documentation); every call gets the same file. [`finish`](Self::finish) writes the last
/// block and sets the length.
pub(crate) struct DirectWriter {
    /// `None` once the file is in ordinary (buffered) mode.
    buffer: Option<AlignedBuffer>,
    filled: usize,
    /// Bytes written to the file so far (a multiple of [`ALIGN`] while direct).
    written: u64,
}

/// Clears `O_DIRECT` on a file from [`create`]: of the flags `F_SETFL` changes, it is the only
/// one set there, so no `F_GETFL` is needed.
fn leave_direct_mode(file: &File) -> io::Result<()> {
    rustix::fs::fcntl_setfl(file, OFlags::empty())?;
    Ok(())
}

impl DirectWriter {
    /// A writer for `file`, made by [`create`] (new, empty, in direct mode when `direct`).
    pub fn new(file: &File, direct: bool) -> io::Result<Self> {
        let mut writer = Self { buffer: None, filled: 0, written: 0 };
        if direct {
            match AlignedBuffer::take() {
                Some(buffer) => writer.buffer = Some(buffer),
                None => leave_direct_mode(file)?,
            }
        }
        Ok(writer)
    }

    /// Writes the buffer's first `len` bytes (a multiple of [`ALIGN`], or the end of the file
    /// in ordinary mode) and empties it. On `EINVAL` from the direct write, switches the file
    /// to ordinary writes and writes them again.
    fn write_buffer(&mut self, mut file: &File, len: usize) -> io::Result<()> {
        let Some(buffer) = self.buffer.as_mut() else { return Ok(()) };
        match file.write_all(&buffer.slice()[..len]) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                leave_direct_mode(file)?;
                let buffer = self.buffer.take();
                if let Some(mut buffer) = buffer {
                    // Rewrite the buffer from where the complete writes end.
                    rustix::fs::ftruncate(file, self.written)?;
                    io::Seek::seek(&mut file, io::SeekFrom::Start(self.written))?;
                    file.write_all(&buffer.slice()[..self.filled])?;
                    self.written += self.filled as u64;
                    self.filled = 0;
                    buffer.give_back();
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        self.written += len as u64;
        self.filled = 0;
        Ok(())
    }

    /// Appends `data`.
    pub fn write_all(&mut self, mut file: &File, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let Some(buffer) = self.buffer.as_mut() else {
                file.write_all(data)?;
                self.written += data.len() as u64;
                return Ok(());
            };
            let n = data.len().min(BUFFER_SIZE - self.filled);
            buffer.slice()[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == BUFFER_SIZE {
                self.write_buffer(file, BUFFER_SIZE)?;
            }
        }
        Ok(())
    }

    /// Writes what remains: the whole blocks directly, the last partial block through the page
    /// cache (cheaper than writing it padded and truncating the file, which makes ext4 zero the
    /// block's tail in the cache). Returns the file's length.
    pub fn finish(mut self, mut file: &File) -> io::Result<u64> {
        let whole = self.filled / ALIGN * ALIGN;
        if whole > 0 {
            let tail = self.filled - whole;
            self.write_buffer(file, whole)?;
            // `write_buffer` emptied the buffer (unless it fell back to ordinary writes, which
            // wrote everything); the tail is still in place after the blocks.
            if let Some(buffer) = self.buffer.as_mut() {
                buffer.slice().copy_within(whole..whole + tail, 0);
                self.filled = tail;
            }
        }
        if self.filled > 0 {
            if let Some(mut buffer) = self.buffer.take() {
                leave_direct_mode(file)?;
                let written = file.write_all(&buffer.slice()[..self.filled]);
                buffer.give_back();
                written?;
                self.written += self.filled as u64;
                self.filled = 0;
            }
        }
        Ok(self.written + self.filled as u64)
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            buffer.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;

    fn round_trip(dir: &Path, direct: bool, pieces: &[usize]) {
        let path = dir.join(format!("f-{direct}-{}", pieces.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("-")));
        let (file, _) = create(&path, direct).unwrap();
        let mut expected = Vec::new();
        let mut writer = DirectWriter::new(&file, direct).unwrap();
        for (i, &n) in pieces.iter().enumerate() {
            let piece: Vec<u8> = (0..n).map(|j| (i * 31 + j * 7) as u8).collect();
            writer.write_all(&file, &piece).unwrap();
            expected.extend_from_slice(&piece);
        }
        assert_eq!(writer.finish(&file).unwrap(), expected.len() as u64);
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn writes_every_length_exactly() {
        let dir = tempfile::tempdir().unwrap();
        for direct in [true, false] {
            for pieces in [&[][..], &[0], &[1], &[ALIGN - 1], &[ALIGN], &[ALIGN + 1], &[BUFFER_SIZE], &[BUFFER_SIZE + 5, 3],
                &[100, BUFFER_SIZE - 100, ALIGN * 3 + 17], &[BUFFER_SIZE * 2 + 1]]
            {
                round_trip(dir.path(), direct, pieces);
            }
        }
    }

    #[test]
    fn falls_back_where_direct_io_is_refused() {
        // tmpfs refuses O_DIRECT at open; the file is written the ordinary way.
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else { return };
        round_trip(dir.path(), true, &[ALIGN + 3, 10]);
    }
}
