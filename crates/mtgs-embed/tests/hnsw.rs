//! The HNSW index against the exact scan it stands in for: the same neighbours (nearly),
//! the same scores (exactly), and the same behaviour on removal, replacement, `skip`,
//! growth and vectors of the wrong dimension.

use std::collections::HashSet;

use mtgs_detect::ToolIdx;
use mtgs_detect::semantic::{Embedding, ExactIndex, VectorIndex, cosine};
use mtgs_embed::hnsw::{AnyIndex, HnswIndex, HnswSettings, Quantization, index_for};

const DIMS: usize = 64;

#[path = "../benches/common/mod.rs"]
mod common;

use common::Rng;

fn random_unit(rng: &mut Rng, dims: usize) -> Embedding {
    Embedding::new((0..dims).map(|_| rng.normal()).collect()).expect("non-zero")
}

/// Around `point`, at a noise level where two members of one cluster have a cosine of
/// roughly 0.6–0.95, like near-duplicate tools.
fn near(rng: &mut Rng, point: &Embedding, noise: f32) -> Embedding {
    let per_dimension = noise / (point.as_slice().len() as f32).sqrt();
    Embedding::new(point.as_slice().iter().map(|x| x + per_dimension * rng.normal()).collect()).expect("non-zero")
}

/// `count` vectors in clusters of about ten.
fn clustered(rng: &mut Rng, count: usize, dims: usize) -> Vec<Embedding> {
    let centroids: Vec<Embedding> = (0..count.div_ceil(10)).map(|_| random_unit(rng, dims)).collect();
    (0..count)
        .map(|_| {
            let centroid = &centroids[rng.below(centroids.len())];
            let noise = 0.2 + 0.5 * rng.unit();
            near(rng, centroid, noise)
        })
        .collect()
}

fn both(vectors: &[Embedding]) -> (ExactIndex, HnswIndex) {
    let mut exact = ExactIndex::new(DIMS);
    let mut hnsw = HnswIndex::new(DIMS, HnswSettings::default()).expect("usearch creates an index");
    for (position, vector) in vectors.iter().enumerate() {
        exact.insert(ToolIdx(position as u32), vector);
        hnsw.insert(ToolIdx(position as u32), vector);
    }
    (exact, hnsw)
}

fn ids(results: &[(ToolIdx, f32)]) -> HashSet<ToolIdx> {
    results.iter().map(|(idx, _)| *idx).collect()
}

const NOTHING: &dyn Fn(ToolIdx) -> bool = &|_| false;

#[test]
fn hnsw_finds_nearly_the_same_ten_neighbours_as_the_exact_scan() {
    let mut rng = Rng(7);
    let vectors = clustered(&mut rng, 3_000, DIMS);
    let (exact, hnsw) = both(&vectors);
    let (mut found, mut wanted) = (0, 0);
    for _ in 0..200 {
        let around = rng.below(vectors.len());
        let query = near(&mut rng, &vectors[around], 0.5);
        let truth = ids(&exact.nearest(&query, 10, NOTHING));
        let approximate = hnsw.nearest(&query, 10, NOTHING);
        assert_eq!(approximate.len(), 10);
        found += ids(&approximate).intersection(&truth).count();
        wanted += truth.len();
    }
    let recall = found as f64 / wanted as f64;
    assert!(recall >= 0.95, "recall@10 {recall:.3}");
}

#[test]
fn hnsw_scores_are_the_exact_cosines_and_come_most_similar_first() {
    let mut rng = Rng(11);
    let vectors = clustered(&mut rng, 2_000, DIMS);
    for quantization in [Quantization::F32, Quantization::F16, Quantization::BF16, Quantization::I8] {
        let settings = HnswSettings { quantization, ..HnswSettings::default() };
        let hnsw =
            HnswIndex::build(DIMS, settings, vectors.iter().cloned().enumerate().map(|(i, v)| (ToolIdx(i as u32), v)))
                .expect("usearch builds an index");
        let mut exact = ExactIndex::new(DIMS);
        for (position, vector) in vectors.iter().enumerate() {
            exact.insert(ToolIdx(position as u32), vector);
        }
        for _ in 0..50 {
            let around = rng.below(vectors.len());
            let query = near(&mut rng, &vectors[around], 0.5);
            let truth = exact.nearest(&query, 16, NOTHING);
            let approximate = hnsw.nearest(&query, 16, NOTHING);
            assert_eq!(approximate.len(), 16, "{quantization:?}");
            for pair in approximate.windows(2) {
                assert!(pair[0].1 >= pair[1].1, "{quantization:?}: not most similar first: {approximate:?}");
            }
            for (idx, score) in &approximate {
                let expected = cosine(query.as_slice(), vectors[idx.0 as usize].as_slice());
                assert!(
                    (score - expected).abs() <= 1e-5,
                    "{quantization:?}: {idx:?} scored {score}, cosine {expected}"
                );
                if let Some((_, exact_score)) = truth.iter().find(|(other, _)| other == idx) {
                    assert!((score - exact_score).abs() <= 1e-5, "{quantization:?}: {score} vs exact {exact_score}");
                }
            }
        }
    }
}

