//! Stage 1, lexical: names and words. Finds pairs whose names are equal, equal after
//! folding, look-alike, a small edit apart, or whose names and descriptions share their
//! informative words; every lookup goes through an index, never a scan.
//!
//! Severity rests on evidence, not distance alone (see ARCHITECTURE.md, "Lexical rules"):
//! `get_issue` / `get_issues` differ by an inflection and mean the same thing to an agent
//! reading names (HIGH), while `get_file` / `set_file` differ in their action (LOW), and
//! `create_issue` / `close_issue` are four edits apart and only share words.

mod edit;
mod terms;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{OnceLock, PoisonError, RwLock, RwLockReadGuard};

use mtgs_core::{ConflictKind, Severity, StageId};
use serde_json::{Value, json};

use crate::prepared::PreparedTool;
use crate::stage::{Admission, Diagnostic, Examination, PairFinding, Stage, ToolIdx, ToolTable};
use crate::text;
pub use edit::{EditIndex, bounded_distance};
pub(crate) use terms::by_id;
pub use terms::{TermId, TermIndex, Weights};

/// Description similarity (IDF-weighted cosine of terms) above which two descriptions
/// are taken to describe the same job. Starting values, to be tuned on the eval corpus.
pub mod thresholds {
    /// A look-alike name with a look-alike description is a typosquat.
    pub const TYPOSQUAT_DESCRIPTION: f64 = 0.5;
    /// Inflected names stay HIGH unless the schema separates them and descriptions differ.
    pub const SAME_JOB_DESCRIPTION: f64 = 0.5;
    /// Different actions still conflict when the descriptions say the same.
    pub const DIFFERENT_ACTION_DESCRIPTION: f64 = 0.6;
    /// Below this, and with no shared name word, no token-overlap finding is made.
    pub const MIN_DESCRIPTION: f64 = 0.45;
    /// Word overlap score (0.35 · name Jaccard + 0.65 · description cosine) bands.
    pub const OVERLAP_LOW: f64 = 0.35;
    pub const OVERLAP_MEDIUM: f64 = 0.5;
    pub const OVERLAP_HIGH: f64 = 0.7;
}

#[derive(Debug, Default)]
pub struct LexicalStage {
    exact: HashMap<String, Vec<ToolIdx>>,
    folded: HashMap<String, Vec<ToolIdx>>,
    skeletons: HashMap<String, Vec<ToolIdx>>,
    /// Name word stems joined: inflections at any edit distance (`list_repository` /
    /// `list_repositories` are three edits apart).
    stems: HashMap<String, Vec<ToolIdx>>,
    /// Name words without vendor words, under each way of dropping them (see
    /// [`vendor_cores`]): `zovahi-create-views` and `sujoza_create_view` share `creat view`
    /// whatever their descriptions say, which the word-overlap search ranks by.
    cores: HashMap<String, Vec<ToolIdx>>,
    near: EditIndex,
    terms: TermIndex,
    /// Changes with every insert and remove: what [`WeightMemo`] is valid for.
    generation: u64,
    weights: RwLock<WeightMemo>,
}

/// Registered tools' term weights ([`TermIndex::weigh`]), each taken the first time a
/// pair needs it after the index last changed: a tool is compared with dozens of others
/// in a check and from both sides in an analysis, and each weight is a lookup and a
/// logarithm.
#[derive(Debug, Default)]
struct WeightMemo {
    generation: u64,
    slots: Vec<OnceLock<Weights>>,
}

fn push(map: &mut HashMap<String, Vec<ToolIdx>>, key: &str, idx: ToolIdx) {
    map.entry(key.to_owned()).or_default().push(idx);
}

fn pull(map: &mut HashMap<String, Vec<ToolIdx>>, key: &str, idx: ToolIdx) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|other| *other != idx);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

impl Stage for LexicalStage {
    fn id(&self) -> StageId {
        StageId::Lexical
    }

    fn admission(&self) -> Admission {
        Admission::Discover
    }

