//! [`BasicDerivation`]: a derivation without its input derivations, as `BuildDerivation` sends it
//! (Nix's `writeDerivation`/`readDerivation` over a `Sink`/`Source`).
//!
//! Wire form: the output count, then per output its name, path, method-and-algorithm and hash
//! (strings; empty where the output kind has none, as in the ATerm); the input sources (a set of
//! store paths); the system; the builder; the arguments (a list of strings); the environment (a
//! count and key/value pairs). The derivation's name is not sent: it comes from the `.drv` path.

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;
use nix_formats::content_address::{ContentAddress, MethodAlgo};
use nix_formats::derivation::{fixed_output_path, Derivation, DerivationOutput};
use nix_formats::hash::Hash;
use nix_formats::store_path::StorePath;

use crate::error::ProtocolError;
use crate::ser::{WireCtx, WireDecode, WireEncode};
use crate::wire::encoder::{put_bytes, put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

/// A derivation without input derivations: what a build needs once its inputs exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasicDerivation {
    /// The derivation's name (from its `.drv` path; not sent on the wire).
    pub name: String,
    /// Outputs by name.
    pub outputs: BTreeMap<String, DerivationOutput>,
    /// Input sources: every store path the build needs.
    pub input_srcs: BTreeSet<StorePath>,
    /// The system type.
    pub system: Vec<u8>,
    /// The builder program.
    pub builder: Vec<u8>,
    /// The builder's arguments.
    pub args: Vec<Vec<u8>>,
    /// The builder's environment.
    pub env: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl From<Derivation> for BasicDerivation {
    /// Drops the input derivations.
    fn from(drv: Derivation) -> Self {
        Self {
            name: drv.name,
            outputs: drv.outputs,
            input_srcs: drv.input_srcs,
            system: drv.system,
            builder: drv.builder,
            args: drv.args,
            env: drv.env,
        }
    }
}

impl BasicDerivation {
    /// The derivation with no input derivations.
    pub fn into_derivation(self) -> Derivation {
        Derivation {
            name: self.name,
            outputs: self.outputs,
            input_drvs: BTreeMap::new(),
            input_srcs: self.input_srcs,
            system: self.system,
            builder: self.builder,
            args: self.args,
            env: self.env,
        }
    }

    /// Appends the wire form. A fixed output's path is computed from its content address and the
    /// name, as Nix does.
    pub fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(out, self.outputs.len() as u64);
        for (name, output) in &self.outputs {
            put_str(out, name);
            let (path, method_algo, hash) = match output {
                DerivationOutput::InputAddressed(p) => (ctx.store_dir.print(p), String::new(), String::new()),
                DerivationOutput::CaFixed(ca) => {
                    let p = fixed_output_path(&ctx.store_dir, ca, &self.name, name)
                        .map_err(|e| ctx.unrepresentable(e.to_string()))?;
                    (ctx.store_dir.print(&p), ca.method_algo().to_string(), ca.hash.to_base16())
                }
                DerivationOutput::CaFloating(ma) => (String::new(), ma.to_string(), String::new()),
                DerivationOutput::Deferred => (String::new(), String::new(), String::new()),
                DerivationOutput::Impure(ma) => (String::new(), ma.to_string(), "impure".to_owned()),
            };
            put_str(out, &path);
            put_str(out, &method_algo);
            put_str(out, &hash);
        }
        self.input_srcs.encode(out, ctx)?;
        put_bytes(out, &self.system);
        put_bytes(out, &self.builder);
        put_u64(out, self.args.len() as u64);
        for arg in &self.args {
            put_bytes(out, arg);
        }
        put_u64(out, self.env.len() as u64);
        for (k, v) in &self.env {
            put_bytes(out, k);
            put_bytes(out, v);
        }
        Ok(())
    }

    /// Decodes the wire form of a derivation named `name`. Outputs are read as Nix 2.26's
    /// `parseDerivationOutput` reads them: a fixed output's stated path must be absolute but is
    /// otherwise ignored (its path follows from the hash). The `git:` method, which Nix only
    /// accepts with an experimental feature, is refused. Of duplicate names, the last counts.
    pub fn decode(d: &mut Decoder<'_>, ctx: &WireCtx, name: &str) -> Result<Self, DecodeError> {
        let mut drv = BasicDerivation { name: name.to_owned(), ..Default::default() };
        let count = d.read_count()?;
        // An output is four strings, an argument one, an environment variable two.
        d.items(count, 32, |d| {
            let output_name = d.read_str()?.to_owned();
            let path = d.read_str()?;
            let method_algo = d.read_str()?;
            let hash = d.read_str()?;
            let output = parse_output(ctx, name, &output_name, path, method_algo, hash)?;
            drv.outputs.insert(output_name, output);
            Ok(())
        })?;
        drv.input_srcs = BTreeSet::decode(d, ctx)?;
        drv.system = d.read_bytes()?.to_vec();
        drv.builder = d.read_bytes()?.to_vec();
        let count = d.read_count()?;
        drv.args = Vec::with_capacity(d.capacity_for(count, 8));
        d.items(count, 8, |d| {
            drv.args.push(d.read_bytes()?.to_vec());
            Ok(())
        })?;
        let count = d.read_count()?;
        d.items(count, 16, |d| {
            let key = d.read_bytes()?.to_vec();
            let value = d.read_bytes()?.to_vec();
            drv.env.insert(key, value);
            Ok(())
        })?;
        Ok(drv)
    }
}

