//! The DATA phase reader: un-dot-stuffs, finds the end of data and judges
//! line endings, over input that may arrive split at any byte.
//!
//! Only `CRLF . CRLF` ends the data (the start of DATA counts as a line
//! start, so `.CRLF` right after 354 is an empty message). Every bare CR or
//! bare LF is remembered and the message refused once the real end arrives:
//! variants such as `LF . LF` or `CRLF . CR CRLF` never end the data, which
//! is what keeps SMTP smuggling out. smtp-proto's DataReceiver is not used
//! because it accepts `CRLF . CR CRLF` as the end. A NUL is refused the
//! same way: an upstream that strips NULs would read `CRLF NUL . CRLF` as
//! the end of data.

use super::limits::Reservation;

/// What the reader expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line.
    LineStart,
    /// A line start `.` was seen and dropped (dot-unstuffing or the end).
    Dot,
    /// `.` then CR at a line start: LF here ends the data.
    DotCr,
    /// Inside a line.
    Text,
    /// After a CR inside a line.
    Cr,
}

#[derive(Debug, PartialEq, Eq)]
pub enum DataOutcome {
    Message(Vec<u8>),
    /// A bare CR or LF appeared: refuse with 550 5.5.2.
    BareLineEnding,
    /// A NUL byte appeared: refuse with 550 5.6.0.
    NulByte,
    /// More bytes than the limit were received: refuse with 552 5.3.4.
    TooLarge,
    /// All sessions together hold too much: refuse with 452 4.3.1.
    OverBudget,
}

pub struct DataReader {
    state: State,
    bare_line_ending: bool,
    nul: bool,
    too_large: bool,
    over_budget: bool,
    received: usize,
    limit: usize,
    body: Vec<u8>,
    /// This message's share of the daemon-wide buffer budget.
    reservation: Reservation,
    /// When DATA began: the whole phase has a deadline.
    started: std::time::Instant,
}

impl DataReader {
    pub fn new(limit: usize, reservation: Reservation) -> Self {
        Self {
            state: State::LineStart,
            bare_line_ending: false,
            nul: false,
            too_large: false,
            over_budget: false,
            received: 0,
            limit,
            body: Vec::new(),
            reservation,
            started: std::time::Instant::now(),
        }
    }

    /// When the DATA phase began.
    pub fn started(&self) -> std::time::Instant {
        self.started
    }

    /// Bytes received so far (on the wire, before un-stuffing).
    pub fn received(&self) -> usize {
        self.received
    }

