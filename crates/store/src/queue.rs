//! The durable event queue: the store trait behind asynchronous invocation (DESIGN §6). Shaped for a
//! JetStream WorkQueue stream with explicit ack — enqueue (publish, acknowledged once durable), claim
//! (fetch with an ack deadline: a lease), settle (ack / nak with delay / term into the dead-letter
//! stream) — so the cluster backend is a second implementation, not a redesign. The embedded backend is
//! [`crate::embedded_queue::EmbeddedQueue`].

use crate::Result;
use async_trait::async_trait;

/// An event to enqueue for `function` (`<namespace>/<name>`).
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The invocation id it gets (returned with the 202).
    pub id: String,
    /// `<namespace>/<name>` of the function it is for.
    pub function: String,
    /// The CloudEvent `source` and `id`: a second event with both equal (for the same function, while the
    /// first is kept) is a duplicate and is not enqueued again.
    pub source: String,
    /// See `source`.
    pub event_id: String,
    /// The event's attributes, serialised by the caller.
    pub attrs: Vec<u8>,
    /// The event's data.
    pub data: Vec<u8>,
}

/// What enqueueing one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored durably under the id it was given.
    New,
    /// A duplicate of invocation `0` (same function, source and id), which is kept instead.
    Duplicate(String),
}

/// An invocation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting to be delivered (perhaps for a retry's backoff).
    Queued,
    /// Claimed by a worker: being delivered now.
    Running,
    /// Delivered; the handler answered 2xx.
    Succeeded,
    /// Failed for good, with dead-lettering off.
    Failed,
    /// Failed for good and kept in the dead-letter queue (redrivable).
    DeadLettered,
}

impl State {
    /// Its name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::DeadLettered => "dead_lettered",
        }
    }

    /// Parses [`State::as_str`].
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "queued" => State::Queued,
            "running" => State::Running,
            "succeeded" => State::Succeeded,
            "failed" => State::Failed,
            "dead_lettered" => State::DeadLettered,
            _ => return None,
        })
    }
}

/// A claimed event: delivered by the claimant until settled or until its lease runs out.
#[derive(Debug, Clone)]
pub struct Leased {
    /// Its invocation id.
    pub id: String,
    /// `<namespace>/<name>`.
    pub function: String,
    /// The attributes as enqueued.
    pub attrs: Vec<u8>,
    /// The data as enqueued.
    pub data: Vec<u8>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When it was accepted (or redriven), unix ms: the start of its age.
    pub created_ms: u64,
}

/// How a delivery ended.
#[derive(Debug, Clone)]
pub enum Settle {
    /// The handler answered 2xx (`status`), with the start of its body.
    Succeeded {
        /// Its status.
        status: u16,
        /// The start of its body.
        body: Vec<u8>,
    },
    /// Deliver again at `at_ms`. `spent`: the attempt counts (a handler failure); not for wisp's own
    /// throttling.
    Retry {
        /// When.
        at_ms: u64,
        /// Whether the attempt counts.
        spent: bool,
        /// The handler's status, if it answered.
        status: Option<u16>,
        /// Why it failed.
        error: String,
    },
    /// Failed for good: dead-lettered (`dead_letter`) or kept as failed.
    Failed {
        /// Keep it in the dead-letter queue.
        dead_letter: bool,
        /// Whether the attempt counts (false when no attempt was made, e.g. the event was too old).
        spent: bool,
        /// The condition, e.g. `RetriesExhausted`, `EventAgeExceeded`, `HandlerRejected`,
        /// `FunctionNotFound` (`wisperrorcode`).
        code: String,
        /// What the last attempt said (`wisperrordata`), capped by the caller.
        error: String,
        /// The handler's status, if it answered.
        status: Option<u16>,
        /// The start of its response body.
        body: Vec<u8>,
    },
}

/// What is known of one invocation.
#[derive(Debug, Clone)]
pub struct Info {
    /// Its id.
    pub id: String,
    /// `<namespace>/<name>`.
    pub function: String,
    /// Its state.
    pub state: State,
    /// Attempts made.
    pub attempts: u32,
    /// Deliveries put off by wisp's own admission (not counted as attempts).
    pub throttled: u32,
    /// Accepted (or redriven), unix ms.
    pub created_ms: u64,
    /// Last change, unix ms.
    pub updated_ms: u64,
    /// Next attempt not before, unix ms (queued only).
    pub not_before_ms: u64,
    /// The last handler status.
    pub status: Option<u16>,
    /// The failure condition (`wisperrorcode`), when failed.
    pub error_code: Option<String>,
    /// The last failure's message (`wisperrordata`).
    pub error: Option<String>,
    /// The start of the last response body.
    pub result: Vec<u8>,
    /// The attributes as enqueued.
    pub attrs: Vec<u8>,
    /// The data as enqueued.
    pub data: Vec<u8>,
}

/// The durable queue of asynchronous invocations.
#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// Stores `events` durably (returns only once they are on disk), in order; one result per event.
    async fn enqueue(&self, events: Vec<NewEvent>) -> Result<Vec<Enqueued>>;
    /// Claims, for each `(function, n)` of `wants`, up to `n` of its events due at `now_ms` (queued, or
    /// running with an expired lease), oldest due first; each is leased until `now_ms + lease_ms`. The cost
    /// is in the events claimed, not in the events waiting.
    async fn claim(&self, now_ms: u64, lease_ms: u64, wants: Vec<(String, usize)>) -> Result<Vec<Leased>>;
    /// Settles a claimed event.
    async fn settle(&self, id: &str, settle: Settle, now_ms: u64) -> Result<()>;
    /// When the next queued event is due, if any is queued.
    async fn next_due_ms(&self) -> Result<Option<u64>>;
    /// One invocation.
    async fn get(&self, id: &str) -> Result<Option<Info>>;
    /// Invocations of `function` in `state`, oldest first, at most `limit`.
    async fn list(&self, function: &str, state: State, limit: usize) -> Result<Vec<Info>>;
    /// Queues dead-lettered (and failed) invocations of `function` again — `ids`, or all — with their
    /// attempts reset and their age starting now. Returns how many.
    async fn redrive(&self, function: &str, ids: Option<Vec<String>>, now_ms: u64) -> Result<usize>;
    /// Deletes dead-lettered (and failed) invocations of `function` — `ids`, or all. Returns how many.
    async fn purge(&self, function: &str, ids: Option<Vec<String>>) -> Result<usize>;
    /// Events not yet settled (queued or running), per function.
    async fn pending(&self) -> Result<Vec<(String, u64)>>;
    /// Deletes settled invocations older than the retention: succeeded and failed ones last changed before
    /// `done_before_ms`, dead letters before `dead_before_ms`. Returns how many.
    async fn expire(&self, done_before_ms: u64, dead_before_ms: u64) -> Result<usize>;
}
