//! A typeahead page without ranking the whole result. Every hit whose words all match in
//! names outranks every other hit (`score`), and one whose words all match names exactly
//! outranks the rest of those: when such a tier alone holds the page, the page is ranked
//! from it, and the result is counted without being ranked, up to `COUNT_CAP`. A word
//! common in addresses (`paris`) matched a third of the directory, all of it ranked for
//! twenty hits that were names.

use tantivy::collector::{Collector, Count, SegmentCollector};
use tantivy::query::{BooleanQuery, Occur, Query, Weight};
use tantivy::{DocId, DocSet, Score, Searcher, SegmentOrdinal, SegmentReader, TERMINATED};

use super::{Ranked, SearchRequest, query_words};
use crate::search::index::{IndexError, SearchIndex};

/// A search without facets counts its hits up to here: a typeahead needs to know there are
/// many, not how many (the page asks for facets, and an exact count, once the query
/// settles).
pub(in crate::search) const COUNT_CAP: usize = 10_000;

/// Which ways of matching a word a query takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ways {
    /// Exactly a word of a name.
    ExactName,
    /// A word of a name: exactly, as a prefix or with a typo.
    Name,
    /// Any way.
    Any,
}

impl SearchIndex {
    /// The page (the best `window` hits, cut by `top`) from the narrowest tier that holds
    /// all of it, and how many hits that tier has; `None` when none does, or when what was
    /// typed may be an identifier (an identifier outranks every tier).
    pub(super) fn tier_hits<C>(
        &self,
        searcher: &Searcher,
        request: &SearchRequest,
        window: usize,
        top: impl Fn() -> C,
    ) -> Result<Option<(Ranked, usize)>, IndexError>
    where
        C: Collector<Fruit = Ranked>,
    {
        let text = request.q.trim();
        if may_be_identifier(text) {
            return Ok(None);
        }
        let words = query_words(text);
        if words.is_empty() {
            return Ok(None);
        }
        for ways in [Ways::ExactName, Ways::Name] {
            let words: Vec<(Occur, Box<dyn Query>)> = words
                .iter()
                .map(|word| (Occur::Must, self.word_query(word, ways)))
                .collect();
            let tier = self.filtered(request, Some(Box::new(BooleanQuery::new(words))));
            let (hits, count) = searcher.search(&tier, &(top(), Count))?;
            if count >= window {
                return Ok(Some((hits, count)));
            }
        }
        Ok(None)
    }
}

/// Every identifier (national ids, RPPS, ADELI, SIRET, SIREN, FINESS, structure ids) holds a
/// digit, and every mailbox an `@`.
fn may_be_identifier(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit() || c == '@')
}

/// Counts hits up to its cap, then stops reading them (`Count` reads every one).
pub(super) struct CappedCount(pub usize);

/// Unused: `CappedCount` reads each segment's hits itself.
pub(super) struct SegmentCappedCount;

impl SegmentCollector for SegmentCappedCount {
    type Fruit = usize;

    fn collect(&mut self, _: DocId, _: Score) {}

    fn harvest(self) -> usize {
        0
    }
}

impl Collector for CappedCount {
    type Fruit = usize;
    type Child = SegmentCappedCount;

    fn for_segment(&self, _: SegmentOrdinal, _: &SegmentReader) -> tantivy::Result<SegmentCappedCount> {
        Ok(SegmentCappedCount)
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, counts: Vec<usize>) -> tantivy::Result<usize> {
        Ok(counts.into_iter().sum::<usize>().min(self.0))
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<usize> {
        let mut scorer = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let mut count = 0;
        let mut doc = scorer.doc();
        while doc != TERMINATED && count < self.0 {
            if alive.is_none_or(|alive| alive.is_alive(doc)) {
                count += 1;
            }
            doc = scorer.advance();
        }
        Ok(count)
    }
}
