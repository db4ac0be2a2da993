//! Sending (ARCHITECTURE.md "What it does" and "Data paths", `SendMessage`
//! in the D-Bus API): compose, outbox, SMTP.
//!
//! The path of a mail:
//!
//! 1. [`message::Draft::from_keys`] checks the message keys (names,
//!    types, addresses, sizes; the bounds are in [`message::limits`]).
//! 2. [`queue::queue_mail`] resolves the mail it answers
//!    ([`thread::Parent`]), renders the user's signature, composes the mail
//!    ([`compose`]) and commits it to the outbox (`store::outbox`): a
//!    message in folder `outbox` plus its queue record. Every refusal
//!    happens before that commit; after it the mail will be sent.
//! 3. [`deliver::deliver`] is one attempt, run by the account's task:
//!    `queued → sending`, SMTP session ([`smtp`]), the durable mark just
//!    before the body, the body, and the server's 250 recorded as `sent`
//!    before anything else. Office 365 accounts log in with XOAUTH2 and
//!    a token of their sign-in (`office365`). Failures follow [`policy`]: transient ones
//!    queue the mail again with backoff, a 5xx fails it with the server's
//!    reply, an uncertain outcome fails it without sending it again.
//! 4. [`queue::resume`] runs once at start: mails left `sending` by a
//!    stopped daemon are settled, and the queued ones are listed for the
//!    account tasks.
//!
//! Nothing here touches D-Bus or the scheduler: the D-Bus methods turn
//! their `a{sv}` into [`message::MessageValue`]s, and the account task
//! calls [`deliver::deliver`] on its own schedule.

pub mod compose;
pub mod deliver;
pub mod message;
mod office365;
pub mod policy;
pub mod queue;
pub mod smtp;
pub mod thread;

pub use deliver::{deliver, Outcome, Transport};
pub use message::{Draft, MessageValue};
pub use queue::{compose_mail, queue_mail, resume, Sender};
