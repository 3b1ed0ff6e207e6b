//! Proptest strategies for every request and reply at a given worker minor version, and what
//! survives of a value encoded at that version (tests only).

use bytes::Bytes;
use nix_formats::build_result::{BuildResult, KeyedBuildResult};
use nix_formats::hash::Algorithm;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

use super::basic_derivation::strategies::basic_derivation;
use super::opcode::Opcode;
use super::request::add::*;
use super::request::build::*;
use super::request::gc::*;
use super::request::query::*;
use super::request::Request;
use super::response::{AddToStoreReply, GcResult, MissingPaths, RealisationReply, Response, SubstitutablePathInfo};
use super::set_options::{ClientOptions, Verbosity};
use crate::ser::strategies::*;

fn algorithm() -> impl Strategy<Value = Algorithm> {
    proptest::sample::select(Algorithm::ALL.to_vec())
}

fn ca_method_algo() -> impl Strategy<Value = CaMethodAlgo> {
    let method = proptest::sample::select(vec![
        IngestionMethod::Text,
        IngestionMethod::Flat,
        IngestionMethod::Nar,
        IngestionMethod::Git,
    ]);
    (method, algorithm()).prop_map(|(method, algo)| CaMethodAlgo { method, algo })
}

fn paths() -> impl Strategy<Value = std::collections::BTreeSet<nix_formats::store_path::StorePath>> {
    btree_set(store_path(), 0..4)
}

fn client_options() -> impl Strategy<Value = ClientOptions> {
    (
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<bool>(), any::<bool>(), any::<u32>(), any::<bool>(), any::<u32>(), any::<bool>()),
        btree_map(text(), text(), 0..4),
    )
        .prop_map(|((kf, kg, tf, verbosity, jobs, silent), (hook, verbose, log, trace, cores, subs), overrides)| {
            ClientOptions {
                keep_failed: kf,
                keep_going: kg,
                try_fallback: tf,
                verbosity: Verbosity::from_code(verbosity),
                max_build_jobs: jobs,
                max_silent_time: silent,
                use_build_hook: hook,
                verbose_build: verbose,
                log_type: log,
                print_build_trace: trace,
                build_cores: cores,
                use_substitutes: subs,
                overrides,
            }
        })
}

