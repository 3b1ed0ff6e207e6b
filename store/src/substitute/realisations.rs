//! Realisations from substituters (Nix's `queryRealisation` on a binary cache,
//! `realisations/<drv hash>!<output>.doi`, or a local store's database), for content-addressed
//! derivations whose outputs are substituted rather than built.

use nix_formats::realisation::{DrvOutput, Realisation};

use super::{Source, SubstituteError, Substituters};

impl Source {
    /// The realisation `id`, if this substituter has one.
    pub fn query_realisation(&self, id: &DrvOutput) -> Result<Option<Realisation>, SubstituteError> {
        match self {
            Self::Cache(c) => c.query_realisation(id),
            Self::Local(l) => l.query_realisation(id),
        }
    }
}

impl Substituters {
    /// The realisation `id` from the first substituter (by priority) of `store_dir` that has
    /// one, with its URL. Caches that fail are reported through `warn` and passed over.
    pub fn query_realisation(
        &self,
        store_dir: &nix_formats::store_path::StoreDir,
        id: &DrvOutput,
        warn: &mut dyn FnMut(String),
    ) -> Option<(Realisation, &str)> {
        for cache in self.caches.iter().filter(|c| c.store_dir() == store_dir) {
            match cache.query_realisation(id) {
                Ok(Some(realisation)) => return Some((realisation, cache.url())),
                Ok(None) => {}
                Err(e) => warn(format!("substituter '{}': {e}", cache.url())),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use nix_formats::hash::{Algorithm, Hash};
    use nix_formats::signature::TrustedKeys;
    use nix_formats::store_path::{StoreDir, StorePath};

    use super::*;

    #[test]
    fn a_cache_s_realisation_is_found_by_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(cache.join("realisations")).unwrap();
        std::fs::write(cache.join("nix-cache-info"), "StoreDir: /nix/store\n").unwrap();
        let id = DrvOutput { drv_hash: Hash::of(Algorithm::Sha256, b"drv"), output_name: "out".into() };
        let out = StorePath::from_base_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x").unwrap();
        let realisation = Realisation::new(id.clone(), out.clone());
        std::fs::write(cache.join("realisations").join(format!("{id}.doi")), realisation.to_json()).unwrap();
        let url = format!("file://{}", cache.display());
        let store_dir = StoreDir::new("/nix/store");
        let subs = Substituters::open(std::slice::from_ref(&url), &store_dir, TrustedKeys::new(), false, &mut |w| panic!("{w}"));
        let (found, from) = subs.query_realisation(&store_dir, &id, &mut |w| panic!("{w}")).unwrap();
        assert_eq!((found.out_path, from), (out, url.as_str()));
        let other = DrvOutput { output_name: "dev".into(), ..id };
        assert!(subs.query_realisation(&store_dir, &other, &mut |w| panic!("{w}")).is_none());
        assert!(subs.query_realisation(&StoreDir::new("/other"), &other, &mut |w| panic!("{w}")).is_none());
        std::fs::write(cache.join("realisations").join(format!("{other}.doi")), "{").unwrap();
        let mut warnings = Vec::new();
        assert!(subs.query_realisation(&store_dir, &other, &mut |w| warnings.push(w)).is_none());
        assert_eq!(warnings.len(), 1);
    }
}
