//! Serialisers for build requests and results: [`BuildMode`], [`DerivedPath`], [`BuildResult`]
//! and [`KeyedBuildResult`].

use std::collections::{BTreeMap, BTreeSet};

use bytes::BytesMut;
use nix_formats::build_result::{BuildResult, BuildStatus, KeyedBuildResult};
use nix_formats::derived_path::{is_valid_output_name, DerivedPath, DerivedPathError, OutputsSpec, SingleDerivedPath};
use nix_formats::realisation::{DrvOutput, Realisation};

use super::{Protocol, WireCtx, WireDecode, WireEncode};
use crate::error::ProtocolError;
use crate::types::BuildMode;
use crate::wire::encoder::{put_bool, put_str, put_u64};
use crate::wire::{DecodeError, Decoder};

/// A build mode: one number, 0 to 2.
impl WireEncode for BuildMode {
    fn encode(&self, out: &mut BytesMut, _: &WireCtx) -> Result<(), ProtocolError> {
        put_u64(out, self.code());
        Ok(())
    }
}

impl WireDecode for BuildMode {
    fn decode(d: &mut Decoder<'_>, _: &WireCtx) -> Result<Self, DecodeError> {
        let value = d.read_u64()?;
        BuildMode::from_code(value).ok_or_else(|| ProtocolError::BadValue { what: "build mode", value }.into())
    }
}

/// A derived path: one string. From worker 1.30 it is the legacy text form (`drv!out,dev`,
/// `drv!*`, nested `drv!out!bin`). Before, "all outputs" is the bare `.drv` path, so neither an
/// opaque `.drv` path nor a nested derivation can be sent.
impl WireEncode for DerivedPath {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        if let DerivedPath::Built { outputs: OutputsSpec::Names(names), .. } = self {
            if names.is_empty() {
                return Err(ctx.unrepresentable("a derived path with an empty output set"));
            }
        }
        if ctx.at_least(30) {
            put_str(out, &self.to_legacy_text(&ctx.store_dir));
            return Ok(());
        }
        let text = match self {
            DerivedPath::Opaque(p) if p.is_derivation() => {
                return Err(ctx.unrepresentable(format!("the derivation file '{}' as an opaque path", ctx.store_dir.print(p))))
            }
            DerivedPath::Opaque(p) => ctx.store_dir.print(p),
            DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(drv), outputs } => match outputs {
                OutputsSpec::All if drv.is_derivation() => ctx.store_dir.print(drv),
                OutputsSpec::All => return Err(ctx.unrepresentable("all outputs of a path that is not a derivation")),
                OutputsSpec::Names(names) => format!("{}!{}", ctx.store_dir.print(drv), outputs_text(names)),
            },
            DerivedPath::Built { .. } => return Err(ctx.unrepresentable("an output of a derivation that is itself built")),
        };
        put_str(out, &text);
        Ok(())
    }
}

fn outputs_text(names: &BTreeSet<String>) -> String {
    names.iter().map(String::as_str).collect::<Vec<_>>().join(",")
}

impl WireDecode for DerivedPath {
    /// A string.
    const MIN_WIRE_LEN: usize = 8;

    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let text = d.read_str()?;
        if ctx.at_least(30) {
            return Ok(DerivedPath::parse_legacy(&ctx.store_dir, text, d.limits().max_depth)?);
        }
        // Before 1.30: `path` or `path!out1,out2`; a bare derivation means all outputs.
        let (path, outputs) = match text.split_once('!') {
            Some((path, outputs)) => (path, outputs),
            None => (text, ""),
        };
        let path = ctx.store_dir.parse(path)?;
        let mut names = BTreeSet::new();
        for name in outputs.split(',').filter(|n| !n.is_empty()) {
            if !is_valid_output_name(name) {
                return Err(ProtocolError::from(DerivedPathError::BadOutputs(name.chars().take(200).collect())).into());
            }
            names.insert(name.to_owned());
        }
        Ok(if !names.is_empty() {
            DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(path), outputs: OutputsSpec::Names(names) }
        } else if path.is_derivation() {
            DerivedPath::Built { drv_path: SingleDerivedPath::Opaque(path), outputs: OutputsSpec::All }
        } else {
            DerivedPath::Opaque(path)
        })
    }
}

/// An optional CPU time (worker 1.37): tag 0 (absent) or 1 followed by signed microseconds.
fn put_micros(out: &mut BytesMut, ctx: &WireCtx, value: Option<i64>) -> Result<(), ProtocolError> {
    match value {
        None => put_u64(out, 0),
        Some(us) => {
            let us = u64::try_from(us).map_err(|_| ctx.unrepresentable("a negative CPU time"))?;
            put_u64(out, 1);
            put_u64(out, us);
        }
    }
    Ok(())
}

