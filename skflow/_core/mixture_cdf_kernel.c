/*
 * The Gaussian-mixture CDF coupling's elementwise map, forward and backward, one pass over the entries each.
 *
 * The same map as mixture_cdf.py's forward direction and the closed form of its autograd gradient, computed
 * entry by entry instead of as ~40 tensor operations a layer, whose fixed cost dominates at training sizes:
 *
 *     w_k = softmax(a)_k,  s_k = exp(clamp(l_k)),  u_k = (x - mu_k) / s_k,
 *     F(x) = sum_k w_k Phi(u_k),  z = Phi^-1(F(x)),
 *     log dz/dx = log f(x) - log phi(z) = logsumexp_k(e_k) + z^2 / 2,  e_k = log w_k - u_k^2 / 2 - log s_k.
 *
 * With P the smaller of F and 1 - F (each a sum of positive terms, so exact in its tail) and sigma = +1 where
 * P = F, -1 where P = 1 - F, z = sigma Phi^-1(P), and for R_k = exp(e_k + z^2 / 2) (= w_k phi(u_k) / (s_k phi(z)))
 * and the responsibilities r_k = exp(e_k - logsumexp(e)):
 *
 *     dz/dx = sum_k R_k,  dz/dmu_k = -R_k,  dz/dl_k = -R_k (x - mu_k),
 *     dz/da_j = sigma w_j (C_j - P) / phi(z),  C_j component j's share of P's side (Phi(u_j) or 1 - Phi(u_j)),
 *     d log(dz/dx) / d. = d logsumexp(e) / d. + z dz/d.,  with d logsumexp(e) / dx = -sum_k r_k u_k / s_k,
 *     / dmu_k = r_k u_k / s_k,  / dl_k = r_k (u_k^2 - 1),  / da_j = r_j - w_j.
 *
 * The log-scales' gradient is zero where their clamp to [log_scale_min, log_scale_max] (mixture_cdf.py's
 * LOG_SCALE_MIN and LOG_SCALE_MAX, passed in) binds, as torch.clamp's.
 * Everything is computed in double precision, also for float32 tensors. An entry whose P is below TAIL_FLOOR
 * (beyond about 35.7 standard deviations of z) is left alone and counted: the caller then runs the PyTorch
 * code, which is exact in any tail.
 *
 * Layout, as MixtureCDFCoupling._elementwise's: x, z and the log-derivatives (D, N), features-major; the
 * parameters of feature d and row n at params[(d * 3K + j) * N + n]: K logits, K means, K log-scales.
 * Built at first use by mixture_cdf_kernel.py, once in double precision and once with SINGLE_PRECISION.
 */
#include <math.h>
#include <stdint.h>

#ifdef SINGLE_PRECISION
typedef float real;
#else
typedef double real;
#endif

#define MAX_COMPONENTS 64
#define TAIL_FLOOR 1e-280
#define SQRT_HALF 0.70710678118654752440
#define SQRT_2PI 2.50662827463100050242
#define HALLEY_STEPS 2

int max_components(void) { return MAX_COMPONENTS; }

/*
 * Phi^-1(p) for 0 < p <= 1/2: the rational start of Abramowitz and Stegun 26.2.23 (absolute error below
 * 4.5e-4), then two Halley steps on Phi(z) = p, each of which about triples the correct digits: within
 * 1.5e-14 of scipy's ndtri from p = 1e-280 to 1/2 (4e-16 relative), where a third step changes nothing.
 */
static double lower_normal_quantile(double p)
{
    double t = sqrt(-2.0 * log(p));
    double z = -(t - (2.515517 + t * (0.802853 + t * 0.010328)) / (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))));
    for (int step = 0; step < HALLEY_STEPS; step++) {
        double ratio = (0.5 * erfc(-z * SQRT_HALF) - p) * SQRT_2PI * exp(0.5 * z * z); /* (Phi(z) - p) / phi(z) */
        z -= ratio / (1.0 + 0.5 * z * ratio);
    }
    return z;
}

/* One entry's mixture: what both passes need, from its x and its 3K parameters (stride n_rows apart). */
typedef struct {
    double weight[MAX_COMPONENTS], inverse_scale[MAX_COMPONENTS], u[MAX_COMPONENTS];
    double responsibility[MAX_COMPONENTS]; /* r_k */
    double side_share[MAX_COMPONENTS];     /* C_k: Phi(u_k) where P = F, 1 - Phi(u_k) where P = 1 - F */
    double smaller_tail;                   /* P */
    double sign;                           /* sigma */
    double log_density;                    /* logsumexp_k(e_k) */
} mixture;

