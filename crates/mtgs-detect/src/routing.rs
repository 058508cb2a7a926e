//! Routing simulation: which tool an agent would call for a request, given the tools it
//! sees. A [`RoutingIndex`] shortlists the tools relevant to a request (BM25 over each
//! tool's name, title, description, parameters and server, plus embedding similarity when
//! vectors are attached); a [`Router`] picks one of the shortlist per trial; a majority
//! vote over trials gives the routed tool.
//!
//! The default [`LocalRouter`] is a retrieval-based proxy, not a language model: it turns
//! the relevance scores into a probability distribution (a softmax at a calibrated
//! temperature) and samples from it with seeded noise. LLM routers (outside this crate)
//! implement the same trait and receive the shortlist as real tool definitions.

use std::collections::HashMap;
use std::fmt::Debug;

use mtgs_core::{ToolKey, fnv1a};

use crate::prepared::PreparedTool;
use crate::semantic::{Embedding, VectorIndex, cosine};
use crate::stage::{ToolIdx, ToolTable};
use crate::text;

/// BM25's term-frequency saturation and length normalisation (the usual values).
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Field weights: a word in the name says more about what a tool is for than one in the
/// description's tenth sentence.
const NAME_WEIGHT: f32 = 3.0;
const TITLE_WEIGHT: f32 = 2.0;
/// A request that names the vendor ("in Todoist") means that server's tools: as strong as
/// a name word (hosts show agents `server__tool`).
const SERVER_WEIGHT: f32 = 3.0;
const PARAMETER_WEIGHT: f32 = 0.5;
/// Description characters indexed.
const DESCRIPTION_CHARS: usize = 1_000;
/// Postings one query may visit, rarest terms first.
const POSTING_BUDGET: usize = 50_000;

/// How requests are routed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoutingSettings {
    /// Weight of embedding similarity against BM25 relevance in a tool's score (0 to 1);
    /// BM25 alone when either side has no vector. Tuned on the eval tuning half's probes:
    /// 0 and 0.1 route best (0.614), 0.5 gives 0.514 and 1 gives 0.443
    /// (`docs/behavioural-calibration.md`).
    pub embedding_weight: f32,
    /// Softmax temperature of the local router: lower is more decisive.
    pub temperature: f32,
    /// Tools a router chooses among (the most relevant by score).
    pub shortlist: usize,
    /// Trials per request; the routed tool is the majority vote.
    pub trials: u32,
    /// Seed of the local router's sampling.
    pub seed: u64,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self { embedding_weight: 0.1, temperature: 0.03, shortlist: 24, trials: 3, seed: 20_261_124 }
    }
}

/// A request to route: its text, the text's stems, and its embedding when computed.
#[derive(Debug, Clone)]
pub struct RoutingQuery {
    pub text: String,
    stems: Vec<(String, f32)>,
    pub embedding: Option<Embedding>,
}

impl RoutingQuery {
    pub fn new(text: impl Into<String>, embedding: Option<Embedding>) -> Self {
        let text = text.into();
        let mut counts: HashMap<String, f32> = HashMap::new();
        for stem in text::stems_with_action_classes(&text) {
            *counts.entry(stem).or_default() += 1.0;
        }
        let mut stems: Vec<(String, f32)> = counts.into_iter().collect();
        stems.sort_by(|a, b| a.0.cmp(&b.0));
        Self { text, stems, embedding }
    }
}

/// One tool a router may pick, with its relevance to the request.
#[derive(Debug, Clone, Copy)]
pub struct Contender<'a> {
    pub tool: &'a PreparedTool,
    pub score: f32,
}

/// A tool considered beside the shortlist, with its text read once.
#[derive(Debug, Clone)]
pub struct Extra<'a> {
    pub tool: &'a PreparedTool,
    doc: Doc,
}

/// A tool's indexed text: weighted term frequencies (sorted by term) and length.
#[derive(Debug, Clone)]
struct Doc {
    terms: Vec<(String, f32)>,
    len: f32,
}

