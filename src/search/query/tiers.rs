//! A page without ranking the whole result. Every hit whose words all match in names
//! (exactly or as a prefix) outranks every other hit (`score`), and one whose words all
//! match names exactly outranks the rest of those: when such a tier alone holds the page,
//! the page is ranked from it, and the whole result is only counted. A word common in
//! addresses (`paris`) matched a third of the directory, all of it ranked for twenty hits
//! that were names. Tiers hold no typo: typos join a result only when nothing matches
//! without one (`SearchIndex::search`), and such a result is ranked whole.

use tantivy::Searcher;
use tantivy::collector::{Collector, Count};
use tantivy::query::{BooleanQuery, Occur, Query};

use super::{Ranked, SearchRequest, query_words};
use crate::search::index::{IndexError, SearchIndex};

/// Which ways of matching a word a query takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ways {
    /// Exactly a word of a name.
    ExactName,
    /// A word of a name: exactly, as a prefix or (if forgiven) with a typo.
    Name,
    /// Any way.
    Any,
}

/// Whether a query forgives typos in names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Typos {
    Refused,
    Forgiven,
}

impl SearchIndex {
    /// The page (the best `window` hits, cut by `top`) from the narrowest tier that holds
    /// all of it; `None` when none does, or when what was typed may be an identifier (an
    /// identifier outranks every tier).
    pub(super) fn tier_hits<C>(
        &self,
        searcher: &Searcher,
        request: &SearchRequest,
        window: usize,
        top: impl Fn() -> C,
    ) -> Result<Option<Ranked>, IndexError>
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
                .map(|word| (Occur::Must, self.word_query(word, ways, Typos::Refused)))
                .collect();
            let tier = self.filtered(request, Some(Box::new(BooleanQuery::new(words))));
            let (hits, count) = searcher.search(&tier, &(top(), Count))?;
            if count >= window {
                return Ok(Some(hits));
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
