//! When a connection waits for its host's next command by polling instead of sleeping, and
//! for how long: adaptive busy polling.
//!
//! A host that runs one command at a time (queue depth 1) sends its next command a few
//! microseconds after it reads the last completion. A connection task that parks in the
//! meantime pays for two sleeps and wake-ups on that round trip (its own, and the runtime
//! thread's in `epoll_wait`), which on a virtual machine is most of the latency. The same
//! holds for a command waiting on a file: io_uring completions are reaped on the runtime's
//! own thread (`lamina-uring`), so a runtime that does not sleep sees them at once. So after
//! it has answered everything it can (what still runs waits for its device), the connection
//! first yields to its runtime for up to a budget (`busy_poll_us`, SPDK's interrupt-mode poller and Linux's
//! `SO_BUSY_POLL` are the references): each yield lets every other ready task run and polls
//! the reactor without blocking, so the runtime never sleeps while the budget lasts and other
//! connections lose nothing. Input, or a running command woken, within the budget is a hit; a budget spent in vain is a
//! miss, after which the connection parks at once for the next 1, 2, 4 … up to
//! [`MAX_SKIP`] waits, so a host that sends seldom, or not at all, costs no CPU beyond one
//! budget per burst; a park that ended within the budget (a spin would have caught it) ends
//! the back-off. A budget of zero turns it off.
//!
//! This file holds the policy only (time is passed in); `transport::connection` runs it.

use std::time::Duration;

/// Most waits skipped after consecutive misses.
pub const MAX_SKIP: u32 = 64;

/// The busy-poll policy of one connection.
#[derive(Debug, Clone)]
pub struct BusyPoll {
    budget: Duration,
    /// Waits to skip after the last miss (doubles per consecutive miss).
    skip: u32,
    /// Of those, how many are left.
    skip_left: u32,
}

impl BusyPoll {
    /// A policy with `budget` per wait (zero: never poll).
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            skip: 0,
            skip_left: 0,
        }
    }

    /// The budget to poll for before this wait, or `None` to park at once (turned off, or
    /// backing off after misses).
    pub fn before_wait(&mut self) -> Option<Duration> {
        if self.budget.is_zero() {
            return None;
        }
        if self.skip_left > 0 {
            self.skip_left -= 1;
            return None;
        }
        Some(self.budget)
    }

    /// Input arrived while polling.
    pub fn hit(&mut self) {
        self.skip = 0;
        self.skip_left = 0;
    }

    /// The whole budget passed with no input.
    pub fn miss(&mut self) {
        self.skip = (self.skip * 2).clamp(1, MAX_SKIP);
        self.skip_left = self.skip;
    }

    /// A wait that did not poll ended with input after `parked`: if a poll would have caught
    /// it, the host is back to a tight loop and the back-off ends.
    pub fn parked(&mut self, parked: Duration) {
        if !self.budget.is_zero() && parked <= self.budget {
            self.hit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Duration = Duration::from_micros(50);

    #[test]
    fn zero_budget_never_polls() {
        let mut p = BusyPoll::new(Duration::ZERO);
        assert_eq!(p.before_wait(), None);
        p.parked(Duration::ZERO);
        assert_eq!(p.before_wait(), None);
    }

    #[test]
    fn hits_keep_polling() {
        let mut p = BusyPoll::new(B);
        for _ in 0..10 {
            assert_eq!(p.before_wait(), Some(B));
            p.hit();
        }
    }

    #[test]
    fn misses_back_off_exponentially_up_to_the_cap() {
        let mut p = BusyPoll::new(B);
        let mut skipped = Vec::new();
        for _ in 0..9 {
            assert_eq!(p.before_wait(), Some(B));
            p.miss();
            let mut n = 0;
            while p.before_wait().is_none() {
                n += 1;
            }
            // That last call polled again: the caller misses once more.
            skipped.push(n);
        }
        assert_eq!(skipped, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
    }

    #[test]
    fn a_short_park_ends_the_back_off_and_a_long_one_does_not() {
        let mut p = BusyPoll::new(B);
        assert!(p.before_wait().is_some());
        p.miss();
        p.miss();
        assert_eq!(p.before_wait(), None);
        p.parked(Duration::from_millis(5));
        assert_eq!(p.before_wait(), None, "a long park keeps backing off");
        p.parked(Duration::from_micros(20));
        assert_eq!(p.before_wait(), Some(B), "a short park polls again");
    }
}
