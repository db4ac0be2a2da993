//! How an account task's waits see its requests: the queue with Deliver
//! handed to the courier ([`Requests`]), and the same as IDLE's wake-ups
//! ([`Wakes`]).

use super::request::{Queue, Reply, Request};
use super::sending::Courier;
use super::worker::Worker;
use crate::fetch::FetchReport;
use crate::imap::{self, Wake};

/// The task's queue as its waits see it: a Deliver only wakes the
/// courier (scheduler::sending), so SendMessage never ends an IDLE.
pub(super) struct Requests<'a> {
    pub queue: &'a mut Queue,
    pub courier: &'a Courier,
}

impl Requests<'_> {
    /// The next request for the task itself; cancel-safe like
    /// `Queue::next`.
    pub async fn next(&mut self) -> Option<Request> {
        loop {
            match self.queue.next().await {
                Some(Request::Deliver) => self.courier.deliver(),
                other => return other,
            }
        }
    }

    pub fn fetches(&mut self) -> Vec<Reply<FetchReport>> {
        self.queue.fetches()
    }
}

/// The task's requests as IDLE's wake-ups: a FetchNow that a check on the
/// idling connection answers (nothing new) is reported like any fetch that
/// found nothing, together with every FetchNow queued behind it.
pub(super) struct Wakes<'a, 'q> {
    pub queue: &'a mut Requests<'q>,
    pub me: &'a Worker,
}

impl imap::Wakes for Wakes<'_, '_> {
    type Fetch = Reply<FetchReport>;
    type Other = Option<Request>;

    async fn next(&mut self) -> Wake<Self::Fetch, Self::Other> {
        match self.queue.next().await {
            Some(Request::FetchNow(reply)) => Wake::Fetch(reply),
            other => Wake::Other(other),
        }
    }

    fn answer(&mut self, fetch: Self::Fetch, report: &FetchReport) {
        let mut waiters = vec![fetch];
        waiters.extend(self.queue.fetches());
        self.me.finished(&Ok(report.clone()), waiters, None);
    }
}