/// A request for `op` valid at worker `1.minor`. Panics for the removed operations.
pub(crate) fn request_for(op: Opcode, minor: u8) -> BoxedStrategy<Request> {
    use Opcode as O;
    let path = store_path;
    match op {
        O::IsValidPath => path().prop_map(|path| IsValidPath { path }.into()).boxed(),
        O::HasSubstitutes => path().prop_map(|path| HasSubstitutes { path }.into()).boxed(),
        O::QueryPathHash => path().prop_map(|path| QueryPathHash { path }.into()).boxed(),
        O::QueryReferences => path().prop_map(|path| QueryReferences { path }.into()).boxed(),
        O::QueryReferrers => path().prop_map(|path| QueryReferrers { path }.into()).boxed(),
        O::QueryDeriver => path().prop_map(|path| QueryDeriver { path }.into()).boxed(),
        O::QueryValidDerivers => path().prop_map(|path| QueryValidDerivers { path }.into()).boxed(),
        O::QueryDerivationOutputs => path().prop_map(|path| QueryDerivationOutputs { path }.into()).boxed(),
        O::QueryDerivationOutputNames => path().prop_map(|path| QueryDerivationOutputNames { path }.into()).boxed(),
        O::QueryDerivationOutputMap => path().prop_map(|path| QueryDerivationOutputMap { path }.into()).boxed(),
        O::QueryPathInfo => path().prop_map(|path| QueryPathInfo { path }.into()).boxed(),
        O::QuerySubstitutablePathInfo => path().prop_map(|path| QuerySubstitutablePathInfo { path }.into()).boxed(),
        O::EnsurePath => path().prop_map(|path| EnsurePath { path }.into()).boxed(),
        O::AddTempRoot => path().prop_map(|path| AddTempRoot { path }.into()).boxed(),
        O::NarFromPath => path().prop_map(|path| NarFromPath { path }.into()).boxed(),
        O::QueryPathFromHashPart => text().prop_map(|hash_part| QueryPathFromHashPart { hash_part }.into()).boxed(),
        O::QueryAllValidPaths => Just(QueryAllValidPaths {}.into()).boxed(),
        O::SyncWithGC => Just(SyncWithGC {}.into()).boxed(),
        O::FindRoots => Just(FindRoots {}.into()).boxed(),
        O::OptimiseStore => Just(OptimiseStore {}.into()).boxed(),
        O::ImportPaths => Just(ImportPaths {}.into()).boxed(),
        O::QueryValidPaths => {
            (paths(), any::<bool>()).prop_map(|(paths, substitute)| QueryValidPaths { paths, substitute }.into()).boxed()
        }
        O::QuerySubstitutablePaths => paths().prop_map(|paths| QuerySubstitutablePaths { paths }.into()).boxed(),
        O::QuerySubstitutablePathInfos => btree_map(store_path(), proptest::option::of(content_address()), 0..4)
            .prop_map(|paths| QuerySubstitutablePathInfos { paths }.into())
            .boxed(),
        O::QueryMissing => vec(derived_path(minor), 0..4).prop_map(|targets| QueryMissing { targets }.into()).boxed(),
        O::QueryRealisation => drv_output().prop_map(|id| QueryRealisation { id }.into()).boxed(),
        O::AddToStore if minor >= 25 => (name(), ca_method_algo(), paths(), any::<bool>())
            .prop_map(|(name, method, references, repair)| {
                AddToStore::Framed(AddToStoreFramed { name, method, references, repair }).into()
            })
            .boxed(),
        O::AddToStore => (name(), any::<bool>(), any::<bool>(), algorithm())
            .prop_map(|(name, fixed, recursive, algo)| {
                AddToStore::Legacy(AddToStoreLegacy { name, fixed, recursive, algo }).into()
            })
            .boxed(),
        O::AddTextToStore => (name(), vec(any::<u8>(), 0..40), paths())
            .prop_map(|(name, text, references)| AddTextToStore { name, text: Bytes::from(text), references }.into())
            .boxed(),
        O::AddToStoreNar => (unkeyed_info(), store_path(), any::<bool>(), any::<bool>())
            .prop_map(|(info, path, repair, dont_check_sigs)| {
                AddToStoreNar { info: info.with_path(path), repair, dont_check_sigs }.into()
            })
            .boxed(),
        O::AddMultipleToStore => (any::<bool>(), any::<bool>())
            .prop_map(|(repair, dont_check_sigs)| AddMultipleToStore { repair, dont_check_sigs }.into())
            .boxed(),
        O::AddBuildLog => drv_path().prop_map(|drv_path| AddBuildLog { drv_path }.into()).boxed(),
        O::AddSignatures => {
            (path(), btree_set(text(), 0..3)).prop_map(|(path, sigs)| AddSignatures { path, sigs }.into()).boxed()
        }
        O::ExportPath => (path(), any::<bool>()).prop_map(|(path, sign)| ExportPath { path, sign }.into()).boxed(),
        O::RegisterDrvOutput => realisation().prop_map(|realisation| RegisterDrvOutput { realisation }.into()).boxed(),
        O::BuildPaths => (vec(derived_path(minor), 0..4), build_mode())
            .prop_map(|(paths, mode)| BuildPaths { paths, mode }.into())
            .boxed(),
        O::BuildPathsWithResults => (vec(derived_path(minor), 0..4), build_mode())
            .prop_map(|(paths, mode)| BuildPathsWithResults { paths, mode }.into())
            .boxed(),
        O::BuildDerivation => drv_path()
            .prop_flat_map(|drv_path| {
                let name = drv_path.name().trim_end_matches(".drv").to_owned();
                (Just(drv_path), basic_derivation(name), build_mode())
            })
            .prop_map(|(drv_path, drv, mode)| BuildDerivation { drv_path, drv, mode }.into())
            .boxed(),
        O::AddIndirectRoot => text().prop_map(|link| AddIndirectRoot { link }.into()).boxed(),
        O::AddPermRoot => {
            (path(), text()).prop_map(|(path, gc_root)| AddPermRoot { path, gc_root }.into()).boxed()
        }
        O::VerifyStore => (any::<bool>(), any::<bool>())
            .prop_map(|(check_contents, repair)| VerifyStore { check_contents, repair }.into())
            .boxed(),
        O::CollectGarbage => {
            let action = proptest::sample::select(vec![
                GcAction::ReturnLive,
                GcAction::ReturnDead,
                GcAction::DeleteDead,
                GcAction::DeleteSpecific,
            ]);
            (action, paths(), any::<bool>(), any::<u64>())
                .prop_map(|(action, paths_to_delete, ignore_liveness, max_freed)| {
                    CollectGarbage { action, paths_to_delete, ignore_liveness, max_freed }.into()
                })
                .boxed()
        }
        O::SetOptions => client_options().prop_map(Request::SetOptions).boxed(),
        O::QueryFailedPaths | O::ClearFailedPaths => panic!("{op} is removed"),
    }
}

