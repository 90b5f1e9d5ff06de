/* test_template.c: the Go text/template engine of line_format/label_format against hand-written
 * expectations from Go's and Loki's semantics: syntax (trim markers, comments, control structures,
 * variables, literals), every template function, printf verbs, and Go's parse and execution
 * error texts. */
#include "testutil.h"

#include "common/err.h"
#include "querier/template.h"

#include <time.h>

static char out_buf[8192];

/* Runs tmpl over labels "a=b,c=d" (values may not contain ','), line "the line", and
 * ts 2022-06-27T12:00:00Z (+ns). Returns the output, or "ERR: <message>" / "PARSE: <message>". */
static const char *tx_ns(const char *tmpl, const char *labels, int64_t ns)
{
    st_tmpl_t *t;
    char err[512];
    int rc = st_tmpl_parse("t", st_cstr(tmpl), &t, err, sizeof err);
    if (rc == ST_EPARSE) {
        snprintf(out_buf, sizeof out_buf, "PARSE: %s", err);
        return out_buf;
    }
    assert_int_equal(rc, 0);
    /* "a=x,b=y": a comma starts a new label only when a name and '=' follow it */
    st_label_t l[16];
    size_t n = 0;
    char *copy = strdup(labels ? labels : "");
    char *p = copy;
    while (*p && n < 16) {
        char *eq = strchr(p, '=');
        assert_non_null(eq);
        l[n].name = st_str(p, (size_t)(eq - p));
        char *v = eq + 1, *end = v;
        for (;;) {
            char *c = strchr(end, ',');
            if (c == NULL) {
                end = v + strlen(v);
                break;
            }
            char *k = c + 1;
            while (*k == '_' || (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
                   (k > c + 1 && *k >= '0' && *k <= '9'))
                k++;
            if (k > c + 1 && *k == '=') {
                end = c;
                break;
            }
            end = c + 1;
        }
        l[n].value = st_str(v, (size_t)(end - v));
        n++;
        p = *end ? end + 1 : end;
    }
    st_tmpl_data_t d = {l, n, ST_STR("the line"), 1656331200000000000LL + ns};
    st_buf_t b = ST_BUF_INIT;
    st_str_t emsg;
    rc = st_tmpl_exec(t, &d, &b, &emsg);
    if (rc == ST_EPARSE)
        snprintf(out_buf, sizeof out_buf, "ERR: %.*s", (int)emsg.n, emsg.p);
    else
        snprintf(out_buf, sizeof out_buf, "%.*s", (int)b.len, b.data ? b.data : "");
    assert_true(rc == 0 || rc == ST_EPARSE);
    /* a second execution gives the same result (buffers are reused) */
    st_buf_t b2 = ST_BUF_INIT;
    int rc2 = st_tmpl_exec(t, &d, &b2, &emsg);
    assert_int_equal(rc, rc2);
    if (rc == 0) assert_true(b.len == b2.len && (b.len == 0 || memcmp(b.data, b2.data, b.len) == 0));
    st_buf_free(&b);
    st_buf_free(&b2);
    st_tmpl_free(t);
    free(copy);
    return out_buf;
}

static const char *tx(const char *tmpl, const char *labels)
{
    return tx_ns(tmpl, labels, 0);
}

#define T(tmpl, labels, want) assert_string_equal(tx(tmpl, labels), want)

static void test_syntax(void **state)
{
    (void)state;
    T("hello", "", "hello");
    T("", "", "");
    T("foo{{.foo}}buzz{{  .bar  }}", "foo=blip,bar=blop", "fooblipbuzzblop");
    T("foo {{.foo}}buzz{{ .bar }}", "bar=blop", "foo buzzblop"); /* missingkey=zero */
    T("a  {{- .foo -}}  b", "foo=x", "axb");
    T("a \n {{- .foo }} \n b", "foo=x", "ax \n b");
    T("a{{/* a comment */}}b", "", "ab");
    T("a {{- /* c */ -}} b", "", "ab");
    T("{{ \"str\" }}{{ `raw\\n` }}{{ 'a' }}{{ 42 }}{{ -7 }}{{ 1.5 }}{{ 1e3 }}{{ 0x1F }}{{ 1_000 }}{{ true }}",
      "",
      "strraw\\n9742-71.5100031"
      "1000true");
    T("{{ $x := .foo }}{{ $x }}-{{ $x = \"new\" }}{{ $x }}", "foo=blip", "blip-new");
    T("{{ $ }}", "a=1,b=2", "map[a:1 b:2]");
    T("{{ if .a }}yes{{ else }}no{{ end }}", "a=1", "yes");
    T("{{ if .a }}yes{{ else }}no{{ end }}", "", "no");
    T("{{ if eq .a \"1\" }}one{{ else if eq .a \"2\" }}two{{ else }}many{{ end }}", "a=2", "two");
    T("{{ with .foo }}[{{ . }}]{{ else }}none{{ end }}", "foo=x", "[x]");
    T("{{ with .nope }}x{{ else with .foo }}<{{.}}>{{ end }}", "foo=y", "<y>");
    T("{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}", "b=2,a=1,c=3", "a=1;b=2;c=3;");
    T("{{ range . }}{{ . }}{{ end }}", "b=2,a=1", "12");
    T("{{ range 3 }}{{ . }}{{ end }}", "", "012");
    T("{{ range $i := 5 }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ $i }}{{ end }}", "", "012");
    T("{{ range $i := 5 }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ $i }}{{ end }}", "", "0234");
    T("{{ range 0 }}x{{ else }}none{{ end }}", "", "none");
    T("{{ (printf \"%s!\" .foo) | upper }}", "foo=hi", "HI!");
    T("{{ __line__ }} bar {{ .bar }}", "bar=2", "the line bar 2");
    T("{{ __timestamp__ }}", "", "2022-06-27 12:00:00 +0000 UTC");
    assert_string_equal(tx_ns("{{ __timestamp__ }}", "", 123456789),
                        "2022-06-27 12:00:00.123456789 +0000 UTC");
    T("{{ (__timestamp__).Unix }} {{ __timestamp__.Year }}", "", "1656331200 2022");
    T("{{ .a }}{{ .b }}", "a=<x>,b=&", "<x>&"); /* text/template does not escape */
}

static void test_strings(void **state)
{
    (void)state;
    const char *L = "foo=blip,bar=blop";
    T("{{ Replace .bar \"blop\" \"bar\" -1 }}", L, "bar");
    T("{{ Replace \"aaaa\" \"a\" \"b\" 2 }}", L, "bbaa");
    T("{{ Replace \"ab\" \"\" \"-\" -1 }}", L, "-a-b-");
    T("{{ .bar | replace \"blop\" \"bar\" }}", L, "bar");
    T("{{ .foo | title }} {{ \"hello wORLD-x_y\" | title }}", L, "Blip Hello WORLD-X_y");
    T("{{ .foo | substr 1 3 }} {{ .bar | trunc 1 }} {{ .bar | trunc 3 }} {{ .bar | trunc -2 }}", L,
      "li b blo op");
    T("{{ \"h\xc3\xa9llo\" | substr 1 3 }} {{ \"h\xc3\xa9llo\" | trunc 2 }} {{ substr -1 2 \"abc\" }} {{ "
      "substr 2 -1 \"abcd\" }}",
      "", "\xc3\xa9l h\xc3\xa9 ab cd");
    T("{{.foo | trim }} {{ .bar | trimAll \"op\" }} {{ .bar | trimPrefix \"b\" }} {{ .bar | trimSuffix \"p\" "
      "}}",
      "foo=  blip ,bar=blop", "blip bl lop blo");
    T("{{ Trim \"xxhixx\" \"x\" }} {{ TrimLeft \"xxhixx\" \"x\" }} {{ TrimRight \"xxhixx\" \"x\" }} {{ "
      "TrimPrefix \"xxhi\" \"x\" }} {{ TrimSuffix \"hixx\" \"x\" }} [{{ TrimSpace \" \\t a \\n\" }}]",
      "", "hi hixx xxhi xhi hix [a]");
    T("{{.foo | lower }} {{ .bar | upper }} {{ ToUpper \"\xc3\xa9"
      "a\" }} {{ ToLower \"\xc3\x89"
      "A\" }}",
      "foo=BLIp,bar=blop",
      "blip BLOP \xc3\x89"
      "A \xc3\xa9"
      "a");
    T("{{ \"foo\" | repeat 3 }}", "", "foofoofoo");
    T("{{ \"foo\\n bar\" | indent 4 }}", "", "    foo\n     bar");
    T("{{ \"foo\" | nindent 2 }}", "", "\n  foo");
    T("{{ if .foo | contains \"p\" }}yes{{end}}-{{ if .foo | contains \"z\" }}no{{end}}", "foo=BLIp", "yes-");
    T("{{ if .foo | hasPrefix \"BL\" }}yes{{end}}-{{ if .foo | hasSuffix \"pw\" }}no{{end}}", "foo=BLIp",
      "yes-");
    T("{{ alignLeft 4 .foo }}|{{ alignRight 4 .foo }}|{{ alignLeft 7 \"hi\" }}|{{ alignRight 4 \"hi\" }}",
      "foo=hello", "hell|ello|hi     |  hi");
    T("{{ len .foo }} {{ len . }}", "foo=hello,a=b", "5 2");
    T("{{ index . \"foo\" }}[{{ index . \"nope\" }}]{{ index \"abc\" 1 }}", "foo=bar", "bar[]98");
    T("{{ slice \"abcdef\" 1 3 }}", "", "bc");
    T("{{ print \"a\" 1 2 \"b\" }}|{{ println \"a\" 1 }}|", "", "a1 2b|a 1\n|");
    T("{{ html \"<a href='x'>&</a>\" }} {{ urlquery \"a b&c\" }} {{ js \"it's <b>\" }}", "",
      "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt; a+b%26c it\\'s \\u003Cb\\u003E");
}

static void test_regex_encoding(void **state)
{
    (void)state;
    T("{{ regexReplaceAll \"(p)\" .foo \"t\" }}", "foo=BLIp", "BLIt");
    T("{{ regexReplaceAllLiteral \"(p)\" .foo \"${1}\" }}", "foo=BLIp", "BLI${1}");
    T("{{ regexReplaceAll \"(l)\" \"hello\" \"[$1]\" }}", "", "he[l][l]o");
    T("{{ regexReplaceAll \"(?P<x>l)\" \"hello\" \"<${x}>\" }}", "", "he<l><l>o");
    T("{{ regexReplaceAll \"(a)\" \"a-a\" \"$1W\" }}", "", "-"); /* $1W names group "1W" */
    T("{{ regexReplaceAll \"a*\" \"baaac\" \"-\" }}", "", "-b-c-");
    T("{{ regexReplaceAll \"x\" \"abc\" \"y\" }}{{ regexReplaceAll \"\\\\d+\" \"a1b22\" \"$$\" }}", "",
      "abca$b$");
    T("{{.foo | count \"abc\" }} {{.foo | count \"a|b|c\" }} {{ count \"\" \"abc\" }}", "foo=abc abc abc",
      "3 9 4");
    T("{{ regexReplaceAll \"(\" \"x\" \"y\" }}", "",
      "ERR: template: t:1:3: executing \"t\" at <regexReplaceAll \"(\" \"x\" \"y\">: error calling "
      "regexReplaceAll: error parsing regexp: missing closing ): `(`");
    T("{{ .foo | b64enc }}", "foo=i'm a string, encode me!", "aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh");
    T("{{ .foo | b64dec }}", "foo=aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh", "i'm a string, encode me!");
    T("{{ .foo | b64dec }} {{ .bar | b64dec }}", "foo=Zm9vYmE,bar=Zm9vYg", "fooba foob");
    T("{{ \"!!\" | b64dec }}", "", "illegal base64 data at input byte 0");
    T("{{ .foo | urlencode }}", "foo=/api?q=sum(a{b=\"c\"}) x~",
      "%2Fapi%3Fq%3Dsum%28a%7Bb%3D%22c%22%7D%29+x~");
    T("{{ urldecode \"%2Fapi%3Fq+x\" }}", "", "/api?q x");
    T("{{ urldecode \"a%zzb\" }}", "",
      "ERR: template: t:1:3: executing \"t\" at <urldecode \"a%zzb\">: error calling urldecode: invalid URL "
      "escape \"%zz\"");
}

static void test_numbers(void **state)
{
    (void)state;
    T("{{ add .foo 1 | sub .bar | mul .baz | div .bazz}}", "foo=1,bar=3,baz=10,bazz=20", "2");
    T("{{ addf .foo 1.5 | subf .bar 1.5 | mulf .baz | divf .bazz }}", "foo=1.5,bar=5,baz=10.5,bazz=20.2",
      "3.8476190476190477");
    T("{{ round (addf .foo 1.5 | subf .bar | mulf .baz | divf .bazz) 5 .2}}",
      "foo=1.5,bar=3.5,baz=10.5,bazz=20.4", "3.88572");
    T("{{ addf 0.1 0.2 }} {{ mulf 1.1 1.1 }} {{ divf 1 3 }} {{ subf 1 0.9 }}", "",
      "0.3 1.21 0.3333333333333333 0.1");
    T("min is {{ min .foo .bar .baz }} and max is {{ max .foo .bar .baz }}", "foo=5,bar=10,baz=15",
      "min is 5 and max is 15");
    T("minf is {{ minf .foo .bar .baz }} and maxf is {{maxf .foo .bar .baz}}", "foo=5.3,bar=10.5,baz=15.2",
      "minf is 5.3 and maxf is 15.2");
    T("ceil is {{ ceil .foo }} and floor is {{floor .foo }}", "foo=5.3", "ceil is 6 and floor is 5");
    T("mod is {{ mod .foo 3 }}", "foo=20", "mod is 2");
    T("{{ \"2.5\" | float64 | int | add 10}}", "", "12");
    T("{{ div .status 100 }}", "status=200", "2");
    T("{{ add \"0x10\" \"5.0\" \"abc\" true 1.9 }}", "",
      "23"); /* cast: hex, trailing .0, errors are 0, bools, truncation */
    T("{{ div 1 0 }}", "",
      "ERR: template: t:1:3: executing \"t\" at <div 1 0>: error calling div: runtime error: integer divide "
      "by zero");
    T("{{ .foo | bytes }} {{ .bar | bytes }}", "foo=3 kB,bar=3MB", "3000 3e+06");
    T("{{ .foo | duration }} {{ .bar | duration_seconds }}", "foo=3ms,bar=3m10s", "0.003 190");
    T("{{ 1.0 }} {{ 1e21 }} {{ 123456.7 }} {{ 1234567.0 }} {{ 0.00001 }}", "",
      "1 1e+21 123456.7 1.234567e+06 1e-05");
}

static void test_time(void **state)
{
    (void)state;
    T("{{ sub (unixEpoch (toDate \"2006-01-02\" \"2021-11-02\")) (unixEpoch (toDate \"2006-01-02\" "
      "\"2021-11-01\")) }}",
      "", "86400");
    T("{{ date \"2006-01-02\" (toDate \"2006-01-02\" \"2021-11-02\") }}", "", "2021-11-02");
    T("{{ div (unixEpoch now) (unixEpoch now) }}", "", "1");
    T("{{ __timestamp__ | date \"2006-01-02\" }} {{ __timestamp__ | unixEpoch }}", "",
      "2022-06-27 1656331200");
    T("{{ __timestamp__ | date \"Mon Jan _2 15:04:05 MST 2006\" }}", "", "Mon Jun 27 12:00:00 UTC 2022");
    T("{{ __timestamp__ | date \"02/01/06 03:04PM .000 Z07:00 -0700 January Monday 002\" }}", "",
      "27/06/22 12:00PM .000 Z +0000 June Monday 178");
    assert_string_equal(
        tx_ns("{{ __timestamp__ | date \"15:04:05.999 15:04:05.000000 .9\" }}", "", 120000000),
        "12:00:00.12 12:00:00.120000 .1");
    T("{{ .foo | toDateInZone \"2006-01-02T15:04:05.999999999Z\" \"UTC\" | unixEpochMillis }}",
      "foo=2023-03-10T01:32:40.340485723Z", "1678411960340");
    T("{{ .foo | toDateInZone \"2006-01-02T15:04:05.999999999Z\" \"UTC\" | unixEpochNanos }}",
      "foo=2023-03-10T01:32:40.340485723Z", "1678411960340485723");
    T("{{ toDate \"02 Jan 06 15:04 -0700\" \"27 Jun 22 14:30 +0200\" | unixEpoch }}", "", "1656333000");
    T("{{ toDate \"2006-01-02T15:04:05Z07:00\" \"2022-06-27T14:30:00+02:00\" }}", "",
      "2022-06-27 14:30:00 +0200 +0200");
    T("{{ toDate \"2006-01-02\" \"not a date\" | unixEpoch }}", "", "-62135596800");
    T("{{ toDate \"Jan _2 2006 3PM\" \"Feb  3 2021 4PM\" | date \"2006-01-02 15\" }}", "", "2021-02-03 16");
    T("{{ unixToTime \"1679577215\" | date \"2006-01-02T15:04:05Z07:00\" }}", "", "2023-03-23T13:13:35Z");
    T("{{ unixToTime \"1257894000000\" | unixEpoch }} {{ unixToTime \"19503\" | unixEpoch }} {{ unixToTime "
      "\"1673798889902000\" | unixEpochMillis }}",
      "", "1257894000 1685059200 1673798889902");
    T("{{ unixToTime \"abc\" }}", "",
      "ERR: template: t:1:3: executing \"t\" at <unixToTime \"abc\">: error calling unixToTime: unable to "
      "parse time 'abc': strconv.ParseInt: parsing \"abc\": invalid syntax");
    T("{{ unixToTime \"123\" }}", "",
      "ERR: template: t:1:3: executing \"t\" at <unixToTime \"123\">: error calling unixToTime: unable to "
      "parse time '123': %!w(<nil>)");
    T("{{ date \"2006\" 0 }}", "", "1970");
}

static void test_logic(void **state)
{
    (void)state;
    T("{{.foo | default \"-\" }}{{.bar | default \"-\"}}{{.unknown | default \"-\"}}",
      "foo=blip,bar=", "blip--");
    T("{{ default \"d\" 0 }} {{ default \"d\" 5 }} {{ default \"d\" false }}", "", "d 5 d");
    T("{{ and 1 0 }} {{ and 1 2 }} {{ or \"\" \"x\" }} {{ or 0 \"\" }} {{ not .missing }} {{ not 1 }}", "",
      "0 2 x  true false");
    T("{{ if and .a (eq .b \"x\") }}yes{{ end }}", "a=1,b=x", "yes");
    T("{{ eq .a \"x\" \"y\" }} {{ eq 1 2 3 1 }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} "
      "{{ ge 1.5 2.5 }}",
      "a=y", "true true true true true true false");
    T("{{ eq (int \"3\") 3 }} {{ eq (add 1 2) 3 }}", "", "true true"); /* int and int64 compare */
    T("{{ eq 1 \"1\" }}", "",
      "ERR: template: t:1:3: executing \"t\" at <eq 1 \"1\">: error calling eq: incompatible types for "
      "comparison");
    T("{{ lt 1.5 2 }}", "",
      "ERR: template: t:1:3: executing \"t\" at <lt 1.5 2>: error calling lt: incompatible types for "
      "comparison");
    T("{{ lt true false }}", "",
      "ERR: template: t:1:3: executing \"t\" at <lt true false>: error calling lt: invalid type for "
      "comparison");
    T("{{ printf \"%s-%d-%.2f-%5s|%-5s|%05d|%x|%X|%q|%v|%t|%%|%c\" \"a\" 42 3.14159 \"ab\" \"cd\" 42 255 "
      "\"hi\" \"q\\\"\" 1.5 true 65 }}",
      "", "a-42-3.14-   ab|cd   |00042|ff|6869|\"q\\\"\"|1.5|true|%|A");
    T("{{ printf \"%d|%s|%d\" \"x\" 3 }}", "", "%!d(string=x)|%!s(int=3)|%!d(MISSING)");
    T("{{ printf \"%d\" 1 2 }}", "", "1%!(EXTRA int=2)");
    T("{{ printf \"%6.2f|%-8.3e|%g|%+d|% d|%#x|%o|%b|%T|%T\" 3.14159 1234.5678 0.000001 5 5 255 8 5 \"s\" "
      "1.5 }}",
      "", "  3.14|1.235e+03|1e-06|+5| 5|0xff|10|101|string|float64");
    T("{{ printf \"%v %v %v\" . .foo nil }}", "foo=1", "map[foo:1] 1 <nil>");
    T("{{ printf \"%.3s|%5.1s|%x\" \"abcdef\" \"xyz\" \"hi\" }}", "", "abc|    x|6869");
}

static void test_errors(void **state)
{
    (void)state;
    /* parse errors */
    T("{{ .foo", "", "PARSE: template: t:1: unclosed action");
    T("{{ if .a }}x", "", "PARSE: template: t:1: unexpected EOF");
    T("x{{ end }}", "", "PARSE: template: t:1: unexpected {{end}}");
    T("{{ else }}", "", "PARSE: template: t:1: unexpected {{else}}");
    T("{{ nope }}", "", "PARSE: template: t:1: function \"nope\" not defined");
    T("{{ $x }}", "", "PARSE: template: t:1: undefined variable \"$x\"");
    T("{{ upper | 3 }}", "", "PARSE: template: t:1: non executable command in pipeline stage 2");
    T("{{ }}", "", "PARSE: template: t:1: missing value for command");
    T("{{ break }}", "", "PARSE: template: t:1: {{break}} outside {{range}}");
    T("{{ \"abc }}", "", "PARSE: template: t:1: unterminated quoted string");
    T("{{ 3x }}", "", "PARSE: template: t:1: bad number syntax: \"3x\"");
    T("{{ .a@ }}", "", "PARSE: template: t:1: bad character U+0040 '@'");
    T("{{ ( .a }}", "", "PARSE: template: t:1: unclosed left paren");
    T("{{ .a ) }}", "", "PARSE: template: t:1: unexpected \")\" in command");
    T("a\nb\n{{ .a\n", "", "PARSE: template: t:4: unclosed action started at t:3");
    T("{{ \"x\".y }}", "", "PARSE: template: t:1: unexpected . after term \"\\\"x\\\"\"");
    T("{{/* unclosed", "", "PARSE: template: t:1: unclosed comment");
    /* execution errors carry the position and the node */
    T("{{.foo Replace \"foo\"}}", "foo=blip",
      "ERR: template: t:1:2: executing \"t\" at <.foo>: foo is not a method but has arguments");
    T("{{.foo | now}}", "foo=blip",
      "ERR: template: t:1:9: executing \"t\" at <now>: wrong number of args for now: want 0 got 1");
    T("{{replace \"test\" .foo}}", "foo=blip",
      "ERR: template: t:1:2: executing \"t\" at <replace>: wrong number of args for replace: want 3 got 2");
    T("{{ .foo.bar }}", "foo=x",
      "ERR: template: t:1:3: executing \"t\" at <.foo.bar>: can't evaluate field bar in type string");
    T("{{ repeat \"3\" \"x\" }}", "",
      "ERR: template: t:1:10: executing \"t\" at <\"3\">: expected integer; found \"3\"");
    T("{{ .foo | int | upper }}", "foo=1",
      "ERR: template: t:1:16: executing \"t\" at <upper>: wrong type for value; expected string; got int");
    T("{{ repeat (add 1 1) \"x\" }}", "",
      "ERR: template: t:1:11: executing \"t\" at <add 1 1>: wrong type for value; expected int; got int64");
    T("a\n{{ .x.y }}", "x=1",
      "ERR: template: t:2:3: executing \"t\" at <.x.y>: can't evaluate field y in type string");
    T("{{ \"a\" \"b\" }}", "",
      "ERR: template: t:1:3: executing \"t\" at <\"a\">: can't give argument to non-function \"a\"");
    T("{{ nil }}", "", "ERR: template: t:1:3: executing \"t\" at <nil>: nil is not a command");
    T("{{ range \"abc\" }}x{{ end }}", "",
      "ERR: template: t:1:9: executing \"t\" at <\"abc\">: range can't iterate over abc");
    T("{{ repeat -1 \"x\" }}", "",
      "ERR: template: t:1:3: executing \"t\" at <repeat -1 \"x\">: error calling repeat: strings: negative "
      "Repeat count");
    T("{{ range 2000000 }}{{ end }}", "",
      "ERR: template: t:1:9: executing \"t\" at <2000000>: too many range iterations");
    /* the {{.x}} shape */
    st_tmpl_t *t;
    char err[256];
    st_str_t name;
    assert_int_equal(st_tmpl_parse("line", ST_STR("{{ .message }}"), &t, err, sizeof err), 0);
    assert_true(st_tmpl_simple_field(t, &name));
    assert_true(st_str_eqc(name, "message"));
    st_tmpl_free(t);
    assert_int_equal(st_tmpl_parse("line", ST_STR("{{.message}} "), &t, err, sizeof err), 0);
    assert_false(st_tmpl_simple_field(t, &name));
    st_tmpl_free(t);
    assert_int_equal(st_tmpl_parse("line", ST_STR("{{.a.b}}"), &t, err, sizeof err), 0);
    assert_false(st_tmpl_simple_field(t, &name));
    st_tmpl_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),  cmocka_unit_test(test_strings), cmocka_unit_test(test_regex_encoding),
        cmocka_unit_test(test_numbers), cmocka_unit_test(test_time),    cmocka_unit_test(test_logic),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
