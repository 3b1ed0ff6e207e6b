//! Reading a whole NAR while validating it: copying it on, or hashing it.

use std::io::{self, BufWriter, Read, Write};

use super::errors::{CopyError, ReadError};
use super::limits::Limits;
use super::reader::Reader;
use crate::hash::{Algorithm, Hash, Hasher};

/// A reader that hands every byte it reads to a writer; the first write error is kept aside.
struct Tee<R, W> {
    inner: R,
    out: W,
    write_error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let message = e.to_string();
            self.write_error = Some(e);
            return Err(io::Error::other(message));
        }
        Ok(n)
    }
}

/// Reads every event of the archive (skipping contents); returns the archive's size.
fn drain<R: Read>(reader: &mut Reader<R>) -> Result<u64, ReadError> {
    while reader.next()?.is_some() {}
    Ok(reader.position())
}

/// Copies the NAR read from `input` to `output`, validating it on the way (like Nix's `copyNAR`).
///
/// Exactly the archive's bytes are read and written; bytes after it stay in `input`. Returns the
/// archive's size. `input` is read with small reads for the framing, so wrap an unbuffered input in
/// a [`std::io::BufReader`]; the output is buffered here.
pub fn copy<R: Read, W: Write>(input: R, output: W, limits: &Limits) -> Result<u64, CopyError> {
    let out = BufWriter::with_capacity(64 * 1024, output);
    let mut reader = Reader::new(Tee { inner: input, out, write_error: None }, *limits);
    let result = drain(&mut reader);
    let mut tee = reader.into_inner();
    if let Some(e) = tee.write_error.take() {
        return Err(CopyError::Write(e));
    }
    let size = result?;
    tee.out.flush().map_err(CopyError::Write)?;
    Ok(size)
}

/// Validates the NAR read from `input` and returns its hash with `algo` and its size (Nix's NAR
/// hash and NAR size when `algo` is SHA-256). Bytes after the archive stay in `input`.
pub fn validate_and_hash<R: Read>(input: R, algo: Algorithm, limits: &Limits) -> Result<(Hash, u64), ReadError> {
    let mut reader = Reader::new(Tee { inner: input, out: Hasher::new(algo), write_error: None }, *limits);
    let size = drain(&mut reader)?;
    Ok((reader.into_inner().out.finish(), size))
}
