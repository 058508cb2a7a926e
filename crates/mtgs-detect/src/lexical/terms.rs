//! An inverted index over description terms, answering "which registered tools share
//! the most informative words with this one" by visiting posting lists rarest first
//! under a fixed budget, never by scanning the registry.

use std::collections::HashMap;

use crate::stage::ToolIdx;

/// Postings one query may visit. Rare terms are visited first, so the budget cuts only
/// the most common words, which say least about a pair.
pub const POSTING_BUDGET: usize = 20_000;
/// Candidates scored exactly after accumulation.
pub const MAX_CANDIDATES: usize = 64;

#[derive(Debug, Default, Clone)]
pub struct TermIndex {
    postings: HashMap<String, Vec<ToolIdx>>,
    tools: usize,
}

/// The result of a query: candidates by accumulated weight, and whether the budget cut
/// the search short.
#[derive(Debug, Default)]
pub struct TermCandidates {
    pub tools: Vec<ToolIdx>,
    pub truncated: bool,
}

impl TermIndex {
    pub fn insert(&mut self, idx: ToolIdx, terms: &[String]) {
        for term in terms {
            self.postings.entry(term.clone()).or_default().push(idx);
        }
        self.tools += 1;
    }

    pub fn remove(&mut self, idx: ToolIdx, terms: &[String]) {
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

    /// How many registered tools hold `term`.
    pub fn document_frequency(&self, term: &str) -> usize {
        self.postings.get(term).map_or(0, Vec::len)
    }

    /// Inverse document frequency, `ln(1 + (N + 1) / (df + 1))`: high for rare terms,
    /// and smoothed so that in a registry of three tools a word two of them share is not
    /// discounted as if it were common.
    pub fn idf(&self, term: &str) -> f64 {
        (1.0 + (self.tools as f64 + 1.0) / (self.document_frequency(term) as f64 + 1.0)).ln()
    }

    /// Tools sharing informative terms with `terms`, best first, skipping `skip`.
    pub fn candidates(&self, terms: &[String], skip: &dyn Fn(ToolIdx) -> bool) -> TermCandidates {
        let mut lists: Vec<(&Vec<ToolIdx>, f64)> =
            terms.iter().filter_map(|term| self.postings.get(term).map(|list| (list, self.idf(term)))).collect();
        lists.sort_by_key(|(list, _)| list.len());
        let mut weights: HashMap<ToolIdx, f64> = HashMap::new();
        let mut visited = 0;
        let mut truncated = false;
        for (list, idf) in lists {
            if visited + list.len() > POSTING_BUDGET {
                truncated = true;
                break;
            }
            visited += list.len();
            for &idx in list {
                if !skip(idx) {
                    *weights.entry(idx).or_default() += idf * idf;
                }
            }
        }
        let mut ranked: Vec<(ToolIdx, f64)> = weights.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(MAX_CANDIDATES);
        TermCandidates { tools: ranked.into_iter().map(|(idx, _)| idx).collect(), truncated }
    }

    /// Cosine similarity of two tools' term sets, each term weighted by its IDF.
    pub fn cosine(&self, a: &[String], b: &[String]) -> f64 {
        let norm = |terms: &[String]| terms.iter().map(|t| self.idf(t).powi(2)).sum::<f64>().sqrt();
        let (norm_a, norm_b) = (norm(a), norm(b));
        if norm_a == 0.0 || norm_b == 0.0 {
            return 0.0;
        }
        let shared: f64 = shared_terms(a, b).map(|t| self.idf(t).powi(2)).sum();
        shared / (norm_a * norm_b)
    }
}

/// Terms two sorted term lists share.
pub fn shared_terms<'a>(a: &'a [String], b: &'a [String]) -> impl Iterator<Item = &'a String> {
    a.iter().filter(move |term| b.binary_search(term).is_ok())
}
