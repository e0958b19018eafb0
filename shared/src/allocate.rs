//! Splitting a rounded amount into rounded parts that add up to it exactly (largest remainder).

use rust_decimal::Decimal;

/// Splits `total` (already at `scale` decimals) into parts proportional to `weights`, each at
/// `scale` decimals, such that the parts add up to `total` exactly.
///
/// Largest-remainder method: each part is first rounded toward zero, then the units left over
/// go one by one to the parts with the largest remainders (ties to the earlier part, so the
/// result is deterministic). Zero or empty weights split evenly.
pub fn allocate(total: Decimal, weights: &[Decimal], scale: u32) -> Vec<Decimal> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let shares = shares_of(weights);
    let unit = Decimal::new(1, scale);
    let sign = if total.is_sign_negative() {
        -Decimal::ONE
    } else {
        Decimal::ONE
    };
    let abs_total = total.abs();
    let mut parts = Vec::with_capacity(n);
    let mut remainders = Vec::with_capacity(n);
    let mut assigned = Decimal::ZERO;
    for s in &shares {
        let exact = abs_total * *s;
        let floor = exact.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::ToZero);
        assigned += floor;
        remainders.push(exact - floor);
        parts.push(floor);
    }
    let mut left = ((abs_total - assigned) / unit).round();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| remainders[b].cmp(&remainders[a]).then(a.cmp(&b)));
    let mut i = 0;
    while left > Decimal::ZERO {
        parts[order[i % n]] += unit;
        left -= Decimal::ONE;
        i += 1;
    }
    parts
        .into_iter()
        .map(|mut p| {
            p *= sign;
            p.rescale(scale);
            p
        })
        .collect()
}

/// Each weight's share of their sum (even shares when they sum to zero). Weights whose sum
/// does not fit in a decimal are first scaled down by the largest, which changes no share but
/// the last of its 28 digits: allocating never panics.
fn shares_of(weights: &[Decimal]) -> Vec<Decimal> {
    let n = weights.len();
    let even = Decimal::ONE / Decimal::from(n as u64);
    let abs: Vec<Decimal> = weights.iter().map(|w| w.abs()).collect();
    let (weights, sum) = match crate::exact::sum(abs.iter().copied(), "sum of weights") {
        Ok(sum) => (abs, sum),
        Err(_) => {
            let top = abs.iter().copied().max().unwrap_or(Decimal::ONE);
            let scaled: Vec<Decimal> = abs.iter().map(|w| w / top).collect();
            let sum = scaled.iter().copied().sum();
            (scaled, sum)
        }
    };
    weights
        .iter()
        .map(|w| if sum.is_zero() { even } else { w / sum })
        .collect()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn golden_allocations() {
        assert_eq!(
            allocate(dec!(10.00), &[dec!(1), dec!(1), dec!(1)], 2),
            vec![dec!(3.34), dec!(3.33), dec!(3.33)]
        );
        assert_eq!(
            allocate(dec!(-0.05), &[dec!(1), dec!(3)], 2),
            vec![dec!(-0.01), dec!(-0.04)]
        );
        assert_eq!(
            allocate(dec!(7), &[dec!(0), dec!(0)], 0),
            vec![dec!(4), dec!(3)]
        );
        assert!(allocate(dec!(1), &[], 2).is_empty());
    }

    proptest! {
        #[test]
        fn parts_sum_to_total(cents in -1_000_000_000i64..1_000_000_000, ws in proptest::collection::vec(0u32..1_000_000, 1..20), scale in 0u32..4) {
            let total = Decimal::new(cents, scale);
            let weights: Vec<Decimal> = ws.iter().map(|w| Decimal::from(*w)).collect();
            let parts = allocate(total, &weights, scale);
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(parts.iter().copied().sum::<Decimal>(), total);
            for p in &parts {
                prop_assert!(p.scale() == scale);
            }
        }
    }
}