#[test]
fn a_removed_tool_is_never_returned_again() {
    let mut rng = Rng(13);
    let vectors = clustered(&mut rng, 1_500, DIMS);
    let (mut exact, mut hnsw) = both(&vectors);
    let removed: Vec<ToolIdx> = (0..1_500).step_by(3).map(ToolIdx).collect();
    for idx in &removed {
        hnsw.remove(*idx);
        exact.remove(*idx);
    }
    // Removing what is not there changes nothing.
    hnsw.remove(ToolIdx(1));
    hnsw.remove(ToolIdx(1));
    hnsw.remove(ToolIdx(99_999));
    exact.remove(ToolIdx(1));
    assert_eq!(hnsw.len(), exact.len());
    assert_eq!(hnsw.len(), 1_500 - removed.len() - 1);
    let removed: HashSet<ToolIdx> = removed.into_iter().chain([ToolIdx(1)]).collect();
    for idx in &removed {
        let results = hnsw.nearest(&vectors[idx.0 as usize], 16, NOTHING);
        assert_eq!(results.len(), 16);
        assert!(results.iter().all(|(found, _)| !removed.contains(found)), "{idx:?} removed but found: {results:?}");
    }
}

#[test]
fn inserting_a_tool_again_replaces_its_vector() {
    let mut rng = Rng(17);
    let vectors = clustered(&mut rng, 1_200, DIMS);
    let (_, mut hnsw) = both(&vectors);
    let replacement = random_unit(&mut rng, DIMS);
    hnsw.insert(ToolIdx(5), &replacement);
    assert_eq!(hnsw.len(), 1_200);

    let at_new = hnsw.nearest(&replacement, 1, NOTHING);
    assert_eq!(at_new[0].0, ToolIdx(5));
    assert!((at_new[0].1 - 1.0).abs() < 1e-5);

    let at_old = hnsw.nearest(&vectors[5], 16, NOTHING);
    assert_ne!(at_old[0].0, ToolIdx(5), "tool 5 still answers for its old vector: {at_old:?}");
    let old_vector_to_new = cosine(vectors[5].as_slice(), replacement.as_slice());
    for (idx, score) in at_old.iter().filter(|(idx, _)| *idx == ToolIdx(5)) {
        assert!((score - old_vector_to_new).abs() < 1e-5, "{idx:?} scored {score} against its old vector");
    }
    assert!(at_old.iter().filter(|(idx, _)| *idx == ToolIdx(5)).count() <= 1);
}

#[test]
fn skipped_tools_are_never_returned_and_k_still_come_back() {
    let mut rng = Rng(19);
    let vectors = clustered(&mut rng, 2_000, DIMS);
    let (exact, hnsw) = both(&vectors);
    let query = vectors[10].clone();

    let odd_only = |idx: ToolIdx| idx.0.is_multiple_of(2);
    let results = hnsw.nearest(&query, 16, &odd_only);
    assert_eq!(results.len(), 16);
    assert!(results.iter().all(|(idx, _)| idx.0 % 2 == 1), "{results:?}");

    // All but twenty ruled out: the graph alone cannot find them, the index still must.
    let few = |idx: ToolIdx| idx.0 % 100 != 37;
    let results = hnsw.nearest(&query, 16, &few);
    assert_eq!(ids(&results), ids(&exact.nearest(&query, 16, &few)));
    assert_eq!(results.len(), 16);
    assert!(results.iter().all(|(idx, _)| idx.0 % 100 == 37));

    // Fewer left than asked for: all of them.
    let five = |idx: ToolIdx| idx.0 >= 5;
    let results = hnsw.nearest(&query, 16, &five);
    assert_eq!(ids(&results), (0..5).map(ToolIdx).collect());

    let everything = |_: ToolIdx| true;
    assert!(hnsw.nearest(&query, 16, &everything).is_empty());
}

