//! Both sides talking: `ServerLogger` on one end of an in-memory connection, `process_stderr`
//! on the other.

use tokio::io::{duplex, split, AsyncReadExt};

use super::*;
use crate::error::ProtocolError;
use crate::logger::codes::*;

/// Runs `server` against `process_stderr` on a connection at `minor`, with `source` for data
/// requests; returns what the client collected and how `process_stderr` ended.
async fn exchange<F, Fut>(
    minor: u8,
    source: Option<&[u8]>,
    server: F,
) -> (LogCollector, Result<(), ProtocolError>)
where
    F: FnOnce(ServerLogger<tokio::io::WriteHalf<tokio::io::DuplexStream>>, tokio::io::ReadHalf<tokio::io::DuplexStream>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (client, server_end) = duplex(256);
    let (server_read, server_write) = split(server_end);
    let (mut client_read, mut client_write) = split(client);
    let logger = ServerLogger::new(server_write, v(minor));
    let mut sink = LogCollector::new(1 << 20);
    let mut source_bytes: &[u8] = source.unwrap_or_default();
    let client = async {
        let src: Option<&mut (dyn tokio::io::AsyncRead + Unpin + Send)> =
            if source.is_some() { Some(&mut source_bytes) } else { None };
        process_stderr(&mut client_read, &mut client_write, &ctx(minor), &mut sink, src).await
    };
    let ((), result) = tokio::join!(server(logger, server_read), client);
    (sink, result)
}

#[tokio::test]
async fn a_whole_operation_at_each_version() {
    for minor in VERSIONS {
        let (sink, result) = exchange(minor, Some(b"client data"), |mut logger, mut reader| async move {
            logger.set_verbosity(Verbosity::Talkative);
            logger.start_work().await.unwrap();
            assert!(logger.log(Verbosity::Info, "info line").await.unwrap());
            assert!(!logger.log(Verbosity::Debug, "debug line").await.unwrap());
            let id = logger
                .start_activity(Verbosity::Info, ActivityType::Build, "building foo", vec![Field::from("/nix/store/foo.drv")], ActivityId::NONE)
                .await
                .unwrap();
            logger.result(id, ResultType::BuildLogLine, vec![Field::from("compiling")]).await.unwrap();
            logger.stop_activity(id).await.unwrap();
            logger.write_data(b"exported").await.unwrap();
            let mut pulled = Vec::new();
            logger.pull_source(&mut reader).unwrap().take(11).read_to_end(&mut pulled).await.unwrap();
            assert_eq!(pulled, b"client data");
            logger.log_formatted(Verbosity::Warn, "warning: formatted").await.unwrap();
            logger.last().await.unwrap();
        })
        .await;
        result.unwrap();
        assert_eq!(sink.data, b"exported");
        let mut expected = vec!["info line".to_owned()];
        if minor < 20 {
            expected.push("building foo...".into());
        }
        expected.push("warning: formatted".into());
        assert_eq!(sink.lines(), expected, "1.{minor}");
        let kinds: Vec<u64> = sink.messages.iter().map(LogMessage::code).collect();
        if minor >= 20 {
            assert_eq!(kinds, [STDERR_NEXT, STDERR_START_ACTIVITY, STDERR_RESULT, STDERR_STOP_ACTIVITY, STDERR_NEXT]);
            let LogMessage::StartActivity { id, text, fields, parent, .. } = &sink.messages[1] else { panic!() };
            assert_eq!((text.as_slice(), parent), (&b"building foo"[..], &ActivityId::NONE));
            assert_eq!(fields, &[Field::from("/nix/store/foo.drv")]);
            assert!(matches!(&sink.messages[2], LogMessage::Result { id: r, .. } if r == id));
        } else {
            assert_eq!(kinds, [STDERR_NEXT, STDERR_NEXT, STDERR_NEXT]);
        }
    }
}

