//! The Student-t predictive of [`bocpd`](super::bocpd), fast for the integer degrees of freedom
//! it always has.
//!
//! BOCPD's Normal-Gamma posterior predicts with ν = 2α degrees of freedom, and α starts at 3 and
//! grows by ½ per point, so ν is always a whole number (6, 7, 8, …). For a whole ν the
//! distribution function has a finite closed form (Abramowitz & Stegun 26.7.3 and 26.7.4). With
//! θ = atan(t/√ν), so that cos²θ = ν/(ν + t²):
//!
//! * ν even: P(|T| ≤ t) = sin θ · Σₖ aₖ cos²ᵏθ over k < ν/2, with a₀ = 1, aₖ = aₖ₋₁ (2k−1)/(2k);
//! * ν odd: P(|T| ≤ t) = (2/π) (θ + sin θ cos θ · Σₖ bₖ cos²ᵏθ over k < (ν−1)/2), with b₀ = 1,
//!   bₖ = bₖ₋₁ (2k)/(2k+1) (for ν = 1, Cauchy, the sum is empty).
//!
//! Worked example, ν = 7 at t = √7: θ = π/4, cos²θ = ½, sin θ cos θ = ½, and
//! Σ = 1 + (2/3)(½) + (8/15)(¼) = 22/15, so P(|T| ≤ √7) = (2/π)(π/4 + 11/15) = ½ + 22/(15π)
//! = 0.96685, a two-sided tail of 0.03315.
//!
//! Why not statrs alone: its tail is the regularised incomplete beta (a continued fraction after
//! three log-gamma evaluations) and its density takes two more log-gammas, about ten divisions
//! and two logarithms each. The cold-start model runs two such pairs per point for every series'
//! first ~140 points: switched off, the pass's detect half took 37 % less time; with the closed
//! form it takes about 24 % less (docs/benchmarks-forecast.md). The density's gamma ratio depends
//! on ν alone, so it is computed once per ν by statrs itself and the density stays statrs' to
//! the bit.
//!
//! The closed form computes the tail as 1 − P(|T| ≤ t), which loses the digits the tail does not
//! have: its absolute error is a few hundred ε at most, so below [`PRECISE_ABOVE`] the tail is
//! statrs' (which is accurate in the far tail), as it is for a ν outside the tables.

use std::f64::consts::{FRAC_2_PI, PI};
use std::sync::OnceLock;

use statrs::distribution::{Continuous, ContinuousCDF, StudentsT};
use statrs::function::gamma::ln_gamma;

/// The largest ν served from the tables. The default BOCPD keeps 100 run lengths, so ν ≤ 107;
/// 256 leaves room for a longer truncation at 6 KB of tables (770 values).
const MAX_NU: usize = 256;

/// Below this the closed-form tail hands over to statrs. Its absolute error is at most about
/// (ν/2 + 4) ε ≈ 3 × 10⁻¹⁴ for ν ≤ 256 (one rounding per term of the sum, a few for the rest),
/// so at 10⁻⁸ the relative error is below 10⁻⁵ and vanishes from −ln p at any precision a
/// threshold is set to.
const PRECISE_ABOVE: f64 = 1e-8;

/// Per-ν constants, computed once.
struct Tables {
    /// Γ((ν+1)/2) / Γ(ν/2), as statrs computes it (exp of the difference of its log-gammas).
    gamma_ratio: Vec<f64>,
    /// √(νπ).
    sqrt_nu_pi: Vec<f64>,
    /// aₖ of the even-ν sum.
    even: Vec<f64>,
    /// bₖ of the odd-ν sum.
    odd: Vec<f64>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let nus = (0..=MAX_NU).map(|nu| nu as f64);
        let gamma_ratio = nus
            .clone()
            .map(|nu| (ln_gamma((nu + 1.0) / 2.0) - ln_gamma(nu / 2.0)).exp())
            .collect();
        let sqrt_nu_pi = nus.map(|nu| (nu * PI).sqrt()).collect();
        let terms = MAX_NU / 2;
        let series = |ratio: fn(f64) -> f64| {
            let mut coefficient = 1.0;
            (0..terms)
                .map(|k| {
                    if k > 0 {
                        coefficient *= ratio(k as f64);
                    }
                    coefficient
                })
                .collect()
        };
        Tables {
            gamma_ratio,
            sqrt_nu_pi,
            even: series(|k| (2.0 * k - 1.0) / (2.0 * k)),
            odd: series(|k| (2.0 * k) / (2.0 * k + 1.0)),
        }
    })
}

