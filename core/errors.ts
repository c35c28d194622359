// Errors are data: one error class with a closed `code` union, a `path` saying
// where the problem is (file, tensor, layer, expert, recipe field) and an optional
// `cause`. The CLI maps every MoeforgeError to one line and exit code 2; anything
// else is a bug (exit code 1).

export type ErrorCode =
  | 'invalid_recipe' // a recipe / merge config field is wrong (path = YAML path)
  | 'invalid_config' // a model's config.json is wrong (path = file)
  | 'invalid_argument' // a command-line argument is wrong
  | 'invalid_parameter' // a merge method / gate parameter is out of range
  | 'invalid_data' // a data file (prompts, suite, calibration) is unusable
  | 'shape_mismatch'
  | 'missing_tensor'
  | 'missing_file'
  | 'unknown_architecture'
  | 'incompatible_models' // base/experts disagree on family, sizes, tokenizer
  | 'corrupt_safetensors'
  | 'unsupported_format' // e.g. pickle .bin checkpoints
  | 'io_error'
  | 'out_of_memory' // a job would exceed a stated memory limit
  | 'hub_not_found'
  | 'hub_unauthorized'
  | 'hub_offline' // HF_HUB_OFFLINE=1 and the cache lacks a file
  | 'hub_error' // any other Hub failure after retries
  | 'hub_integrity' // a downloaded file does not match its size / sha256
  | 'unsafe_path' // a remote file name would escape its folder
  | 'remote_error'; // an OpenAI-compatible server failed

export class MoeforgeError extends Error {
  override readonly name = 'MoeforgeError';
  readonly code: ErrorCode;
  /** Where: a file, tensor name, `layer 3`, `experts[2].source_model`, … */
  readonly path: string | undefined;

  constructor(code: ErrorCode, message: string, options: { path?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options.path;
  }

  /** The one line the CLI prints: `error[code]: path: message`. */
  toLine(): string {
    return `error[${this.code}]: ${this.path ? `${this.path}: ` : ''}${this.message}`;
  }
}

export function isMoeforgeError(e: unknown): e is MoeforgeError {
  return e instanceof MoeforgeError;
}

/** Wraps a Node fs error (ENOENT, EACCES, ENOSPC, …) as a user-facing error naming the file. */
export function fsError(e: unknown, path: string, doing: string): MoeforgeError {
  if (e instanceof MoeforgeError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const why =
    code === 'ENOENT'
      ? 'no such file or directory'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'ENOSPC'
          ? 'no space left on device'
          : code === 'EISDIR'
            ? 'is a directory'
            : code === 'ENOTDIR'
              ? 'a parent is not a directory'
              : ((e as Error | undefined)?.message ?? String(e));
  return new MoeforgeError(code === 'ENOENT' ? 'missing_file' : 'io_error', `cannot ${doing}: ${why}`, {
    path,
    cause: e,
  });
}
