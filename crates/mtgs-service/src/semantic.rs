//! Stage 3 in the service: each tool's fingerprint is embedded once per model (vectors
//! are cached in the store under the model's identity and the fingerprint's hash), and
//! detectors are built with the semantic stage when an embedder is configured.

use std::collections::HashMap;
use std::sync::Arc;

use mtgs_core::{ServerName, ToolDef, ToolKey};
use mtgs_detect::behavioural::BehaviouralStage;
use mtgs_detect::probes::generate;
use mtgs_detect::routing::{RoutingIndex, RoutingQuery};
use mtgs_detect::semantic::{
    EmbedError, Embedder, Embedding, ExactIndex, SemanticThresholds, VectorIndex, fingerprint,
};
use mtgs_detect::{Detector, PreparedTool};

use crate::registry::Service;
use crate::{Result, ServiceError};

/// Texts sent to the embedder per call: bounds the memory of one call and lets progress
/// and cache writes happen between calls.
const EMBED_CHUNK: usize = 256;

/// How stage 3 runs: the model, the similarity bands, and the index kind.
#[derive(Clone)]
pub struct SemanticSettings {
    pub embedder: Arc<dyn Embedder>,
    pub thresholds: SemanticThresholds,
    /// Builds the vector index for a registry of about `len` tools of `dimensions`.
    pub index: Arc<dyn Fn(usize, usize) -> Box<dyn VectorIndex> + Send + Sync>,
}

impl SemanticSettings {
    /// `embedder` with the calibrated thresholds and exact search.
    pub fn new(embedder: Arc<dyn Embedder>) -> Self {
        Self {
            embedder,
            thresholds: SemanticThresholds::default(),
            index: Arc::new(|dimensions, _len| Box::new(ExactIndex::new(dimensions))),
        }
    }
}

