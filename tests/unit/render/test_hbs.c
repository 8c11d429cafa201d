/* test_hbs.c: the Handlebars engine: syntax, blocks, lookup rules, Courier's single-brace
 * form and helpers, limits, compile errors, the cache and concurrent rendering. */
#include "../../../src/render/hbs.h"
#include "../../../src/util/buf.h"
#include "../../../src/util/clock.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* ctx: parse JSON written with ' for " (so contexts fit in C strings). */
static cJSON *ctx(const char *json)
{
    char *s = strdup(json);
    cJSON *j;
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    j = cJSON_Parse(s);
    free(s);
    if (!j)
        fail_msg("bad test JSON: %s", json);
    return j;
}

/* render: compile + render, failing the test on any error; caller frees the result. */
static char *render(const char *tmpl, const char *json, enum hbs_mode mode)
{
    struct hbs_tmpl *t = NULL;
    struct herr err = {0};
    struct buf b;
    cJSON *c = json ? ctx(json) : NULL;
    int rc = hbs_compile(tmpl, strlen(tmpl), &t, &err);
    if (rc < 0)
        fail_msg("compile `%s`: %s", tmpl, err.msg);
    buf_init(&b, 1 << 20);
    rc = hbs_render(t, c, mode, &b, &err);
    if (rc < 0)
        fail_msg("render `%s`: %s", tmpl, err.msg);
    hbs_unref(t);
    cJSON_Delete(c);
    return buf_steal(&b, NULL);
}

static void expect_mode(const char *tmpl, const char *json, enum hbs_mode mode, const char *want)
{
    char *got = render(tmpl, json, mode);
    if (strcmp(got, want) != 0) {
        print_error("template: %s\n     got: [%s]\n    want: [%s]\n", tmpl, got, want);
        free(got);
        fail();
    }
    free(got);
}

#define EXPECT(tmpl, json, want) expect_mode(tmpl, json, HBS_TEXT, want)
#define EXPECT_HTML(tmpl, json, want) expect_mode(tmpl, json, HBS_HTML, want)

/* expect_cerr: compiling fails with rc and a message containing each given part. */
static void expect_cerr(const char *tmpl, int want_rc, const char *part1, const char *part2)
{
    struct hbs_tmpl *t = NULL;
    struct herr err = {0};
    int rc = hbs_compile(tmpl, strlen(tmpl), &t, &err);
    if (rc != want_rc || t != NULL) {
        print_error("template: %s: rc %d (want %d), msg [%s]\n", tmpl, rc, want_rc, err.msg);
        hbs_unref(t);
        fail();
    }
    if ((part1 && !strstr(err.msg, part1)) || (part2 && !strstr(err.msg, part2))) {
        print_error("template: %s: message [%s] lacks [%s] / [%s]\n", tmpl, err.msg,
                    part1 ? part1 : "", part2 ? part2 : "");
        fail();
    }
}

static const char *USER = "{'data':{'name':'Ann','count':3,'items':['a','b','c'],'empty':[],"
                          "'zero':0,'blank':'','obj':{'x':1,'y':2},'html':'<b>&amp;</b>'},"
                          "'profile':{'name':'Profile Ann','email':'ann@example.com',"
                          "'vip':true},'brand':{'colors':{'primary':'#f00'}},"
                          "'tenant':{'id':'t1'}}";

/* ------------------------------------------------------------------ output forms */

static void test_escaping(void **state)
{
    (void)state;
    const char *c = "{'data':{'x':'<a href=\\'u\\'>&\\u0027`=</a>'}}";
    EXPECT_HTML("{{x}}", c, "&lt;a href&#x3D;&quot;u&quot;&gt;&amp;&#x27;&#x60;&#x3D;&lt;/a&gt;");
    EXPECT("{{x}}", c, "<a href=\"u\">&'`=</a>");
    /* literal template text is never escaped */
    EXPECT_HTML("<p class=\"a\">{{x}}</p>", "{'data':{'x':'&'}}", "<p class=\"a\">&amp;</p>");
}

static void test_raw(void **state)
{
    (void)state;
    EXPECT_HTML("{{{html}}}|{{& html}}|{{html}}", USER,
                "<b>&amp;</b>|<b>&amp;</b>|&lt;b&gt;&amp;amp;&lt;/b&gt;");
    EXPECT_HTML("{{{~ html ~}}}", USER, "<b>&amp;</b>");
}

static void test_comments(void **state)
{
    (void)state;
    EXPECT("a{{! a comment }}b{{!-- has }} inside --}}c", NULL, "abc");
    EXPECT("a\n  {{! standalone }}\nb", NULL, "a\nb");
    EXPECT("a {{~! x ~}} b", NULL, "ab");
}

