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
use tokio::io::{AsyncRead, AsyncWrite};
use worker_protocol::connection::ServerConnection;
use worker_protocol::nar_stream::NarStream;
use worker_protocol::ops::payload::decode_multiple_item_info;
use worker_protocol::ops::request::add::*;
use worker_protocol::ops::response::AddToStoreReply;
use worker_protocol::ops::Response;
use worker_protocol::wire::WireReader;

use super::{refuse, OpError, Session};
use crate::bridge;

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
    let info = match r {
        AddToStore::Framed(f) => {
            let method = store_method(f.method.method)?;
            let algo = f.method.algo;
            bridge::with_input(&s.store, &mut payload, move |st, input| {
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
            bridge::with_input(&s.store, &mut payload, move |st, input| {
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
    bridge::with_input(&s.store, &mut payload, move |st, nar| {
        st.add_nars_checked(vec![NarToAdd { info, nar }], repair, keys.as_ref())
    })
    .await?;
    Ok(Response::AddToStoreNar)
}

/// `AddMultipleToStore`: a count, then each path's info and NAR, added one by one in order
/// (clients send them with references first).
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
    let ctx = conn.ctx().clone();
    let mut items = WireReader::new(conn.payload()?);
    let count: u64 = items.read_value(&ctx).await?;
    if count > MAX_MULTIPLE {
        return refuse(format!("too many paths in one AddMultipleToStore ({count})"));
    }
    for _ in 0..count {
        let mut info = items.read_with(&ctx, decode_multiple_item_info).await?;
        if !trusted {
            info.ultimate = false;
        }
        let keys = keys.clone();
        let repair = r.repair;
        let mut nar = NarStream::new(&mut items, nix_formats::nar::Limits::default());
        let added = bridge::with_input(&s.store, &mut nar, move |st, nar| {
            st.add_nars_checked(vec![NarToAdd { info, nar }], repair, keys.as_ref())
        })
        .await;
        // The next item starts after this NAR, whether or not the store read all of it.
        nar.drain().await?;
        added?;
    }
    Ok(Response::AddMultipleToStore)
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
