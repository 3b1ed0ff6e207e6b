//! The operations that add data to the store or stream it out.

use std::collections::BTreeSet;

use bytes::Bytes;
use nix_formats::hash::Algorithm;
use nix_formats::nar::Writer;
use nix_formats::path_info::ValidPathInfo;
use nix_formats::realisation::Realisation;
use nix_formats::store_path::StorePath;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::upload::{DynSource, Upload};
use super::{mismatch, reply, ClientConnection};
use crate::error::ProtocolError;
use crate::logger::{process_stderr, LogMessage, LogSink};
use crate::nar_stream::NarStream;
use crate::ops::request::add::*;
use crate::ops::response::AddToStoreReply;
use crate::ops::{Content, Payload, Request, Response};

/// Reads all of `source`, at most `max` bytes.
async fn read_all<S: AsyncRead + Unpin + ?Sized>(source: &mut S, max: usize) -> Result<Vec<u8>, ProtocolError> {
    let mut data = Vec::new();
    (&mut *source).take(max as u64 + 1).read_to_end(&mut data).await.map_err(ProtocolError::Source)?;
    if data.len() > max {
        return Err(ProtocolError::MessageTooLarge { max });
    }
    Ok(data)
}

/// A NAR of one regular, non-executable file (what Nix's `dumpString` writes).
fn nar_of_contents(contents: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let mut writer = Writer::new(Vec::new());
    writer
        .regular(false, contents.len() as u64, &mut &contents[..])
        .and_then(|()| writer.finish())
        .map_err(|e| ProtocolError::Source(std::io::Error::other(e)))
}

/// Hands log messages to the connection's sink and `STDERR_WRITE` data to a writer.
struct ExportSink<'a, K, O> {
    logs: &'a mut K,
    out: &'a mut O,
}

impl<K, O> LogSink for ExportSink<'_, K, O>
where
    K: LogSink + Send,
    O: AsyncWrite + Unpin + Send,
{
    async fn log(&mut self, message: LogMessage) -> Result<(), ProtocolError> {
        self.logs.log(message).await
    }

    async fn write_data(&mut self, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.out.write_all(&data).await.map_err(ProtocolError::Sink)
    }
}

impl<R, W, K> ClientConnection<R, W, K>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    K: LogSink,
{
    /// `AddToStore`: adds data under `name`, content-addressed by `method`, and returns the new
    /// path's info. `source` gives the data as `method` takes it: a NAR for the NAR and Git
    /// methods, the file's bytes for flat and text.
    ///
    /// From 1.25 the data goes as a framed stream. Before, text goes by `AddTextToStore` (SHA-256
    /// only) and the rest as an inline NAR (flat data is wrapped into one), references and repair
    /// cannot be sent, nor the Git method; the info is then queried with `QueryPathInfo`, as Nix
    /// does. Text and flat data are held in memory then, up to the string limit.
    pub async fn add_to_store<S>(
        &mut self,
        name: &str,
        method: CaMethodAlgo,
        references: &BTreeSet<StorePath>,
        repair: bool,
        source: &mut S,
    ) -> Result<ValidPathInfo, ProtocolError>
    where
        S: AsyncRead + Unpin + Send,
    {
        let path = if self.ctx.version.at_least(1, 25) {
            let fields = AddToStoreFramed { name: name.to_owned(), method, references: references.clone(), repair };
            let upload = match method.content() {
                Content::Nar => Upload::Nar(source),
                _ => Upload::Raw(source),
            };
            match self.call_framed(Request::AddToStore(AddToStore::Framed(fields)), upload).await? {
                Response::AddToStore(AddToStoreReply::Info(info)) => return Ok(info),
                Response::AddToStore(AddToStoreReply::Path(path)) => path,
                other => return Err(mismatch(other.opcode(), &other)),
            }
        } else {
            self.add_to_store_legacy(name, method, references, repair, source).await?
        };
        self.query_path_info(&path).await?.ok_or_else(|| ProtocolError::Remote {
            message: format!("path '{}' is not valid", self.ctx.store_dir.print(&path)),
            status: 1,
        })
    }