static void test_whitespace_control(void **state)
{
    (void)state;
    EXPECT("a  {{~name~}}  b", USER, "aAnnb");
    EXPECT("[ {{~#if data.name~}} \n yes \n {{~/if~}} ]", USER, "[yes]");
    EXPECT("x \n {{~ name}} \n", USER, "xAnn \n");
    /* standalone block lines disappear, inline ones stay */
    EXPECT("<ul>\n  {{#each items}}\n  <li>{{this}}</li>\n  {{/each}}\n</ul>", USER,
           "<ul>\n  <li>a</li>\n  <li>b</li>\n  <li>c</li>\n</ul>");
    EXPECT("{{#if count}}\nyes\n{{else}}\nno\n{{/if}}\n", USER, "yes\n");
    EXPECT("a {{#if count}}b{{/if}} c", USER, "a b c");
}

/* ------------------------------------------------------------------ blocks */

static void test_if_unless(void **state)
{
    (void)state;
    EXPECT("{{#if name}}y{{else}}n{{/if}}", USER, "y");
    EXPECT("{{#if empty}}y{{else}}n{{/if}}", USER, "n");
    EXPECT("{{#if zero}}y{{else}}n{{/if}}", USER, "n");
    EXPECT("{{#if blank}}y{{else}}n{{/if}}", USER, "n");
    EXPECT("{{#if nope}}y{{else}}n{{/if}}", USER, "n");
    EXPECT("{{#if obj}}y{{else}}n{{/if}}", USER, "y");
    EXPECT("{{#if items}}y{{else}}n{{/if}}", USER, "y");
    EXPECT("{{#if zero includeZero=true}}y{{else}}n{{/if}}", USER, "y");
    EXPECT("{{#if zero}}a{{else if blank}}b{{else if count}}c{{else}}d{{/if}}", USER, "c");
    EXPECT("{{#if zero}}a{{else if blank}}b{{else}}d{{/if}}", USER, "d");
    EXPECT("{{#unless zero}}u{{else}}v{{/unless}}", USER, "u");
    EXPECT("{{#unless count}}u{{else}}v{{/unless}}", USER, "v");
    EXPECT("{{#if '0'}}y{{/if}}{{#if false}}n{{/if}}{{#if null}}n{{/if}}", NULL, "y");
    EXPECT("{{#if zero}}a{{^}}b{{/if}}", USER, "b");
}

static void test_each_array(void **state)
{
    (void)state;
    EXPECT(
        "{{#each items}}{{@index}}:{{this}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}};{{/each}}",
        USER, "0:aF;1:b;2:cL;");
    EXPECT("{{#each list}}{{name}}={{this.v}}/{{./v}}@{{@key}} {{/each}}",
           "{'data':{'list':[{'name':'x','v':1},{'name':'y','v':2}]}}", "x=1/1@0 y=2/2@1 ");
    EXPECT("{{#each empty}}x{{else}}none{{/each}}", USER, "none");
    EXPECT("{{#each nope}}x{{else}}none{{/each}}", USER, "none");
    EXPECT("{{#each name}}x{{else}}none{{/each}}", USER, "none");
    EXPECT("{{#each items}}{{/each}}|{{items.length}}|{{items.1}}|{{items.[2]}}", USER, "|3|b|c");
    /* shared with expr/: String#length counts UTF-16 units, indexes are canonical names */
    EXPECT("{{s.length}}|{{items.01}}|{{items.[1]}}",
           "{'data':{'s':'a\xf0\x9f\x98\x80','items':['x','y']}}", "3||y");
}

static void test_each_object(void **state)
{
    (void)state;
    EXPECT("{{#each obj}}{{@key}}={{this}}{{#if @last}}.{{else}},{{/if}}{{/each}}", USER,
           "x=1,y=2.");
    EXPECT("{{#each obj}}{{@index}}{{/each}}", USER, "01");
    EXPECT("{{#each o}}x{{else}}none{{/each}}", "{'data':{'o':{}}}", "none");
}

static void test_each_nested_parent(void **state)
{
    (void)state;
    const char *c = "{'data':{'title':'T','groups':[{'name':'g1','items':[1,2]},"
                    "{'name':'g2','items':[3]}]}}";
    EXPECT("{{#each groups}}{{#each items}}{{../name}}-{{this}}-{{@index}} {{/each}}{{/each}}", c,
           "g1-1-0 g1-2-1 g2-3-0 ");
    /* ../../ reaches the top level, where the root rules apply */
    EXPECT("{{#each groups}}{{#each items}}{{../../title}}{{/each}}{{/each}}", c, "TTT");
    /* unscoped names fall back to the top level; scoped ones do not */
    EXPECT("{{#each groups}}{{title}}|{{this.title}}|{{@root.title}} {{/each}}", c, "T||T T||T ");
    /* @index inside a #with inside #each still sees the loop */
    EXPECT("{{#each groups}}{{#with items}}{{@index}}{{/with}}{{/each}}", c, "01");
}

