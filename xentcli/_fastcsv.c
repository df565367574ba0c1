/* Fast parsing of delimited decimal numbers into float64, without the GIL.
 *
 * parse(data, delimiter, columns, out) reads rows of `columns` numbers from
 * `data` (bytes, whole lines) into the writable float64 buffer `out`, and
 * returns (rows, error_offset); error_offset is -1 when every byte was
 * understood, else the offset of the line it could not read, so that the
 * caller can fall back to a slower, more lenient reader that explains
 * what is wrong. Blank lines and lines starting with '#' are skipped.
 *
 * Numbers with at most 19 digits (the mantissa fits in a uint64) and at most
 * 2^53 as an integer, with a power of ten within 10^±22, take
 * Clinger's fast path: the exact integer mantissa times or divided by an
 * exact power of ten, one correctly rounded operation. Other numbers of at
 * most 19 digits (pandas' 17) take the Eisel-Lemire algorithm (eisel_lemire,
 * 128-bit products, exact); the rest (longer mantissas, nan, inf) goes
 * through strtod. All are correctly rounded: the result is always the double
 * nearest to the text, as Python's float() gives. Digits are taken two at a
 * time and the sign without a branch (1.25 GB/s a core on 6-decimal logits,
 * 650 MB/s a digit at a time with a branch on the sign); a number of the shape of the
 * number before it (parse_shaped: a fixed format) is read 8 bytes at once,
 * 1.4-1.6x faster again.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static const double POW10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#define MAX_EXACT ((uint64_t)1 << 53)

#ifdef __SIZEOF_INT128__
#include "_pow5.h"

/* The bits of the double nearest w * 10^q, for 0 < w < 2^64 and q in
 * [POW5_SMALLEST, POW5_LARGEST]: the Eisel-Lemire algorithm as fast_float
 * (decimal_to_binary.h, compute_float) does it. w, shifted to its top bit,
 * times the 128-bit 5^q gives the result's 55 top bits exactly (Mushtak and
 * Lemire proved that 128 bits always suffice for w < 2^64), the power of
 * two from q by a fixed-point log2(10); then the rounding to 53 bits, to
 * even on an exact tie (possible only for q in [-4, 23]), and subnormals.
 * Used where Clinger's exact path cannot be (more than 2^53, or 10^q
 * beyond 10^22): pandas writes 17 significant digits, and strtod took
 * four times as long on them. */
static uint64_t eisel_lemire(uint64_t w, int q) {
    int leading = __builtin_clzll(w);
    w <<= leading;
    const uint64_t *five = POW5_128 + 2 * (q - POW5_SMALLEST);
    unsigned __int128 product = (unsigned __int128)w * five[0];
    uint64_t high = (uint64_t)(product >> 64), low = (uint64_t)product;
    if ((high & 0x1FF) == 0x1FF) { /* the 55 bits may depend on the low word of 5^q */
        uint64_t carry = (uint64_t)(((unsigned __int128)w * five[1]) >> 64);
        low += carry;
        high += carry > low;
    }
    int upper = (int)(high >> 63), shift = upper + 64 - 52 - 3;
    uint64_t mantissa = high >> shift;
    int power2 = ((((152170 + 65536) * q) >> 16) + 63) + upper - leading + 1023;
    if (power2 <= 0) { /* subnormal, or zero */
        if (-power2 + 1 >= 64) {
            return 0;
        }
        mantissa >>= -power2 + 1;
        mantissa += mantissa & 1;
        mantissa >>= 1;
        /* rounding may have made it the smallest normal number: bit 52 is then set */
        return mantissa | ((uint64_t)(mantissa >= ((uint64_t)1 << 52)) << 52);
    }
    if (low <= 1 && q >= -4 && q <= 23 && (mantissa & 3) == 1 && (mantissa << shift) == high) {
        mantissa &= ~(uint64_t)1; /* exactly half-way: to even, down */
    }
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if (mantissa >= ((uint64_t)2 << 52)) {
        mantissa = (uint64_t)1 << 52;
        power2++;
    }
    mantissa &= ~((uint64_t)1 << 52);
    if (power2 >= 0x7FF) {
        return (uint64_t)0x7FF << 52; /* infinity */
    }
    return mantissa | ((uint64_t)power2 << 52);
}
#endif

