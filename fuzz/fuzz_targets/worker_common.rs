//! Checks shared by the worker-protocol fuzz targets (included with `#[path]`, not a target).

use bytes::BytesMut;
use worker_protocol::wire::{DecodeError, Decoder};
use worker_protocol::{Limits, ProtocolError, ProtocolVersion};

/// The worker protocol version a selector byte picks: 1.21 to 1.38.
pub fn version(selector: u8) -> ProtocolVersion {
    ProtocolVersion::new(1, 21 + selector % 18)
}

/// What a decoder makes of `input`: the value and how many bytes it used, "more bytes needed",
/// or an error.
pub type Decoded<T> = Result<(T, usize), DecodeError>;

/// Decodes `input` with `decode`, noting how many bytes it used.
pub fn run<T>(input: &[u8], decode: &impl Fn(&mut Decoder<'_>) -> Result<T, DecodeError>) -> Decoded<T> {
    let mut d = Decoder::new(input, Limits::DEFAULT);
    decode(&mut d).map(|v| (v, d.position()))
}

/// The properties of a decoder/encoder pair on fuzzed `input`:
/// - a decoded value uses no more bytes than there are;
/// - "more bytes needed" is honest: `needed - 1` more zero bytes never complete the value;
/// - a decoded value encodes (a value read at a version can be written at it), and its encoding
///   decodes, using every byte, to the same value, which encodes to the same bytes again;
/// - every strict prefix of that encoding asks for more bytes, at most as many as are missing.
pub fn check<T: PartialEq + std::fmt::Debug>(
    input: &[u8],
    decode: impl Fn(&mut Decoder<'_>) -> Result<T, DecodeError>,
    encode: impl Fn(&T, &mut BytesMut) -> Result<(), ProtocolError>,
) {
    let value = match run(input, &decode) {
        Ok((value, used)) => {
            assert!(used <= input.len());
            value
        }
        Err(DecodeError::Incomplete { needed }) => {
            assert!(needed >= 1, "Incomplete asks for nothing");
            if needed <= 4096 {
                let mut longer = input.to_vec();
                longer.resize(input.len() + needed - 1, 0);
                assert!(run(&longer, &decode).is_err(), "{} more bytes completed a value that asked for {needed}", needed - 1);
            }
            return;
        }
        Err(DecodeError::Invalid(_)) => return,
    };
    let mut bytes = BytesMut::new();
    encode(&value, &mut bytes).unwrap_or_else(|e| panic!("{value:?} was decoded but does not encode: {e}"));
    let (again, used) = run(&bytes, &decode).unwrap_or_else(|e| panic!("the encoding of {value:?} does not decode: {e}"));
    assert_eq!(used, bytes.len(), "bytes left after decoding the encoding of {value:?}");
    assert_eq!(again, value, "round trip changed the value");
    let mut twice = BytesMut::new();
    encode(&again, &mut twice).unwrap_or_else(|e| panic!("{again:?} does not encode the second time: {e}"));
    assert_eq!(twice, bytes, "the encoding of {value:?} is not stable");
    // Every prefix for short encodings; a spread of them for long ones.
    let step = (bytes.len() / 64).max(1);
    for n in (0..bytes.len()).step_by(step) {
        match run(&bytes[..n], &decode) {
            Err(DecodeError::Incomplete { needed }) => {
                assert!(needed >= 1 && n + needed <= bytes.len(), "prefix {n}/{}: asks for {needed}", bytes.len())
            }
            Err(DecodeError::Invalid(e)) => panic!("prefix {n}/{} of the encoding of {value:?} is invalid: {e}", bytes.len()),
            Ok(_) => panic!("prefix {n}/{} of the encoding of {value:?} decodes", bytes.len()),
        }
    }
}
