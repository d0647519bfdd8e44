/*
 * The rational-quadratic spline of a coupling layer, forward and backward, each one pass over the rows.
 *
 * The same map and the same closed-form gradient as _spline_forward / _spline_backward in splines.py
 * (Durkan et al. 2019, "Neural Spline Flows"; notation of _ForwardSpline's docstring), computed over blocks
 * of rows instead of as ~100 tensor operations a layer, whose fixed cost dominates at training sizes. Every
 * inner loop runs over the rows of a block with the same arithmetic for each, so that the compiler can
 * vectorize it; the bin of each row is found by comparisons, not by branching.
 * Built at first use by spline_kernel.py, once in double precision and once with SINGLE_PRECISION; where it cannot
 * be built the PyTorch code runs instead.
 *
 * Layout, as coupling_spline's: rows x (N, D) row-major; the features `transformed` (F of them) go through
 * the spline, the parameters of feature f and row n at params[(f * (3K - 1) + j) * N + n]: K width logits,
 * K height logits, K - 1 interior derivative logits. Outside [-B, B] the map is the identity.
 */
#include <stdint.h>
#include <string.h>
#include <tgmath.h>

#ifdef SINGLE_PRECISION
typedef float real;
#else
typedef double real;
#endif

/* The same floors and shift as splines.py (MIN_BIN_SIZE, MIN_DERIVATIVE, DERIVATIVE_SHIFT). */
#define MIN_BIN_SIZE 1e-3
#define MIN_DERIVATIVE 1e-3
#define MAX_BINS 64
#define BLOCK 64

int max_bins(void) { return MAX_BINS; }

/*
 * exp and log that the compiler vectorizes, unlike libm's (which costs the spline most of its time when
 * called element by element). Both follow the usual reduction: split off a power of 2 through the exponent
 * bits, then a series on a short interval, to the type's precision.
 */
#ifdef SINGLE_PRECISION
typedef uint32_t bits_t;
#define EXPONENT_BITS 23
#define EXPONENT_BIAS 127
#define LARGEST_EXPONENT 87.0f
#define SMALLEST_NORMAL 1.17549435e-38f
#define EXP_TERMS 8
#define LOG_TERMS 5
#else
typedef uint64_t bits_t;
#define EXPONENT_BITS 52
#define EXPONENT_BIAS 1023
#define LARGEST_EXPONENT 708.0
#define SMALLEST_NORMAL 2.2250738585072014e-308
#define EXP_TERMS 14
#define LOG_TERMS 10
#endif
#define LOG2_HIGH ((real)0.693145751953125) /* log 2 in two parts: multiples of the first are exact */
#define LOG2_LOW ((real)1.42860682030941723212e-6)

