//! Proptest strategies for every serialised type, shared by the unit tests.

use std::collections::{BTreeMap, BTreeSet};

use nix_formats::build_result::{BuildResult, BuildStatus, KeyedBuildResult};
use nix_formats::content_address::{ContentAddress, Method};
use nix_formats::derived_path::{DerivedPath, OutputsSpec, SingleDerivedPath};
use nix_formats::hash::{Algorithm, Hash};
use nix_formats::realisation::{DrvOutput, Realisation};
use nix_formats::store_path::StorePath;
use proptest::prelude::*;

use crate::types::{BuildMode, BuildOptions, ClientHandshakeInfo, TrustedFlag, UnkeyedValidPathInfo};

/// Any valid store path name.
pub(crate) fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9+_?=][a-zA-Z0-9+._?=-]{0,30}"
}

/// Any valid store path.
pub(crate) fn store_path() -> impl Strategy<Value = StorePath> {
    (proptest::array::uniform20(any::<u8>()), name()).prop_map(|(d, n)| StorePath::from_digest(&d, &n).unwrap())
}

/// A store path whose name ends in `.drv`.
pub(crate) fn drv_path() -> impl Strategy<Value = StorePath> {
    (proptest::array::uniform20(any::<u8>()), name())
        .prop_map(|(d, n)| StorePath::from_digest(&d, &format!("{n}.drv")).unwrap())
}

/// A store path whose name does not end in `.drv`.
pub(crate) fn non_drv_path() -> impl Strategy<Value = StorePath> {
    store_path().prop_filter("not a derivation", |p| !p.is_derivation())
}

/// A hash of `algo`.
pub(crate) fn hash_of(algo: Algorithm) -> impl Strategy<Value = Hash> {
    proptest::collection::vec(any::<u8>(), algo.size()).prop_map(move |d| Hash::from_digest(algo, &d).unwrap())
}

/// A hash of any algorithm.
pub(crate) fn any_hash() -> impl Strategy<Value = Hash> {
    prop_oneof![hash_of(Algorithm::Md5), hash_of(Algorithm::Sha1), hash_of(Algorithm::Sha256), hash_of(Algorithm::Sha512)]
}

/// Any content address.
pub(crate) fn content_address() -> impl Strategy<Value = ContentAddress> {
    prop_oneof![
        hash_of(Algorithm::Sha256).prop_map(|hash| ContentAddress { method: Method::Text, hash }),
        any_hash().prop_map(|hash| ContentAddress { method: Method::Flat, hash }),
        any_hash().prop_map(|hash| ContentAddress { method: Method::Nar, hash }),
    ]
}

/// Arbitrary text, including non-ASCII and control characters.
pub(crate) fn text() -> impl Strategy<Value = String> {
    "\\PC{0,20}|[\\x00-\\x1f\"\\\\é大]{0,8}"
}

/// A valid output name.
pub(crate) fn output_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9+_?=][a-zA-Z0-9+._?=-]{0,12}"
}

/// A derivation output id.
pub(crate) fn drv_output() -> impl Strategy<Value = DrvOutput> {
    (any_hash(), output_name()).prop_map(|(drv_hash, output_name)| DrvOutput { drv_hash, output_name })
}

/// A realisation with signatures and dependencies.
pub(crate) fn realisation() -> impl Strategy<Value = Realisation> {
    (
        drv_output(),
        store_path(),
        proptest::collection::btree_set(text(), 0..3),
        proptest::collection::btree_map(drv_output(), store_path(), 0..3),
    )
        .prop_map(|(id, out_path, signatures, dependent_realisations)| Realisation {
            id,
            out_path,
            signatures,
            dependent_realisations,
        })
}

/// A non-empty set of output names.
pub(crate) fn outputs_spec() -> impl Strategy<Value = OutputsSpec> {
    prop_oneof![
        Just(OutputsSpec::All),
        proptest::collection::btree_set(output_name(), 1..4).prop_map(OutputsSpec::Names)
    ]
}

