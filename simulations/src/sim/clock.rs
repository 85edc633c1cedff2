//! Virtual time: a millisecond counter and the queue of scheduled events.
//! Nothing in the simulator reads a real clock.

use std::collections::BTreeMap;

/// Events in time order; events at the same millisecond run in the order
/// they were scheduled.
#[derive(Debug)]
pub struct Queue<E> {
    events: BTreeMap<(u64, u64), E>,
    sequence: u64,
    now_ms: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue {
            events: BTreeMap::new(),
            sequence: 0,
            now_ms: 0,
        }
    }
}

impl<E> Queue<E> {
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn schedule(&mut self, at_ms: u64, event: E) {
        assert!(at_ms >= self.now_ms, "scheduling into the past");
        self.sequence += 1;
        self.events.insert((at_ms, self.sequence), event);
    }

    /// The next event, advancing the clock to it.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let ((at_ms, _), event) = self.events.pop_first()?;
        assert!(at_ms >= self.now_ms);
        self.now_ms = at_ms;
        Some((at_ms, event))
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_order_then_schedule_order() {
        let mut queue = Queue::default();
        queue.schedule(5, "b");
        queue.schedule(1, "a");
        queue.schedule(5, "c");
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, vec![(1, "a"), (5, "b"), (5, "c")]);
        assert_eq!(queue.now_ms(), 5);
    }
}
