//! Adding paths (`AddToStore` in both forms, `AddTextToStore`, `AddToStoreNar`,
//! `AddMultipleToStore`, `ImportPaths`) and streaming them out (`NarFromPath`, `ExportPath`).
//!
//! Payloads are read on demand by the blocking store through [`bridge::with_input`]; NARs and
//! exports go out through [`bridge::with_output`].

use std::collections::BTreeSet;
use std::io::{BufReader, Read};

use nix_formats::content_address::Method;
use nix_formats::hash::Algorithm;
use nix_formats::nar::{self, Event};
use nix_formats::path_info::ValidPathInfo;
use nix_formats::signature::TrustedKeys;
use store::local::NarToAdd;
use store::{Store, StoreError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use worker_protocol::connection::ServerConnection;
use worker_protocol::nar_stream::NarStream;
use worker_protocol::ops::payload::decode_multiple_item_info;
use worker_protocol::ops::request::add::*;
use worker_protocol::ops::response::AddToStoreReply;
use worker_protocol::ops::Response;
use worker_protocol::wire::WireReader;

use super::{refuse, OpError, Session};
use crate::bridge::{self, BridgeError};

/// How much a NAR or dump is read ahead of its parser (see
/// [`bridge::with_input_reading_ahead`]).
const READ_AHEAD: usize = 64 << 10;

/// The most paths one `AddMultipleToStore` may carry.
const MAX_MULTIPLE: u64 = 1 << 20;

/// The keys signatures are checked against, or `None` when the client may skip the check
/// (Nix: `dontCheckSigs` from a trusted client) or `require-sigs` is off.
fn signature_policy(s: &Session, dont_check_sigs: bool) -> Result<Option<TrustedKeys>, OpError> {
    if (dont_check_sigs && s.trusted()) || !s.settings.require_sigs {
        return Ok(None);
    }
    TrustedKeys::parse_list(&s.settings.trusted_public_keys.join(" "))
        .map(Some)
        .map_err(|e| OpError::Client(format!("invalid 'trusted-public-keys': {e}")))
}

fn store_method(method: IngestionMethod) -> Result<Method, OpError> {
    match method {
        IngestionMethod::Text => Ok(Method::Text),
        IngestionMethod::Flat => Ok(Method::Flat),
        IngestionMethod::Nar => Ok(Method::Nar),
        IngestionMethod::Git => refuse("casnix-daemon does not support the 'git' content-address method"),
    }
}

/// `AddToStore`.
pub async fn add_to_store<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: AddToStore) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut payload = conn.payload()?;
    let ahead = if payload.is_pulled() { 0 } else { READ_AHEAD };
    let info = match r {
        AddToStore::Framed(f) => {
            let method = store_method(f.method.method)?;
            let algo = f.method.algo;
            bridge::with_input_reading_ahead(&s.store, &mut payload, ahead, move |st, input| {
                st.add_to_store(&f.name, method, algo, &f.references, input)
            })
            .await?
        }
        AddToStore::Legacy(l) => {
            // Old clients always send a NAR; without `fixed` Nix hashes it as sha256 NAR.
            let (method, algo) = match (l.fixed, l.recursive) {
                (false, _) => (Method::Nar, Algorithm::Sha256),
                (true, true) => (Method::Nar, l.algo),
                (true, false) => (Method::Flat, l.algo),
            };
            bridge::with_input_reading_ahead(&s.store, &mut payload, ahead, move |st, input| {
                if method == Method::Nar {
                    return st.add_to_store(&l.name, method, algo, &BTreeSet::new(), input);
                }
                add_flat_from_nar(st, &l.name, algo, input)
            })
            .await?
        }
    };
    Ok(Response::AddToStore(AddToStoreReply::Info(info)))
}

/// Adds the regular file inside `nar` with flat hashing, reading the NAR to its end.
fn add_flat_from_nar(st: &Store, name: &str, algo: Algorithm, nar: impl Read) -> Result<ValidPathInfo, StoreError> {
    let not_a_file = || StoreError::io("adding", std::path::Path::new(name))(std::io::Error::other(
        "a flat content address needs a regular file, and the NAR holds something else",
    ));
    let mut reader = nar::Reader::new(BufReader::new(nar), nar::Limits::default());
    let bad_nar = |e: nar::ReadError| StoreError::io("reading the NAR of", std::path::Path::new(name))(e.into());
    match reader.next().map_err(bad_nar)? {
        Some(Event::Regular { .. }) => {}
        _ => return Err(not_a_file()),
    }
    let info = st.add_to_store(name, Method::Flat, algo, &BTreeSet::new(), reader.contents())?;
    while reader.next().map_err(bad_nar)?.is_some() {}
    Ok(info)
}

/// `AddTextToStore`.
pub async fn add_text_to_store(s: &Session, r: AddTextToStore) -> Result<Response, OpError> {
    let info = bridge::run(&s.store, move |st| st.add_text(&r.name, &r.text, &r.references)).await?;
    Ok(Response::AddTextToStore(info.path))
}

