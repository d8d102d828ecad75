//! Reading ahead on a thread of its own. Inflating a zip entry and parsing its lines each
//! take a large share of an import's reading; with the inflating (or the file reads) on
//! one thread and the parsing on the caller's, the two run on two cores at once. A few
//! chunks in flight bound the memory.

use std::io::Read;
use std::sync::mpsc::{Receiver, sync_channel};

const CHUNK_BYTES: usize = 256 << 10;
const CHUNKS_IN_FLIGHT: usize = 8;

/// Runs `body` on a reader of `input`'s bytes that a helper thread reads ahead of it. When
/// `body` returns (done or failed), the helper stops at its next chunk.
pub fn read_ahead<T>(input: &mut (dyn Read + Send), body: impl FnOnce(&mut (dyn Read + Send)) -> T) -> T {
    let (tx, rx) = sync_channel::<std::io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            loop {
                let chunk = fill(input);
                let last = !matches!(&chunk, Ok(bytes) if !bytes.is_empty());
                // A send fails once the body is done: nothing more to read for.
                if tx.send(chunk).is_err() || last {
                    break;
                }
            }
        });
        let mut reader = Ahead {
            rx,
            chunk: Vec::new(),
            at: 0,
            done: false,
        };
        body(&mut reader)
    })
}

/// Reads up to one chunk (less only at the end of the input).
fn fill(input: &mut (dyn Read + Send)) -> std::io::Result<Vec<u8>> {
    let mut chunk = vec![0; CHUNK_BYTES];
    let mut filled = 0;
    while filled < chunk.len() {
        match input.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    chunk.truncate(filled);
    Ok(chunk)
}

struct Ahead {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    done: bool,
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.done = chunk.is_empty();
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The helper ended after its last chunk.
                Err(_) => self.done = true,
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_comes_through_in_order() {
        let data: Vec<u8> = (0..3 * CHUNK_BYTES + 17).map(|i| (i % 251) as u8).collect();
        let mut input = std::io::Cursor::new(data.clone());
        let read = read_ahead(&mut input, |r| {
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        });
        assert_eq!(read.expect("read"), data);
    }

    #[test]
    fn an_input_error_reaches_the_body() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk on fire"));
                }
                self.0 -= 1;
                buf[0] = b'x';
                Ok(1)
            }
        }
        let error = read_ahead(&mut Failing(5), |r| r.read_to_end(&mut Vec::new())).expect_err("fails");
        assert_eq!(error.to_string(), "disk on fire");
    }

    #[test]
    fn a_body_that_stops_early_stops_the_helper() {
        let mut input = std::io::repeat(b'y');
        let first = read_ahead(&mut input, |r| {
            let mut byte = [0; 1];
            r.read_exact(&mut byte).map(|_| byte[0])
        });
        assert_eq!(first.expect("one byte"), b'y');
    }
}
