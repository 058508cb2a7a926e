//! A tool definition as MCP servers send it in `tools/list`, parsed with its limits,
//! its style lints and its canonical form (what drift pinning and caches hash).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{InputError, join_field};
use crate::lint::Lint;
use crate::names::ToolName;

/// Hard limits on one tool definition. Set from the real servers in `eval/corpus`
/// (see `eval/corpus/STATS.md`): each is well above the largest value seen there.
pub mod limits {
    /// The MCP specification's upper bound for a tool name.
    pub const MAX_NAME_CHARS: usize = 128;
    pub const MAX_TITLE_CHARS: usize = 512;
    /// The longest real description seen is about 7,000 characters.
    pub const MAX_DESCRIPTION_CHARS: usize = 16_384;
    /// `inputSchema` and `outputSchema`, each, as compact JSON.
    pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
    /// Tools in one request (a `tools/list` page of a large server fits many times over).
    pub const MAX_TOOLS_PER_REQUEST: usize = 10_000;
    /// Descriptions shorter than this draw a `description_short` warning.
    pub const SHORT_DESCRIPTION_CHARS: usize = 20;
    /// Descriptions longer than this draw a `description_long` note: agents read every
    /// description of every tool on every turn.
    pub const LONG_DESCRIPTION_CHARS: usize = 4_000;
}

/// MCP's `Tool` object. Fields mtgs does not model are kept in `extra` and written back
/// unchanged, so a definition round-trips as its server sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: ToolName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "inputSchema")]
    pub input_schema: Value,
    #[serde(rename = "outputSchema", default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A definition that passed validation, with the style findings it drew.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedTool {
    pub def: ToolDef,
    pub lints: Vec<Lint>,
}

impl ToolDef {
    /// Validates one MCP `Tool` object. Errors name the field relative to the tool
    /// (`inputSchema.type`); callers re-root them with [`InputError::within`].
    pub fn parse(value: &Value) -> Result<ParsedTool, InputError> {
        let Value::Object(object) = value else {
            return Err(InputError::new("", format!("expected a tool object, found {}", json_type(value))));
        };
        let mut lints = Vec::new();

        let name = match object.get("name") {
            Some(Value::String(raw)) => ToolName::parse(raw).map_err(|e| e.within("name"))?,
            Some(other) => {
                return Err(InputError::new("name", format!("expected a string, found {}", json_type(other))));
            }
            None => return Err(InputError::new("name", "is required")),
        };
        lints.extend(name.lints());

        let title = optional_string(object, "title", limits::MAX_TITLE_CHARS)?;
        let description = optional_string(object, "description", limits::MAX_DESCRIPTION_CHARS)?;
        match description.as_deref().map(str::trim) {
            None | Some("") => lints.push(Lint::warning(
                "description_missing",
                "description",
                "has no description: agents choose tools by their descriptions",
            )),
            Some(text) if text.chars().count() < limits::SHORT_DESCRIPTION_CHARS => lints.push(Lint::warning(
                "description_short",
                "description",
                format!(
                    "is {} characters long: too short to tell an agent when to use this tool",
                    text.chars().count()
                ),
            )),
            Some(text) if text.chars().count() > limits::LONG_DESCRIPTION_CHARS => lints.push(Lint::info(
                "description_long",
                "description",
                format!("is {} characters long: agents read it on every turn", text.chars().count()),
            )),
            Some(_) => {}
        }

        let input_schema = match object.get("inputSchema") {
            Some(schema) => {
                validate_schema(schema, "inputSchema", &mut lints)?;
                schema.clone()
            }
            None => return Err(InputError::new("inputSchema", "is required (MCP requires a JSON Schema object)")),
        };
        lints.extend(input_schema_lints(&input_schema));

        let output_schema = match object.get("outputSchema") {
            Some(Value::Null) | None => None,
            Some(schema) => {
                validate_schema(schema, "outputSchema", &mut lints)?;
                Some(schema.clone())
            }
        };
        let annotations = match object.get("annotations") {
            Some(Value::Null) | None => None,
            Some(value @ Value::Object(_)) => Some(value.clone()),
            Some(other) => {
                return Err(InputError::new("annotations", format!("expected an object, found {}", json_type(other))));
            }
        };

        let extra = object
            .iter()
            .filter(|(key, _)| {
                !matches!(
                    key.as_str(),
                    "name" | "title" | "description" | "inputSchema" | "outputSchema" | "annotations"
                )
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();

        Ok(ParsedTool {
            def: ToolDef { name, title, description, input_schema, output_schema, annotations, extra },
            lints,
        })
    }

    /// The definition as MCP JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// SHA-256 of the canonical JSON form: equal for definitions that differ only in key
    /// order or whitespace. What drift pinning keys on.
    pub fn canonical_hash(&self) -> String {
        sha256_hex(&canonical_json(&self.to_json()))
    }

    /// Names of the top-level input parameters.
    pub fn parameter_names(&self) -> impl Iterator<Item = &str> {
        self.input_schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|properties| properties.keys().map(String::as_str))
    }
}

/// Reads the `--file` / request shapes a caller may send: one MCP `Tool`, an array of
/// them, or a `tools/list` result `{"tools": [...]}`. Errors are rooted at `tools[i]`.
pub fn parse_tool_list(document: &Value) -> Result<Vec<ParsedTool>, InputError> {
    let (items, root): (&[Value], &str) = match document {
        Value::Array(items) => (items, "tools"),
        Value::Object(object) => match object.get("tools") {
            Some(Value::Array(items)) => (items, "tools"),
            Some(other) => {
                return Err(InputError::new("tools", format!("expected an array, found {}", json_type(other))));
            }
            None if object.contains_key("name") => (std::slice::from_ref(document), ""),
            None => {
                return Err(InputError::new(
                    "",
                    "expected a tool object, an array of tools, or a tools/list result {\"tools\": [...]}",
                ));
            }
        },
        other => {
            return Err(InputError::new(
                "",
                format!("expected a tool, an array of tools or {{\"tools\": [...]}}, found {}", json_type(other)),
            ));
        }
    };
    parse_tools(items, root)
}

/// Validates each tool of a list, refusing duplicate names; errors are rooted at `root[i]`.
pub fn parse_tools(items: &[Value], root: &str) -> Result<Vec<ParsedTool>, InputError> {
    if items.is_empty() {
        return Err(InputError::new(root, "must hold at least one tool"));
    }
    if items.len() > limits::MAX_TOOLS_PER_REQUEST {
        return Err(InputError::new(
            root,
            format!("holds {} tools; the limit per request is {}", items.len(), limits::MAX_TOOLS_PER_REQUEST),
        ));
    }
    let mut seen = std::collections::HashMap::new();
    let mut tools = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = if root.is_empty() && items.len() == 1 { String::new() } else { format!("{root}[{index}]") };
        let parsed = ToolDef::parse(item).map_err(|error| error.within(&at))?;
        if let Some(first) = seen.insert(parsed.def.name.clone(), index) {
            return Err(InputError::new(
                join_field(&at, "name"),
                format!("'{}' is already used by {root}[{first}]; names are unique within a server", parsed.def.name),
            ));
        }
        tools.push(parsed);
    }
    Ok(tools)
}