static void test_with(void **state)
{
    (void)state;
    EXPECT("{{#with obj}}{{x}}+{{y}}+{{name}}{{/with}}", USER, "1+2+Ann");
    EXPECT("{{#with nope}}x{{else}}none{{/with}}", USER, "none");
    EXPECT("{{#with profile}}{{email}}{{/with}}", USER, "ann@example.com");
    EXPECT("{{#with obj}}{{#with ../brand}}{{colors.primary}}{{/with}}{{/with}}", USER, "#f00");
}

static void test_sections(void **state)
{
    (void)state;
    EXPECT("{{#obj}}{{x}}{{/obj}}|{{#items}}{{this}}{{/items}}|{{#nope}}x{{else}}y{{/nope}}", USER,
           "1|abc|y");
    EXPECT("{{^empty}}none{{/empty}}{{^items}}none{{/items}}", USER, "none");
    EXPECT("{{#eq count 3}}three{{else}}other{{/eq}}", USER, "three");
}

/* ------------------------------------------------------------------ lookup */

static void test_resolution(void **state)
{
    (void)state;
    EXPECT("{{name}}|{{email}}|{{vip}}", USER, "Ann|ann@example.com|true");
    EXPECT("{{data.name}}|{{profile.name}}|{{brand.colors.primary}}|{{tenant.id}}", USER,
           "Ann|Profile Ann|#f00|t1");
    EXPECT("{{@root.name}}|{{@root.profile.email}}|{{this.name}}", USER, "Ann|ann@example.com|Ann");
    EXPECT("{{brand/colors/primary}}|{{[weird key]}}",
           "{'data':{'weird key':'w'},'brand':{'colors':"
           "{'primary':'p'}}}",
           "p|w");
    /* data wins over the profile; a null in data is a value (renders empty) */
    EXPECT("{{email}}", "{'data':{'email':'d@x'},'profile':{'email':'p@x'}}", "d@x");
    EXPECT("[{{email}}]", "{'data':{'email':null},'profile':{'email':'p@x'}}", "[]");
    /* a data key named like a root does not hide the root's deeper paths */
    EXPECT("{{brand}}|{{brand.colors.primary}}",
           "{'data':{'brand':'Acme'},'brand':{'colors':"
           "{'primary':'p'}}}",
           "Acme|p");
    /* bare names that are helper names are variables */
    EXPECT("{{path}}|{{format}}", "{'data':{'path':'/x','format':'f'}}", "/x|f");
}

static void test_missing(void **state)
{
    (void)state;
    EXPECT("[{{nope}}][{{a.b.c}}][{{name.first.x}}][{{@index}}][{{../x}}][{{uppercase nope}}]",
           USER, "[][][][][][]");
    EXPECT("[{{x}}]", NULL, "[]");
    EXPECT("[{{x}}]", "[1,2]", "[]");
}

static void test_numbers(void **state)
{
    (void)state;
    EXPECT("{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}} {{h}} {{i}}",
           "{'data':{'a':3,'b':3.0,'c':0.5,'d':-2.25,'e':1e21,'f':1.5e-7,'g':123456789012,"
           "'h':1e20,'i':0.000001}}",
           "3 3 0.5 -2.25 1e+21 1.5e-7 123456789012 100000000000000000000 0.000001");
    EXPECT("{{add 0.1 0.2}} {{t}} {{f}} [{{n}}] {{o}} {{a}}",
           "{'data':{'t':true,'f':false,'n':null,'o':{'k':1},'a':[1,'a',null,[2,3],{'z':1}]}}",
           "0.30000000000000004 true false [] [object Object] 1,a,,2,3,[object Object]");
    EXPECT("{{-1}} {{1.25}} {{true}}", NULL, "-1 1.25 true");
}

/* ------------------------------------------------------------------ single braces */

