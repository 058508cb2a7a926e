//! A probe: a request a user would make, optionally with the tool that should serve it.
//! Users supply probes to impact simulations as
//! `[{"query": "...", "expected": {"server": S, "name": N}}]` (`expected` optional).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{InputError, ServerName, ToolKey, ToolName};

/// Probes in one request.
pub const MAX_PROBES: usize = 10_000;
/// Characters of one probe's query.
pub const MAX_PROBE_CHARS: usize = 2_000;
/// Routing trials per probe a caller may ask for.
pub const MAX_TRIALS: u32 = 25;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<ToolKey>,
}

/// Parses a JSON array of probes; a refusal names the field (`probes[3].expected.server`)
/// under `field`.
pub fn parse_probes(value: &Value, field: &str) -> Result<Vec<Probe>, InputError> {
    let Some(items) = value.as_array() else {
        return Err(InputError::new(field, "must be an array of {\"query\", \"expected\"?} objects"));
    };
    if items.len() > MAX_PROBES {
        return Err(InputError::new(field, format!("holds {} probes; at most {MAX_PROBES}", items.len())));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_probe(item).map_err(|error| error.within(&format!("{field}[{index}]"))))
        .collect()
}

fn parse_probe(item: &Value) -> Result<Probe, InputError> {
    let Some(object) = item.as_object() else {
        return Err(InputError::new("", "must be an object with \"query\" and optionally \"expected\""));
    };
    if let Some(unknown) = object.keys().find(|key| !["query", "expected"].contains(&key.as_str())) {
        return Err(InputError::new(unknown.as_str(), "is not a probe field (query, expected)"));
    }
    let query = match object.get("query") {
        Some(Value::String(query)) if !query.trim().is_empty() => query.trim().to_owned(),
        Some(Value::String(_)) => return Err(InputError::new("query", "must not be empty")),
        Some(_) => return Err(InputError::new("query", "must be a string")),
        None => return Err(InputError::new("query", "is required")),
    };
    if query.chars().count() > MAX_PROBE_CHARS {
        return Err(InputError::new("query", format!("is longer than {MAX_PROBE_CHARS} characters")));
    }
    let expected = match object.get("expected") {
        None | Some(Value::Null) => None,
        Some(Value::Object(key)) => {
            let part = |name: &str| match key.get(name) {
                Some(Value::String(text)) => Ok(text.as_str()),
                Some(_) => Err(InputError::new(format!("expected.{name}"), "must be a string")),
                None => Err(InputError::new(format!("expected.{name}"), "is required")),
            };
            let server = ServerName::parse(part("server")?).map_err(|error| error.within("expected.server"))?;
            let name = ToolName::parse(part("name")?).map_err(|error| error.within("expected.name"))?;
            Some(ToolKey { server, name })
        }
        Some(_) => return Err(InputError::new("expected", "must be an object {\"server\", \"name\"}")),
    };
    Ok(Probe { query, expected })
}

/// Checks a requested trial count.
pub fn check_trials(trials: u32, field: &str) -> Result<u32, InputError> {
    if (1..=MAX_TRIALS).contains(&trials) {
        Ok(trials)
    } else {
        Err(InputError::new(field, format!("must be between 1 and {MAX_TRIALS}")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn probes_parse_with_and_without_expected() {
        let probes = parse_probes(
            &json!([{"query": " Create a Salesforce task ", "expected": {"server": "salesforce", "name": "create_sf_task"}},
                    {"query": "open the pricing page"}]),
            "probes",
        )
        .expect("valid");
        assert_eq!(probes[0].query, "Create a Salesforce task");
        assert_eq!(probes[0].expected.as_ref().map(ToString::to_string).as_deref(), Some("salesforce/create_sf_task"));
        assert_eq!(probes[1].expected, None);
    }

    #[test]
    fn a_refusal_names_the_field() {
        let cases = [
            (json!({"query": "x"}), "probes"),
            (json!([{"query": ""}]), "probes[0].query"),
            (json!([{"query": "ok"}, {"query": 3}]), "probes[1].query"),
            (json!([{"text": "hello"}]), "probes[0].text"),
            (json!([{"query": "ok", "expected": {"server": "s"}}]), "probes[0].expected.name"),
            (json!([{"query": "ok", "expected": {"server": "", "name": "n"}}]), "probes[0].expected.server"),
            (json!([{"query": "ok", "expected": "s/n"}]), "probes[0].expected"),
            (json!(["just text"]), "probes[0]"),
        ];
        for (value, field) in cases {
            let error = parse_probes(&value, "probes").expect_err("refused");
            assert_eq!(error.field, field, "{value}: {error}");
        }
        assert_eq!(check_trials(0, "trials").expect_err("refused").field, "trials");
        assert_eq!(check_trials(3, "trials"), Ok(3));
    }
}