impl Doc {
    fn of(tool: &PreparedTool) -> Self {
        let mut counts: HashMap<String, f32> = HashMap::new();
        let mut add = |text: &str, weight: f32| {
            for stem in text::stems_with_action_classes(text) {
                *counts.entry(stem).or_default() += weight;
            }
        };
        add(&tool.words.join(" "), NAME_WEIGHT);
        add(&text::name_words(tool.key.server.as_str()).join(" "), SERVER_WEIGHT);
        if let Some(title) = &tool.def.title {
            add(title, TITLE_WEIGHT);
        }
        if let Some(description) = &tool.def.description {
            add(&description.chars().take(DESCRIPTION_CHARS).collect::<String>(), 1.0);
        }
        for name in tool.params.keys() {
            add(&text::name_words(name).join(" "), PARAMETER_WEIGHT);
        }
        let len = counts.values().sum();
        let mut terms: Vec<(String, f32)> = counts.into_iter().collect();
        terms.sort_by(|a, b| a.0.cmp(&b.0));
        Self { terms, len }
    }

    fn frequency(&self, term: &str) -> f32 {
        self.terms.binary_search_by(|(t, _)| t.as_str().cmp(term)).map_or(0.0, |at| self.terms[at].1)
    }
}

/// The relevance index over one environment's tools.
#[derive(Debug)]
pub struct RoutingIndex {
    docs: HashMap<ToolIdx, Doc>,
    postings: HashMap<String, Vec<(ToolIdx, f32)>>,
    total_len: f64,
    vectors: Box<dyn VectorIndex>,
    settings: RoutingSettings,
}

impl RoutingIndex {
    pub fn new(vectors: Box<dyn VectorIndex>, settings: RoutingSettings) -> Self {
        Self { docs: HashMap::new(), postings: HashMap::new(), total_len: 0.0, vectors, settings }
    }

    pub fn settings(&self) -> &RoutingSettings {
        &self.settings
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn insert(&mut self, idx: ToolIdx, tool: &PreparedTool) {
        self.remove(idx);
        self.index_doc(idx, tool);
        if let Some(vector) = &tool.embedding {
            self.vectors.insert(idx, vector);
        }
    }

    pub fn insert_many(&mut self, tools: &[(ToolIdx, &PreparedTool)]) {
        for (idx, tool) in tools {
            self.remove(*idx);
            self.index_doc(*idx, tool);
        }
        let vectors: Vec<(ToolIdx, Embedding)> =
            tools.iter().filter_map(|(idx, tool)| tool.embedding.clone().map(|vector| (*idx, vector))).collect();
        self.vectors.insert_many(vectors);
    }

    fn index_doc(&mut self, idx: ToolIdx, tool: &PreparedTool) {
        let doc = Doc::of(tool);
        for (term, frequency) in &doc.terms {
            self.postings.entry(term.clone()).or_default().push((idx, *frequency));
        }
        self.total_len += f64::from(doc.len);
        self.docs.insert(idx, doc);
    }

    pub fn remove(&mut self, idx: ToolIdx) {
        let Some(doc) = self.docs.remove(&idx) else { return };
        for (term, _) in &doc.terms {
            if let Some(list) = self.postings.get_mut(term) {
                list.retain(|(other, _)| *other != idx);
                if list.is_empty() {
                    self.postings.remove(term);
                }
            }
        }
        self.total_len -= f64::from(doc.len);
        self.vectors.remove(idx);
    }

    fn idf(&self, term: &str) -> f32 {
        let n = self.docs.len() as f32;
        let df = self.postings.get(term).map_or(0, Vec::len) as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    fn average_len(&self) -> f32 {
        if self.docs.is_empty() { 1.0 } else { (self.total_len / self.docs.len() as f64) as f32 }
    }

    /// BM25 of `doc` for `query`, divided by the most any document could score (every
    /// query term saturated), so scores of different requests are on one 0–1 scale.
    fn lexical(&self, query: &RoutingQuery, doc: &Doc) -> f32 {
        let average = self.average_len();
        let (mut score, mut ceiling) = (0.0, 0.0);
        for (term, _) in &query.stems {
            let idf = self.idf(term);
            ceiling += idf * (K1 + 1.0);
            let tf = doc.frequency(term);
            if tf > 0.0 {
                score += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * doc.len / average));
            }
        }
        if ceiling > 0.0 { score / ceiling } else { 0.0 }
    }

