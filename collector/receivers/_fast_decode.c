/* The fast path of collector/receivers/decode.py: an OTLP ExportTraceServiceRequest (protobuf
 * wire format) straight into the decoder's span rows, without building protobuf messages.
 *
 * decode(body, received_at) returns the list of row dicts that decode.rows_from_request() would
 * build from the parsed message, or None when the request is not the plain case this code
 * handles. None is always safe: the caller then decodes the body with the protobuf library,
 * which gives the answer (rows, rejected spans, or the error) by definition. So this code never
 * rejects or reports anything itself; it declines instead of deciding, in particular on:
 *   - anything malformed (truncated fields, bad varints, groups, field number 0, bad UTF-8);
 *   - a span the decoder would reject (ids, times);
 *   - a known field with an unexpected wire type, a singular sub-message sent twice (protobuf
 *     would merge the two), values nested deeper than MAX_DEPTH, string_value_strindex.
 * Everything protobuf parses but the rows do not use (events, links, scope attributes, entity
 * refs, schema urls, trace state) is still checked for valid UTF-8, so a body this accepts is one
 * the protobuf library accepts. tests/collector/test_fast_decode.py compares both on generated
 * and mutated requests.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 16
#define N_KINDS 6
#define N_STATUSES 3

/* Results of the parsing functions. */
#define OK 0
#define DECLINE 1 /* not the plain case: the caller falls back to the protobuf library */
#define FAIL (-1) /* a Python exception is set (memory) */

/* Set once by setup(): the row's column names (interned), and the strings rows share. */
static PyObject *columns;     /* tuple of every column, in order */
static PyObject *kinds;       /* tuple: SPAN_KIND names by number */
static PyObject *statuses;    /* tuple: STATUS_CODE names by number */
static PyObject *service_key; /* "service.name" */
static PyObject *k_trace_id, *k_span_id, *k_parent_span_id, *k_name, *k_kind, *k_start_time,
    *k_end_time, *k_duration_ms, *k_status_code, *k_status_message, *k_attributes,
    *k_service_name, *k_scope_name, *k_resource_attributes, *k_received_at;

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

typedef struct {
    uint32_t number;
    int wire_type;
    uint64_t value;      /* varint, fixed64 and fixed32 fields */
    const uint8_t *data; /* length-delimited fields */
    Py_ssize_t size;
} Field;

enum { VARINT = 0, FIXED64 = 1, BYTES = 2, FIXED32 = 5 };