    async fn add_to_store_legacy<S>(
        &mut self,
        name: &str,
        method: CaMethodAlgo,
        references: &BTreeSet<StorePath>,
        repair: bool,
        source: &mut S,
    ) -> Result<StorePath, ProtocolError>
    where
        S: AsyncRead + Unpin + Send,
    {
        if repair {
            self.require(25, "a repairing AddToStore")?;
        }
        let max = self.ctx.limits.max_string_len;
        if method.method == IngestionMethod::Text {
            if method.algo != Algorithm::Sha256 {
                self.require(25, &format!("text hashed with {}", method.algo))?;
            }
            let text = read_all(source, max).await?;
            return self.add_text_to_store(name, &text, references).await;
        }
        if method.method == IngestionMethod::Git {
            self.require(25, "the Git ingestion method")?;
        }
        if !references.is_empty() {
            self.require(25, "references of content that is not text")?;
        }
        let recursive = method.method == IngestionMethod::Nar;
        let fields = AddToStoreLegacy {
            name: name.to_owned(),
            fixed: !(recursive && method.algo == Algorithm::Sha256),
            recursive,
            algo: method.algo,
        };
        let upload = if recursive { Upload::Nar(source) } else { Upload::Bytes(nar_of_contents(&read_all(source, max).await?)?) };
        reply!(
            self.call_inline(Request::AddToStore(AddToStore::Legacy(fields)), upload),
            Response::AddToStore(reply) => reply.path().clone()
        )
    }

    /// `AddTextToStore`: adds `text` under `name` with `references` (text-hashed with SHA-256)
    /// and returns the new path. Obsolete since 1.25, where Nix's clients use `AddToStore`, but
    /// still served by Nix 2.26's daemon.
    pub async fn add_text_to_store(
        &mut self,
        name: &str,
        text: &[u8],
        references: &BTreeSet<StorePath>,
    ) -> Result<StorePath, ProtocolError> {
        let request = Request::AddTextToStore(AddTextToStore {
            name: name.to_owned(),
            text: Bytes::copy_from_slice(text),
            references: references.clone(),
        });
        reply!(self.call(request), Response::AddTextToStore(path) => path)
    }

    /// `AddToStoreNar` (from 1.18): adds the path `info` describes, with the NAR read from
    /// `source` (exactly one NAR is read, and checked as it passes). The daemon checks the NAR
    /// against the info's hash and size, and (unless `dont_check_sigs` and the client is
    /// trusted) its signatures.
    pub async fn add_to_store_nar<S>(
        &mut self,
        info: &ValidPathInfo,
        source: &mut S,
        repair: bool,
        dont_check_sigs: bool,
    ) -> Result<(), ProtocolError>
    where
        S: AsyncRead + Unpin + Send,
    {
        self.require(18, "AddToStoreNar")?;
        let request = Request::AddToStoreNar(AddToStoreNar { info: info.clone(), repair, dont_check_sigs });
        let response = match AddToStoreNar::payload(self.ctx.version) {
            Payload::Framed(_) => self.call_framed(request, Upload::Nar(source)).await?,
            Payload::StderrReadPulled(_) => {
                let mut nar = NarStream::new(source, self.nar_limits);
                self.call_pulled(request, &mut nar).await?
            }
            _ => self.call_inline(request, Upload::Nar(source)).await?,
        };
        match response {
            Response::AddToStoreNar => Ok(()),
            other => Err(mismatch(other.opcode(), &other)),
        }
    }

