//! How a list is cut into pages, apart from what it lists: the bounds of a
//! page, paging a list read in its stored order as runs of known length,
//! and picking one page of a sorted list by partial selection. Nothing here
//! reads a cache, so the edges (an empty list, the last partial page, a page
//! past the end, ties) are tested on plain numbers.
//!
//! Both pagers give exactly the page that [`ListQuery::paginate`] (a full
//! stable sort, then a cut) would give, with less work: the tests below hold
//! them to it.

use std::cmp::Ordering;
use std::ops::Range;

use gantry_domain::view::{ListQuery, Page};

/// The number of the last page of `total` items (an empty list has one,
/// empty, page). `per_page` is at least 1, as [`ListQuery::per_page`] gives.
pub fn last_page(total: usize, per_page: usize) -> usize {
    total.div_ceil(per_page).max(1)
}

/// The page shown when `requested` is asked for: past the end, the last one.
pub fn shown_page(requested: usize, total: usize, per_page: usize) -> usize {
    requested.min(last_page(total, per_page))
}

/// Pages a list that is read in its stored order as consecutive runs whose
/// lengths are known before they are read (a namespace's pods, from the
/// running counts): a run wholly before the page is skipped by its length,
/// and of a run that reaches the page only the page's part is read. The
/// total still counts every run.
#[derive(Debug)]
pub struct RunPager {
    page: usize,
    per_page: usize,
    /// Items still to pass over before the page starts.
    skip: usize,
    /// Room left on the page.
    room: usize,
    total: usize,
}

impl RunPager {
    /// For page `page` (from 1) of `per_page` (at least 1) items.
    pub fn new(page: usize, per_page: usize) -> RunPager {
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        RunPager { page, per_page, skip, room: per_page, total: 0 }
    }

    /// Counts the next run, of `len` items, and says which of them land on
    /// the page, by their positions in the run as it is read; `None` when
    /// none do (the run lies before the page, or the page is full).
    pub fn run(&mut self, len: usize) -> Option<Range<usize>> {
        self.total += len;
        if self.room == 0 {
            return None;
        }
        if self.skip >= len {
            self.skip -= len;
            return None;
        }
        let start = self.skip;
        let take = (len - start).min(self.room);
        self.skip = 0;
        self.room -= take;
        Some(start..start + take)
    }

    /// The page made of the `items` read from the ranges [`RunPager::run`]
    /// gave; or, when the requested page lies past the end, `Err` with the
    /// last page, to be read instead.
    pub fn finish<T>(self, items: Vec<T>) -> Result<Page<T>, usize> {
        let last = last_page(self.total, self.per_page);
        if self.page > last {
            return Err(last);
        }
        Ok(Page { items, total: self.total, page: self.page, per_page: self.per_page })
    }
}

/// Picks one page of a list sorted by a column's key, as a stable sort
/// would order it (ties keep the order the items were met in), while making
/// rows only of the items that can land on the page: each group offered
/// (one cluster's cache) keeps its first `page × per_page` items by a
/// partial selection, and only those are sorted at the end.
pub struct PartialPage<T> {
    desc: bool,
    page: usize,
    per_page: usize,
    /// How many items of one group can still land on the page.
    wanted: usize,
    total: usize,
    /// The rows kept, each with its place in the order the items were met.
    picked: Vec<(usize, T)>,
}

impl<T> PartialPage<T> {
    /// For the page, page size and direction `query` asks for.
    pub fn new(query: &ListQuery) -> PartialPage<T> {
        let (page, per_page) = (query.page(), query.per_page());
        PartialPage {
            desc: query.desc,
            page,
            per_page,
            wanted: page.saturating_mul(per_page),
            total: 0,
            picked: Vec::new(),
        }
    }