static inline int read_varint(Reader *r, uint64_t *out)
{
    if (r->p < r->end && *r->p < 0x80) { /* most tags and lengths: one byte */
        *out = *r->p++;
        return 1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return 0;
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return 0; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

static uint64_t load_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* The next field of a message: 1, 0 at its end, BAD on anything malformed or unusual. */
#define BAD (-2)
static int next_field(Reader *r, Field *f)
{
    uint64_t tag;
    if (r->p >= r->end)
        return 0;
    if (!read_varint(r, &tag) || tag > UINT32_MAX || (tag >> 3) == 0)
        return BAD;
    f->number = (uint32_t)(tag >> 3);
    f->wire_type = (int)(tag & 7);
    switch (f->wire_type) {
    case VARINT:
        return read_varint(r, &f->value) ? 1 : BAD;
    case FIXED64:
    case FIXED32: {
        int size = f->wire_type == FIXED64 ? 8 : 4;
        if (r->end - r->p < size)
            return BAD;
        f->value = load_le(r->p, size);
        r->p += size;
        return 1;
    }
    case BYTES: {
        uint64_t size;
        if (!read_varint(r, &size) || size > (uint64_t)(r->end - r->p))
            return BAD;
        f->data = r->p;
        f->size = (Py_ssize_t)size;
        r->p += size;
        return 1;
    }
    default: /* groups (deprecated) and invalid wire types */
        return BAD;
    }
}

/* Loops over a message's fields; a malformed one sets status to DECLINE and ends the loop. */
#define FOR_EACH_FIELD(reader, field, status)                                                   \
    for (int more_; (more_ = next_field(&(reader), &(field))) != 0;)                           \
        if (more_ == BAD) {                                                                      \
            (status) = DECLINE;                                                                  \
            break;                                                                               \
        } else

static Reader reader_of(const uint8_t *data, Py_ssize_t size)
{
    Reader r = {data, data + size};
    return r;
}

/* A string field as a str, or NULL: DECLINE for bad UTF-8 (its exception cleared). */
static PyObject *text(const Field *f, int *status)
{
    PyObject *s = PyUnicode_DecodeUTF8((const char *)f->data, f->size, NULL);
    if (s == NULL) {
        *status = PyErr_ExceptionMatches(PyExc_UnicodeDecodeError) ? DECLINE : FAIL;
        if (*status == DECLINE)
            PyErr_Clear();
    }
    return s;
}

/* Attribute keys and short values repeat from span to span (names, models, providers): the last
 * str made from the same bytes is reused, which saves decoding, allocating and hashing it again
 * (its hash is cached in the object) and makes dict inserts cheaper. ASCII strings only, so the
 * str's own bytes are the field's; a slot holds the last string that hashed to it. The GIL is
 * held throughout decode(). */
#define CACHE_SLOTS 1024
#define CACHE_MAX_SIZE 64
static PyObject *cache[CACHE_SLOTS];

/* A slot from the length and up to 24 of the bytes (the start, middle and end, where attribute
 * names differ): a collision only costs a miss. */
static size_t cache_slot(const uint8_t *p, Py_ssize_t n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15u;
    if (n >= 8) {
        uint64_t a, b, c;
        memcpy(&a, p, 8);
        memcpy(&b, p + (n - 8) / 2, 8);
        memcpy(&c, p + n - 8, 8);
        h ^= a + (b << 1) + (c << 2);
    } else {
        for (Py_ssize_t i = 0; i < n; i++)
            h ^= (uint64_t)p[i] << (8 * i);
    }
    h *= 0xFF51AFD7ED558CCDu;
    return (size_t)(h >> 40) & (CACHE_SLOTS - 1);
}

static PyObject *short_text(const Field *f, int *status)
{
    if (f->size > CACHE_MAX_SIZE)
        return text(f, status);
    PyObject **slot = &cache[cache_slot(f->data, f->size)];
    PyObject *s = *slot;
    if (s != NULL && PyUnicode_GET_LENGTH(s) == f->size &&
        memcmp(PyUnicode_1BYTE_DATA(s), f->data, f->size) == 0)
        return Py_NewRef(s);
    s = text(f, status);
    if (s != NULL && PyUnicode_IS_ASCII(s)) {
        (void)PyObject_Hash(s); /* computed once, kept in the object */
        Py_XSETREF(*slot, Py_NewRef(s));
    }
    return s;
}

/* A string field protobuf parses but the rows do not use: only its UTF-8 is checked. */
static int check_text(const Field *f)
{
    int status = OK;
    PyObject *s = text(f, &status);
    Py_XDECREF(s);
    return status;
}

/* A string field into *slot (the last one sent wins, as in protobuf). */
static int replace_text(PyObject **slot, const Field *f)
{
    int status = OK;
    PyObject *s = short_text(f, &status);
    if (s != NULL)
        Py_XSETREF(*slot, s);
    return status;
}

static PyObject *hex(const uint8_t *data, Py_ssize_t size)
{
    static const char digits[] = "0123456789abcdef";
    PyObject *s = PyUnicode_New(size * 2, 127);
    if (s == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t i = 0; i < size; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    return s;
}

static PyObject *base64(const uint8_t *data, Py_ssize_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    PyObject *s = PyUnicode_New((size + 2) / 3 * 4, 127);
    if (s == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t i = 0;
    for (; i + 2 < size; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = alphabet[(v >> 6) & 63];
        *out++ = alphabet[v & 63];
    }
    if (i < size) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < size ? (uint32_t)data[i + 1] << 8 : 0);
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = i + 1 < size ? alphabet[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    return s;
}

static int is_zero(const uint8_t *data, Py_ssize_t size)
{
    for (Py_ssize_t i = 0; i < size; i++)
        if (data[i])
            return 0;
    return 1;
}

/* Replaces *slot with value (a new reference, or NULL for FAIL). */
static int replace(PyObject **slot, PyObject *value)
{
    if (value == NULL)
        return FAIL;
    Py_XSETREF(*slot, value);
    return OK;
}

static int key_values_into(PyObject *dict, const Field *f, int depth);

/* An AnyValue as decode._any_value() reads it: *out is the value, or NULL when none is set. */
static int any_value(const uint8_t *data, Py_ssize_t size, int depth, PyObject **out)
{
    Reader r = reader_of(data, size);
    Field f;
    PyObject *value = NULL;
    int status = OK, messages = 0, strindex = 0;
    *out = NULL;
    if (depth > MAX_DEPTH)
        return DECLINE;
    FOR_EACH_FIELD(r, f, status)
    {
        int expected = (f.number == 1 || f.number == 5 || f.number == 6 || f.number == 7) ? BYTES
                       : f.number == 4                                                   ? FIXED64
                       : f.number <= 8                                                   ? VARINT
                                                                                         : -1;
        if (expected == -1)
            continue; /* unknown field */
        if (f.wire_type != expected) {
            status = DECLINE;
            break;
        }
        strindex = f.number == 8;
        switch (f.number) {
        case 1:
            status = replace_text(&value, &f);
            break;
        case 2:
            status = replace(&value, PyBool_FromLong(f.value != 0));
            break;
        case 3:
            status = replace(&value, PyLong_FromLongLong((long long)f.value));
            break;
        case 4: {
            double d;
            memcpy(&d, &f.value, sizeof d);
            status = replace(&value, PyFloat_FromDouble(d));
            break;
        }
        case 5:
        case 6: {
            /* a second array/kvlist would be merged into the first by protobuf */
            if (++messages > 1) {
                status = DECLINE;
                break;
            }
            PyObject *container = f.number == 5 ? PyList_New(0) : PyDict_New();
            if (container == NULL) {
                status = FAIL;
                break;
            }
            Reader items = reader_of(f.data, f.size);
            Field item;
            int more;
            while (status == OK && (more = next_field(&items, &item)) != 0) {
                if (more == BAD || (item.number == 1 && item.wire_type != BYTES)) {
                    status = DECLINE;
                } else if (item.number == 1 && f.number == 6) {
                    status = key_values_into(container, &item, depth + 1);
                } else if (item.number == 1) {
                    PyObject *element;
                    status = any_value(item.data, item.size, depth + 1, &element);
                    if (status == OK) {
                        status = PyList_Append(container, element ? element : Py_None) ? FAIL : OK;
                        Py_XDECREF(element);
                    }
                }
            }
            if (status != OK)
                Py_DECREF(container);
            else
                Py_XSETREF(value, container);
            break;
        }
        case 7:
            status = replace(&value, base64(f.data, f.size));
            break;
        }
        if (status != OK)
            break;
    }
    if (status == OK && strindex)
        status = DECLINE; /* decode.py stores the key with a None value: rare, left to it */
    if (status != OK) {
        Py_XDECREF(value);
        return status;
    }
    *out = value;
    return OK;
}

/* One KeyValue field into dict, as decode._attrs() does: a key without a value is left out. */
static int key_values_into(PyObject *dict, const Field *kv, int depth)
{
    Reader r = reader_of(kv->data, kv->size);
    Field f;
    PyObject *key = NULL, *value = NULL;
    int status = OK, values = 0;
    FOR_EACH_FIELD(r, f, status)
    {
        if (f.number == 1 && f.wire_type == BYTES) {
            status = replace_text(&key, &f);
        } else if (f.number == 2 && f.wire_type == BYTES && ++values == 1) {
            status = any_value(f.data, f.size, depth, &value);
        } else if (f.number <= 3 && !(f.number == 3 && f.wire_type == VARINT)) {
            status = DECLINE; /* a wrong wire type, or a value sent twice (protobuf merges) */
        }
        if (status != OK)
            break;
    }
    if (status == OK && value != NULL) {
        if (key == NULL)
            key = PyUnicode_New(0, 127);
        status = key == NULL || PyDict_SetItem(dict, key, value) ? FAIL : OK;
    }
    Py_XDECREF(key);
    Py_XDECREF(value);
    return status;
}

/* KeyValue fields protobuf parses but the rows do not use: checked by decoding them. */
static int check_key_values(const Field *kv)
{
    PyObject *scratch = PyDict_New();
    if (scratch == NULL)
        return FAIL;
    int status = key_values_into(scratch, kv, 0);
    Py_DECREF(scratch);
    return status;
}

/* The messages read by table: each field's wire type by number (-1: not a field of it)... */
static const int8_t EVENT_FIELDS[] = {-1, FIXED64, BYTES, BYTES, VARINT};
static const int8_t LINK_FIELDS[] = {-1, BYTES, BYTES, BYTES, BYTES, VARINT, FIXED32};
static const int8_t ENTITY_REF_FIELDS[] = {-1, BYTES, BYTES, BYTES, BYTES};
static const int8_t SCOPE_FIELDS[] = {-1, BYTES, BYTES, BYTES, VARINT};
static const int8_t RESOURCE_FIELDS[] = {-1, BYTES, VARINT, BYTES};

/* ... and what each holds: text or key-values only checked (protobuf parses them, the rows do
 * not use them), an entity ref checked, or the one field the rows use, read into *into. */
enum { SKIP, TEXT, KEY_VALUES, ENTITY_REF, READ_TEXT, READ_KEY_VALUES };
static const int8_t EVENT_HOLDS[] = {SKIP, SKIP, TEXT, KEY_VALUES, SKIP};
static const int8_t LINK_HOLDS[] = {SKIP, SKIP, SKIP, TEXT, KEY_VALUES, SKIP, SKIP};
static const int8_t ENTITY_REF_HOLDS[] = {SKIP, TEXT, TEXT, TEXT, TEXT};
static const int8_t SCOPE_HOLDS[] = {SKIP, READ_TEXT, TEXT, KEY_VALUES, SKIP};
static const int8_t RESOURCE_HOLDS[] = {SKIP, READ_KEY_VALUES, SKIP, ENTITY_REF};

static int read_message(const Field *m, const int8_t *wire_types, const int8_t *holds,
                        uint32_t fields, PyObject **into)
{
    Reader r = reader_of(m->data, m->size);
    Field f;
    int status = OK;
    FOR_EACH_FIELD(r, f, status)
    {
        if (f.number > fields)
            continue;
        if (f.wire_type != wire_types[f.number])
            status = DECLINE;
        else if (holds[f.number] == TEXT)
            status = check_text(&f);
        else if (holds[f.number] == KEY_VALUES)
            status = check_key_values(&f);
        else if (holds[f.number] == ENTITY_REF)
            status = read_message(&f, ENTITY_REF_FIELDS, ENTITY_REF_HOLDS,
                                  sizeof(ENTITY_REF_HOLDS) - 1, NULL);
        else if (holds[f.number] == READ_TEXT)
            status = replace_text(into, &f);
        else if (holds[f.number] == READ_KEY_VALUES)
            status = key_values_into(*into, &f, 0);
        if (status != OK)
            break;
    }
    return status;
}
#define READ(field, KIND, into)                                                                 \
    read_message(field, KIND##_FIELDS, KIND##_HOLDS, sizeof(KIND##_HOLDS) - 1, into)

/* A singular sub-message field: DECLINE if sent twice (protobuf would merge the two). */
static int once(Field *slot, const Field *f)
{
    if (slot->data != NULL)
        return DECLINE;
    *slot = *f;
    return OK;
}

typedef struct {
    Field trace_id, span_id, parent_span_id, status;
    PyObject *name, *attributes, *status_message;
    int32_t kind, code;
    uint64_t start, end;
} Span;

static int read_status(Span *s)
{
    Reader r = reader_of(s->status.data, s->status.size);
    Field f;
    int status = OK;
    FOR_EACH_FIELD(r, f, status)
    {
        if (f.number == 2 && f.wire_type == BYTES)
            status = replace_text(&s->status_message, &f);
        else if (f.number == 3 && f.wire_type == VARINT)
            s->code = (int32_t)f.value;
        else if (f.number == 2 || f.number == 3)
            status = DECLINE;
        if (status != OK)
            break;
    }
    return status;
}

static int read_span(const Field *m, Span *s)
{
    Reader r = reader_of(m->data, m->size);
    Field f;
    int status = OK;
    static const int8_t wire_types[] = {-1,     BYTES,  BYTES,  BYTES,   BYTES,   BYTES,
                                        VARINT, FIXED64, FIXED64, BYTES, VARINT, BYTES,
                                        VARINT, BYTES,  VARINT, BYTES,   FIXED32};
    FOR_EACH_FIELD(r, f, status)
    {
        if (f.number > 16)
            continue;
        if (f.wire_type != wire_types[f.number]) {
            status = DECLINE;
            break;
        }
        switch (f.number) {
        case 1: s->trace_id = f; break;
        case 2: s->span_id = f; break;
        case 3: status = check_text(&f); break;
        case 4: s->parent_span_id = f; break;
        case 5: status = replace_text(&s->name, &f); break;
        case 6: s->kind = (int32_t)f.value; break;
        case 7: s->start = f.value; break;
        case 8: s->end = f.value; break;
        case 9: status = key_values_into(s->attributes, &f, 0); break;
        case 11: status = READ(&f, EVENT, NULL); break;
        case 13: status = READ(&f, LINK, NULL); break;
        case 15: status = once(&s->status, &f); break;
        }
        if (status != OK)
            break;
    }
    return status == OK && s->status.data ? read_status(s) : status;
}

static int set(PyObject *row, PyObject *key, PyObject *value)
{
    if (value == NULL)
        return FAIL;
    int failed = PyDict_SetItem(row, key, value);
    Py_DECREF(value);
    return failed ? FAIL : OK;
}

static int set_borrowed(PyObject *row, PyObject *key, PyObject *value)
{
    return PyDict_SetItem(row, key, value) ? FAIL : OK;
}

#define MAX_TIME ((uint64_t)1 << 63)

/* The span's row (a copy of the scope's template) appended to rows, as rows_from_request(). */
static int span_row(const Field *m, PyObject *template, PyObject *rows)
{
    Span s;
    memset(&s, 0, sizeof s);
    s.attributes = PyDict_New();
    if (s.attributes == NULL)
        return FAIL;
    PyObject *row = NULL;
    int status = read_span(m, &s);
    if (status != OK)
        goto done;
    /* the spans decode.py rejects: it says why */
    if (s.trace_id.size != 16 || is_zero(s.trace_id.data, 16) || s.span_id.size != 8 ||
        is_zero(s.span_id.data, 8) || s.start == 0 || s.start >= MAX_TIME || s.end >= MAX_TIME) {
        status = DECLINE;
        goto done;
    }
    row = PyDict_Copy(template);
    status = row == NULL ? FAIL : OK;
    if (status == OK)
        status = set(row, k_trace_id, hex(s.trace_id.data, 16));
    if (status == OK)
        status = set(row, k_span_id, hex(s.span_id.data, 8));
    if (status == OK && s.parent_span_id.size == 8 && !is_zero(s.parent_span_id.data, 8))
        status = set(row, k_parent_span_id, hex(s.parent_span_id.data, 8));
    if (status == OK)
        status = s.name ? set_borrowed(row, k_name, s.name)
                        : set(row, k_name, PyUnicode_New(0, 127));
    if (status == OK)
        status = set_borrowed(row, k_kind,
                              PyTuple_GET_ITEM(kinds, s.kind >= 0 && s.kind < N_KINDS ? s.kind : 0));
    if (status == OK)
        status = set(row, k_start_time, PyLong_FromUnsignedLongLong(s.start));
    if (status == OK && s.end) {
        status = set(row, k_end_time, PyLong_FromUnsignedLongLong(s.end));
        if (status == OK)
            status = set(row, k_duration_ms,
                         PyFloat_FromDouble((double)(int64_t)(s.end - s.start) / 1e6));
    }
    if (status == OK)
        status = set_borrowed(
            row, k_status_code,
            PyTuple_GET_ITEM(statuses, s.code >= 0 && s.code < N_STATUSES ? s.code : 0));
    if (status == OK && s.status_message && PyUnicode_GET_LENGTH(s.status_message))
        status = set_borrowed(row, k_status_message, s.status_message);
    if (status == OK)
        status = set_borrowed(row, k_attributes, s.attributes);
    if (status == OK)
        status = PyList_Append(rows, row) ? FAIL : OK;
done:
    Py_XDECREF(row);
    Py_XDECREF(s.name);
    Py_XDECREF(s.status_message);
    Py_DECREF(s.attributes);
    return status;
}

/* What every row of one scope starts as (decode._scope_template). */
static PyObject *scope_template(PyObject *service, PyObject *scope_name, PyObject *resource,
                                PyObject *received_at)
{
    PyObject *t = PyDict_New();
    if (t == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(columns);
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyDict_SetItem(t, PyTuple_GET_ITEM(columns, i), Py_None))
            goto fail;
    if (PyDict_SetItem(t, k_service_name, service) || PyDict_SetItem(t, k_scope_name, scope_name) ||
        PyDict_SetItem(t, k_resource_attributes, resource) ||
        PyDict_SetItem(t, k_received_at, received_at))
        goto fail;
    return t;
fail:
    Py_DECREF(t);
    return NULL;
}

/* The first pass over ResourceSpans or ScopeSpans: its one sub-message (resource or scope),
 * which may come after the spans on the wire, and its schema_url checked. */
static int singular_part(const Field *m, Field *part)
{
    Reader r = reader_of(m->data, m->size);
    Field f;
    int status = OK;
    memset(part, 0, sizeof *part);
    FOR_EACH_FIELD(r, f, status)
    {
        status = f.number <= 3 && f.wire_type != BYTES ? DECLINE
                 : f.number == 1                       ? once(part, &f)
                 : f.number == 3                       ? check_text(&f)
                                                       : OK;
        if (status != OK)
            break;
    }
    return status;
}

static int scope_spans(const Field *m, PyObject *service, PyObject *resource,
                       PyObject *received_at, PyObject *rows)
{
    Field scope, f;
    PyObject *name = NULL;
    int status = singular_part(m, &scope);
    if (status == OK && scope.data)
        status = READ(&scope, SCOPE, &name);
    if (name != NULL && (status != OK || PyUnicode_GET_LENGTH(name) == 0))
        Py_CLEAR(name); /* an empty scope name is None */
    if (status != OK)
        return status;
    PyObject *template = scope_template(service, name ? name : Py_None, resource, received_at);
    Py_XDECREF(name);
    if (template == NULL)
        return FAIL;
    Reader r = reader_of(m->data, m->size); /* well-formed: singular_part() read it */
    FOR_EACH_FIELD(r, f, status)
    {
        if (f.number == 2 && (status = span_row(&f, template, rows)) != OK)
            break;
    }
    Py_DECREF(template);
    return status;
}

/* service.name as decode.py reads it: a str, or None. */
static PyObject *service_of(PyObject *attributes)
{
    PyObject *service = PyDict_GetItemWithError(attributes, service_key);
    if (service == NULL)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    return PyUnicode_Check(service) ? Py_NewRef(service) : PyObject_Str(service);
}

static int resource_spans(const Field *m, PyObject *received_at, PyObject *rows)
{
    Field resource, f;
    int status = singular_part(m, &resource);
    if (status != OK)
        return status;
    PyObject *attributes = PyDict_New(), *service = NULL;
    if (attributes == NULL)
        return FAIL;
    if (resource.data)
        status = READ(&resource, RESOURCE, &attributes);
    if (status == OK && (service = service_of(attributes)) == NULL)
        status = FAIL;
    if (status == OK) {
        Reader r = reader_of(m->data, m->size); /* well-formed: singular_part() read it */
        FOR_EACH_FIELD(r, f, status)
        {
            if (f.number == 2 && (status = scope_spans(&f, service, attributes, received_at,
                                                       rows)) != OK)
                break;
        }
    }
    Py_XDECREF(service);
    Py_DECREF(attributes);
    return status;
}

static PyObject *decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer body;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "decode(body, received_at)");
        return NULL;
    }
    if (columns == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "decode() before setup()");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &body, PyBUF_SIMPLE))
        return NULL;
    PyObject *rows = PyList_New(0);
    int status = rows == NULL ? FAIL : OK;
    Reader r = reader_of(body.buf, body.len);
    Field f;
    while (status == OK) {
        int more = next_field(&r, &f);
        if (more == 0)
            break;
        if (more == BAD || (f.number == 1 && f.wire_type != BYTES))
            status = DECLINE;
        else if (f.number == 1)
            status = resource_spans(&f, args[1], rows);
    }
    PyBuffer_Release(&body);
    if (status == OK)
        return rows;
    Py_XDECREF(rows);
    if (status == FAIL)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject **column_keys[] = {
    &k_trace_id,    &k_span_id,     &k_parent_span_id,    &k_name,
    &k_kind,        &k_start_time,  &k_end_time,          &k_duration_ms,
    &k_status_code, &k_status_message, &k_attributes,     &k_service_name,
    &k_scope_name,  &k_resource_attributes, &k_received_at,
};
static const char *column_names[] = {
    "trace_id",    "span_id",        "parent_span_id", "name",        "kind",
    "start_time",  "end_time",       "duration_ms",    "status_code", "status_message",
    "attributes",  "service_name",   "scope_name",     "resource_attributes", "received_at",
};

static PyObject *setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyTuple_Check(args[0]) || !PyTuple_Check(args[1]) ||
        PyTuple_GET_SIZE(args[1]) != N_KINDS || !PyTuple_Check(args[2]) ||
        PyTuple_GET_SIZE(args[2]) != N_STATUSES || !PyUnicode_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "setup(columns, kinds[6], status codes[3], service key)");
        return NULL;
    }
    for (size_t i = 0; i < sizeof column_names / sizeof *column_names; i++) {
        PyObject *name = PyUnicode_InternFromString(column_names[i]);
        if (name == NULL)
            return NULL;
        int found = PySequence_Contains(args[0], name);
        if (found != 1) {
            Py_DECREF(name);
            if (found == 0)
                PyErr_Format(PyExc_ValueError, "column %s missing", column_names[i]);
            return NULL;
        }
        Py_XSETREF(*column_keys[i], name);
    }
    Py_XSETREF(columns, Py_NewRef(args[0]));
    Py_XSETREF(kinds, Py_NewRef(args[1]));
    Py_XSETREF(statuses, Py_NewRef(args[2]));
    Py_XSETREF(service_key, Py_NewRef(args[3]));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"setup", (PyCFunction)(void (*)(void))setup, METH_FASTCALL,
     "setup(columns, kinds, status_codes, service_key): the row layout decode() builds."},
    {"decode", (PyCFunction)(void (*)(void))decode, METH_FASTCALL,
     "decode(body, received_at) -> list of span rows, or None to decode with protobuf instead."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_fast_decode",
    .m_doc = "OTLP trace requests into span rows without protobuf messages (see _fast_decode.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fast_decode(void) { return PyModule_Create(&module); }