static int is_space(char c) { return c == ' ' || c == '\t'; }

static int ends_field(char c, int delimiter) {
    return c == '\n' || c == '\r' || (delimiter >= 0 ? c == delimiter : is_space(c));
}

/* The decimal digits at p added to *mantissa, two at a time while two are
 * there; the first byte after them. */
static inline const char *add_digits(const char *p, const char *end, uint64_t *mantissa) {
    uint64_t m = *mantissa;
    while (end - p >= 2) {
        unsigned a = (unsigned)(unsigned char)p[0] - '0', b = (unsigned)(unsigned char)p[1] - '0';
        if (a >= 10) {
            break;
        }
        if (b >= 10) {
            m = m * 10 + a;
            p++;
            break;
        }
        m = m * 100 + (a * 10 + b);
        p += 2;
    }
    if (p < end && end - p < 2 && (unsigned)(*p - '0') < 10) {
        m = m * 10 + (uint64_t)(*p - '0');
        p++;
    }
    *mantissa = m;
    return p;
}

/* Parse the number at p; *next gets the first byte after it, *integer and
 * *fraction its digits before and after the point (*fraction 0 where it has
 * an exponent). 0 on success. */
static int parse_number(const char *p, const char *end, int delimiter, double *out, const char **next, int *integer,
                        int *fraction_digits) {
    const char *start = p;
    /* The sign without a branch: in a file of logits it is a coin toss, and a
     * mispredicted branch cost about a quarter of the time of a number. */
    int negative = p < end && *p == '-';
    p += negative | (p < end && *p == '+');
    /* Up to 19 digits fit in a uint64; longer numbers (leading zeros
     * included) take the slow path, so the loops carry no extra tests. */
    uint64_t mantissa = 0;
    const char *digits_start = p;
    p = add_digits(p, end, &mantissa);
    int digits = (int)(p - digits_start), fraction = 0;
    if (p < end && *p == '.') {
        p++;
        const char *fraction_start = p;
        p = add_digits(p, end, &mantissa);
        fraction = (int)(p - fraction_start);
        digits += fraction;
    }
    int seen = digits > 0;
    *integer = digits - fraction;
    *fraction_digits = fraction;
    int exponent = 0, slow = digits > 19;
    if (seen && p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        int exponent_negative = 0, exponent_digits = 0;
        if (q < end && (*q == '-' || *q == '+')) {
            exponent_negative = *q == '-';
            q++;
        }
        while (q < end && (unsigned)(*q - '0') < 10) {
            if (exponent < 100000) {
                exponent = exponent * 10 + (*q - '0');
            }
            exponent_digits++;
            q++;
        }
        if (!exponent_digits) {
            return -1;
        }
        exponent = exponent_negative ? -exponent : exponent;
        *fraction_digits = 0;
        p = q;
    }
    if (!seen) {
        slow = 1; /* nan, inf, or not a number: strtod decides */
    }
    int power = exponent - fraction;
    if (!slow && mantissa <= MAX_EXACT && power >= -22 && power <= 22) {
        double value = (double)mantissa;
        value = power < 0 ? value / POW10[-power] : value * POW10[power];
        uint64_t bits; /* the sign set by its bit, again without a branch */
        memcpy(&bits, &value, sizeof bits);
        bits |= (uint64_t)negative << 63;
        memcpy(out, &bits, sizeof bits);
        *next = p;
        return 0;
    }
#ifdef __SIZEOF_INT128__
    if (!slow && power >= POW5_SMALLEST && power <= POW5_LARGEST) {
        uint64_t bits = mantissa ? eisel_lemire(mantissa, power) : 0;
        bits |= (uint64_t)negative << 63;
        memcpy(out, &bits, sizeof bits);
        *next = p;
        return 0;
    }
#endif
    /* The slow path: strtod on a NUL-terminated copy of the token. */
    const char *token_end = start;
    while (token_end < end && !ends_field(*token_end, delimiter) && !is_space(*token_end)) {
        token_end++;
    }
    size_t length = (size_t)(token_end - start);
    char buffer[128];
    if (length == 0 || length >= sizeof buffer) {
        return -1;
    }
    memcpy(buffer, start, length);
    buffer[length] = '\0';
    char *stop;
    double value = strtod(buffer, &stop);
    if (stop != buffer + length) {
        return -1;
    }
    *out = value;
    *next = token_end;
    return 0;
}

