//! Synthetic registries for benchmarks: real servers' tools (the eval corpus) re-published
//! by invented vendors, recombined and perturbed as real registries are (vendor prefixes,
//! naming styles, verb synonyms, renamed parameters), with a known fraction of planted
//! near-duplicates across servers. Pure and deterministic for a seed.

use std::collections::HashSet;

use mtgs_core::{ServerName, ToolDef, ToolKey, ToolName};
use mtgs_detect::probes::Seeded;
use mtgs_detect::text::name_words;
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

#[derive(Debug, Clone, Copy)]
enum Style {
    Snake,
    Camel,
    Kebab,
}

fn render(words: &[String], style: Style) -> String {
    match style {
        Style::Snake => words.join("_"),
        Style::Kebab => words.join("-"),
        Style::Camel => words
            .iter()
            .enumerate()
            .map(|(index, word)| {
                if index == 0 {
                    word.clone()
                } else {
                    let mut chars = word.chars();
                    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
                }
            })
            .collect(),
    }
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

/// Swaps verbs for synonyms and names `vendor` where the original named its own server.
fn perturb_text(text: &str, original_server: &str, vendor: &str, rng: &mut Seeded) -> String {
    let server_words: Vec<String> = name_words(original_server);
    text.split(' ')
        .map(|token| {
            let lower = token.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
            if server_words.iter().any(|word| word.len() > 2 && *word == lower) {
                return token.replacen(token.trim_matches(|c: char| !c.is_alphanumeric()), vendor, 1);
            }
            match synonym(&lower, rng).filter(|_| chance(rng, 0.3)) {
                Some(other) => token.replacen(token.trim_matches(|c: char| !c.is_alphanumeric()), other, 1),
                None => token.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renames some parameters (camelCase ↔ snake_case), in `properties` and `required`.
fn perturb_schema(schema: &Value, rng: &mut Seeded) -> Value {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return schema.clone() };
    let mut renamed: Vec<(String, String)> = Vec::new();
    let mut next = Map::new();
    for (name, value) in properties {
        let words = name_words(name);
        let new_name = if words.len() > 1 && chance(rng, 0.25) {
            if name.contains('_') { render(&words, Style::Camel) } else { render(&words, Style::Snake) }
        } else {
            name.clone()
        };
        if next.contains_key(&new_name) {
            next.insert(name.clone(), value.clone());
            continue;
        }
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
    while total < settings.tools {
        let (original, template) = templates[rng.below(templates.len())];
        let mut name = vendor(&mut rng);
        while !vendors.insert(name.clone()) {
            name = format!("{}{}", vendor(&mut rng), rng.below(100));
        }
        let Ok(server) = ServerName::parse(&name) else { continue };
        let style = [Style::Snake, Style::Camel, Style::Kebab][rng.below(3)];
        let prefixed = chance(&mut rng, 0.5);
        let mut tools: Vec<ToolDef> = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        for base in template {
            if total + tools.len() >= settings.tools {
                break;
            }
            // A planted near-duplicate: another server's tool, re-published here with the
            // same action and object.
            let earlier: Option<(ServerName, ToolDef)> = (chance(&mut rng, settings.planted) && !servers.is_empty())
                .then(|| {
                    let other = &servers[rng.below(servers.len())];
                    (other.name.clone(), other.tools[rng.below(other.tools.len())].clone())
                });
            let (source, source_server) = match &earlier {
                Some((other_server, def)) => (def, other_server.as_str()),
                None => (base, original.as_str()),
            };
            let mut words = name_words(source.name.as_str());
            if earlier.is_none() {
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
            let rendered = render(&words, style);
            let Ok(tool_name) = ToolName::parse(&rendered) else { continue };
            if !names.insert(rendered) {
                continue;
            }
            let mut def = source.clone();
            def.name = tool_name;
            def.title = None;
            def.description =
                source.description.as_deref().map(|text| perturb_text(text, source_server, &name, &mut rng));
            def.input_schema = perturb_schema(&source.input_schema, &mut rng);
            if let Some((other_server, original_def)) = &earlier {
                planted.push((
                    ToolKey { server: server.clone(), name: def.name.clone() },
                    ToolKey { server: other_server.clone(), name: original_def.name.clone() },
                ));
            }
            tools.push(def);
        }
        total += tools.len();
        if !tools.is_empty() {
            servers.push(SynthServer { name: server, tools });
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
}