/// What survives of a request encoded at `1.minor`.
pub(crate) fn project_request(r: &Request, minor: u8) -> Request {
    let mut r = r.clone();
    match &mut r {
        Request::QueryValidPaths(q) if minor < 27 => q.substitute = false,
        Request::QuerySubstitutablePathInfos(q) if minor < 22 => q.paths.values_mut().for_each(|ca| *ca = None),
        Request::RegisterDrvOutput(q) if minor < 31 => {
            q.realisation.signatures.clear();
            q.realisation.dependent_realisations.clear();
        }
        Request::SetOptions(o) if minor < 12 => o.overrides.clear(),
        _ => {}
    }
    r
}

fn subst_info() -> impl Strategy<Value = SubstitutablePathInfo> {
    (proptest::option::of(store_path()), paths(), any::<u64>(), any::<u64>()).prop_map(
        |(deriver, references, download_size, nar_size)| SubstitutablePathInfo {
            deriver,
            references,
            download_size,
            nar_size,
        },
    )
}

/// A reply to `op` valid at worker `1.minor` (older reply forms included where the newer form
/// can be written in their place). Panics for the removed operations.
pub(crate) fn response_for(op: Opcode, minor: u8) -> BoxedStrategy<Response> {
    use Opcode as O;
    use Response as R;
    match op {
        O::IsValidPath => any::<bool>().prop_map(R::IsValidPath).boxed(),
        O::HasSubstitutes => any::<bool>().prop_map(R::HasSubstitutes).boxed(),
        O::VerifyStore => any::<bool>().prop_map(R::VerifyStore).boxed(),
        O::QueryPathHash => hash_of(Algorithm::Sha256).prop_map(R::QueryPathHash).boxed(),
        O::QueryReferences => paths().prop_map(R::QueryReferences).boxed(),
        O::QueryReferrers => paths().prop_map(R::QueryReferrers).boxed(),
        O::QueryDerivationOutputs => paths().prop_map(R::QueryDerivationOutputs).boxed(),
        O::QueryAllValidPaths => paths().prop_map(R::QueryAllValidPaths).boxed(),
        O::QueryValidPaths => paths().prop_map(R::QueryValidPaths).boxed(),
        O::QuerySubstitutablePaths => paths().prop_map(R::QuerySubstitutablePaths).boxed(),
        O::QueryValidDerivers => paths().prop_map(R::QueryValidDerivers).boxed(),
        O::AddToStore => {
            let info = (unkeyed_info(), store_path()).prop_map(|(i, p)| AddToStoreReply::Info(i.with_path(p)));
            if minor >= 25 {
                info.prop_map(R::AddToStore).boxed()
            } else {
                prop_oneof![info, store_path().prop_map(AddToStoreReply::Path)].prop_map(R::AddToStore).boxed()
            }
        }
        O::AddTextToStore => store_path().prop_map(R::AddTextToStore).boxed(),
        O::BuildPaths => Just(R::BuildPaths).boxed(),
        O::EnsurePath => Just(R::EnsurePath).boxed(),
        O::AddTempRoot => Just(R::AddTempRoot).boxed(),
        O::AddIndirectRoot => Just(R::AddIndirectRoot).boxed(),
        O::SyncWithGC => Just(R::SyncWithGC).boxed(),
        O::ExportPath => Just(R::ExportPath).boxed(),
        O::OptimiseStore => Just(R::OptimiseStore).boxed(),
        O::AddSignatures => Just(R::AddSignatures).boxed(),
        O::AddBuildLog => Just(R::AddBuildLog).boxed(),
        O::SetOptions => Just(R::SetOptions).boxed(),
        O::NarFromPath => Just(R::NarFromPath).boxed(),
        O::AddToStoreNar => Just(R::AddToStoreNar).boxed(),
        O::RegisterDrvOutput => Just(R::RegisterDrvOutput).boxed(),
        O::AddMultipleToStore => Just(R::AddMultipleToStore).boxed(),
        O::FindRoots => btree_map(store_path(), btree_set(text(), 1..3), 0..4).prop_map(R::FindRoots).boxed(),
        O::QueryDeriver => proptest::option::of(store_path()).prop_map(R::QueryDeriver).boxed(),
        O::QueryPathFromHashPart => proptest::option::of(store_path()).prop_map(R::QueryPathFromHashPart).boxed(),
        O::CollectGarbage => (btree_set(text(), 0..4), any::<u64>())
            .prop_map(|(paths, bytes_freed)| R::CollectGarbage(GcResult { paths, bytes_freed }))
            .boxed(),
        O::QuerySubstitutablePathInfo => proptest::option::of(subst_info()).prop_map(R::QuerySubstitutablePathInfo).boxed(),
        O::QueryPathInfo => proptest::option::of(unkeyed_info()).prop_map(R::QueryPathInfo).boxed(),
        O::ImportPaths => vec(store_path(), 0..4).prop_map(R::ImportPaths).boxed(),
        O::QueryDerivationOutputNames => btree_set(output_name(), 0..4).prop_map(R::QueryDerivationOutputNames).boxed(),
        O::QuerySubstitutablePathInfos => {
            btree_map(store_path(), subst_info(), 0..3).prop_map(R::QuerySubstitutablePathInfos).boxed()
        }
        O::BuildDerivation => build_result().prop_map(R::BuildDerivation).boxed(),
        O::QueryMissing => (paths(), paths(), paths(), any::<u64>(), any::<u64>())
            .prop_map(|(will_build, will_substitute, unknown, download_size, nar_size)| {
                R::QueryMissing(MissingPaths { will_build, will_substitute, unknown, download_size, nar_size })
            })
            .boxed(),
        O::QueryDerivationOutputMap => btree_map(output_name(), proptest::option::of(store_path()), 0..4)
            .prop_map(R::QueryDerivationOutputMap)
            .boxed(),
        O::QueryRealisation => {
            let full = btree_set(realisation(), 0..2).prop_map(RealisationReply::Realisations);
            if minor >= 31 {
                full.prop_map(R::QueryRealisation).boxed()
            } else {
                prop_oneof![full, paths().prop_map(RealisationReply::Paths)].prop_map(R::QueryRealisation).boxed()
            }
        }
        O::BuildPathsWithResults => vec(keyed_build_result(minor), 0..3).prop_map(R::BuildPathsWithResults).boxed(),
        O::AddPermRoot => text().prop_map(R::AddPermRoot).boxed(),
        O::QueryFailedPaths | O::ClearFailedPaths => panic!("{op} is removed"),
    }
}