    fn insert(&mut self, idx: ToolIdx, tool: &PreparedTool) {
        push(&mut self.exact, tool.def.name.as_str(), idx);
        push(&mut self.folded, &tool.folded, idx);
        push(&mut self.skeletons, &tool.skeleton, idx);
        push(&mut self.stems, &tool.word_stems.join(" "), idx);
        for core in vendor_cores(tool) {
            push(&mut self.cores, &core, idx);
        }
        self.near.insert(idx, &tool.folded_chars);
        self.terms.insert(idx, &tool.key.server, &tool.term_ids);
        self.generation += 1;
    }

    fn remove(&mut self, idx: ToolIdx, tool: &PreparedTool) {
        pull(&mut self.exact, tool.def.name.as_str(), idx);
        pull(&mut self.folded, &tool.folded, idx);
        pull(&mut self.skeletons, &tool.skeleton, idx);
        pull(&mut self.stems, &tool.word_stems.join(" "), idx);
        for core in vendor_cores(tool) {
            pull(&mut self.cores, &core, idx);
        }
        self.near.remove(idx, &tool.folded_chars);
        self.terms.remove(idx, &tool.key.server, &tool.term_ids);
        self.generation += 1;
    }

    fn examine(
        &self,
        examination: &Examination<'_>,
        findings: &mut Vec<PairFinding>,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let candidate = examination.candidate;
        let folded = &candidate.folded_chars;
        let mut pairs: HashSet<ToolIdx> = HashSet::new();
        for map_hit in [
            self.exact.get(candidate.def.name.as_str()),
            self.folded.get(&candidate.folded),
            self.skeletons.get(&candidate.skeleton),
            self.stems.get(&candidate.word_stems.join(" ")),
        ]
        .into_iter()
        .flatten()
        {
            pairs.extend(map_hit.iter().copied());
        }
        for core in vendor_cores(candidate) {
            pairs.extend(self.cores.get(&core).into_iter().flatten().copied());
        }
        pairs.extend(self.near.candidates(folded));
        let by_terms = self.terms.candidates(&candidate.term_ids, examination.skip);
        if by_terms.truncated {
            diagnostics.push(Diagnostic {
                stage: StageId::Lexical,
                message: format!(
                    "word-overlap search for {} stopped at {} postings; only its rarer words were searched",
                    candidate.key,
                    terms::POSTING_BUDGET
                ),
            });
        }
        pairs.extend(by_terms.tools);

        let mut ordered: Vec<ToolIdx> = pairs.into_iter().filter(|idx| !(examination.skip)(*idx)).collect();
        ordered.sort_unstable();
        let memo = self.weight_memo(examination.tools.slots());
        let own = self.terms.weigh(&candidate.term_ids);
        for idx in ordered {
            let Some(other) = examination.tools.get(idx) else { continue };
            let theirs = memo.weights(idx, other, &self.terms);
            if let Some((kind, severity, score, evidence)) =
                self.assess((candidate, &own), (other, &theirs), examination.evidence)
            {
                findings.push(PairFinding { other: idx, kind, severity, score, evidence });
            }
        }
    }

    fn explain(&self, tools: &ToolTable, candidate: &PreparedTool, found: &PairFinding) -> Value {
        // The assessment is a function of the two tools and the term index, so running it
        // again with the evidence written gives what the examination would have written.
        let Some(other) = tools.get(found.other) else { return Value::Null };
        let memo = self.weight_memo(tools.slots());
        // The candidate's remembered weights only if it is the registered tool itself (not
        // a new version under the same key).
        let own = match tools.find(&candidate.key) {
            Some(idx) if tools.get(idx).is_some_and(|registered| std::ptr::eq(registered, candidate)) => {
                memo.weights(idx, candidate, &self.terms)
            }
            _ => Cow::Owned(self.terms.weigh(&candidate.term_ids)),
        };
        let theirs = memo.weights(found.other, other, &self.terms);
        self.assess((candidate, &own), (other, &theirs), true).map_or(Value::Null, |(_, _, _, evidence)| evidence)
    }
}