fn optional_string(object: &Map<String, Value>, field: &str, max_chars: usize) -> Result<Option<String>, InputError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            let length = text.chars().count();
            if length > max_chars {
                return Err(InputError::new(field, format!("is {length} characters long; the limit is {max_chars}")));
            }
            Ok(Some(text.clone()))
        }
        Some(other) => Err(InputError::new(field, format!("expected a string, found {}", json_type(other)))),
    }
}

/// Refuses what is not a JSON Schema (by its meta-schema; 2020-12 unless `$schema` says
/// otherwise, as MCP specifies) or is larger than [`limits::MAX_SCHEMA_BYTES`].
///
/// One legacy form real servers publish is tolerated with a warning: draft-03's boolean
/// `"required": true` on a property. The schema is kept as sent; only validation skips it.
fn validate_schema(schema: &Value, field: &str, lints: &mut Vec<Lint>) -> Result<(), InputError> {
    if !schema.is_object() {
        return Err(InputError::new(field, format!("expected a JSON Schema object, found {}", json_type(schema))));
    }
    let size = serde_json::to_string(schema).map(|text| text.len()).unwrap_or(usize::MAX);
    if size > limits::MAX_SCHEMA_BYTES {
        return Err(InputError::new(
            field,
            format!("is {size} bytes as JSON; the limit is {}", limits::MAX_SCHEMA_BYTES),
        ));
    }
    let mut tolerated: Option<Value> = None;
    loop {
        let current = tolerated.as_ref().unwrap_or(schema);
        let (pointer, message) = match jsonschema::meta::validate(current) {
            Ok(()) => return Ok(()),
            Err(error) => (error.instance_path().to_string(), error.to_string()),
        };
        let at = join_field(field, &pointer.trim_start_matches('/').replace('/', "."));
        let legacy_required =
            pointer.ends_with("/required") && current.pointer(&pointer).is_some_and(Value::is_boolean);
        if !legacy_required {
            return Err(InputError::new(at, format!("is not valid JSON Schema: {message}")));
        }
        let mut copy = current.clone();
        if let Some((parent, _)) = pointer.rsplit_once('/')
            && let Some(Value::Object(object)) = copy.pointer_mut(parent)
        {
            object.remove("required");
        }
        lints.push(Lint::warning(
            "schema_legacy_required",
            &at,
            "is draft-03's boolean form; JSON Schema 2020-12 lists required properties in the parent's `required` array",
        ));
        tolerated = Some(copy);
    }
}

