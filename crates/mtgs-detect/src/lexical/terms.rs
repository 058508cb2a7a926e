//! An inverted index over description terms, answering "which registered tools share
//! the most informative words with this one" by visiting posting lists rarest first
//! under a fixed budget, never by scanning the registry.

use std::hash::BuildHasher;

use rustc_hash::{FxBuildHasher, FxHashMap};

use mtgs_core::ServerName;

use super::shared_positions;
use crate::stage::ToolIdx;

/// Postings one query may visit. Rare terms are visited first, so the budget cuts only
/// the most common words, which say least about a pair.
pub const POSTING_BUDGET: usize = 20_000;
/// Candidates scored exactly after accumulation.
pub const MAX_CANDIDATES: usize = 64;

/// A server's own vocabulary: its tools, and how many of them use each term.
#[derive(Debug, Default, Clone)]
struct ServerTerms {
    tools: usize,
    counts: FxHashMap<TermId, usize>,
}

/// A term as the index keys it: a 64-bit hash of its text. Comparing and looking up
/// integers instead of strings is what makes scoring a pair cheap; two of a registry's
/// hundred thousand terms share a hash with odds of about one in a billion, and a
/// collision would only merge two words' weights.
pub type TermId = u64;

/// The [`TermId`] of `term`.
pub fn term_id(term: &str) -> TermId {
    FxBuildHasher.hash_one(term)
}

/// Terms with their ids, ordered by id and unique (the ids are what [`TermIndex`] takes;
/// two terms sharing an id are one).
pub fn by_id(terms: Vec<String>) -> (Vec<TermId>, Vec<String>) {
    let mut keyed: Vec<(TermId, String)> = terms.into_iter().map(|term| (term_id(&term), term)).collect();
    keyed.sort_unstable_by_key(|(id, _)| *id);
    keyed.dedup_by_key(|(id, _)| *id);
    keyed.into_iter().unzip()
}

/// Within one server, a term that at least this share of its tools use is the server's
/// house vocabulary ("GitHub repository"), not a clue to which tool does what.
pub const HOUSE_TERM_SHARE: f64 = 0.3;
/// Servers with fewer tools than this have no house vocabulary to speak of.
pub const HOUSE_TERM_MIN_TOOLS: usize = 5;

/// Per-thread scratch for [`TermIndex::candidates`], kept between calls: a query touches
/// up to [`POSTING_BUDGET`] tools, and buffers that large allocated per query went to the
/// kernel and back each time (page faults were a tenth of an analysis).
#[derive(Default)]
struct Scratch {
    /// Accumulated weight per slot; zero everywhere between calls.
    weights: Vec<f64>,
    /// Slots with a weight, to read back and reset.
    touched: Vec<ToolIdx>,
    ranked: Vec<(ToolIdx, f64)>,
    /// The weights of the tools met, to find the [`MAX_CANDIDATES`]-th largest.
    met: Vec<f64>,
}