impl LexicalStage {
    /// The weight memo, emptied if the index changed since it was filled, with a slot for
    /// each of `slots`.
    fn weight_memo(&self, slots: usize) -> RwLockReadGuard<'_, WeightMemo> {
        let memo = self.weights.read().unwrap_or_else(PoisonError::into_inner);
        if memo.generation == self.generation && memo.slots.len() >= slots {
            return memo;
        }
        drop(memo);
        let mut memo = self.weights.write().unwrap_or_else(PoisonError::into_inner);
        if memo.generation != self.generation {
            memo.slots.clear();
            memo.generation = self.generation;
        }
        if memo.slots.len() < slots {
            memo.slots.resize_with(slots, OnceLock::new);
        }
        drop(memo);
        self.weights.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl WeightMemo {
    /// The weights of `tool`, registered at `idx`.
    fn weights(&self, idx: ToolIdx, tool: &PreparedTool, terms: &TermIndex) -> Cow<'_, Weights> {
        match self.slots.get(idx.0 as usize) {
            Some(slot) => Cow::Borrowed(slot.get_or_init(|| terms.weigh(&tool.term_ids))),
            // Not reached: the memo has a slot for every registered tool.
            None => Cow::Owned(terms.weigh(&tool.term_ids)),
        }
    }
}

/// A finding's kind, severity, score and evidence (null when not asked for).
type Assessment = (ConflictKind, Severity, f64, Value);

/// `build()` when the evidence is wanted, else null: most of an assessment's cost in an
/// analysis is writing evidence for reports the merge then drops.
fn written(wanted: bool, build: impl FnOnce() -> Value) -> Value {
    if wanted { build() } else { Value::Null }
}

/// How two names a small edit apart differ, word by word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameEdit {
    /// Same words up to inflection (`issue` / `issues`).
    Inflection,
    /// Same name up to a version suffix (`create_task` / `create_task_v2`).
    Version,
    /// One action word replaced by another (`get` / `set`).
    DifferentAction,
    /// A look-alike word with a look-alike description: someone's copy.
    Typosquat,
    /// Some other word changed.
    DifferentWord,
}

impl NameEdit {
    fn as_str(self) -> &'static str {
        match self {
            NameEdit::Inflection => "inflection",
            NameEdit::Version => "version",
            NameEdit::DifferentAction => "different_action",
            NameEdit::Typosquat => "typosquat",
            NameEdit::DifferentWord => "different_word",
        }
    }
}

impl LexicalStage {
    /// The finding about `a` and `b` (each with its term weights), if any.
    fn assess(
        &self,
        (a, weights_a): (&PreparedTool, &Weights),
        (b, weights_b): (&PreparedTool, &Weights),
        evidence: bool,
    ) -> Option<Assessment> {
        // Two tools of one server are compared without that server's house vocabulary.
        let one_server = (a.key.server == b.key.server).then_some(&a.key.server);
        let description = round(self.terms.cosine((&a.term_ids, weights_a), (&b.term_ids, weights_b), one_server));
        if a.def.name == b.def.name {
            let evidence = written(evidence, || json!({"name": a.def.name, "description_similarity": description}));
            return Some((ConflictKind::ExactName, Severity::Critical, 1.0, evidence));
        }
        if a.folded == b.folded {
            let evidence = written(evidence, || {
                json!({"normalized": a.words.join("_"), "names": [a.def.name, b.def.name],
                       "description_similarity": description})
            });
            return Some((ConflictKind::NormalizedName, Severity::Critical, 1.0, evidence));
        }
        if a.skeleton == b.skeleton {
            let evidence = written(evidence, || {
                json!({
                    "skeleton": a.skeleton,
                    "names": [a.def.name, b.def.name],
                    "differing_characters": differing_characters(&a.folded, &b.folded),
                    "mixed_script": [text::is_mixed_script(a.def.name.as_str()), text::is_mixed_script(b.def.name.as_str())],
                })
            });
            return Some((ConflictKind::ConfusableName, Severity::Critical, 1.0, evidence));
        }

        let same_server = a.key.server == b.key.server;
        let near = self.near_name(a, b, description, evidence);
        let overlap = self.token_overlap(a, b, description, evidence);
        let best = match (near, overlap) {
            (Some(near), Some(overlap)) => {
                let (mut keep, other) =
                    if (overlap.1, overlap.2) > (near.1, near.2) { (overlap, near) } else { (near, overlap) };
                if let (Value::Object(kept), Value::Object(extra)) = (&mut keep.3, other.3) {
                    for (key, value) in extra {
                        kept.entry(key).or_insert(value);
                    }
                }
                keep
            }
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => return None,
        };
        let (kind, mut severity, score, mut evidence) = best;
        if same_server && severity > Severity::Medium {
            // One author published both on purpose; the schema or description usually
            // separates them, and a reviewer cannot rename one server's tools anyway.
            severity = Severity::Medium;
            if let Value::Object(fields) = &mut evidence {
                fields.insert("same_server".into(), Value::Bool(true));
            }
        }
        Some((kind, severity, score, evidence))
    }