/* The shape of a number: `integer` digits, a point, `fraction` digits, in
 * `length` = integer + 1 + fraction <= 8 bytes, after an optional '-'; or,
 * with fraction 0, `integer` digits alone (a class index). A file written
 * with a fixed format (np.savetxt's %.6f, R's write.csv of rounded values,
 * a column of labels) repeats one shape, so parse_lines predicts that the next
 * number has the shape of the last one read by parse_number, checks the
 * prediction on 8 bytes at once and converts them without a loop: 1.6x
 * the speed of parse_number on 6-decimal logits. The check is a branch the
 * processor predicts, so the pointer's advance (the shape's length, not a
 * length found in the bytes) does not wait for the bytes: finding the
 * length in the bytes (fast_float's way) was 25% slower than parse_number.
 * A number of another shape (or a last column at the end of the data) goes
 * to parse_number, which teaches its shape when it has one. */
typedef struct {
    int integer, fraction, length;
    uint64_t point;   /* '.' ^ '0' at the point's byte: the point, once checked, read as a '0' */
    uint64_t keep;    /* the number's bytes */
    uint64_t before;  /* its integer digits' bytes (none without a point: nothing moves) */
    uint64_t after;   /* its fraction digits' bytes (all without a point) */
} Shape;

/* The bytes of a number of this shape, its sign aside. */
static int shape_length(int integer, int fraction) { return fraction ? integer + 1 + fraction : integer; }

static void set_shape(Shape *shape, int integer, int fraction) {
    shape->integer = integer;
    shape->fraction = fraction;
    shape->length = shape_length(integer, fraction);
    shape->keep = shape->length == 8 ? ~(uint64_t)0 : ((uint64_t)1 << (8 * shape->length)) - 1;
    if (fraction) {
        shape->point = (uint64_t)('.' ^ '0') << (8 * integer);
        shape->before = ((uint64_t)1 << (8 * integer)) - 1;
        shape->after = shape->keep & ~(((uint64_t)1 << (8 * (integer + 1))) - 1);
    } else {
        shape->point = shape->before = 0;
        shape->after = shape->keep;
    }
}

/* Whether the 8 bytes of x (little-endian) are all ASCII digits (fast_float's test). */
static inline int eight_digits(uint64_t x) {
    return ((x & 0xF0F0F0F0F0F0F0F0) | (((x + 0x0606060606060606) & 0xF0F0F0F0F0F0F0F0) >> 4)) == 0x3333333333333333;
}

/* The 8 digit values of x (first byte most significant) as one integer, by
 * three multiplications (fast_float's parse_eight_digits_unrolled). */
static inline uint64_t eight_digits_value(uint64_t x) {
    const uint64_t mask = 0x000000FF000000FF, mul1 = 0x000F424000000064, mul2 = 0x0000271000000001;
    x = x * 10 + (x >> 8);
    return (((x & mask) * mul1) + (((x >> 16) & mask) * mul2)) >> 32;
}

/* The number at p if it has the shape and ends at a delimiter or a line's
 * end: its value in *out and the byte after it in *next, else 0. Reads 16
 * bytes from p: the caller makes sure they are there. */