#[test]
fn the_index_grows_past_its_initial_capacity() {
    let mut rng = Rng(23);
    let vectors = clustered(&mut rng, 3_000, DIMS);
    let mut hnsw = HnswIndex::new(DIMS, HnswSettings::default()).expect("usearch creates an index");
    let initial = hnsw.capacity();
    assert!(initial < vectors.len(), "the test must outgrow {initial}");
    for (position, vector) in vectors.iter().enumerate() {
        hnsw.insert(ToolIdx(position as u32), vector);
    }
    assert_eq!(hnsw.len(), 3_000);
    assert!(hnsw.capacity() >= 3_000);
    for position in (0..3_000).step_by(97) {
        let results = hnsw.nearest(&vectors[position], 1, NOTHING);
        assert!((results[0].1 - 1.0).abs() < 1e-5, "tool {position} not found by its own vector: {results:?}");
    }
}

#[test]
fn removed_slots_are_reused_without_growing() {
    let mut rng = Rng(29);
    let vectors = clustered(&mut rng, 1_000, DIMS);
    let (_, mut hnsw) = both(&vectors);
    let capacity = hnsw.capacity();
    for round in 0..3u32 {
        for position in 0..1_000u32 {
            hnsw.remove(ToolIdx(position + 1_000 * round));
            hnsw.insert(ToolIdx(position + 1_000 * (round + 1)), &vectors[position as usize]);
        }
    }
    // The 1 000 tools were replaced three times over: one full set, no more room needed.
    assert_eq!(hnsw.len(), 1_000);
    assert_eq!(hnsw.capacity(), capacity);
    let results = hnsw.nearest(&vectors[0], 1, NOTHING);
    assert_eq!(results[0].0, ToolIdx(3_000));
}

#[test]
fn vectors_of_another_dimension_are_ignored_as_the_exact_index_ignores_them() {
    let mut rng = Rng(31);
    let vectors = clustered(&mut rng, 50, DIMS);
    let (mut exact, mut hnsw) = both(&vectors);
    let wrong = random_unit(&mut rng, DIMS + 1);
    exact.insert(ToolIdx(500), &wrong);
    hnsw.insert(ToolIdx(500), &wrong);
    assert_eq!(hnsw.len(), exact.len());
    assert_eq!(hnsw.len(), 50);
    assert!(hnsw.nearest(&wrong, 5, NOTHING).is_empty());
    assert!(exact.nearest(&wrong, 5, NOTHING).is_empty());
    // A replacement of the wrong dimension leaves the old vector in place, as ExactIndex does.
    exact.insert(ToolIdx(3), &wrong);
    hnsw.insert(ToolIdx(3), &wrong);
    assert_eq!(hnsw.nearest(&vectors[3], 1, NOTHING), exact.nearest(&vectors[3], 1, NOTHING));
}

#[test]
fn a_small_index_returns_every_tool_when_k_exceeds_its_size() {
    let mut rng = Rng(37);
    let vectors = clustered(&mut rng, 5, DIMS);
    let (exact, hnsw) = both(&vectors);
    let query = random_unit(&mut rng, DIMS);
    let approximate = hnsw.nearest(&query, 16, NOTHING);
    assert_eq!(approximate.len(), 5);
    assert_eq!(approximate, exact.nearest(&query, 16, NOTHING));
    assert!(hnsw.nearest(&query, 0, NOTHING).is_empty());
    let empty = HnswIndex::new(DIMS, HnswSettings::default()).expect("usearch creates an index");
    assert!(empty.is_empty());
    assert!(empty.nearest(&query, 16, NOTHING).is_empty());
}

#[test]
fn build_on_several_threads_holds_every_item_once_and_the_later_of_two() {
    let mut rng = Rng(41);
    let vectors = clustered(&mut rng, 2_500, DIMS);
    let replacement = random_unit(&mut rng, DIMS);
    let items = vectors
        .iter()
        .cloned()
        .enumerate()
        .map(|(position, vector)| (ToolIdx(position as u32), vector))
        .chain([(ToolIdx(7), replacement.clone()), (ToolIdx(9_999), random_unit(&mut rng, DIMS + 3))]);
    let hnsw = HnswIndex::build(DIMS, HnswSettings::default(), items).expect("usearch builds an index");
    assert_eq!(hnsw.len(), 2_500);
    let results = hnsw.nearest(&replacement, 1, NOTHING);
    assert_eq!(results[0].0, ToolIdx(7));
}