/// A Student-t distribution with location μ, scale σ and ν degrees of freedom.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StudentT {
    location: f64,
    scale: f64,
    freedom: f64,
}

impl StudentT {
    /// `None` where statrs would refuse the parameters: a NaN location, a scale or ν that is
    /// not positive.
    pub(crate) fn new(location: f64, scale: f64, freedom: f64) -> Option<Self> {
        let valid = !location.is_nan() && scale > 0.0 && freedom > 0.0;
        valid.then_some(Self {
            location,
            scale,
            freedom,
        })
    }

    #[cfg(test)]
    pub(crate) fn scale(&self) -> f64 {
        self.scale
    }

    #[cfg(test)]
    pub(crate) fn freedom(&self) -> f64 {
        self.freedom
    }

    /// ν as a table index, when it is a whole number the tables hold.
    fn whole_freedom(&self) -> Option<usize> {
        let nu = self.freedom;
        (nu.fract() == 0.0 && nu <= MAX_NU as f64).then_some(nu as usize)
    }

    fn statrs(&self) -> Option<StudentsT> {
        StudentsT::new(self.location, self.scale, self.freedom).ok()
    }

    /// P(|X − μ| ≥ |x − μ|).
    pub(crate) fn two_sided_tail(&self, x: f64) -> f64 {
        let dev = (x - self.location).abs();
        if let Some(p) = self
            .whole_freedom()
            .and_then(|nu| closed_form_tail(dev / self.scale, nu))
        {
            return p;
        }
        self.statrs()
            .map_or(f64::NAN, |t| 2.0 * t.sf(self.location + dev))
    }

    /// The density at `x`: statrs' formula with its per-ν gamma ratio looked up, so the same
    /// bits as `StudentsT::pdf`.
    pub(crate) fn pdf(&self, x: f64) -> f64 {
        let Some(nu) = self.whole_freedom() else {
            return self.statrs().map_or(f64::NAN, |t| t.pdf(x));
        };
        if x.is_infinite() {
            return 0.0;
        }
        let tables = tables();
        let d = (x - self.location) / self.scale;
        tables.gamma_ratio[nu] * (1.0 + d * d / self.freedom).powf(-0.5 * (self.freedom + 1.0))
            / tables.sqrt_nu_pi[nu]
            / self.scale
    }
}

