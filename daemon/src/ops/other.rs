//! Options, signatures, realisations and build logs.

use std::collections::BTreeSet;

use std::sync::Arc;

use store::StoreError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use worker_protocol::connection::ServerConnection;
use worker_protocol::logger::Verbosity;
use worker_protocol::ops::request::add::{AddBuildLog, AddSignatures, RegisterDrvOutput};
use worker_protocol::ops::set_options::{filter_substituters, override_policy, untrusted_substituter_warning, OverridePolicy};
use worker_protocol::ops::{ClientOptions, Response};

use super::{refuse, OpError, Session};
use crate::bridge;
use crate::settings::Settings;

/// The largest build log accepted from a client.
const MAX_BUILD_LOG: u64 = 256 << 20;

/// Nix's warning prefix (`warning:` in bold yellow).
pub fn warning(text: &str) -> String {
    format!("\x1b[35;1mwarning:\x1b[0m {text}")
}

/// Nix's error prefix (`error:` in bold red), continuation lines indented under the message
/// and stripped of trailing blanks, as Nix shows a logged error.
pub fn error_text(text: &str) -> String {
    let lines: Vec<String> = text
        .split('\n')
        .enumerate()
        .map(|(i, line)| {
            let prefix = if i == 0 { "\x1b[31;1merror:\x1b[0m " } else { "       " };
            format!("{prefix}{line}").trim_end().to_owned()
        })
        .collect();
    lines.join("\n")
}

/// `SetOptions`: kept for this connection; settings an untrusted client may not change are
/// ignored with Nix's warnings.
pub async fn set_options<R, W>(s: &mut Session, conn: &mut ServerConnection<R, W>, options: ClientOptions) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let trusted = s.trusted();
    let mut raw = s.settings.raw.clone();
    for (name, value) in &options.overrides {
        match override_policy(name, value, trusted) {
            OverridePolicy::Apply => raw.set(name, value),
            OverridePolicy::IgnoreSilently => {}
            OverridePolicy::IgnoreWithWarning(text) => {
                conn.logger().log(Verbosity::Warn, warning(&text)).await?;
            }
            OverridePolicy::FilterSubstituters => {
                let known: BTreeSet<String> =
                    s.settings.substituters.iter().chain(&s.settings.trusted_substituters).cloned().collect();
                let (kept, dropped) = filter_substituters(value, &known);
                for url in dropped {
                    conn.logger().log(Verbosity::Warn, warning(&untrusted_substituter_warning(&url))).await?;
                }
                raw.set(name, &kept.join(" "));
            }
        }
    }
    // The connection's settings: the daemon's with the client's accepted overrides (Nix
    // applies them to its per-connection process).
    match Settings::from_raw(raw) {
        Ok(settings) => s.settings = Arc::new(settings),
        Err(e) => {
            conn.logger().log(Verbosity::Warn, warning(&e.to_string())).await?;
        }
    }
    s.options = options;
    Ok(Response::SetOptions)
}

/// `AddSignatures`: to a valid path.
pub async fn add_signatures(s: &Session, r: AddSignatures) -> Result<Response, OpError> {
    bridge::run(&s.store, move |st| {
        if !st.is_valid(&r.path)? {
            return Err(StoreError::InvalidPath(st.print(&r.path)));
        }
        st.db().add_signatures(&r.path, &r.sigs).map_err(StoreError::from)
    })
    .await?;
    Ok(Response::AddSignatures)
}

/// `RegisterDrvOutput` (Nix's daemon registers it without a signature check).
pub async fn register_drv_output(s: &Session, r: RegisterDrvOutput) -> Result<Response, OpError> {
    bridge::run(&s.store, move |st| st.db().register_realisation(&r.realisation).map_err(StoreError::from)).await?;
    Ok(Response::RegisterDrvOutput)
}

/// `AddBuildLog`: trusted clients only.
pub async fn add_build_log<R, W>(s: &Session, conn: &mut ServerConnection<R, W>, r: AddBuildLog) -> Result<Response, OpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !s.trusted() {
        return refuse("you are not privileged to add logs");
    }
    let mut log = Vec::new();
    conn.payload()?.take(MAX_BUILD_LOG + 1).read_to_end(&mut log).await.map_err(worker_protocol::ProtocolError::from_io)?;
    if log.len() as u64 > MAX_BUILD_LOG {
        return refuse(format!("build log larger than {MAX_BUILD_LOG} bytes"));
    }
    let log_dir = s.locations.log_dir.clone();
    let base = r.drv_path.to_string();
    bridge::run(&s.store, move |_| crate::build::log::write_build_log(&log_dir, &base, &log, false)).await?;
    Ok(Response::AddBuildLog)
}


#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn error_lines_are_indented_under_the_message() {
        assert_eq!(error_text("one line"), "\x1b[31;1merror:\x1b[0m one line");
        assert_eq!(
            error_text("builder failed;\nlast 1 log lines:\n> x  \n\nFor full logs"),
            "\x1b[31;1merror:\x1b[0m builder failed;\n       last 1 log lines:\n       > x\n\n       For full logs"
        );
    }
}