/// `AddToStoreNar`: the path with its claimed info; untrusted clients cannot claim `ultimate`
/// or skip the signature check.
pub async fn add_to_store_nar<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: AddToStoreNar) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut info = r.info;
    if !s.trusted() {
        info.ultimate = false;
    }
    let keys = signature_policy(s, r.dont_check_sigs)?;
    let repair = r.repair;
    let mut payload = conn.payload()?;
    let ahead = if payload.is_pulled() { 0 } else { READ_AHEAD };
    bridge::with_input_reading_ahead(&s.store, &mut payload, ahead, move |st, nar| {
        st.add_nars_checked(vec![NarToAdd { info, nar }], repair, keys.as_ref())
    })
    .await?;
    Ok(Response::AddToStoreNar)
}

/// `AddMultipleToStore`: a count, then each path's info and NAR (clients send them with
/// references first). Small NARs are gathered in memory, up to [`BATCH_BYTES`] and
/// [`BATCH_ITEMS`], and each batch is added with one durability barrier and one database
/// transaction; a NAR too large for a batch is streamed into the store on its own, after the
/// batch before it. When a batch fails, none of its paths are added (Nix adds each path on its
/// own, so the paths before the failing one stay); the client gets the same error.
pub async fn add_multiple_to_store<R, W>(
    s: &Session,
    conn: &mut ServerConnection<R, W>,
    r: AddMultipleToStore,
) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let keys = signature_policy(s, r.dont_check_sigs)?;
    let trusted = s.trusted();
    let repair = r.repair;
    let ctx = conn.ctx().clone();
    let mut items = WireReader::new(conn.payload()?);
    let count: u64 = items.read_value(&ctx).await?;
    if count > MAX_MULTIPLE {
        return refuse(format!("too many paths in one AddMultipleToStore ({count})"));
    }
    let mut batch = Batch::default();
    // While one batch is added on a blocking thread, the next is read (see `Batch::start`).
    let mut in_flight: Option<InFlight> = None;
    for _ in 0..count {
        let mut info = items.read_with(&ctx, decode_multiple_item_info).await?;
        if !trusted {
            info.ultimate = false;
        }
        let mut nar = NarStream::new(&mut items, nix_formats::nar::Limits::default());
        if batch.paths.contains(&info.path) {
            // Sent twice: the second copy would be skipped as valid already.
            nar.drain().await?;
            continue;
        }
        let size = usize::try_from(info.nar_size).unwrap_or(usize::MAX);
        if size == 0 || size > BATCH_BYTES {
            finish(s, &mut in_flight).await?;
            batch.flush(s, repair, &keys).await?;
            add_streamed(s, info, &mut nar, Vec::new(), repair, &keys).await?;
            continue;
        }
        if batch.bytes + size > BATCH_BYTES || batch.items.len() >= BATCH_ITEMS {
            finish(s, &mut in_flight).await?;
            in_flight = batch.start(s, repair, &keys);
        }
        // One byte more than announced tells a longer NAR from an exact one.
        let mut bytes = Vec::with_capacity(size);
        (&mut nar)
            .take(info.nar_size + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| OpError::Connection(worker_protocol::error::ProtocolError::from_io(e)))?;
        if bytes.len() > size {
            // Longer than its info says: the store reports the mismatch, reading it all.
            finish(s, &mut in_flight).await?;
            batch.flush(s, repair, &keys).await?;
            add_streamed(s, info, &mut nar, bytes, repair, &keys).await?;
            continue;
        }
        batch.bytes += bytes.len();
        batch.paths.insert(info.path.clone());
        batch.items.push(NarToAdd { info, nar: std::io::Cursor::new(bytes) });
        if in_flight.as_ref().is_some_and(|task| task.is_finished()) {
            finish(s, &mut in_flight).await?;
        }
        if in_flight.is_none() && batch.is_worth_starting() {
            in_flight = batch.start(s, repair, &keys);
        }
    }
    finish(s, &mut in_flight).await?;
    batch.flush(s, repair, &keys).await?;
    Ok(Response::AddMultipleToStore)
}

/// The most NAR bytes one `AddMultipleToStore` batch holds in memory.
const BATCH_BYTES: usize = 32 << 20;
/// The most paths in one `AddMultipleToStore` batch.
const BATCH_ITEMS: usize = 4096;

/// A batch being added on a blocking thread; it returns the batch's paths.
type InFlight = tokio::task::JoinHandle<Result<Vec<nix_formats::store_path::StorePath>, StoreError>>;

/// A batch is started in the background, while the next is read, once it holds this many
/// paths or bytes: each batch costs a durability barrier, so not every path gets its own,
/// and the client's sending overlaps the store's work.
const PIPELINE_ITEMS: usize = 64;
/// See [`PIPELINE_ITEMS`].
const PIPELINE_BYTES: usize = 4 << 20;

