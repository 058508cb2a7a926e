//! Stage 4's probes: requests a user would type that a tool should serve, written offline
//! from its definition. The action and object come from the name (or the description's
//! opening verb), slot values from the input schema (enums, defaults, examples, formats,
//! well-known parameter names), the vendor from the server's name; several phrasings,
//! some naming the vendor and some not. Deterministic for a seed.

use mtgs_core::{ToolDef, ToolKey, fnv1a};
use serde_json::Value;

use crate::text;

/// Probes written per tool unless configured otherwise.
pub const DEFAULT_PROBES_PER_TOOL: usize = 5;
/// Words of the description's first sentence a probe quotes.
const GIST_WORDS: usize = 14;
/// Slots (parameter values) one probe fills at most.
const MAX_SLOTS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    pub per_tool: usize,
    pub seed: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self { per_tool: DEFAULT_PROBES_PER_TOOL, seed: 20_261_124 }
    }
}

/// Words of server names that say nothing about the vendor.
const NOT_VENDOR: &[&str] =
    &["api", "mcp", "modelcontextprotocol", "official", "server", "servers", "the", "tool", "tools"];

/// What a probe is made of, read once from the definition.
#[derive(Debug)]
struct Parts {
    action: String,
    object: String,
    vendor: Option<String>,
    /// The description's first sentence, its verb made imperative.
    gist: Option<String>,
    /// `(parameter words, value)` pairs, required parameters first.
    slots: Vec<(String, String)>,
}

/// `settings.per_tool` distinct requests for the tool `key` defines.
pub fn generate(key: &ToolKey, def: &ToolDef, settings: &ProbeSettings) -> Vec<String> {
    if settings.per_tool == 0 {
        return Vec::new();
    }
    let mut rng = Seeded::new(&[
        &settings.seed.to_le_bytes(),
        key.server.as_str().as_bytes(),
        b"/",
        def.name.as_str().as_bytes(),
    ]);
    let parts = parts_of(key, def, &mut rng);

    // The plain request first, then the other phrasings in a seeded order.
    let mut order: Vec<usize> = (1..TEMPLATES).collect();
    rng.shuffle(&mut order);
    order.insert(0, 0);

    let mut probes: Vec<String> = Vec::new();
    let mut round = 0;
    while probes.len() < settings.per_tool && round < 3 {
        for &template in &order {
            if probes.len() == settings.per_tool {
                break;
            }
            // Later rounds fill the slots with other values, so phrasings can repeat.
            let slots = slot_clause(&parts.slots, round, &mut rng);
            if let Some(probe) = render(template, &parts, &slots) {
                let probe = tidy(&probe);
                if !probes.contains(&probe) {
                    probes.push(probe);
                }
            }
        }
        round += 1;
    }
    probes
}

const TEMPLATES: usize = 8;

fn render(template: usize, parts: &Parts, slots: &str) -> Option<String> {
    let Parts { action, object, vendor, gist, .. } = parts;
    let vendor = vendor.as_deref();
    let gist = gist.as_deref();
    Some(match template {
        0 => format!("{} {object}{slots}", capitalised(action)),
        1 => format!("Can you {}?", gist?),
        2 => format!("I need to {action} {} in {}{slots}", article(object), vendor?),
        3 => format!("Use {} to {action} {}{slots}", vendor?, article(object)),
        4 => format!("Please {action} the {object} for me{slots}"),
        5 => format!("{} using {}", capitalised(gist?), vendor?),
        6 => format!("{}{slots}", capitalised(gist?)),
        _ => format!("Help me {action} {}{slots}", article(object)),
    })
}

