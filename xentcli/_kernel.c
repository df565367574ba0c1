/* The fused softmax cross-entropy of class-index targets: each row read from
 * memory once, without the GIL (the engine runs blocks on several threads).
 *
 * rows(x, target, ignore_index, weight, sample_weight, loss, log_p, pred)
 *     -> (loss_sum, loss_error, correct, bad)
 *
 * x is a C-contiguous (rows, classes) float32 or float64 buffer; target
 * int64 per row; weight (per class) and sample_weight (per row) x's dtype,
 * or None; loss and log_p (x's dtype) and pred (int64) are written per row
 * when given. The numbers are the engine's reference path's (softmax.py):
 *
 *     m = max_c x_c,   lse = log Σ_c e^(x_c - m),   log p_t = (x_t - m) - lse,
 *     loss = -w_t log p_t × sample weight (0 where t == ignore_index),
 *
 * log p is NaN on ignored rows and pred is the first class holding the max.
 * A row holding NaN or ±inf (or only -inf) counts as bad, its loss NaN: the
 * caller names it. loss_sum adds the per-row losses as stored, in float64,
 * and loss_error is what its roundings lost (a compensated sum):
 * math.fsum over every block's pair gives the sum of the stored losses
 * rounded once, so the total does not depend on where blocks begin.
 *
 * Per row: one pass for the max (and NaN), a second over the same row,
 * still in cache, for Σ e^(x - m). The exponential is a polynomial on
 * vectors of 64 bytes (GCC's vector extensions: one AVX-512 register, two
 * AVX2 ones, four SSE2 ones; the function is compiled for each and picked
 * at load time). e^r for r <= 0: r = k ln 2 + f, |f| <= ln 2 / 2, e^f by its
 * Taylor polynomial (degree 13 in float64: truncation < 2^-57; degree 7 in
 * float32: < 2^-27), times 2^k built in the exponent bits. Terms below
 * e^-708 (float64) or e^-87 (float32) are taken as 0: the sum holds e^0 = 1,
 * so they are below its last bit. Float32 terms are added in float32 four
 * vectors at a time, then in float64; float64 rows are summed in float64.
 * Rows of at most 16 classes go W at a time, one a lane (SHORT_STATS), their
 * terms summed in float64. The max, the target's term and the sums are exact
 * or correctly rounded operations; the approximations are the exponential's
 * (< 2 ulp) and the log's (log_d: its series truncated below 2^-60).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* XENT_NO_CLONES: one build for the compiler's target alone (the tests build
 * the AVX2 and SSE2 variants this way: an AVX-512 machine runs only its clone). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(XENT_NO_CLONES)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

#define VBYTES 64
typedef float vf __attribute__((vector_size(VBYTES)));
typedef int32_t vf_int __attribute__((vector_size(VBYTES)));
typedef float vf_half __attribute__((vector_size(VBYTES / 2)));
typedef double vd __attribute__((vector_size(VBYTES)));
typedef int64_t vd_int __attribute__((vector_size(VBYTES)));

#define INLINE static inline __attribute__((always_inline))
#define SELECT(I, V, mask, a, b) ((V)(((I)(a) & (mask)) | ((I)(b) & ~(mask))))
/* The lanes of v (16 of 4 bytes, or 8 of 8 bytes) in the order given. */
#if defined(__clang__)
#define SHUFFLE(v, I, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#else
#define SHUFFLE(v, I, ...) __builtin_shuffle(v, (I){__VA_ARGS__})
#endif

/* Lanes of a and b (2W of them) in the order given. */
#if defined(__clang__)
#define SHUFFLE_2(a, b, I, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUFFLE_2(a, b, I, ...) __builtin_shuffle(a, b, (I){__VA_ARGS__})
#endif