/// Paths of an `AddMultipleToStore` read but not yet added.
#[derive(Default)]
struct Batch {
    items: Vec<NarToAdd<std::io::Cursor<Vec<u8>>>>,
    paths: BTreeSet<nix_formats::store_path::StorePath>,
    bytes: usize,
}

impl Batch {
    /// Whether enough was gathered to start adding it in the background.
    fn is_worth_starting(&self) -> bool {
        self.items.len() >= PIPELINE_ITEMS || self.bytes >= PIPELINE_BYTES
    }

    /// Starts adding the gathered paths (in one go, one durability barrier) on a blocking
    /// thread, and empties the batch; `None` if it was empty. Batches are added in order:
    /// the caller [`finish`]es the previous one first, as later paths may refer to earlier ones.
    fn start(&mut self, s: &Session, repair: bool, keys: &Option<TrustedKeys>) -> Option<InFlight> {
        if self.items.is_empty() {
            return None;
        }
        let items = std::mem::take(&mut self.items);
        tracing::debug!(paths = items.len(), bytes = self.bytes, "adding a batch");
        self.paths.clear();
        self.bytes = 0;
        let keys = keys.clone();
        let store = std::sync::Arc::clone(&s.store);
        Some(tokio::task::spawn_blocking(move || {
            let paths: Vec<_> = items.iter().map(|item| item.info.path.clone()).collect();
            store.add_nars_checked(items, repair, keys.as_ref()).map(|_| paths)
        }))
    }

    /// Adds the gathered paths and empties the batch.
    async fn flush(&mut self, s: &Session, repair: bool, keys: &Option<TrustedKeys>) -> Result<(), OpError> {
        let mut task = self.start(s, repair, keys);
        finish(s, &mut task).await
    }
}

/// Waits for the batch in flight, if any.
async fn finish(s: &Session, in_flight: &mut Option<InFlight>) -> Result<(), OpError> {
    if let Some(task) = in_flight.take() {
        let paths = task.await.map_err(|e| BridgeError::Join(e.to_string())).and_then(|done| done.map_err(BridgeError::Work))?;
        s.note_added(&paths)?;
    }
    Ok(())
}

/// Adds one path whose NAR is `head` followed by the rest of `nar`, streamed into the store.
async fn add_streamed<R: AsyncRead + Unpin>(
    s: &Session,
    info: ValidPathInfo,
    nar: &mut NarStream<R>,
    head: Vec<u8>,
    repair: bool,
    keys: &Option<TrustedKeys>,
) -> Result<(), OpError> {
    let keys = keys.clone();
    let path = info.path.clone();
    let mut input = AsyncReadExt::chain(std::io::Cursor::new(head), &mut *nar);
    let added = bridge::with_input_reading_ahead(&s.store, &mut input, READ_AHEAD, move |st, nar| {
        st.add_nars_checked(vec![NarToAdd { info, nar }], repair, keys.as_ref())
    })
    .await;
    // The next item starts after this NAR, whether or not the store read all of it.
    nar.drain().await?;
    added?;
    s.note_added([&path])?;
    Ok(())
}

/// `ImportPaths`: Nix's export format, pulled from the client. Untrusted clients' paths need
/// signatures (which the format cannot carry), as in Nix.
pub async fn import_paths<R, W>(s: &Session, conn: &mut ServerConnection<R, W>) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let keys = signature_policy(s, s.trusted())?;
    let mut payload = conn.payload()?;
    let paths = bridge::with_input(&s.store, &mut payload, move |st, input| {
        st.import_paths_checked(BufReader::new(input), keys.as_ref())
    })
    .await?;
    Ok(Response::ImportPaths(paths))
}

/// Nix's "is not valid" error unless `path` is valid.
fn require_valid(s: &Session, path: &nix_formats::store_path::StorePath) -> Result<(), OpError> {
    if s.store.is_valid(path)? {
        return Ok(());
    }
    Err(StoreError::InvalidPath(s.print(path)).into())
}

/// `ExportPath`: the path in Nix's export format, in `STDERR_WRITE` messages.
pub async fn export_path<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: ExportPath) -> Result<(), OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let path = r.path;
    require_valid(s, &path)?;
    {
        let mut out = conn.export_writer()?;
        bridge::with_output(&s.store, &mut out, move |st, w| {
            st.export_paths(&BTreeSet::from([path]), w).map(|_| ())
        })
        .await?;
    }
    conn.respond(&Response::ExportPath).await?;
    Ok(())
}

/// `NarFromPath`: the NAR follows `STDERR_LAST` raw, so the path is checked first; an error
/// while streaming can only end the connection.
pub async fn nar_from_path<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: NarFromPath) -> Result<(), OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let path = r.path;
    require_valid(s, &path)?;
    let out = conn.nar_reply().await?;
    let streamed = bridge::with_output(&s.store, out, move |st, w| st.nar_from_path(&path, w).map(|_| ())).await;
    match streamed {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!("streaming a NAR failed after its start: {e}");
            Err(OpError::Connection(worker_protocol::ProtocolError::ConnectionBroken))
        }
    }
}
