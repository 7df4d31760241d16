//! The hub's commands for one connection task, in order.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

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
