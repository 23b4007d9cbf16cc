//! A minimal protobuf wire-format reader for the hot decode path: varints,
//! fixed-width fields, length-delimited slices, and skipping of unknown
//! fields (groups included, depth-limited).
//!
//! It borrows from the input and never allocates. Not here: any message
//! schema (see `traces.rs`) or encoding.

use crate::DecodeError;

/// Protobuf wire types.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const START_GROUP: u8 = 3;
pub(crate) const END_GROUP: u8 = 4;
pub(crate) const FIXED32: u8 = 5;

const MAX_GROUP_DEPTH: u32 = 64;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the whole payload, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0, base: 0 }
    }

    /// A reader over a nested message (offsets stay payload-absolute).
    pub fn nested(&self, sub: &'a [u8]) -> Reader<'a> {
        let base = self.base + (sub.as_ptr() as usize).saturating_sub(self.buf.as_ptr() as usize);
        Reader { buf: sub, pos: 0, base }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn err(&self, what: &str) -> DecodeError {
        DecodeError::Protobuf(format!("{what} at byte {}", self.base + self.pos))
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else { return Err(self.err("truncated varint")) };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    /// Reads a field key: (field number, wire type).
    #[inline]
    pub fn key(&mut self) -> Result<(u32, u8), DecodeError> {
        let k = self.varint()?;
        if k > u64::from(u32::MAX) {
            return Err(self.err("field key out of range"));
        }
        let wt = (k & 7) as u8;
        let field = (k >> 3) as u32;
        if field == 0 {
            return Err(self.err("field number 0"));
        }
        if wt > 5 {
            return Err(self.err("invalid wire type"));
        }
        Ok((field, wt))
    }

    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.err("length out of range"))?;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len());
        let Some(end) = end else { return Err(self.err("length-delimited field runs past the end")) };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    #[inline]
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| DecodeError::Protobuf(format!("invalid UTF-8 in string at byte {}", self.base + at)))
    }

    #[inline]
    pub fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let Some(b) = self.buf.get(self.pos..self.pos + 8) else { return Err(self.err("truncated fixed64")) };
        self.pos += 8;
        // Invariant: the slice has exactly 8 bytes.
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    #[inline]
    pub fn fixed32(&mut self) -> Result<u32, DecodeError> {
        let Some(b) = self.buf.get(self.pos..self.pos + 4) else { return Err(self.err("truncated fixed32")) };
        self.pos += 4;
        // Invariant: the slice has exactly 4 bytes.
        Ok(u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    }

    /// Skips a field's value of wire type `wt`.
    pub fn skip(&mut self, field: u32, wt: u8) -> Result<(), DecodeError> {
        self.skip_depth(field, wt, 0)
    }

    fn skip_depth(&mut self, field: u32, wt: u8, depth: u32) -> Result<(), DecodeError> {
        match wt {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.fixed32().map(drop),
            START_GROUP => {
                if depth >= MAX_GROUP_DEPTH {
                    return Err(self.err("groups nested too deeply"));
                }
                loop {
                    if self.is_empty() {
                        return Err(self.err("unterminated group"));
                    }
                    let (f, w) = self.key()?;
                    if w == END_GROUP {
                        return if f == field { Ok(()) } else { Err(self.err("mismatched end group")) };
                    }
                    self.skip_depth(f, w, depth + 1)?;
                }
            }
            _ => Err(self.err("unexpected end group")),
        }
    }

    /// Checks that a known field arrived with the expected wire type.
    #[inline]
    pub fn expect(&self, wt: u8, want: u8) -> Result<(), DecodeError> {
        if wt == want { Ok(()) } else { Err(self.err("wrong wire type for field")) }
    }
}