fn read_micros(d: &mut Decoder<'_>) -> Result<Option<i64>, DecodeError> {
    match d.read_u64()? {
        0 => Ok(None),
        1 => Ok(Some(read_i64(d, "CPU time")?)),
        value => Err(ProtocolError::BadValue { what: "optional tag", value }.into()),
    }
}

/// A signed number as Nix reads it: the `u64` must not exceed `i64::MAX`.
fn read_i64(d: &mut Decoder<'_>, what: &'static str) -> Result<i64, DecodeError> {
    let v = d.read_bounded(what, i64::MAX as u64)?;
    i64::try_from(v).map_err(|_| ProtocolError::IntegerTooLarge { what, value: v, max: i64::MAX as u64 }.into())
}

fn put_i64(out: &mut BytesMut, ctx: &WireCtx, value: i64, what: &str) -> Result<(), ProtocolError> {
    put_u64(out, u64::try_from(value).map_err(|_| ctx.unrepresentable(format!("a negative {what}")))?);
    Ok(())
}

/// A build result. Worker: status, message; from 1.29 times built, non-determinism, start and stop
/// time; from 1.37 user and system CPU time; from 1.28, last, the built outputs as a map from
/// derivation output id to realisation. Serve: the same fields from 2.3 and 2.6, never CPU times.
impl WireEncode for BuildResult {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        let (times_from, cpu_from, outputs_from) = gates(ctx.protocol);
        put_u64(out, self.status.code().into());
        put_str(out, &self.error_msg);
        if ctx.at_least(times_from) {
            put_u64(out, self.times_built.into());
            put_bool(out, self.is_non_deterministic);
            put_i64(out, ctx, self.start_time, "start time")?;
            put_i64(out, ctx, self.stop_time, "stop time")?;
        }
        if cpu_from.is_some_and(|v| ctx.at_least(v)) {
            put_micros(out, ctx, self.cpu_user_micros)?;
            put_micros(out, ctx, self.cpu_system_micros)?;
        }
        if ctx.at_least(outputs_from) {
            let by_id: BTreeMap<&DrvOutput, &Realisation> =
                self.built_outputs.values().map(|r| (&r.id, r)).collect();
            put_u64(out, by_id.len() as u64);
            for (id, realisation) in by_id {
                id.encode(out, ctx)?;
                realisation.encode(out, ctx)?;
            }
        }
        Ok(())
    }
}

/// The minor versions that bring times, CPU times and built outputs.
fn gates(protocol: Protocol) -> (u8, Option<u8>, u8) {
    match protocol {
        Protocol::Worker => (29, Some(37), 28),
        Protocol::Serve => (3, None, 6),
    }
}

impl WireDecode for BuildResult {
    /// A status and a message.
    const MIN_WIRE_LEN: usize = 16;

    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let (times_from, cpu_from, outputs_from) = gates(ctx.protocol);
        let status = BuildStatus::from_code(d.read_u32("build status")?);
        let mut res = BuildResult::new(status, d.read_str()?);
        if ctx.at_least(times_from) {
            res.times_built = d.read_u32("times built")?;
            res.is_non_deterministic = d.read_bool("non-determinism flag")?;
            res.start_time = read_i64(d, "start time")?;
            res.stop_time = read_i64(d, "stop time")?;
        }
        if cpu_from.is_some_and(|v| ctx.at_least(v)) {
            res.cpu_user_micros = read_micros(d)?;
            res.cpu_system_micros = read_micros(d)?;
        }
        if ctx.at_least(outputs_from) {
            // Keyed by the id's output name, as Nix does. Nix writes each realisation under its
            // own id; one filed under another id is refused (Nix would keep it under the wrong
            // name, and it could not be written back as it came).
            let outputs = BTreeMap::<DrvOutput, Realisation>::decode(d, ctx)?;
            for (id, r) in &outputs {
                if *id != r.id {
                    return Err(ProtocolError::BadDerivationOutput {
                        output: id.output_name.chars().take(100).collect(),
                        message: "a built output's realisation has another id than its key",
                    }
                    .into());
                }
            }
            res.built_outputs = outputs.into_iter().map(|(id, r)| (id.output_name, r)).collect();
        }
        Ok(res)
    }
}

/// A keyed build result (worker only): the derived path, then the build result.
impl WireEncode for KeyedBuildResult {
    fn encode(&self, out: &mut BytesMut, ctx: &WireCtx) -> Result<(), ProtocolError> {
        self.path.encode(out, ctx)?;
        self.result.encode(out, ctx)
    }
}

impl WireDecode for KeyedBuildResult {
    /// A derived path and a build result.
    const MIN_WIRE_LEN: usize = DerivedPath::MIN_WIRE_LEN + BuildResult::MIN_WIRE_LEN;

    fn decode(d: &mut Decoder<'_>, ctx: &WireCtx) -> Result<Self, DecodeError> {
        let path = DerivedPath::decode(d, ctx)?;
        let result = BuildResult::decode(d, ctx)?;
        Ok(KeyedBuildResult { path, result })
    }
}
