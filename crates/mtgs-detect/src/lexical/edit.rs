//! An index answering "which registered names are within edit distance 2 of this one"
//! without scanning them all: PassJoin (Li, Deng, Feng, VLDB 2011).
//!
//! A string of length L is cut into τ+1 = 3 segments. τ edits can touch at most τ of
//! them, so any string within distance τ holds one segment unchanged, shifted by at most
//! τ positions. The index maps (L, segment number, segment) to strings; a query looks up
//! the few substrings of itself at those positions for each length within τ of its own,
//! then verifies the candidates. Memory is three entries and a copy of each name.
//!
//! Verifying matters at scale: short segments (`get`, `lis`) are shared by most names of
//! a length, so the unverified superset grows with the registry (163 per name at 100k
//! tools, of which a few are near names), and every pair it holds would be assessed.

use std::hash::BuildHasher;

use rustc_hash::{FxBuildHasher, FxHashMap as HashMap, FxHashSet as HashSet};

use crate::stage::ToolIdx;

/// The largest distance the index answers for.
pub const MAX_DISTANCE: usize = 2;
const SEGMENTS: usize = MAX_DISTANCE + 1;

#[derive(Debug, Default, Clone)]
pub struct EditIndex {
    segments: HashMap<(usize, usize, u64), Vec<ToolIdx>>,
    lengths: HashMap<usize, usize>,
    /// Each indexed name, by tool slot: what candidates are verified against.
    names: Vec<Option<Box<[char]>>>,
}

impl EditIndex {
    pub fn insert(&mut self, idx: ToolIdx, name: &[char]) {
        for (number, start, length) in segmentation(name.len()) {
            let key = (name.len(), number, hash_chars(&name[start..start + length]));
            self.segments.entry(key).or_default().push(idx);
        }
        *self.lengths.entry(name.len()).or_default() += 1;
        let slot = idx.0 as usize;
        if self.names.len() <= slot {
            self.names.resize(slot + 1, None);
        }
        self.names[slot] = Some(name.into());
    }

    pub fn remove(&mut self, idx: ToolIdx, name: &[char]) {
        for (number, start, length) in segmentation(name.len()) {
            let key = (name.len(), number, hash_chars(&name[start..start + length]));
            if let Some(list) = self.segments.get_mut(&key) {
                list.retain(|other| *other != idx);
                if list.is_empty() {
                    self.segments.remove(&key);
                }
            }
        }
        if let Some(count) = self.lengths.get_mut(&name.len()) {
            *count -= 1;
            if *count == 0 {
                self.lengths.remove(&name.len());
            }
        }
        if let Some(slot) = self.names.get_mut(idx.0 as usize) {
            *slot = None;
        }
    }

    /// Tools whose name is within [`MAX_DISTANCE`] of `query`.
    pub fn candidates(&self, query: &[char]) -> HashSet<ToolIdx> {
        let mut found = self.sharing_a_segment(query);
        found.retain(|idx| {
            let name = self.names.get(idx.0 as usize).and_then(Option::as_deref);
            name.is_some_and(|name| bounded_distance(query, name, MAX_DISTANCE).is_some())
        });
        found
    }

    /// Tools whose name holds one of `query`'s segments where a name within
    /// [`MAX_DISTANCE`] would: a superset of the answer.
    fn sharing_a_segment(&self, query: &[char]) -> HashSet<ToolIdx> {
        let mut found = HashSet::default();
        let low = query.len().saturating_sub(MAX_DISTANCE);
        for length in low..=query.len() + MAX_DISTANCE {
            if !self.lengths.contains_key(&length) {
                continue;
            }
            for (number, start, segment_length) in segmentation(length) {
                if segment_length > query.len() {
                    continue;
                }
                let first = start.saturating_sub(MAX_DISTANCE);
                let last = (start + MAX_DISTANCE).min(query.len() - segment_length);
                for position in first..=last {
                    let key = (length, number, hash_chars(&query[position..position + segment_length]));
                    if let Some(list) = self.segments.get(&key) {
                        found.extend(list.iter().copied());
                    }
                }
            }
        }
        found
    }
}

/// (segment number, start, length) of the SEGMENTS segments of a string of `length`:
/// the later segments take the remainder, one extra character each.
fn segmentation(length: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let base = length / SEGMENTS;
    let longer = length % SEGMENTS;
    let mut start = 0;
    (0..SEGMENTS).map(move |number| {
        let segment_length = if number >= SEGMENTS - longer { base + 1 } else { base };
        let segment = (number, start, segment_length);
        start += segment_length;
        segment
    })
}

fn hash_chars(chars: &[char]) -> u64 {
    FxBuildHasher.hash_one(chars)
}