fn parse_output(
    ctx: &WireCtx,
    drv_name: &str,
    output: &str,
    path: &str,
    method_algo: &str,
    hash: &str,
) -> Result<DerivationOutput, DecodeError> {
    let bad = |message| ProtocolError::BadDerivationOutput { output: output.to_owned(), message };
    if method_algo.is_empty() {
        if !hash.is_empty() {
            return Err(bad("a hash without a hash algorithm").into());
        }
        if path.is_empty() {
            return Ok(DerivationOutput::Deferred);
        }
        return Ok(DerivationOutput::InputAddressed(ctx.store_dir.parse(path)?));
    }
    let method_algo = MethodAlgo::parse(method_algo).map_err(ProtocolError::from)?;
    if hash == "impure" {
        if !path.is_empty() {
            return Err(bad("impure derivation output should not specify output path").into());
        }
        return Ok(DerivationOutput::Impure(method_algo));
    }
    if hash.is_empty() {
        if !path.is_empty() {
            return Err(bad("content-addressed derivation output should not specify output path").into());
        }
        return Ok(DerivationOutput::CaFloating(method_algo));
    }
    if !path.starts_with('/') {
        return Err(bad("the path of a fixed output must be absolute").into());
    }
    let hash = Hash::parse_bare(hash, method_algo.algo)?;
    let ca = ContentAddress { method: method_algo.method, hash };
    // Nix ignores the stated path and computes it when it needs it. An output whose path cannot
    // be computed (the derivation and output names do not make a valid store path name) could
    // neither be built nor sent on, so it is refused here.
    if fixed_output_path(&ctx.store_dir, &ca, drv_name, output).is_err() {
        return Err(bad("its path cannot be computed from the names and the content address").into());
    }
    Ok(DerivationOutput::CaFixed(ca))
}

#[cfg(test)]
pub(crate) mod strategies {
    use nix_formats::content_address::Method;
    use nix_formats::hash::Algorithm;
    use proptest::collection::{btree_map, btree_set, vec};
    use proptest::prelude::*;

    use super::*;
    use crate::ser::strategies::{hash_of, non_drv_path, output_name, store_path};

    fn method_algo() -> impl Strategy<Value = MethodAlgo> {
        (0..3u8, proptest::sample::select(Algorithm::ALL.to_vec())).prop_map(|(m, algo)| match m {
            0 => MethodAlgo { method: Method::Text, algo: Algorithm::Sha256 },
            1 => MethodAlgo { method: Method::Flat, algo },
            _ => MethodAlgo { method: Method::Nar, algo },
        })
    }

    fn output() -> impl Strategy<Value = DerivationOutput> {
        prop_oneof![
            non_drv_path().prop_map(DerivationOutput::InputAddressed),
            method_algo().prop_flat_map(|ma| hash_of(ma.algo)
                .prop_map(move |hash| DerivationOutput::CaFixed(ContentAddress { method: ma.method, hash }))),
            method_algo().prop_map(DerivationOutput::CaFloating),
            Just(DerivationOutput::Deferred),
            method_algo().prop_map(DerivationOutput::Impure),
        ]
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..12)
    }

    /// A basic derivation named `name`.
    pub(crate) fn basic_derivation(name: String) -> impl Strategy<Value = BasicDerivation> {
        (
            btree_map(output_name(), output(), 0..4),
            btree_set(store_path(), 0..3),
            bytes(),
            bytes(),
            vec(bytes(), 0..4),
            btree_map(bytes(), bytes(), 0..4),
        )
            .prop_map(move |(outputs, input_srcs, system, builder, args, env)| BasicDerivation {
                name: name.clone(),
                outputs,
                input_srcs,
                system,
                builder,
                args,
                env,
            })
    }
}

#[cfg(test)]
mod tests {
    use nix_formats::content_address::Method;
    use nix_formats::hash::Algorithm;
    use proptest::prelude::*;

    use super::strategies::basic_derivation;
    use super::*;

