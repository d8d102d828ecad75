//! A page of the whole ranking, whether a tier or the whole result ranks it, and one exact
//! total of one set of hits (typos only when nothing matches without one), on a crowded
//! directory.

use super::*;

/// A mixed directory: names that are also words of addresses, typos, shared prefixes.
fn crowded() -> (tempfile::TempDir, SearchIndex) {
    let given = ["Marie", "Claire", "Marie-Claire", "Jean", "Hélène", "Paul", "Mari"];
    let family = [
        "Paris", "Parisot", "Dupont", "Dupond", "Martin", "Lefèvre", "Bernard", "Pariss",
    ];
    let documents: Vec<SearchValues> = (0..400)
        .map(|i| {
            let name = format!("{} {}", given[i % given.len()], family[(i / 7) % family.len()]);
            let extra = if i % 3 == 0 { "12 rue de Paris" } else { "place Martin" };
            professional(
                &format!("8100000{i:05}"),
                &name,
                ["10", "60"][i % 2],
                ["69", "75"][i % 4 / 2],
                extra,
            )
        })
        .collect();
    index_of(&documents)
}

/// The page as ranking the whole result gives it, tiers aside: the hits without typos, or
/// with them when there are none.
fn whole_ranking(index: &SearchIndex, request: &SearchRequest) -> Vec<(String, f32)> {
    let searcher = index.reader.searcher();
    let top = TopDocs::with_limit(request.per_page)
        .and_offset((request.page - 1) * request.per_page)
        .order_by((
            (SortBySimilarityScore, Order::Desc),
            (SortByStaticFastValue::<u64>::for_field(NAME_KEY), Order::Asc),
        ));
    let mut query = index.query(request, Typos::Refused);
    if searcher.search(query.as_ref(), &Count).unwrap() == 0 {
        query = index.query(request, Typos::Forgiven);
    }
    let labels = index.labels();
    searcher
        .search(query.as_ref(), &top)
        .unwrap()
        .into_iter()
        .map(|((score, _), address)| {
            let document: TantivyDocument = searcher.doc(address).unwrap();
            (index.hit(&document, score, &labels).national_id, score)
        })
        .collect()
}

#[test]
fn a_page_is_the_page_of_the_whole_ranking() {
    let (_dir, index) = crowded();
    let searcher = index.reader.searcher();
    let mut tiers_used = 0;
    for q in [
        "paris",
        "pari",
        "marie claire",
        "dup",
        "lefe hel",
        "martin",
        "dupnot",
        "rue",
        "jean paris",
    ] {
        for filters in [&[][..], &[("departement", "69")][..]] {
            for page in 1..=4 {
                let mut typeahead = request(q, filters, page, 10);
                typeahead.facets = false;
                let whole = index.search(&request(q, filters, page, 10)).unwrap();
                let fast = index.search(&typeahead).unwrap();
                let ranked = |r: &SearchResponse| {
                    r.results
                        .iter()
                        .map(|h| (h.national_id.clone(), h.score))
                        .collect::<Vec<_>>()
                };
                let reference = whole_ranking(&index, &typeahead);
                assert_eq!(ranked(&fast), reference, "{q} {filters:?} page {page}");
                assert_eq!(ranked(&whole), reference, "{q} {filters:?} page {page}");
                assert_eq!(fast.total, whole.total, "{q} {filters:?} page {page}");
                let window = page * 10;
                let top = || {
                    TopDocs::with_limit(10).and_offset(window - 10).order_by((
                        (SortBySimilarityScore, Order::Desc),
                        (SortByStaticFastValue::<u64>::for_field(NAME_KEY), Order::Asc),
                    ))
                };
                if index.tier_hits(&searcher, &typeahead, window, top).unwrap().is_some() {
                    tiers_used += 1;
                }
            }
        }
    }
    // Most pages come from a tier, and some (deep pages, words only in addresses) do not.
    assert!(tiers_used > 20, "{tiers_used}");
    assert!(tiers_used < 72, "{tiers_used}");
}

#[test]
fn a_page_ranked_from_a_tier_counts_the_whole_result() {
    let mut documents: Vec<SearchValues> = (0..30)
        .map(|i| professional(&format!("8100000000{i:02}"), "Paul Paris", "10", "75", ""))
        .collect();
    documents
        .extend((30..40).map(|i| professional(&format!("8100000000{i:02}"), "Anne Roux", "10", "75", "rue de Paris")));
    let (_dir, index) = index_of(&documents);
    let mut typeahead = request("paris", &[], 1, 20);
    typeahead.facets = false;
    let fast = index.search(&typeahead).unwrap();
    let whole = index.search(&request("paris", &[], 1, 20)).unwrap();
    assert_eq!((fast.total, whole.total), (40, 40), "the names and the address");
    assert_eq!(ids(&fast), ids(&whole));
    assert_eq!(whole.facets["profession"][0].count, 40);
    // No tier holds a page of 40: the whole result is ranked, and counted the same.
    let mut deep = request("paris", &[], 2, 20);
    deep.facets = false;
    assert_eq!(index.search(&deep).unwrap().total, 40);
}

/// Every hit of every page of `q` (20 a page), with its score, and each page's total.
fn walk(index: &SearchIndex, q: &str, filters: &[(&str, &str)], facets: bool) -> (Vec<(String, f32)>, Vec<usize>) {
    let mut hits = Vec::new();
    let mut totals = Vec::new();
    for page in 1.. {
        let mut asked = request(q, filters, page, 20);
        asked.facets = facets;
        let found = index.search(&asked).unwrap();
        totals.push(found.total);
        if found.results.is_empty() {
            break;
        }
        hits.extend(found.results.into_iter().map(|h| (h.national_id, h.score)));
    }
    (hits, totals)
}

/// Whether a hit of a query of `words` words (no identifier) took a typo: each word that
/// matched without one adds 100 (`score`), a typo nothing.
fn took_a_typo(score: f32, words: usize) -> bool {
    (score as u32 % 10_000) / 100 != words as u32
}

#[test]
fn typos_join_only_when_no_hit_matches_without_one_and_every_total_is_exact() {
    let (_dir, index) = crowded();
    let mut typo_results = 0;
    for q in [
        "paris",
        "pari",
        "parid",
        "parsi jean",
        "marie claire",
        "dup",
        "dupnot",
        "dupont jaen",
        "martni",
        "rue",
        "jean paris",
        "lefevre hel",
        "hel lefevr",
        "bernadr",
    ] {
        for filters in [&[][..], &[("departement", "69")][..]] {
            let (hits, totals) = walk(&index, q, filters, false);
            let words = query_words(q).len();
            let typos = hits.iter().filter(|(_, score)| took_a_typo(*score, words)).count();
            assert!(
                typos == 0 || typos == hits.len(),
                "{q} {filters:?}: {typos} of {}",
                hits.len()
            );
            typo_results += usize::from(typos > 0);
            // One exact total on every page, with or without facets, and as many hits.
            let (with_facets, faceted_totals) = walk(&index, q, filters, true);
            assert_eq!(with_facets, hits, "{q} {filters:?}");
            assert!(
                totals.iter().chain(&faceted_totals).all(|t| *t == hits.len()),
                "{q} {filters:?}: {totals:?} {faceted_totals:?} for {} hits",
                hits.len()
            );
            let mut distinct: Vec<&String> = hits.iter().map(|(id, _)| id).collect();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), hits.len(), "{q}: every hit once");
        }
    }
    // Some of those are typos only, and found so.
    assert!(typo_results >= 6, "{typo_results}");
}
