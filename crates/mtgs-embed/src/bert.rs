//! A BERT-family sentence encoder loaded from local files (`config.json`,
//! `tokenizer.json`, `model.safetensors`, as sentence-transformers publishes
//! all-MiniLM-L6-v2), run in-process on the CPU with candle: attention-masked mean
//! pooling, then L2 normalisation.
//!
//! Texts are encoded one at a time (no padding, so no work is wasted on pad tokens and a
//! vector never depends on which other texts shared its batch), spread over worker
//! threads.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use mtgs_detect::semantic::{EmbedError, Embedder};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams};

/// Tokens read per text (special tokens included) unless configured otherwise. A tool's
/// fingerprint is bounded well below this; MiniLM was trained at 128 (and 256 for
/// all-MiniLM), and cost grows faster than linearly with length.
pub const DEFAULT_MAX_TOKENS: usize = 128;

/// Files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    model_id: String,
    dimensions: usize,
    workers: usize,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("model_id", &self.model_id)
            .field("dimensions", &self.dimensions)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

fn unavailable(path: &Path, error: impl std::fmt::Display) -> EmbedError {
    EmbedError::Unavailable(format!("{}: {error}", path.display()))
}

fn inference(error: impl std::fmt::Display) -> EmbedError {
    EmbedError::Unavailable(format!("inference failed: {error}"))
}

impl BertEmbedder {
    /// Loads the model in `dir`, reading at most `max_tokens` tokens per text, encoding on
    /// `workers` threads. The model's identity is the directory's name, the first bytes
    /// of the weights' SHA-256 and `max_tokens` (truncation changes the vectors).
    pub fn load(dir: &Path, max_tokens: usize, workers: usize) -> Result<Self, EmbedError> {
        for file in MODEL_FILES {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(EmbedError::Unavailable(format!(
                    "{} is missing; a model directory holds {}",
                    path.display(),
                    MODEL_FILES.join(", ")
                )));
            }
        }
        let config_path = dir.join("config.json");
        let config_text = std::fs::read(&config_path).map_err(|error| unavailable(&config_path, error))?;
        let config: Config = serde_json::from_slice(&config_text).map_err(|error| unavailable(&config_path, error))?;
        let dimensions = config.hidden_size;

        let weights_path = dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|error| unavailable(&weights_path, error))?;
        let digest = hex::encode(Sha256::digest(&weights));
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|error| unavailable(&weights_path, error))?;
        let model = BertModel::load(vb, &config).map_err(|error| unavailable(&weights_path, error))?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|error| unavailable(&tokenizer_path, error))?;
        let max_tokens = max_tokens.clamp(8, 512);
        // Some published tokenizer files pad and truncate to a fixed length: override both.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..TruncationParams::default() }))
            .map_err(|error| unavailable(&tokenizer_path, error))?;

        let name = dir.canonicalize().unwrap_or_else(|_| PathBuf::from(dir));
        let name = name.file_name().map_or_else(|| "model".into(), |name| name.to_string_lossy().into_owned());
        let model_id = format!("bert:{name}@{}/{max_tokens}t", &digest[..16]);
        Ok(Self { model, tokenizer, model_id, dimensions, workers: workers.max(1) })
    }

    fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let encoding = self.tokenizer.encode(text, true).map_err(inference)?;
        let length = encoding.get_ids().len();
        if length == 0 {
            return Err(EmbedError::BadResponse("the tokenizer produced no tokens".into()));
        }
        let forward = || -> candle_core::Result<Vec<f32>> {
            let device = Device::Cpu;
            let ids = Tensor::new(encoding.get_ids(), &device)?.unsqueeze(0)?;
            let types = Tensor::new(encoding.get_type_ids(), &device)?.unsqueeze(0)?;
            let mask = Tensor::new(encoding.get_attention_mask(), &device)?.unsqueeze(0)?;
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let count = mask.sum(1)?;
            summed.broadcast_div(&count)?.squeeze(0)?.to_vec1::<f32>()
        };
        let pooled = forward().map_err(inference)?;
        crate::unit(pooled)
    }
}

impl Embedder for BertEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        crate::embed_in_parallel(texts, self.workers, |text| self.embed_one(text))
    }
}