fn parts_of(key: &ToolKey, def: &ToolDef, rng: &mut Seeded) -> Parts {
    let server_words: Vec<String> =
        text::name_words(key.server.as_str()).into_iter().filter(|word| !NOT_VENDOR.contains(&word.as_str())).collect();
    let name_words = text::name_words(def.name.as_str());
    let description = def.description.as_deref().unwrap_or_default();
    let first_sentence = first_sentence(description);

    let action_in_name = name_words.iter().position(|word| text::is_action_word(word));
    let opening_verb = first_sentence.split_whitespace().next().and_then(imperative);
    let action = match (action_in_name, &opening_verb) {
        (Some(position), _) => name_words[position].clone(),
        (None, Some(verb)) => verb.clone(),
        (None, None) => "use".to_owned(),
    };
    let mut object: Vec<&str> = name_words
        .iter()
        .enumerate()
        .filter(|(position, word)| {
            Some(*position) != action_in_name
                && !is_vendor_word(word, &server_words)
                && !word.chars().all(|c| c.is_ascii_digit() || c == 'v')
        })
        .map(|(_, word)| word.as_str())
        .collect();
    if object.is_empty() {
        // `search` on `duckduckgo`: the object is in the description.
        object = first_sentence
            .split_whitespace()
            .skip(1)
            .map(|word| word.trim_matches(|c: char| !c.is_alphanumeric()))
            .filter(|word| word.len() > 2 && !text::is_stop_word(&word.to_lowercase()))
            .take(3)
            .collect();
    }
    let object = object.join(" ").to_lowercase();

    let vendor = server_words.first().map(|word| capitalised(word));
    // Phrasings that do not name the vendor must not name it through the description.
    let gist = opening_verb.map(|verb| {
        let rest = without_vendor(first_sentence.split_whitespace().skip(1), &server_words);
        let rest: Vec<&str> = rest.into_iter().take(GIST_WORDS - 1).collect();
        format!("{verb} {}", rest.join(" ")).trim().trim_end_matches([',', ';']).to_owned()
    });
    Parts { action, object, vendor, gist, slots: slots_of(&def.input_schema, rng) }
}

/// Whether a name word stands for the vendor: one of the server's words, or a short
/// abbreviation of one (`sf` for `salesforce`, `gh` for `github`).
fn is_vendor_word(word: &str, server_words: &[String]) -> bool {
    server_words.iter().any(|vendor| {
        if vendor == word {
            return true;
        }
        let mut letters = vendor.chars();
        word.len() <= 3
            && word.len() >= 2
            && word.chars().next() == vendor.chars().next()
            && word.chars().all(|c| letters.any(|v| v == c))
    })
}

/// Words of a sentence with the vendor's words left out, with a preposition that only
/// introduced them (`a task in Salesforce, for leads` → `a task for leads`).
fn without_vendor<'t>(words: impl Iterator<Item = &'t str>, server_words: &[String]) -> Vec<&'t str> {
    let mut kept: Vec<&'t str> = Vec::new();
    for word in words {
        let bare = word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        if is_vendor_word(&bare, server_words) && (bare.len() > 3 || server_words.contains(&bare)) {
            if kept.last().is_some_and(|last| ["in", "on", "from", "to", "via", "using", "with"].contains(last)) {
                kept.pop();
            }
            continue;
        }
        kept.push(word);
    }
    kept
}

/// The description up to its first full stop or line break.
pub(crate) fn first_sentence(description: &str) -> String {
    let line = description.trim().lines().next().unwrap_or_default();
    let end = line.find(". ").map_or(line.len(), |position| position + 1);
    line[..end].trim().trim_end_matches(['.', ':']).to_owned()
}

/// `Creates` → `create`, `Search` → `search`, `Retrieves` → `retrieve`; `None` when the word
/// is not an action (`The`, `A`).
fn imperative(word: &str) -> Option<String> {
    let word = word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    let candidates = [
        Some(word.clone()),
        word.strip_suffix("ies").map(|stem| format!("{stem}y")),
        word.strip_suffix("es").map(str::to_owned),
        word.strip_suffix('s').map(str::to_owned),
    ];
    candidates.into_iter().flatten().find(|candidate| text::is_action_word(candidate))
}