static void test_single_brace(void **state)
{
    (void)state;
    EXPECT("Hello {name}!", USER, "Hello Ann!");
    EXPECT("{profile.email} {data.count} {first_name-x}",
           "{'data':{'count':3,'first_name-x':'f'},"
           "'profile':{'email':'e'}}",
           "e 3 f");
    EXPECT_HTML("{html}", USER, "&lt;b&gt;&amp;amp;&lt;/b&gt;");
    /* these stay literal */
    EXPECT("{ name } {\"a\": 1} {0} a { b {name x} {a..b} {a.} {name", USER,
           "{ name } {\"a\": 1} {0} a { b {name x} {a..b} {a.} {name");
    EXPECT("body{color:red} \\{name} \\{{name}}", USER, "body{color:red} {name} {{name}}");
    EXPECT("\\\\{{name}}", USER, "\\Ann");
    EXPECT("{{{html}}}|{{name}}|{{#each items}}{this}{{/each}}", USER, "<b>&amp;</b>|Ann|abc");
}

/* ------------------------------------------------------------------ helpers */

static void test_logic_helpers(void **state)
{
    (void)state;
    EXPECT("{{eq count 3}} {{eq count '3'}} {{ne name 'Bob'}} {{ne count 3}}", USER,
           "true false true false");
    EXPECT("{{gt count 2}} {{gt count 3}} {{gte count 3}} {{lt count '10'}} {{lte count 2}}", USER,
           "true false true true false");
    EXPECT("{{gt 'b' 'a'}} {{lt '10' '9'}} {{gt nope 1}}", NULL, "true false false");
    EXPECT("{{#if (and)}}t{{/if}} {{and 1 'x' true}} {{and 1 0}} {{#if (or)}}t{{else}}f{{/if}}"
           " {{or 0 '' 'x'}} {{or 0 empty}}",
           USER, "t true false f true false");
    EXPECT("{{not 0}} {{not empty}} {{not name}} {{not nope}}", USER, "true true false true");
    EXPECT(
        "{{condition count '==' '3'}} {{condition count '===' '3'}} {{condition vip '==' 'true'}}"
        " {{condition name '!=' 'Bob'}} {{condition count '!==' 3}} {{condition count '>' 2}}"
        " {{condition count '>=' 4}} {{condition count '<' 4}} {{condition count '<=' 3}}"
        " {{condition 1 '&&' 0}} {{condition 1 '||' 0}}",
        USER, "true false true true false true false true true false true");
}

static void test_subexpr_in_if(void **state)
{
    (void)state;
    EXPECT("{{#if (eq name 'Ann')}}hi{{/if}}", USER, "hi");
    EXPECT("{{#if (and (gt count 1) (not zero))}}a{{else}}b{{/if}}", USER, "a");
    EXPECT("{{#if (condition (var 'profile.name') '==' 'Profile Ann')}}p{{/if}}", USER, "p");
    EXPECT("{{#unless (or zero blank)}}none{{/unless}}", USER, "none");
    EXPECT("{{uppercase (concat (trim '  a ') (lowercase 'B'))}}", NULL, "AB");
}

static void test_data_helpers(void **state)
{
    (void)state;
    EXPECT("{{default nope 'friend'}} {{default name 'friend'}} {{default null undefined 'z'}}"
           " [{{default blank 'x'}}]",
           USER, "friend Ann z []");
    EXPECT("{{var 'name'}} {{var 'profile.name'}} {{path '$.data.items[1]'}} [{{var 'no.such'}}]"
           " {{var \"obj['y']\"}}",
           USER, "Ann Profile Ann b [] 2");
    EXPECT("{{#each items}}{{var 'this'}}{{/each}}", USER, "");
    EXPECT("{{#each list}}{{var 'v'}}{{/each}}", "{'data':{'list':[{'v':1},{'v':2}]}}", "12");
    EXPECT("{{lookup obj 'y'}} {{lookup items 1}} {{lookup obj key}}",
           "{'data':{'obj':{'y':5,"
           "'z':6},'items':['p','q'],'key':'z'}}",
           "5 q 6");
    EXPECT("{{#each (json-parse s)}}{{this}};{{/each}} {{lookup (json-parse o) 'k'}} [{{json-parse "
           "'nope{'}}]",
           "{'data':{'s':'[1,\\'x\\']','o':'{\\'k\\':7}'}}", "1;x; 7 []");
}

