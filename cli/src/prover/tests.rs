//! The shapes the defaults make.

use keel_prover::Shape;
use keel_state::DEFAULT_DEPTH;

use super::*;

/// The production defaults agree: the sequencer's batch capacity, the prover's capacity
/// and the default depth make a circuit that fills 2^17 rows (a batch that holds one more
/// operation would not fit).
#[test]
fn the_default_batch_fills_the_production_circuit() {
    let s = shape(DEFAULT_CAPACITY, DEFAULT_DEPTH, None).unwrap();
    assert_eq!((s.depth, s.k), (26, 17), "{s:?}");
    assert_eq!(Shape::fill(DEFAULT_DEPTH, 17).capacity, DEFAULT_CAPACITY);
    check_shape(s).unwrap();
}

/// The devnet's batch fills 2^14 rows at its depth.
#[test]
fn the_devnet_batch_fills_its_circuit() {
    use crate::devnet::{DEFAULT_CAPACITY, DEFAULT_DEPTH};
    let s = shape(DEFAULT_CAPACITY, DEFAULT_DEPTH, None).unwrap();
    assert_eq!(s.k, 14, "{s:?}");
    assert_eq!(Shape::fill(DEFAULT_DEPTH, 14).capacity, DEFAULT_CAPACITY);
}

#[test]
fn a_k_too_small_for_the_shape_is_refused_with_the_k_that_fits() {
    let err = check_shape(Shape {
        capacity: 8,
        depth: 24,
        k: 12,
    })
    .unwrap_err()
    .to_string();
    let fit = Shape::fit(8, 24).k;
    assert!(err.contains(&format!("--prover.k {fit}")), "{err}");
    check_shape(Shape::fit(8, 24)).unwrap();
    // a capacity no circuit holds is refused before anything is laid out
    let err = shape(10_000_000, 24, None).unwrap_err().to_string();
    assert!(err.contains("more than 2^26"), "{err}");
}
