-- Stage 3's vector cache: one embedding per (model, fingerprint). A tool is embedded
-- once per model; identical fingerprints (the same tool in two environments) share a row.
-- Vectors of different models never meet: every read names the model.

CREATE TABLE embeddings (
    -- The embedder's identity (name, weights revision, token limit, dimensions).
    model_id     TEXT    NOT NULL,
    -- SHA-256 (hex) of the fingerprint text that was embedded.
    fingerprint  TEXT    NOT NULL CHECK (length(fingerprint) = 64),
    dimensions   INTEGER NOT NULL CHECK (dimensions > 0),
    -- Little-endian f32 values, unit length.
    vector       BLOB    NOT NULL CHECK (length(vector) = 4 * dimensions),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (model_id, fingerprint)
) STRICT, WITHOUT ROWID;
