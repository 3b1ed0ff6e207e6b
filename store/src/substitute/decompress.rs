//! The decompressors for a binary cache's NAR files, by the narinfo's `Compression` name.

use std::io::{BufReader, Read};

use super::SubstituteError;

/// A reader of the NAR inside `file`, compressed as `method` says (`none` or empty, `xz`,
/// `bzip2`, `zstd`, `br`).
pub fn decompressor<'a>(method: &str, file: impl Read + 'a) -> Result<Box<dyn Read + 'a>, SubstituteError> {
    let file = BufReader::new(file);
    Ok(match method {
        "" | "none" => Box::new(file),
        "xz" => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(file)),
        "bzip2" => Box::new(bzip2::bufread::MultiBzDecoder::new(file)),
        "zstd" => Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(SubstituteError::Io)?),
        "br" => Box::new(brotli_decompressor::Decompressor::new(file, 64 * 1024)),
        other => return Err(SubstituteError::UnsupportedCompression(other.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn each_method_gives_back_the_bytes() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&data).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&data).unwrap();
        let zst = zstd::stream::encode_all(&data[..], 3).unwrap();
        let cases: Vec<(&str, Vec<u8>)> =
            vec![("none", data.clone()), ("", data.clone()), ("xz", xz.finish().unwrap()), ("bzip2", bz.finish().unwrap()), ("zstd", zst)];
        for (method, compressed) in cases {
            let mut out = Vec::new();
            decompressor(method, &compressed[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "{method}");
        }
        assert!(matches!(decompressor("lz4", &b""[..]), Err(SubstituteError::UnsupportedCompression(_))));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for method in ["xz", "bzip2", "zstd", "br"] {
            let mut out = Vec::new();
            let result = decompressor(method, &b"definitely not compressed data"[..]).and_then(|mut r| r.read_to_end(&mut out).map_err(SubstituteError::Io));
            assert!(result.is_err(), "{method}");
        }
    }
}
