//! `hashDerivationModulo` and the output paths it gives, as in Nix 2.26.
//!
//! The hash of a derivation "modulo" fixed-output derivations is what input-addressed output paths
//! are made from:
//! - a fixed-output derivation hashes, per output, to SHA-256 of
//!   `fixed:out:<method prefix><algo>:<base16 hash>:<output path>`, so that only its output's
//!   content, not how it is fetched, reaches the derivations that use it;
//! - an impure derivation hashes to SHA-256 of `impure` for every output (kind deferred);
//! - any other derivation hashes to SHA-256 of its ATerm in which each input derivation's path is
//!   replaced by the base16 modulo hash of the input (inputs with equal hashes merge their output
//!   sets), and, when computing its own output paths, with its output paths and the environment
//!   variables named like its outputs blanked ("masked"). Input derivations are hashed unmasked.
//!
//! Reading input derivations is I/O, so it goes through a [`DerivationReader`]; a [`DrvHashCache`]
//! memoizes the hashes of derivations by path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::hash::{Algorithm, Hash};
use crate::nixbase32;
use crate::store_path::{StoreDir, StorePath, StorePathError};

use super::aterm_parse::{AtermError, AtermLimits};
use super::aterm_print::{unparse, ReplacedInputs};
use super::kind::{DerivationType, DerivationTypeError};
use super::{fixed_output_path, Derivation, DerivationOutput, OutputPathError};

/// Whether a modulo hash can give output paths now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrvHashKind {
    /// Statically determined: input-addressed output paths follow from it.
    Regular,
    /// Depends on outputs not known yet (floating CA or impure somewhere in the closure): the
    /// input-addressed outputs are deferred.
    Deferred,
}

/// The result of `hashDerivationModulo`: a hash for each output, and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrvHash {
    /// One hash per output name. For fixed-output derivations each output has its own hash;
    /// otherwise all outputs share one.
    pub hashes: BTreeMap<String, Hash>,
    /// Whether the hashes are final.
    pub kind: DrvHashKind,
}

impl DrvHash {
    /// The id of one output of the derivation, as used for realisations: `sha256:<hex>!<output>`.
    pub fn output_id(&self, output: &str) -> Option<String> {
        self.hashes.get(output).map(|h| format!("{}:{}!{output}", h.algorithm(), h.to_base16()))
    }
}

/// Errors from computing modulo hashes.
#[derive(Debug, thiserror::Error)]
pub enum HashModuloError {
    /// The outputs do not make a valid derivation kind.
    #[error("derivation '{name}': {source}")]
    Type {
        /// The derivation's name.
        name: String,
        /// What is wrong.
        source: DerivationTypeError,
    },
    /// An input derivation lacks an output that is needed from it.
    #[error("no hash for output '{output}' of derivation '{drv_name}'")]
    MissingOutput {
        /// The output needed.
        output: String,
        /// The name of the derivation that needs it (as Nix reports it).
        drv_name: String,
    },
    /// An input's hash was not supplied.
    #[error("no modulo hash known for input derivation '{0}'")]
    UnknownInput(String),
    /// Input derivations depend on each other in a cycle.
    #[error("input derivations form a cycle through '{0}'")]
    Cycle(String),
    /// An output path cannot be computed.
    #[error(transparent)]
    OutputPath(#[from] OutputPathError),
    /// A derivation name cannot make a valid output path name.
    #[error(transparent)]
    StorePath(#[from] StorePathError),
    /// A path given as an input derivation is not a `.drv`.
    #[error("'{0}' is not a derivation")]
    NotDerivation(String),
    /// An input derivation cannot be read.
    #[error("cannot read derivation '{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An input derivation is larger than the reader's limit.
    #[error("derivation '{0}' is larger than the limit")]
    TooLarge(PathBuf),
    /// An input derivation cannot be parsed.
    #[error("cannot parse derivation '{path}': {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: AtermError,
    },
}

/// Reads input derivations by their store path.
pub trait DerivationReader {
    /// The derivation at `drv_path`, with its name taken from the path.
    fn read_derivation(&mut self, drv_path: &StorePath) -> Result<Derivation, HashModuloError>;
}

/// Reads derivations from the files in one directory (a store directory, or a copy of some of
/// its `.drv` files), by base name.
#[derive(Debug, Clone)]
pub struct DirectoryReader {
    dir: PathBuf,
    store_dir: StoreDir,
    limits: AtermLimits,
}

impl DirectoryReader {
    /// Reads `<dir>/<base name>` and parses it with the store directory `store_dir` (which gives
    /// the paths written inside the files) and default limits.
    pub fn new(dir: impl AsRef<Path>, store_dir: StoreDir) -> Self {
        Self { dir: dir.as_ref().to_owned(), store_dir, limits: AtermLimits::default() }
    }