    /// A tool prepared to be considered beside the shortlist (see [`RoutingIndex::shortlist`]).
    /// A registered tool (the very value in `tools`) reuses its indexed text.
    pub fn extra<'a>(&self, tools: &ToolTable, tool: &'a PreparedTool) -> Extra<'a> {
        let registered = tools
            .find(&tool.key)
            .filter(|idx| tools.get(*idx).is_some_and(|stored| std::ptr::eq(stored, tool)))
            .and_then(|idx| self.docs.get(&idx));
        Extra { tool, doc: registered.cloned().unwrap_or_else(|| Doc::of(tool)) }
    }

    /// An extra tool's relevance to a request: BM25 blended with embedding similarity.
    pub fn score(&self, query: &RoutingQuery, extra: &Extra<'_>) -> f32 {
        self.blend(query, &extra.doc, extra.tool.embedding.as_ref())
    }

    fn blend(&self, query: &RoutingQuery, doc: &Doc, vector: Option<&Embedding>) -> f32 {
        let lexical = self.lexical(query, doc);
        match (&query.embedding, vector) {
            (Some(a), Some(b)) => {
                let weight = self.settings.embedding_weight;
                weight * cosine(a.as_slice(), b.as_slice()).max(0.0) + (1.0 - weight) * lexical
            }
            _ => lexical,
        }
    }

    /// The `k` registered tools most relevant to `query`, best first, plus `extras`
    /// (tools not registered, or registered tools that must be considered whatever their
    /// rank: a request's own tool, a pair under test). An extra replaces a registered
    /// tool with its key; `skip` leaves registered tools out.
    pub fn shortlist<'a>(
        &self,
        tools: &'a ToolTable,
        query: &RoutingQuery,
        k: usize,
        extras: &[Extra<'a>],
        skip: &dyn Fn(ToolIdx) -> bool,
    ) -> Vec<Contender<'a>> {
        let replaced = |idx: ToolIdx| {
            skip(idx) || tools.get(idx).is_some_and(|tool| extras.iter().any(|extra| extra.tool.key == tool.key))
        };
        let mut pool: Vec<ToolIdx> = self.lexical_candidates(query, k, &replaced);
        if let Some(vector) = &query.embedding {
            pool.extend(self.vectors.nearest(vector, k, &replaced).into_iter().map(|(idx, _)| idx));
        }
        pool.sort_unstable();
        pool.dedup();

        let mut contenders: Vec<Contender<'a>> = pool
            .into_iter()
            .filter_map(|idx| {
                let tool = tools.get(idx)?;
                let doc = self.docs.get(&idx)?;
                Some(Contender { tool, score: self.blend(query, doc, tool.embedding.as_ref()) })
            })
            .collect();
        contenders.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.tool.key.cmp(&b.tool.key)));
        contenders.truncate(k);
        for extra in extras {
            if contenders.iter().any(|contender| contender.tool.key == extra.tool.key) {
                continue;
            }
            contenders.push(Contender { tool: extra.tool, score: self.score(query, extra) });
        }
        contenders.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.tool.key.cmp(&b.tool.key)));
        contenders
    }

    /// Tools by partial BM25 over the query's terms, rarest first, within the budget.
    fn lexical_candidates(&self, query: &RoutingQuery, k: usize, skip: &dyn Fn(ToolIdx) -> bool) -> Vec<ToolIdx> {
        let average = self.average_len();
        let mut terms: Vec<(&str, &Vec<(ToolIdx, f32)>)> = query
            .stems
            .iter()
            .filter_map(|(term, _)| self.postings.get(term).map(|list| (term.as_str(), list)))
            .collect();
        terms.sort_by_key(|(_, list)| list.len());
        let mut accumulated: HashMap<ToolIdx, f32> = HashMap::new();
        let mut visited = 0;
        for (term, list) in terms {
            if visited >= POSTING_BUDGET {
                break;
            }
            let idf = self.idf(term);
            for (idx, tf) in list.iter().take(POSTING_BUDGET - visited) {
                let len = self.docs.get(idx).map_or(average, |doc| doc.len);
                *accumulated.entry(*idx).or_default() +=
                    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / average));
            }
            visited += list.len();
        }
        let mut ranked: Vec<(ToolIdx, f32)> = accumulated.into_iter().filter(|(idx, _)| !skip(*idx)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked.into_iter().map(|(idx, _)| idx).collect()
    }
}