/* Lane-wise reductions to one value, halving the vector each step. */
INLINE float max_f(vf v) {
    v = SELECT(vf_int, vf, v > SHUFFLE(v, vf_int, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7), v,
               SHUFFLE(v, vf_int, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
    v = SELECT(vf_int, vf, v > SHUFFLE(v, vf_int, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11), v,
               SHUFFLE(v, vf_int, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
    v = SELECT(vf_int, vf, v > SHUFFLE(v, vf_int, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13), v,
               SHUFFLE(v, vf_int, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
    return v[0] > v[1] ? v[0] : v[1];
}

INLINE double max_d(vd v) {
    v = SELECT(vd_int, vd, v > SHUFFLE(v, vd_int, 4, 5, 6, 7, 0, 1, 2, 3), v, SHUFFLE(v, vd_int, 4, 5, 6, 7, 0, 1, 2, 3));
    v = SELECT(vd_int, vd, v > SHUFFLE(v, vd_int, 2, 3, 0, 1, 6, 7, 4, 5), v, SHUFFLE(v, vd_int, 2, 3, 0, 1, 6, 7, 4, 5));
    return v[0] > v[1] ? v[0] : v[1];
}

INLINE int32_t min_f_int(vf_int v) {
    v = SELECT(vf_int, vf_int, v < SHUFFLE(v, vf_int, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7), v,
               SHUFFLE(v, vf_int, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
    v = SELECT(vf_int, vf_int, v < SHUFFLE(v, vf_int, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11), v,
               SHUFFLE(v, vf_int, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
    v = SELECT(vf_int, vf_int, v < SHUFFLE(v, vf_int, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13), v,
               SHUFFLE(v, vf_int, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
    return v[0] < v[1] ? v[0] : v[1];
}

INLINE int64_t min_d_int(vd_int v) {
    v = SELECT(vd_int, vd_int, v < SHUFFLE(v, vd_int, 4, 5, 6, 7, 0, 1, 2, 3), v, SHUFFLE(v, vd_int, 4, 5, 6, 7, 0, 1, 2, 3));
    v = SELECT(vd_int, vd_int, v < SHUFFLE(v, vd_int, 2, 3, 0, 1, 6, 7, 4, 5), v, SHUFFLE(v, vd_int, 2, 3, 0, 1, 6, 7, 4, 5));
    return v[0] < v[1] ? v[0] : v[1];
}

INLINE double sum_d(vd v) {
    v += SHUFFLE(v, vd_int, 4, 5, 6, 7, 0, 1, 2, 3);
    v += SHUFFLE(v, vd_int, 2, 3, 0, 1, 6, 7, 4, 5);
    return v[0] + v[1];
}

/* The 16 float32 lanes added into 8 float64 ones. */
INLINE vd widen_f(vf v) {
    vf_half low, high;
    memcpy(&low, &v, sizeof low);
    memcpy(&high, (char *)&v + sizeof low, sizeof high);
    return __builtin_convertvector(low, vd) + __builtin_convertvector(high, vd);
}

#define LN2_HI 0.693145751953125            /* ln 2, its high bits: k * LN2_HI is exact */
#define LN2_LO 1.42860682030941723212e-6    /* ln 2 - LN2_HI */
#define LOG2E 1.4426950408889634074
static const vd ZERO_D;
static const vd_int LANE_D = {0, 1, 2, 3, 4, 5, 6, 7};
static const vf_int LANE_F = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const vf ZERO_F;

/* e^r of each lane, r <= 0 (or -inf). */
INLINE vd exp_d(vd r) {
    vd_int live = r >= -708.0;
    r = SELECT(vd_int, vd, live, r, ZERO_D - 708.0);
    const vd shifter = ZERO_D + 0x1.8p52; /* adding it rounds to an integer */
    vd k = r * LOG2E + shifter;
    vd_int n = (vd_int)k - (vd_int)shifter;
    k -= shifter;
    vd f = (r - k * LN2_HI) - k * LN2_LO;
    vd p = ZERO_D + 1.0 / 6227020800.0;
    p = p * f + 1.0 / 479001600.0;
    p = p * f + 1.0 / 39916800.0;
    p = p * f + 1.0 / 3628800.0;
    p = p * f + 1.0 / 362880.0;
    p = p * f + 1.0 / 40320.0;
    p = p * f + 1.0 / 5040.0;
    p = p * f + 1.0 / 720.0;
    p = p * f + 1.0 / 120.0;
    p = p * f + 1.0 / 24.0;
    p = p * f + 1.0 / 6.0;
    p = p * f + 0.5;
    p = p * f + 1.0;
    p = p * f + 1.0;
    return (vd)((vd_int)(p * (vd)((n + 1023) << 52)) & live);
}

INLINE vf exp_f(vf r) {
    vf_int live = r >= -87.0f;
    r = SELECT(vf_int, vf, live, r, ZERO_F - 87.0f);
    const vf shifter = ZERO_F + 0x1.8p23f;
    vf k = r * (float)LOG2E + shifter;
    vf_int n = (vf_int)k - (vf_int)shifter;
    k -= shifter;
    vf f = (r - k * 0.693359375f) + k * 2.12194440e-4f; /* ln 2 in float32: high part, minus the low */
    vf p = ZERO_F + 1.0f / 5040.0f;
    p = p * f + 1.0f / 720.0f;
    p = p * f + 1.0f / 120.0f;
    p = p * f + 1.0f / 24.0f;
    p = p * f + 1.0f / 6.0f;
    p = p * f + 0.5f;
    p = p * f + 1.0f;
    p = p * f + 1.0f;
    return (vf)((vf_int)(p * (vf)((n + 127) << 23)) & live);
}

/* log s of each lane, s >= 1 and finite (a sum holding e^0): s = 2^e m with
 * m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(z), z = (m - 1) / (m + 1),
 * |z| < 0.1716, by its series to z^23 (truncation < 2^-60). */
INLINE vd log_d(vd s) {
    vd_int bits = (vd_int)s;
    vd_int e = (bits >> 52) - 1023;
    vd m = (vd)((bits & 0xfffffffffffffLL) | 0x3ff0000000000000LL);
    vd_int big = m > 1.4142135623730951;
    m = SELECT(vd_int, vd, big, m * 0.5, m);
    e -= big; /* big is -1 where true */
    vd z = (m - 1.0) / (m + 1.0), z2 = z * z;
    vd p = ZERO_D + 1.0 / 23;
    p = p * z2 + 1.0 / 21;
    p = p * z2 + 1.0 / 19;
    p = p * z2 + 1.0 / 17;
    p = p * z2 + 1.0 / 15;
    p = p * z2 + 1.0 / 13;
    p = p * z2 + 1.0 / 11;
    p = p * z2 + 1.0 / 9;
    p = p * z2 + 1.0 / 7;
    p = p * z2 + 1.0 / 5;
    p = p * z2 + 1.0 / 3;
    /* e as a double: its bits added to those of 1.5 * 2^52 (exact for |e| < 2^51;
     * the instruction that converts int64 lanes needs AVX-512DQ). */
    vd k = (vd)(e + (vd_int)(ZERO_D + 0x1.8p52)) - 0x1.8p52;
    return (k * LN2_HI + (2.0 * z + (k * LN2_LO + 2.0 * z * z2 * p)));
}

typedef struct {
    double loss_sum, loss_error;
    long long correct, bad;
} Totals;

/* sum += x, what the rounding lost added to the error (Knuth's TwoSum, no
 * branch); once the sum is not finite the error stops (an infinity or NaN
 * goes to the sum alone). */
static inline void add(Totals *t, double x) {
    double a = t->loss_sum, sum = a + x, b = sum - a;
    double lost = (a - (sum - b)) + (x - b);
    t->loss_error += isfinite(sum) ? lost : 0.0;
    t->loss_sum = sum;
}

#define SHORT 16
typedef struct {
    const void *x, *weight, *sample_weight;
    const int64_t *target;
    void *loss, *log_p;
    int64_t *pred;
    Py_ssize_t rows, classes;
    int64_t ignore_index;
} Block;

/* One row's max, first argmax and Σ e^(x - max) (NaN for a bad row), for
 * float T with vector V (W lanes), integer vector I, exponential EXP,
 * reductions MAX and MIN_INT, and WIDEN, which adds the lanes of a V into a
 * vd. A row is read a vector at a time; its last, partial vector is read
 * whole when the buffer goes on past it (`end`), else copied, and its lanes
 * past the row set to -inf. Each lane keeps its max and where it first met
 * it; the first argmax is the least place among the lanes holding the max.
 * Float32 terms go into the float64 sum every FLUSH vectors. */
#define ROW_STATS(NAME, T, V, I, W, LANE, EXP, MAX, MIN_INT, WIDEN, FLUSH)               \
    INLINE double NAME(const T *x, Py_ssize_t classes, const T *end, T *top, int64_t *pred) { \
        Py_ssize_t full = classes / W * W;                                                \
        V tail, v, vmax;                                                                  \
        if (x + full + W <= end)                                                          \
            memcpy(&tail, x + full, sizeof tail);                                         \
        else                                                                              \
            memcpy(&tail, x + full, (size_t)(classes - full) * sizeof(T));               \
        tail = SELECT(I, V, LANE < (__typeof__(LANE[0]))(classes - full), tail, (V){0} - (T)INFINITY); \
        if (full)                                                                         \
            memcpy(&vmax, x, sizeof vmax);                                                \
        else                                                                              \
            vmax = tail;                                                                  \
        I at = {0}, nan = vmax != vmax;                                                   \
        for (Py_ssize_t i = W; i <= full; i += W) {                                       \
            if (i < full)                                                                 \
                memcpy(&v, x + i, sizeof v);                                              \
            else                                                                          \
                v = tail;                                                                 \
            nan |= v != v;                                                                \
            I bigger = v > vmax;                                                          \
            vmax = SELECT(I, V, bigger, v, vmax);                                         \
            at = SELECT(I, I, bigger, (I){0} + (__typeof__(LANE[0]))i, at);               \
        }                                                                                 \
        at += LANE;                                                                       \
        T m = MAX(vmax);                                                                  \
        int64_t c = MIN_INT(SELECT(I, I, vmax == m, at, (I){0} + (__typeof__(LANE[0]))classes)); \
        if (MIN_INT(nan) != 0) {                                                          \
            for (c = 0; x[c] == x[c]; c++) {                                              \
            }                                                                             \
            *top = x[c], *pred = c;                                                       \
            return NAN;                                                                   \
        }                                                                                 \
        *top = m, *pred = c;                                                              \
        if (!isfinite(m)) return NAN;                                                     \
        vd sum = {0};                                                                     \
        V acc = {0};                                                                      \
        for (Py_ssize_t i = 0, held = 0; i < full; i += W) {                              \
            memcpy(&v, x + i, sizeof v);                                                  \
            __builtin_prefetch(x + classes + i);                                         \
            acc += EXP(v - m);                                                            \
            if (++held == FLUSH) {                                                        \
                sum += WIDEN(acc);                                                        \
                acc = (V){0}, held = 0;                                                   \
            }                                                                             \
        }                                                                                 \
        acc += EXP(tail - m);                                                             \
        return sum_d(sum + WIDEN(acc));                                                   \
    }

INLINE vd widen_d(vd v) { return v; }

ROW_STATS(row_stats_f, float, vf, vf_int, 16, LANE_F, exp_f, max_f, min_f_int, widen_f, 4)
ROW_STATS(row_stats_d, double, vd, vd_int, 8, LANE_D, exp_d, max_d, min_d_int, widen_d, 1)

/* The transpose of a W x W block held as W vectors (v[i] = row i): v[i] = column i
 * after. Each step swaps the off-diagonal b x b blocks at every scale b: lane p
 * of the first of a pair takes the second's lane p - b where p & b, lane p of
 * the second takes the first's lane p + b where not. log2(W) steps of W
 * two-vector shuffles with constant masks (24 for 8 lanes, 64 for 16). */
#define SWAP(v, i, b, I, ...)                                                              \
    do {                                                                                  \
        __typeof__(v[0]) first_ = SHUFFLE_2(v[i], v[i + b], I, __VA_ARGS__);              \
        v[i + b] = SHUFFLE_2(v[i], v[i + b], I, SECOND_##b);                              \
        v[i] = first_;                                                                    \
    } while (0)

INLINE void transpose_d(vd v[8]) {
#define SECOND_4 4, 5, 6, 7, 12, 13, 14, 15
#define SECOND_2 2, 3, 10, 11, 6, 7, 14, 15
#define SECOND_1 1, 9, 3, 11, 5, 13, 7, 15
    for (int i = 0; i < 4; i++) SWAP(v, i, 4, vd_int, 0, 1, 2, 3, 8, 9, 10, 11);
    for (int i = 0; i < 8; i += 4)
        for (int k = i; k < i + 2; k++) SWAP(v, k, 2, vd_int, 0, 1, 8, 9, 4, 5, 12, 13);
    for (int i = 0; i < 8; i += 2) SWAP(v, i, 1, vd_int, 0, 8, 2, 10, 4, 12, 6, 14);
#undef SECOND_4
#undef SECOND_2
#undef SECOND_1
}

INLINE void transpose_f(vf v[16]) {
#define SECOND_8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define SECOND_4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define SECOND_2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define SECOND_1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
    for (int i = 0; i < 8; i++) SWAP(v, i, 8, vf_int, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    for (int i = 0; i < 16; i += 8)
        for (int k = i; k < i + 4; k++)
            SWAP(v, k, 4, vf_int, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    for (int i = 0; i < 16; i += 4)
        for (int k = i; k < i + 2; k++)
            SWAP(v, k, 2, vf_int, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
    for (int i = 0; i < 16; i += 2) SWAP(v, i, 1, vf_int, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
#undef SECOND_8
#undef SECOND_4
#undef SECOND_2
#undef SECOND_1
}

/* Rows of at most SHORT classes, W at a time, one row per lane: the rows
 * are copied into columns (cols[c] holds class c of each row: W x W blocks
 * transposed where the reads stay in the buffer, else a value at a time), so the max,
 * the argmax and the sum run down the columns with no reduction across
 * lanes. Lanes past the last row hold 0. The first argmax: a lane takes a
 * later class only when strictly bigger. A row holding NaN gets the place of
 * its first NaN (found on the slow path) and a NaN sum; one whose max is not
 * finite, a NaN sum. */
#define SHORT_STATS(NAME, T, V, I, W, EXP, TRANSPOSE)                                       \
    INLINE void NAME(const T *x, Py_ssize_t rows, Py_ssize_t classes, const T *end, T *top,   \
                     int64_t *pred, double *sum) {                                          \
        V cols[SHORT];                                                                      \
        Py_ssize_t c = 0;                                                                   \
        if (classes < 1 || classes > SHORT) __builtin_unreachable();                        \
        if (rows >= W && x + (W - 1) * classes + (classes + W - 1) / W * W <= end)          \
            for (Py_ssize_t base = 0; base < classes; base += W) {                          \
                V block[W]; /* row j's classes base..base + W - 1 (past the row: unused) */ \
                for (int j = 0; j < W; j++) memcpy(&block[j], x + j * classes + base, sizeof(V)); \
                TRANSPOSE(block);                                                           \
                for (int k = 0; k < W && base + k < classes; k++) cols[base + k] = block[k]; \
            }                                                                               \
        else                                                                                \
            do /* classes >= 1 */                                                           \
                for (int j = 0; j < W; j++) cols[c][j] = j < rows ? x[j * classes + c] : (T)0; \
            while (++c < classes);                                                          \
        V m = cols[0];                                                                      \
        I at = {0}, nan = cols[0] != cols[0];                                               \
        for (Py_ssize_t c = 1; c < classes; c++) {                                          \
            nan |= cols[c] != cols[c];                                                      \
            I bigger = cols[c] > m;                                                         \
            m = SELECT(I, V, bigger, cols[c], m);                                           \
            at = SELECT(I, I, bigger, (I){0} + (__typeof__(at[0]))c, at);                   \
        }                                                                                   \
        double sums[W];                                                                     \
        for (int j = 0; j < W; j++) sums[j] = 0.0;                                          \
        for (Py_ssize_t c = 0; c < classes; c++) {                                          \
            V e = EXP(cols[c] - m);                                                         \
            for (int j = 0; j < W; j++) sums[j] += (double)e[j];                            \
        }                                                                                   \
        for (int j = 0; j < W && j < rows; j++) {                                           \
            top[j] = m[j], pred[j] = at[j], sum[j] = isfinite(m[j]) ? sums[j] : NAN;         \
            if (nan[j]) {                                                                   \
                Py_ssize_t c = 0;                                                           \
                while (cols[c][j] == cols[c][j]) c++;                                       \
                top[j] = NAN, pred[j] = c, sum[j] = NAN;                                    \
            }                                                                               \
        }                                                                                   \
    }

SHORT_STATS(short_stats_f, float, vf, vf_int, 16, exp_f, transpose_f)
SHORT_STATS(short_stats_d, double, vd, vd_int, 8, exp_d, transpose_d)

/* The rows of a block, CHUNK at a time: each row's max, argmax and sum of
 * exponentials (W rows at a time for short rows); the chunk's logs on
 * vectors; then each row's numbers. */
#define CHUNK 64
#define RUN_ROWS(NAME, T, STATS, SHORT_STATS, W)                                           \
    CLONES static Totals NAME(const Block *b) {                                            \
        Totals totals = {0.0, 0.0, 0, 0};                                                  \
        const T *x = b->x, *weight = b->weight, *sample_weight = b->sample_weight;         \
        const T *end = x + b->rows * b->classes;                                           \
        T *loss_out = b->loss, *log_p_out = b->log_p;                                      \
        double sums[CHUNK] __attribute__((aligned(VBYTES)));                               \
        T tops[CHUNK];                                                                     \
        int64_t preds[CHUNK];                                                              \
        for (Py_ssize_t first = 0; first < b->rows; first += CHUNK) {                      \
            Py_ssize_t count = b->rows - first < CHUNK ? b->rows - first : CHUNK;          \
            for (Py_ssize_t r = count; r < CHUNK; r++) sums[r] = 1.0;                      \
            if (b->classes <= SHORT)                                                       \
                for (Py_ssize_t r = 0; r < count; r += W)                                  \
                    SHORT_STATS(x + (first + r) * b->classes, count - r, b->classes, end, tops + r, \
                                preds + r, sums + r);                                      \
            else                                                                           \
                for (Py_ssize_t r = 0; r < count; r++)                                     \
                    sums[r] = STATS(x + (first + r) * b->classes, b->classes, end, tops + r, preds + r); \
            for (Py_ssize_t r = 0; r < CHUNK; r += 8) {                                    \
                vd s;                                                                      \
                memcpy(&s, sums + r, sizeof s);                                            \
                vd_int bad = s != s;                                                       \
                s = log_d(SELECT(vd_int, vd, bad, ZERO_D + 1.0, s));                       \
                s = SELECT(vd_int, vd, bad, ZERO_D + NAN, s);                              \
                memcpy(sums + r, &s, sizeof s);                                            \
            }                                                                              \
            for (Py_ssize_t k = 0; k < count; k++) {                                       \
                Py_ssize_t r = first + k;                                                  \
                double lse = sums[k];                                                      \
                int64_t t = b->target[r];                                                  \
                T log_p = NAN, loss = 0;                                                   \
                if (t != b->ignore_index) {                                                \
                    double lp = ((double)x[r * b->classes + t] - (double)tops[k]) - lse;    \
                    log_p = (T)lp;                                                         \
                    loss = (T)(-lp * (weight ? (double)weight[t] : 1.0));                  \
                    totals.correct += preds[k] == t;                                       \
                }                                                                          \
                if (sample_weight) loss = (T)((double)loss * (double)sample_weight[r]);    \
                totals.bad += lse != lse;                                                  \
                add(&totals, (double)loss);                                                \
                if (loss_out) loss_out[r] = loss;                                          \
                if (log_p_out) log_p_out[r] = log_p;                                       \
                if (b->pred) b->pred[r] = preds[k];                                        \
            }                                                                              \
        }                                                                                  \
        return totals;                                                                     \
    }

RUN_ROWS(run_rows_f, float, row_stats_f, short_stats_f, 16)
RUN_ROWS(run_rows_d, double, row_stats_d, short_stats_d, 8)
/* A buffer argument: None, or a C-contiguous buffer of `count` items of `format`. */
static int take(PyObject *obj, Py_buffer *view, int writable, const char *format, Py_ssize_t count,
                const char *name) {
    view->obj = NULL, view->buf = NULL;
    if (obj == Py_None) return 0;
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    const char *f = view->format[0] == '<' || view->format[0] == '=' ? view->format + 1 : view->format;
    int same = strcmp(f, format) == 0 || (format[0] == 'q' && strcmp(f, "l") == 0 && sizeof(long) == 8);
    if (!same || view->len != count * view->itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of format %s", name, count, format);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

static PyObject *rows(PyObject *self, PyObject *args) {
    PyObject *x_obj, *target_obj, *weight_obj, *sample_obj, *loss_obj, *log_p_obj, *pred_obj;
    long long ignore_index;
    if (!PyArg_ParseTuple(args, "OOLOOOOO", &x_obj, &target_obj, &ignore_index, &weight_obj, &sample_obj,
                          &loss_obj, &log_p_obj, &pred_obj))
        return NULL;
    Py_buffer x, target, weight, sample, loss, log_p, pred;
    Py_buffer *views[] = {&x, &target, &weight, &sample, &loss, &log_p, &pred};
    for (int i = 0; i < 7; i++) views[i]->obj = NULL, views[i]->buf = NULL;
    PyObject *result = NULL;
    if (PyObject_GetBuffer(x_obj, &x, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0) return NULL;
    const char *format = x.format[0] == '<' || x.format[0] == '=' ? x.format + 1 : x.format;
    int is_float = strcmp(format, "f") == 0;
    if ((!is_float && strcmp(format, "d") != 0) || x.ndim != 2) {
        PyErr_SetString(PyExc_ValueError, "x: expected a 2-D float32 or float64 buffer");
        goto done;
    }
    Py_ssize_t n = x.shape[0], classes = x.shape[1];
    const char *real = is_float ? "f" : "d";
    if (classes < 1 || take(target_obj, &target, 0, "q", n, "target") < 0 || target.obj == NULL ||
        take(weight_obj, &weight, 0, real, classes, "weight") < 0 ||
        take(sample_obj, &sample, 0, real, n, "sample_weight") < 0 || take(loss_obj, &loss, 1, real, n, "loss") < 0 ||
        take(log_p_obj, &log_p, 1, real, n, "log_p") < 0 || take(pred_obj, &pred, 1, "q", n, "pred") < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "target: expected int64 per row, classes >= 1");
        goto done;
    }
    const int64_t *t = target.buf;
    Block b = {x.buf, weight.buf, sample.buf, t, loss.buf, log_p.buf, pred.buf, n, classes, ignore_index};
    Totals totals;
    Py_ssize_t r = 0;
    Py_BEGIN_ALLOW_THREADS
    while (r < n && (t[r] == ignore_index || (t[r] >= 0 && t[r] < classes))) r++;
    if (r == n) totals = is_float ? run_rows_f(&b) : run_rows_d(&b);
    Py_END_ALLOW_THREADS
    if (r < n) {
        PyErr_Format(PyExc_ValueError, "target %lld out of range at row %zd", (long long)t[r], r);
        goto done;
    }
    result = Py_BuildValue("ddLL", totals.loss_sum, totals.loss_error, totals.correct, totals.bad);
done:
    for (int i = 0; i < 7; i++)
        if (views[i]->obj != NULL) PyBuffer_Release(views[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"rows", rows, METH_VARARGS, "Fused softmax cross-entropy of a block of rows (see the module's source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernel", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernel(void) { return PyModule_Create(&module); }
