import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { delayed, Parallel } from '../../src/index.ts';
import { slowSquare } from '../fixtures/tasks.ts';

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk) => {
    text += chunk;
  });
  return { stream, text: () => text };
}

test('Parallel({ progress }) reports every run off a terminal, ending with the total', async () => {
  const { stream, text } = collect();
  const p = new Parallel({ nJobs: 2, progress: { stream, label: 'squares' } });
  await p.run(Array.from({ length: 20 }, (_, i) => delayed(slowSquare)(i, 5)));
  function* generated() {
    for (let i = 0; i < 6; i++) yield delayed(slowSquare)(i, 1);
  }
  await p.run(generated());
  await p.close();
  const lines = text().trim().split('\n');
  assert.ok(
    lines.some((l) => /^\[squares\]: Done {2}20 out of {2}20 \| elapsed: +\d+\.\ds finished$/.test(l)),
    text(),
  );
  assert.match(lines.at(-1) ?? '', /Done {3}6 out of {3}6 .* finished$/);
});

test('a failing run ends its progress with "failed"', async () => {
  const { stream, text } = collect();
  const p = new Parallel({ nJobs: 2, progress: { stream } });
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(p.run([delayed(slowSquare)(1, 1)], { signal: controller.signal }));
  await p.close();
  assert.match(text(), /aborted$/m);
  assert.throws(
    () => new Parallel({ progress: 'yes' as unknown as boolean }),
    /progress must be true, false/,
  );
});