static void test_string_helpers(void **state)
{
    (void)state;
    EXPECT("{{capitalize 'try courier'}} {{capitalize ''}} {{capitalize 5}}", NULL,
           "Try courier  5");
    EXPECT("{{concat 'hello' ' ' name}} {{concat 1 2 separator='-'}} [{{concat}}]", USER,
           "hello Ann 1-2 []");
    EXPECT("[{{trim '  a b \n'}}] [{{trim-left '  a '}}] [{{trim-right '  a '}}]", NULL,
           "[a b] [a ] [  a]");
    EXPECT("[{{trim-one-char-right 'abc'}}] [{{trim-one-char-right 'h\xc3\xa9'}}]", NULL,
           "[ab] [h]");
    EXPECT("{{truncate 'hello world' 5}} {{truncate 'hi' 5}} {{truncate 'hello' 2 '...'}}"
           " {{truncate '\xc3\xa9\xc3\xa9\xc3\xa9' 2}}",
           NULL, "hello hi he... \xc3\xa9\xc3\xa9");
    EXPECT("{{uppercase 'abC1'}} {{lowercase 'AbC1'}} {{uppercase name}}", USER, "ABC1 abc1 ANN");
    EXPECT("{{format '%s has %d items (%f%%)' name 3.7 2.5}}", USER, "Ann has 3 items (2.5%)");
    EXPECT("{{format f}}|{{format '%s-%s' 'a'}}|{{format 'x' 1 'y'}}", "{'data':{'f':'%n%s%x%p'}}",
           "%n%s%x%p|a-%s|x 1 y");
}

static void test_datetime_helper(void **state)
{
    (void)state;
    const char *c = "{'data':{'t':'2024-03-05T14:07:09.045Z','ms':1709647629045,'off':"
                    "'2024-03-05T23:30:00+02:00','bad':'soon'}}";
    EXPECT("{{datetime-format t 'YYYY-MM-DD HH:mm:ss.SSS'}}", c, "2024-03-05 14:07:09.045");
    EXPECT("{{datetime-format ms 'MMMM Do, YYYY h:mm A'}}", c, "March 5th, 2024 2:07 PM");
    EXPECT("{{datetime-format t 'ddd, MMM D YY [at] H:m:s a'}}", c, "Tue, Mar 5 24 at 14:7:9 pm");
    EXPECT("{{datetime-format off 'YYYY-MM-DD HH:mm Z'}}", c, "2024-03-05 21:30 +00:00");
    EXPECT("{{datetime-format 0}}|[{{datetime-format bad 'YYYY'}}]|{{datetime-format '2024-01-02'"
           " 'dddd X'}}",
           c, "1970-01-01T00:00:00.000Z|[]|Tuesday 1704153600");
}

static void test_math_helpers(void **state)
{
    (void)state;
    EXPECT("{{add 1 2}} {{add '1.5' 1}} {{subtract 5 7}} {{sub 5 2}} {{multiply 1.5 4}}", NULL,
           "3 2.5 -2 3 6");
    EXPECT("{{divide 7 2}} [{{divide 1 0}}] {{mod 7 3}} [{{mod 7 0}}] {{mod -7 3}}", NULL,
           "3.5 [] 1 [] -1");
    EXPECT("{{abs -3.5}} {{ceil 1.2}} {{floor -1.2}} {{round 2.5}} {{round -2.5}} {{inc count}}",
           USER, "3.5 2 -2 3 -2 4");
    EXPECT("[{{add name 1}}] [{{inc nope}}] {{add (multiply 2 3) (inc 1)}}", USER, "[] [] 8");
}

/* ------------------------------------------------------------------ errors and limits */

static void test_compile_errors(void **state)
{
    (void)state;
    expect_cerr("ab\n {{#if x}}yes", HR_INVAL, "line 2, column 2", "'{{#if}}' is not closed");
    expect_cerr("x\n\n  {{/each}}", HR_INVAL, "line 3, column 3", "closes no open block");
    expect_cerr("Hi {{name", HR_INVAL, "line 1, column 4", "not closed");
    expect_cerr("{{#if a}}\n{{/each}}", HR_INVAL, "line 2, column 1", "does not close '{{#if}}'");
    expect_cerr("{{else}}", HR_INVAL, "outside a block", NULL);
    expect_cerr("{{#if a}}{{else}}{{else}}{{/if}}", HR_INVAL, "after '{{else}}'", NULL);
    expect_cerr("{{foo bar}}", HR_INVAL, "line 1, column 3", "unknown helper 'foo'");
    expect_cerr("{{#if (nohelper 1)}}{{/if}}", HR_INVAL, "unknown helper 'nohelper'", NULL);
    expect_cerr("{{truncate x}}", HR_INVAL, "'truncate' takes 2 to 3 arguments", NULL);
    expect_cerr("{{not a b}}", HR_INVAL, "'not' takes 1 argument", NULL);
    expect_cerr("{{#if a b}}{{/if}}", HR_INVAL, "'#if' takes one argument", NULL);
    expect_cerr("{{condition a 'like' b}}", HR_INVAL, "unsupported operator", NULL);
    expect_cerr("{{> partial}}", HR_INVAL, "partials", NULL);
    expect_cerr("{{a.b c}}", HR_INVAL, "'a.b' is not a helper", NULL);
    expect_cerr("{{'str}}", HR_INVAL, "not closed", NULL);
    expect_cerr("{{{x}}", HR_INVAL, "'}}}'", NULL);
    expect_cerr("{{a..b}}", HR_INVAL, NULL, NULL);
    expect_cerr("{{!-- open", HR_INVAL, "comment", NULL);
    expect_cerr("{{#each xs as |x|}}{{/each}}", HR_INVAL, "block parameters", NULL);
}

