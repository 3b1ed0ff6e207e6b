//! [`SqliteDirectoryService`]: directories in the castore's SQLite database.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension};

use super::{Closure, DirectoryService, DirectoryServiceError};
use crate::durability::Durability;
use crate::database;
use crate::digest::{B3Digest, DIGEST_LEN};
use crate::directory::Directory;

/// Directories in a SQLite table `directories(digest, size, encoding)` (see
/// [`database`]). Reads check that the stored bytes decode and hash to their
/// digest; writes check that every subdirectory is stored with the claimed size.
#[derive(Debug)]
pub struct SqliteDirectoryService {
    conn: Mutex<Connection>,
}

fn size_to_sql(size: u64) -> i64 {
    // SQLite integers are signed; sizes above i64::MAX are stored as their two's complement.
    size as i64
}

fn size_from_sql(size: i64) -> u64 {
    size as u64
}

impl SqliteDirectoryService {
    /// Opens (creating if needed) the database at `path`, with synced commits.
    pub fn open(path: &Path) -> Result<Self, DirectoryServiceError> {
        Self::open_with(path, Durability::Synced)
    }

    /// Opens (creating if needed) the database at `path` with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, DirectoryServiceError> {
        Ok(Self { conn: Mutex::new(database::open(path, durability)?) })
    }

    /// An in-memory database, for tests and scratch work.
    pub fn in_memory() -> Result<Self, DirectoryServiceError> {
        Self::open(Path::new(":memory:"))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A connection stays usable after a panic elsewhere: SQLite rolls back unfinished work.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get_locked(conn: &Connection, digest: &B3Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        let mut statement = conn.prepare_cached("SELECT encoding FROM directories WHERE digest = ?1")?;
        let encoding: Option<Vec<u8>> =
            statement.query_row([digest.as_bytes().as_slice()], |row| row.get(0)).optional()?;
        let Some(encoding) = encoding else { return Ok(None) };
        if B3Digest::of(&encoding) != *digest {
            return Err(DirectoryServiceError::DigestMismatch(*digest));
        }
        Directory::decode(&encoding)
            .map(Some)
            .map_err(|source| DirectoryServiceError::Corrupt { digest: *digest, source })
    }

    fn stored_size(conn: &Connection, digest: &B3Digest) -> Result<Option<u64>, DirectoryServiceError> {
        let mut statement = conn.prepare_cached("SELECT size FROM directories WHERE digest = ?1")?;
        let size: Option<i64> = statement.query_row([digest.as_bytes().as_slice()], |row| row.get(0)).optional()?;
        Ok(size.map(size_from_sql))
    }

    /// Number of stored directories.
    pub fn count(&self) -> Result<u64, DirectoryServiceError> {
        let n: i64 = self.lock().query_row("SELECT count(*) FROM directories", [], |row| row.get(0))?;
        Ok(n as u64)
    }

    /// All stored digests (for garbage collection and checks).
    pub fn digests(&self) -> Result<Vec<B3Digest>, DirectoryServiceError> {
        let conn = self.lock();
        let mut statement = conn.prepare("SELECT digest FROM directories")?;
        let rows = statement.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            let bytes = row?;
            if let Ok(bytes) = <[u8; DIGEST_LEN]>::try_from(bytes.as_slice()) {
                out.push(B3Digest::from_bytes(bytes));
            }
        }
        Ok(out)
    }

    /// Deletes directories by digest, in one transaction. The caller (a garbage collector) must
    /// delete only directories no stored directory names, or the closure invariant breaks.
    pub fn delete(&self, digests: &[B3Digest]) -> Result<(), DirectoryServiceError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut statement = tx.prepare_cached("DELETE FROM directories WHERE digest = ?1")?;
            for digest in digests {
                statement.execute([digest.as_bytes().as_slice()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl DirectoryService for SqliteDirectoryService {
    fn get(&self, digest: &B3Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        Self::get_locked(&self.lock(), digest)
    }

    fn has(&self, digest: &B3Digest) -> Result<bool, DirectoryServiceError> {
        Ok(Self::stored_size(&self.lock(), digest)?.is_some())
    }

    fn put_many(&self, directories: &[Directory]) -> Result<Vec<B3Digest>, DirectoryServiceError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut digests = Vec::with_capacity(directories.len());
        {
            // Sizes of the directories of this batch, for their parents' checks.
            let mut batch: HashMap<B3Digest, u64> = HashMap::with_capacity(directories.len());
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO directories (digest, size, encoding) VALUES (?1, ?2, ?3)",
            )?;
            for directory in directories {
                let encoding = directory.encode();
                let digest = B3Digest::of(&encoding);
                for (_, child, claimed) in directory.subdirectories() {
                    let actual = match batch.get(&child) {
                        Some(size) => *size,
                        None => Self::stored_size(&tx, &child)?
                            .ok_or(DirectoryServiceError::MissingChild { parent: digest, child })?,
                    };
                    if actual != claimed {
                        return Err(DirectoryServiceError::SizeMismatch { digest: child, claimed, actual });
                    }
                }
                insert.execute(rusqlite::params![
                    digest.as_bytes().as_slice(),
                    size_to_sql(directory.size()),
                    encoding
                ])?;
                batch.insert(digest, directory.size());
                digests.push(digest);
            }
        }
        tx.commit()?;
        Ok(digests)
    }

    fn closure(&self, root: &B3Digest, size: u64) -> Result<Closure, DirectoryServiceError> {
        let conn = self.lock();
        super::walk_closure(root, size, |digest| Self::get_locked(&conn, digest))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly by design.

    use super::*;
    use crate::node::{Node, SymlinkTarget};

    fn leaf_dir(tag: &str) -> Directory {
        let mut d = Directory::new();
        d.push(tag.as_bytes().to_vec(), Node::Symlink { target: SymlinkTarget::new("t").unwrap() }).unwrap();
        d
    }

    fn parent_of(children: &[(&str, &Directory)]) -> Directory {
        Directory::from_entries(children.iter().map(|(n, d)| (n.as_bytes().to_vec(), d.node()))).unwrap()
    }

    #[test]
    fn put_get_and_closure() {
        let svc = SqliteDirectoryService::in_memory().unwrap();
        let (a, b) = (leaf_dir("a"), leaf_dir("b"));
        let mid = parent_of(&[("a", &a), ("a2", &a)]);
        let top = parent_of(&[("mid", &mid), ("b", &b)]);
        let digests = svc.put_many(&[a.clone(), b.clone(), mid.clone(), top.clone()]).unwrap();
        assert_eq!(digests, [a.digest(), b.digest(), mid.digest(), top.digest()]);
        assert_eq!(svc.get(&top.digest()).unwrap(), Some(top.clone()));
        assert!(svc.has(&a.digest()).unwrap());
        assert_eq!(svc.get(&B3Digest::of(b"x")).unwrap(), None);
        let closure = svc.closure(&top.digest(), top.size()).unwrap();
        assert_eq!(closure.len(), 4);
        assert_eq!(closure.get(&a.digest()).unwrap(), &a);
        // Storing again is a no-op.
        svc.put(&top).unwrap();
        assert_eq!(svc.count().unwrap(), 4);
        // A wrong claimed size for the root is caught.
        assert!(matches!(
            svc.closure(&top.digest(), top.size() + 1),
            Err(DirectoryServiceError::SizeMismatch { .. })
        ));
        assert!(matches!(svc.closure(&B3Digest::of(b"x"), 0), Err(DirectoryServiceError::NotFound(_))));
    }

    #[test]
    fn parents_need_their_children_with_true_sizes() {
        let svc = SqliteDirectoryService::in_memory().unwrap();
        let a = leaf_dir("a");
        let top = parent_of(&[("a", &a)]);
        assert!(matches!(svc.put(&top), Err(DirectoryServiceError::MissingChild { .. })));
        // All or nothing: the batch failed, so `a` was not kept either.
        assert!(svc.put_many(&[a.clone(), Directory::new(), top.clone()]).is_ok());
        let mut lying = Directory::new();
        lying.push(b"a".to_vec(), Node::Directory { digest: a.digest(), size: 5 }).unwrap();
        assert!(matches!(svc.put(&lying), Err(DirectoryServiceError::SizeMismatch { .. })));
        let failed_batch = svc.put_many(&[leaf_dir("z"), lying]);
        assert!(failed_batch.is_err());
        assert!(!svc.has(&leaf_dir("z").digest()).unwrap(), "failed batch left a directory");
    }

    #[test]
    fn corrupt_rows_are_detected() {
        let svc = SqliteDirectoryService::in_memory().unwrap();
        let (a, b) = (leaf_dir("a"), leaf_dir("b"));
        svc.put_many(&[a.clone(), b.clone()]).unwrap();
        let conn = svc.lock();
        conn.execute("UPDATE directories SET encoding = ?1 WHERE digest = ?2", rusqlite::params![b.encode(), a.digest().as_bytes().as_slice()]).unwrap();
        conn.execute("UPDATE directories SET encoding = x'00' WHERE digest = ?1", [b.digest().as_bytes().as_slice()]).unwrap();
        drop(conn);
        assert!(matches!(svc.get(&a.digest()), Err(DirectoryServiceError::DigestMismatch(_))));
        // Bytes that hash right but do not decode cannot be made; a non-decoding row with a wrong
        // digest is reported as a mismatch first.
        assert!(matches!(svc.get(&b.digest()), Err(DirectoryServiceError::DigestMismatch(_))));
    }
}