    fn near_name(&self, a: &PreparedTool, b: &PreparedTool, description: f64, evidence: bool) -> Option<Assessment> {
        let (a_folded, b_folded) = (&a.folded_chars, &b.folded_chars);
        let distance = if a.word_stems == b.word_stems {
            bounded_distance(a_folded, b_folded, usize::MAX).unwrap_or(usize::MAX)
        } else {
            let bound = match a_folded.len().min(b_folded.len()) {
                0..=3 => return None,
                4..=5 => 1,
                _ => edit::MAX_DISTANCE,
            };
            bounded_distance(a_folded, b_folded, bound)?
        };
        let edit = classify_edit(a, b, description);
        let schema_separates = required_parameters(a) != required_parameters(b);
        let severity = match edit {
            NameEdit::Inflection | NameEdit::Version
                if schema_separates && description < thresholds::SAME_JOB_DESCRIPTION =>
            {
                Severity::Medium
            }
            NameEdit::Inflection | NameEdit::Version | NameEdit::Typosquat => Severity::High,
            NameEdit::DifferentAction if description >= thresholds::DIFFERENT_ACTION_DESCRIPTION => Severity::Medium,
            NameEdit::DifferentAction => Severity::Low,
            NameEdit::DifferentWord if description >= thresholds::SAME_JOB_DESCRIPTION => Severity::Medium,
            NameEdit::DifferentWord => Severity::Low,
        };
        let longest = a_folded.len().max(b_folded.len()) as f64;
        let score = round(1.0 - distance as f64 / longest);
        let evidence = written(evidence, || {
            json!({
                "distance": distance,
                "edit": edit.as_str(),
                "words": edited_words(a, b),
                "schema_separates": schema_separates,
                "description_similarity": description,
            })
        });
        Some((ConflictKind::NearName, severity, score, evidence))
    }

