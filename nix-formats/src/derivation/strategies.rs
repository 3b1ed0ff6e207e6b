//! Proptest strategies for random derivations (tests only).

use std::collections::BTreeMap;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use crate::content_address::{ContentAddress, Method, MethodAlgo};
use crate::hash::{Algorithm, Hash};
use crate::store_path::StorePath;

use super::{Derivation, DerivationOutput, InputOutputs};

fn store_path(suffix: &'static str) -> impl Strategy<Value = StorePath> {
    (proptest::array::uniform20(any::<u8>()), "[a-zA-Z0-9+_?=][a-zA-Z0-9+._?=-]{0,12}")
        .prop_map(move |(digest, name)| StorePath::from_digest(&digest, &format!("{name}{suffix}")).unwrap())
}

fn method_algo() -> impl Strategy<Value = MethodAlgo> {
    (0..3u8, proptest::sample::select(Algorithm::ALL.to_vec())).prop_map(|(m, algo)| match m {
        0 => MethodAlgo { method: Method::Text, algo: Algorithm::Sha256 },
        1 => MethodAlgo { method: Method::Flat, algo },
        _ => MethodAlgo { method: Method::Nar, algo },
    })
}

fn output() -> impl Strategy<Value = DerivationOutput> {
    prop_oneof![
        store_path("").prop_map(DerivationOutput::InputAddressed),
        (method_algo(), vec(any::<u8>(), 64)).prop_map(|(ma, bytes)| {
            let hash = Hash::from_digest(ma.algo, &bytes[..ma.algo.size()]).unwrap();
            DerivationOutput::CaFixed(ContentAddress { method: ma.method, hash })
        }),
        method_algo().prop_map(DerivationOutput::CaFloating),
        Just(DerivationOutput::Deferred),
        method_algo().prop_map(DerivationOutput::Impure),
    ]
}

fn output_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_+.-]{0,7}"
}

fn input_outputs() -> impl Strategy<Value = InputOutputs> {
    let leaf = btree_set(output_name(), 0..3)
        .prop_map(|outputs| InputOutputs { outputs, dynamic_outputs: BTreeMap::new() });
    leaf.prop_recursive(3, 8, 3, |inner| {
        (btree_set(output_name(), 0..3), btree_map(output_name(), inner, 0..3))
            .prop_map(|(outputs, dynamic_outputs)| InputOutputs { outputs, dynamic_outputs })
    })
}

/// Byte strings that favour the characters ATerm escapes.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(prop_oneof![4 => any::<u8>(), 1 => proptest::sample::select(b"\"\\\n\r\t".to_vec())], 0..12)
}

/// UTF-8 strings that favour the characters JSON and ATerm escape.
fn text() -> impl Strategy<Value = Vec<u8>> {
    "(\\PC|[\"\\\\\n\r\t\u{1}\u{8}\u{c}\u{7f}é🦀]){0,10}".prop_map(String::into_bytes)
}

/// Random derivations. With `utf8_only`, every string is UTF-8 (as JSON needs); otherwise the
/// system avoids only `"` and `\`, which Nix writes unescaped there.
pub(crate) fn derivation(utf8_only: bool) -> BoxedStrategy<Derivation> {
    let string = move || if utf8_only { text().boxed() } else { bytes().boxed() };
    let system = if utf8_only {
        "[a-z0-9_é -]{0,12}".prop_map(String::into_bytes).boxed()
    } else {
        vec(any::<u8>().prop_filter("unescaped", |b| *b != b'"' && *b != b'\\'), 0..12).boxed()
    };
    (
        "[a-zA-Z0-9+_?=][a-zA-Z0-9+._?=-]{0,15}",
        btree_map(output_name(), output(), 0..4),
        btree_map(store_path(".drv"), input_outputs(), 0..3),
        btree_set(store_path(""), 0..3),
        system,
        string(),
        vec(string(), 0..4),
        btree_map(string(), string(), 0..5),
    )
        .prop_map(|(name, outputs, input_drvs, input_srcs, system, builder, args, env)| Derivation {
            name,
            outputs,
            input_drvs,
            input_srcs,
            system,
            builder,
            args,
            env,
        })
        .boxed()
}
