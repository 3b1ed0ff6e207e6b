//! The operations that build or realise.

use nix_formats::build_result::{BuildResult, KeyedBuildResult};
use nix_formats::derived_path::DerivedPath;
use nix_formats::store_path::StorePath;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{reply, ClientConnection};
use crate::error::ProtocolError;
use crate::logger::LogSink;
use crate::ops::request::build::*;
use crate::ops::{BasicDerivation, Request, Response};
use crate::types::BuildMode;

impl<R, W, K> ClientConnection<R, W, K>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    K: LogSink,
{
    /// `BuildPaths`: builds or substitutes `paths`. A failed build is a daemon error. Before
    /// 1.15 only [`BuildMode::Normal`] can be sent.
    pub async fn build_paths(&mut self, paths: &[DerivedPath], mode: BuildMode) -> Result<(), ProtocolError> {
        if mode != BuildMode::Normal {
            self.require(15, "a build mode")?;
        }
        let request = Request::BuildPaths(BuildPaths { paths: paths.to_vec(), mode });
        reply!(self.call(request), Response::BuildPaths => ())
    }

    /// `BuildPathsWithResults` (from 1.34): builds or substitutes `paths` and returns a result
    /// for each (a failed build is a result, not an error).
    pub async fn build_paths_with_results(
        &mut self,
        paths: &[DerivedPath],
        mode: BuildMode,
    ) -> Result<Vec<KeyedBuildResult>, ProtocolError> {
        self.require(34, "BuildPathsWithResults")?;
        let request = Request::BuildPathsWithResults(BuildPathsWithResults { paths: paths.to_vec(), mode });
        reply!(self.call(request), Response::BuildPathsWithResults(results) => results)
    }

    /// `BuildDerivation`: builds `drv` (whose store path is `drv_path`; it need not be valid) and
    /// returns the result.
    pub async fn build_derivation(
        &mut self,
        drv_path: &StorePath,
        drv: &BasicDerivation,
        mode: BuildMode,
    ) -> Result<BuildResult, ProtocolError> {
        let request = Request::BuildDerivation(BuildDerivation { drv_path: drv_path.clone(), drv: drv.clone(), mode });
        reply!(self.call(request), Response::BuildDerivation(result) => result)
    }

    /// `EnsurePath`: makes `path` valid, substituting it if needed.
    pub async fn ensure_path(&mut self, path: &StorePath) -> Result<(), ProtocolError> {
        let request = Request::EnsurePath(EnsurePath { path: path.clone() });
        reply!(self.call(request), Response::EnsurePath => ())
    }
}
