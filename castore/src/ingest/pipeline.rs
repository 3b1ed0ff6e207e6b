//! The blob pipeline: the ingesting thread reads contents in NAR order (and hashes the NAR);
//! worker threads hash the contents with BLAKE3 and write them to the blob service.
//!
//! Files up to [`WHOLE_LIMIT`] bytes travel as one buffer each, gathered into batches of up to
//! [`BATCH_BYTES`] or [`BATCH_FILES`] files (so many small files cost few thread hand-offs);
//! larger files as a stream of [`CHUNK_SIZE`] buffers that one worker consumes in order. Buffers
//! are recycled and the channels are bounded: at most about `JOB_QUEUE × BATCH_BYTES` plus a few
//! MiB per worker are in flight.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::tree::FileResult;
use super::IngestError;
use crate::blob::{BlobError, BlobService, BlobWriter};

/// Files up to this size are read whole and sent as one job.
pub(crate) const WHOLE_LIMIT: u64 = 1 << 20;

/// Size of each buffer of a streamed file: small enough to stay in a core's cache between
/// being read, hashed and written (1 MiB buffers made writes markedly slower).
pub(crate) const CHUNK_SIZE: usize = 128 * 1024;

/// Jobs waiting for a worker.
const JOB_QUEUE: usize = 8;

/// A batch of whole files is sent once it holds this many bytes…
const BATCH_BYTES: usize = 2 << 20;

/// …or this many files.
const BATCH_FILES: usize = 128;

/// Buffers of a streamed file waiting for its worker.
const STREAM_QUEUE: usize = 8;

/// Most worker threads.
const MAX_WORKERS: usize = 16;

/// A piece of a streamed file.
enum StreamMessage {
    Data(Vec<u8>),
    /// The file is complete (a stream closed without it was abandoned).
    End,
}

/// A whole file: its slot, executable bit and bytes.
struct WholeFile {
    slot: usize,
    executable: bool,
    data: Vec<u8>,
}

/// Work for a worker.
enum Job {
    /// Whole files.
    Batch(Vec<WholeFile>),
    /// One streamed file.
    Stream { slot: usize, executable: bool, chunks: Receiver<StreamMessage> },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The ingesting thread's side of the pipeline.
pub(crate) struct Pipeline<'a> {
    jobs: SyncSender<Job>,
    spare: Mutex<Receiver<Vec<u8>>>,
    failed: &'a AtomicBool,
    /// Whole files not sent yet, and their bytes.
    batch: RefCell<(Vec<WholeFile>, usize)>,
    /// Starts the workers; taken by the first job. A small archive whose files all fit in one
    /// batch never starts them: its batch is stored on the ingesting thread.
    start: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
}

/// Buffers the workers are done with, for reading into (see [`Pipeline::buffers`]).
#[derive(Clone, Copy)]
pub(crate) struct Buffers<'p>(pub(crate) &'p Mutex<Receiver<Vec<u8>>>);

impl Buffers<'_> {
    /// An empty buffer with room for [`CHUNK_SIZE`] bytes, recycled when possible.
    pub fn get(&self) -> Vec<u8> {
        match lock(self.0).try_recv() {
            Ok(mut buffer) => {
                buffer.clear();
                buffer
            }
            Err(_) => Vec::with_capacity(CHUNK_SIZE),
        }
    }
}

/// The sending side of one streamed file.
pub(crate) struct Stream {
    chunks: SyncSender<StreamMessage>,
}

