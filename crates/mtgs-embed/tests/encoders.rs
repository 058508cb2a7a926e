//! The local encoders on their real weights: the bundled model always, and
//! all-MiniLM-L6-v2 from the directory `MTGS_EMBED_MODEL_DIR` names (`scripts/test`
//! installs it with `scripts/fetch-model`).

use std::path::PathBuf;

use mtgs_detect::semantic::{Embedder, cosine};
use mtgs_embed::{BertEmbedder, BundledEmbedder};

fn model_dir() -> PathBuf {
    match std::env::var_os("MTGS_EMBED_MODEL_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            panic!("set MTGS_EMBED_MODEL_DIR to all-MiniLM-L6-v2's files: MTGS_EMBED_MODEL_DIR=$(scripts/fetch-model)")
        }
    }
}

fn minilm() -> BertEmbedder {
    BertEmbedder::load(&model_dir(), 128, 2).expect("the model directory loads")
}

const READ_FILE: &str = "Read the contents of a file from the local filesystem";
const OPEN_FILE: &str = "Open a file on disk and return its text";
const SLACK: &str = "Send a message to a Slack channel";

fn similarities(embedder: &dyn Embedder) -> (f32, f32) {
    let vectors = embedder.embed(&[READ_FILE, OPEN_FILE, SLACK]).expect("embeds");
    (cosine(&vectors[0], &vectors[1]), cosine(&vectors[0], &vectors[2]))
}

#[test]
fn bundled_model_places_paraphrases_closer_than_unrelated_requests() {
    let embedder = BundledEmbedder::load(2).expect("the bundled model loads");
    assert_eq!(embedder.dimensions(), 384);
    assert!(embedder.model_id().starts_with("bundled:"), "{}", embedder.model_id());
    let (paraphrase, unrelated) = similarities(&embedder);
    assert!(paraphrase > 0.45 && unrelated < 0.2, "paraphrase {paraphrase}, unrelated {unrelated}");
}

#[test]
fn minilm_places_paraphrases_closer_than_unrelated_requests() {
    let embedder = minilm();
    assert_eq!(embedder.dimensions(), 384);
    let (paraphrase, unrelated) = similarities(&embedder);
    // Measured 0.599 and 0.064 with sentence-transformers' reference implementation.
    assert!((paraphrase - 0.599).abs() < 0.01, "paraphrase {paraphrase}");
    assert!((unrelated - 0.064).abs() < 0.01, "unrelated {unrelated}");
}

#[test]
fn vectors_are_unit_length_and_do_not_depend_on_the_other_texts() {
    let embedder = minilm();
    let alone = embedder.embed(&[OPEN_FILE]).expect("embeds");
    let texts = [SLACK, READ_FILE, OPEN_FILE, "list issues", "x"];
    let together = embedder.embed(&texts).expect("embeds");
    assert_eq!(together.len(), texts.len());
    assert_eq!(alone[0], together[2], "same text, same vector, whatever the batch");
    for vector in &together {
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
}

#[test]
fn long_texts_are_truncated_not_refused() {
    let embedder = minilm();
    let long = "search the web for recent news ".repeat(400);
    let vectors = embedder.embed(&[long.as_str(), ""]).expect("embeds");
    assert_eq!(vectors.len(), 2);
}

#[test]
fn model_identity_names_the_weights_and_the_token_limit() {
    let short = BertEmbedder::load(&model_dir(), 64, 1).expect("loads");
    let long = minilm();
    assert_ne!(short.model_id(), long.model_id(), "truncation changes vectors, so it changes the identity");
    assert!(long.model_id().contains("/128t"), "{}", long.model_id());
}

#[test]
fn a_directory_without_the_weights_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = BertEmbedder::load(dir.path(), 128, 1).expect_err("no files");
    assert!(error.to_string().contains("config.json is missing"), "{error}");
}
