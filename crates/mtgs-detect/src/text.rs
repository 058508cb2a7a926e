//! Text normalisation shared by the stages: splitting tool names into words, folding
//! them for comparison, and reducing descriptions to informative stems.

use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};

/// Splits a tool name into lower-case words at separators (anything not a letter or
/// digit), camelCase humps (`getIssue`) and acronym ends (`HTTPServer` → `http`, `server`).
/// Digits stay with the letters before them (`s3`, `v2`, `oauth2`).
pub fn name_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (index, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            flush(&mut current, &mut words);
            continue;
        }
        if c.is_uppercase() && !current.is_empty() {
            let previous = chars[index - 1];
            let next_is_lower = chars.get(index + 1).is_some_and(|n| n.is_lowercase());
            if previous.is_lowercase() || previous.is_numeric() || (previous.is_uppercase() && next_is_lower) {
                flush(&mut current, &mut words);
            }
        }
        current.extend(c.to_lowercase());
    }
    flush(&mut current, &mut words);
    words
}

/// How a name joins its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameStyle {
    /// `create_task`
    Snake,
    /// `createTask`
    Camel,
    /// `create-task`
    Kebab,
}

impl NameStyle {
    /// The style `name` is written in: kebab-case with hyphens and no underscores,
    /// camelCase with capitals and neither separator, snake_case otherwise.
    pub fn of(name: &str) -> Self {
        if name.contains('-') && !name.contains('_') {
            NameStyle::Kebab
        } else if !name.contains(['_', '-']) && name.chars().any(char::is_uppercase) {
            NameStyle::Camel
        } else {
            NameStyle::Snake
        }
    }

    /// Lower-case `words` joined in this style.
    pub fn render(self, words: &[String]) -> String {
        match self {
            NameStyle::Snake => words.join("_"),
            NameStyle::Kebab => words.join("-"),
            NameStyle::Camel => words
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
}

fn flush(current: &mut String, words: &mut Vec<String>) {
    if !current.is_empty() {
        words.push(std::mem::take(current));
    }
}

/// The name with case, separators and camelCase folded away: `createTask`, `create_task`,
/// `Create-Task` and `createtask` all fold to `createtask`.
pub fn compact(words: &[String]) -> String {
    words.concat()
}

/// The UTS #39 skeleton of a folded name: look-alike characters mapped to one prototype,
/// so `create_tаsk` (Cyrillic `а`) and `create_task` share a skeleton.
pub fn skeleton(folded: &str) -> String {
    unicode_security::skeleton(folded).collect()
}

/// Whether a name mixes scripts in a way no single script explains (Latin with Cyrillic).
pub fn is_mixed_script(name: &str) -> bool {
    use unicode_security::MixedScript;
    !name.is_single_script()
}

fn stemmer() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::English))
}

/// The English (Porter 2) stem of a lower-case word: `issues` and `issue` share one.
pub fn stem(word: &str) -> String {
    stemmer().stem(word).into_owned()
}

/// How much of a description is read for terms: the opening says what a tool is for;
/// the rest of a 7,000-character description is mostly parameter detail.
pub const DESCRIPTION_CHARS_READ: usize = 2_000;

/// Informative stems of free text: lower-cased words of two or more characters, not
/// numbers, not stop words, stemmed; sorted and unique.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = stems(text);
    out.sort_unstable();
    out.dedup();
    out
}

/// [`terms`] in the order they occur, repeats kept: what a term-frequency model counts.
pub fn stems(text: &str) -> Vec<String> {
    informative_words(text).map(|word| stem(&word)).collect()
}

/// [`stems`], each action word followed by its class as `action:CLASS`, so a request to
/// "add" a task meets a tool that "creates" one ([`action_class`]).
pub fn stems_with_action_classes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in informative_words(text) {
        out.push(stem(&word));
        if is_action_word(&word) {
            out.push(format!("action:{}", action_class(&word)));
        }
    }
    out
}

/// Lower-cased words of two or more characters, not numbers, not stop words.
fn informative_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() >= 2 && !word.chars().all(char::is_numeric))
        .map(str::to_lowercase)
        .filter(|word| !is_stop_word(word))
}

const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "being",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "during",
    "each",
    "either",
    "else",
    "etc",
    "few",
    "for",
    "from",
    "further",
    "given",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "his",
    "how",
    "however",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "may",
    "me",
    "might",
    "more",
    "most",
    "must",
    "my",
    "no",
    "nor",
    "not",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "optional",
    "optionally",
    "or",
    "other",
    "our",
    "out",
    "over",
    "own",
    "provided",
    "required",
    "return",
    "returns",
    "same",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "tool",
    "under",
    "until",
    "up",
    "us",
    "use",
    "used",
    "uses",
    "using",
    "very",
    "via",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "within",
    "without",
    "would",
    "you",
    "your",
];

/// English function words, plus words every tool description uses ("tool", "use",
/// "returns") that say nothing about what a particular tool does.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

