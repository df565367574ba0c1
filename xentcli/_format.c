/* Rows of numbers as text, each float written exactly as Python's repr
 * writes it (the shortest decimal that reads back as the same double),
 * fast: the per-row CSV, TSV and JSON Lines outputs.
 *
 * rows(columns, pieces, nonfinite) -> str
 *
 * columns: 1-D C-contiguous int64 or float64 buffers of one length; pieces:
 * len(columns) + 1 strings, the text before each column and after the last;
 * nonfinite: the text of a NaN or an infinity. Row i is pieces[0] cell_0[i]
 * pieces[1] cell_1[i] ... pieces[n].
 *
 * The shortest decimal (the method of Ryu, Adams 2018, with exact 128-bit
 * integers in place of its tables): a double x = m 2^e (m even or odd) reads
 * back from every decimal strictly inside, or on the edges when m is even,
 * of the interval between its neighbours' midpoints, (4m - 2 or 1) 2^(e-2)
 * to (4m + 2) 2^(e-2). Scaled by 10^q / 2^(2 - e), q the least with
 * 10^q >= 2^(2 - e) (the interval then at least 3 units wide), its ends and
 * x are exact rationals whose floors fit 64 bits; digits are removed from the right while a
 * shorter decimal still lies in the interval, and the last one kept is
 * rounded as x's digits round (half to even only on an exact tie). That
 * gives Python's choice too: the shortest, and the nearest to x among the
 * shortest. The scaling is exact for 2^-15 <= x < 2^54; other values
 * (and subnormals) go through Python's own PyOS_double_to_string.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;

/* The shortest digits of x > 0 and the decimal exponent of their last one;
 * 0 where x is outside the exact range. */
static int shortest(double x, uint64_t *digits, int *exponent) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint64_t fraction = bits & ((1ULL << 52) - 1);
    int biased = (int)(bits >> 52) & 0x7FF;
    if (biased == 0 || biased == 0x7FF) {
        return 0;
    }
    uint64_t m = fraction | (1ULL << 52);
    int e = biased - 1075, shift = 2 - e; /* x = m 2^e = 4m / 2^shift */
    if (shift <= 0 || shift > 69) { /* 10^q mp must fit 128 bits: q <= 21 */
        return 0;
    }
    int accept = (m & 1) == 0;
    uint64_t mv = 4 * m, mp = 4 * m + 2, mm = 4 * m - (fraction == 0 && biased > 1 ? 1 : 2);
    int q = (int)(((uint64_t)shift * 78913) >> 18) + 1; /* ceil(shift log10 2): 10^q >= 2^shift */
    u128 scale = 1;
    for (int i = 0; i < q; i++) {
        scale *= 10;
    }
    u128 low_mask = ((u128)1 << shift) - 1;
    u128 v = (u128)mv * scale, p = (u128)mp * scale, n = (u128)mm * scale;
    uint64_t vr = (uint64_t)(v >> shift), vp = (uint64_t)(p >> shift), vm = (uint64_t)(n >> shift);
    int vr_zeros = (v & low_mask) == 0, vm_zeros = (n & low_mask) == 0;
    if (!accept && (p & low_mask) == 0) {
        vp--; /* the upper edge itself reads back as the neighbour */
    }
    int removed = 0, last = 0;
    while (vp / 10 > vm / 10) {
        vm_zeros &= vm % 10 == 0;
        vr_zeros &= last == 0;
        last = (int)(vr % 10);
        vr /= 10, vp /= 10, vm /= 10, removed++;
    }
    if (vm_zeros && accept) {
        while (vm % 10 == 0) {
            vr_zeros &= last == 0;
            last = (int)(vr % 10);
            vr /= 10, vp /= 10, vm /= 10, removed++;
        }
    }
    if (removed == 0) {
        /* No digit to spare: x's nearest integer at this scale, which lies in the interval. */
        u128 rest = v & low_mask, half = (u128)1 << (shift - 1);
        *digits = vr + (rest > half || (rest == half && (vr & 1)));
        *exponent = -q;
        return 1;
    }
    if (vr_zeros && last == 5 && vr % 2 == 0) {
        last = 4; /* an exact tie rounds to even */
    }
    *digits = vr + ((vr == vm && (!accept || !vm_zeros)) || last >= 5);
    *exponent = removed - q;
    return 1;
}