static char *nested(int depth, const char *open, const char *close)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    for (int i = 0; i < depth; i++)
        assert_int_equal(buf_append_c(&b, open), 0);
    assert_int_equal(buf_append_c(&b, "x"), 0);
    for (int i = 0; i < depth; i++)
        assert_int_equal(buf_append_c(&b, close), 0);
    return buf_steal(&b, NULL);
}

static void test_depth_cap(void **state)
{
    (void)state;
    char *ok = nested(HBS_MAX_DEPTH, "{{#with data}}", "{{/with}}");
    char *deep = nested(HBS_MAX_DEPTH + 1, "{{#if 1}}", "{{/if}}");
    char *sub_ok = nested(HBS_MAX_DEPTH, "(not ", ")");
    char *sub_deep = nested(HBS_MAX_DEPTH + 1, "(not ", ")");
    char t1[4096], t2[4096];
    EXPECT(ok, "{'data':{'x':'X'}}", "x");
    expect_cerr(deep, HR_TOOBIG, "nested deeper than 32", NULL);
    snprintf(t1, sizeof t1, "{{#if %s}}y{{/if}}", sub_ok);
    snprintf(t2, sizeof t2, "{{#if %s}}y{{/if}}", sub_deep);
    EXPECT(t1, NULL, "");
    expect_cerr(t2, HR_TOOBIG, "subexpressions nested deeper", NULL);
    free(ok);
    free(deep);
    free(sub_ok);
    free(sub_deep);
}

static void test_size_cap(void **state)
{
    (void)state;
    size_t n = HBS_MAX_SRC + 1;
    char *big = malloc(n);
    struct hbs_tmpl *t = NULL;
    struct herr err = {0};
    memset(big, 'a', n);
    assert_int_equal(hbs_compile(big, n, &t, &err), HR_TOOBIG);
    assert_null(t);
    assert_int_equal(hbs_compile(big, n - 1, &t, &err), 0);
    hbs_unref(t);
    free(big);
}

/* test_helper_bytes_budget: a helper on a long string costs its bytes, not one step (an
 * 800 KB string through uppercase a few hundred times took 20 s under the old count). */
static void test_helper_bytes_budget(void **state)
{
    (void)state;
    struct hbs_tmpl *t = NULL;
    struct herr err = {0};
    struct buf b;
    cJSON *c = cJSON_CreateObject(), *data = cJSON_AddObjectToObject(c, "data");
    cJSON *arr = cJSON_AddArrayToObject(data, "xs");
    size_t n = 800 * 1024;
    char *big = malloc(n + 1);
    const char *src = "{{#each xs}}{{#if (uppercase ../big)}}.{{/if}}{{/each}}";
    memset(big, 'a', n);
    big[n] = '\0';
    cJSON_AddStringToObject(data, "big", big);
    for (int i = 0; i < 200; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(i));
    assert_int_equal(hbs_compile(src, strlen(src), &t, &err), 0);
    buf_init(&b, 1 << 20);
    /* 200 calls x 1.6 MB touched: about 20M steps at 16 bytes a step, 1M allowed */
    assert_int_equal(hbs_render(t, c, HBS_TEXT, &b, &err), HR_TOOBIG);
    assert_non_null(strstr(err.msg, "budget"));
    assert_int_equal(b.len, 0);
    hbs_unref(t);
    /* one call on the same string fits */
    src = "{{#if (uppercase big)}}ok{{/if}}";
    assert_int_equal(hbs_compile(src, strlen(src), &t, &err), 0);
    assert_int_equal(hbs_render(t, c, HBS_TEXT, &b, &err), 0);
    assert_string_equal(buf_cstr(&b), "ok");
    hbs_unref(t);
    buf_cleanup(&b);
    cJSON_Delete(c);
    free(big);
}

