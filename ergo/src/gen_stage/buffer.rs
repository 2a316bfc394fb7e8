//! A producer's buffer: events emitted while no consumer asked for them,
//! kept up to `buffer_size`, and the info messages queued behind them
//! (`GenStage.sync_info/2`), each due once the events ahead of it are gone.

use std::collections::VecDeque;

use crate::message::Message;

/// Which events a full buffer keeps (`buffer_keep`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum BufferKeep {
    /// The oldest: new events are dropped.
    First,
    /// The newest: the oldest events are dropped (the default).
    #[default]
    Last,
}

pub(crate) struct Buffer<E> {
    events: VecDeque<E>,
    /// `None` for no limit.
    capacity: Option<usize>,
    /// Events ever removed from the front (taken or dropped).
    removed: u64,
    /// Infos and the count of removed events at which each is due.
    infos: VecDeque<(u64, Message)>,
}

impl<E> Buffer<E> {
    pub(crate) fn new(capacity: Option<usize>) -> Self {
        Buffer {
            events: VecDeque::new(),
            capacity,
            removed: 0,
            infos: VecDeque::new(),
        }
    }

    /// How many events it holds.
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// Stores `events`, keeping `keep` when full. Gives the number
    /// discarded, and the infos that came due as old events were dropped.
    pub(crate) fn store(&mut self, events: Vec<E>, keep: BufferKeep) -> (usize, Vec<Message>) {
        let Some(cap) = self.capacity else {
            self.events.extend(events);
            return (0, Vec::new());
        };
        let mut due = Vec::new();
        match keep {
            BufferKeep::First => {
                let room = cap.saturating_sub(self.events.len());
                let n = events.len();
                self.events.extend(events.into_iter().take(room));
                (n.saturating_sub(room), due)
            }
            BufferKeep::Last => {
                let n = events.len();
                if cap == 0 {
                    return (n, due);
                }
                // Only the newest `cap` can stay.
                let skip = n.saturating_sub(cap);
                let mut excess = skip;
                let over = (self.events.len() + n - skip).saturating_sub(cap);
                for _ in 0..over {
                    self.events.pop_front();
                    self.removed += 1;
                    excess += 1;
                    self.pop_due(&mut due);
                }
                self.events.extend(events.into_iter().skip(skip));
                (excess, due)
            }
        }
    }

    /// Queues `msg` behind the buffered events; gives it back if the buffer
    /// is empty (it is due now).
    pub(crate) fn store_info(&mut self, msg: Message) -> Option<Message> {
        if self.events.is_empty() {
            return Some(msg);
        }
        let at = self.removed + self.events.len() as u64;
        self.infos.push_back((at, msg));
        None
    }

    /// Takes up to `n` events, stopping where an info comes due: the events
    /// and the infos due after them. Both empty when nothing is taken.
    pub(crate) fn take(&mut self, n: usize) -> (Vec<E>, Vec<Message>) {
        let mut n = n.min(self.events.len());
        if let Some((at, _)) = self.infos.front() {
            n = n.min((*at - self.removed) as usize);
        }
        let events: Vec<E> = self.events.drain(..n).collect();
        self.removed += n as u64;
        let mut due = Vec::new();
        self.pop_due(&mut due);
        (events, due)
    }

    fn pop_due(&mut self, due: &mut Vec<Message>) {
        while let Some((at, _)) = self.infos.front() {
            if *at > self.removed {
                break;
            }
            if let Some((_, m)) = self.infos.pop_front() {
                due.push(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ergo_etf::Term;

    fn info(n: i64) -> Message {
        Message::Term(Term::Int(n))
    }

    fn ints(ms: &[Message]) -> Vec<i64> {
        ms.iter()
            .map(|m| m.to_term().and_then(|t| t.as_i64()).unwrap())
            .collect()
    }

    #[test]
    fn keep_last_drops_the_oldest_and_counts_them() {
        let mut b = Buffer::new(Some(3));
        assert_eq!(b.store(vec![1, 2], BufferKeep::Last).0, 0);
        assert_eq!(b.store(vec![3, 4, 5], BufferKeep::Last).0, 2);
        assert_eq!(b.take(10).0, vec![3, 4, 5]);
        // More than the capacity at once: only the newest stay.
        assert_eq!(b.store(vec![1, 2, 3, 4, 5], BufferKeep::Last).0, 2);
        assert_eq!(b.take(10).0, vec![3, 4, 5]);
    }

    #[test]
    fn keep_first_drops_the_newest() {
        let mut b = Buffer::new(Some(3));
        assert_eq!(b.store(vec![1, 2], BufferKeep::First).0, 0);
        assert_eq!(b.store(vec![3, 4, 5], BufferKeep::First).0, 2);
        assert_eq!(b.take(10).0, vec![1, 2, 3]);
    }

    #[test]
    fn an_info_comes_due_after_the_events_before_it() {
        let mut b = Buffer::new(None);
        assert!(b.store_info(info(0)).is_some(), "empty buffer: due now");
        b.store(vec![1, 2, 3], BufferKeep::Last);
        assert!(b.store_info(info(7)).is_none());
        b.store(vec![4], BufferKeep::Last);
        let (ev, due) = b.take(2);
        assert_eq!((ev, ints(&due)), (vec![1, 2], vec![]));
        let (ev, due) = b.take(5);
        assert_eq!((ev, ints(&due)), (vec![3], vec![7]));
        assert_eq!(b.take(5).0, vec![4]);
    }

    #[test]
    fn dropping_old_events_releases_the_infos_behind_them() {
        let mut b = Buffer::new(Some(2));
        b.store(vec![1, 2], BufferKeep::Last);
        assert!(b.store_info(info(9)).is_none());
        let (excess, due) = b.store(vec![3, 4], BufferKeep::Last);
        assert_eq!((excess, ints(&due)), (2, vec![9]));
        assert_eq!(b.take(5).0, vec![3, 4]);
    }
}
