//! `builtin:fetchurl` for `file://` URLs (casnix has no network client; a `file://` URL is
//! what works offline). `unpack = "1"` restores the fetched NAR (xz-compressed when the URL ends
//! in `.xz`); `executable = "1"` makes the
//! file executable. The hash is checked afterwards, like every fixed output.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix_formats::derivation::Derivation;

use super::{attr, BuiltinError};

/// `%XX` decoding of a URL path.
fn percent_decode(s: &str) -> Result<Vec<u8>, BuiltinError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let value = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(value.ok_or_else(|| BuiltinError(format!("malformed URL '{s}'")))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Fetches the derivation's `url` to `out`.
pub fn fetch(drv: &Derivation, out: &Path) -> Result<(), BuiltinError> {
    let url = attr(drv, "url")?;
    let Some(rest) = url.strip_prefix("file://") else {
        return Err(BuiltinError(format!("unable to download '{url}': casnix-daemon fetches only file:// URLs")));
    };
    let source = std::path::PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&percent_decode(rest)?));
    let unpack = drv.env.get(&b"unpack"[..]).is_some_and(|v| v == b"1");
    let failed = |e: std::io::Error| BuiltinError(format!("unable to download '{url}': {e}"));
    if unpack {
        let file = std::io::BufReader::new(std::fs::File::open(&source).map_err(failed)?);
        // As Nix: a URL ending in `.xz` is an xz-compressed NAR.
        let nar: Box<dyn std::io::Read> = if url.ends_with(".xz") {
            Box::new(std::io::BufReader::new(liblzma::bufread::XzDecoder::new_multi_decoder(file)))
        } else {
            Box::new(file)
        };
        nix_formats::nar::restore(nar, out, &nix_formats::nar::Limits::default())
            .map_err(|e| BuiltinError(format!("unpacking '{url}': {e}")))?;
    } else {
        std::fs::copy(&source, out).map_err(failed)?;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o644)).map_err(failed)?;
    }
    if drv.env.get(&b"executable"[..]).is_some_and(|v| v == b"1") {
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755))
            .map_err(BuiltinError::io(format!("making '{}' executable", out.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_copied_and_others_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a b");
        std::fs::write(&src, "data").unwrap();
        let mut drv = Derivation {
            name: "f".into(),
            outputs: Default::default(),
            input_drvs: Default::default(),
            input_srcs: Default::default(),
            system: b"builtin".to_vec(),
            builder: b"builtin:fetchurl".to_vec(),
            args: vec![],
            env: Default::default(),
        };
        let url = format!("file://{}", src.display()).replace(' ', "%20");
        drv.env.insert(b"url".to_vec(), url.into_bytes());
        drv.env.insert(b"executable".to_vec(), b"1".to_vec());
        let out = dir.path().join("out");
        fetch(&drv, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"data");
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o755);
        drv.env.insert(b"url".to_vec(), b"https://example.org/x".to_vec());
        assert!(fetch(&drv, &dir.path().join("out2")).unwrap_err().0.contains("file://"));
    }

    #[test]
    fn only_fixed_output_or_impure_derivations_may_fetch() {
        use nix_formats::content_address::{Method, MethodAlgo};
        use nix_formats::derivation::DerivationOutput;
        use nix_formats::hash::Algorithm;
        let mut drv = Derivation {
            name: "f".into(),
            outputs: Default::default(),
            input_drvs: Default::default(),
            input_srcs: Default::default(),
            system: b"builtin".to_vec(),
            builder: b"builtin:fetchurl".to_vec(),
            args: vec![],
            env: Default::default(),
        };
        let floating = MethodAlgo { method: Method::Flat, algo: Algorithm::Sha256 };
        drv.outputs.insert("out".into(), DerivationOutput::CaFloating(floating));
        let err = crate::builtin::check(&drv).unwrap_err();
        assert_eq!(err.0, "'builtin:fetchurl' must be a fixed-output or impure derivation");
        drv.outputs.insert("out".into(), DerivationOutput::Impure(floating));
        crate::builtin::check(&drv).unwrap();
    }
}
