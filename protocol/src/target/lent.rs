//! Bytes the writer still reads after a write returned: a zero-copy send (Linux
//! `MSG_ZEROCOPY`) hands the kernel the pages themselves, and the kernel reads them until it
//! reports that send complete. Every such send gets the next number, counted from 0 as the
//! kernel counts them; the segments it took stay here, so their buffers are neither freed nor
//! recycled, until the caller reports the range of sends that completed.

use std::collections::VecDeque;

use bytes::Bytes;

/// One segment lent to a send that has not completed yet.
#[derive(Debug)]
struct Loan {
    send: u32,
    bytes: Bytes,
    returned: bool,
}

/// The segments lent to zero-copy sends, in send order.
#[derive(Debug, Default)]
pub(crate) struct Lent {
    loans: VecDeque<Loan>,
    next_send: u32,
    bytes: usize,
}

impl Lent {
    /// Keeps `bytes`, which the zero-copy send being made took, until that send completes.
    pub(crate) fn lend(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.bytes += bytes.len();
            self.loans.push_back(Loan {
                send: self.next_send,
                bytes,
                returned: false,
            });
        }
    }

    /// Ends the zero-copy send being made (one that took bytes: the kernel numbers only
    /// those); the next one gets the next number.
    pub(crate) fn sent(&mut self) {
        self.next_send = self.next_send.wrapping_add(1);
    }

    /// Sends `first..=last` (wrapping) completed: what they took is released as soon as every
    /// earlier send completed too (completions normally come in order, but need not).
    pub(crate) fn complete(&mut self, first: u32, last: u32) {
        let span = last.wrapping_sub(first);
        for loan in &mut self.loans {
            if loan.send.wrapping_sub(first) <= span {
                loan.returned = true;
            }
        }
        while self.loans.front().is_some_and(|l| l.returned) {
            if let Some(loan) = self.loans.pop_front() {
                self.bytes -= loan.bytes.len();
            }
        }
    }

    /// Bytes still lent.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Sends not completed yet.
    pub(crate) fn outstanding(&self) -> usize {
        match (self.loans.front(), self.loans.back()) {
            (Some(f), Some(b)) => b.send.wrapping_sub(f.send) as usize + 1,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lend(lent: &mut Lent, segments: &[&'static [u8]]) -> u32 {
        let send = lent.next_send;
        for s in segments {
            lent.lend(Bytes::from_static(s));
        }
        lent.sent();
        send
    }

    #[test]
    fn sends_are_numbered_from_zero_and_released_in_order() {
        let mut lent = Lent::default();
        assert_eq!(lend(&mut lent, &[b"head", b"payload"]), 0);
        assert_eq!(lend(&mut lent, &[b"more"]), 1);
        assert_eq!(lend(&mut lent, &[b"last"]), 2);
        assert_eq!((lent.bytes(), lent.outstanding()), (19, 3));
        lent.complete(0, 1);
        assert_eq!((lent.bytes(), lent.outstanding()), (4, 1));
        lent.complete(2, 2);
        assert_eq!((lent.bytes(), lent.outstanding()), (0, 0));
    }

    #[test]
    fn a_completion_out_of_order_waits_for_the_earlier_sends() {
        let mut lent = Lent::default();
        for _ in 0..3 {
            lend(&mut lent, &[b"abcd"]);
        }
        lent.complete(1, 2);
        assert_eq!(lent.bytes(), 12, "send 0 still holds the front");
        lent.complete(0, 0);
        assert_eq!(lent.bytes(), 0);
    }

    #[test]
    fn numbers_wrap_as_the_kernel_s_do() {
        let mut lent = Lent {
            next_send: u32::MAX - 1,
            ..Lent::default()
        };
        for _ in 0..4 {
            lend(&mut lent, &[b"x"]);
        }
        lent.complete(u32::MAX - 1, 0);
        assert_eq!((lent.bytes(), lent.outstanding()), (1, 1));
        lent.complete(1, 1);
        assert_eq!(lent.bytes(), 0);
    }

    #[test]
    fn a_completion_for_nothing_lent_changes_nothing() {
        let mut lent = Lent::default();
        lend(&mut lent, &[b"abc"]);
        lent.complete(7, 9);
        assert_eq!(lent.bytes(), 3);
    }
}