static void test_render_budget(void **state)
{
    (void)state;
    struct hbs_tmpl *t = NULL;
    struct herr err = {0};
    struct buf b;
    cJSON *c = cJSON_CreateObject(), *data = cJSON_AddObjectToObject(c, "data");
    cJSON *arr = cJSON_AddArrayToObject(data, "xs");
    struct hbs_render_opts o = {.mode = HBS_TEXT, .max_steps = 50000};
    const char *src = "{{#each xs}}{{#each ../xs}}{{/each}}{{/each}}";
    for (int i = 0; i < 1000; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(i));
    assert_int_equal(hbs_compile(src, strlen(src), &t, &err), 0);
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append_c(&b, "keep"), 0);
    /* 1000 x 1000 iterations: over the default budget of 1e6 and the explicit 5e4 */
    assert_int_equal(hbs_render_ex(t, c, &o, &b, &err), HR_TOOBIG);
    assert_non_null(strstr(err.msg, "budget"));
    assert_string_equal(buf_cstr(&b), "keep"); /* restored on failure */
    assert_int_equal(hbs_render(t, c, HBS_TEXT, &b, &err), HR_TOOBIG);
    hbs_unref(t);

    /* a small loop fits */
    src = "{{#each xs}}.{{/each}}";
    assert_int_equal(hbs_compile(src, strlen(src), &t, &err), 0);
    assert_int_equal(hbs_render_ex(t, c, &o, &b, &err), 0);
    assert_int_equal(b.len, 4 + 1000);
    hbs_unref(t);
    buf_cleanup(&b);

    /* output cap */
    src = "{{#each xs}}0123456789{{/each}}";
    assert_int_equal(hbs_compile(src, strlen(src), &t, &err), 0);
    buf_init(&b, 5000);
    assert_int_equal(hbs_render(t, c, HBS_TEXT, &b, &err), HR_TOOBIG);
    assert_non_null(strstr(err.msg, "output"));
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
    hbs_unref(t);
    cJSON_Delete(c);
}

static void test_render_error(void **state)
{
    (void)state;
    struct hbs_tmpl *t = NULL;
    struct herr err = {0};
    struct buf b;
    cJSON *c = ctx("{'data':{'op':'~='}}");
    const char *src = "a{{#if (condition 1 op 2)}}x{{/if}}";
    assert_int_equal(hbs_compile(src, strlen(src), &t, &err), 0);
    buf_init(&b, 1024);
    assert_int_equal(hbs_render(t, c, HBS_TEXT, &b, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "unsupported operator"));
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
    hbs_unref(t);
    cJSON_Delete(c);
}

/* ------------------------------------------------------------------ cache */