/// A derived path that the worker protocol can carry at `minor`.
pub(crate) fn derived_path(minor: u8) -> BoxedStrategy<DerivedPath> {
    if minor >= 30 {
        let single = (drv_path(), proptest::collection::vec(output_name(), 0..3)).prop_map(|(drv, outs)| {
            outs.into_iter().fold(SingleDerivedPath::Opaque(drv), |acc, output| SingleDerivedPath::Built {
                drv_path: Box::new(acc),
                output,
            })
        });
        prop_oneof![
            store_path().prop_map(DerivedPath::Opaque),
            (single, outputs_spec()).prop_map(|(drv_path, outputs)| DerivedPath::Built { drv_path, outputs }),
        ]
        .boxed()
    } else {
        prop_oneof![
            non_drv_path().prop_map(DerivedPath::Opaque),
            (drv_path(), outputs_spec()).prop_map(|(drv, outputs)| DerivedPath::Built {
                drv_path: SingleDerivedPath::Opaque(drv),
                outputs
            }),
        ]
        .boxed()
    }
}

/// A build status, known or not.
pub(crate) fn build_status() -> impl Strategy<Value = BuildStatus> {
    prop_oneof![(0u32..15).prop_map(BuildStatus::from_code), (15u32..).prop_map(BuildStatus::Unknown)]
}

/// A build result with every field set (built outputs keyed by their ids' output names).
pub(crate) fn build_result() -> impl Strategy<Value = BuildResult> {
    (
        (build_status(), text(), any::<u32>(), any::<bool>(), 0..i64::MAX, 0..i64::MAX),
        (proptest::option::of(0..i64::MAX), proptest::option::of(0..i64::MAX)),
        proptest::collection::vec(realisation(), 0..3),
    )
        .prop_map(|((status, msg, times, nondet, start, stop), (user, system), outputs)| BuildResult {
            status,
            error_msg: msg,
            times_built: times,
            is_non_deterministic: nondet,
            start_time: start,
            stop_time: stop,
            cpu_user_micros: user,
            cpu_system_micros: system,
            built_outputs: outputs.into_iter().map(|r| (r.id.output_name.clone(), r)).collect(),
        })
}

/// A keyed build result carriable at worker `minor`.
pub(crate) fn keyed_build_result(minor: u8) -> impl Strategy<Value = KeyedBuildResult> {
    (derived_path(minor), build_result()).prop_map(|(path, result)| KeyedBuildResult { path, result })
}

/// An unkeyed path info with a SHA-256 NAR hash and every field set.
pub(crate) fn unkeyed_info() -> impl Strategy<Value = UnkeyedValidPathInfo> {
    (
        proptest::option::of(store_path()),
        hash_of(Algorithm::Sha256),
        proptest::collection::btree_set(store_path(), 0..4),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        proptest::collection::btree_set(text(), 0..3),
        proptest::option::of(content_address()),
    )
        .prop_map(|(deriver, nar_hash, references, registration_time, nar_size, ultimate, sigs, ca)| {
            UnkeyedValidPathInfo { deriver, nar_hash, references, registration_time, nar_size, ultimate, sigs, ca }
        })
}

/// A build mode.
pub(crate) fn build_mode() -> impl Strategy<Value = BuildMode> {
    prop_oneof![Just(BuildMode::Normal), Just(BuildMode::Repair), Just(BuildMode::Check)]
}

/// An optional trust flag.
pub(crate) fn trusted_flag() -> impl Strategy<Value = Option<TrustedFlag>> {
    proptest::option::of(prop_oneof![Just(TrustedFlag::Trusted), Just(TrustedFlag::NotTrusted)])
}

/// Handshake info with both fields set.
pub(crate) fn client_handshake_info() -> impl Strategy<Value = ClientHandshakeInfo> {
    (text(), trusted_flag()).prop_map(|(v, t)| ClientHandshakeInfo { daemon_nix_version: Some(v), remote_trusts_us: t })
}

/// Serve build options with every field set.
pub(crate) fn build_options() -> impl Strategy<Value = BuildOptions> {
    (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>(), any::<bool>()).prop_map(|(a, b, c, d, e, f)| {
        BuildOptions {
            max_silent_time: a,
            build_timeout: b,
            max_log_size: Some(c),
            nr_repeats: Some(d),
            enforce_determinism: Some(e),
            keep_failed: Some(f),
        }
    })
}

/// Collections of strings, including nested ones.
pub(crate) fn string_collections() -> impl Strategy<Value = (Vec<String>, BTreeSet<String>, BTreeMap<String, Vec<String>>)> {
    (
        proptest::collection::vec(text(), 0..5),
        proptest::collection::btree_set(text(), 0..5),
        proptest::collection::btree_map(text(), proptest::collection::vec(text(), 0..3), 0..4),
    )
}