    fn decode_all(bytes: &[u8], name: &str) -> Result<BasicDerivation, ProtocolError> {
        let ctx = WireCtx::default();
        let mut d = Decoder::new(bytes, ctx.limits);
        let drv = BasicDerivation::decode(&mut d, &ctx, name).map_err(DecodeError::at_eof)?;
        assert!(d.remaining().is_empty());
        Ok(drv)
    }

    proptest! {
        #[test]
        fn round_trip(drv in basic_derivation("hello-1.0".into())) {
            let ctx = WireCtx::default();
            let mut out = BytesMut::new();
            drv.encode(&mut out, &ctx).unwrap();
            prop_assert_eq!(decode_all(&out, "hello-1.0").unwrap(), drv.clone());
            // The same derivation through nix-formats' type and back.
            prop_assert_eq!(BasicDerivation::from(drv.clone().into_derivation()), drv);
            for n in 0..out.len() {
                let r = BasicDerivation::decode(&mut Decoder::new(&out[..n], ctx.limits), &ctx, "hello-1.0");
                prop_assert!(matches!(r, Err(DecodeError::Incomplete { .. })), "prefix of {} bytes", n);
            }
        }
    }

    fn one_output(path: &str, algo: &str, hash: &str) -> Vec<u8> {
        let mut out = BytesMut::new();
        put_u64(&mut out, 1);
        for s in ["out", path, algo, hash] {
            put_str(&mut out, s);
        }
        for _ in 0..5 {
            put_u64(&mut out, 0); // no inputs, empty system and builder, no args, no env
        }
        out.to_vec()
    }

    #[test]
    fn fixed_output_layout() {
        let hash = Hash::of(Algorithm::Sha256, b"x");
        let ca = ContentAddress { method: Method::Nar, hash: hash.clone() };
        let drv = BasicDerivation {
            name: "src".into(),
            outputs: [("out".to_owned(), DerivationOutput::CaFixed(ca.clone()))].into(),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        drv.encode(&mut out, &WireCtx::default()).unwrap();
        let path = fixed_output_path(&Default::default(), &ca, "src", "out").unwrap();
        let expected = one_output(&WireCtx::default().store_dir.print(&path), "r:sha256", &hash.to_base16());
        assert_eq!(&out[..], &expected[..]);
        // Any absolute stated path is accepted, and any bare hash encoding.
        let lenient = one_output("/elsewhere", "r:sha256", &hash.to_nix32());
        assert_eq!(decode_all(&lenient, "src").unwrap(), drv);
    }

    #[test]
    fn malformed_outputs() {
        let bad = |path: &str, algo: &str, hash: &str| decode_all(&one_output(path, algo, hash), "x");
        assert!(matches!(bad("", "", "abc"), Err(ProtocolError::BadDerivationOutput { .. })));
        assert!(matches!(bad("/nix/store/x", "sha256", "impure"), Err(ProtocolError::BadDerivationOutput { .. })));
        assert!(matches!(bad("/nix/store/x", "r:sha256", ""), Err(ProtocolError::BadDerivationOutput { .. })));
        assert!(matches!(bad("relative", "sha256", "00"), Err(ProtocolError::BadDerivationOutput { .. })));
        assert!(matches!(bad("/x", "git:sha1", "00"), Err(ProtocolError::BadContentAddress(_) | ProtocolError::BadHash(_))));
        assert!(matches!(bad("/x", "sha256", "00"), Err(ProtocolError::BadHash(_))));
        assert!(matches!(bad("/tmp/abc", "", ""), Err(ProtocolError::BadStorePath(_))));
        assert_eq!(bad("", "", "").unwrap().outputs["out"], DerivationOutput::Deferred);
    }

    /// Found by the `worker_request` fuzz target: a fixed output named `r8.hq39QI[.y` decoded,
    /// but the derivation could not be encoded again, since `[` cannot be in a store path name.
    #[test]
    fn fixed_output_whose_path_cannot_be_computed() {
        let hash = Hash::of(Algorithm::Sha1, b"x").to_base16();
        let mut bytes = BytesMut::new();
        put_u64(&mut bytes, 1);
        for s in ["r8.hq39QI[.y", "/nix/store/anything", "r:sha1", &hash] {
            put_str(&mut bytes, s);
        }
        for _ in 0..5 {
            put_u64(&mut bytes, 0);
        }
        let r = decode_all(&bytes, "hello");
        assert!(
            matches!(&r, Err(ProtocolError::BadDerivationOutput { output, .. }) if output == "r8.hq39QI[.y"),
            "{r:?}"
        );
        // The same output under a valid name decodes, and encodes again.
        let good = one_output("/nix/store/anything", "r:sha1", &hash);
        let drv = decode_all(&good, "hello").unwrap();
        let mut out = BytesMut::new();
        drv.encode(&mut out, &WireCtx::default()).unwrap();
        assert_eq!(decode_all(&out, "hello").unwrap(), drv);
    }
}
