//! The hub's commands for one connection task, in order.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// The most bytes [`Outbox::with_queued_writes`] joins into one write.
const MAX_BATCH: usize = 64 * 1024;

/// What the hub asks of one connection task.
pub(super) enum Command {
    Write(Vec<u8>),
    StartTls,
    Close,
}

/// The hub's commands for one connection task, in order.
///
/// Lighter than a tokio channel (which allocates a 32-slot block per channel, about 1.3 KiB
/// with its header): an idle connection holds an empty queue with no allocation, and the
/// queue's buffer is released whenever it drains.
#[derive(Default)]
pub(super) struct Outbox {
    queue: Mutex<VecDeque<Command>>,
    ready: Notify,
}

impl Outbox {
    pub(super) fn push(&self, command: Command) {
        lock_queue(&self.queue).push_back(command);
        // Stores a permit when the task is not waiting: no wakeup is lost.
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Command> {
        let mut queue = lock_queue(&self.queue);
        let command = queue.pop_front();
        if queue.is_empty() && queue.capacity() > 0 {
            *queue = VecDeque::new();
        }
        command
    }

    /// `first`, followed by every write queued right behind it, as one buffer (up to
    /// [`MAX_BATCH`] bytes): one TLS record and one `write` for everything that is ready,
    /// rather than one of each per stanza.
    pub(super) fn with_queued_writes(&self, mut first: Vec<u8>) -> Vec<u8> {
        let mut queue = lock_queue(&self.queue);
        while first.len() < MAX_BATCH {
            match queue.pop_front() {
                Some(Command::Write(bytes)) => first.extend_from_slice(&bytes),
                Some(other) => {
                    queue.push_front(other);
                    break;
                }
                None => break,
            }
        }
        if queue.is_empty() && queue.capacity() > 0 {
            *queue = VecDeque::new();
        }
        first
    }

    /// The next command. Cancel-safe: a command is only taken when it is returned.
    pub(super) async fn recv(&self) -> Command {
        loop {
            if let Some(command) = self.pop() {
                return command;
            }
            self.ready.notified().await;
        }
    }
}

fn lock_queue(queue: &Mutex<VecDeque<Command>>) -> MutexGuard<'_, VecDeque<Command>> {
    // Pushing and popping cannot panic half-way: a poisoned queue is still consistent.
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(outbox: &Outbox) -> Vec<&'static str> {
        let queue = lock_queue(&outbox.queue);
        queue
            .iter()
            .map(|command| match command {
                Command::Write(_) => "write",
                Command::StartTls => "starttls",
                Command::Close => "close",
            })
            .collect()
    }

    #[test]
    fn queued_writes_join_the_first_up_to_the_next_other_command() {
        let outbox = Outbox::default();
        outbox.push(Command::Write(b"<b/>".to_vec()));
        outbox.push(Command::Write(b"<c/>".to_vec()));
        outbox.push(Command::Close);
        outbox.push(Command::Write(b"<d/>".to_vec()));
        let joined = outbox.with_queued_writes(b"<a/>".to_vec());
        assert_eq!(joined, b"<a/><b/><c/>");
        // The close stays in order, before the write queued after it.
        assert_eq!(writes(&outbox), ["close", "write"]);
    }

    #[test]
    fn queued_writes_stop_at_the_batch_bound() {
        let outbox = Outbox::default();
        outbox.push(Command::Write(vec![b'x'; MAX_BATCH]));
        outbox.push(Command::Write(b"<next/>".to_vec()));
        let joined = outbox.with_queued_writes(b"<a/>".to_vec());
        assert_eq!(joined.len(), 4 + MAX_BATCH);
        assert_eq!(writes(&outbox), ["write"]);
        let empty = Outbox::default();
        assert_eq!(empty.with_queued_writes(b"<a/>".to_vec()), b"<a/>");
        assert!(writes(&empty).is_empty());
    }
}