/// What survives of a build result at worker `1.minor`.
fn project_build_result(r: &BuildResult, minor: u8) -> BuildResult {
    let mut r = r.clone();
    if minor < 29 {
        (r.times_built, r.is_non_deterministic, r.start_time, r.stop_time) = (0, false, 0, 0);
    }
    if minor < 37 {
        (r.cpu_user_micros, r.cpu_system_micros) = (None, None);
    }
    if minor < 28 {
        r.built_outputs.clear();
    }
    r
}

/// What survives of a reply encoded at `1.minor`.
pub(crate) fn project_response(r: &Response, minor: u8) -> Response {
    match r {
        Response::AddToStore(AddToStoreReply::Info(info)) if minor < 25 => {
            Response::AddToStore(AddToStoreReply::Path(info.path.clone()))
        }
        Response::QueryRealisation(RealisationReply::Realisations(rs)) if minor < 31 => {
            Response::QueryRealisation(RealisationReply::Paths(rs.iter().map(|r| r.out_path.clone()).collect()))
        }
        Response::BuildDerivation(result) => Response::BuildDerivation(project_build_result(result, minor)),
        Response::BuildPathsWithResults(results) => Response::BuildPathsWithResults(
            results
                .iter()
                .map(|k| KeyedBuildResult { path: k.path.clone(), result: project_build_result(&k.result, minor) })
                .collect(),
        ),
        other => other.clone(),
    }
}