    /// Offers the next group of matching items, in the order they were met,
    /// each with its sort key; makes a row with `row` of only those that can
    /// still land on the page.
    pub fn offer<K: Ord, H>(&mut self, hits: impl IntoIterator<Item = (K, H)>, mut row: impl FnMut(H) -> T) {
        let first = self.total;
        let mut hits: Vec<(K, usize, H)> =
            hits.into_iter().enumerate().map(|(i, (key, hit))| (key, first + i, hit)).collect();
        self.total += hits.len();
        if hits.len() > self.wanted {
            let desc = self.desc;
            hits.select_nth_unstable_by(self.wanted, |a, b| order(desc, a.0.cmp(&b.0), a.1, b.1));
            hits.truncate(self.wanted);
        }
        self.picked.extend(hits.into_iter().map(|(_, seen, hit)| (seen, row(hit))));
    }

    /// Sorts the rows kept with `compare`, which must order rows as the keys
    /// given to [`PartialPage::offer`] ordered their items, and cuts out the
    /// page (past the end, the last).
    pub fn finish(self, compare: impl Fn(&T, &T) -> Ordering) -> Page<T> {
        let PartialPage { desc, page, per_page, total, mut picked, .. } = self;
        picked.sort_by(|(a_seen, a), (b_seen, b)| order(desc, compare(a, b), *a_seen, *b_seen));
        let page = shown_page(page, total, per_page);
        let items = picked.into_iter().skip((page - 1) * per_page).take(per_page).map(|(_, row)| row).collect();
        Page { items, total, page, per_page }
    }
}