static inline int parse_shaped(const char *p, const Shape *shape, int delimiter, double *out, const char **next) {
    int negative = *p == '-';
    const char *q = p + negative;
    uint64_t x;
    memcpy(&x, q, sizeof x);
    x ^= shape->point;
    const uint64_t zeros = 0x3030303030303030;
    unsigned char ends = (unsigned char)q[shape->length];
    int at_end = ends == '\n' || ends == '\r' || (delimiter >= 0 ? ends == delimiter : is_space((char)ends));
    /* The point tested on its own: XOR-ed, ',' (or '-', '+', '/') would pass as a digit. */
    if (!at_end || (shape->fraction && q[shape->integer] != '.') || !eight_digits((x & shape->keep) | (zeros & ~shape->keep))) {
        return 0;
    }
    uint64_t values = (x & shape->keep) - (zeros & shape->keep);
    /* The point's byte (now a 0) dropped: the integer digits move up one byte,
     * then all of them to the top, as the last digits of an 8-digit number
     * (without a point, only the latter). */
    values = ((values & shape->before) << 8) | (values & shape->after);
    values <<= 8 * (8 - shape->length);
    double value = (double)eight_digits_value(values) / POW10[shape->fraction];
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    bits |= (uint64_t)negative << 63;
    memcpy(out, &bits, sizeof bits);
    *next = q + shape->length;
    return 1;
}

/* Parse whole lines of [begin, end) into out; returns rows, or -1 with *error set. */
static Py_ssize_t parse_lines(const char *begin, const char *end, int delimiter, Py_ssize_t columns,
                              double *out, Py_ssize_t capacity, Py_ssize_t *error) {
    const char *p = begin;
    Py_ssize_t rows = 0;
    Shape shape;
    set_shape(&shape, 1, 6);
    while (p < end) {
        const char *line = p;
        while (p < end && is_space(*p)) {
            p++;
        }
        if (p == end || *p == '\n' || *p == '\r' || *p == '#') {
            while (p < end && *p != '\n') {
                p++;
            }
            if (p < end) {
                p++;
            }
            continue;
        }
        if (rows >= capacity) {
            *error = line - begin;
            return -1;
        }
        double *row = out + rows * columns;
        for (Py_ssize_t column = 0; column < columns; column++) {
            if (!(end - p >= 16 && parse_shaped(p, &shape, delimiter, row + column, &p))) {
                while (p < end && is_space(*p) && !(delimiter >= 0 && *p == delimiter)) {
                    p++;
                }
                int integer, fraction;
                if (parse_number(p, end, delimiter, row + column, &p, &integer, &fraction) != 0) {
                    *error = line - begin;
                    return -1;
                }
                if (integer >= 1 && shape_length(integer, fraction) <= 8 &&
                    (integer != shape.integer || fraction != shape.fraction)) {
                    set_shape(&shape, integer, fraction);
                }
            }
            while (p < end && is_space(*p) && !(delimiter >= 0 && *p == delimiter)) {
                p++;
            }
            if (column + 1 < columns) {
                if (delimiter >= 0) {
                    if (p >= end || *p != delimiter) {
                        *error = line - begin;
                        return -1;
                    }
                    p++;
                } else if (p >= end || *p == '\n' || *p == '\r') {
                    *error = line - begin;
                    return -1;
                }
            }
        }
        if (p < end && *p == '\r') {
            p++;
        }
        if (p < end && *p != '\n') {
            *error = line - begin;
            return -1;
        }
        if (p < end) {
            p++;
        }
        rows++;
    }
    return rows;
}

static PyObject *parse(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    int delimiter;
    Py_ssize_t columns;
    if (!PyArg_ParseTuple(args, "y*inw*", &data, &delimiter, &columns, &out)) {
        return NULL;
    }
    Py_ssize_t capacity = columns > 0 ? out.len / (Py_ssize_t)(sizeof(double) * columns) : 0;
    Py_ssize_t error = -1, rows;
    Py_BEGIN_ALLOW_THREADS
    rows = parse_lines((const char *)data.buf, (const char *)data.buf + data.len, delimiter, columns,
                       (double *)out.buf, capacity, &error);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return Py_BuildValue("nn", rows < 0 ? 0 : rows, error);
}