    fn token_overlap(
        &self,
        a: &PreparedTool,
        b: &PreparedTool,
        description: f64,
        evidence: bool,
    ) -> Option<Assessment> {
        let shared_names = sorted_shared(&a.stem_set, &b.stem_set);
        let union = (a.stem_set.len() + b.stem_set.len() - shared_names).max(1);
        let name_overlap = round(shared_names as f64 / union as f64);
        if shared_names == 0 && description < thresholds::MIN_DESCRIPTION {
            return None;
        }

        let mut shared_core = 0;
        let relation = if a.word_stems == b.word_stems {
            // An inflection: near_name reports it.
            return None;
        } else if names_differ_in_action(a, b) {
            // `create-event` / `delete-event`, `read_query` / `write_query`: the verb of
            // any request says which, however alike the descriptions.
            "different_action"
        } else if same_stems_reordered(a, b) {
            "reordered"
        } else if let Some(core) = same_name_but_vendor(a, b) {
            shared_core = core;
            "qualified"
        } else if shared_names == a.stem_set.len() || shared_names == b.stem_set.len() {
            "subset"
        } else {
            "shared_words"
        };
        let score = round(0.35 * name_overlap + 0.65 * description);
        let severity = match relation {
            "reordered" => Severity::High,
            // `brave_web_search` vs `web_search`: both names say the whole job.
            "qualified" if shared_core >= 2 => Severity::High,
            "qualified" => Severity::Medium,
            "different_action" if score >= thresholds::OVERLAP_LOW => Severity::Low,
            "different_action" => return None,
            "subset" if description >= 0.4 => Severity::Medium,
            _ if score >= thresholds::OVERLAP_HIGH => Severity::High,
            _ if score >= thresholds::OVERLAP_MEDIUM => Severity::Medium,
            _ if score >= thresholds::OVERLAP_LOW => Severity::Low,
            _ => return None,
        };
        let evidence = written(evidence, || {
            let mut shared: Vec<(&String, f64)> = terms::shared_terms((&a.term_ids, &a.terms), &b.term_ids)
                .map(|(id, term)| (term, self.terms.idf_of(id)))
                .collect();
            shared.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(y.0)));
            let shared: Vec<&String> = shared.into_iter().take(10).map(|(term, _)| term).collect();
            json!({
                "relation": relation,
                "name_overlap": name_overlap,
                "description_similarity": description,
                "shared_terms": shared,
            })
        });
        Some((ConflictKind::TokenOverlap, severity, score, evidence))
    }
}

/// The words two names of equal length differ in, position by position.
fn differing_words<'a>(a: &'a PreparedTool, b: &'a PreparedTool) -> Vec<(&'a String, &'a String)> {
    if a.words.len() == b.words.len() {
        a.words.iter().zip(&b.words).filter(|(x, y)| x != y).collect()
    } else {
        Vec::new()
    }
}

/// A near-name finding's `words`: the one word that differs, or both names.
fn edited_words(a: &PreparedTool, b: &PreparedTool) -> Value {
    match differing_words(a, b).as_slice() {
        [(x, y)] => json!([x, y]),
        _ => json!([a.words.join("_"), b.words.join("_")]),
    }
}

fn classify_edit(a: &PreparedTool, b: &PreparedTool, description: f64) -> NameEdit {
    if a.word_stems == b.word_stems || text::stem(&a.folded) == text::stem(&b.folded) {
        return NameEdit::Inflection;
    }
    if strip_version(&a.folded) == strip_version(&b.folded) {
        return NameEdit::Version;
    }
    if let [(x, y)] = differing_words(a, b).as_slice() {
        let both_actions = text::is_action_word(x) && text::is_action_word(y);
        if (both_actions && text::action_class(x) != text::action_class(y)) || text::negates(x, y) {
            return NameEdit::DifferentAction;
        }
        // Typosquatting is copying another server's tool; one server's own look-alike
        // words (`lpush` / `rpush`) are just different words.
        let look_alike = a.key.server != b.key.server
            && x.chars().count().min(y.chars().count()) >= 4
            && strsim::levenshtein(x, y) <= edit::MAX_DISTANCE;
        if look_alike && description >= thresholds::TYPOSQUAT_DESCRIPTION {
            return NameEdit::Typosquat;
        }
    }
    NameEdit::DifferentWord
}

/// How many words two names share once each drops the words of its own server's name
/// that the other does not use, when that leaves them equal: `brave_web_search` on
/// `brave-search` and `web_search` share `web search`; `firecrawl_search` and
/// `tavily_search` share `search`; `create_update_in_monday` on `monday` and
/// `create_update` share `create update` (function words do not count).
fn same_name_but_vendor(a: &PreparedTool, b: &PreparedTool) -> Option<usize> {
    let used_by = |other: &PreparedTool, stem: &str| other.stem_set.binary_search_by(|s| s.as_str().cmp(stem)).is_ok();
    let (core_a, core_b) = (core_stems(a, |stem| used_by(b, stem)), core_stems(b, |stem| used_by(a, stem)));
    (!core_a.is_empty() && core_a == core_b).then_some(core_a.len())
}