/// The list order: by key, reversed when descending; ties by the order the
/// items were met in, whichever the direction (as a stable sort by the
/// reversed key leaves them).
fn order(desc: bool, by_key: Ordering, a_seen: usize, b_seen: usize) -> Ordering {
    let by_key = if desc { by_key.reverse() } else { by_key };
    by_key.then(a_seen.cmp(&b_seen))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn query(page: usize, per_page: usize, desc: bool) -> ListQuery {
        ListQuery { page: Some(page), per_page: Some(per_page), desc, ..Default::default() }
    }

    #[test]
    fn page_bounds() {
        // (requested, total, per_page) → (shown, last)
        for (requested, total, per_page, shown, last) in [
            (1, 0, 50, 1, 1),
            (3, 0, 50, 1, 1),
            (1, 1, 1, 1, 1),
            (2, 10, 4, 2, 3),
            (3, 10, 4, 3, 3),
            (4, 10, 4, 3, 3),
            (3, 12, 4, 3, 3),
            (4, 12, 4, 3, 3),
            (usize::MAX, 7, 500, 1, 1),
        ] {
            assert_eq!(
                (shown_page(requested, total, per_page), last_page(total, per_page)),
                (shown, last),
                "page {requested} of {total} by {per_page}"
            );
        }
    }

    /// What [`RunPager`] says for each run, and how it ends.
    #[test]
    fn run_pager_cases() {
        type Case = (&'static [usize], usize, usize, &'static [Option<Range<usize>>], Result<usize, usize>);
        let cases: &[Case] = &[
            // No runs at all: one empty page.
            (&[], 1, 50, &[], Ok(0)),
            // No runs, page 2 asked: read page 1 instead.
            (&[], 2, 50, &[], Err(1)),
            // The first page cuts the second run short; later runs are only counted.
            (&[3, 4, 2], 1, 5, &[Some(0..3), Some(0..2), None], Ok(9)),
            // The second page starts inside a run and ends at the last item.
            (&[3, 4, 2], 2, 5, &[None, Some(2..4), Some(0..2)], Ok(9)),
            // A page that starts exactly where a run does skips the runs before it whole.
            (&[3, 4, 2], 2, 3, &[None, Some(0..3), None], Ok(9)),
            // The last, partial page.
            (&[3, 4, 2], 3, 4, &[None, None, Some(1..2)], Ok(9)),
            // A page past the end reads nothing and names the last page.
            (&[3, 4, 2], 4, 4, &[None, None, None], Err(3)),
            // Empty runs are counted as nothing.
            (&[0, 2, 0, 1], 1, 2, &[None, Some(0..2), None, None], Ok(3)),
            // A huge page number does not overflow.
            (&[1], usize::MAX, 500, &[None], Err(1)),
        ];
        for (runs, page, per_page, ranges, end) in cases {
            let mut pager = RunPager::new(*page, *per_page);
            let got: Vec<Option<Range<usize>>> = runs.iter().map(|len| pager.run(*len)).collect();
            assert_eq!(&got, ranges, "runs {runs:?}, page {page} of {per_page}");
            let items: usize = got.iter().flatten().map(|r| r.len()).sum();
            let finished = pager.finish(vec![(); items]).map(|p| {
                assert_eq!((p.page, p.per_page), (*page, *per_page));
                p.total
            });
            assert_eq!(finished, *end, "runs {runs:?}, page {page} of {per_page}");
        }
    }

    /// Reading only the ranges it names, in either direction, gives the page
    /// of the whole list, for every split into runs of up to three items.
    #[test]
    fn run_pager_reads_the_pages_of_the_whole_list() {
        // Every sequence of up to four runs of 0 to 3 items.
        let mut splits: Vec<Vec<usize>> = vec![vec![]];
        let mut longest: Vec<Vec<usize>> = vec![vec![]];
        for _ in 0..4 {
            longest =
                longest.iter().flat_map(|s| (0..=3).map(move |len| s.iter().copied().chain([len]).collect())).collect();
            splits.extend(longest.iter().cloned());
        }
        for runs in &splits {
            // Run i holds the items (i, 0), (i, 1), ...: the stored order.
            let all: Vec<(usize, usize)> =
                runs.iter().enumerate().flat_map(|(i, len)| (0..*len).map(move |j| (i, j))).collect();
            for desc in [false, true] {
                let expected: Vec<(usize, usize)> =
                    if desc { all.iter().rev().copied().collect() } else { all.clone() };
                for per_page in 1..=4 {
                    for page in 1..=6 {
                        let read = |page| {
                            let mut pager = RunPager::new(page, per_page);
                            let mut items = Vec::new();
                            let order: Vec<usize> =
                                if desc { (0..runs.len()).rev().collect() } else { (0..runs.len()).collect() };
                            for i in order {
                                let Some(range) = pager.run(runs[i]) else { continue };
                                let run = (0..runs[i]).map(|j| (i, j));
                                if desc {
                                    items.extend(run.rev().skip(range.start).take(range.len()));
                                } else {
                                    items.extend(run.skip(range.start).take(range.len()));
                                }
                            }
                            pager.finish(items)
                        };
                        let got = match read(page) {
                            Ok(got) => got,
                            Err(last) => {
                                assert!(page > last, "only a page past the end is refused");
                                read(last).expect("the last page exists")
                            }
                        };
                        let shown = shown_page(page, all.len(), per_page);
                        let want: Vec<_> =
                            expected.iter().copied().skip((shown - 1) * per_page).take(per_page).collect();
                        assert_eq!(
                            (got.items, got.total, got.page),
                            (want, all.len(), shown),
                            "runs {runs:?}, desc {desc}, page {page} of {per_page}"
                        );
                    }
                }
            }
        }
    }

    /// A small deterministic stream of numbers, for lists with many ties.
    fn numbers(seed: u64) -> impl Iterator<Item = u64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::iter::repeat_with(move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            state >> 33
        })
    }

    /// Its pages are those of a full stable sort ([`ListQuery::paginate`]),
    /// however the items are grouped, in both directions, with ties, and on
    /// and past the last page.
    #[test]
    fn partial_page_matches_a_full_stable_sort() {
        for seed in 0..40 {
            let mut numbers = numbers(seed);
            let len = (numbers.next().unwrap() % 24) as usize;
            // (key, id): few distinct keys, so most items tie with another.
            let items: Vec<(u64, usize)> = (0..len).map(|id| (numbers.next().unwrap() % 4, id)).collect();
            let mut groups: Vec<Vec<(u64, usize)>> = vec![Vec::new()];
            for item in &items {
                if numbers.next().unwrap().is_multiple_of(3) {
                    groups.push(Vec::new());
                }
                groups.last_mut().unwrap().push(*item);
            }
            for desc in [false, true] {
                for per_page in [1, 2, 3, 7, 50] {
                    for page in 1..=(len / per_page + 2) {
                        let q = query(page, per_page, desc);
                        let mut partial = PartialPage::new(&q);
                        for group in &groups {
                            partial.offer(group.iter().map(|item| (item.0, *item)), |item| item);
                        }
                        let got = partial.finish(|a, b| a.0.cmp(&b.0));
                        let want = q.paginate(items.clone(), |item, _| item.0);
                        assert_eq!(got, want, "seed {seed}, groups {groups:?}, desc {desc}, page {page} of {per_page}");
                    }
                }
            }
        }
    }

    #[test]
    fn partial_page_edges() {
        let ids = |page: &Page<(u64, usize)>| page.items.iter().map(|i| i.1).collect::<Vec<_>>();
        let offer_all = |q: &ListQuery, items: &[(u64, usize)]| {
            let mut partial = PartialPage::new(q);
            partial.offer(items.iter().map(|i| (i.0, *i)), |i| i);
            partial.finish(|a, b| a.0.cmp(&b.0))
        };
        // Nothing matched: one empty page, whichever page was asked for.
        for page in [1, 2, 99] {
            let empty = offer_all(&query(page, 10, false), &[]);
            assert_eq!((empty.items.len(), empty.total, empty.page, empty.per_page), (0, 0, 1, 10));
        }
        let items: Vec<(u64, usize)> = (0..10).map(|id| (id as u64 / 3, id)).collect();
        // The last page is partial; past it, the last page again.
        assert_eq!(ids(&offer_all(&query(3, 4, false), &items)), [8, 9]);
        assert_eq!(offer_all(&query(4, 4, false), &items).page, 3);
        // Descending reverses the keys but keeps tied items in the order met.
        assert_eq!(ids(&offer_all(&query(1, 5, true), &items)), [9, 6, 7, 8, 3]);
        // Page sizes are bounded as the query says: at least 1, at most the maximum.
        let bounded = |per_page| offer_all(&query(1, per_page, false), &items).per_page;
        assert_eq!(bounded(0), 1);
        assert_eq!(bounded(100_000), ListQuery::MAX_PER_PAGE);
        let defaults = offer_all(&ListQuery::default(), &items);
        assert_eq!((defaults.page, defaults.per_page, defaults.items.len()), (1, ListQuery::DEFAULT_PER_PAGE, 10));
        // A page number of 0 is page 1; a huge one the last page, without overflowing.
        assert_eq!(offer_all(&query(0, 4, false), &items).page, 1);
        assert_eq!(ids(&offer_all(&query(usize::MAX, 4, false), &items)), [8, 9]);
    }

    /// Each group makes rows of at most `page × per_page` of its items: a
    /// first page of 2 out of 1,000 items in two groups makes 4 rows.
    #[test]
    fn partial_page_makes_rows_only_for_what_can_land_on_the_page() {
        let made = Cell::new(0);
        let mut partial = PartialPage::new(&query(1, 2, true));
        for group in [0..500_u64, 500..1000] {
            partial.offer(group.map(|n| (n % 7, n)), |n| {
                made.set(made.get() + 1);
                n
            });
        }
        let page = partial.finish(|a, b| (a % 7).cmp(&(b % 7)));
        assert_eq!(made.get(), 4);
        assert_eq!((page.items, page.total), (vec![6, 13], 1000));
    }
}