/* A column of class indices: lines of a sign and 1 to 15 digits (below
 * 2^53: exact as float64 too), each ended by LF or CRLF (the last may end the
 * data: a CR alone too, as parse_lines takes it), into out as int64;
 * returns (rows, -1), or (rows so far, the offset of the first other line,
 * or of the first past capacity), for the general parser to take the whole. */
static PyObject *parse_indices(PyObject *self, PyObject *args) {
    Py_buffer data, out;
    if (!PyArg_ParseTuple(args, "y*w*", &data, &out)) {
        return NULL;
    }
    const char *p = (const char *)data.buf, *begin = p, *end = p + data.len;
    long long *values = (long long *)out.buf;
    Py_ssize_t capacity = out.len / (Py_ssize_t)sizeof(long long), rows = 0, error = -1;
    Py_BEGIN_ALLOW_THREADS
    while (p < end) {
        const char *line = p;
        int negative = *p == '-';
        p += negative | (*p == '+');
        const char *digits = p;
        uint64_t value = 0;
        while (p < end && (unsigned)(*p - '0') < 10) {
            value = value * 10 + (uint64_t)(*p - '0');
            p++;
        }
        Py_ssize_t length = p - digits;
        if (p < end && *p == '\r') {
            p++;
        }
        if (length < 1 || length > 15 || rows >= capacity || (p < end && *p != '\n')) {
            error = line - begin;
            break;
        }
        values[rows++] = negative ? -(long long)value : (long long)value;
        if (p < end) {
            p++;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return Py_BuildValue("nn", rows, error);
}

/* The (data, start, end) arguments of the counters, with start and end clamped to data. */
static int parse_range(PyObject *args, Py_buffer *data, Py_ssize_t *start, Py_ssize_t *end) {
    if (!PyArg_ParseTuple(args, "y*nn", data, start, end)) {
        return -1;
    }
    if (*start < 0) {
        *start = 0;
    }
    if (*end > data->len) {
        *end = data->len;
    }
    return 0;
}

/* The '\n' bytes in [p, stop), 16 at a time where SSE2 is there (every
 * x86-64): a compare makes 0xFF per newline, subtracted into byte counters
 * that are summed before any can pass 255. About 10 GB/s in cache; the
 * plain loop the compiler vectorised widened each byte to 32 bits first
 * (3.8 GB/s). */
#ifdef __SSE2__
/* The 16 byte counters added up. */
static inline Py_ssize_t sum_counters(__m128i counters) {
    __m128i sums = _mm_sad_epu8(counters, _mm_setzero_si128());
    return _mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_unpackhi_epi64(sums, sums));
}
#endif

static Py_ssize_t newlines_in(const unsigned char *p, const unsigned char *stop) {
    Py_ssize_t count = 0;
#ifdef __SSE2__
    const __m128i newline = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
    while (stop - p >= 16) {
        __m128i counters = zero;
        for (int step = 0; step < 255 && stop - p >= 16; step++, p += 16) {
            __m128i bytes = _mm_loadu_si128((const __m128i *)p);
            counters = _mm_sub_epi8(counters, _mm_cmpeq_epi8(bytes, newline));
        }
        count += sum_counters(counters);
    }
#endif
    for (; p < stop; p++) {
        count += *p == '\n';
    }
    return count;
}

static PyObject *count_newlines(PyObject *self, PyObject *args) {
    Py_buffer data;
    Py_ssize_t start, end, count = 0;
    if (parse_range(args, &data, &start, &end) != 0) {
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (start < end) {
        count = newlines_in((const unsigned char *)data.buf + start, (const unsigned char *)data.buf + end);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(count);
}

/* Whether a line starting with c may be blank or a comment, which the rows do not count. */
static int may_skip(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '#'; }

/* The data lines (neither blank nor comments) in [p, stop), line by line. */
static Py_ssize_t rows_by_lines(const char *p, const char *stop) {
    Py_ssize_t count = 0;
    while (p < stop) {
        while (p < stop && is_space(*p)) {
            p++;
        }
        if (p < stop && *p != '\n' && *p != '\r' && *p != '#') {
            count++;
        }
        const char *newline = p < stop ? memchr(p, '\n', (size_t)(stop - p)) : NULL;
        if (newline == NULL) {
            break;
        }
        p = newline + 1;
    }
    return count;
}

/* The data lines in [p, stop) in one pass where no line may be blank or a
 * comment and no byte is NUL (every line is then a row: the newlines, and
 * one more for a last line without one), else -1 (the caller goes line by
 * line, or reports the NUL). 16 bytes at a time: the newlines counted as in
 * newlines_in, and each byte tested against the newline mask shifted by one
 * byte (the byte after a newline) in the same load; 5-9 GB/s out of cache,
 * 12-14 in, against 3 GB/s line by line with memchr. */
static Py_ssize_t rows_at_once(const unsigned char *p, const unsigned char *stop) {
    const unsigned char *start = p;
    if (p == stop) {
        return 0;
    }
    Py_ssize_t newlines = 0;
    int odd = may_skip(*p);
#ifdef __SSE2__
    /* The bytes that may_skip takes all lie at or below '#' (0x23), as does
     * NUL; a few others that do (a quote, '!') only send the chunk line by
     * line. */
    const __m128i newline = _mm_set1_epi8('\n'), low = _mm_set1_epi8('#'), zero = _mm_setzero_si128();
    __m128i seen = zero, before = zero; /* before: the last block's newlines */
    while (stop - p >= 16) {
        __m128i counters = zero;
        for (int step = 0; step < 255 && stop - p >= 16; step++, p += 16) {
            __m128i bytes = _mm_loadu_si128((const __m128i *)p);
            __m128i ends = _mm_cmpeq_epi8(bytes, newline);
            __m128i after_end = _mm_or_si128(_mm_slli_si128(ends, 1), _mm_srli_si128(before, 15));
            __m128i skips = _mm_cmpeq_epi8(_mm_min_epu8(bytes, low), bytes);
            seen = _mm_or_si128(seen, _mm_or_si128(_mm_and_si128(after_end, skips), _mm_cmpeq_epi8(bytes, zero)));
            counters = _mm_sub_epi8(counters, ends);
            before = ends;
        }
        newlines += sum_counters(counters);
    }
    odd |= _mm_movemask_epi8(seen) != 0;
#endif
    for (; p < stop; p++) {
        odd |= *p == '\0' || (p > start && p[-1] == '\n' && may_skip(*p));
        newlines += *p == '\n';
    }
    if (odd) {
        return -1;
    }
    return newlines + (stop[-1] != '\n'); /* a last line without a newline is a row too */
}

/* count_rows(data, bounds, out) -> the offset of the first NUL byte, or -1:
 * out[i] gets the data lines (neither blank nor comments, as parse() counts
 * rows) in data[bounds[i]:bounds[i + 1]], for every chunk in one call (a
 * call a chunk of 1 MiB, from a pool of threads, cost 5-10 ms of hand-offs
 * on a 95 MB file). bounds are int64 offsets in order, out int64. */
static PyObject *count_rows(PyObject *self, PyObject *args) {
    Py_buffer data, bounds, out;
    if (!PyArg_ParseTuple(args, "y*y*w*", &data, &bounds, &out)) {
        return NULL;
    }
    const int64_t *at = (const int64_t *)bounds.buf;
    int64_t *counts = (int64_t *)out.buf;
    Py_ssize_t chunks = bounds.len / (Py_ssize_t)sizeof(int64_t) - 1, first_nul = -1;
    int fits = bounds.itemsize == sizeof(int64_t) && out.itemsize == sizeof(int64_t) &&
               out.len >= chunks * (Py_ssize_t)sizeof(int64_t);
    for (Py_ssize_t k = 0; fits && k < chunks; k++) {
        fits = 0 <= at[k] && at[k] <= at[k + 1] && at[k + 1] <= data.len;
    }
    if (!fits) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&bounds);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "count_rows: bounds must be int64 offsets in order within data, out int64 as long");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < chunks; k++) {
        const char *p = (const char *)data.buf + at[k], *stop = (const char *)data.buf + at[k + 1];
        Py_ssize_t count = rows_at_once((const unsigned char *)p, (const unsigned char *)stop);
        if (count < 0) {
            count = rows_by_lines(p, stop);
            const char *nul = memchr(p, '\0', (size_t)(stop - p));
            if (nul != NULL && first_nul < 0) {
                first_nul = nul - (const char *)data.buf;
            }
        }
        counts[k] = count;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&bounds);
    PyBuffer_Release(&out);
    return PyLong_FromSsize_t(first_nul);
}

