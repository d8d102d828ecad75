//! The diff's bookkeeping while the extract is read, on a thread of its own: each line's
//! professional gets a slot (a lookup in a map of every professional, tens of megabytes,
//! so a cache miss per line, a sixth of the reader's time at national scale), their hash
//! takes the line's, and the line's place in the work file is noted. The reader only
//! hashes the line and hands these facts over in batches, in reading order.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::diff::StagedHashes;
use crate::extract::FileKind;
use crate::national_id::PackedId;

/// Facts per batch, and batches in flight: bounded memory (a few MB), and enough slack
/// that neither thread waits on the other's pace from one line to the next.
const BATCH: usize = 8192;
const BATCHES_IN_FLIGHT: usize = 4;

enum Fact {
    /// A directory line read: its hash and its offset in its partition of the work file.
    Line {
        id: PackedId,
        kind: FileKind,
        hash: u128,
        offset: u64,
    },
    /// A line of this professional was rejected.
    Taint { id: PackedId },
}

/// What the thread learned: each professional's hash, and each line's (slot, offset) in
/// reading order.
pub struct Tally {
    pub hashes: StagedHashes,
    pub lines: Vec<(u32, u64)>,
}

/// The reader's end.
pub struct SlotKeeper {
    batch: Vec<Fact>,
    sender: Option<SyncSender<Vec<Fact>>>,
    thread: Option<JoinHandle<Tally>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the import's slot keeper stopped (a panic?)")]
pub struct Stopped;

impl SlotKeeper {
    pub fn start() -> std::io::Result<SlotKeeper> {
        let (sender, batches) = sync_channel::<Vec<Fact>>(BATCHES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("annuaire-slots".to_owned())
            .spawn(move || {
                let mut tally = Tally {
                    hashes: StagedHashes::default(),
                    lines: Vec::new(),
                };
                for batch in batches {
                    for fact in batch {
                        match fact {
                            Fact::Line { id, kind, hash, offset } => {
                                let slot = tally.hashes.slot(id);
                                tally.hashes.add_hash(slot, kind, hash);
                                tally.lines.push((slot, offset));
                            }
                            Fact::Taint { id } => tally.hashes.taint(id),
                        }
                    }
                }
                tally
            })?;
        Ok(SlotKeeper {
            batch: Vec::with_capacity(BATCH),
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    pub fn line(&mut self, id: PackedId, kind: FileKind, hash: u128, offset: u64) -> Result<(), Stopped> {
        self.push(Fact::Line { id, kind, hash, offset })
    }

    pub fn taint(&mut self, id: PackedId) -> Result<(), Stopped> {
        self.push(Fact::Taint { id })
    }

    fn push(&mut self, fact: Fact) -> Result<(), Stopped> {
        self.batch.push(fact);
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), Stopped> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let sender = self.sender.as_ref().ok_or(Stopped)?;
        sender.send(batch).map_err(|_| Stopped)
    }

    /// Hands over the last facts and waits for the tally.
    pub fn finish(mut self) -> Result<Tally, Stopped> {
        if !self.batch.is_empty() {
            self.send()?;
        }
        self.sender = None;
        self.thread.take().ok_or(Stopped)?.join().map_err(|_| Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_first_appearance_across_batches_and_taints_stick() {
        let mut keeper = SlotKeeper::start().expect("thread");
        let ids: Vec<PackedId> = (0..3u32)
            .map(|n| PackedId::of(format!("81000000000{n}").as_bytes()))
            .collect();
        // More facts than a batch holds, interleaved.
        let total = 2 * BATCH + 5;
        for n in 0..total {
            let id = ids[n % 3];
            keeper
                .line(id, FileKind::PersonneActivite, n as u128, n as u64)
                .expect("sent");
        }
        keeper.taint(ids[2]).expect("sent");
        let tally = keeper.finish().expect("tally");
        assert_eq!(tally.lines.len(), total);
        assert_eq!(tally.lines[4], (1, 4), "the second professional has slot 1");
        for (slot, id) in ids.iter().enumerate() {
            let staged = tally.hashes.professional(slot as u32).expect("slot");
            assert_eq!(staged.id, *id);
            let expected = (0..total)
                .filter(|n| n % 3 == slot)
                .fold(0u128, |sum, n| sum.wrapping_add(n as u128));
            assert_eq!(staged.hash, expected);
            assert_eq!(staged.tainted, slot == 2);
        }
    }
}
