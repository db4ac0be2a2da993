//! The step from one `(date, id)` position to the next in a packed list:
//! the encoding every chunked list shares (the word index chunks,
//! `super::search::chunk`, and the view list chunks,
//! `super::views::chunk`).
//!
//! A list is kept ascending, so a step is the date minus the previous date
//! (never negative), then, when that is 0, the id minus the previous id
//! minus 1 (ids of one date ascend), else the id minus the previous id
//! zigzag-encoded (ids grow with time, so the difference is small either
//! way); both as LEB128 varints ([`super::varint`]). A mail every few
//! minutes with consecutive ids then costs 3–4 bytes.
//!
//! Reading a step checks what the row promises: numbers that fit, and a
//! position above the previous one. A damaged row is refused (the caller
//! names it), never a panic, a wrapped date or an unsorted list.

use super::varint::{self, unzigzag, zigzag, Bad};

/// An index position: (date, id).
pub type Pos = (i64, u64);

/// Why a step could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadStep {
    /// A number cut off or too long ([`Bad`]).
    Number(Bad),
    /// The date left the `i64` range.
    Date,
    /// The id of a same-date step left the `u64` range.
    Id,
}

impl BadStep {
    /// Short words for the caller's storage error.
    pub fn why(self) -> &'static str {
        match self {
            BadStep::Number(Bad::CutOff) => "cut off",
            BadStep::Number(Bad::TooLong) => "number too long",
            BadStep::Date => "date out of range",
            BadStep::Id => "id out of range",
        }
    }
}

/// Append the step from `prev` to `next` (`next` > `prev`).
pub fn put(out: &mut Vec<u8>, prev: Pos, next: Pos) {
    let dd = next.0.wrapping_sub(prev.0) as u64;
    varint::put(out, dd);
    if dd == 0 {
        varint::put(out, next.1.wrapping_sub(prev.1).wrapping_sub(1));
    } else {
        varint::put(out, zigzag(next.1.wrapping_sub(prev.1) as i64));
    }
}

/// Read the step at `*at` in `b` from `prev`; moves `*at` past it.
pub fn get(b: &[u8], at: &mut usize, prev: Pos) -> Result<Pos, BadStep> {
    let dd = varint::get(b, at).map_err(BadStep::Number)?;
    let date = prev.0.checked_add_unsigned(dd).ok_or(BadStep::Date)?;
    let n = varint::get(b, at).map_err(BadStep::Number)?;
    let id = if dd == 0 {
        prev.1
            .checked_add(n)
            .and_then(|x| x.checked_add(1))
            .ok_or(BadStep::Id)?
    } else {
        prev.1.wrapping_add(unzigzag(n) as u64)
    };
    Ok((date, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_and_stay_short() {
        let list = [
            (i64::MIN, 0),
            (i64::MIN, 1),
            (-5, u64::MAX),
            (1_700_000_000, 7),
            (1_700_000_300, 8),
            (i64::MAX, 0),
        ];
        let mut prev = list[0];
        for &next in &list[1..] {
            if next <= prev {
                continue;
            }
            let mut out = Vec::new();
            put(&mut out, prev, next);
            let mut at = 0;
            assert_eq!(get(&out, &mut at, prev), Ok(next));
            assert_eq!(at, out.len());
            prev = next;
        }
        let mut out = Vec::new();
        put(&mut out, (1_700_000_000, 7), (1_700_000_300, 8));
        assert_eq!(out.len(), 3, "five minutes and the next id");
    }

    #[test]
    fn damaged_steps_are_refused() {
        assert_eq!(get(&[], &mut 0, (0, 0)), Err(BadStep::Number(Bad::CutOff)));
        assert_eq!(get(&[1], &mut 0, (0, 0)), Err(BadStep::Number(Bad::CutOff)));
        assert_eq!(get(&[1, 0], &mut 0, (i64::MAX, 0)), Err(BadStep::Date));
        assert_eq!(get(&[0, 0], &mut 0, (5, u64::MAX)), Err(BadStep::Id));
        assert_eq!(BadStep::Date.why(), "date out of range");
    }
}
