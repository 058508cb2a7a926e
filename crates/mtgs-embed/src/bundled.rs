//! The bundled encoder: paraphrase-MiniLM-L3-v2 compiled into the binary by the
//! `pocket-encoder` crate (4-bit weights, dequantised at load, f32 inference on candle), so
//! `mtgs serve` embeds on a fresh machine with no download and no extra step.

use mtgs_detect::semantic::{EmbedError, Embedder};

pub struct BundledEmbedder {
    encoder: pocket_encoder::Encoder,
    model_id: String,
    dimensions: usize,
    workers: usize,
}

impl std::fmt::Debug for BundledEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundledEmbedder")
            .field("model_id", &self.model_id)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl BundledEmbedder {
    /// Loads the compiled-in weights (about 0.1 s); `workers` threads encode.
    pub fn load(workers: usize) -> Result<Self, EmbedError> {
        let encoder = pocket_encoder::Encoder::new().map_err(|error| EmbedError::Unavailable(error.to_string()))?;
        let info = pocket_encoder::model_info();
        let revision = info.revision.trim_start_matches("sha256:");
        let model_id = format!("bundled:{}@{}/{}t", info.id, &revision[..revision.len().min(16)], info.max_tokens);
        Ok(Self { encoder, model_id, dimensions: info.dimensions, workers: workers.max(1) })
    }

    fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut vectors = self.encoder.embed(&[text]).map_err(|error| EmbedError::BadResponse(error.to_string()))?;
        let vector = vectors.pop().ok_or_else(|| EmbedError::BadResponse("the encoder returned no vector".into()))?;
        crate::unit(vector)
    }
}

impl Embedder for BundledEmbedder {
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
