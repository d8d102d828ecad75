//! Facet counts of a whole result from the facet fields' fast columns: per segment, one
//! counter per term ordinal, bumped for each hit; the ordinals become values once per
//! segment, at the end. Much cheaper than the hierarchical facet collector, which resolves
//! facet paths hit by hit.

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::filters::FACETS;
use super::labels::Labels;

/// Values shown per facet: the most frequent, ties by value.
const SHOWN: usize = 20;

/// Counts every value of each facet of `FACETS` over the hits.
pub(super) struct FacetCounter;

/// One segment's counters: per facet, its column (absent if no document of the segment
/// has a value) and a count per term ordinal.
pub(super) struct SegmentFacetCounter {
    columns: Vec<Option<(StrColumn, Vec<u32>)>>,
}

/// Per facet, each value's count.
pub(super) type Counts = Vec<HashMap<String, u64>>;

impl Collector for FacetCounter {
    type Fruit = Counts;
    type Child = SegmentFacetCounter;

    fn for_segment(&self, _: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentFacetCounter> {
        let mut columns = Vec::with_capacity(FACETS.len());
        for facet in FACETS {
            let column = reader.fast_fields().str(facet)?;
            columns.push(column.map(|column| {
                let counts = vec![0; column.num_terms()];
                (column, counts)
            }));
        }
        Ok(SegmentFacetCounter { columns })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segments: Vec<Counts>) -> tantivy::Result<Counts> {
        let mut merged: Counts = vec![HashMap::new(); FACETS.len()];
        for segment in segments {
            for (into, counts) in merged.iter_mut().zip(segment) {
                for (value, count) in counts {
                    *into.entry(value).or_default() += count;
                }
            }
        }
        Ok(merged)
    }
}

impl SegmentCollector for SegmentFacetCounter {
    type Fruit = Counts;

    fn collect(&mut self, doc: DocId, _: Score) {
        for (column, counts) in self.columns.iter_mut().flatten() {
            for ord in column.term_ords(doc) {
                // Ordinals are below the column's term count by construction.
                if let Some(count) = counts.get_mut(ord as usize) {
                    *count += 1;
                }
            }
        }
    }

    fn harvest(self) -> Counts {
        self.columns
            .into_iter()
            .map(|column| {
                let mut values = HashMap::new();
                let Some((column, counts)) = column else {
                    return values;
                };
                let mut value = String::new();
                for (ord, count) in counts.into_iter().enumerate().filter(|(_, count)| *count > 0) {
                    value.clear();
                    if column.ord_to_str(ord as u64, &mut value).unwrap_or(false) {
                        values.insert(value.clone(), u64::from(count));
                    }
                }
                values
            })
            .collect()
    }
}

/// The most frequent values of each facet, ties by value, each with its label, keyed by
/// facet name.
pub(super) fn ranked(counts: Counts, labels: &Labels) -> HashMap<String, Vec<super::query::FacetCount>> {
    FACETS
        .iter()
        .zip(counts)
        .map(|(facet, counts)| {
            let mut values: Vec<super::query::FacetCount> = counts
                .into_iter()
                .map(|(value, count)| super::query::FacetCount {
                    value,
                    label: None,
                    count,
                })
                .collect();
            values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            values.truncate(SHOWN);
            for value in &mut values {
                value.label = labels.label(facet, &value.value).map(str::to_owned);
            }
            ((*facet).to_owned(), values)
        })
        .collect()
}