impl std::fmt::Debug for SemanticSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticSettings")
            .field("embedder", &self.embedder.model_id())
            .field("thresholds", &self.thresholds)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// An empty detector with the configured stages, for about `len` tools.
    pub(crate) fn new_detector(&self, len: usize) -> Detector {
        let settings = &self.inner.settings;
        let detector = match &settings.semantic {
            Some(semantic) => {
                Detector::with_semantic((semantic.index)(semantic.embedder.dimensions(), len), semantic.thresholds)
            }
            None => Detector::with_default_stages(),
        };
        match &settings.behavioural {
            Some(behavioural) => {
                // Stage 4 shortlists by embedding too, in an index of the same kind as stage 3's.
                let vectors = match &settings.semantic {
                    Some(semantic) => (semantic.index)(semantic.embedder.dimensions(), len),
                    None => Box::new(ExactIndex::new(0)),
                };
                detector.with_behavioural(BehaviouralStage::new(
                    RoutingIndex::new(vectors, behavioural.routing),
                    behavioural.router.clone(),
                    behavioural.probes,
                    behavioural.thresholds,
                ))
            }
            None => detector,
        }
    }

    /// The tools prepared for detection, each with its embedding when stage 3 is on.
    /// Cached vectors are reused; missing ones are computed (on blocking threads) and
    /// cached. When the model fails, the tools go without vectors and stage 3 reports
    /// that it did not run for them; checks still run stages 1 and 2.
    pub(crate) async fn prepare(&self, tools: Vec<(ServerName, ToolDef)>) -> Result<Vec<PreparedTool>> {
        Ok(self.prepare_reporting(tools).await?.0)
    }

    /// [`Service::prepare`], with why the model failed, if it did. With stage 4 on, each
    /// tool also gets its probes, embedded with the same model and cache.
    pub(crate) async fn prepare_reporting(
        &self,
        tools: Vec<(ServerName, ToolDef)>,
    ) -> Result<(Vec<PreparedTool>, Option<String>)> {
        let Some(semantic) = self.inner.settings.semantic.clone() else {
            // Without stage 3, stage 4 is shown no pairs (it tests what stage 3 flagged):
            // no probes to write (stage 4 writes a tool's own when it needs them).
            let prepared = tools.into_iter().map(|(server, def)| PreparedTool::new(server, def)).collect();
            return Ok((prepared, None));
        };
        let probes: Vec<Vec<String>> = match &self.inner.settings.behavioural {
            Some(behavioural) => tools
                .iter()
                .map(|(server, def)| {
                    let key = ToolKey { server: server.clone(), name: def.name.clone() };
                    generate(&key, def, &behavioural.probes)
                })
                .collect(),
            None => vec![Vec::new(); tools.len()],
        };
        let fingerprints: Vec<String> = tools.iter().map(|(_, def)| fingerprint(def)).collect();
        let texts: Vec<&str> =
            fingerprints.iter().map(String::as_str).chain(probes.iter().flatten().map(String::as_str)).collect();
        let (vectors, failure) = match self.vectors_of_texts(&semantic.embedder, &texts).await {
            Ok(vectors) => (vectors, None),
            Err(ServiceError::Embedding(error)) => {
                tracing::warn!(%error, model = semantic.embedder.model_id(), "embedding failed; stage 3 skipped");
                (vec![None; texts.len()], Some(error.to_string()))
            }
            Err(error) => return Err(error),
        };
        // `vectors` follows `texts`: the fingerprints, then every tool's probes in order.
        let (fingerprint_vectors, probe_vectors) = vectors.split_at(fingerprints.len());
        let mut probe_vectors = probe_vectors.iter().cloned();
        let prepared = tools
            .into_iter()
            .zip(fingerprint_vectors.iter().cloned())
            .zip(probes)
            .map(|(((server, def), embedding), probes)| {
                let probes =
                    probes.into_iter().map(|text| RoutingQuery::new(text, probe_vectors.next().flatten())).collect();
                PreparedTool::new(server, def).with_embedding(embedding).with_probes(probes)
            })
            .collect();
        Ok((prepared, failure))
    }

    /// Queries embedded with stage 3's model (cached like fingerprints); without vectors
    /// when stage 3 is off or the model failed (routing then uses BM25 alone).
    pub(crate) async fn routing_queries(&self, texts: Vec<String>) -> Result<Vec<RoutingQuery>> {
        let Some(semantic) = self.inner.settings.semantic.clone() else {
            return Ok(texts.into_iter().map(|text| RoutingQuery::new(text, None)).collect());
        };
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = match self.vectors_of_texts(&semantic.embedder, &refs).await {
            Ok(vectors) => vectors,
            Err(ServiceError::Embedding(error)) => {
                tracing::warn!(%error, "embedding probes failed; routing by BM25 alone");
                vec![None; texts.len()]
            }
            Err(error) => return Err(error),
        };
        Ok(texts.into_iter().zip(vectors).map(|(text, vector)| RoutingQuery::new(text, vector)).collect())
    }

    /// The embedding of each text, in order (from the cache, else computed and cached).
    async fn vectors_of_texts(&self, embedder: &Arc<dyn Embedder>, texts: &[&str]) -> Result<Vec<Option<Embedding>>> {
        let owned: Vec<String> = texts.iter().map(|text| (*text).to_owned()).collect();
        let hashes: Vec<String> = owned.iter().map(|text| mtgs_core::sha256_hex(text)).collect();
        let vectors = self.vectors(embedder, &owned, &hashes).await?;
        Ok(hashes.iter().map(|hash| vectors.get(hash).and_then(|vector| Embedding::new(vector.clone()))).collect())
    }

    /// Stage 3's embedding of each tool (from the cache, else computed); `None` for all
    /// when stage 3 is off or the model failed.
    pub async fn embeddings_of(&self, tools: Vec<(ServerName, ToolDef)>) -> Result<Vec<Option<Embedding>>> {
        Ok(self.prepare(tools).await?.into_iter().map(|tool| tool.embedding).collect())
    }

    /// Vectors by fingerprint hash for `texts`: from the cache, else computed and cached.
    async fn vectors(
        &self,
        embedder: &Arc<dyn Embedder>,
        texts: &[String],
        hashes: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        let model = embedder.model_id().to_owned();
        let mut unique: Vec<&str> = hashes.iter().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        let mut found = self.store().embeddings(&model, &unique).await?;
        found.retain(|_, vector| vector.len() == embedder.dimensions());
        if found.len() == unique.len() {
            return Ok(found);
        }
        // Another caller may be embedding the same tools: wait, then read the cache again.
        let _embedding = self.inner.embedding.lock().await;
        let missing_keys: Vec<&str> = unique.iter().copied().filter(|hash| !found.contains_key(*hash)).collect();
        let mut cached = self.store().embeddings(&model, &missing_keys).await?;
        cached.retain(|_, vector| vector.len() == embedder.dimensions());
        found.extend(cached);

        let mut queued = std::collections::HashSet::new();
        let missing: Vec<(String, String)> = texts
            .iter()
            .zip(hashes)
            .filter(|(_, hash)| !found.contains_key(*hash) && queued.insert(hash.as_str()))
            .map(|(text, hash)| (hash.clone(), text.clone()))
            .collect();
        for chunk in missing.chunks(EMBED_CHUNK) {
            let embedder = embedder.clone();
            let batch: Vec<String> = chunk.iter().map(|(_, text)| text.clone()).collect();
            let computed = tokio::task::spawn_blocking(move || {
                let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
                embedder.embed(&texts)
            })
            .await
            .map_err(|error| ServiceError::Internal(format!("embedding thread failed: {error}")))?
            .map_err(ServiceError::Embedding)?;
            if computed.len() != chunk.len() {
                return Err(ServiceError::Embedding(EmbedError::BadResponse(format!(
                    "{} vectors for {} texts",
                    computed.len(),
                    chunk.len()
                ))));
            }
            let rows: Vec<(String, Vec<f32>)> = chunk.iter().map(|(hash, _)| hash.clone()).zip(computed).collect();
            self.store().put_embeddings(&model, &rows, self.now()).await?;
            found.extend(rows);
        }
        Ok(found)
    }
}
