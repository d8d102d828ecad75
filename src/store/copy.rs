//! PostgreSQL's binary `COPY` format, both ways. Bulk loads and bulk reads go through it:
//! no escaping of the extract's text (backslashes, tabs) and no per-row round trips.
//! Format: <https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>

use bytes::{Buf, BufMut, Bytes, BytesMut};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Encodes rows into binary COPY data, handed out in chunks of about `chunk_size` bytes.
pub struct CopyEncoder {
    buffer: BytesMut,
    chunk_size: usize,
}

impl CopyEncoder {
    pub fn new(chunk_size: usize) -> CopyEncoder {
        let mut buffer = BytesMut::with_capacity(chunk_size.min(1 << 24) + 4096);
        buffer.put_slice(SIGNATURE);
        buffer.put_i32(0); // flags: no OIDs
        buffer.put_i32(0); // header extension length
        CopyEncoder { buffer, chunk_size }
    }

    /// An encoder for rows that follow another encoder's: no header. Its data goes before
    /// the first encoder's `finish`.
    pub fn continuation(chunk_size: usize) -> CopyEncoder {
        CopyEncoder {
            buffer: BytesMut::with_capacity(chunk_size.min(1 << 24) + 4096),
            chunk_size,
        }
    }

    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.buffer.put_i16(fields);
        self
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    /// One text field made of `parts` joined by `separator`, written in place; returns
    /// the field's bytes as written.
    pub fn joined_text(&mut self, parts: &[&str], separator: u8) -> &[u8] {
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + parts.len().saturating_sub(1);
        self.buffer.put_i32(len as i32);
        let start = self.buffer.len();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                self.buffer.put_u8(separator);
            }
            self.buffer.put_slice(part.as_bytes());
        }
        &self.buffer[start..]
    }

    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        // A field longer than 2 GiB cannot come out of one extract line.
        self.buffer.put_i32(value.len() as i32);
        self.buffer.put_slice(value);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.buffer.put_i32(-1);
        self
    }

    pub fn int2(&mut self, value: i16) -> &mut Self {
        self.buffer.put_i32(2);
        self.buffer.put_i16(value);
        self
    }

    pub fn int8(&mut self, value: i64) -> &mut Self {
        self.buffer.put_i32(8);
        self.buffer.put_i64(value);
        self
    }

    /// The data gathered so far once it is worth sending.
    pub fn take_full_chunk(&mut self) -> Option<Bytes> {
        (self.buffer.len() >= self.chunk_size).then(|| self.buffer.split().freeze())
    }

    /// Whatever is gathered, without the end-of-data marker.
    pub fn take_all(&mut self) -> Bytes {
        self.buffer.split().freeze()
    }

    /// The rest of the data with the end-of-data marker.
    pub fn finish(mut self) -> Bytes {
        self.buffer.put_i16(-1);
        self.buffer.freeze()
    }
}

/// Error in binary COPY data received from the server (a bug or a protocol mismatch).
#[derive(Debug, thiserror::Error)]
#[error("malformed COPY data: {0}")]
pub struct CopyFormatError(&'static str);

/// Decodes binary COPY data arriving in chunks of any size into rows of optional fields.
#[derive(Default)]
pub struct CopyDecoder {
    pending: BytesMut,
    header_seen: bool,
    finished: bool,
}

impl CopyDecoder {
    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next complete row, `None` when more data is needed or the data has ended.
    pub fn next_row(&mut self) -> Result<Option<Vec<Option<Bytes>>>, CopyFormatError> {
        if !self.header_seen {
            if self.pending.len() < SIGNATURE.len() + 8 {
                return Ok(None);
            }
            if &self.pending[..SIGNATURE.len()] != SIGNATURE {
                return Err(CopyFormatError("bad signature"));
            }
            self.pending.advance(SIGNATURE.len() + 4);
            let extension = self.pending.get_i32() as usize;
            if self.pending.len() < extension {
                return Err(CopyFormatError("truncated header extension"));
            }
            self.pending.advance(extension);
            self.header_seen = true;
        }
        if self.finished || self.pending.len() < 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([self.pending[0], self.pending[1]]);
        if count == -1 {
            self.finished = true;
            return Ok(None);
        }
        // Find the row's full length before consuming anything.
        let mut offset = 2;
        for _ in 0..count {
            if self.pending.len() < offset + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes(
                self.pending[offset..offset + 4]
                    .try_into()
                    .map_err(|_| CopyFormatError("length"))?,
            );
            offset += 4 + len.max(0) as usize;
            if self.pending.len() < offset {
                return Ok(None);
            }
        }
        let mut row_bytes = self.pending.split_to(offset).freeze();
        row_bytes.advance(2);
        let mut fields = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let len = row_bytes.get_i32();
            if len < 0 {
                fields.push(None);
            } else {
                fields.push(Some(row_bytes.split_to(len as usize)));
            }
        }
        Ok(Some(fields))
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rows_split_at_any_byte() {
        let mut encoder = CopyEncoder::new(1 << 20);
        encoder.row(3).int2(1).text("810001234565").text("a|b \"c\"\t\\");
        encoder.row(3).int2(2).int8(-5).bytes(&[]);
        let data = encoder.finish();
        for split in 0..data.len() {
            let mut decoder = CopyDecoder::default();
            let mut rows = Vec::new();
            for part in [&data[..split], &data[split..]] {
                decoder.push(part);
                while let Some(row) = decoder.next_row().unwrap() {
                    rows.push(row);
                }
            }
            assert!(decoder.is_finished());
            assert_eq!(rows.len(), 2, "split at {split}");
            assert_eq!(rows[0][2].as_deref(), Some(&b"a|b \"c\"\t\\"[..]));
            assert_eq!(rows[1][1].as_deref(), Some(&(-5i64).to_be_bytes()[..]));
        }
    }
}
