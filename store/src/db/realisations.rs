//! Realisations (`ca-derivations`): the `Realisations` and `RealisationsRefs` tables, read and
//! written with Nix's statements. A derivation output is stored as `drvPath` = `sha256:<base16>`
//! of its hash modulo (despite the column's name) and `outputName`; the output path as the row id
//! of a valid path; signatures space-separated (empty text for none, as Nix writes).

use std::collections::{BTreeMap, BTreeSet};

use nix_formats::hash::Hash;
use nix_formats::realisation::{DrvOutput, Realisation};
use nix_formats::store_path::StorePath;
use rusqlite::{params, Connection, OptionalExtension};

use super::encode::{corrupt, parse_hash, parse_path, parse_sigs};
use super::error::DbError;
use super::queries::valid_path_id;
use super::Db;

/// The row id, output path and signatures of one realisation (Nix's `queryRealisationCore_`).
fn realisation_core(conn: &Connection, db: &Db, id: &DrvOutput) -> Result<Option<(i64, Realisation)>, DbError> {
    let row = conn
        .prepare_cached(
            "select Realisations.id, Output.path, Realisations.signatures from Realisations \
             inner join ValidPaths as Output on Output.id = Realisations.outputPath \
             where drvPath = ?1 and outputName = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![id.hash_text(), id.output_name], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .optional()
        })
        .map_err(DbError::sqlite("querying a realisation"))?;
    let Some((row_id, path, sigs)) = row else {
        return Ok(None);
    };
    let realisation = Realisation {
        id: id.clone(),
        out_path: parse_path(&db.store_dir, &path)?,
        signatures: parse_sigs(sigs.as_deref()),
        dependent_realisations: BTreeMap::new(),
    };
    Ok(Some((row_id, realisation)))
}

/// A realisation with its dependencies (Nix's `queryRealisation_`).
fn realisation_full(conn: &Connection, db: &Db, id: &DrvOutput) -> Result<Option<Realisation>, DbError> {
    let Some((row_id, mut realisation)) = realisation_core(conn, db, id)? else {
        return Ok(None);
    };
    let deps: Vec<(String, String)> = conn
        .prepare_cached(
            "select drvPath, outputName from Realisations \
             join RealisationsRefs on realisationReference = Realisations.id where referrer = ?1",
        )
        .and_then(|mut s| {
            s.query_map([row_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()
        })
        .map_err(DbError::sqlite("querying realisation references"))?;
    for (hash, output_name) in deps {
        let dep = DrvOutput { drv_hash: parse_hash(&id.to_string(), &hash)?, output_name };
        let (_, dep_realisation) = realisation_core(conn, db, &dep)?
            .ok_or_else(|| corrupt(&id.to_string(), format!("dependency '{dep}' has no realisation")))?;
        realisation.dependent_realisations.insert(dep, dep_realisation.out_path);
    }
    Ok(Some(realisation))
}

impl Db {
    /// The realisation of `id`, with its dependencies, if one is registered.
    pub fn query_realisation(&self, id: &DrvOutput) -> Result<Option<Realisation>, DbError> {
        if !self.has_ca_tables {
            return Ok(None);
        }
        self.read(|c| realisation_full(c, self, id))
    }

    /// Every registered output of the derivation with hash modulo `drv_hash`: output name → path
    /// (Nix's `QueryAllRealisedOutputs`).
    pub fn query_realisations_of(&self, drv_hash: &Hash) -> Result<BTreeMap<String, StorePath>, DbError> {
        if !self.has_ca_tables {
            return Ok(BTreeMap::new());
        }
        let key = DrvOutput { drv_hash: drv_hash.clone(), output_name: String::new() }.hash_text();
        let rows: Vec<(String, String)> = self.read(|c| {
            c.prepare_cached(
                "select outputName, Output.path from Realisations \
                 inner join ValidPaths as Output on Output.id = Realisations.outputPath where drvPath = ?1",
            )
            .and_then(|mut s| s.query_map([&key], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>())
            .map_err(DbError::sqlite("querying realisations"))
        })?;
        rows.into_iter().map(|(name, path)| Ok((name, parse_path(&self.store_dir, &path)?))).collect()
    }

    /// Registers a realisation (Nix's `registerDrvOutput`), in one transaction. The output path
    /// must be valid. If one is already registered for the same output it must be compatible
    /// ([`Realisation::is_compatible_with`], else [`DbError::IncompatibleRealisation`]), and the
    /// signatures are merged. Every dependency must be registered with the same path
    /// ([`DbError::BadDependentRealisation`]).
    pub fn register_realisation(&self, realisation: &Realisation) -> Result<(), DbError> {
        self.require_writable()?;
        let id = &realisation.id;
        self.write(|txn| {
            valid_path_id(txn, &self.store_dir, &realisation.out_path)?;
            match realisation_full(txn, self, id)? {
                Some(old) if !realisation.is_compatible_with(&old) => {
                    return Err(DbError::IncompatibleRealisation {
                        id: id.to_string(),
                        local: self.store_dir.print(&old.out_path),
                        new: self.store_dir.print(&realisation.out_path),
                    });
                }
                Some(old) => {
                    let merged: BTreeSet<&String> = old.signatures.iter().chain(&realisation.signatures).collect();
                    txn.prepare_cached("update Realisations set signatures = ?1 where drvPath = ?2 and outputName = ?3")
                        .and_then(|mut s| s.execute(params![join(merged), id.hash_text(), id.output_name]))
                        .map_err(DbError::sqlite("updating a realisation"))?;
                }
                None => {
                    txn.prepare_cached(
                        "insert into Realisations (drvPath, outputName, outputPath, signatures) \
                         values (?1, ?2, (select id from ValidPaths where path = ?3), ?4)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            id.hash_text(),
                            id.output_name,
                            self.store_dir.print(&realisation.out_path),
                            join(realisation.signatures.iter())
                        ])
                    })
                    .map_err(DbError::sqlite("registering a realisation"))?;
                }
            }
            for (dep, dep_path) in &realisation.dependent_realisations {
                let problem = match realisation_core(txn, self, dep)? {
                    None => Some("is not registered"),
                    Some((_, local)) if &local.out_path != dep_path => Some("maps to another path here"),
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    return Err(DbError::BadDependentRealisation { id: id.to_string(), dependency: dep.to_string(), problem });
                }
                txn.prepare_cached(
                    "insert or replace into RealisationsRefs (referrer, realisationReference) values ( \
                     (select id from Realisations where drvPath = ?1 and outputName = ?2), \
                     (select id from Realisations where drvPath = ?3 and outputName = ?4))",
                )
                .and_then(|mut s| s.execute(params![id.hash_text(), id.output_name, dep.hash_text(), dep.output_name]))
                .map_err(DbError::sqlite("adding a realisation reference"))?;
            }
            Ok(())
        })
    }
}

fn join<'a>(sigs: impl IntoIterator<Item = &'a String>) -> String {
    sigs.into_iter().map(String::as_str).collect::<Vec<_>>().join(" ")
}
