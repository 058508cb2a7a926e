//! Stage 3's machinery outside the pure core: sentence encoders (the bundled model, a
//! BERT-family model loaded from local files, remote OpenAI-compatible providers) that
//! implement [`mtgs_detect::semantic::Embedder`], and the approximate nearest-neighbour
//! index that implements [`mtgs_detect::semantic::VectorIndex`] for large registries.

pub mod bert;
pub mod breaker;
pub mod bundled;
pub mod hnsw;
mod http;
pub mod remote;
pub mod router;

use std::path::PathBuf;
use std::sync::Arc;

use mtgs_detect::semantic::{EmbedError, Embedder};

pub use bert::BertEmbedder;
pub use bundled::BundledEmbedder;

/// Which encoder stage 3 uses.
#[derive(Debug, Clone)]
pub enum EmbedderSettings {
    /// No stage 3.
    Off,
    /// The model compiled into the binary.
    Bundled { workers: usize },
    /// A BERT-family model from local files (see [`bert::MODEL_FILES`]).
    Local { dir: PathBuf, max_tokens: usize, workers: usize },
    /// An OpenAI-compatible embeddings API (opt-in: the only setting that leaves the machine).
    Remote(remote::RemoteEmbedderSettings),
}

/// Worker threads for local encoders: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The encoder `settings` describe, loaded; `None` when stage 3 is off.
pub fn load(settings: &EmbedderSettings) -> Result<Option<Arc<dyn Embedder>>, EmbedError> {
    Ok(match settings {
        EmbedderSettings::Off => None,
        EmbedderSettings::Bundled { workers } => Some(Arc::new(BundledEmbedder::load(*workers)?)),
        EmbedderSettings::Local { dir, max_tokens, workers } => {
            Some(Arc::new(BertEmbedder::load(dir, *max_tokens, *workers)?))
        }
        EmbedderSettings::Remote(settings) => {
            // The blocking HTTP client must not be built on an async runtime's thread.
            let settings = settings.clone();
            let built = std::thread::spawn(move || remote::RemoteEmbedder::new(settings))
                .join()
                .map_err(|_| EmbedError::Unavailable("building the HTTP client panicked".into()))?;
            Some(Arc::new(built.map_err(|error| EmbedError::Unavailable(error.to_string()))?))
        }
    })
}

/// `vector` scaled to unit length; an empty, zero or non-finite vector is a bad answer.
pub(crate) fn unit(vector: Vec<f32>) -> Result<Vec<f32>, EmbedError> {
    let norm = vector.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if vector.is_empty() || !norm.is_finite() || norm == 0.0 {
        return Err(EmbedError::BadResponse("the model produced an empty, zero or non-finite vector".into()));
    }
    Ok(vector.into_iter().map(|x| (f64::from(x) / norm) as f32).collect())
}

/// A vector with the position of its text.
type Indexed = (usize, Vec<f32>);

/// Runs `embed_one` over `texts` on up to `workers` threads, longest texts first so the
/// threads finish together; results come back in the order of `texts`.
pub(crate) fn embed_in_parallel(
    texts: &[&str],
    workers: usize,
    embed_one: impl Fn(&str) -> Result<Vec<f32>, EmbedError> + Sync,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    if texts.len() <= 1 || workers <= 1 {
        return texts.iter().map(|text| embed_one(text)).collect();
    }
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(texts[index].len()));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Vec<Indexed>, EmbedError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(texts.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let position = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&index) = order.get(position) else { return Ok(done) };
                        done.push((index, embed_one(texts[index])?));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| Err(EmbedError::Unavailable("an encoder thread panicked".into())))
            })
            .collect()
    });
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
    for result in results {
        for (index, vector) in result? {
            vectors[index] = Some(vector);
        }
    }
    vectors
        .into_iter()
        .map(|vector| vector.ok_or_else(|| EmbedError::Unavailable("an encoder thread stopped early".into())))
        .collect()
}