static void evaluate(double x, const real *params, int64_t stride, int64_t k_count, const double *clamp, mixture *m)
{
    double largest_logit = -INFINITY;
    for (int64_t k = 0; k < k_count; k++)
        largest_logit = fmax(largest_logit, (double)params[k * stride]);
    double logit_sum = 0.0;
    for (int64_t k = 0; k < k_count; k++) {
        m->weight[k] = exp((double)params[k * stride] - largest_logit);
        logit_sum += m->weight[k];
    }
    double log_normalizer = largest_logit + log(logit_sum);
    double lower = 0.0, upper = 0.0, largest_e = -INFINITY;
    double tail[MAX_COMPONENTS], e[MAX_COMPONENTS];
    for (int64_t k = 0; k < k_count; k++) {
        /* Comparisons, not fmin and fmax, which would turn a NaN into a bound: a NaN must reach the outputs. */
        double log_scale = (double)params[(2 * k_count + k) * stride];
        log_scale = log_scale < clamp[0] ? clamp[0] : (log_scale > clamp[1] ? clamp[1] : log_scale);
        m->inverse_scale[k] = exp(-log_scale);
        double u = (x - (double)params[(k_count + k) * stride]) * m->inverse_scale[k];
        tail[k] = 0.5 * erfc(fabs(u) * SQRT_HALF); /* Phi(-|u|) */
        m->weight[k] /= logit_sum;
        m->u[k] = u;
        e[k] = (double)params[k * stride] - log_normalizer - 0.5 * u * u - log_scale;
        largest_e = fmax(largest_e, e[k]);
        lower += m->weight[k] * (u <= 0.0 ? tail[k] : 1.0 - tail[k]);
        upper += m->weight[k] * (u <= 0.0 ? 1.0 - tail[k] : tail[k]);
    }
    double e_sum = 0.0;
    for (int64_t k = 0; k < k_count; k++) {
        m->responsibility[k] = exp(e[k] - largest_e);
        e_sum += m->responsibility[k];
    }
    for (int64_t k = 0; k < k_count; k++)
        m->responsibility[k] /= e_sum;
    m->log_density = largest_e + log(e_sum);
    int in_lower_half = lower < 0.5;
    m->sign = in_lower_half ? 1.0 : -1.0;
    m->smaller_tail = in_lower_half ? lower : upper;
    if (m->smaller_tail > 0.5) /* rounding; not fmin, which would turn a NaN into 0.5 */
        m->smaller_tail = 0.5;
    for (int64_t k = 0; k < k_count; k++) {
        int toward_side = in_lower_half ? m->u[k] <= 0.0 : m->u[k] > 0.0;
        m->side_share[k] = toward_side ? tail[k] : 1.0 - tail[k];
    }
}

/* z and log dz/dx of every entry; returns how many entries it left to the PyTorch code (P < TAIL_FLOOR, or NaN). */
int64_t mixture_cdf_forward(
    int64_t n_rows,
    int64_t n_features,
    int64_t k_count,
    double log_scale_min,
    double log_scale_max,
    const real *x,
    const real *params,
    real *z,
    real *log_derivative)
{
    const double clamp[2] = {log_scale_min, log_scale_max};
    int64_t left = 0;
    mixture m;
    for (int64_t d = 0; d < n_features; d++) {
        for (int64_t n = 0; n < n_rows; n++) {
            int64_t entry = d * n_rows + n;
            evaluate((double)x[entry], params + d * 3 * k_count * n_rows + n, n_rows, k_count, clamp, &m);
            if (!(m.smaller_tail >= TAIL_FLOOR)) {
                left++;
                continue;
            }
            double value = m.sign * lower_normal_quantile(m.smaller_tail);
            z[entry] = (real)value;
            log_derivative[entry] = (real)(m.log_density + 0.5 * value * value);
        }
    }
    return left;
}

/* The gradients of x and of the parameters, given those of z and of the log-derivatives (z: the forward's). */
void mixture_cdf_backward(
    int64_t n_rows,
    int64_t n_features,
    int64_t k_count,
    double log_scale_min,
    double log_scale_max,
    const real *x,
    const real *params,
    const real *z,
    const real *grad_z,
    const real *grad_log_derivative,
    real *grad_x,
    real *grad_params)
{
    const double clamp[2] = {log_scale_min, log_scale_max};
    mixture m;
    for (int64_t d = 0; d < n_features; d++) {
        for (int64_t n = 0; n < n_rows; n++) {
            int64_t entry = d * n_rows + n, first = d * 3 * k_count * n_rows + n;
            double xv = (double)x[entry], zv = (double)z[entry];
            double gz = (double)grad_z[entry], gl = (double)grad_log_derivative[entry];
            evaluate(xv, params + first, n_rows, k_count, clamp, &m);
            double half_z_squared = 0.5 * zv * zv;
            double dz_dx = exp(m.log_density + half_z_squared); /* sum_k R_k, with R_k = r_k dz/dx */
            double dlse_dx = 0.0;
            double logit_factor = m.sign * SQRT_2PI * exp(half_z_squared); /* sigma / phi(z) */
            for (int64_t k = 0; k < k_count; k++) {
                double u = m.u[k], responsibility = m.responsibility[k], inverse_scale = m.inverse_scale[k];
                double ratio = responsibility * dz_dx;
                dlse_dx -= responsibility * u * inverse_scale;
                double dz_dlogit = logit_factor * m.weight[k] * (m.side_share[k] - m.smaller_tail);
                double dz_dmean = -ratio;
                double dz_dlog_scale = -ratio * u / inverse_scale;
                double raw_log_scale = (double)params[first + (2 * k_count + k) * n_rows];
                int clamped = !(raw_log_scale >= log_scale_min && raw_log_scale <= log_scale_max);
                grad_params[first + k * n_rows] =
                    (real)(gz * dz_dlogit + gl * (responsibility - m.weight[k] + zv * dz_dlogit));
                grad_params[first + (k_count + k) * n_rows] =
                    (real)(gz * dz_dmean + gl * (responsibility * u * inverse_scale + zv * dz_dmean));
                grad_params[first + (2 * k_count + k) * n_rows] =
                    clamped ? (real)0.0
                            : (real)(gz * dz_dlog_scale + gl * (responsibility * (u * u - 1.0) + zv * dz_dlog_scale));
            }
            grad_x[entry] = (real)(gz * dz_dx + gl * (dlse_dx + zv * dz_dx));
        }
    }
}