    /// `AddMultipleToStore` (from 1.32; one `AddToStoreNar` per path before): adds each path
    /// with its NAR, in the order given (dependencies first).
    pub async fn add_multiple_to_store<S>(
        &mut self,
        mut items: Vec<(ValidPathInfo, S)>,
        repair: bool,
        dont_check_sigs: bool,
    ) -> Result<(), ProtocolError>
    where
        S: AsyncRead + Unpin + Send,
    {
        if !self.ctx.version.at_least(1, 32) {
            for (info, source) in &mut items {
                self.add_to_store_nar(info, source, repair, dont_check_sigs).await?;
            }
            return Ok(());
        }
        let list: Vec<(ValidPathInfo, DynSource<'_>)> =
            items.iter_mut().map(|(info, source)| (info.clone(), source as DynSource<'_>)).collect();
        let request = Request::AddMultipleToStore(AddMultipleToStore { repair, dont_check_sigs });
        reply!(self.call_framed(request, Upload::Multiple(list)), Response::AddMultipleToStore => ())
    }

    /// `AddBuildLog`: stores the build log of `drv_path`, read from `log`.
    pub async fn add_build_log<S>(&mut self, drv_path: &StorePath, log: &mut S) -> Result<(), ProtocolError>
    where
        S: AsyncRead + Unpin + Send,
    {
        let request = Request::AddBuildLog(AddBuildLog { drv_path: drv_path.clone() });
        reply!(self.call_framed(request, Upload::Raw(log)), Response::AddBuildLog => ())
    }

    /// `AddSignatures`: adds `sigs` to `path`'s signatures.
    pub async fn add_signatures(&mut self, path: &StorePath, sigs: &BTreeSet<String>) -> Result<(), ProtocolError> {
        let request = Request::AddSignatures(AddSignatures { path: path.clone(), sigs: sigs.clone() });
        reply!(self.call(request), Response::AddSignatures => ())
    }

    /// `RegisterDrvOutput`: registers a realisation (before 1.31 only its id and output path are
    /// sent).
    pub async fn register_drv_output(&mut self, realisation: &Realisation) -> Result<(), ProtocolError> {
        let request = Request::RegisterDrvOutput(RegisterDrvOutput { realisation: realisation.clone() });
        reply!(self.call(request), Response::RegisterDrvOutput => ())
    }

    /// `ImportPaths` (obsolete): imports paths in `nix-store --export` form, which the daemon
    /// pulls from `source` with `STDERR_READ`. Returns the imported paths.
    pub async fn import_paths<S>(&mut self, source: &mut S) -> Result<Vec<StorePath>, ProtocolError>
    where
        S: AsyncRead + Unpin + Send,
    {
        reply!(self.call_pulled(Request::ImportPaths(ImportPaths {}), source), Response::ImportPaths(paths) => paths)
    }

    /// `NarFromPath`: writes the NAR of `path` to `out` and returns its size. The NAR is checked
    /// as it arrives (its end is found by parsing it). If `out` fails, the rest of the NAR is
    /// still read, so the connection stays usable, and [`ProtocolError::Sink`] is returned.
    pub async fn nar_from_path<O>(&mut self, path: &StorePath, out: &mut O) -> Result<u64, ProtocolError>
    where
        O: AsyncWrite + Unpin + ?Sized,
    {
        self.begin(&Request::NarFromPath(NarFromPath { path: path.clone() })).await?;
        self.logs(None).await?;
        let mut nar = NarStream::new(&mut self.reader, self.nar_limits);
        let mut buf = vec![0u8; 64 << 10];
        let mut sink_error = None;
        loop {
            let n = nar.read(&mut buf).await.map_err(ProtocolError::from_io)?;
            if n == 0 {
                break;
            }
            if sink_error.is_none() {
                sink_error = out.write_all(&buf[..n]).await.err();
            }
        }
        let size = nar.position();
        self.broken = false;
        match sink_error {
            None => out.flush().await.map(|()| size).map_err(ProtocolError::Sink),
            Some(e) => Err(ProtocolError::Sink(e)),
        }
    }

    /// `ExportPath` (obsolete): writes `path` in `nix-store --export` form (without the leading
    /// `1`), which the daemon sends in `STDERR_WRITE` messages, to `out`.
    pub async fn export_path<O>(&mut self, path: &StorePath, out: &mut O) -> Result<(), ProtocolError>
    where
        O: AsyncWrite + Unpin + Send,
        K: Send,
    {
        let request = Request::ExportPath(ExportPath { path: path.clone(), sign: false });
        let op = request.opcode();
        self.begin(&request).await?;
        let mut sink = ExportSink { logs: &mut self.sink, out: &mut *out };
        let logged = process_stderr(&mut self.reader, &mut self.writer, &self.ctx, &mut sink, None).await;
        if let Err(e) = logged {
            if matches!(e, ProtocolError::Remote { .. }) {
                self.broken = false;
            }
            return Err(e);
        }
        match self.reply(op).await? {
            Response::ExportPath => out.flush().await.map_err(ProtocolError::Sink),
            other => Err(mismatch(other.opcode(), &other)),
        }
    }
}