    /// The same, with explicit parser limits.
    pub fn with_limits(dir: impl AsRef<Path>, store_dir: StoreDir, limits: AtermLimits) -> Self {
        Self { dir: dir.as_ref().to_owned(), store_dir, limits }
    }
}

impl DerivationReader for DirectoryReader {
    fn read_derivation(&mut self, drv_path: &StorePath) -> Result<Derivation, HashModuloError> {
        let name = Derivation::name_from_path(drv_path)
            .ok_or_else(|| HashModuloError::NotDerivation(self.store_dir.print(drv_path)))?;
        let file = self.dir.join(drv_path.to_string());
        let io = |source| HashModuloError::Io { path: file.clone(), source };
        let mut bytes = Vec::new();
        std::fs::File::open(&file)
            .map_err(io)?
            .take(self.limits.max_size as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() > self.limits.max_size {
            return Err(HashModuloError::TooLarge(file));
        }
        Derivation::parse_aterm_with_limits(&bytes, name, &self.store_dir, &self.limits)
            .map_err(|source| HashModuloError::Parse { path: file, source })
    }
}

/// Nix's `hashDerivationModulo` for one derivation, given the modulo hashes of its input
/// derivations through `input_hash` (which Nix computes unmasked, see
/// [`DrvHashCache::path_hash_modulo`]). `mask_outputs` blanks the derivation's own output paths
/// and output environment variables, as for computing input-addressed output paths.
pub fn hash_derivation_modulo(
    drv: &Derivation,
    store_dir: &StoreDir,
    mask_outputs: bool,
    input_hash: &mut dyn FnMut(&StorePath) -> Result<DrvHash, HashModuloError>,
) -> Result<DrvHash, HashModuloError> {
    let drv_type = drv
        .derivation_type()
        .map_err(|source| HashModuloError::Type { name: drv.name.clone(), source })?;

    if drv_type.is_fixed() {
        let mut hashes = BTreeMap::new();
        for (name, output) in &drv.outputs {
            if let DerivationOutput::CaFixed(ca) = output {
                let path = fixed_output_path(store_dir, ca, &drv.name, name)?;
                let text = format!(
                    "fixed:out:{}:{}:{}",
                    ca.method_algo(),
                    ca.hash.to_base16(),
                    store_dir.print(&path)
                );
                hashes.insert(name.clone(), Hash::of(Algorithm::Sha256, text.as_bytes()));
            }
        }
        return Ok(DrvHash { hashes, kind: DrvHashKind::Regular });
    }

    if drv_type.is_impure() {
        let impure = impure_output_hash();
        let hashes = drv.outputs.keys().map(|name| (name.clone(), impure.clone())).collect();
        return Ok(DrvHash { hashes, kind: DrvHashKind::Deferred });
    }

    let mut kind = match drv_type {
        DerivationType::ContentAddressed { fixed: false, .. } => DrvHashKind::Deferred,
        _ => DrvHashKind::Regular,
    };
    let mut inputs = ReplacedInputs::new();
    for (path, node) in &drv.input_drvs {
        let res = input_hash(path)?;
        if res.kind == DrvHashKind::Deferred {
            kind = DrvHashKind::Deferred;
        }
        for output in &node.outputs {
            let h = res.hashes.get(output).ok_or_else(|| HashModuloError::MissingOutput {
                output: output.clone(),
                drv_name: drv.name.clone(),
            })?;
            inputs.entry(h.to_base16()).or_default().insert(output.clone());
        }
    }
    let aterm = unparse(drv, store_dir, mask_outputs, Some(&inputs))?;
    let hash = Hash::of(Algorithm::Sha256, &aterm);
    let hashes = drv.outputs.keys().map(|name| (name.clone(), hash.clone())).collect();
    Ok(DrvHash { hashes, kind })
}

/// The hash every output of an impure derivation gets: SHA-256 of `impure`.
pub fn impure_output_hash() -> Hash {
    Hash::of(Algorithm::Sha256, b"impure")
}

/// Nix's `hashPlaceholder`: the string that stands for an output's path in the environment of a
/// floating content-addressed or impure derivation: `/` + nix32 of SHA-256 of `nix-output:<name>`.
pub fn hash_placeholder(output_name: &str) -> String {
    let h = Hash::of(Algorithm::Sha256, format!("nix-output:{output_name}").as_bytes());
    format!("/{}", nixbase32::encode(h.digest()))
}

/// Memoized modulo hashes of derivations by path (Nix's `drvHashes`).
#[derive(Debug, Clone, Default)]
pub struct DrvHashCache {
    hashes: HashMap<StorePath, DrvHash>,
}

/// One derivation on the work stack of [`DrvHashCache::path_hash_modulo`].
struct Frame {
    path: StorePath,
    drv: Derivation,
    /// Inputs before this index are known to be in the cache.
    next_input: usize,
}

impl DrvHashCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached hash of `drv_path`, if any.
    pub fn get(&self, drv_path: &StorePath) -> Option<&DrvHash> {
        self.hashes.get(drv_path)
    }

