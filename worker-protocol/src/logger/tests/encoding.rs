//! Byte layouts, round trips at every version, downgrades and decoding limits.

use super::*;
use crate::error::ProtocolError;
use crate::limits::Limits;
use crate::logger::codes::*;

fn encoded(msg: &LogMessage, minor: u8) -> Vec<u8> {
    let mut out = BytesMut::new();
    msg.encode(&mut out, v(minor)).unwrap();
    out.to_vec()
}

/// Each message laid out field by field, in the order of Nix 2.26's `TunnelLogger`,
/// `TunnelSink`, `TunnelSource` and `operator<<(Sink &, const Error &)`.
#[test]
fn layouts() {
    assert_eq!(encoded(&LogMessage::Next(b"hi\n".to_vec()), 38), Wire::default().n(STDERR_NEXT).s(b"hi\n").bytes());
    assert_eq!(encoded(&LogMessage::Write(vec![0, 1]), 21), Wire::default().n(STDERR_WRITE).s(&[0, 1]).bytes());
    assert_eq!(encoded(&LogMessage::Read { max: 32768 }, 21), Wire::default().n(STDERR_READ).n(32768).bytes());
    assert_eq!(encoded(&LogMessage::Last, 10), STDERR_LAST.to_le_bytes());
    let start = LogMessage::StartActivity {
        id: ActivityId(7),
        level: Verbosity::Info,
        kind: ActivityType::Build,
        text: b"building".to_vec(),
        fields: vec![Field::from("/nix/store/x.drv"), Field::Int(1)],
        parent: ActivityId(3),
    };
    let expected = Wire::default()
        .n(STDERR_START_ACTIVITY)
        .n(7)
        .n(3)
        .n(105)
        .s(b"building")
        .n(2)
        .n(1)
        .s(b"/nix/store/x.drv")
        .n(0)
        .n(1)
        .n(3);
    assert_eq!(encoded(&start, 20), expected.bytes());
    assert_eq!(encoded(&LogMessage::StopActivity { id: ActivityId(7) }, 38), Wire::default().n(STDERR_STOP_ACTIVITY).n(7).bytes());
    let result = LogMessage::Result { id: ActivityId(7), kind: ResultType::BuildLogLine, fields: vec![Field::from("line")] };
    let expected = Wire::default().n(STDERR_RESULT).n(7).n(101).n(1).n(1).s(b"line");
    assert_eq!(encoded(&result, 38), expected.bytes());
}

#[test]
fn error_forms() {
    let e = RemoteError::new("it broke").with_status(100).with_trace("while doing a").with_trace("while doing b");
    let old = Wire::default().n(STDERR_ERROR).s("it broke\n… while doing a\n… while doing b".as_bytes()).n(100);
    assert_eq!(encoded(&LogMessage::Error(e.clone()), 25), old.bytes());
    let new = Wire::default()
        .n(STDERR_ERROR)
        .s(b"Error")
        .n(0)
        .s(b"Error")
        .s(b"it broke")
        .n(0)
        .n(2)
        .n(0)
        .s(b"while doing a")
        .n(0)
        .s(b"while doing b");
    assert_eq!(encoded(&LogMessage::Error(e.clone()), 26), new.bytes());

    // Read back: the old form keeps the status and folds traces; the new one keeps level and
    // traces, and its status is 1 (it carries none).
    block_on(async {
        let back = read_one(old.bytes(), &ctx(25)).await.unwrap();
        assert_eq!(back, LogMessage::Error(RemoteError::new(e.full_message()).with_status(100)));
        let back = read_one(new.bytes(), &ctx(26)).await.unwrap();
        assert_eq!(back, LogMessage::Error(RemoteError { status: 1, ..e.clone() }));
    });

    // Into and out of ProtocolError::Remote.
    match ProtocolError::from(e.clone()) {
        ProtocolError::Remote { message, status } => {
            assert_eq!(message, "it broke\n… while doing a\n… while doing b");
            assert_eq!(status, 100);
        }
        other => panic!("{other:?}"),
    }
    let back = RemoteError::from(ProtocolError::Remote { message: "m".into(), status: 5 });
    assert_eq!(back, RemoteError::new("m").with_status(5));
    let back = RemoteError::from(ProtocolError::Remote { message: "m".into(), status: u64::MAX });
    assert_eq!(back.status, u32::MAX);
    let other = RemoteError::from(ProtocolError::UnexpectedEof);
    assert_eq!((other.message.as_str(), other.status), ("unexpected end of input", 1));
    assert_eq!(e.to_string(), e.full_message());
}

