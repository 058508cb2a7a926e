//! Synthetic registries for benchmarks: real servers' tools (the eval corpus) re-published
//! by invented vendors, recombined and perturbed as real registries are (vendor prefixes,
//! naming styles, verb synonyms, renamed parameters), with a known fraction of planted
//! near-duplicates across servers. Pure and deterministic for a seed.
//!
//! A registry larger than the corpus re-publishes each real server many times. Were every
//! copy about the same objects, near-duplicates would grow with the square of the size,
//! which is not how real registries grow: larger ones cover more domains. So beyond the
//! corpus's size most copies are *domain-shifted*: the objects their tools act on (the
//! words of tool names after the verb) are swapped, consistently across the server's names,
//! descriptions and parameters, for other objects from the corpus (`create_issue` →
//! `create_invoice`). Accidental duplicates then grow far slower than the square, and the
//! planted share stays the known one. They still grow faster than the registry: the
//! copies of one corpus tool keep most of its description's words, so word-overlap
//! findings per tool go from 5.9 at 10k tools to 19.2 at 100k (docs/benchmarks.md).

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::probes::Seeded;
use crate::text::{NameStyle, name_words};
use mtgs_core::{ServerName, ToolDef, ToolKey, ToolName};
use serde_json::{Map, Value};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthSettings {
    pub tools: usize,
    pub seed: u64,
    /// Share of tools planted as near-duplicates of a tool on another server.
    pub planted: f64,
}

/// A generated server and its tools.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthServer {
    pub name: ServerName,
    pub tools: Vec<ToolDef>,
    /// Where each tool (in order) came from, for benchmarks that stand in a vector for
    /// it (derived from the real vector of its corpus tool) instead of embedding it.
    pub origins: Vec<Origin>,
}

/// A generated tool's corpus tool (its index in the corpus, servers in order, tools in
/// order) and its domain: 0 for the corpus's own objects, else the id of the shift its
/// server applied. A planted tool has its original's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub corpus_tool: usize,
    pub domain: u64,
}

/// A generated registry: servers, and the planted pairs (planted tool, its original).
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    pub servers: Vec<SynthServer>,
    pub planted: Vec<(ToolKey, ToolKey)>,
}

impl Synthetic {
    pub fn tool_count(&self) -> usize {
        self.servers.iter().map(|server| server.tools.len()).sum()
    }
}

/// Verbs that mean the same action, as registries spell them.
const SYNONYMS: &[&[&str]] = &[
    &["create", "add", "new", "make", "insert"],
    &["get", "fetch", "read", "retrieve", "show"],
    &["list", "search", "find", "query", "browse"],
    &["update", "edit", "modify", "patch", "change"],
    &["delete", "remove", "drop", "destroy"],
    &["send", "post", "publish"],
];

fn synonym(word: &str, rng: &mut Seeded) -> Option<&'static str> {
    let group = SYNONYMS.iter().find(|group| group.contains(&word))?;
    Some(group[rng.below(group.len())])
}

/// A pronounceable vendor name: two or three consonant-vowel syllables.
fn vendor(rng: &mut Seeded) -> String {
    const CONSONANTS: &[u8] = b"bcdfghjklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    (0..2 + rng.below(2))
        .flat_map(|_| [CONSONANTS[rng.below(CONSONANTS.len())] as char, VOWELS[rng.below(VOWELS.len())] as char])
        .collect()
}

fn chance(rng: &mut Seeded, probability: f64) -> bool {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= probability
}

/// The replacement for `word` under a domain shift, plurals included (`issues` →
/// `invoices`).
fn shifted(word: &str, shift: &Shift) -> Option<String> {
    if let Some(other) = shift.get(word) {
        return Some(other.clone());
    }
    let singular = word.strip_suffix('s')?;
    shift.get(singular).map(|other| format!("{other}s"))
}

/// The objects a domain-shifted server's tools act on, each mapped to another object.
type Shift = HashMap<String, String>;