    /// Consumes input up to and including the end of data. Returns how many
    /// bytes were consumed and, once the end was found, the outcome.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<DataOutcome>) {
        let mut index = 0;
        while index < input.len() {
            if self.state == State::Text {
                // Fast path: copy the run up to the next CR or LF.
                let run = input[index..]
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(input.len() - index);
                let text = &input[index..index + run];
                self.nul |= text.contains(&0);
                self.keep(text);
                index += run;
                if index == input.len() {
                    break;
                }
            }
            let byte = input[index];
            index += 1;
            if self.step(byte) {
                self.received += index;
                return (index, Some(self.finish()));
            }
        }
        // Bytes counted once, whether they were kept or dropped.
        self.received = self.received.saturating_add(input.len());
        (input.len(), None)
    }

    /// Advances by one byte; true when the end of data was just read.
    fn step(&mut self, byte: u8) -> bool {
        match (self.state, byte) {
            (State::LineStart, b'.') => self.state = State::Dot,
            (State::Dot, b'\r') => self.state = State::DotCr,
            (State::DotCr, b'\n') => return true,
            (State::DotCr, _) => {
                // `.` CR followed by something else: that CR was bare.
                self.bare_line_ending = true;
                self.keep(b"\r");
                self.state = State::Text;
                return self.step(byte);
            }
            (State::Cr, b'\n') => {
                self.keep(b"\n");
                self.state = State::LineStart;
            }
            (State::Cr, _) => {
                self.bare_line_ending = true;
                self.state = State::Text;
                return self.step(byte);
            }
            (_, b'\r') => {
                self.keep(b"\r");
                self.state = State::Cr;
            }
            (_, b'\n') => {
                // Bare LF: never a line start, so `LF . LF` cannot end data.
                self.bare_line_ending = true;
                self.keep(b"\n");
                self.state = State::Text;
            }
            (_, _) => {
                self.nul |= byte == 0;
                self.keep(&[byte]);
                self.state = State::Text;
            }
        }
        false
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.too_large || self.over_budget {
            return;
        }
        let wanted = self.body.len() + bytes.len();
        if wanted > self.limit {
            // Over the limit: stop storing, keep scanning for the end.
            self.too_large = true;
            self.body = Vec::new();
        } else {
            // The budget counts allocated capacity, not just length.
            if wanted > self.body.capacity() {
                let capacity = (self.body.capacity() * 2)
                    .max(wanted)
                    .max(4096)
                    .min(self.limit);
                if !self.reservation.cover(capacity) {
                    self.over_budget = true;
                    self.body = Vec::new();
                    return;
                }
                self.body.reserve_exact(capacity - self.body.len());
            }
            self.body.extend_from_slice(bytes);
        }
    }

    /// Hands over the reservation with the message, so the bytes stay
    /// counted until the message is dropped.
    pub fn into_reservation(self) -> Reservation {
        self.reservation
    }

    fn finish(&mut self) -> DataOutcome {
        let body = std::mem::take(&mut self.body);
        if self.bare_line_ending {
            DataOutcome::BareLineEnding
        } else if self.nul {
            DataOutcome::NulByte
        } else if self.too_large {
            DataOutcome::TooLarge
        } else if self.over_budget {
            DataOutcome::OverBudget
        } else {
            DataOutcome::Message(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::limits::MemoryBudget;

    fn reader(limit: usize) -> DataReader {
        DataReader::new(limit, Reservation::new(MemoryBudget::new(usize::MAX / 2)))
    }

    fn read_all(input: &[u8], limit: usize) -> (usize, Option<DataOutcome>) {
        reader(limit).feed(input)
    }

    #[test]
    fn over_the_shared_budget_is_refused_after_the_end() {
        let budget = MemoryBudget::new(64 * 1024);
        let mut input = vec![b'x'; 70_000];
        input.extend_from_slice(b"\r\n.\r\n");
        let mut reader = DataReader::new(1 << 20, Reservation::new(budget.clone()));
        assert_eq!(
            reader.feed(&input),
            (input.len(), Some(DataOutcome::OverBudget))
        );
        drop(reader);
        assert_eq!(budget.used(), 0);
    }

    fn read_split(input: &[u8], limit: usize, split: usize) -> (usize, Option<DataOutcome>) {
        let mut reader = reader(limit);
        let (first, done) = reader.feed(&input[..split]);
        if done.is_some() {
            return (first, done);
        }
        assert_eq!(first, split);
        let (second, done) = reader.feed(&input[split..]);
        (first + second, done)
    }

    #[test]
    fn plain_message_and_unstuffing() {
        let (used, outcome) =
            read_all(b"Subject: x\r\n\r\n..leading dot\r\nend\r\n.\r\nNEXT", 1000);
        assert_eq!(used, 37);
        assert_eq!(
            outcome,
            Some(DataOutcome::Message(
                b"Subject: x\r\n\r\n.leading dot\r\nend\r\n".to_vec()
            ))
        );
    }

    #[test]
    fn empty_body_and_leading_dot_at_start_of_data() {
        assert_eq!(
            read_all(b".\r\n", 1000),
            (3, Some(DataOutcome::Message(Vec::new())))
        );
        assert_eq!(
            read_all(b"..x\r\n.\r\n", 1000),
            (8, Some(DataOutcome::Message(b".x\r\n".to_vec())))
        );
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let input = b"A: b\r\n\r\n..x\r\ny\r\n.\r\nQUIT\r\n";
        let whole = read_all(input, 1000);
        for split in 0..=input.len() {
            assert_eq!(read_split(input, 1000, split), whole, "split at {split}");
        }
    }

    #[test]
    fn smuggling_variants_never_end_data() {
        for variant in [
            &b"\n.\n"[..],
            b"\n.\r\n",
            b"\r.\n",
            b"\r.\r",
            b"\r.\r\n",
            b"\r\n.\n",
            b"\r\n.\r",
            b"\r\n.\r\r\n",
            b"\r\r\n.\r\r\n",
            b"\r\n\x00.\r\n",
            b"\r\n.\x00\r\n",
        ] {
            let mut input = b"Subject: a\r\n\r\nbody".to_vec();
            input.extend_from_slice(variant);
            input.extend_from_slice(b"MAIL FROM:<x@y.example>\r\n");
            let tail = b"\r\n.\r\n";
            input.extend_from_slice(tail);
            let (used, outcome) = read_all(&input, 10_000);
            assert_eq!(used, input.len(), "{variant:?} ended data early");
            let has_bare = variant.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
                || variant
                    .iter()
                    .enumerate()
                    .any(|(i, &b)| b == b'\n' && (i == 0 || variant[i - 1] != b'\r'))
                || variant.ends_with(b"\r");
            if has_bare {
                assert_eq!(outcome, Some(DataOutcome::BareLineEnding), "{variant:?}");
            }
        }
    }

    #[test]
    fn bare_lf_or_cr_anywhere_is_refused() {
        assert_eq!(
            read_all(b"a\nb\r\n.\r\n", 100).1,
            Some(DataOutcome::BareLineEnding)
        );
        assert_eq!(
            read_all(b"a\rb\r\n.\r\n", 100).1,
            Some(DataOutcome::BareLineEnding)
        );
        assert_eq!(
            read_all(b".\rx\r\n.\r\n", 100).1,
            Some(DataOutcome::BareLineEnding)
        );
    }

    #[test]
    fn a_nul_anywhere_is_refused_after_the_real_end() {
        for input in [
            &b"a\r\n\x00.\r\nMAIL FROM:<x@y.example>\r\n.\r\n"[..],
            b"\x00\r\n.\r\n",
            b"text \x00 in a line\r\n.\r\n",
            b"ends with NUL\x00\r\n.\r\n",
        ] {
            for split in 0..=input.len() {
                assert_eq!(
                    read_split(input, 1000, split),
                    (input.len(), Some(DataOutcome::NulByte)),
                    "{input:?} split at {split}"
                );
            }
        }
    }

    #[test]
    fn size_is_counted_on_received_bytes() {
        let mut input = vec![b'x'; 2000];
        input.extend_from_slice(b"\r\n.\r\n");
        let mut reader = reader(1000);
        let (used, outcome) = reader.feed(&input);
        assert_eq!(used, input.len());
        assert_eq!(outcome, Some(DataOutcome::TooLarge));
        assert_eq!(reader.received(), input.len());
        // Exactly at the limit is fine.
        let mut input = vec![b'x'; 998];
        input.extend_from_slice(b"\r\n.\r\n");
        assert!(
            matches!(read_all(&input, 1000).1, Some(DataOutcome::Message(m)) if m.len() == 1000)
        );
    }
}
