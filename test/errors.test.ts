import test from 'ava';
import { MoeforgeError, fsError } from '../core/errors.js';

test('a MoeforgeError prints one line naming its code and path', (t) => {
  const e = new MoeforgeError('missing_tensor', 'tensor not found in any shard', { path: 'model.norm.weight' });
  t.is(e.toLine(), 'error[missing_tensor]: model.norm.weight: tensor not found in any shard');
});

test('fs errors name the file and say what went wrong', (t) => {
  const err = Object.assign(new Error('x'), { code: 'ENOENT' });
  const e = fsError(err, '/tmp/nope.safetensors', 'open');
  t.is(e.code, 'missing_file');
  t.is(e.toLine(), 'error[missing_file]: /tmp/nope.safetensors: cannot open: no such file or directory');
});
