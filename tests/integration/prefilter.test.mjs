// prefilter.test.mjs: scans of chunk blocks skip the json/logfmt parse of lines that cannot satisfy a
// following name="value" filter (they lack the value). The skip must never change a result: lines
// whose value is escaped, stream labels and structured metadata of the same name, and values built
// from escapes. Each query runs on the heads (no prefilter) and again after a flush (prefilter on
// chunk blocks; block trigram filters; line filters after a marked literal); both must equal the
// expected lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Strata, request, pushJSON, queryRange } from './lib/strata.mjs';

test('value prefilter after json/logfmt never changes results', async () => {
  const srv = await new Strata().start();
  try {
    const t0 = BigInt(Date.now() - 60000) * 1000000n;
    let k = 0n;
    const e = (line, md) => (md ? [String(t0 + k++), line, md] : [String(t0 + k++), line]);
    const filler = (n, f) => Array.from({ length: n }, (_, i) => e(f(i)));
    const streams = [
      { stream: { job: 'pf', kind: 'logfmt' }, values: [
        ...filler(200, (i) => `level=info msg="ok ${i}" user=u${i % 10}`),
        e('level=error msg="disk full"'),
        e('level="err\\u006fr" msg="escaped value is not unescaped by logfmt"'),
        e('msg="quote \\"x\\"" level=warn q="a\\"b"'),
        e('level=info msg="mentions error but level is info"'),
        e('trace=zzz level=info', { trace: 'abc' }),
        e('nothing here'),
      ] },
      { stream: { job: 'pf', kind: 'json' }, values: [
        ...filler(200, (i) => JSON.stringify({ level: 'info', n: i, msg: 'fine' })),
        e('{"level":"error","msg":"boom"}'),
        e('{"level":"\\u0065rror","msg":"escaped json"}'),
        e('{"nested":{"level":"error"},"level":"debug"}'),
        e('{"status":500,"ok":true}'),
        e('{"status":"5000"}'),
      ] },
      // stream label of the same name: the filter reads the stream label; the line need not hold it
      { stream: { job: 'pf', kind: 'collide', level: 'error' }, values: [e('level=info msg=x'), e('{"level":"info"}')] },
    ];
    const r = await pushJSON(srv, streams);
    assert.equal(r.status, 204, r.text);
    const range = { start: String(t0 - 1000n), end: String(t0 + 10n ** 10n), limit: '5000', direction: 'forward' };
    const lines = async (q) => {
      const res = await queryRange(srv, { query: q, ...range });
      assert.equal(res.status, 200, res.text);
      return res.json().data.result.flatMap((s) => s.values.map((v) => v[1])).sort();
    };
    const cases = [
      ['{job="pf", kind="logfmt"} | logfmt | level="error"', ['level="err\\u006fr" msg="escaped value is not unescaped by logfmt"', 'level=error msg="disk full"'].sort()],
      ['{job="pf", kind="logfmt"} | logfmt | q="a\\"b"', ['msg="quote \\"x\\"" level=warn q="a\\"b"']],
      ['{job="pf", kind="logfmt"} | logfmt | trace="abc"', ['trace=zzz level=info']],
      ['{job="pf", kind="logfmt"} | logfmt | trace_extracted="zzz"', ['trace=zzz level=info']],
      ['{job="pf", kind="logfmt"} |= "level" | logfmt | level="warn", msg=~".*"', ['msg="quote \\"x\\"" level=warn q="a\\"b"']],
      ['{job="pf", kind="json"} | json | level="error"', ['{"level":"\\u0065rror","msg":"escaped json"}', '{"level":"error","msg":"boom"}'].sort()],
      ['{job="pf", kind="json"} | json | nested_level="error"', ['{"nested":{"level":"error"},"level":"debug"}']],
      ['{job="pf", kind="json"} | json | status="500"', ['{"status":500,"ok":true}']],
      ['{job="pf", kind="json"} | json | ok="true" and status="500"', ['{"status":500,"ok":true}']],
      ['{job="pf", kind="collide"} | logfmt | level="error"', ['level=info msg=x', '{"level":"info"}'].sort()],
      ['{job="pf", kind="collide"} | json | level="error"', ['level=info msg=x', '{"level":"info"}'].sort()],
      ['{job="pf", kind="collide"} | logfmt | level_extracted="info"', ['level=info msg=x']],
      ['{job="pf"} | logfmt | level="nomatch"', []],
      // line filters on chunks: the first literal marks lines, the second filter must still drop some;
      // a literal absent from every block (its trigram filter skips them all); one present in one block
      ['{job="pf", kind="logfmt"} |= "level" != "info"', ['level="err\\u006fr" msg="escaped value is not unescaped by logfmt"', 'level=error msg="disk full"', 'msg="quote \\"x\\"" level=warn q="a\\"b"'].sort()],
      ['{job="pf"} |= "disk full"', ['level=error msg="disk full"']],
      ['{job="pf"} |= "NO_SUCH_STRING_ANYWHERE"', []],
      ['{job="pf"} |~ "dis[k] full"', ['level=error msg="disk full"']],
      ['{job="pf", kind="logfmt"} | logfmt | user="u3"', Array.from({ length: 20 }, (_, j) => `level=info msg="ok ${3 + 10 * j}" user=u3`).sort()],
    ];
    const before = [];
    for (const [q, want] of cases) {
      const got = await lines(q);
      assert.deepEqual(got, want, `heads: ${q}`);
      before.push(got);
    }
    assert.equal((await request(srv, 'POST', '/flush')).status, 204);
    for (const [i, [q, want]] of cases.entries()) assert.deepEqual(await lines(q), want, `chunks: ${q}`);
    // metric queries over the same filters agree too
    const c = await request(srv, 'GET', `/loki/api/v1/query?query=${encodeURIComponent('sum(count_over_time({job="pf"} | logfmt | level="error" [1h]))')}&time=${t0 + 10n ** 10n}`);
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json().data.result[0].value[1], '4'); // 2 logfmt lines + 2 in the colliding stream
    assert.equal(await srv.stop(), 0);
  } finally {
    await srv.kill();
    srv.cleanup();
  }
});