/// A value for each parameter the schema lets us fill, required ones first.
fn slots_of(schema: &Value, rng: &mut Seeded) -> Vec<(String, String)> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut names: Vec<&String> = properties.keys().collect();
    names.sort_by_key(|name| !required.contains(&name.as_str()));
    names
        .into_iter()
        .filter_map(|name| {
            let value = slot_value(name, &properties[name], rng)?;
            Some((text::name_words(name).join(" "), value))
        })
        .collect()
}

fn slot_value(name: &str, property: &Value, rng: &mut Seeded) -> Option<String> {
    let scalar = |value: &Value| match value {
        Value::String(text) if !text.trim().is_empty() && text.len() <= 60 => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    if let Some(values) = property.get("enum").and_then(Value::as_array) {
        let usable: Vec<String> = values.iter().filter_map(scalar).collect();
        if !usable.is_empty() {
            return Some(usable[rng.below(usable.len())].clone());
        }
    }
    if let Some(value) = property.get("default").and_then(scalar) {
        return Some(value);
    }
    if let Some(value) =
        property.get("examples").and_then(Value::as_array).and_then(|examples| examples.first()).and_then(scalar)
    {
        return Some(value);
    }
    let format = property.get("format").and_then(Value::as_str).unwrap_or_default();
    match format {
        "date" => return Some("2026-03-14".to_owned()),
        "date-time" => return Some("2026-03-14T09:30:00Z".to_owned()),
        "email" => return Some("alex@example.com".to_owned()),
        "uri" | "url" => return Some("https://example.com/pricing".to_owned()),
        _ => {}
    }
    let words = text::name_words(name);
    let has = |wanted: &[&str]| words.iter().any(|word| wanted.contains(&word.as_str()));
    let kind = property.get("type").and_then(Value::as_str).unwrap_or("string");
    match kind {
        "integer" | "number" => {
            if has(&["limit", "count", "max", "num", "number", "size", "top", "days", "hours"]) {
                Some((5 + rng.below(20)).to_string())
            } else {
                None
            }
        }
        "string" => {
            let value = if has(&["path", "file", "filename", "dir", "directory"]) {
                "/home/alex/notes/todo.md"
            } else if has(&["url", "uri", "link", "href"]) {
                "https://example.com/pricing"
            } else if has(&["email"]) {
                "alex@example.com"
            } else if has(&["owner", "org", "organization", "workspace"]) {
                "acme"
            } else if has(&["repo", "repository", "project"]) {
                "billing-service"
            } else if has(&["channel"]) {
                "#announcements"
            } else if has(&["title", "subject", "summary", "name"]) {
                ["Quarterly report", "Fix login timeout", "Team offsite"][rng.below(3)]
            } else if has(&["date", "day", "since", "until", "start", "end"]) {
                "2026-03-14"
            } else if has(&["id", "key", "number"]) {
                ["4711", "PAY-142", "8c1f"][rng.below(3)]
            } else {
                return None;
            };
            Some(value.to_owned())
        }
        _ => None,
    }
}

/// ` with title "Fix login timeout" and priority high`, varied by `round`.
fn slot_clause(slots: &[(String, String)], round: usize, rng: &mut Seeded) -> String {
    if slots.is_empty() {
        return String::new();
    }
    let take = (1 + rng.below(MAX_SLOTS)).min(slots.len());
    let start = round % slots.len();
    let chosen: Vec<String> = slots
        .iter()
        .cycle()
        .skip(start)
        .take(take)
        .map(
            |(param, value)| {
                if value.contains(' ') { format!("{param} \"{value}\"") } else { format!("{param} {value}") }
            },
        )
        .collect();
    format!(" with {}", chosen.join(" and "))
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn article(object: &str) -> String {
    if object.ends_with('s') {
        return object.to_owned();
    }
    let vowel = object.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {object}", if vowel { "an" } else { "a" })
}

/// One space between words, no space before punctuation.
fn tidy(probe: &str) -> String {
    probe.split_whitespace().collect::<Vec<_>>().join(" ").replace(" ?", "?")
}

/// A small deterministic generator (SplitMix64) seeded by a hash of its inputs.
#[derive(Debug)]
pub struct Seeded(u64);

impl Seeded {
    pub fn new(parts: &[&[u8]]) -> Self {
        Self(fnv1a(parts))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use mtgs_core::ServerName;
    use serde_json::json;

    use super::*;

    fn tool(server: &str, value: Value) -> (ToolKey, ToolDef) {
        let def: ToolDef = serde_json::from_value(value).expect("definition");
        let key = ToolKey { server: ServerName::parse(server).expect("server"), name: def.name.clone() };
        (key, def)
    }

    #[test]
    fn probes_name_the_action_object_vendor_and_slot_values() {
        let (key, def) = tool(
            "salesforce",
            json!({
                "name": "create_sf_task",
                "description": "Creates a task in Salesforce for a lead or contact. Tasks appear in the activity timeline.",
                "inputSchema": {"type": "object", "required": ["subject"], "properties": {
                    "subject": {"type": "string"},
                    "priority": {"type": "string", "enum": ["High", "Normal", "Low"]},
                    "due_date": {"type": "string", "format": "date"}
                }}
            }),
        );
        let probes = generate(&key, &def, &ProbeSettings::default());
        assert_eq!(probes.len(), DEFAULT_PROBES_PER_TOOL, "{probes:#?}");
        assert!(probes[0].starts_with("Create task with subject"), "the vendor's abbreviation is dropped: {probes:#?}");
        assert!(probes.iter().any(|probe| probe.contains("Salesforce")), "{probes:#?}");
        assert!(probes.iter().any(|probe| !probe.contains("Salesforce")), "{probes:#?}");
        assert!(
            probes.iter().any(|probe| probe.to_lowercase().contains("create a task for a lead or contact")),
            "the description's opening, made imperative, without the vendor: {probes:#?}"
        );
        let unique: std::collections::HashSet<&String> = probes.iter().collect();
        assert_eq!(unique.len(), probes.len());
    }

    #[test]
    fn probes_are_deterministic_for_a_seed_and_vary_with_it() {
        let (key, def) = tool(
            "jira",
            json!({"name": "create_task", "description": "Create a Jira task.", "inputSchema": {"type": "object",
                "properties": {"title": {"type": "string"}, "priority": {"enum": ["P1", "P2", "P3", "P4"]}}}}),
        );
        let settings = ProbeSettings { per_tool: 6, seed: 7 };
        assert_eq!(generate(&key, &def, &settings), generate(&key, &def, &settings));
        let others: Vec<Vec<String>> =
            (8..12).map(|seed| generate(&key, &def, &ProbeSettings { per_tool: 6, seed })).collect();
        assert!(others.iter().any(|probes| *probes != generate(&key, &def, &settings)));
        assert!(generate(&key, &def, &ProbeSettings { per_tool: 0, seed: 7 }).is_empty());
    }

    #[test]
    fn a_bare_definition_still_gets_probes() {
        let (key, def) = tool("duckduckgo", json!({"name": "search", "inputSchema": {"type": "object"}}));
        let probes = generate(&key, &def, &ProbeSettings { per_tool: 3, seed: 1 });
        assert!(!probes.is_empty(), "{probes:?}");
        assert!(probes.iter().all(|probe| !probe.trim().is_empty()));
        let (key, def) = tool(
            "fetch",
            json!({"name": "fetch", "description": "Fetches a URL from the internet and extracts its contents as markdown.",
                   "inputSchema": {"type": "object", "properties": {"url": {"type": "string"}}}}),
        );
        let probes = generate(&key, &def, &ProbeSettings::default());
        assert!(probes.iter().any(|probe| probe.contains("https://example.com/pricing")), "{probes:#?}");
    }
}
