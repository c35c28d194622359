// Shared YAML loading for recipes (moe recipes, merge configs). Real-world mergekit
// files arrive with a BOM, CRLF line ends, whole documents indented, anchors and
// aliases; all of that is fine. What PyYAML would silently accept but means a broken
// recipe is refused here with one line naming the place: duplicate keys (PyYAML keeps
// the last one, so two concatenated configs silently become the second), and several
// `---` documents in one file (mergekit-moe's `yaml.safe_load` refuses them too).
import { parseAllDocuments, YAMLError } from 'yaml';
import { MoeforgeError } from '../errors.js';

function lineOf(e: YAMLError): string {
  const pos = e.linePos?.[0];
  return pos ? `line ${pos.line}, column ${pos.col}` : 'unknown position';
}

function keyAt(source: string, e: YAMLError): string {
  const pos = e.linePos?.[0];
  const line = pos ? source.split(/\r?\n/)[pos.line - 1] : undefined;
  const key = line?.slice(pos!.col - 1).match(/^["']?([^:"']+)/)?.[1]?.trim();
  return key ? ` '${key}'` : '';
}

function firstLine(message: string): string {
  // The `yaml` package appends a code excerpt after a blank line; keep the sentence.
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '').trim();
}

/** Parses one YAML document to plain JS values; `label` (a file name) prefixes every error. */
export function loadYamlDocument(text: string, label: string): unknown {
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const docs = parseAllDocuments(source, { uniqueKeys: true, prettyErrors: true, strict: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const contentful = list.filter((d) => d.contents !== null || d.errors.length > 0);
  for (const doc of list) {
    const err = doc.errors[0];
    if (err) {
      const what = err.code === 'DUPLICATE_KEY' ? `duplicate key${keyAt(source, err)}` : 'invalid YAML';
      throw new MoeforgeError('invalid_recipe', `${what} at ${lineOf(err)}: ${firstLine(err.message)}`, {
        path: label,
        cause: err,
      });
    }
  }
  if (contentful.length > 1) {
    const second = contentful[1]!;
    const line = second.range ? source.slice(0, second.range[0]).split('\n').length : undefined;
    throw new MoeforgeError(
      'invalid_recipe',
      `holds ${contentful.length} YAML documents (separated by ---${line ? `, the second starting at line ${line}` : ''}); give one recipe per file`,
      { path: label },
    );
  }
  const doc = contentful[0];
  if (!doc) return null;
  try {
    return doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new MoeforgeError('invalid_recipe', `invalid YAML: ${firstLine((e as Error).message)}`, { path: label, cause: e });
  }
}