/// Picks the tool an agent would call for a request among the shortlisted contenders.
pub trait Router: Send + Sync + Debug {
    /// Which router and model, as reports name it (`local-retrieval`, `anthropic:claude-…`).
    fn id(&self) -> &str;

    /// What the router is, in a sentence, for reports.
    fn describe(&self) -> &str;

    /// The contender picked in one trial (`None`: the model called no tool). Calls may
    /// block (remote routers), so async callers run them on a blocking thread.
    fn choose(
        &self,
        query: &RoutingQuery,
        contenders: &[Contender<'_>],
        trial: u32,
    ) -> Result<Option<usize>, RouteError>;

    /// For a router that picks the contender with the highest score/T plus noise fixed by
    /// (request, trial, tool), that value; lets a simulation prove that a new tool cannot
    /// win a request without routing it. `None` for routers that decide otherwise (LLMs).
    fn perturbed(&self, _query: &RoutingQuery, _trial: u32, _key: &ToolKey, _score: f32) -> Option<f64> {
        None
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The model or provider could not be reached, timed out, or refused.
    #[error("router unavailable: {0}")]
    Unavailable(String),
    /// The model answered with something unusable (a tool that was not offered).
    #[error("router answered badly: {0}")]
    BadResponse(String),
}

/// The offline router: a softmax over relevance scores at `temperature`, sampled by the
/// Gumbel-max trick with noise seeded by the request, the trial and the tool. Because each
/// tool's noise depends on nothing else, adding a tool changes a trial's pick only if the
/// new tool wins it.
#[derive(Debug, Clone)]
pub struct LocalRouter {
    temperature: f32,
    seed: u64,
}

pub const LOCAL_ROUTER_ID: &str = "local-retrieval";

impl LocalRouter {
    pub fn new(settings: &RoutingSettings) -> Self {
        Self { temperature: settings.temperature.max(1e-4), seed: settings.seed }
    }

    fn gumbel(&self, query: &RoutingQuery, trial: u32, key: &ToolKey) -> f64 {
        let hash = fnv1a(&[
            &self.seed.to_le_bytes(),
            &trial.to_le_bytes(),
            query.text.as_bytes(),
            b"\0",
            key.server.as_str().as_bytes(),
            b"/",
            key.name.as_str().as_bytes(),
        ]);
        // A uniform in (0, 1) from the hash's top 53 bits, then the Gumbel transform.
        let mixed = hash ^ (hash >> 29);
        let uniform = ((mixed >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -(-uniform.ln()).ln()
    }
}

impl Router for LocalRouter {
    fn id(&self) -> &str {
        LOCAL_ROUTER_ID
    }

    fn describe(&self) -> &str {
        "retrieval-based proxy (BM25 and embedding similarity, softmax sampling); not an LLM"
    }

    fn choose(
        &self,
        query: &RoutingQuery,
        contenders: &[Contender<'_>],
        trial: u32,
    ) -> Result<Option<usize>, RouteError> {
        Ok(contenders
            .iter()
            .enumerate()
            .filter_map(|(position, contender)| {
                self.perturbed(query, trial, &contender.tool.key, contender.score).map(|value| (position, value))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(position, _)| position))
    }

    fn perturbed(&self, query: &RoutingQuery, trial: u32, key: &ToolKey, score: f32) -> Option<f64> {
        Some(f64::from(score) / f64::from(self.temperature) + self.gumbel(query, trial, key))
    }
}

/// Softmax probabilities of the contenders at `temperature` (the local router's
/// distribution), in the contenders' order.
pub fn probabilities(contenders: &[Contender<'_>], temperature: f32) -> Vec<f64> {
    let temperature = f64::from(temperature.max(1e-4));
    let top = contenders.iter().map(|c| f64::from(c.score)).fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = contenders.iter().map(|c| ((f64::from(c.score) - top) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    weights.into_iter().map(|weight| if total > 0.0 { weight / total } else { 0.0 }).collect()
}

/// Where a request went over its trials.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    /// The majority vote (ties go to the more relevant tool); `None` when most trials
    /// called no tool.
    pub tool: Option<ToolKey>,
    /// Trials that chose `tool`.
    pub votes: u32,
    pub trials: u32,
}

/// Routes `query` among `contenders` `trials` times and takes the majority vote.
pub fn route(
    router: &dyn Router,
    query: &RoutingQuery,
    contenders: &[Contender<'_>],
    trials: u32,
) -> Result<Routed, RouteError> {
    let trials = trials.max(1);
    // Votes per contender position; `contenders.len()` counts "no tool".
    let mut votes = vec![0u32; contenders.len() + 1];
    for trial in 0..trials {
        match router.choose(query, contenders, trial)? {
            Some(position) if position < contenders.len() => votes[position] += 1,
            Some(position) => {
                return Err(RouteError::BadResponse(format!("picked contender {position} of {}", contenders.len())));
            }
            None => votes[contenders.len()] += 1,
        }
    }
    // Contenders are sorted best first, so the first maximum is the more relevant.
    let (position, count) = votes
        .iter()
        .enumerate()
        .fold((0, 0), |best, (position, &count)| if count > best.1 { (position, count) } else { best });
    Ok(Routed { tool: contenders.get(position).map(|contender| contender.tool.key.clone()), votes: count, trials })
}

#[cfg(test)]
mod tests {
    use mtgs_core::{ServerName, ToolDef};
    use serde_json::json;

    use super::*;
    use crate::semantic::ExactIndex;

    fn prepared(server: &str, name: &str, description: &str) -> PreparedTool {
        let def: ToolDef = serde_json::from_value(
            json!({"name": name, "description": description, "inputSchema": {"type": "object"}}),
        )
        .expect("definition");
        PreparedTool::new(ServerName::parse(server).expect("server"), def)
    }

    fn table(tools: Vec<PreparedTool>) -> (ToolTable, RoutingIndex) {
        let mut table = ToolTable::default();
        let mut index = RoutingIndex::new(Box::new(ExactIndex::new(3)), RoutingSettings::default());
        for tool in tools {
            let idx = table.insert(tool);
            index.insert(idx, table.get(idx).expect("inserted"));
        }
        (table, index)
    }

    #[test]
    fn the_tool_whose_words_a_request_uses_ranks_first() {
        let (tools, index) = table(vec![
            prepared("jira", "create_issue", "Create a Jira issue in a project"),
            prepared("slack", "send_message", "Post a message to a Slack channel"),
            prepared("github", "create_pull_request", "Open a pull request on GitHub"),
        ]);
        let query = RoutingQuery::new("Post a message in the Slack announcements channel", None);
        let contenders = index.shortlist(&tools, &query, 10, &[], &|_| false);
        assert_eq!(contenders[0].tool.key.name.as_str(), "send_message", "{contenders:?}");
        let routed = route(&LocalRouter::new(&RoutingSettings::default()), &query, &contenders, 3).expect("routed");
        assert_eq!(routed.tool.as_ref().map(|key| key.name.as_str()), Some("send_message"));
        assert_eq!(routed.trials, 3);
    }

    #[test]
    fn removed_tools_leave_the_index_and_extras_join_the_shortlist() {
        let (mut tools, mut index) = table(vec![
            prepared("jira", "create_issue", "Create a Jira issue in a project"),
            prepared("slack", "send_message", "Post a message to a Slack channel"),
        ]);
        let key = tools.get(ToolIdx(1)).expect("slack").key.clone();
        let (idx, _) = tools.remove(&key).expect("removed");
        index.remove(idx);
        let query = RoutingQuery::new("send a Slack message", None);
        let shortlisted = index.shortlist(&tools, &query, 10, &[], &|_| false);
        assert!(shortlisted.iter().all(|contender| contender.tool.key != key), "{shortlisted:?}");
        let candidate = prepared("teams", "send_chat_message", "Send a message to a Teams chat");
        let with_extra = index.shortlist(&tools, &query, 10, &[index.extra(&tools, &candidate)], &|_| false);
        assert_eq!(with_extra[0].tool.key, candidate.key, "{with_extra:?}");
    }

    #[test]
    fn the_local_router_samples_the_softmax_and_a_new_tool_only_changes_trials_it_wins() {
        let a = prepared("a", "search_web", "Search the web");
        let b = prepared("b", "web_search", "Search the web");
        let c = prepared("c", "find_pages", "Find pages");
        let router = LocalRouter::new(&RoutingSettings { temperature: 1.0, ..RoutingSettings::default() });
        let contenders = [Contender { tool: &a, score: 0.5 }, Contender { tool: &b, score: 0.5 }];
        // Equal scores at a high temperature: over many requests each side wins about half.
        let wins = (0..400)
            .filter(|n| {
                let query = RoutingQuery::new(format!("request {n}"), None);
                router.choose(&query, &contenders, 0) == Ok(Some(0))
            })
            .count();
        assert!((140..=260).contains(&wins), "{wins}");
        let probabilities = probabilities(&contenders, 1.0);
        assert!((probabilities[0] - 0.5).abs() < 1e-9);

        let with_c = [contenders[0], contenders[1], Contender { tool: &c, score: 0.4 }];
        for n in 0..200 {
            let query = RoutingQuery::new(format!("request {n}"), None);
            let before = router.choose(&query, &contenders, 1).expect("chosen").expect("a tool");
            let after = router.choose(&query, &with_c, 1).expect("chosen").expect("a tool");
            assert!(after == before || after == 2, "adding c moved a trial from {before} to {after}");
        }
    }

    #[test]
    fn majority_vote_counts_no_tool_and_rejects_a_contender_never_offered() {
        #[derive(Debug)]
        struct Scripted(Vec<Option<usize>>);
        impl Router for Scripted {
            fn id(&self) -> &str {
                "scripted"
            }
            fn describe(&self) -> &str {
                "test"
            }
            fn choose(&self, _: &RoutingQuery, _: &[Contender<'_>], trial: u32) -> Result<Option<usize>, RouteError> {
                Ok(self.0[trial as usize])
            }
        }
        let a = prepared("a", "one", "");
        let b = prepared("b", "two", "");
        let contenders = [Contender { tool: &a, score: 0.9 }, Contender { tool: &b, score: 0.1 }];
        let query = RoutingQuery::new("anything", None);
        let routed = route(&Scripted(vec![Some(1), None, Some(1)]), &query, &contenders, 3).expect("routed");
        assert_eq!((routed.tool, routed.votes), (Some(b.key.clone()), 2));
        let routed = route(&Scripted(vec![None, None, Some(0)]), &query, &contenders, 3).expect("routed");
        assert_eq!(routed.tool, None);
        assert!(route(&Scripted(vec![Some(5)]), &query, &contenders, 1).is_err());
    }
}
