//! `builtin:unpack-channel` (what `nix-channel --update` builds): the tarball `src`, compressed
//! with gzip, bzip2 or xz or not at all (told apart by its first bytes, as libarchive does for
//! Nix), is unpacked into `$out`; it must hold exactly one top-level entry, which is renamed to
//! `$out/<channelName>`.
//!
//! The archive is read with the `tar` crate, which refuses entries that would land outside the
//! destination (absolute paths, `..`); decompression uses `flate2`, `bzip2` and `liblzma`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use nix_formats::derivation::Derivation;

use super::{attr, BuiltinError};

/// The compression a tarball's first bytes announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    Gzip,
    Bzip2,
    Xz,
    None,
}

impl Compression {
    /// Recognises gzip (`1f 8b`), bzip2 (`BZh`) and xz (`fd 37 7a 58 5a 00`) by their magic.
    fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(b"BZh") {
            Self::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Self::Xz
        } else {
            Self::None
        }
    }
}

/// A reader of the tarball's decompressed bytes.
fn decompressed(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let mut file = BufReader::new(std::fs::File::open(path)?);
    let compression = Compression::sniff(file.fill_buf()?);
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(file)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(file)),
        Compression::None => Box::new(file),
    })
}

/// Unpacks the tarball at `src` into the directory `out` (created).
pub fn unpack_tarball(src: &Path, out: &Path) -> Result<(), BuiltinError> {
    std::fs::create_dir_all(out).map_err(BuiltinError::io(format!("creating directory '{}'", out.display())))?;
    let reader = decompressed(src).map_err(BuiltinError::io(format!("opening '{}'", src.display())))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_mtime(false);
    archive.set_unpack_xattrs(false);
    archive
        .unpack(out)
        .map_err(|e| BuiltinError(format!("unpacking '{}': {e}", src.display())))
}

/// Runs `builtin:unpack-channel` for `drv`, writing `out`.
pub fn unpack(drv: &Derivation, out: &Path) -> Result<(), BuiltinError> {
    let channel_name = attr(drv, "channelName")?;
    let src = attr(drv, "src")?;
    if channel_name.is_empty() || channel_name.contains('/') || channel_name == "." || channel_name == ".." {
        return Err(BuiltinError(format!(
            "channelName is not allowed to contain filesystem separators, got {channel_name}"
        )));
    }
    unpack_tarball(Path::new(&src), out)?;
    let entries: Vec<_> = std::fs::read_dir(out)
        .and_then(|dir| dir.collect::<Result<Vec<_>, _>>())
        .map_err(BuiltinError::io(format!("failed to read directory {}", out.display())))?;
    let [only] = entries.as_slice() else {
        return Err(BuiltinError(format!("channel tarball '{src}' contains more than one file")));
    };
    let target = out.join(&channel_name);
    std::fs::rename(only.path(), &target).map_err(BuiltinError::io(format!(
        "failed to rename {} to {}",
        only.path().display(),
        target.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn drv(channel_name: &str, src: &Path) -> Derivation {
        let mut drv = Derivation {
            name: "foo".into(),
            outputs: Default::default(),
            input_drvs: Default::default(),
            input_srcs: Default::default(),
            system: b"builtin".to_vec(),
            builder: b"builtin:unpack-channel".to_vec(),
            args: vec![],
            env: Default::default(),
        };
        drv.env.insert(b"channelName".to_vec(), channel_name.as_bytes().to_vec());
        drv.env.insert(b"src".to_vec(), src.as_os_str().as_encoded_bytes().to_vec());
        drv
    }

    /// A tarball holding `top/default.nix` and `top/sub/x` (executable), as `tar` writes it.
    fn tarball(entries: &[&str]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for top in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(7);
            header.set_mode(0o644);
            builder.append_data(&mut header, format!("{top}/default.nix"), &b"{ x }: x"[..7]).unwrap();
            let mut header = tar::Header::new_gnu();
            header.set_size(2);
            header.set_mode(0o755);
            builder.append_data(&mut header, format!("{top}/sub/x"), &b"hi"[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn compress(kind: Compression, data: &[u8]) -> Vec<u8> {
        match kind {
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::None => data.to_vec(),
        }
    }

    #[test]
    fn every_compression_unpacks_to_the_channel_name() {
        use std::os::unix::fs::PermissionsExt;
        for kind in [Compression::Gzip, Compression::Bzip2, Compression::Xz, Compression::None] {
            let dir = tempfile::tempdir().unwrap();
            let src = dir.path().join("nixexprs.tar");
            std::fs::write(&src, compress(kind, &tarball(&["nixexprs"]))).unwrap();
            assert_eq!(Compression::sniff(&std::fs::read(&src).unwrap()), kind);
            let out = dir.path().join("out");
            unpack(&drv("foo", &src), &out).unwrap();
            let names: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, vec![std::ffi::OsString::from("foo")], "{kind:?}");
            assert_eq!(std::fs::read(out.join("foo/default.nix")).unwrap(), b"{ x }: ");
            let mode = std::fs::metadata(out.join("foo/sub/x")).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0o111, "{kind:?}");
        }
    }

    #[test]
    fn more_than_one_top_level_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("two.tar");
        std::fs::write(&src, tarball(&["a", "b"])).unwrap();
        let err = unpack(&drv("foo", &src), &dir.path().join("out")).unwrap_err();
        assert!(err.0.contains("contains more than one file"), "{err}");
    }

    #[test]
    fn channel_names_with_separators_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("t.tar");
        std::fs::write(&src, tarball(&["a"])).unwrap();
        for name in ["a/b", "..", ""] {
            let err = unpack(&drv(name, &src), &dir.path().join("out")).unwrap_err();
            assert!(err.0.contains("filesystem separators"), "{name}: {err}");
        }
    }

    #[test]
    fn entries_escaping_the_output_are_not_written_outside() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = tarball(&["a"]);
        // A header whose name climbs out of the destination, written by hand (the builder
        // refuses such names).
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..10].copy_from_slice(b"../escaped");
        header.set_size(0);
        header.set_mode(0o644);
        header.set_cksum();
        let end = raw.len() - 1024;
        raw.splice(end..end, header.as_bytes().iter().copied());
        let src = dir.path().join("evil.tar");
        std::fs::write(&src, raw).unwrap();
        let out = dir.path().join("out");
        let _ = unpack(&drv("foo", &src), &out);
        assert!(!dir.path().join("escaped").exists());
    }
}