/// P(|T| ≥ t) for a standard Student-t with a whole `nu` in 1..=MAX_NU degrees of freedom, by
/// A&S 26.7.3/26.7.4; `None` where it would not be precise (a tail below [`PRECISE_ABOVE`], a
/// non-finite t).
fn closed_form_tail(t: f64, nu: usize) -> Option<f64> {
    if !t.is_finite() || nu == 0 {
        return None;
    }
    let tables = tables();
    let nu_f = nu as f64;
    let r2 = nu_f + t * t;
    let cos2 = nu_f / r2;
    let sin = t / r2.sqrt();
    let sum = |coefficients: &[f64]| coefficients.iter().rev().fold(0.0, |acc, c| acc * cos2 + c);
    let inside = if nu.is_multiple_of(2) {
        sin * sum(&tables.even[..nu / 2])
    } else {
        let theta = (t / nu_f.sqrt()).atan();
        FRAC_2_PI * (theta + sin * cos2.sqrt() * sum(&tables.odd[..(nu - 1) / 2]))
    };
    let tail = 1.0 - inside;
    (tail >= PRECISE_ABOVE).then_some(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard(nu: f64) -> StudentT {
        StudentT::new(0.0, 1.0, nu).unwrap()
    }

    #[test]
    fn tails_by_hand() {
        // ν = 1 (Cauchy): P(|T| ≥ 1) = 1 − (2/π)(π/4) = ½.
        assert!((standard(1.0).two_sided_tail(1.0) - 0.5).abs() < 1e-15);
        // ν = 2: P(|T| ≤ t) = t/√(2 + t²); at t = 1, 1/√3.
        let p = standard(2.0).two_sided_tail(1.0);
        assert!((p - (1.0 - 1.0 / 3f64.sqrt())).abs() < 1e-15, "{p}");
        // ν = 6 at t = 1: sin θ = 1/√7, cos²θ = 6/7, Σ = 1 + (1/2)(6/7) + (3/8)(36/49).
        let sum = 1.0 + 3.0 / 7.0 + 27.0 / 98.0;
        let p = standard(6.0).two_sided_tail(1.0);
        assert!((p - (1.0 - sum / 7f64.sqrt())).abs() < 1e-15, "{p}");
        assert!((p - 0.355_917_68).abs() < 1e-8, "{p}");
        // ν = 7 at t = √7: the module's worked example, ½ − 22/(15π).
        let p = standard(7.0).two_sided_tail(7f64.sqrt());
        assert!((p - (0.5 - 22.0 / (15.0 * PI))).abs() < 1e-15, "{p}");
        assert!((p - 0.033_145_5).abs() < 1e-7, "{p}");
        // Location and scale: X = 3 + 2T, so x = 1 is t = −1, the same tail as t = 1.
        let shifted = StudentT::new(3.0, 2.0, 6.0).unwrap().two_sided_tail(1.0);
        assert!((shifted - standard(6.0).two_sided_tail(1.0)).abs() < 1e-15);
        // At the centre nothing is further out.
        assert_eq!(standard(9.0).two_sided_tail(0.0), 1.0);
    }

    #[test]
    fn tails_match_statrs_wherever_they_are_served() {
        // Against the incomplete beta over ν = 1..=MAX_NU and t from the bulk to the far tail:
        // statrs' own answer below PRECISE_ABOVE, and within 10⁻¹² above it. That bound is
        // statrs' error, not ours: its continued fraction is up to 3.2 × 10⁻¹³ off on this grid
        // (ν = 202, t = 1.625 below), where the closed form is within 2 × 10⁻¹⁶.
        let mut closed = 0;
        for nu in 1..=MAX_NU {
            let reference = StudentsT::new(0.0, 1.0, nu as f64).unwrap();
            for i in 0..=200 {
                let t = f64::from(i) / 8.0;
                let want = 2.0 * reference.sf(t);
                let got = standard(nu as f64).two_sided_tail(t);
                if closed_form_tail(t, nu).is_some() {
                    closed += 1;
                    assert!((got - want).abs() < 1e-12, "ν {nu} t {t}: {got} vs {want}");
                } else {
                    assert_eq!(got.to_bits(), want.to_bits(), "ν {nu} t {t}");
                }
            }
        }
        // Both paths were exercised (t runs to 25: far out for a large ν, not for a small one).
        assert!(closed > 0 && closed < 256 * 201, "{closed}");
    }

    #[test]
    fn tails_against_forty_digit_references() {
        // I_x(ν/2, ½) at x = ν/(ν + t²), evaluated by mpmath's betainc at 40 digits. The closed
        // form's absolute error is a few ε; statrs' is 10⁻¹³ at the first two.
        for (nu, t, exact) in [
            (28.0, 1.125, 0.270_140_648_505_101_97),
            (202.0, 1.625, 0.105_721_784_825_696_91),
            (249.0, 5.875, 1.348_868_470_288_087_2e-8),
        ] {
            let p = standard(nu).two_sided_tail(t);
            assert!((p - exact).abs() < 1e-15, "ν {nu} t {t}: {p}");
        }
    }

    #[test]
    fn densities_are_statrs_to_the_bit() {
        for nu in [1.0, 2.0, 6.0, 7.0, 50.0, 107.0, 256.0, 257.0, 6.5] {
            let ours = StudentT::new(0.7, 1.3, nu).unwrap();
            let reference = StudentsT::new(0.7, 1.3, nu).unwrap();
            for x in [-40.0, -3.0, -0.2, 0.7, 1.0, 2.5, 9.0, 1e6, f64::INFINITY] {
                assert_eq!(
                    ours.pdf(x).to_bits(),
                    reference.pdf(x).to_bits(),
                    "ν {nu} x {x}"
                );
            }
        }
    }

    #[test]
    fn a_fractional_or_large_freedom_is_statrs() {
        for nu in [6.5, 257.0, 1e4] {
            let reference = StudentsT::new(0.0, 1.0, nu).unwrap();
            let p = standard(nu).two_sided_tail(1.5);
            assert_eq!(p.to_bits(), (2.0 * reference.sf(1.5)).to_bits(), "ν {nu}");
        }
    }

    #[test]
    fn parameters_statrs_refuses_are_refused() {
        assert!(StudentT::new(f64::NAN, 1.0, 6.0).is_none());
        assert!(StudentT::new(0.0, 0.0, 6.0).is_none());
        assert!(StudentT::new(0.0, f64::NAN, 6.0).is_none());
        assert!(StudentT::new(0.0, 1.0, 0.0).is_none());
        assert!(StudentT::new(0.0, 1.0, f64::NAN).is_none());
    }
}