static inline real from_bits(bits_t bits)
{
    real value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* exp(x) = 2^m exp(r), m the integer nearest x / log 2, |r| <= log(2) / 2, exp(r) by its Taylor polynomial.
 * Saturates at exp(+-LARGEST_EXPONENT) (its callers add the result to 1 or to a sum of at least 1, or divide
 * 1 by it); NaN stays NaN. */
static inline real exp_vectorizable(real x)
{
    x = x < -LARGEST_EXPONENT ? -LARGEST_EXPONENT : (x > LARGEST_EXPONENT ? LARGEST_EXPONENT : x);
    const real scaled = x * (real)1.44269504088896340736;
    /* Rounded by a truncating conversion (a floor call would not vectorize); a NaN takes m = 0 (converting
     * it is undefined) and stays NaN through r. */
    const int32_t m = scaled == scaled ? (int32_t)(scaled + (scaled >= 0 ? (real)0.5 : (real)-0.5)) : 0;
    const real r = (x - (real)m * LOG2_HIGH) - (real)m * LOG2_LOW;
    real taylor = 1; /* 1 + r (1 + r/2 (1 + r/3 (...))), by multiplications: a division costs ten of them */
    for (int i = EXP_TERMS; i >= 1; i--) taylor = 1 + taylor * r * (real)(1.0 / i);
    return taylor * from_bits((bits_t)(m + EXPONENT_BIAS) << EXPONENT_BITS);
}

/* log(x) = e log 2 + log(f), x = 2^e f with f in [sqrt(1/2), sqrt(2)), log(f) = 2 atanh(z) with
 * z = (f - 1) / (f + 1), |z| < 0.172, by its odd series. log(0) = -inf, log(inf) = inf, NaN below 0. */
static inline real log_vectorizable(real x)
{
    const int subnormal = x < SMALLEST_NORMAL; /* scaled into the normal range first */
    bits_t bits;
    const real normal = subnormal ? x * (real)(1 << 30) : x;
    memcpy(&bits, &normal, sizeof bits);
    const bits_t exponent_mask = ((bits_t)1 << (8 * sizeof(real) - 1 - EXPONENT_BITS)) - 1;
    real e = (real)(int32_t)((bits >> EXPONENT_BITS) & exponent_mask) - EXPONENT_BIAS - (subnormal ? 30 : 0);
    const bits_t fraction_mask = ((bits_t)1 << EXPONENT_BITS) - 1;
    real f = from_bits((bits & fraction_mask) | ((bits_t)EXPONENT_BIAS << EXPONENT_BITS)); /* in [1, 2) */
    const int halve = f > (real)1.41421356237309504880;
    f = halve ? f * (real)0.5 : f;
    e = halve ? e + 1 : e;
    const real z = (f - 1) / (f + 1), z2 = z * z;
    real series = (real)(1.0 / (2 * LOG_TERMS - 1)); /* 1 + z^2/3 + z^4/5 + ... */
    for (int k = LOG_TERMS - 2; k >= 0; k--) series = (real)(1.0 / (2 * k + 1)) + z2 * series;
    const real result = e * LOG2_HIGH + (2 * z * series + e * LOG2_LOW);
    const real infinity = (real)1e300 * (real)1e300;
    return x > 0 ? (x < infinity ? result : x) : (x == 0 ? -infinity : infinity - infinity);
}

/* log(1 + u) for u >= 0 without losing the digits of a small u: log((1 + u)) u / ((1 + u) - 1) corrects the
 * rounding of 1 + u (Goldberg 1991, "What every computer scientist should know about floating-point"). */
static inline real log1p_vectorizable(real u)
{
    const real one_plus = 1 + u;
    return one_plus == 1 ? u : log_vectorizable(one_plus) * (u / (one_plus - 1));
}

static inline real clamp(real x, real low, real high) { return x < low ? low : (x > high ? high : x); }

/* Everything about one block of rows of one feature: the bin of each row, its knots and sizes, its end
 * derivatives, and the map's terms. p[r][j] points to the probabilities of bin j (r = 0: widths, 1:
 * heights), `stride` apart from one bin to the next. */
typedef struct {
    int64_t count, stride;
    real *p;
    real v[BLOCK], inside[BLOCK], k[BLOCK], before[2][BLOCK], size[2][BLOCK];
    real x0[BLOCK], y0[BLOCK], w[BLOCK], h[BLOCK];
    real d[2][BLOCK], index[2][BLOCK], interior[2][BLOCK], shifted[2][BLOCK];
    real s[BLOCK], slope_sum[BLOCK], xi[BLOCK], one_minus[BLOCK], t[BLOCK], den[BLOCK], q[BLOCK];
    real ratio[BLOCK], inner[BLOCK];
} Block;

#define P(b, r, j) ((b)->p + ((r) * n_bins + (j)) * (b)->stride)

/* Softmax of the width and the height logits of the block's rows, into b->p. */
static void softmax(Block *b, const real *logits, int64_t n_rows, int n_bins)
{
    const int64_t count = b->count;
    real largest[BLOCK], total[BLOCK];
    for (int r = 0; r < 2; r++) {
        const real *a = logits + r * n_bins * n_rows;
        for (int64_t n = 0; n < count; n++) largest[n] = a[n], total[n] = 0;
        for (int j = 1; j < n_bins; j++)
            for (int64_t n = 0; n < count; n++) largest[n] = a[j * n_rows + n] > largest[n] ? a[j * n_rows + n] : largest[n];
        for (int j = 0; j < n_bins; j++) {
            real *p = P(b, r, j);
            for (int64_t n = 0; n < count; n++) total[n] += p[n] = exp_vectorizable(a[j * n_rows + n] - largest[n]);
        }
        for (int64_t n = 0; n < count; n++) total[n] = 1 / total[n];
        for (int j = 0; j < n_bins; j++) {
            real *p = P(b, r, j);
            for (int64_t n = 0; n < count; n++) p[n] *= total[n];
        }
    }
}

/* The bin of each v (clamped to [-B, B]) among the x-knots -B + 2B (m j + (1 - m K) sum_{i<j} p_i), and the
 * map there; b->p holds the probabilities. */
static void evaluate(Block *b, const real *values, int64_t values_stride, const real *params, int64_t n_rows,
                     int n_bins, double bound)
{
    const int64_t count = b->count;
    /* Constants in double, rounded once, as splines.py's cached tensors are. */
    const real min_size = (real)(2 * bound * MIN_BIN_SIZE), scale = (real)(2 * bound * (1 - MIN_BIN_SIZE * n_bins));
    const real shift = (real)log(expm1(1 - MIN_DERIVATIVE)), lowest = (real)-bound;
    real cumulative[BLOCK];
    for (int64_t n = 0; n < count; n++) {
        const real value = values[n * values_stride];
        b->v[n] = clamp(value, lowest, -lowest);
        b->inside[n] = b->v[n] == value;
        b->k[n] = 0, cumulative[n] = 0;
    }
    for (int j = 1; j < n_bins; j++) {
        const real *p = P(b, 0, j - 1), offset = (real)(2 * bound * MIN_BIN_SIZE * j - bound);
        for (int64_t n = 0; n < count; n++) {
            cumulative[n] += p[n];
            b->k[n] += b->v[n] >= offset + scale * cumulative[n] ? 1 : 0;
        }
    }
    for (int r = 0; r < 2; r++) {
        for (int64_t n = 0; n < count; n++) b->before[r][n] = 0, b->size[r][n] = 0;
        for (int j = 0; j < n_bins; j++) {
            const real *p = P(b, r, j);
            for (int64_t n = 0; n < count; n++) {
                const real p_j = p[n]; /* loaded whatever the bin, so that the selections vectorize */
                b->before[r][n] += (real)j < b->k[n] ? p_j : 0;
                b->size[r][n] += (real)j == b->k[n] ? p_j : 0;
            }
        }
    }
    /* Bin k's ends are knots k and k + 1: interior derivatives k - 1 and k, or 1 at the ends of [-B, B]. */
    const real *derivative_logits = params + 2 * n_bins * n_rows;
    for (int end = 0; end < 2; end++) {
        for (int64_t n = 0; n < count; n++) {
            const real index = b->k[n] - 1 + end, clamped = clamp(index, 0, n_bins - 2);
            b->index[end][n] = clamped, b->interior[end][n] = clamped == index, b->shifted[end][n] = shift;
        }
        for (int j = 0; j < n_bins - 1; j++)
            for (int64_t n = 0; n < count; n++) {
                const real logit = derivative_logits[j * n_rows + n];
                b->shifted[end][n] += (real)j == b->index[end][n] ? logit : 0;
            }
        for (int64_t n = 0; n < count; n++) {
            const real x = b->shifted[end][n], softplus = x > 20 ? x : log1p_vectorizable(exp_vectorizable(x)); /* torch's threshold */
            b->d[end][n] = b->interior[end][n] != 0 ? softplus + (real)MIN_DERIVATIVE : 1;
        }
    }
    for (int64_t n = 0; n < count; n++) {
        b->x0[n] = (lowest + min_size * b->k[n]) + scale * b->before[0][n];
        b->y0[n] = (lowest + min_size * b->k[n]) + scale * b->before[1][n];
        b->w[n] = min_size + scale * b->size[0][n];
        b->h[n] = min_size + scale * b->size[1][n];
        const real s = b->h[n] / b->w[n], d0 = b->d[0][n], d1 = b->d[1][n];
        /* The bin's ends may round differently from the searched knots: xi stays in [0, 1]. */
        const real xi = clamp((b->v[n] - b->x0[n]) / b->w[n], 0, 1), one_minus = 1 - xi, t = xi * one_minus;
        b->s[n] = s, b->xi[n] = xi, b->one_minus[n] = one_minus, b->t[n] = t;
        b->slope_sum[n] = (d0 + d1) - 2 * s;
        b->den[n] = s + b->slope_sum[n] * t;
        b->q[n] = s * (xi * xi) + d0 * t;
        b->ratio[n] = b->h[n] * b->q[n] / b->den[n];
        b->inner[n] = (d1 * (xi * xi) + 2 * s * t) + d0 * (one_minus * one_minus);
    }
}

/* Point the block at rows n0.. of feature f: probabilities in `saved` (F, 2K, N) when given, else in `scratch`. */
static void start_block(Block *b, int64_t f, int64_t n0, int64_t n_rows, int n_bins, real *saved, real *scratch)
{
    b->count = n_rows - n0 < BLOCK ? n_rows - n0 : BLOCK;
    if (saved != NULL)
        b->p = saved + f * 2 * n_bins * n_rows + n0, b->stride = n_rows;
    else
        b->p = scratch, b->stride = BLOCK;
}

/* y (N, D): a copy of x on entry, the transformed features replaced; log_det (N,): the sum over them;
 * probabilities (F, 2K, N): the softmaxes, for the backward (NULL: not kept). */
void coupling_spline_forward(int64_t n_rows, int64_t n_columns, int64_t n_transformed, const int64_t *transformed,
                             int64_t n_bins, double bound, const real *x, const real *params, real *y,
                             real *log_det, real *probabilities)
{
    Block b;
    real scratch[2 * MAX_BINS * BLOCK];
    const int64_t n_params = 3 * n_bins - 1;
    for (int64_t n = 0; n < n_rows; n++) log_det[n] = 0;
    for (int64_t f = 0; f < n_transformed; f++) {
        const int64_t column = transformed[f];
        for (int64_t n0 = 0; n0 < n_rows; n0 += BLOCK) {
            const real *logits = params + f * n_params * n_rows + n0;
            start_block(&b, f, n0, n_rows, (int)n_bins, probabilities, scratch);
            softmax(&b, logits, n_rows, (int)n_bins);
            evaluate(&b, x + n0 * n_columns + column, n_columns, logits, n_rows, (int)n_bins, bound);
            real log_derivative[BLOCK];
            for (int64_t n = 0; n < b.count; n++) {
                const real s_den = b.s[n] / b.den[n]; /* s^2 inner / den^2 as inner (s / den)^2: in range */
                log_derivative[n] = log_vectorizable(b.inner[n] * (s_den * s_den));
            }
            for (int64_t n = 0; n < b.count; n++) {
                if (b.inside[n] == 0) continue; /* identity: y already holds x, log-derivative 0 */
                y[(n0 + n) * n_columns + column] = b.y0[n] + b.ratio[n];
                log_det[n0 + n] += log_derivative[n];
            }
        }
    }
}

/* grad_x (N, D): a copy of grad_y on entry, the transformed features replaced; grad_params (F, 3K - 1, N);
 * probabilities: the forward's. */
void coupling_spline_backward(int64_t n_rows, int64_t n_columns, int64_t n_transformed, const int64_t *transformed,
                              int64_t n_bins, double bound, const real *x, const real *params, real *probabilities,
                              const real *grad_y, const real *grad_log_det, real *grad_x, real *grad_params)
{
    Block b;
    const int64_t n_params = 3 * n_bins - 1;
    const int bins = (int)n_bins;
    const real scale = (real)(2 * bound * (1 - MIN_BIN_SIZE * n_bins));
    real g_lower[2][BLOCK], g_size[2][BLOCK], g_d[2][BLOCK];
    for (int64_t f = 0; f < n_transformed; f++) {
        const int64_t column = transformed[f];
        for (int64_t n0 = 0; n0 < n_rows; n0 += BLOCK) {
            const real *logits = params + f * n_params * n_rows + n0;
            real *grad = grad_params + f * n_params * n_rows + n0;
            start_block(&b, f, n0, n_rows, bins, probabilities, NULL);
            evaluate(&b, x + n0 * n_columns + column, n_columns, logits, n_rows, bins, bound);
            /* Outside [-B, B]: grad_x already holds grad_y, and no parameter gradient. */
            real g_out[BLOCK], g_log[BLOCK], g_x[BLOCK];
            for (int64_t n = 0; n < b.count; n++) {
                g_out[n] = b.inside[n] != 0 ? grad_y[(n0 + n) * n_columns + column] : 0;
                g_log[n] = b.inside[n] != 0 ? grad_log_det[n0 + n] : 0;
            }
            for (int64_t n = 0; n < b.count; n++) {
                const real s = b.s[n], xi = b.xi[n], t = b.t[n], d0 = b.d[0][n], d1 = b.d[1][n];
                const real w = b.w[n], h = b.h[n], den = b.den[n], one_minus = b.one_minus[n];
                const real a = g_out[n] / den;                        /* d out / d numerator */
                const real c = g_log[n] / b.inner[n];                 /* d log_det / d inner */
                const real g = a * b.ratio[n] + 2 * (g_log[n] / den); /* -(d / d den) of both outputs */
                const real ah = a * h, one_minus_2xi = one_minus - xi;
                /* Gradients with respect to s, xi, d0, d1 and (through the numerator h q) h, the others fixed. */
                const real g_s = ((ah * (xi * xi) + 2 * (g_log[n] / s)) + 2 * t * (c + g)) - g;
                const real g_xi = ah * (d0 * one_minus_2xi + 2 * s * xi)
                                  + 2 * c * ((d1 * xi + s * one_minus_2xi) - d0 * one_minus)
                                  - g * b.slope_sum[n] * one_minus_2xi;
                g_x[n] = g_xi / w; /* = -(d / d x0), through xi = (v - x0) / w */
                g_d[0][n] = ((ah - g) * t + c * (one_minus * one_minus)) * b.interior[0][n];
                g_d[1][n] = (c * (xi * xi) - g * t) * b.interior[1][n];
                g_lower[0][n] = -g_x[n] * scale;
                g_lower[1][n] = g_out[n] * scale;
                g_size[0][n] = -(g_s * s + g_xi * xi) / w * scale; /* through s and xi */
                g_size[1][n] = (g_s / w + a * b.q[n]) * scale;     /* through the numerator and s = h / w */
            }
            for (int64_t n = 0; n < b.count; n++)
                if (b.inside[n] != 0) grad_x[(n0 + n) * n_columns + column] = g_x[n];
            /* Knot k depends on the probabilities before k, the bin's size on p_k; then the softmax:
             * d logit_i = p_i (G_i - <G, p>). */
            for (int r = 0; r < 2; r++) {
                real dot[BLOCK];
                for (int64_t n = 0; n < b.count; n++) dot[n] = g_lower[r][n] * b.before[r][n] + g_size[r][n] * b.size[r][n];
                for (int j = 0; j < bins; j++) {
                    const real *p = P(&b, r, j);
                    real *out = grad + (r * bins + j) * n_rows;
                    for (int64_t n = 0; n < b.count; n++) {
                        const real lower = g_lower[r][n], size = g_size[r][n];
                        out[n] = p[n] * (((real)j < b.k[n] ? lower : 0) + ((real)j == b.k[n] ? size : 0) - dot[n]);
                    }
                }
            }
            /* The end derivatives m_d + softplus(logit + shift): sigmoid of the shifted logit. */
            for (int end = 0; end < 2; end++)
                for (int64_t n = 0; n < b.count; n++) g_d[end][n] /= 1 + exp_vectorizable(-b.shifted[end][n]);
            for (int j = 0; j < bins - 1; j++) {
                real *out = grad + (2 * bins + j) * n_rows;
                for (int64_t n = 0; n < b.count; n++) {
                    const real left = g_d[0][n], right = g_d[1][n];
                    out[n] = ((real)j == b.index[0][n] ? left : 0) + ((real)j == b.index[1][n] ? right : 0);
                }
            }
        }
    }
}
