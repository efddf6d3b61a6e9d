/**
 * The machine's faults while reading or writing results (a full disk, a quota, permissions, a
 * read-only mount, too many open files) as errors a human can act on: one line naming what
 * happened, where, and what to do, and their own exit status, so a sweep can tell "the store
 * cannot be written" from a failed run even when the failing role could not write its log.
 */
import { dirname } from 'node:path';
import { FedsliceError, type ErrorCode } from '../errors.ts';

/** Exit status of a role that stopped because it could not write the results store (sysexits EX_IOERR). */
export const STORAGE_EXIT_CODE = 74;

const RESUME = 'rerun the same command to resume';

/** errno codes of the environment, not of our code; each with its stable error code and advice. */
const FAULTS: Record<string, { code: ErrorCode; line: (where: string, path: string, verb: string) => string }> = {
  ENOSPC: { code: 'FEDSLICE_ERR_DISK_FULL', line: (where) => `results disk full at ${where}: free space and ${RESUME}` },
  EDQUOT: { code: 'FEDSLICE_ERR_DISK_QUOTA', line: (where) => `disk quota exceeded at ${where}: free space (or raise the quota) and ${RESUME}` },
  EACCES: { code: 'FEDSLICE_ERR_NO_PERMISSION', line: (where, path, verb) => `no permission to ${verb} ${path}: fix the permissions of ${where} and ${RESUME}` },
  EPERM: { code: 'FEDSLICE_ERR_NO_PERMISSION', line: (where, path, verb) => `no permission to ${verb} ${path}: fix the permissions of ${where} and ${RESUME}` },
  EROFS: { code: 'FEDSLICE_ERR_READ_ONLY', line: (where) => `${where} is on a read-only filesystem: remount it writable (or choose another --results) and ${RESUME}` },
  EMFILE: { code: 'FEDSLICE_ERR_TOO_MANY_FILES', line: (_w, path, verb) => `too many open files to ${verb} ${path}: raise the limit (ulimit -n) or run fewer at once (--parallel) and ${RESUME}` },
  ENFILE: { code: 'FEDSLICE_ERR_TOO_MANY_FILES', line: (_w, path, verb) => `too many open files on this machine to ${verb} ${path}: close some programs or run fewer at once (--parallel) and ${RESUME}` },
};

export class StorageError extends FedsliceError {
  constructor(
    /** The errno code behind it (ENOSPC ...). */
    readonly errno: string,
    /** The file being read or written. */
    readonly path: string,
    readonly verb: 'read' | 'write',
    /** The directory the message names. */
    readonly where: string,
  ) {
    const fault = FAULTS[errno];
    super(fault.code, fault.line(where, path, verb), STORAGE_EXIT_CODE);
    this.name = 'StorageError';
  }

  /** The same fault, naming `where` (say, the results directory rather than its checkpoints/ folder). */
  naming(where: string): StorageError {
    return new StorageError(this.errno, this.path, this.verb, where);
  }
}

function errnoOf(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** Whether `e` is a fault of the machine's storage (full, quota, permissions, read-only, open files). */
export function isStorageFault(e: unknown): boolean {
  if (e instanceof StorageError) return true;
  const errno = errnoOf(e);
  return errno !== undefined && Object.hasOwn(FAULTS, errno);
}

/**
 * `e` as a StorageError when it is one of the machine's faults, else `e` unchanged. `path` is the
 * file being read or written; `where` the directory to name (by default the file's own).
 */
export function asStorageError(e: unknown, path: string, verb: 'read' | 'write' = 'write', where = dirname(path)): unknown {
  if (e instanceof StorageError) return e;
  const errno = errnoOf(e);
  if (errno === undefined || !Object.hasOwn(FAULTS, errno)) return e;
  return new StorageError(errno, path, verb, where);
}

/** Runs `fn`; a storage fault it throws comes out as a StorageError about `path`. */
export function withStorageErrors<T>(path: string, fn: () => T, verb: 'read' | 'write' = 'write', where = dirname(path)): T {
  try {
    return fn();
  } catch (e) {
    throw asStorageError(e, path, verb, where);
  }
}

/** Any storage fault as a StorageError (for faults no caller converted), or null. */
export function storageErrorOf(e: unknown): StorageError | null {
  if (e instanceof StorageError) return e;
  const path = e instanceof Error && 'path' in e && typeof e.path === 'string' ? e.path : null;
  const converted = asStorageError(e, path ?? process.cwd(), 'write', path ? dirname(path) : process.cwd());
  return converted instanceof StorageError ? converted : null;
}