impl Stream {
    /// A stream to nowhere, for tests: the returned box holds its receiving end.
    #[cfg(test)]
    pub fn for_test() -> (Self, Box<dyn std::any::Any>) {
        let (chunks, receiver) = mpsc::sync_channel(STREAM_QUEUE);
        (Self { chunks }, Box::new(receiver))
    }

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
        self.buffers().get()
    }

    /// The source of recycled buffers, for another thread.
    pub fn buffers(&self) -> Buffers<'_> {
        Buffers(&self.spare)
    }

    fn check(&self) -> Result<(), IngestError> {
        if self.failed.load(Ordering::Relaxed) {
            Err(IngestError::Internal("blob worker failed"))
        } else {
            Ok(())
        }
    }

    fn send(&self, job: Job) -> Result<(), IngestError> {
        let start = self.start.borrow_mut().take();
        if let Some(start) = start {
            start();
        }
        self.jobs.send(job).map_err(|_| IngestError::Internal("blob workers stopped"))
    }

    /// Sends the batch of whole files gathered so far.
    fn send_batch(&self) -> Result<(), IngestError> {
        let files = std::mem::take(&mut self.batch.borrow_mut().0);
        self.batch.borrow_mut().1 = 0;
        if files.is_empty() {
            return Ok(());
        }
        self.check()?;
        self.send(Job::Batch(files))
    }

    /// Hands a whole file to the workers (in the next batch).
    pub fn whole(&self, slot: usize, executable: bool, data: Vec<u8>) -> Result<(), IngestError> {
        let full = {
            let mut batch = self.batch.borrow_mut();
            batch.1 += data.len();
            batch.0.push(WholeFile { slot, executable, data });
            batch.0.len() >= BATCH_FILES || batch.1 >= BATCH_BYTES
        };
        if full {
            self.send_batch()?;
        }
        Ok(())
    }

    /// Starts a streamed file; its pieces follow through the returned [`Stream`].
    pub fn stream(&self, slot: usize, executable: bool) -> Result<Stream, IngestError> {
        self.send_batch()?;
        let (chunks_tx, chunks_rx) = mpsc::sync_channel(STREAM_QUEUE);
        self.send(Job::Stream { slot, executable, chunks: chunks_rx })?;
        Ok(Stream { chunks: chunks_tx })
    }
}

/// Four workers per core: storing a blob (creating, writing, renaming a file) mostly waits for
/// the disk, the more so as synced blobs are written with direct I/O (which returns when the
/// device has the bytes), so several writes per core keep the device busy.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).saturating_mul(4).clamp(4, MAX_WORKERS)
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
        let (jobs, results_ref, failure_ref, failed_ref, spare) = (&jobs_rx, &results, &failure, &failed, &spare_tx);
        let start = move || {
            for _ in 0..worker_count() {
                let spare = spare.clone();
                scope.spawn(move || worker(jobs, blobs, results_ref, failure_ref, failed_ref, spare));
            }
        };
        let pipeline = Pipeline {
            jobs: jobs_tx,
            spare: Mutex::new(spare_rx),
            failed: &failed,
            batch: RefCell::new((Vec::new(), 0)),
            start: RefCell::new(Some(Box::new(start))),
        };
        let outcome = body(&pipeline);
        match outcome {
            Ok(value) if pipeline.start.borrow().is_some() => {
                // No worker was needed: the last (only) batch is stored here.
                let files = std::mem::take(&mut pipeline.batch.borrow_mut().0);
                process(Job::Batch(files), blobs, spare).map(|done| {
                    lock(&results).extend(done);
                    value
                })
            }
            Ok(value) => pipeline.send_batch().map(|()| value),
            Err(e) => Err(e),
        }
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
            Ok(done) => lock(results).extend(done),
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

/// Stores a job's files; returns their results (none for a stream the reader abandoned: it
/// reports why).
fn process(job: Job, blobs: &dyn BlobService, spare: &Sender<Vec<u8>>) -> Result<Vec<(usize, FileResult)>, IngestError> {
    match job {
        Job::Batch(files) => {
            let mut done = Vec::with_capacity(files.len());
            for WholeFile { slot, executable, data } in files {
                let (digest, size) = blobs.write_bytes(&data, executable)?;
                let _ = spare.send(data);
                done.push((slot, FileResult { digest, size, executable }));
            }
            Ok(done)
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
                    Err(_) => return Ok(Vec::new()),
                }
            }
            let (digest, size) = writer.finish()?;
            Ok(vec![(slot, FileResult { digest, size, executable })])
        }
    }
}