/// A name's content stems, sorted and unique, with only the vendor stems `keep_vendor`
/// accepts.
fn core_stems(tool: &PreparedTool, keep_vendor: impl Fn(&str) -> bool) -> Vec<&str> {
    let mut core: Vec<&str> = tool
        .content_stems
        .iter()
        .filter(|(stem, vendor)| !vendor || keep_vendor(stem))
        .map(|(stem, _)| stem.as_str())
        .collect();
    core.sort_unstable();
    core.dedup();
    core
}

/// The keys under which [`same_name_but_vendor`] can match a name at HIGH: its content
/// stems, sorted and unique, without each subset of its vendor stems in turn (the other
/// name keeps a vendor word it uses too), where at least two remain. Names with more than
/// three vendor words are keyed with all or none of them dropped.
fn vendor_cores(tool: &PreparedTool) -> Vec<String> {
    let mut vendor: Vec<&str> =
        tool.content_stems.iter().filter(|(_, vendor)| *vendor).map(|(stem, _)| stem.as_str()).collect();
    vendor.sort_unstable();
    vendor.dedup();
    if vendor.is_empty() {
        return Vec::new();
    }
    let subsets: Vec<u32> =
        if vendor.len() <= 3 { (0..1u32 << vendor.len()).collect() } else { vec![0, (1u32 << vendor.len()) - 1] };
    let mut cores: Vec<String> = subsets
        .into_iter()
        .filter_map(|dropped| {
            let core = core_stems(tool, |stem| {
                vendor.iter().position(|v| *v == stem).is_some_and(|at| dropped & (1 << at) == 0)
            });
            (core.len() >= 2).then(|| core.join(" "))
        })
        .collect();
    cores.sort_unstable();
    cores.dedup();
    cores
}

/// Whether the names hold the same stems, as many times each, in another order.
fn same_stems_reordered(a: &PreparedTool, b: &PreparedTool) -> bool {
    if a.word_stems.len() != b.word_stems.len() || a.stem_set != b.stem_set {
        return false;
    }
    let mut sorted_a: Vec<&String> = a.word_stems.iter().collect();
    let mut sorted_b: Vec<&String> = b.word_stems.iter().collect();
    sorted_a.sort_unstable();
    sorted_b.sort_unstable();
    sorted_a == sorted_b
}

/// Where two sorted, unique lists hold the same item: its position in each, in order.
pub(crate) fn shared_positions<'a, T: Ord>(a: &'a [T], b: &'a [T]) -> impl Iterator<Item = (usize, usize)> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
            match x.cmp(y) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    (i, j) = (i + 1, j + 1);
                    return Some((i - 1, j - 1));
                }
            }
        }
        None
    })
}

/// How many items two sorted, unique lists share.
fn sorted_shared<T: Ord>(a: &[T], b: &[T]) -> usize {
    shared_positions(a, b).count()
}

/// Whether each name holds an action the other lacks, and no action of one is a synonym
/// of an action of the other.
pub(crate) fn names_differ_in_action(a: &PreparedTool, b: &PreparedTool) -> bool {
    !a.actions.is_empty() && !b.actions.is_empty() && sorted_shared(&a.actions, &b.actions) == 0
}

/// The folded name without a trailing version (`createtaskv2`, `createtask2` → `createtask`).
fn strip_version(folded: &str) -> &str {
    let without_digits = folded.trim_end_matches(|c: char| c.is_ascii_digit());
    if without_digits.len() == folded.len() {
        return folded;
    }
    without_digits.strip_suffix('v').unwrap_or(without_digits)
}

fn required_parameters(tool: &PreparedTool) -> BTreeSet<&str> {
    tool.params.iter().filter(|(_, shape)| shape.required).map(|(name, _)| name.as_str()).collect()
}

/// `'а' (U+0430) ~ 'a' (U+0061)` for each position where two equal-length strings differ.
fn differing_characters(a: &str, b: &str) -> Vec<String> {
    a.chars()
        .zip(b.chars())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| format!("'{x}' (U+{:04X}) ~ '{y}' (U+{:04X})", x as u32, y as u32))
        .collect()
}

/// Scores are reported to three decimals: more is noise, and snapshots stay stable.
fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