static void test_cache(void **state)
{
    (void)state;
    struct hbs_cache *c = hbs_cache_new(2, 0);
    struct hbs_tmpl *a1 = NULL, *a2 = NULL, *a3 = NULL, *b1 = NULL, *b2 = NULL, *d = NULL;
    struct hbs_tmpl *bad = NULL;
    struct hbs_cache_stats st;
    struct herr err = {0};
    const char *A = "A {{x}}", *B = "B {{x}}", *D = "D {{x}}";
    char copy[16];
    size_t len;

    assert_int_equal(hbs_cache_get(c, A, strlen(A), &a1, &err), 0);
    assert_int_equal(hbs_cache_get(c, B, strlen(B), &b1, &err), 0);
    snprintf(copy, sizeof copy, "%s", A); /* equal text at another address hits */
    assert_int_equal(hbs_cache_get(c, copy, strlen(copy), &a2, &err), 0);
    assert_ptr_equal(a1, a2);
    assert_string_equal(hbs_source(a1, &len), A);
    assert_int_equal(len, strlen(A));
    hbs_cache_stats(c, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 2);

    /* D pushes out B, the least recently used (A was just used) */
    assert_int_equal(hbs_cache_get(c, D, strlen(D), &d, &err), 0);
    hbs_cache_stats(c, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(hbs_cache_get(c, A, strlen(A), &a3, &err), 0);
    assert_ptr_equal(a3, a1);
    assert_int_equal(hbs_cache_get(c, B, strlen(B), &b2, &err), 0);
    assert_ptr_not_equal(b2, b1); /* recompiled */
    hbs_cache_stats(c, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 4);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(st.entries, 2);
    /* an evicted template stays usable by its holders */
    {
        struct buf out;
        cJSON *cx = ctx("{'data':{'x':1}}");
        buf_init(&out, 64);
        assert_int_equal(hbs_render(b1, cx, HBS_TEXT, &out, &err), 0);
        assert_string_equal(buf_cstr(&out), "B 1");
        buf_cleanup(&out);
        cJSON_Delete(cx);
    }

    /* compile errors are returned, not cached */
    assert_int_equal(hbs_cache_get(c, "{{#if}}", 7, &bad, &err), HR_INVAL);
    assert_null(bad);
    hbs_cache_stats(c, &st);
    assert_int_equal(st.entries, 2);

    hbs_unref(a1);
    hbs_unref(a2);
    hbs_unref(a3);
    hbs_unref(b1);
    hbs_unref(b2);
    hbs_unref(d);
    hbs_cache_free(c);

    /* a byte bound evicts too */
    c = hbs_cache_new(100, 1);
    assert_int_equal(hbs_cache_get(c, A, strlen(A), &a1, &err), 0);
    assert_int_equal(hbs_cache_get(c, B, strlen(B), &b1, &err), 0);
    hbs_cache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    hbs_unref(a1);
    hbs_unref(b1);
    hbs_cache_free(c);
}

/* ------------------------------------------------------------------ threads and speed */

struct thr {
    const struct hbs_tmpl *t;
    struct hbs_cache *cache;
    const cJSON *ctx;
    const char *want;
    int bad;
};

static void *thr_main(void *arg)
{
    struct thr *th = arg;
    struct herr err;
    struct buf b;
    buf_init(&b, 1 << 16);
    for (int i = 0; i < 2000; i++) {
        struct hbs_tmpl *ct = NULL;
        buf_reset(&b);
        if (hbs_render(th->t, th->ctx, HBS_HTML, &b, &err) != 0 || strcmp(buf_cstr(&b), th->want))
            th->bad++;
        if (hbs_cache_get(th->cache, "{{concat name (inc count)}}", 27, &ct, &err) != 0)
            th->bad++;
        hbs_unref(ct);
    }
    buf_cleanup(&b);
    return NULL;
}

static void test_concurrent_render(void **state)
{
    (void)state;
    const char *src = "{{#each items}}<{{uppercase this}}{{#if @last}}!{{/if}}>{{/each}}"
                      "{{format '%s:%d' name count}}{{datetime-format 0 'YYYY'}}";
    struct hbs_tmpl *t = NULL;
    struct herr err = {0};
    struct hbs_cache *cache = hbs_cache_new(4, 0);
    cJSON *c = ctx(USER);
    pthread_t tid[4];
    struct thr th[4];
    assert_int_equal(hbs_compile(src, strlen(src), &t, &err), 0);
    for (int i = 0; i < 4; i++) {
        th[i] = (struct thr){t, cache, c, "<A><B><C!>Ann:31970", 0};
        assert_int_equal(pthread_create(&tid[i], NULL, thr_main, &th[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(tid[i], NULL);
        assert_int_equal(th[i].bad, 0);
    }
    hbs_unref(t);
    hbs_cache_free(cache);
    cJSON_Delete(c);
}

static void test_speed(void **state)
{
    (void)state;
    struct buf src, out;
    struct hbs_tmpl *t = NULL;
    struct herr err = {0};
    cJSON *c = ctx("{'data':{'v0':'zero','v1':1,'v2':'two & <2>','v3':3.5,'v4':'four','v5':5,"
                   "'v6':'six','v7':7,'v8':'eight','v9':9}}");
    int64_t t0, t1;
    int iters = 20000;
    buf_init(&src, 1 << 16);
    while (src.len < 1000)
        for (int i = 0; i < 10; i++)
            assert_int_equal(buf_printf(&src, "<p>Some words of the body, {{v%d}}.</p>\n", i), 0);
    assert_int_equal(hbs_compile(src.p, src.len, &t, &err), 0);
    buf_init(&out, 1 << 16);
    t0 = time_mono_ms();
    for (int i = 0; i < iters; i++) {
        buf_reset(&out);
        assert_int_equal(hbs_render(t, c, HBS_HTML, &out, &err), 0);
    }
    t1 = time_mono_ms();
    print_message("      render of %zu-byte template: %.2f us\n", src.len,
                  (double)(t1 - t0) * 1000.0 / iters);
    /* generous bound so sanitizer builds pass: 100 us per render */
    assert_true((t1 - t0) * 1000 < (int64_t)iters * 100);
    buf_cleanup(&out);
    buf_cleanup(&src);
    hbs_unref(t);
    cJSON_Delete(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_whitespace_control),
        cmocka_unit_test(test_if_unless),
        cmocka_unit_test(test_each_array),
        cmocka_unit_test(test_each_object),
        cmocka_unit_test(test_each_nested_parent),
        cmocka_unit_test(test_with),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_resolution),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_single_brace),
        cmocka_unit_test(test_logic_helpers),
        cmocka_unit_test(test_subexpr_in_if),
        cmocka_unit_test(test_data_helpers),
        cmocka_unit_test(test_string_helpers),
        cmocka_unit_test(test_datetime_helper),
        cmocka_unit_test(test_math_helpers),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_depth_cap),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_render_budget),
        cmocka_unit_test(test_helper_bytes_budget),
        cmocka_unit_test(test_render_error),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_concurrent_render),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