    /// Records the (unmasked) modulo hash of a derivation, as the evaluator does right after
    /// writing one.
    pub fn insert(&mut self, drv_path: StorePath, hash: DrvHash) {
        self.hashes.insert(drv_path, hash);
    }

    /// The unmasked modulo hash of the derivation at `drv_path` (Nix's `pathDerivationModulo`),
    /// reading it and its inputs through `reader` as needed. Works without recursion, so deep
    /// dependency chains cannot overflow the stack; a dependency cycle is an error.
    pub fn path_hash_modulo(
        &mut self,
        store_dir: &StoreDir,
        reader: &mut dyn DerivationReader,
        drv_path: &StorePath,
    ) -> Result<DrvHash, HashModuloError> {
        if let Some(h) = self.hashes.get(drv_path) {
            return Ok(h.clone());
        }
        let mut on_stack = HashSet::from([drv_path.clone()]);
        let mut stack =
            vec![Frame { path: drv_path.clone(), drv: reader.read_derivation(drv_path)?, next_input: 0 }];
        while let Some(top) = stack.last_mut() {
            let pending = top
                .drv
                .input_drvs
                .keys()
                .enumerate()
                .skip(top.next_input)
                .find(|(_, p)| !self.hashes.contains_key(*p))
                .map(|(i, p)| (i, p.clone()));
            match pending {
                Some((index, input)) => {
                    top.next_input = index;
                    if !on_stack.insert(input.clone()) {
                        return Err(HashModuloError::Cycle(store_dir.print(&input)));
                    }
                    let drv = reader.read_derivation(&input)?;
                    stack.push(Frame { path: input, drv, next_input: 0 });
                }
                None => {
                    let Some(frame) = stack.pop() else { break };
                    let hash = self.hash_with_cached_inputs(store_dir, &frame.drv, false)?;
                    on_stack.remove(&frame.path);
                    self.hashes.insert(frame.path, hash);
                }
            }
        }
        self.hashes
            .get(drv_path)
            .cloned()
            .ok_or_else(|| HashModuloError::UnknownInput(store_dir.print(drv_path)))
    }

    /// The modulo hash of `drv` (which need not be in any store), reading its inputs through
    /// `reader` as needed. `mask_outputs` as in [`hash_derivation_modulo`].
    pub fn hash_modulo(
        &mut self,
        store_dir: &StoreDir,
        reader: &mut dyn DerivationReader,
        drv: &Derivation,
        mask_outputs: bool,
    ) -> Result<DrvHash, HashModuloError> {
        for input in drv.input_drvs.keys() {
            self.path_hash_modulo(store_dir, reader, input)?;
        }
        self.hash_with_cached_inputs(store_dir, drv, mask_outputs)
    }

    /// The per-output hashes that give input-addressed output paths and output ids (Nix's
    /// `staticOutputHashes`: the masked modulo hash).
    pub fn static_output_hashes(
        &mut self,
        store_dir: &StoreDir,
        reader: &mut dyn DerivationReader,
        drv: &Derivation,
    ) -> Result<BTreeMap<String, Hash>, HashModuloError> {
        Ok(self.hash_modulo(store_dir, reader, drv, true)?.hashes)
    }

