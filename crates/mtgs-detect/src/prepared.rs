//! A tool definition reduced once, at insertion, to what the stages compare: name words,
//! folded name, skeleton, description terms and parameter shapes.

use std::collections::{BTreeMap, BTreeSet};

use mtgs_core::{ServerName, ToolDef, ToolKey, canonical_json};
use serde_json::Value;

use crate::text;

/// Description terms kept per tool; bounds the cost of one long description.
pub const MAX_TERMS: usize = 256;

#[derive(Debug, Clone)]
pub struct PreparedTool {
    pub key: ToolKey,
    pub def: ToolDef,
    /// Lower-case words of the name (`getIssue` → `get`, `issue`).
    pub words: Vec<String>,
    /// Stem of each word, in the same order.
    pub word_stems: Vec<String>,
    /// The name's stems, sorted and unique: what set comparisons of names walk.
    pub stem_set: Vec<String>,
    /// The actions the name states (synonyms folded, see [`text::action_class`]), sorted
    /// and unique.
    pub actions: Vec<String>,
    /// Stems of the name's words that are not function words, each with whether it is a
    /// word of the tool's own server name (its vendor), in name order.
    pub content_stems: Vec<(String, bool)>,
    /// Words joined with nothing between: the form exact-after-normalisation compares.
    pub folded: String,
    /// `folded` as characters, what edit distances are computed on.
    pub folded_chars: Vec<char>,
    /// UTS #39 skeleton of `folded`.
    pub skeleton: String,
    /// Unique stems of the name, title and description opening (the alphabetically first
    /// [`MAX_TERMS`]), in the order of their ids.
    pub terms: Vec<String>,
    /// The terms' ids, sorted, `term_ids[i]` the id of `terms[i]`: what the term index
    /// stores and scores pairs by.
    pub term_ids: Vec<crate::lexical::TermId>,
    /// Top-level input parameters.
    pub params: BTreeMap<String, ParamShape>,
    /// The embedding of [`crate::semantic::fingerprint`], when the caller computed one.
    pub embedding: Option<crate::semantic::Embedding>,
    /// Requests this tool should serve (stage 4's probes), with their embeddings when the
    /// caller computed them. Empty: stage 4 writes them from the definition.
    pub probes: Vec<crate::routing::RoutingQuery>,
}

/// What the schema stage compares about one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamShape {
    /// JSON types the parameter admits; empty when the schema does not say.
    pub types: BTreeSet<String>,
    pub required: bool,
    /// Allowed values as canonical JSON, when the parameter is an enum (or a `const`).
    pub allowed: Option<BTreeSet<String>>,
}

impl PreparedTool {
    pub fn new(server: ServerName, def: ToolDef) -> Self {
        let words = text::name_words(def.name.as_str());
        let word_stems: Vec<String> = words.iter().map(|word| text::stem(word)).collect();
        let mut stem_set = word_stems.clone();
        stem_set.sort_unstable();
        stem_set.dedup();
        let mut actions: Vec<String> = words
            .iter()
            .filter(|word| text::is_action_word(word))
            .map(|word| text::action_class(word).to_owned())
            .collect();
        actions.sort_unstable();
        actions.dedup();
        let vendor: Vec<String> = text::name_words(server.as_str()).iter().map(|word| text::stem(word)).collect();
        let content_stems = words
            .iter()
            .zip(&word_stems)
            .filter(|(word, _)| !text::is_stop_word(word))
            .map(|(_, stem)| (stem.clone(), vendor.contains(stem)))
            .collect();
        let folded = text::compact(&words);
        let skeleton = text::skeleton(&folded);

        let mut text_for_terms = words.join(" ");
        for part in [def.title.as_deref(), def.description.as_deref()].into_iter().flatten() {
            text_for_terms.push(' ');
            text_for_terms.extend(part.chars().take(text::DESCRIPTION_CHARS_READ));
        }
        let mut terms = text::terms(&text_for_terms);
        terms.truncate(MAX_TERMS);
        let (term_ids, terms) = crate::lexical::by_id(terms);

        let params = parameter_shapes(&def.input_schema);
        Self {
            key: ToolKey { server, name: def.name.clone() },
            def,
            words,
            word_stems,
            stem_set,
            actions,
            content_stems,
            folded_chars: folded.chars().collect(),
            folded,
            skeleton,
            terms,
            term_ids,
            params,
            embedding: None,
            probes: Vec::new(),
        }
    }

    /// Attaches the embedding of the tool's fingerprint.
    #[must_use]
    pub fn with_embedding(mut self, embedding: Option<crate::semantic::Embedding>) -> Self {
        self.embedding = embedding;
        self
    }

    /// Attaches stage 4's probes (requests the tool should serve).
    #[must_use]
    pub fn with_probes(mut self, probes: Vec<crate::routing::RoutingQuery>) -> Self {
        self.probes = probes;
        self
    }
}

fn parameter_shapes(schema: &Value) -> BTreeMap<String, ParamShape> {
    let required: BTreeSet<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let shape = ParamShape {
                types: property_types(property),
                required: required.contains(name.as_str()),
                allowed: allowed_values(property),
            };
            (name.clone(), shape)
        })
        .collect()
}

/// `type` as a string or array, else the union over `anyOf` / `oneOf` branches.
fn property_types(property: &Value) -> BTreeSet<String> {
    match property.get("type") {
        Some(Value::String(kind)) => BTreeSet::from([kind.clone()]),
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => ["anyOf", "oneOf"]
            .iter()
            .filter_map(|keyword| property.get(*keyword).and_then(Value::as_array))
            .flatten()
            .flat_map(property_types)
            .collect(),
    }
}

fn allowed_values(property: &Value) -> Option<BTreeSet<String>> {
    if let Some(values) = property.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(canonical_json).collect());
    }
    property.get("const").map(|value| BTreeSet::from([canonical_json(value)]))
}