#[tokio::test]
async fn errors_end_the_operation_in_both_forms() {
    for minor in [21, 25, 26, 38] {
        let (sink, result) = exchange(minor, None, |mut logger, _reader| async move {
            logger.start_work().await.unwrap();
            logger.log(Verbosity::Error, "before").await.unwrap();
            let e = RemoteError::new("build failed").with_status(100).with_trace("while building foo");
            logger.error(&e).await.unwrap();
            assert!(!logger.is_working());
        })
        .await;
        assert_eq!(sink.lines(), ["before"]);
        match result {
            Err(ProtocolError::Remote { message, status }) => {
                assert_eq!(message, "build failed\n… while building foo");
                assert_eq!(status, if minor >= 26 { 1 } else { 100 }, "1.{minor}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn verbosity_filtering() {
    for verbosity in Verbosity::ALL {
        let (sink, result) = exchange(38, None, |mut logger, _| async move {
            logger.set_verbosity(verbosity);
            logger.start_work().await.unwrap();
            for level in Verbosity::ALL {
                logger.log(level, level.name()).await.unwrap();
                logger.start_activity(level, ActivityType::Unknown(0), level.name(), vec![], ActivityId::NONE).await.unwrap();
            }
            logger.last().await.unwrap();
        })
        .await;
        result.unwrap();
        let wanted: Vec<String> = Verbosity::ALL.iter().filter(|l| **l <= verbosity).map(|l| l.name().to_owned()).collect();
        assert_eq!(sink.lines(), wanted);
        let activities = sink.messages.iter().filter(|m| matches!(m, LogMessage::StartActivity { .. })).count();
        assert_eq!(activities, 8, "activities are not filtered");
    }
    // Before 1.20 activities turn into lines and are filtered like lines.
    let (sink, result) = exchange(19, None, |mut logger, _| async move {
        logger.set_verbosity(Verbosity::Notice);
        logger.start_work().await.unwrap();
        for level in Verbosity::ALL {
            logger.start_activity(level, ActivityType::CopyPath, level.name(), vec![], ActivityId::NONE).await.unwrap();
        }
        logger.last().await.unwrap();
    })
    .await;
    result.unwrap();
    assert_eq!(sink.lines(), ["error...", "warn...", "notice..."]);
}

#[tokio::test]
async fn log_output_while_idle_waits_for_the_next_operation() {
    let mut logger = ServerLogger::new(Vec::new(), v(38));
    assert!(!logger.is_working());
    logger.log(Verbosity::Info, "early").await.unwrap();
    assert!(logger.get_ref().is_empty(), "nothing is sent while idle");
    assert!(matches!(logger.write_data(b"x").await, Err(ProtocolError::LoggerIdle("STDERR_WRITE"))));
    let mut reader = &b""[..];
    assert!(matches!(logger.pull_source(&mut reader), Err(ProtocolError::LoggerIdle("STDERR_READ"))));
    logger.start_work().await.unwrap();
    logger.last().await.unwrap();
    let expected = Wire::default().n(STDERR_NEXT).s(b"early\n").n(STDERR_LAST);
    assert_eq!(logger.get_ref().as_slice(), expected.bytes());

    // Held-back output is bounded; what does not fit is counted and dropped.
    let mut logger = ServerLogger::new(Vec::new(), v(38));
    let line = vec![b'z'; 1000];
    for _ in 0..2000 {
        logger.log(Verbosity::Error, &line).await.unwrap();
    }
    assert!(logger.dropped_messages() > 900);
    logger.start_work().await.unwrap();
    assert!(logger.get_ref().len() <= MAX_PENDING);
    // Errors can be sent while idle (a request that could not be read), and data is refused
    // after the operation ended.
    logger.error(&RemoteError::new("bad request")).await.unwrap();
    assert!(matches!(logger.write_data(b"x").await, Err(ProtocolError::LoggerIdle(_))));
    // `forward` takes log output only.
    assert!(matches!(logger.forward(&LogMessage::Last).await, Err(ProtocolError::UnexpectedMessage(STDERR_LAST))));
}

#[tokio::test]
async fn large_data_is_written_in_pieces() {
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let mut logger = ServerLogger::new(Vec::new(), v(38));
    logger.start_work().await.unwrap();
    logger.write_data(&data).await.unwrap();
    logger.write_data(b"").await.unwrap();
    logger.last().await.unwrap();
    let sent = logger.into_inner();
    let mut r = &sent[..];
    let mut back = Vec::new();
    let mut pieces = 0;
    loop {
        match read_message(&mut r, &ctx(38)).await.unwrap() {
            LogMessage::Write(piece) => {
                assert!(piece.len() <= MAX_WRITE_CHUNK);
                back.extend_from_slice(&piece);
                pieces += 1;
            }
            LogMessage::Last => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(back, data);
    assert_eq!(pieces, 4);
}

/// A sink that accepts log output only.
struct LinesOnly(Vec<LogMessage>);

impl LogSink for LinesOnly {
    async fn log(&mut self, message: LogMessage) -> Result<(), ProtocolError> {
        self.0.push(message);
        Ok(())
    }
}

#[tokio::test]
async fn client_refusals() {
    let c = ctx(38);
    // Data without a sink for it, and a data request without a source, as Nix's clients refuse.
    let write = Wire::default().n(STDERR_WRITE).s(b"d").n(STDERR_LAST);
    let r = process_stderr(&mut write.bytes(), &mut Vec::new(), &c, &mut LinesOnly(vec![]), None).await;
    assert!(matches!(r, Err(ProtocolError::UnexpectedMessage(STDERR_WRITE))), "{r:?}");
    let read = Wire::default().n(STDERR_READ).n(10).n(STDERR_LAST);
    let r = process_stderr(&mut read.bytes(), &mut Vec::new(), &c, &mut LinesOnly(vec![]), None).await;
    assert!(matches!(r, Err(ProtocolError::UnexpectedMessage(STDERR_READ))), "{r:?}");
    // A collector refuses more than its bound.
    let big = Wire::default().n(STDERR_NEXT).s(&[b'a'; 200]).n(STDERR_LAST);
    let r = process_stderr(&mut big.bytes(), &mut Vec::new(), &c, &mut LogCollector::new(100), None).await;
    assert!(matches!(r, Err(ProtocolError::MessageTooLarge { max: 100 })), "{r:?}");
    // The connection ending before STDERR_LAST.
    let cut = Wire::default().n(STDERR_NEXT).s(b"x");
    let r = process_stderr(&mut cut.bytes(), &mut Vec::new(), &c, &mut LinesOnly(vec![]), None).await;
    assert!(matches!(r, Err(ProtocolError::UnexpectedEof)), "{r:?}");
}

#[tokio::test]
async fn client_answers_data_requests_within_bounds() {
    // Requests for 3 bytes, for far more than the client will allocate, and past the end.
    let requests = Wire::default().n(STDERR_READ).n(3).n(STDERR_READ).n(1 << 40).n(STDERR_READ).n(5).n(STDERR_LAST);
    let data: Vec<u8> = (0..(MAX_READ_ANSWER + 10)).map(|i| (i % 7) as u8).collect();
    let mut source = &data[..];
    let mut answers = Vec::new();
    let mut sink = LinesOnly(vec![]);
    process_stderr(&mut requests.bytes(), &mut answers, &ctx(38), &mut sink, Some(&mut source)).await.unwrap();
    let mut r = &answers[..];
    let first = crate::wire::io::read_bytes(&mut r, usize::MAX).await.unwrap();
    assert_eq!(first, &data[..3]);
    let second = crate::wire::io::read_bytes(&mut r, usize::MAX).await.unwrap();
    assert_eq!(second.len(), MAX_READ_ANSWER);
    assert_eq!(second, &data[3..3 + MAX_READ_ANSWER]);
    let third = crate::wire::io::read_bytes(&mut r, usize::MAX).await.unwrap();
    assert_eq!(third, &data[3 + MAX_READ_ANSWER..][..5]);
    assert!(r.is_empty());
    // At the end of the source the answer is empty.
    let requests = Wire::default().n(STDERR_READ).n(8).n(STDERR_LAST);
    let mut answers = Vec::new();
    let mut empty = &b""[..];
    process_stderr(&mut requests.bytes(), &mut answers, &ctx(38), &mut sink, Some(&mut empty)).await.unwrap();
    assert_eq!(answers, 0u64.to_le_bytes());
}