/// Swaps verbs for synonyms, shifts objects, and names `vendor` where the original named
/// its own server.
fn perturb_text(text: &str, original_server: &str, vendor: &str, shift: &Shift, rng: &mut Seeded) -> String {
    let server_words: Vec<String> = name_words(original_server);
    text.split(' ')
        .map(|token| {
            let bare = token.trim_matches(|c: char| !c.is_alphanumeric());
            let lower = bare.to_lowercase();
            if server_words.iter().any(|word| word.len() > 2 && *word == lower) {
                return token.replacen(bare, vendor, 1);
            }
            if let Some(other) = shifted(&lower, shift) {
                return token.replacen(bare, &other, 1);
            }
            match synonym(&lower, rng).filter(|_| chance(rng, 0.3)) {
                Some(other) => token.replacen(bare, other, 1),
                None => token.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renames some parameters (camelCase ↔ snake_case) and shifts objects in their names, in
/// `properties` and `required`.
fn perturb_schema(schema: &Value, shift: &Shift, rng: &mut Seeded) -> Value {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return schema.clone() };
    let mut renamed: Vec<(String, String)> = Vec::new();
    let mut next = Map::new();
    for (name, value) in properties {
        let mut words = name_words(name);
        let mut moved = false;
        for word in &mut words {
            if let Some(other) = shifted(word, shift) {
                *word = other;
                moved = true;
            }
        }
        let camel = !name.contains('_') && name.chars().any(char::is_uppercase);
        let wanted = if words.len() > 1 && chance(rng, 0.25) {
            if name.contains('_') { NameStyle::Camel.render(&words) } else { NameStyle::Snake.render(&words) }
        } else if moved {
            (if camel { NameStyle::Camel } else { NameStyle::Snake }).render(&words)
        } else {
            name.clone()
        };
        // Two parameters may land on one name (`pipeline` and a shifted `pipelines`):
        // the later keeps its own name, or failing that a numbered one.
        let new_name = [wanted, name.clone()]
            .into_iter()
            .chain((2..).map(|n| format!("{name}_{n}")))
            .find(|candidate| !next.contains_key(candidate))
            .unwrap_or_else(|| name.clone());
        if new_name != *name {
            renamed.push((name.clone(), new_name.clone()));
        }
        next.insert(new_name, value.clone());
    }
    let mut schema = schema.clone();
    schema["properties"] = Value::Object(next);
    if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
        for item in required.iter_mut() {
            if let Some((_, new_name)) = renamed.iter().find(|(old, _)| item.as_str() == Some(old.as_str())) {
                *item = Value::String(new_name.clone());
            }
        }
    }
    schema
}

/// The objects tools act on: the words of tool names after the verb, without the
/// server's own name and words too short to be one. Sorted, so a seed picks the same ones.
fn objects(tools: &[ToolDef], server: &ServerName) -> BTreeSet<String> {
    let server_words = name_words(server.as_str());
    tools
        .iter()
        .flat_map(|tool| name_words(tool.name.as_str()).into_iter().skip(1))
        .filter(|word| word.len() > 3 && word.chars().all(char::is_alphabetic) && !server_words.contains(word))
        .collect()
}

/// A domain shift for a server whose tools act on `own`: each object maps to another of
/// `vocabulary` (distinct within the server).
fn domain_shift(own: &BTreeSet<String>, vocabulary: &[String], rng: &mut Seeded) -> Shift {
    let mut taken: HashSet<&str> = HashSet::new();
    let mut shift = Shift::new();
    for word in own {
        for _ in 0..8 {
            let other = &vocabulary[rng.below(vocabulary.len())];
            if other != word && !own.contains(other) && taken.insert(other) {
                shift.insert(word.clone(), other.clone());
                break;
            }
        }
    }
    shift
}

/// A registry of `settings.tools` tools from `corpus` (servers and their tools).
pub fn synthesize(corpus: &[(ServerName, Vec<ToolDef>)], settings: &SynthSettings) -> Synthetic {
    let mut rng = Seeded::new(&[b"synth", &settings.seed.to_le_bytes()]);
    let mut servers: Vec<SynthServer> = Vec::new();
    let mut planted = Vec::new();
    let mut vendors: HashSet<String> = HashSet::new();
    let mut total = 0;
    let templates: Vec<&(ServerName, Vec<ToolDef>)> = corpus.iter().filter(|(_, tools)| !tools.is_empty()).collect();
    if templates.is_empty() {
        return Synthetic { servers, planted };
    }
    let objects_of: Vec<BTreeSet<String>> = templates.iter().map(|(server, tools)| objects(tools, server)).collect();
    let vocabulary: Vec<String> =
        objects_of.iter().flatten().cloned().collect::<BTreeSet<String>>().into_iter().collect();
    // About one unshifted copy of each corpus tool, however large the registry.
    let corpus_tools: usize = templates.iter().map(|(_, tools)| tools.len()).sum();
    // Each corpus server's first tool's index in the whole corpus.
    let offsets: Vec<usize> = corpus
        .iter()
        .scan(0, |next, (_, tools)| {
            let offset = *next;
            *next += tools.len();
            Some((offset, tools.is_empty()))
        })
        .filter(|(_, empty)| !empty)
        .map(|(offset, _)| offset)
        .collect();
    let shift_share = 1.0 - corpus_tools as f64 / settings.tools.max(1) as f64;
    while total < settings.tools {
        let pick = rng.below(templates.len());
        let (original, template) = templates[pick];
        let shift = if vocabulary.is_empty() || !chance(&mut rng, shift_share) {
            Shift::new()
        } else {
            domain_shift(&objects_of[pick], &vocabulary, &mut rng)
        };
        let domain = if shift.is_empty() { 0 } else { rng.next_u64() | 1 };
        let mut name = vendor(&mut rng);
        while !vendors.insert(name.clone()) {
            name = format!("{}{}", vendor(&mut rng), rng.below(100));
        }
        let Ok(server) = ServerName::parse(&name) else { continue };
        let style = [NameStyle::Snake, NameStyle::Camel, NameStyle::Kebab][rng.below(3)];
        let prefixed = chance(&mut rng, 0.5);
        let mut tools: Vec<ToolDef> = Vec::new();
        let mut origins: Vec<Origin> = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        for (position, base) in template.iter().enumerate() {
            if total + tools.len() >= settings.tools {
                break;
            }
            // A planted near-duplicate: another server's tool, re-published here with the
            // same action and object.
            let earlier: Option<(ServerName, ToolDef, Origin)> =
                (chance(&mut rng, settings.planted) && !servers.is_empty()).then(|| {
                    let other = &servers[rng.below(servers.len())];
                    let which = rng.below(other.tools.len());
                    (other.name.clone(), other.tools[which].clone(), other.origins[which])
                });
            let (source, source_server, origin) = match &earlier {
                Some((other_server, def, origin)) => (def, other_server.as_str(), *origin),
                None => (base, original.as_str(), Origin { corpus_tool: offsets[pick] + position, domain }),
            };
            let mut words = name_words(source.name.as_str());
            if earlier.is_none() {
                for word in &mut words {
                    if let Some(other) = shift.get(word.as_str()) {
                        word.clone_from(other);
                    }
                }
                if let Some(first) = words.first_mut()
                    && let Some(other) = synonym(first, &mut rng).filter(|_| chance(&mut rng, 0.3))
                {
                    *first = other.to_owned();
                }
                if prefixed {
                    words.insert(0, name.clone());
                }
            } else {
                words.retain(|word| !name_words(source_server).contains(word));
            }
            let rendered = style.render(&words);
            let Ok(tool_name) = ToolName::parse(&rendered) else { continue };
            if !names.insert(rendered) {
                continue;
            }
            let mut def = source.clone();
            def.name = tool_name;
            def.title = None;
            // A planted tool keeps its original's objects: it is a near-duplicate.
            let no_shift = Shift::new();
            let shift = if earlier.is_none() { &shift } else { &no_shift };
            def.description =
                source.description.as_deref().map(|text| perturb_text(text, source_server, &name, shift, &mut rng));
            def.input_schema = perturb_schema(&source.input_schema, shift, &mut rng);
            if let Some((other_server, original_def, _)) = &earlier {
                planted.push((
                    ToolKey { server: server.clone(), name: def.name.clone() },
                    ToolKey { server: other_server.clone(), name: original_def.name.clone() },
                ));
            }
            tools.push(def);
            origins.push(origin);
        }
        total += tools.len();
        if !tools.is_empty() {
            servers.push(SynthServer { name: server, tools, origins });
        }
    }
    Synthetic { servers, planted }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn corpus() -> Vec<(ServerName, Vec<ToolDef>)> {
        let tool = |name: &str, description: &str| {
            ToolDef::parse(&json!({"name": name, "description": description, "inputSchema": {"type": "object",
                "properties": {"project_key": {"type": "string"}, "summary": {"type": "string"}}, "required": ["project_key"]}}))
            .expect("valid")
            .def
        };
        vec![
            (
                ServerName::parse("jira").expect("valid"),
                vec![
                    tool("create_issue", "Create a Jira issue."),
                    tool("search_issues", "Search Jira issues with JQL."),
                ],
            ),
            (
                ServerName::parse("github").expect("valid"),
                vec![tool("get_file", "Get a file from a GitHub repository."), tool("list_commits", "List commits.")],
            ),
        ]
    }

    #[test]
    fn the_registry_has_the_size_asked_for_and_is_the_same_for_a_seed() {
        let settings = SynthSettings { tools: 500, seed: 7, planted: 0.1 };
        let first = synthesize(&corpus(), &settings);
        assert_eq!(first.tool_count(), 500);
        assert_eq!(first, synthesize(&corpus(), &settings));
        assert_ne!(first, synthesize(&corpus(), &SynthSettings { seed: 8, ..settings }));
        // Server names are unique, and so are tool names within a server.
        let servers: HashSet<&ServerName> = first.servers.iter().map(|server| &server.name).collect();
        assert_eq!(servers.len(), first.servers.len());
        for server in &first.servers {
            let names: HashSet<&ToolName> = server.tools.iter().map(|tool| &tool.name).collect();
            assert_eq!(names.len(), server.tools.len());
        }
    }

    #[test]
    fn about_the_planted_share_are_near_duplicates_of_another_servers_tool() {
        let synthetic = synthesize(&corpus(), &SynthSettings { tools: 2_000, seed: 1, planted: 0.1 });
        let share = synthetic.planted.len() as f64 / 2_000.0;
        assert!((0.06..0.14).contains(&share), "{share}");
        for (planted, original) in &synthetic.planted {
            assert_ne!(planted.server, original.server);
        }
    }

    #[test]
    fn tools_are_perturbed_as_registries_are() {
        let synthetic = synthesize(&corpus(), &SynthSettings { tools: 400, seed: 3, planted: 0.0 });
        let tools: Vec<&ToolDef> = synthetic.servers.iter().flat_map(|server| &server.tools).collect();
        assert!(tools.iter().any(|tool| tool.name.as_str().contains('-')), "kebab-case names");
        assert!(tools.iter().any(|tool| tool.name.as_str().chars().any(char::is_uppercase)), "camelCase names");
        assert!(
            tools.iter().any(|tool| tool.input_schema["properties"].get("projectKey").is_some()),
            "renamed parameters"
        );
        assert!(
            tools.iter().all(|tool| !tool.description.as_deref().unwrap_or_default().contains("Jira")),
            "vendor renamed"
        );
        assert!(
            tools.iter().any(|tool| name_words(tool.name.as_str())
                .first()
                .is_some_and(|word| word == "add" || word == "new" || word == "make" || word == "insert")),
            "verb synonyms"
        );
    }

    #[test]
    fn copies_beyond_the_corpus_size_act_on_other_objects() {
        let synthetic = synthesize(&corpus(), &SynthSettings { tools: 400, seed: 5, planted: 0.0 });
        let tools: Vec<&ToolDef> = synthetic.servers.iter().flat_map(|server| &server.tools).collect();
        // `create_issue` shifted to another object: in its name, its description and its
        // parameters alike.
        let shifted = tools.iter().find(|tool| {
            let words = name_words(tool.name.as_str());
            tool.description.as_deref().is_some_and(|text| text.ends_with("issue."))
                && !words.contains(&"issue".to_owned())
        });
        assert!(shifted.is_none(), "a shifted name keeps the description in step: {shifted:?}");
        let moved = tools.iter().filter(|tool| {
            let text = tool.description.as_deref().unwrap_or_default();
            text.starts_with("Create a") && !text.ends_with("issue.")
        });
        let moved: Vec<&&ToolDef> = moved.collect();
        assert!(!moved.is_empty(), "some copies of create_issue act on another object");
        for tool in moved {
            let object = tool.description.as_deref().unwrap_or_default().rsplit(' ').next().unwrap_or_default();
            let object = object.trim_end_matches('.');
            assert!(name_words(tool.name.as_str()).contains(&object.to_owned()), "{tool:?}");
        }
    }

    #[test]
    fn each_tool_names_the_corpus_tool_it_came_from() {
        let corpus = corpus();
        let flat: Vec<&ToolDef> = corpus.iter().flat_map(|(_, tools)| tools).collect();
        let synthetic = synthesize(&corpus, &SynthSettings { tools: 300, seed: 9, planted: 0.1 });
        for server in &synthetic.servers {
            assert_eq!(server.origins.len(), server.tools.len());
            for (tool, origin) in server.tools.iter().zip(&server.origins) {
                let base = flat[origin.corpus_tool];
                // The schema keeps the corpus tool's parameters, renamed or not.
                let count = |def: &ToolDef| def.input_schema["properties"].as_object().map_or(0, |p| p.len());
                assert_eq!(count(tool), count(base), "{tool:?} from {base:?}");
            }
        }
        assert!(synthetic.servers.iter().flat_map(|server| &server.origins).any(|origin| origin.domain != 0));
    }
}