fn input_schema_lints(schema: &Value) -> Vec<Lint> {
    let mut lints = Vec::new();
    match schema.get("type") {
        Some(Value::String(kind)) if kind == "object" => {}
        Some(other) => lints.push(Lint::warning(
            "schema_not_object",
            "inputSchema.type",
            format!("is {other}; MCP tool arguments are a JSON object, so it should be \"object\""),
        )),
        None => lints.push(Lint::warning(
            "schema_not_object",
            "inputSchema.type",
            "is missing; MCP tool arguments are a JSON object, so it should be \"object\"",
        )),
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let undocumented: Vec<&str> = properties
            .iter()
            .filter(|(_, property)| {
                property.get("description").and_then(Value::as_str).is_none_or(|text| text.trim().is_empty())
            })
            .map(|(name, _)| name.as_str())
            .collect();
        if !undocumented.is_empty() {
            lints.push(Lint::info(
                "parameter_undocumented",
                "inputSchema.properties",
                format!("parameters without a description: {}", undocumented.join(", ")),
            ));
        }
    }
    lints
}

/// JSON with object keys sorted at every level and no insignificant whitespace: one
/// string per meaning, whatever key order or spacing a server sent.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(object) => {
                let mut keys: Vec<&String> = object.keys().collect();
                keys.sort();
                out.push('{');
                for (index, key) in keys.into_iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&object[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// "a string", "an object": a JSON value's type as an error message names it.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// SHA-256 of `text`, as lower-case hex: the one digest content is keyed by (definitions,
/// embedded fingerprints).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// FNV-1a over `parts` in order: a fast, stable 64-bit hash for seeded choices that must
/// not move between runs or platforms (the eval split, probe phrasing, routing trials).
/// Not for anything an adversary controls the outcome of.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refusal(value: Value) -> String {
        parse_tool_list(&value).expect_err("should be refused").to_string()
    }

    #[test]
    fn unknown_fields_round_trip() {
        let raw = json!({"name": "echo", "description": "Echoes back the input message", "inputSchema": {"type": "object"},
                         "icons": [{"src": "x.png"}], "_meta": {"k": 1}});
        let parsed = ToolDef::parse(&raw).expect("valid");
        assert_eq!(parsed.def.to_json(), raw);
    }

    #[test]
    fn canonical_hash_ignores_key_order() {
        let a =
            ToolDef::parse(&json!({"name": "t", "inputSchema": {"type": "object", "properties": {}}})).expect("valid");
        let b =
            ToolDef::parse(&json!({"inputSchema": {"properties": {}, "type": "object"}, "name": "t"})).expect("valid");
        assert_eq!(a.def.canonical_hash(), b.def.canonical_hash());
    }

    #[test]
    fn refusals_name_the_field() {
        insta::assert_snapshot!(refusal(json!([{"name": "a", "inputSchema": {"type": "object"}}, {"inputSchema": {}}])),
            @"tools[1].name: is required");
        insta::assert_snapshot!(refusal(json!({"tools": [{"name": "a b", "inputSchema": {}}]})),
            @"tools[0].name: holds whitespace U+0020 at position 1; allowed are letters, digits and _ - . / :");
        insta::assert_snapshot!(refusal(json!({"name": "a"})),
            @"inputSchema: is required (MCP requires a JSON Schema object)");
        insta::assert_snapshot!(refusal(json!({"name": "a", "inputSchema": {"type": "objekt"}})),
            @r#"inputSchema.type: is not valid JSON Schema: "objekt" is not valid under any of the schemas listed in the 'anyOf' keyword"#);
        insta::assert_snapshot!(refusal(json!({"name": "a", "inputSchema": {"type": "object"}, "description": "x".repeat(16_385)})),
            @"description: is 16385 characters long; the limit is 16384");
        insta::assert_snapshot!(refusal(json!([{"name": "a", "inputSchema": {}}, {"name": "a", "inputSchema": {}}])),
            @"tools[1].name: 'a' is already used by tools[0]; names are unique within a server");
        insta::assert_snapshot!(refusal(json!("tool")),
            @r#"expected a tool, an array of tools or {"tools": [...]}, found a string"#);
        insta::assert_snapshot!(refusal(json!([])), @"tools: must hold at least one tool");
    }

    #[test]
    fn draft_03_required_flags_are_tolerated_with_a_warning() {
        let raw = json!({"name": "t", "description": "A tool with a legacy schema", "inputSchema": {"type": "object",
                         "properties": {"q": {"type": "string", "description": "query", "required": true}}}});
        let parsed = ToolDef::parse(&raw).expect("accepted");
        assert_eq!(parsed.def.to_json(), raw, "kept as sent");
        let lint = parsed.lints.iter().find(|lint| lint.code == "schema_legacy_required").expect("warned");
        assert_eq!(lint.field, "inputSchema.properties.q.required");
    }

    #[test]
    fn style_problems_are_lints_not_refusals() {
        let parsed = ToolDef::parse(&json!({"name": "x", "inputSchema": {"properties": {"q": {"type": "string"}}}}))
            .expect("valid");
        let codes: Vec<&str> = parsed.lints.iter().map(|lint| lint.code.as_str()).collect();
        assert_eq!(codes, ["description_missing", "schema_not_object", "parameter_undocumented"]);
    }
}