const ACTIONS: &[&str] = &[
    "accept",
    "add",
    "append",
    "apply",
    "approve",
    "archive",
    "assign",
    "attach",
    "block",
    "call",
    "cancel",
    "check",
    "clear",
    "clone",
    "close",
    "commit",
    "compare",
    "connect",
    "copy",
    "count",
    "create",
    "del",
    "delete",
    "deploy",
    "describe",
    "detach",
    "diff",
    "disable",
    "disconnect",
    "download",
    "drop",
    "edit",
    "enable",
    "exec",
    "execute",
    "export",
    "fetch",
    "fill",
    "find",
    "follow",
    "fork",
    "get",
    "grant",
    "head",
    "hide",
    "import",
    "insert",
    "install",
    "invite",
    "join",
    "kill",
    "leave",
    "link",
    "list",
    "load",
    "lock",
    "login",
    "logout",
    "make",
    "mark",
    "merge",
    "move",
    "mute",
    "new",
    "open",
    "patch",
    "pause",
    "pin",
    "post",
    "pull",
    "push",
    "put",
    "query",
    "read",
    "reject",
    "reload",
    "remove",
    "rename",
    "reopen",
    "reply",
    "request",
    "reset",
    "resolve",
    "restart",
    "restore",
    "resume",
    "revert",
    "revoke",
    "run",
    "save",
    "scan",
    "search",
    "send",
    "set",
    "share",
    "show",
    "sort",
    "start",
    "stop",
    "submit",
    "subscribe",
    "sync",
    "tag",
    "test",
    "unarchive",
    "unassign",
    "unblock",
    "unfollow",
    "uninstall",
    "unlink",
    "unlock",
    "unmute",
    "unpin",
    "unstar",
    "unsubscribe",
    "unwatch",
    "update",
    "upload",
    "upsert",
    "validate",
    "view",
    "watch",
    "write",
];

/// Actions tool names are built from. Two names that differ only in one of these
/// (`get_file` / `set_file`) mean different things however close they are as strings.
pub fn is_action_word(word: &str) -> bool {
    ACTIONS.binary_search(&word).is_ok()
}

/// The action a word names, with synonyms folded together (`add`, `create`, `new` are
/// one action; `post` and `send` another), so that only a change of action separates.
pub fn action_class(word: &str) -> &str {
    match word {
        "add" | "create" | "insert" | "make" | "new" => "create",
        "del" | "delete" | "drop" | "remove" => "delete",
        // One thing by its identity.
        "describe" | "fetch" | "get" | "load" | "query" | "read" | "show" | "view" => "read",
        // Many things by a filter or a query string: agents use these interchangeably.
        "find" | "list" | "search" => "list",
        "edit" | "modify" | "patch" | "update" => "update",
        "post" | "send" => "send",
        other => other,
    }
}

/// Whether one word negates the other (`staged` / `unstaged`, `block` / `unblock`).
pub fn negates(a: &str, b: &str) -> bool {
    let negated = |x: &str, y: &str| ["un", "non", "dis"].iter().any(|prefix| x.strip_prefix(prefix) == Some(y));
    negated(a, b) || negated(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_separators_humps_and_acronyms() {
        let cases = [
            ("create_task", "create task"),
            ("createTask", "create task"),
            ("CreateTask", "create task"),
            ("get-file.contents/v2", "get file contents v2"),
            ("HTTPServerStatus", "http server status"),
            ("list_s3_buckets", "list s3 buckets"),
            ("getV2Issue", "get v2 issue"),
            ("create_tаsk", "create tаsk"),
        ];
        for (name, expected) in cases {
            assert_eq!(name_words(name).join(" "), expected, "{name}");
        }
    }

    #[test]
    fn confusable_names_share_a_skeleton() {
        let latin = compact(&name_words("create_task"));
        let cyrillic = compact(&name_words("create_t\u{0430}sk"));
        assert_ne!(latin, cyrillic);
        assert_eq!(skeleton(&latin), skeleton(&cyrillic));
        assert!(is_mixed_script("create_t\u{0430}sk"));
        assert!(!is_mixed_script("create_task"));
    }

    #[test]
    fn word_lists_are_sorted_for_binary_search() {
        let sorted = |words: &[&str]| words.windows(2).all(|pair| pair[0] < pair[1]);
        assert!(sorted(STOP_WORDS) && sorted(ACTIONS));
        for word in ["get", "set", "unwatch", "accept"] {
            assert!(is_action_word(word), "{word}");
        }
        for word in ["the", "returns", "your", "a"] {
            assert!(is_stop_word(word), "{word}");
        }
        assert_eq!(action_class("add"), action_class("create"));
        assert_ne!(action_class("read"), action_class("write"));
        assert!(negates("staged", "unstaged") && !negates("stage", "staged"));
        assert_eq!(terms("Returns the open issues of a GitHub repository"), ["github", "issu", "open", "repositori"]);
    }
}