    fn hash_with_cached_inputs(
        &self,
        store_dir: &StoreDir,
        drv: &Derivation,
        mask_outputs: bool,
    ) -> Result<DrvHash, HashModuloError> {
        hash_derivation_modulo(drv, store_dir, mask_outputs, &mut |p| {
            self.hashes.get(p).cloned().ok_or_else(|| HashModuloError::UnknownInput(store_dir.print(p)))
        })
    }
}

/// Fills in output paths as Nix's `derivationStrict` does once the outputs are declared:
/// - fixed output: sets the `out` environment variable to its path;
/// - floating content-addressed or impure outputs: sets each output's environment variable to
///   its [`hash_placeholder`];
/// - input-addressed outputs (given as [`DerivationOutput::Deferred`], or with paths that are
///   recomputed): sets each output's variable to `""`, computes the masked modulo hash, and if it
///   is [`DrvHashKind::Regular`] makes each output input-addressed with its path and sets its
///   variable to that path; otherwise the outputs stay deferred (with empty variables).
pub fn fill_output_paths(
    drv: &mut Derivation,
    store_dir: &StoreDir,
    cache: &mut DrvHashCache,
    reader: &mut dyn DerivationReader,
) -> Result<(), HashModuloError> {
    let drv_type = drv
        .derivation_type()
        .map_err(|source| HashModuloError::Type { name: drv.name.clone(), source })?;
    let names: Vec<String> = drv.outputs.keys().cloned().collect();
    match drv_type {
        DerivationType::ContentAddressed { fixed: true, .. } => {
            let mut paths = Vec::new();
            for (name, output) in &drv.outputs {
                if let Some(path) = output.path(store_dir, &drv.name, name)? {
                    paths.push((name.as_bytes().to_vec(), store_dir.print(&path).into_bytes()));
                }
            }
            drv.env.extend(paths);
        }
        DerivationType::ContentAddressed { .. } | DerivationType::Impure => {
            for name in &names {
                drv.env.insert(name.as_bytes().to_vec(), hash_placeholder(name).into_bytes());
            }
        }
        DerivationType::InputAddressed { .. } => {
            for name in &names {
                drv.env.insert(name.as_bytes().to_vec(), Vec::new());
                drv.outputs.insert(name.clone(), DerivationOutput::Deferred);
            }
            let hash = cache.hash_modulo(store_dir, reader, drv, true)?;
            if hash.kind == DrvHashKind::Regular {
                for name in &names {
                    let h = hash.hashes.get(name).ok_or_else(|| HashModuloError::MissingOutput {
                        output: name.clone(),
                        drv_name: drv.name.clone(),
                    })?;
                    let path = store_dir.make_output_path(name, h, &drv.name)?;
                    drv.env.insert(name.as_bytes().to_vec(), store_dir.print(&path).into_bytes());
                    drv.outputs.insert(name.clone(), DerivationOutput::InputAddressed(path));
                }
            }
        }
    }
    Ok(())
}

/// A derivation whose stated output paths or output variables are not what Nix computes.
#[derive(Debug, thiserror::Error)]
pub enum OutputCheckError {
    /// The name does not match the `.drv` path.
    #[error("derivation '{drv_path}' has name '{name}' which does not match its path")]
    NameMismatch {
        /// The `.drv` path.
        drv_path: String,
        /// The derivation's name.
        name: String,
    },
    /// An input-addressed output's path is not the one its hash gives.
    #[error("derivation '{drv_path}' has incorrect output '{stated}', should be '{expected}'")]
    WrongOutputPath {
        /// The `.drv` path.
        drv_path: String,
        /// The path in the derivation.
        stated: String,
        /// The path computed.
        expected: String,
    },
    /// An output's environment variable does not hold its path.
    #[error("derivation '{drv_path}' has incorrect environment variable '{variable}', should be '{expected}'")]
    WrongEnvironment {
        /// The `.drv` path.
        drv_path: String,
        /// The variable (the output name).
        variable: String,
        /// The path it should hold.
        expected: String,
    },
    /// The modulo hash cannot be computed.
    #[error(transparent)]
    Hash(#[from] HashModuloError),
}

/// Checks a derivation as Nix's `checkInvariants` does before registering it: its name matches
/// `drv_path`, its outputs make a valid kind, every input-addressed output has the path its masked
/// modulo hash gives, and every input-addressed or fixed output's environment variable holds its
/// path.
pub fn check_output_paths(
    drv: &Derivation,
    drv_path: &StorePath,
    store_dir: &StoreDir,
    cache: &mut DrvHashCache,
    reader: &mut dyn DerivationReader,
) -> Result<(), OutputCheckError> {
    let shown = store_dir.print(drv_path);
    if Derivation::name_from_path(drv_path) != Some(drv.name.as_str()) {
        return Err(OutputCheckError::NameMismatch { drv_path: shown, name: drv.name.clone() });
    }
    drv.derivation_type()
        .map_err(|source| HashModuloError::Type { name: drv.name.clone(), source })?;
    let env_has = |name: &str, path: &StorePath| -> Result<(), OutputCheckError> {
        let expected = store_dir.print(path);
        match drv.env.get(name.as_bytes()) {
            Some(v) if v.as_slice() == expected.as_bytes() => Ok(()),
            _ => Err(OutputCheckError::WrongEnvironment { drv_path: shown.clone(), variable: name.to_owned(), expected }),
        }
    };
    let mut masked: Option<DrvHash> = None;
    for (name, output) in &drv.outputs {
        match output {
            DerivationOutput::InputAddressed(stated) => {
                let hash = match &masked {
                    Some(h) => h,
                    None => masked.insert(cache.hash_modulo(store_dir, reader, drv, true)?),
                };
                let h = hash.hashes.get(name).ok_or_else(|| HashModuloError::MissingOutput {
                    output: name.clone(),
                    drv_name: drv.name.clone(),
                })?;
                let expected = store_dir.make_output_path(name, h, &drv.name).map_err(HashModuloError::from)?;
                if *stated != expected {
                    return Err(OutputCheckError::WrongOutputPath {
                        drv_path: shown,
                        stated: store_dir.print(stated),
                        expected: store_dir.print(&expected),
                    });
                }
                env_has(name, stated)?;
            }
            DerivationOutput::CaFixed(ca) => {
                let path = fixed_output_path(store_dir, ca, &drv.name, name).map_err(HashModuloError::from)?;
                env_has(name, &path)?;
            }
            DerivationOutput::CaFloating(_) | DerivationOutput::Deferred | DerivationOutput::Impure(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_address::{ContentAddress, Method, MethodAlgo};

    /// A reader over derivations held in memory.
    struct MapReader(HashMap<StorePath, Derivation>);

    impl DerivationReader for MapReader {
        fn read_derivation(&mut self, p: &StorePath) -> Result<Derivation, HashModuloError> {
            self.0.get(p).cloned().ok_or_else(|| HashModuloError::UnknownInput(p.to_string()))
        }
    }

    fn base(name: &str) -> Derivation {
        Derivation {
            name: name.into(),
            system: b"x86_64-linux".to_vec(),
            builder: b"/bin/sh".to_vec(),
            outputs: [("out".to_owned(), DerivationOutput::Deferred)].into(),
            ..Default::default()
        }
    }

    #[test]
    fn placeholder_matches_nix() {
        // `builtins.placeholder "out"`, as Nix documents it.
        assert_eq!(hash_placeholder("out"), "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9");
    }

    #[test]
    fn fill_then_check() {
        let sd = StoreDir::default();
        let mut reader = MapReader(HashMap::new());
        let mut cache = DrvHashCache::new();

        let mut fixed = base("src");
        fixed.outputs.insert(
            "out".into(),
            DerivationOutput::CaFixed(ContentAddress { method: Method::Nar, hash: Hash::of(Algorithm::Sha256, b"x") }),
        );
        fill_output_paths(&mut fixed, &sd, &mut cache, &mut reader).unwrap();
        let fixed_path = fixed.drv_path(&sd).unwrap();
        check_output_paths(&fixed, &fixed_path, &sd, &mut cache, &mut reader).unwrap();
        reader.0.insert(fixed_path.clone(), fixed.clone());

        let mut top = base("top");
        top.outputs.insert("dev".into(), DerivationOutput::Deferred);
        top.input_drvs.insert(fixed_path.clone(), super::super::InputOutputs::of(["out"]));
        fill_output_paths(&mut top, &sd, &mut cache, &mut reader).unwrap();
        assert!(matches!(top.outputs["out"], DerivationOutput::InputAddressed(_)));
        let top_path = top.drv_path(&sd).unwrap();
        check_output_paths(&top, &top_path, &sd, &mut cache, &mut reader).unwrap();

        // A different fetcher of the same content gives the same output paths downstream.
        let mut fixed2 = fixed.clone();
        fixed2.builder = b"/bin/other".to_vec();
        let fixed2_path = fixed2.drv_path(&sd).unwrap();
        assert_ne!(fixed2_path, fixed_path);
        reader.0.insert(fixed2_path.clone(), fixed2);
        let mut top2 = base("top");
        top2.outputs.insert("dev".into(), DerivationOutput::Deferred);
        top2.input_drvs.insert(fixed2_path, super::super::InputOutputs::of(["out"]));
        fill_output_paths(&mut top2, &sd, &mut cache, &mut reader).unwrap();
        assert_eq!(top2.outputs, top.outputs);

        // A wrong path or a wrong variable is caught.
        let mut wrong = top.clone();
        wrong.outputs.insert("dev".into(), top.outputs["out"].clone());
        assert!(matches!(
            check_output_paths(&wrong, &top_path, &sd, &mut cache, &mut reader),
            Err(OutputCheckError::WrongOutputPath { .. })
        ));
        let mut wrong = top.clone();
        wrong.env.insert(b"dev".to_vec(), b"/nix/store/x".to_vec());
        assert!(matches!(
            check_output_paths(&wrong, &top_path, &sd, &mut cache, &mut reader),
            Err(OutputCheckError::WrongEnvironment { .. })
        ));
        assert!(matches!(
            check_output_paths(&top, &fixed_path, &sd, &mut cache, &mut reader),
            Err(OutputCheckError::NameMismatch { .. })
        ));
    }

    #[test]
    fn floating_inputs_defer() {
        let sd = StoreDir::default();
        let mut reader = MapReader(HashMap::new());
        let mut cache = DrvHashCache::new();
        let mut ca = base("ca");
        ca.outputs.insert("out".into(), DerivationOutput::CaFloating(MethodAlgo { method: Method::Nar, algo: Algorithm::Sha256 }));
        fill_output_paths(&mut ca, &sd, &mut cache, &mut reader).unwrap();
        assert_eq!(ca.env[&b"out"[..]], hash_placeholder("out").into_bytes());
        let ca_path = ca.drv_path(&sd).unwrap();
        reader.0.insert(ca_path.clone(), ca);
        let mut top = base("top");
        top.input_drvs.insert(ca_path.clone(), super::super::InputOutputs::of(["out"]));
        fill_output_paths(&mut top, &sd, &mut cache, &mut reader).unwrap();
        assert_eq!(top.outputs["out"], DerivationOutput::Deferred);
        assert_eq!(top.env[&b"out"[..]], b"");

        let mut missing = base("top");
        missing.input_drvs.insert(ca_path, super::super::InputOutputs::of(["dev"]));
        assert!(matches!(
            fill_output_paths(&mut missing, &sd, &mut cache, &mut reader),
            Err(HashModuloError::MissingOutput { .. })
        ));
    }

    #[test]
    fn cycles_are_errors() {
        let sd = StoreDir::default();
        let a = StorePath::from_base_name("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-a.drv").unwrap();
        let b = StorePath::from_base_name("g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-b.drv").unwrap();
        let mut da = base("a");
        da.input_drvs.insert(b.clone(), super::super::InputOutputs::of(["out"]));
        let mut db = base("b");
        db.input_drvs.insert(a.clone(), super::super::InputOutputs::of(["out"]));
        let mut reader = MapReader([(a.clone(), da), (b, db)].into());
        let e = DrvHashCache::new().path_hash_modulo(&sd, &mut reader, &a).unwrap_err();
        assert!(matches!(e, HashModuloError::Cycle(_)));
    }

    #[test]
    fn deep_chains_do_not_recurse() {
        let sd = StoreDir::default();
        let mut reader = MapReader(HashMap::new());
        let mut build_cache = DrvHashCache::new();
        let mut prev: Option<(StorePath, Derivation)> = None;
        for i in 0..3000 {
            let mut d = base(&format!("d{i}"));
            if let Some((p, _)) = &prev {
                d.input_drvs.insert(p.clone(), super::super::InputOutputs::of(["out"]));
            }
            fill_output_paths(&mut d, &sd, &mut build_cache, &mut reader).unwrap();
            let path = d.drv_path(&sd).unwrap();
            reader.0.insert(path.clone(), d.clone());
            prev = Some((path, d));
        }
        // A fresh cache walks the whole chain at once and agrees with the paths filled in.
        let (path, drv) = prev.unwrap();
        let mut fresh = DrvHashCache::new();
        check_output_paths(&drv, &path, &sd, &mut fresh, &mut reader).unwrap();
        assert_eq!(fresh.hashes.len(), 2999);
    }
}