/// The [`MAX_CANDIDATES`]-th largest of `weights` (at least that many), using `buffer`.
fn kth_largest(weights: impl Iterator<Item = f64>, buffer: &mut Vec<f64>) -> f64 {
    buffer.clear();
    buffer.extend(weights);
    let (_, kth, _) = buffer.select_nth_unstable_by(MAX_CANDIDATES - 1, |a, b| b.total_cmp(a));
    *kth
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[derive(Debug, Default, Clone)]
pub struct TermIndex {
    postings: FxHashMap<TermId, Vec<ToolIdx>>,
    tools: usize,
    servers: FxHashMap<ServerName, ServerTerms>,
}

/// The result of a query: candidates by accumulated weight, and whether the budget cut
/// the search short.
#[derive(Debug, Default)]
pub struct TermCandidates {
    pub tools: Vec<ToolIdx>,
    pub truncated: bool,
}

impl TermIndex {
    pub fn insert(&mut self, idx: ToolIdx, server: &ServerName, terms: &[TermId]) {
        for term in terms {
            self.postings.entry(*term).or_default().push(idx);
        }
        self.tools += 1;
        let house = self.servers.entry(server.clone()).or_default();
        house.tools += 1;
        for term in terms {
            *house.counts.entry(*term).or_default() += 1;
        }
    }

    pub fn remove(&mut self, idx: ToolIdx, server: &ServerName, terms: &[TermId]) {
        if let Some(house) = self.servers.get_mut(server) {
            house.tools = house.tools.saturating_sub(1);
            for term in terms {
                if let Some(count) = house.counts.get_mut(term) {
                    *count = count.saturating_sub(1);
                }
            }
            if house.tools == 0 {
                self.servers.remove(server);
            }
        }
        for term in terms {
            if let Some(list) = self.postings.get_mut(term) {
                list.retain(|other| *other != idx);
                if list.is_empty() {
                    self.postings.remove(term);
                }
            }
        }
        self.tools = self.tools.saturating_sub(1);
    }

    /// Inverse document frequency, `ln(1 + (N + 1) / (df + 1))`: high for rare terms,
    /// and smoothed so that in a registry of three tools a word two of them share is not
    /// discounted as if it were common.
    pub fn idf_of(&self, term: TermId) -> f64 {
        let frequency = self.postings.get(&term).map_or(0, Vec::len);
        (1.0 + (self.tools as f64 + 1.0) / (frequency as f64 + 1.0)).ln()
    }

    /// Tools sharing informative terms with `terms`, best first, skipping `skip`: the
    /// [`MAX_CANDIDATES`] with the largest sums of shared terms' IDF², over the posting
    /// lists that fit [`POSTING_BUDGET`] (rarest first).
    ///
    /// Once the best [`MAX_CANDIDATES`] tools met so far each hold more weight than all
    /// the lists still to visit add up to, a tool not met yet cannot overtake them: the
    /// remaining (common, long) lists then only add to the tools already met, instead of
    /// enrolling thousands more that would be ranked and dropped. The answer is the same.
    pub fn candidates(&self, terms: &[TermId], skip: &dyn Fn(ToolIdx) -> bool) -> TermCandidates {
        let mut lists: Vec<(&Vec<ToolIdx>, f64)> = terms
            .iter()
            .filter_map(|term| {
                let idf = self.idf_of(*term);
                self.postings.get(term).map(|list| (list, idf * idf))
            })
            .collect();
        lists.sort_by_key(|(list, _)| list.len());
        // The budget admits a prefix of the lists, shortest first.
        let mut visited = 0;
        let within = lists
            .iter()
            .position(|(list, _)| {
                visited += list.len();
                visited > POSTING_BUDGET
            })
            .unwrap_or(lists.len());
        let truncated = within < lists.len();
        lists.truncate(within);
        // What the lists from each position on add up to, at most, for one tool.
        let mut ahead: Vec<f64> = vec![0.0; lists.len() + 1];
        for position in (0..lists.len()).rev() {
            ahead[position] = ahead[position + 1] + lists[position].1;
        }
        // Weights accumulate in a dense per-thread array indexed by slot (a hash map
        // spent most of this search growing and hashing).
        let tools = SCRATCH.with_borrow_mut(|scratch| {
            let Scratch { weights, touched, ranked, met } = scratch;
            let mut closed = false;
            for (position, (list, weight)) in lists.iter().enumerate() {
                // Checking costs a pass over the tools met, so it waits for a list at
                // least that long. The margin keeps rounding from closing a tie.
                if !closed && touched.len() >= MAX_CANDIDATES && list.len() >= touched.len() {
                    let bar = kth_largest(touched.iter().map(|idx| weights[idx.0 as usize]), met);
                    closed = bar > ahead[position] * (1.0 + 1e-9);
                }
                if closed {
                    for &idx in list.iter() {
                        if let Some(slot) = weights.get_mut(idx.0 as usize).filter(|slot| **slot != 0.0) {
                            *slot += weight;
                        }
                    }
                    continue;
                }
                for &idx in list.iter() {
                    let slot = idx.0 as usize;
                    if slot >= weights.len() {
                        weights.resize(slot + 1, 0.0);
                    }
                    if weights[slot] == 0.0 {
                        if skip(idx) {
                            continue;
                        }
                        touched.push(idx);
                    }
                    weights[slot] += weight;
                }
            }
            ranked.clear();
            ranked.extend(touched.drain(..).map(|idx| (idx, std::mem::take(&mut weights[idx.0 as usize]))));
            let best_first = |a: &(ToolIdx, f64), b: &(ToolIdx, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
            // Only the best few are kept: select them, then sort just those.
            if ranked.len() > MAX_CANDIDATES {
                ranked.select_nth_unstable_by(MAX_CANDIDATES - 1, best_first);
                ranked.truncate(MAX_CANDIDATES);
            }
            ranked.sort_by(best_first);
            ranked.iter().map(|(idx, _)| *idx).collect()
        });
        TermCandidates { tools, truncated }
    }

    /// Whether `term` is `server`'s house vocabulary (see [`HOUSE_TERM_SHARE`]).
    fn is_house(&self, server: &ServerName, term: TermId) -> bool {
        self.servers.get(server).is_some_and(|house| {
            house.tools >= HOUSE_TERM_MIN_TOOLS
                && house.counts.get(&term).is_some_and(|count| *count as f64 >= HOUSE_TERM_SHARE * house.tools as f64)
        })
    }

    /// Each of `terms` weighed as the index stands: what [`TermIndex::cosine`] takes.
    pub fn weigh(&self, terms: &[TermId]) -> Weights {
        let per_term: Box<[f64]> = terms.iter().map(|term| self.idf_of(*term).powi(2)).collect();
        let norm = per_term.iter().fold(0.0, |sum, weight| sum + weight);
        Weights { per_term, norm }
    }

    /// Cosine similarity of two tools' term sets (`a` and `b`, each with its weights from
    /// [`TermIndex::weigh`] while the index stood as it does now), each term weighted by
    /// its IDF. Between two tools of one server (`same_server`), that server's house
    /// vocabulary is left out.
    pub fn cosine(
        &self,
        (a, weights_a): (&[TermId], &Weights),
        (b, weights_b): (&[TermId], &Weights),
        same_server: Option<&ServerName>,
    ) -> f64 {
        let counts = |term: TermId| same_server.is_none_or(|server| !self.is_house(server, term));
        let shared =
            shared_positions(a, b).filter(|(i, _)| counts(a[*i])).fold(0.0, |sum, (i, _)| sum + weights_a.per_term[i]);
        // Across servers every term counts, so the norms are the weights' sums; within one,
        // they are summed again without the house terms.
        let norm = |terms: &[TermId], weights: &Weights| match same_server {
            None => weights.norm,
            Some(_) => terms
                .iter()
                .zip(&weights.per_term)
                .filter(|(term, _)| counts(**term))
                .fold(0.0, |sum, (_, weight)| sum + weight),
        };
        let (norm_a, norm_b) = (norm(a, weights_a), norm(b, weights_b));
        if norm_a == 0.0 || norm_b == 0.0 {
            return 0.0;
        }
        shared / (norm_a.sqrt() * norm_b.sqrt())
    }
}

/// A tool's terms weighed by a [`TermIndex`]: each term's IDF², in the order of its term
/// ids, and their sum. Good until the index changes.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    per_term: Box<[f64]>,
    norm: f64,
}

/// Terms two tools share: `a`'s ids and terms in id order (as a prepared tool holds
/// them) against `b`'s ids, each shared term with its id.
pub fn shared_terms<'a>(
    (a, terms): (&'a [TermId], &'a [String]),
    b: &'a [TermId],
) -> impl Iterator<Item = (TermId, &'a String)> {
    shared_positions(a, b).filter_map(|(i, _)| Some((a[i], terms.get(i)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search without the early close: every list within the budget enrols the tools
    /// it names.
    fn every_tool_enrolled(index: &TermIndex, terms: &[TermId], skip: &dyn Fn(ToolIdx) -> bool) -> Vec<ToolIdx> {
        let mut lists: Vec<(&Vec<ToolIdx>, f64)> =
            terms.iter().filter_map(|term| index.postings.get(term).map(|list| (list, index.idf_of(*term)))).collect();
        lists.sort_by_key(|(list, _)| list.len());
        let mut visited = 0;
        let mut weights: FxHashMap<ToolIdx, f64> = FxHashMap::default();
        let mut order: Vec<ToolIdx> = Vec::new();
        for (list, idf) in lists {
            if visited + list.len() > POSTING_BUDGET {
                break;
            }
            visited += list.len();
            for &idx in list {
                if skip(idx) {
                    continue;
                }
                let weight = weights.entry(idx).or_insert_with(|| {
                    order.push(idx);
                    0.0
                });
                *weight += idf * idf;
            }
        }
        let mut ranked: Vec<(ToolIdx, f64)> = order.iter().map(|idx| (*idx, weights[idx])).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(MAX_CANDIDATES);
        ranked.into_iter().map(|(idx, _)| idx).collect()
    }

    #[test]
    fn closing_the_search_early_finds_the_same_candidates_as_enrolling_every_tool() {
        // 6,000 tools over a vocabulary where word w is used by about 1 tool in w + 1
        // (a few rare words, many common ones), from a fixed linear congruential sequence.
        let mut state: u64 = 7;
        let mut next = move |below: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % below
        };
        let server = ServerName::parse("s").unwrap_or_else(|_| unreachable!());
        let mut index = TermIndex::default();
        let mut tools: Vec<Vec<TermId>> = Vec::new();
        for tool in 0..6_000u32 {
            let mut terms: Vec<TermId> = (0..400u64).filter(|word| next(word + 2) == 0).collect();
            terms.push(1_000 + next(3_000));
            terms.sort_unstable();
            terms.dedup();
            index.insert(ToolIdx(tool), &server, &terms);
            tools.push(terms);
        }
        let mut closed_early = 0;
        for (query, terms) in tools.iter().enumerate().step_by(37) {
            let skip = |idx: ToolIdx| idx.0 as usize == query || idx.0 % 11 == 3;
            let expected = every_tool_enrolled(&index, terms, &skip);
            let found = index.candidates(terms, &skip);
            assert_eq!(found.tools, expected, "query tool {query}");
            closed_early += usize::from(found.tools.len() == MAX_CANDIDATES);
        }
        assert!(closed_early > 100, "only {closed_early} queries had a full list of candidates");
    }
}