/* Whether x is a whole number below 2^53 in size, where float64 counts
 * exactly (the cast only sees such numbers: NaN and the rest become 0.5). */
static inline int is_index(double x) {
    const double exact = 9007199254740992.0;
    double inside = x > -exact && x < exact ? x : 0.5;
    return inside == (double)(long long)inside;
}

/* Labels read as float64 made class indices in place: when every value is
 * whole and below 2^53 in size, each becomes its int64 in the same 8 bytes
 * and -1 is returned; else the first row that is not, with every value as it
 * was. One pass, a block at a time in cache: a block is checked, then
 * converted; a block that fails turns the converted ones back (exact). The
 * bytes are read and written through memcpy: one array, two types. */
static PyObject *indices(PyObject *self, PyObject *args) {
    Py_buffer values;
    if (!PyArg_ParseTuple(args, "w*", &values)) {
        return NULL;
    }
    unsigned char *bytes = (unsigned char *)values.buf;
    Py_ssize_t count = values.len / (Py_ssize_t)sizeof(double), bad = -1;
    Py_BEGIN_ALLOW_THREADS
    enum { BLOCK = 512 };
    for (Py_ssize_t start = 0; start < count; start += BLOCK) {
        Py_ssize_t stop = count - start > BLOCK ? start + BLOCK : count;
        double x;
        int whole = 1;
        for (Py_ssize_t i = start; i < stop; i++) {
            memcpy(&x, bytes + 8 * i, 8);
            whole &= is_index(x);
        }
        if (!whole) {
            for (bad = start; memcpy(&x, bytes + 8 * bad, 8), is_index(x); bad++) {
            }
            for (Py_ssize_t i = 0; i < start; i++) {
                long long k;
                memcpy(&k, bytes + 8 * i, 8);
                x = (double)k;
                memcpy(bytes + 8 * i, &x, 8);
            }
            break;
        }
        for (Py_ssize_t i = start; i < stop; i++) {
            memcpy(&x, bytes + 8 * i, 8);
            long long k = (long long)x;
            memcpy(bytes + 8 * i, &k, 8);
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&values);
    return PyLong_FromSsize_t(bad);
}

static PyMethodDef methods[] = {
    {"count_rows", count_rows, METH_VARARGS, "count_rows(data, bounds, out) -> first NUL or -1; out[i] = data lines (not blank, not #) in data[bounds[i]:bounds[i+1]]"},
    {"parse", parse, METH_VARARGS, "parse(data, delimiter, columns, out) -> (rows, error_offset)"},
    {"indices", indices, METH_VARARGS, "indices(values) -> -1 with the float64 values made int64 in place when all are whole and within 2^53, else the first row that is not"},
    {"parse_indices", parse_indices, METH_VARARGS, "parse_indices(data, out) -> (rows, error_offset): a column of integers as int64"},
    {"count_newlines", count_newlines, METH_VARARGS, "count_newlines(data, start, end) -> newlines in data[start:end]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastcsv", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fastcsv(void) { return PyModule_Create(&module); }