/* Append x as repr writes it; returns the end. */
static char *write_double(char *out, double x) {
    uint64_t digits;
    int exponent;
    if (x == 0) {
        const char *zero = signbit(x) ? "-0.0" : "0.0";
        memcpy(out, zero, strlen(zero));
        return out + strlen(zero);
    }
    if (!shortest(fabs(x), &digits, &exponent)) {
        char *text = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (text == NULL) {
            return NULL;
        }
        size_t length = strlen(text);
        memcpy(out, text, length);
        PyMem_Free(text);
        return out + length;
    }
    if (x < 0) {
        *out++ = '-';
    }
    char text[24];
    int count = 0;
    for (uint64_t rest = digits; rest; rest /= 10) {
        text[23 - count++] = (char)('0' + rest % 10);
    }
    const char *d = text + 24 - count;
    int point = count + exponent; /* digits before the decimal point */
    if (point <= -4 || point > 16) { /* d.ddde+XX, as repr */
        *out++ = d[0];
        if (count > 1) {
            *out++ = '.';
            memcpy(out, d + 1, (size_t)(count - 1));
            out += count - 1;
        }
        int power = point - 1;
        *out++ = 'e';
        *out++ = power < 0 ? '-' : '+';
        power = power < 0 ? -power : power;
        if (power >= 100) {
            *out++ = (char)('0' + power / 100);
        }
        *out++ = (char)('0' + power / 10 % 10);
        *out++ = (char)('0' + power % 10);
    } else if (point <= 0) {
        memcpy(out, "0.", 2);
        out += 2;
        memset(out, '0', (size_t)-point);
        out += -point;
        memcpy(out, d, (size_t)count);
        out += count;
    } else if (point < count) {
        memcpy(out, d, (size_t)point);
        out += point;
        *out++ = '.';
        memcpy(out, d + point, (size_t)(count - point));
        out += count - point;
    } else {
        memcpy(out, d, (size_t)count);
        out += count;
        memset(out, '0', (size_t)(point - count));
        out += point - count;
        memcpy(out, ".0", 2);
        out += 2;
    }
    return out;
}

static char *write_int(char *out, int64_t value) {
    char text[24];
    int count = 0;
    uint64_t rest = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    do {
        text[23 - count++] = (char)('0' + rest % 10);
        rest /= 10;
    } while (rest);
    if (value < 0) {
        *out++ = '-';
    }
    memcpy(out, text + 24 - count, (size_t)count);
    return out + count;
}

#define MAX_CELL 32

static PyObject *rows(PyObject *self, PyObject *args) {
    PyObject *columns, *pieces;
    const char *nonfinite;
    Py_ssize_t nonfinite_length;
    if (!PyArg_ParseTuple(args, "O!O!s#", &PyTuple_Type, &columns, &PyTuple_Type, &pieces, &nonfinite,
                          &nonfinite_length)) {
        return NULL;
    }
    Py_ssize_t width = PyTuple_GET_SIZE(columns);
    if (PyTuple_GET_SIZE(pieces) != width + 1 || width > 64 || nonfinite_length > MAX_CELL) {
        PyErr_SetString(PyExc_ValueError, "rows: one piece before each column and one after, at most 64 columns");
        return NULL;
    }
    Py_buffer views[64];
    int is_float[64];
    const char *piece[65];
    Py_ssize_t piece_length[65], count = -1, fixed = 0, taken = 0;
    PyObject *result = NULL;
    char *buffer = NULL;
    for (Py_ssize_t i = 0; i <= width; i++) {
        piece[i] = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pieces, i), &piece_length[i]);
        if (piece[i] == NULL) {
            goto done;
        }
        fixed += piece_length[i];
    }
    for (; taken < width; taken++) {
        Py_buffer *view = &views[taken];
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(columns, taken), view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            goto done;
        }
        const char *f = view->format[0] == '<' || view->format[0] == '=' ? view->format + 1 : view->format;
        is_float[taken] = strcmp(f, "d") == 0;
        int is_int = strcmp(f, "q") == 0 || (strcmp(f, "l") == 0 && sizeof(long) == 8);
        Py_ssize_t length = view->len / 8;
        if (view->itemsize != 8 || !(is_float[taken] || is_int) || (count >= 0 && length != count)) {
            taken++;
            PyErr_SetString(PyExc_ValueError, "rows: columns of int64 or float64, all of one length");
            goto done;
        }
        count = length;
    }
    count = count < 0 ? 0 : count;
    buffer = PyMem_Malloc((size_t)(count * (fixed + width * MAX_CELL)) + 1);
    if (buffer == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    char *out = buffer;
    for (Py_ssize_t r = 0; r < count; r++) {
        for (Py_ssize_t c = 0; c <= width; c++) {
            memcpy(out, piece[c], (size_t)piece_length[c]);
            out += piece_length[c];
            if (c == width) {
                break;
            }
            if (!is_float[c]) {
                out = write_int(out, ((const int64_t *)views[c].buf)[r]);
                continue;
            }
            double x = ((const double *)views[c].buf)[r];
            if (!isfinite(x)) {
                memcpy(out, nonfinite, (size_t)nonfinite_length);
                out += nonfinite_length;
            } else if ((out = write_double(out, x)) == NULL) {
                goto done;
            }
        }
    }
    result = PyUnicode_DecodeUTF8(buffer, out - buffer, "strict");
done:
    PyMem_Free(buffer);
    for (Py_ssize_t i = 0; i < taken; i++) {
        PyBuffer_Release(&views[i]);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"rows", rows, METH_VARARGS, "rows(columns, pieces, nonfinite) -> str: numbers as repr writes them (see the source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_format", NULL, -1, methods};

PyMODINIT_FUNC PyInit__format(void) { return PyModule_Create(&module); }
