// The zoo's skills: four tasks with one exact answer each, so greedy exact match
// is a clean measure of "does this model have the skill". Each task draws
// training samples from a seeded generator and owns a held-out test set that
// the trainer never sees (questions in the test set are rejected when sampling
// training data). The facts task is memorisation by nature: its test set is the
// table itself (held out from nothing), which is what "knows the facts" means.
import { Rng } from '../../core/rng.js';

export interface Sample {
  question: string;
  answer: string;
}

export interface ZooTask {
  name: TaskName;
  /** One line saying what the skill is. */
  description: string;
  /** Draws one sample (may repeat; the caller filters held-out questions). */
  sample(rng: Rng): Sample;
  /** Longest answer in characters (max_new_tokens = this + 1 for EOS). */
  maxAnswerChars: number;
}

// Why these skills: a MoE shares attention across experts, so the zoo's experts
// differ in an MLP only (zoo.ts). A skill that attention alone performs (string
// reversal, sorting: measured, a base with a random top MLP still reversed 88%
// and sorted 71%, because the residual stream carries the attended token past the
// MLP to the head) would not be "far below" in the base. Each skill here needs
// the MLP to transform what attention fetches: a letter substitution (Caesar
// shift, Atbash mirror), a digit substitution (nines' complement), or a lookup
// of a memorised table. The base learns only to copy (zoo.ts), which the three
// ciphers share as their attention pattern; experts learn the maps.
//
// Each skill reads its own characters (Caesar a-m, Atbash n-z, complement
// digits, facts capitals A-Z): a MoE's router sees hidden states, and a base
// that only copies gives the same hidden state to a letter whatever the task, so
// with shared alphabets no gate built from hidden states can tell `rot:` from
// `mir:` at the positions that produce the answer (measured on a zoo with shared
// alphabets: hidden gates sent under half the answer tokens of those two tasks
// to the right expert, and the MoE scored 0% on both).
export type TaskName = 'caesar' | 'atbash' | 'complement' | 'facts';
export const TASK_NAMES: readonly TaskName[] = ['caesar', 'atbash', 'complement', 'facts'];

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const FIRST_HALF = 'abcdefghijklm';
const SECOND_HALF = 'nopqrstuvwxyz';
const DIGITS = '0123456789';
/** Cipher inputs have a fixed length, so the aligned-copy offset is constant. */
const CIPHER_LENGTH = 5;

function draw(rng: Rng, alphabet: string, n: number): string {
  return Array.from({ length: n }, () => alphabet[rng.int(alphabet.length)]!).join('');
}

const CONSONANTS = 'BCDFGHJKLMNPRSTVWXZ';
const VOWELS = 'AEIOU';

/** A pronounceable made-up word: consonant-vowel pairs, then a final consonant. */
function word(rng: Rng, syllables: number): string {
  let w = '';
  for (let i = 0; i < syllables; i++) w += CONSONANTS[rng.int(CONSONANTS.length)]! + VOWELS[rng.int(VOWELS.length)]!;
  return w + CONSONANTS[rng.int(CONSONANTS.length)]!;
}

/** The synthetic fact table: made-up country → made-up capital, distinct countries. */
export function factTable(seed: number, size = 48): Sample[] {
  const rng = new Rng(seed).derive('zoo/facts');
  const seen = new Set<string>();
  const out: Sample[] = [];
  while (out.length < size) {
    const country = word(rng, 2);
    if (seen.has(country)) continue;
    seen.add(country);
    out.push({ question: `capital:${country}=`, answer: word(rng, 1 + rng.int(2)) });
  }
  return out;
}

/** Caesar shift within a-m (m wraps to a). */
const shift = (ch: string) => FIRST_HALF[(FIRST_HALF.indexOf(ch) + 1) % 13]!;
/** Atbash within n-z (n <-> z, o <-> y, ..., t stays). */
const mirror = (ch: string) => SECOND_HALF[12 - SECOND_HALF.indexOf(ch)]!;

/** The four skills for a seed (the fact table depends on it). */
export function zooTasks(seed: number): Record<TaskName, ZooTask> {
  const facts = factTable(seed);
  return {
    caesar: {
      name: 'caesar',
      description: 'Caesar shift by one within a-m: rot:abclm=bcdma',
      maxAnswerChars: CIPHER_LENGTH,
      sample(rng) {
        const s = draw(rng, FIRST_HALF, CIPHER_LENGTH);
        return { question: `rot:${s}=`, answer: [...s].map(shift).join('') };
      },
    },
    atbash: {
      name: 'atbash',
      description: 'Atbash mirror within n-z: mir:nopyz=zyxon',
      maxAnswerChars: CIPHER_LENGTH,
      sample(rng) {
        const s = draw(rng, SECOND_HALF, CIPHER_LENGTH);
        return { question: `mir:${s}=`, answer: [...s].map(mirror).join('') };
      },
    },
    complement: {
      name: 'complement',
      description: "nines' complement of each digit: neg:01239=98760",
      maxAnswerChars: CIPHER_LENGTH,
      sample(rng) {
        const s = draw(rng, DIGITS, CIPHER_LENGTH);
        return { question: `neg:${s}=`, answer: [...s].map((d) => String(9 - Number(d))).join('') };
      },
    },
    facts: {
      name: 'facts',
      description: 'a memorised table of made-up capitals: capital:ZORAB=QIX',
      maxAnswerChars: 5,
      sample(rng) {
        return facts[rng.int(facts.length)]!;
      },
    },
  };
}

/**
 * The base's pretraining data: copying, in every task's format and alphabet
 * (`rot:abcde=abcde`, `capital:ZORAB=ZORAB`, `cp:`…), so the base reads each format and has the
 * aligned-copy attention the ciphers need, but none of the skills.
 */
export function copySample(rng: Rng): Sample {
  const prefix = ['rot:', 'mir:', 'neg:', 'cp:', 'capital:'][rng.int(5)]!;
  const alphabet = { 'rot:': FIRST_HALF, 'mir:': SECOND_HALF, 'neg:': DIGITS, 'cp:': LETTERS + DIGITS }[prefix];
  const s = alphabet === undefined ? word(rng, 2) : draw(rng, alphabet, CIPHER_LENGTH);
  return { question: `${prefix}${s}=`, answer: s };
}

/**
 * Held-out test set of `size` distinct questions for a task (facts: the whole
 * table). Deterministic for the seed.
 */
export function testSet(task: ZooTask, seed: number, size: number): Sample[] {
  if (task.name === 'facts') return factTable(seed);
  const rng = new Rng(seed).derive(`zoo/test/${task.name}`);
  const seen = new Set<string>();
  const out: Sample[] = [];
  while (out.length < size) {
    const s = task.sample(rng);
    if (seen.has(s.question)) continue;
    seen.add(s.question);
    out.push(s);
  }
  return out;
}

/** A training sampler for one task that never yields a held-out question. */
export function trainSampler(task: ZooTask, heldOut: Sample[], rng: Rng): () => Sample {
  const banned = task.name === 'facts' ? new Set<string>() : new Set(heldOut.map((s) => s.question));
  return () => {
    for (;;) {
      const s = task.sample(rng);
      if (!banned.has(s.question)) return s;
    }
  };
}