#[test]
fn errors_that_are_refused_or_repaired() {
    block_on(async {
        let c = ctx(38);
        let bad_type = Wire::default().n(STDERR_ERROR).s(b"Oops").n(0).s(b"").s(b"m").n(0).n(0);
        assert!(matches!(read_one(bad_type.bytes(), &c).await, Err(ProtocolError::BadString { what: "error type", .. })));
        let with_pos = Wire::default().n(STDERR_ERROR).s(b"Error").n(0).s(b"").s(b"m").n(1).n(0);
        assert!(matches!(read_one(with_pos.bytes(), &c).await, Err(ProtocolError::BadValue { value: 1, .. })));
        let trace_pos = Wire::default().n(STDERR_ERROR).s(b"Error").n(0).s(b"").s(b"m").n(0).n(1).n(2).s(b"t");
        assert!(matches!(read_one(trace_pos.bytes(), &c).await, Err(ProtocolError::BadValue { value: 2, .. })));
        let many = Wire::default().n(STDERR_ERROR).s(b"Error").n(0).s(b"").s(b"m").n(0).n(u64::MAX);
        assert!(matches!(read_one(many.bytes(), &c).await, Err(ProtocolError::TooManyItems { .. })));
        let big_status = Wire::default().n(STDERR_ERROR).s(b"m").n(1 << 32);
        assert!(matches!(read_one(big_status.bytes(), &ctx(25)).await, Err(ProtocolError::IntegerTooLarge { .. })));
        // A message that is not UTF-8 is repaired rather than refused; a level above 7 is 7.
        let odd = Wire::default().n(STDERR_ERROR).s(b"Error").n(9).s(b"").s(b"caf\xe9").n(0).n(0);
        let LogMessage::Error(e) = read_one(odd.bytes(), &c).await.unwrap() else { panic!() };
        assert_eq!((e.message.as_str(), e.level), ("caf\u{fffd}", Verbosity::Vomit));
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every message survives encoding and decoding at every version that has it, and the
    /// decoder takes exactly its bytes; versions without it refuse to encode it.
    #[test]
    fn round_trips_at_every_version(msg in message()) {
        for minor in VERSIONS {
            let mut out = BytesMut::new();
            let r = msg.encode(&mut out, v(minor));
            if !msg.exists_at(v(minor)) {
                prop_assert!(matches!(r, Err(ProtocolError::Unrepresentable { .. })), "{:?}", r);
                continue;
            }
            r.unwrap();
            let back = block_on(read_one(&out, &ctx(minor))).unwrap();
            prop_assert_eq!(back, as_received(&msg, v(minor)));
        }
    }

    /// Every cut-off encoding is an unexpected end, never a panic or another message.
    #[test]
    fn truncations_are_unexpected_eof(msg in message()) {
        let out = encoded(&msg, 38);
        for cut in 0..out.len() {
            let r = block_on(read_one(&out[..cut], &ctx(38)));
            prop_assert!(matches!(r, Err(ProtocolError::UnexpectedEof)), "{cut}: {:?}", r);
        }
    }

    /// Random bytes never panic the decoder.
    #[test]
    fn garbage_never_panics(code in prop_oneof![Just(STDERR_START_ACTIVITY), Just(STDERR_RESULT), Just(STDERR_ERROR), any::<u64>()],
                            rest in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut input = code.to_le_bytes().to_vec();
        input.extend_from_slice(&rest);
        let limits = Limits { max_string_len: 1 << 10, max_collection_len: 16, max_message_len: 1 << 12, ..Limits::DEFAULT };
        let _ = block_on(read_message(&mut &input[..], &ctx(38).with_limits(limits)));
    }

    /// `encode_for` is `downgrade` then the exact encoding, and from 1.20 it changes nothing.
    #[test]
    fn encode_for_is_downgrade_then_encode(msg in message(), level in verbosity()) {
        let filter = LogFilter::new(level);
        for minor in VERSIONS {
            let got = encode_for(v(minor), filter, &msg).map(|b| b.to_vec());
            let want = downgrade(v(minor), filter, &msg).map(|m| encoded(&m, minor));
            prop_assert_eq!(&got, &want);
            if minor >= 20 {
                prop_assert_eq!(got, Some(encoded(&msg, minor)));
            }
        }
    }
}

#[test]
fn activities_before_1_20() {
    let filter = LogFilter::new(Verbosity::Info);
    let start = |level, text: &str| LogMessage::StartActivity {
        id: ActivityId(1),
        level,
        kind: ActivityType::CopyPath,
        text: text.as_bytes().to_vec(),
        fields: vec![Field::Int(9)],
        parent: ActivityId::NONE,
    };
    for minor in [10, 19] {
        let down = |m: &LogMessage| downgrade(v(minor), filter, m).map(|c| c.into_owned());
        assert_eq!(down(&start(Verbosity::Info, "copying x")), Some(LogMessage::Next(b"copying x...\n".to_vec())));
        assert_eq!(down(&start(Verbosity::Error, "e")), Some(LogMessage::Next(b"e...\n".to_vec())));
        // Filtered by level, and dropped without text.
        assert_eq!(down(&start(Verbosity::Talkative, "chatter")), None);
        assert_eq!(down(&start(Verbosity::Error, "")), None);
        // Stops and results, build output included, are dropped.
        assert_eq!(down(&LogMessage::StopActivity { id: ActivityId(1) }), None);
        let line = LogMessage::Result { id: ActivityId(1), kind: ResultType::BuildLogLine, fields: vec![Field::from("out")] };
        assert_eq!(down(&line), None);
        for other in [LogMessage::Next(b"x\n".to_vec()), LogMessage::Last, LogMessage::Write(vec![1]), LogMessage::Read { max: 8 }] {
            assert_eq!(down(&other).as_ref(), Some(&other));
        }
    }
    // From 1.20 activities go as they are, whatever their level.
    let loud = start(Verbosity::Vomit, "debugging");
    assert_eq!(downgrade(v(20), LogFilter::new(Verbosity::Error), &loud).as_deref(), Some(&loud));
    assert!(downgrade(v(38), LogFilter::new(Verbosity::Error), &LogMessage::StopActivity { id: ActivityId(1) }).is_some());
}

#[test]
fn decoding_limits() {
    block_on(async {
        let c = ctx(38);
        assert!(matches!(read_one(&0x1234u64.to_le_bytes(), &c).await, Err(ProtocolError::UnexpectedMessage(0x1234))));
        let bad_tag = Wire::default().n(STDERR_RESULT).n(1).n(101).n(1).n(2).n(0);
        assert!(matches!(read_one(bad_tag.bytes(), &c).await, Err(ProtocolError::BadValue { what: "logger field type", value: 2 })));
        let bad_kind = Wire::default().n(STDERR_RESULT).n(1).n(1 << 32).n(0);
        assert!(matches!(read_one(bad_kind.bytes(), &c).await, Err(ProtocolError::IntegerTooLarge { .. })));

        let small = Limits { max_string_len: 100, max_collection_len: 10, max_message_len: 1000, ..Limits::DEFAULT };
        let c = ctx(38).with_limits(small);
        let long = Wire::default().n(STDERR_NEXT).s(&[b'x'; 101]);
        assert!(matches!(read_one(long.bytes(), &c).await, Err(ProtocolError::StringTooLong { len: 101, max: 100 })));
        let many = Wire::default().n(STDERR_RESULT).n(1).n(101).n(11);
        assert!(matches!(read_one(many.bytes(), &c).await, Err(ProtocolError::TooManyItems { count: 11, .. })));
        // Ten strings of 100 bytes each are within the string and count limits, but not the
        // budget of 1000 bytes for the whole message.
        let mut heavy = Wire::default().n(STDERR_RESULT).n(1).n(101).n(10);
        for _ in 0..10 {
            heavy = heavy.n(1).s(&[b'y'; 100]);
        }
        assert!(matches!(read_one(heavy.bytes(), &c).await, Err(ProtocolError::MessageTooLarge { max: 1000 })));
        // A huge announced string with nothing behind it fails without allocating it.
        let lie = Wire::default().n(STDERR_WRITE).n(60 << 20);
        assert!(matches!(read_one(lie.bytes(), &ctx(38)).await, Err(ProtocolError::UnexpectedEof)));
        // Activities from a daemon of an old version are still read, as Nix's clients do.
        let stop = Wire::default().n(STDERR_STOP_ACTIVITY).n(4);
        assert_eq!(read_one(stop.bytes(), &ctx(10)).await.unwrap(), LogMessage::StopActivity { id: ActivityId(4) });
    });
}

#[test]
fn stderr_module_still_reads_errors() {
    block_on(async {
        let e = RemoteError::new("denied").with_trace("while connecting");
        let mut out = BytesMut::new();
        e.encode(&mut out, v(38));
        let got = crate::stderr::read_error(&mut &out[..], v(38), &Limits::DEFAULT).await.unwrap();
        assert!(matches!(got, ProtocolError::Remote { ref message, status: 1 } if message == "denied\n… while connecting"), "{got:?}");
    });
}
