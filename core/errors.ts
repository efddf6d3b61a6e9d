/**
 * Errors a human can act on: a stable code plus one line saying what is wrong and what to do.
 * The CLI prints the line and exits non-zero; anything else is a bug and prints its stack.
 *
 * Every code is declared here, once. Codes also travel in wire error messages; `fatal` marks the
 * ones after which a trainer gives up instead of rejoining (retrying cannot succeed).
 */

interface ErrorCodeInfo {
  means: string;
  fatal?: true;
}

export const ERROR_CODES = {
  // a peer's frames and messages
  FEDSLICE_ERR_FRAME: { means: 'a frame is not binary msgpack' },
  FEDSLICE_ERR_MESSAGE: { means: 'a message has a bad or missing field, or does not belong on this connection' },
  FEDSLICE_ERR_NONFINITE: { means: 'a tensor in a message holds NaN or Infinity' },
  FEDSLICE_ERR_UNEXPECTED: { means: 'a valid message arrived at a moment it has no meaning' },
  FEDSLICE_ERR_UPDATE: { means: 'an update does not fit the task it answers' },
  // joining a job
  FEDSLICE_ERR_TOKEN: { means: 'the job token is wrong, missing or unreadable', fatal: true },
  FEDSLICE_ERR_JOB: { means: 'the aggregator serves another job', fatal: true },
  FEDSLICE_ERR_FULL: { means: 'the job already has all its trainers', fatal: true },
  FEDSLICE_ERR_SHARD: { means: 'the asked shard is out of range or held by another trainer', fatal: true },
  FEDSLICE_ERR_JOIN: { means: 'a trainer did not send its join first or in time' },
  FEDSLICE_ERR_HELLO: { means: 'a role did not say hello first, or said it incompletely' },
  FEDSLICE_ERR_AGGREGATOR: { means: 'the job already has an aggregator' },
  FEDSLICE_ERR_METASERVER: { means: 'the metaserver cannot be reached or refused the role' },
  FEDSLICE_ERR_NO_AGGREGATOR: { means: 'no aggregator registered for the job in time' },
  FEDSLICE_ERR_TLS: { means: 'TLS certificates or schemes do not match' },
  FEDSLICE_ERR_CERTS: { means: 'certificates cannot be made' },
  FEDSLICE_ERR_LISTEN: { means: 'a server cannot listen on its host and port' },
  // the run
  FEDSLICE_ERR_CONFIG: { means: 'the experiment or sweep file is invalid' },
  FEDSLICE_ERR_OPTION: { means: 'a command-line option is invalid' },
  FEDSLICE_ERR_COMPLETED: { means: 'the run is already completed in the results store' },
  FEDSLICE_ERR_INIT: { means: 'the initial checkpoint does not exist' },
  FEDSLICE_ERR_CLASSES: { means: 'the data has more classes than the model' },
  FEDSLICE_ERR_JOIN_TIMEOUT: { means: 'too few trainers joined in time' },
  FEDSLICE_ERR_ROUND_TIMEOUT: { means: 'too few updates arrived in time' },
  FEDSLICE_ERR_RUN_FAILED: { means: 'the aggregator ended the run as failed' },
  FEDSLICE_ERR_INTERRUPTED: { means: 'a signal stopped the role' },
  FEDSLICE_ERR_CHECKPOINT: { means: 'a checkpoint cannot be read or is not valid safetensors' },
  // the machine's storage (exit status 74)
  FEDSLICE_ERR_DISK_FULL: { means: 'the results disk is full' },
  FEDSLICE_ERR_DISK_QUOTA: { means: 'the disk quota is exceeded' },
  FEDSLICE_ERR_NO_PERMISSION: { means: 'no permission to read or write a results file' },
  FEDSLICE_ERR_READ_ONLY: { means: 'the results are on a read-only filesystem' },
  FEDSLICE_ERR_TOO_MANY_FILES: { means: 'too many open files' },
  FEDSLICE_ERR_STORE_UNWRITABLE: { means: 'a sweep stopped because its results store cannot be written' },
  FEDSLICE_ERR_SLURM: { means: 'Slurm is missing or sbatch failed' },
  // model and training
  FEDSLICE_ERR_MODEL_PARAMS: { means: 'the weights miss a layer or do not fit together' },
  FEDSLICE_ERR_SLICE: { means: 'a slice of the model is out of range or does not divide' },
  FEDSLICE_ERR_TRAIN: { means: 'local training got an empty shard or bad settings' },
  FEDSLICE_ERR_TRAIN_DIVERGED: { means: 'the training loss became NaN or infinite' },
  FEDSLICE_ERR_EVAL: { means: 'evaluation got an empty set or bad settings' },
  FEDSLICE_ERR_BACKEND: { means: 'no usable TensorFlow.js backend' },
  FEDSLICE_ERR_KERNEL: { means: 'a backend lacks a kernel the training needs' },
  // data
  FEDSLICE_ERR_DATA_MISSING: { means: 'a dataset file is missing' },
  FEDSLICE_ERR_DATA_SIZE: { means: 'a dataset file has the wrong size' },
  FEDSLICE_ERR_DATA_LABEL: { means: 'a dataset record has a label out of range' },
  FEDSLICE_ERR_DATA_NAMES: { means: 'a dataset names file has the wrong number of names' },
  FEDSLICE_ERR_DATA_MANIFEST: { means: 'a synthetic set manifest is invalid' },
  FEDSLICE_ERR_DATA_FRACTION: { means: 'the data fraction is outside (0, 1]' },
  FEDSLICE_ERR_PARTITION: { means: 'the training set cannot be split into the shards asked' },
  FEDSLICE_ERR_SYNTH_OPTIONS: { means: 'synthetic set options are invalid' },
  FEDSLICE_ERR_DOWNLOAD: { means: 'the dataset cannot be downloaded' },
  FEDSLICE_ERR_CHECKSUM: { means: 'a downloaded archive has the wrong checksum' },
  FEDSLICE_ERR_ARCHIVE: { means: 'an archive cannot be unpacked or is not the dataset' },
  // analysis
  FEDSLICE_ERR_NO_RESULTS: { means: 'the results store holds nothing to analyse' },
  FEDSLICE_ERR_WHERE: { means: 'a --where filter is invalid' },
  FEDSLICE_ERR_CHART: { means: 'a chart spec does not compile' },
  FEDSLICE_ERR_WRITE: { means: 'an output file cannot be written' },
} as const satisfies Record<`FEDSLICE_ERR_${string}`, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === 'string' && Object.hasOwn(ERROR_CODES, v);
}

/** A trainer that receives this code stops: rejoining cannot change the answer. */
export function isFatalForTrainer(code: ErrorCode): boolean {
  const info: ErrorCodeInfo = ERROR_CODES[code];
  return info.fatal === true;
}

export class FedsliceError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The process's exit status when this error ends a command. */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'FedsliceError';
  }
}

export function isFedsliceError(e: unknown): e is FedsliceError {
  return e instanceof FedsliceError;
}