/// usearch strands about one node in 1,300 when several threads add at once (a node no link
/// leads to, so no search returns it); the build finds and re-links them. Every item of
/// several parallel builds must be found by its own vector among its 16 nearest (a
/// clustered twin can shadow it at k = 1). Without the re-linking this failed on most seeds.
#[test]
fn every_item_of_a_parallel_build_is_found_by_its_own_vector() {
    for seed in [41, 42, 43, 44] {
        let mut rng = Rng(seed);
        let vectors = clustered(&mut rng, 2_500, DIMS);
        let items = vectors.iter().cloned().enumerate().map(|(position, vector)| (ToolIdx(position as u32), vector));
        let hnsw = HnswIndex::build(DIMS, HnswSettings::default(), items).expect("usearch builds an index");
        let lost: Vec<usize> = (0..vectors.len())
            .filter(|position| {
                !hnsw
                    .nearest(&vectors[*position], 16, NOTHING)
                    .iter()
                    .any(|(idx, score)| *idx == ToolIdx(*position as u32) && (score - 1.0).abs() < 1e-5)
            })
            .collect();
        assert!(lost.is_empty(), "seed {seed}: tools not found by their own vectors: {lost:?}");
    }
}

#[test]
fn queries_beyond_the_concurrency_limit_are_still_answered() {
    let mut rng = Rng(47);
    let vectors = clustered(&mut rng, 1_000, DIMS);
    let settings = HnswSettings { concurrency: 1, ..HnswSettings::default() };
    let items = vectors.iter().cloned().enumerate().map(|(position, vector)| (ToolIdx(position as u32), vector));
    let hnsw = HnswIndex::build(DIMS, settings, items).expect("usearch builds an index");
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let (hnsw, vectors) = (&hnsw, &vectors);
            scope.spawn(move || {
                for position in (thread..1_000).step_by(4) {
                    let results = hnsw.nearest(&vectors[position], 8, NOTHING);
                    assert_eq!(results.len(), 8);
                    assert!((results[0].1 - 1.0).abs() < 1e-5, "tool {position} not found by its own vector");
                }
            });
        }
    });
}

#[test]
fn index_for_picks_the_exact_scan_below_the_threshold_and_hnsw_at_it() {
    assert!(!AnyIndex::for_size(DIMS, 999, 1_000).is_approximate());
    assert!(AnyIndex::for_size(DIMS, 1_000, 1_000).is_approximate());
    assert!(AnyIndex::for_size(DIMS, 50_000, 1_000).is_approximate());

    let mut rng = Rng(43);
    let vectors = clustered(&mut rng, 300, DIMS);
    for mut index in [index_for(DIMS, 10, 1_000), index_for(DIMS, 2_000, 1_000)] {
        assert_eq!(index.dimensions(), DIMS);
        for (position, vector) in vectors.iter().enumerate() {
            index.insert(ToolIdx(position as u32), vector);
        }
        index.remove(ToolIdx(0));
        assert_eq!(index.len(), 299);
        let results = index.nearest(&vectors[1], 1, NOTHING);
        assert_eq!(results[0].0, ToolIdx(1));
    }
    assert!(format!("{:?}", index_for(DIMS, 10, 1_000)).starts_with("Exact"));
    assert!(format!("{:?}", index_for(DIMS, 1_000, 1_000)).starts_with("Hnsw"));
}

#[test]
fn a_graph_built_in_bulk_finds_what_the_exact_scan_finds_and_then_grows_one_by_one() {
    let mut rng = Rng(11);
    let vectors = clustered(&mut rng, 2_000, DIMS);
    let items: Vec<(ToolIdx, Embedding)> =
        vectors.iter().enumerate().map(|(position, vector)| (ToolIdx(position as u32), vector.clone())).collect();
    let (exact, _) = both(&vectors);
    let mut bulk = HnswIndex::new(DIMS, HnswSettings::default()).expect("usearch creates an index");
    bulk.insert_many(items);
    assert_eq!(bulk.len(), 2_000);
    let (mut found, mut expected) = (0, 0);
    for query in clustered(&mut rng, 100, DIMS) {
        let truth = ids(&exact.nearest(&query, 10, NOTHING));
        found += ids(&bulk.nearest(&query, 10, NOTHING)).intersection(&truth).count();
        expected += truth.len();
    }
    assert!(found as f64 / expected as f64 >= 0.95, "recall {found}/{expected}");
    // A non-empty graph takes further tools one at a time.
    let extra = random_unit(&mut rng, DIMS);
    bulk.insert_many(vec![(ToolIdx(5_000), extra.clone())]);
    assert_eq!(bulk.nearest(&extra, 1, NOTHING)[0].0, ToolIdx(5_000));
}