/// Levenshtein distance if it is at most `bound`, else `None`; stops early once every
/// cell of a row exceeds the bound.
///
/// Every assessed pair of names asks this (most are nowhere near each other), so it does
/// not allocate for names up to [`INLINE_ROW`] characters once their shared first and
/// last characters (which never change the distance) are set aside.
pub fn bounded_distance(a: &[char], b: &[char], bound: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > bound {
        return None;
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    if a.is_empty() || b.is_empty() {
        let distance = a.len().max(b.len());
        return (distance <= bound).then_some(distance);
    }
    let width = b.len() + 1;
    let mut inline = [0usize; 2 * INLINE_ROW];
    let mut heap = Vec::new();
    let rows: &mut [usize] = if width <= INLINE_ROW {
        &mut inline[..2 * width]
    } else {
        heap.resize(2 * width, 0);
        &mut heap
    };
    let (mut previous, mut current) = rows.split_at_mut(width);
    for (j, cell) in previous.iter_mut().enumerate() {
        *cell = j;
    }
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        let mut row_min = current[0];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
            row_min = row_min.min(current[j + 1]);
        }
        if row_min > bound {
            return None;
        }
        std::mem::swap(&mut previous, &mut current);
    }
    let distance = previous[b.len()];
    (distance <= bound).then_some(distance)
}

/// Row length [`bounded_distance`] keeps on the stack.
const INLINE_ROW: usize = 64;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn chars(text: &str) -> Vec<char> {
        text.chars().collect()
    }

    #[test]
    fn segments_cover_the_string() {
        for length in 0..12 {
            let parts: Vec<_> = segmentation(length).collect();
            assert_eq!(parts.iter().map(|(_, _, l)| l).sum::<usize>(), length);
            assert_eq!(parts.last().map(|(_, s, l)| s + l), Some(length));
        }
    }

    #[test]
    fn bounded_distance_matches_plain_levenshtein() {
        assert_eq!(bounded_distance(&chars("getissue"), &chars("getissues"), 2), Some(1));
        assert_eq!(bounded_distance(&chars("search"), &chars("serach"), 2), Some(2));
        assert_eq!(bounded_distance(&chars("createissue"), &chars("closeissue"), 2), None);
    }

    proptest! {
        /// The distance is Levenshtein's within the bound and `None` beyond it, however
        /// long the names (past the inline rows too) and wherever they differ.
        #[test]
        fn bounded_distance_is_levenshtein_within_the_bound(
            a in "[ab_]{0,80}",
            b in "[ab_]{0,80}",
            bound in 0usize..5,
        ) {
            let plain = strsim::levenshtein(&a, &b);
            prop_assert_eq!(bounded_distance(&chars(&a), &chars(&b), bound), (plain <= bound).then_some(plain));
            prop_assert_eq!(bounded_distance(&chars(&a), &chars(&b), usize::MAX), Some(plain));
        }

        /// Names that differ in a few characters somewhere in the middle (the pairs whose
        /// distance is within the bound).
        #[test]
        fn bounded_distance_of_names_differing_in_the_middle(
            (prefix, suffix) in ("[ab_]{0,70}", "[ab_]{0,10}"),
            (middle_a, middle_b) in ("[ab_]{0,3}", "[ab_]{0,3}"),
            bound in 0usize..5,
        ) {
            let (a, b) = (format!("{prefix}{middle_a}{suffix}"), format!("{prefix}{middle_b}{suffix}"));
            let plain = strsim::levenshtein(&a, &b);
            prop_assert_eq!(bounded_distance(&chars(&a), &chars(&b), bound), (plain <= bound).then_some(plain));
        }

        /// The index finds exactly what a scan of all names with the plain distance
        /// finds: it misses none and verifies what its segments suggest.
        #[test]
        fn index_finds_what_a_full_scan_finds(
            names in proptest::collection::vec("[abc_]{0,9}", 1..40),
            query in "[abc_]{0,9}",
        ) {
            let mut index = EditIndex::default();
            for (i, name) in names.iter().enumerate() {
                index.insert(ToolIdx(i as u32), &chars(name));
            }
            let query = chars(&query);
            let candidates = index.candidates(&query);
            for (i, name) in names.iter().enumerate() {
                let near = strsim::levenshtein(&query.iter().collect::<String>(), name) <= MAX_DISTANCE;
                prop_assert_eq!(candidates.contains(&ToolIdx(i as u32)), near, "{}", name);
            }
            // Removal takes a name out of every answer.
            index.remove(ToolIdx(0), &chars(&names[0]));
            prop_assert!(!index.candidates(&query).contains(&ToolIdx(0)));
        }
    }
}
