//! The blob pipeline: the ingesting thread reads contents in NAR order (and hashes the NAR);
//! worker threads hash the contents with BLAKE3 and write them to the blob service.
//!
//! Files up to [`WHOLE_LIMIT`] bytes travel as one buffer; larger ones as a stream of
//! [`CHUNK_SIZE`] buffers that one worker consumes in order. Buffers are recycled, and the
//! channels are bounded, so at most about `(JOB_QUEUE + STREAM_QUEUE + 2 × workers)` MiB are
//! in flight.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::tree::FileResult;
use super::IngestError;
use crate::blob::{BlobError, BlobService, BlobWriter};

/// Files up to this size are read whole and sent as one job.
pub(crate) const WHOLE_LIMIT: u64 = 1 << 20;

/// Size of each buffer of a streamed file.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;

/// Jobs waiting for a worker.
const JOB_QUEUE: usize = 16;

/// Buffers of a streamed file waiting for its worker.
const STREAM_QUEUE: usize = 4;

/// Most worker threads.
const MAX_WORKERS: usize = 8;

/// A piece of a streamed file.
enum StreamMessage {
    Data(Vec<u8>),
    /// The file is complete (a stream closed without it was abandoned).
    End,
}

/// Work for a worker: one file.
enum Job {
    Whole { slot: usize, executable: bool, data: Vec<u8> },
    Stream { slot: usize, executable: bool, chunks: Receiver<StreamMessage> },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The ingesting thread's side of the pipeline.
pub(crate) struct Pipeline<'a> {
    jobs: SyncSender<Job>,
    spare: Receiver<Vec<u8>>,
    failed: &'a AtomicBool,
}

/// The sending side of one streamed file.
pub(crate) struct Stream {
    chunks: SyncSender<StreamMessage>,
}

impl Stream {
    /// Sends the next piece of the file.
    pub fn send(&self, data: Vec<u8>) -> Result<(), IngestError> {
        self.chunks.send(StreamMessage::Data(data)).map_err(|_| IngestError::Internal("blob worker stopped"))
    }

    /// Marks the file complete.
    pub fn end(self) -> Result<(), IngestError> {
        self.chunks.send(StreamMessage::End).map_err(|_| IngestError::Internal("blob worker stopped"))
    }
}

impl Pipeline<'_> {
    /// An empty buffer with room for [`CHUNK_SIZE`] bytes, recycled when possible.
    pub fn buffer(&self) -> Vec<u8> {
        match self.spare.try_recv() {
            Ok(mut buffer) => {
                buffer.clear();
                buffer
            }
            Err(_) => Vec::with_capacity(CHUNK_SIZE),
        }
    }

    fn check(&self) -> Result<(), IngestError> {
        if self.failed.load(Ordering::Relaxed) {
            Err(IngestError::Internal("blob worker failed"))
        } else {
            Ok(())
        }
    }

    /// Hands a whole file to the workers.
    pub fn whole(&self, slot: usize, executable: bool, data: Vec<u8>) -> Result<(), IngestError> {
        self.check()?;
        self.jobs.send(Job::Whole { slot, executable, data }).map_err(|_| IngestError::Internal("blob workers stopped"))
    }

    /// Starts a streamed file; its pieces follow through the returned [`Stream`].
    pub fn stream(&self, slot: usize, executable: bool) -> Result<Stream, IngestError> {
        self.check()?;
        let (chunks_tx, chunks_rx) = mpsc::sync_channel(STREAM_QUEUE);
        self.jobs
            .send(Job::Stream { slot, executable, chunks: chunks_rx })
            .map_err(|_| IngestError::Internal("blob workers stopped"))?;
        Ok(Stream { chunks: chunks_tx })
    }
}

fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).saturating_sub(1).clamp(1, MAX_WORKERS)
}

/// Runs `body` with a pipeline whose workers write into `blobs`. `body` returns its value and
/// the number of file slots it handed out; `run` returns the value and the files' results by
/// slot. A worker's failure is returned in preference to the body's (which then only reports
/// that a worker stopped).
pub(crate) fn run<T>(
    blobs: &dyn BlobService,
    body: impl FnOnce(&Pipeline<'_>) -> Result<(T, usize), IngestError>,
) -> Result<(T, Vec<FileResult>), IngestError> {
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(JOB_QUEUE);
    let jobs_rx = Mutex::new(jobs_rx);
    let (spare_tx, spare_rx) = mpsc::channel();
    let results: Mutex<Vec<(usize, FileResult)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<IngestError>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        for _ in 0..worker_count() {
            let spare = spare_tx.clone();
            let (jobs, results, failure, failed) = (&jobs_rx, &results, &failure, &failed);
            scope.spawn(move || worker(jobs, blobs, results, failure, failed, spare));
        }
        drop(spare_tx);
        let pipeline = Pipeline { jobs: jobs_tx, spare: spare_rx, failed: &failed };
        body(&pipeline)
        // `pipeline` is dropped here: the job channel closes and the workers finish.
    });
    if let Some(error) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(error);
    }
    let (value, files) = outcome?;
    let mut by_slot: Vec<Option<FileResult>> = vec![None; files];
    for (slot, result) in results.into_inner().unwrap_or_else(PoisonError::into_inner) {
        if let Some(entry) = by_slot.get_mut(slot) {
            *entry = Some(result);
        }
    }
    let files = by_slot.into_iter().collect::<Option<Vec<_>>>().ok_or(IngestError::Internal("a file has no result"))?;
    Ok((value, files))
}

fn worker(
    jobs: &Mutex<Receiver<Job>>,
    blobs: &dyn BlobService,
    results: &Mutex<Vec<(usize, FileResult)>>,
    failure: &Mutex<Option<IngestError>>,
    failed: &AtomicBool,
    spare: Sender<Vec<u8>>,
) {
    loop {
        let job = lock(jobs).recv();
        let Ok(job) = job else { return };
        if failed.load(Ordering::Relaxed) {
            continue; // Dropping the job closes a stream, which stops the reader.
        }
        match process(job, blobs, &spare) {
            Ok(Some((slot, result))) => lock(results).push((slot, result)),
            Ok(None) => {} // An abandoned stream: the reader failed and reports why.
            Err(e) => {
                failed.store(true, Ordering::Relaxed);
                lock(failure).get_or_insert(e);
            }
        }
    }
}

fn write(writer: &mut Box<dyn BlobWriter>, data: &[u8]) -> Result<(), IngestError> {
    writer.write_all(data).map_err(|e| IngestError::Blob(BlobError::io("<blob writer>", e)))
}

fn process(job: Job, blobs: &dyn BlobService, spare: &Sender<Vec<u8>>) -> Result<Option<(usize, FileResult)>, IngestError> {
    match job {
        Job::Whole { slot, executable, data } => {
            let (digest, size) = blobs.write_bytes(&data, executable)?;
            let _ = spare.send(data);
            Ok(Some((slot, FileResult { digest, size, executable })))
        }
        Job::Stream { slot, executable, chunks } => {
            let mut writer = if executable { blobs.executable_writer()? } else { blobs.writer()? };
            loop {
                match chunks.recv() {
                    Ok(StreamMessage::Data(data)) => {
                        write(&mut writer, &data)?;
                        let _ = spare.send(data);
                    }
                    Ok(StreamMessage::End) => break,
                    Err(_) => return Ok(None),
                }
            }
            let (digest, size) = writer.finish()?;
            Ok(Some((slot, FileResult { digest, size, executable })))
        }
    }
}
