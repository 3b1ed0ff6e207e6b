//! The numbers that open each logger message.

/// A log line follows (a string).
pub const STDERR_NEXT: u64 = 0x6f6c_6d67;
/// The daemon wants data from the client: a `u64` count follows, the client answers with a
/// byte string of at most that many bytes (empty at end of input).
pub const STDERR_READ: u64 = 0x6461_7461;
/// Data for the client's sink follows (a string).
pub const STDERR_WRITE: u64 = 0x6461_7416;
/// The operation's log is over; its reply follows.
pub const STDERR_LAST: u64 = 0x616c_7473;
/// The operation failed; an error follows.
pub const STDERR_ERROR: u64 = 0x6378_7470;
/// An activity starts (worker 1.20 and later).
pub const STDERR_START_ACTIVITY: u64 = 0x5354_5254;
/// An activity stops (worker 1.20 and later).
pub const STDERR_STOP_ACTIVITY: u64 = 0x5354_4f50;
/// An activity reports a result (worker 1.20 and later).
pub const STDERR_RESULT: u64 = 0x5253_4c54;
