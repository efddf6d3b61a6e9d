/** Fetches (or takes a local copy of) the CIFAR-100 binary archive, checks its MD5, unpacks and validates it. */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { FedsliceError } from '../errors.ts';
import { tempPathFor } from '../atomic-file.ts';
import { MANIFEST_FILE } from './manifest.ts';
import { CIFAR100_LAYOUT, loadCifarDir, type SetLayout } from './reader.ts';
import { COARSE_NAMES_FILE, FINE_NAMES_FILE, TEST_FILE, TRAIN_FILE } from './records.ts';

export const CIFAR100_URL = 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz';
export const CIFAR100_MD5 = '03b5dce01913d631647c71ecec9e9cb8';
/** The folder the official archive unpacks to. */
export const ARCHIVE_ROOT = 'cifar-100-binary';
const SET_FILES = [TRAIN_FILE, TEST_FILE, FINE_NAMES_FILE, COARSE_NAMES_FILE];
/** Give up when the server has not answered (headers) within this time. */
const CONNECT_TIMEOUT_MS = 30_000;

export interface DownloadOptions {
  /** Where train.bin etc. end up. */
  dir: string;
  /** A local copy of the archive: no network access. */
  archive?: string;
  /** Progress and status lines (default: stderr). */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  /** For tests only: another source, checksum and layout than the official ones. */
  url?: string;
  expectedMd5?: string;
  layout?: SetLayout;
}

export async function md5OfFile(path: string): Promise<string> {
  const hash = createHash('md5');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

function offlineHint(dir: string): string {
  return `download ${basename(CIFAR100_URL)} on a machine with internet access, copy it here and run \`fedslice data download --dir ${dir} --archive FILE\``;
}

const mb = (n: number) => (n / 1e6).toFixed(1);

/** Streams `url` into `dest`, reporting progress: a live percent line on a TTY, a line per 10% otherwise. */
async function fetchToFile(url: string, dest: string, dir: string, out: DownloadOptions['out'] & {}): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
  let res: Response;
  try {
    res = await fetch(url, { signal: controller.signal });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    throw new FedsliceError('FEDSLICE_ERR_DOWNLOAD', `cannot reach ${url} (${why}); this machine may be offline: ${offlineHint(dir)}`);
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok || !res.body) {
    throw new FedsliceError('FEDSLICE_ERR_DOWNLOAD', `${url} answered HTTP ${res.status} ${res.statusText}; try again later or ${offlineHint(dir)}`);
  }
  const total = Number(res.headers.get('content-length')) || 0;
  let received = 0;
  let lastShown = -1;
  const tty = !!out.isTTY;
  const body = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
  body.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (!total) return;
    const pct = Math.floor((100 * received) / total);
    if (tty && pct !== lastShown) out.write(`\rdownloading ${basename(url)}: ${pct}% (${mb(received)} / ${mb(total)} MB)`);
    else if (!tty && Math.floor(pct / 10) !== Math.floor(lastShown / 10)) out.write(`downloading ${basename(url)}: ${pct}% (${mb(received)} / ${mb(total)} MB)\n`);
    lastShown = pct;
  });
  try {
    await pipeline(body, createWriteStream(dest));
  } catch (e) {
    throw new FedsliceError('FEDSLICE_ERR_DOWNLOAD', `download of ${url} broke off after ${mb(received)} MB (${(e as Error).message}); run the command again or ${offlineHint(dir)}`);
  } finally {
    if (tty && total) out.write('\n');
  }
  out.write(`downloaded ${mb(received)} MB\n`);
}

/** Unpacks `archive` into a fresh folder beside `dir` and returns the folder holding the set files. */
function unpack(archive: string, dir: string): { tmp: string; root: string } {
  const tmp = mkdtempSync(join(dirname(resolve(dir)), `.${basename(dir)}-unpack-`));
  const r = spawnSync('tar', ['-xzf', resolve(archive), '-C', tmp], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n')[0];
    throw new FedsliceError('FEDSLICE_ERR_ARCHIVE', `cannot unpack ${archive} with tar (${why}); check that it is the CIFAR-100 binary .tar.gz and that tar is installed`);
  }
  const nested = join(tmp, ARCHIVE_ROOT);
  const root = existsSync(nested) ? nested : tmp;
  for (const f of SET_FILES) {
    if (!existsSync(join(root, f))) {
      rmSync(tmp, { recursive: true, force: true });
      throw new FedsliceError('FEDSLICE_ERR_ARCHIVE', `${archive} holds no ${ARCHIVE_ROOT}/${f}; it is not the CIFAR-100 binary archive (${CIFAR100_URL})`);
    }
  }
  return { tmp, root };
}

/** Puts CIFAR-100 into `opts.dir`: downloaded or from `opts.archive`, checksum-checked, unpacked and validated. */
export async function downloadCifar(opts: DownloadOptions): Promise<void> {
  const { dir } = opts;
  const out = opts.out ?? process.stderr;
  const expectedMd5 = opts.expectedMd5 ?? CIFAR100_MD5;
  mkdirSync(dir, { recursive: true });
  let archive: string;
  let downloaded: string | null = null;
  if (opts.archive) {
    archive = opts.archive;
    if (!existsSync(archive) || !statSync(archive).isFile()) {
      throw new FedsliceError('FEDSLICE_ERR_ARCHIVE', `archive ${archive} does not exist; pass the path of ${basename(CIFAR100_URL)}`);
    }
  } else {
    downloaded = archive = tempPathFor(join(dir, basename(opts.url ?? CIFAR100_URL)));
    out.write(`fetching ${opts.url ?? CIFAR100_URL}\n`);
  }
  try {
    if (downloaded) await fetchToFile(opts.url ?? CIFAR100_URL, downloaded, dir, out);
    const md5 = await md5OfFile(archive);
    if (md5 !== expectedMd5) {
      throw new FedsliceError(
        'FEDSLICE_ERR_CHECKSUM',
        `${opts.archive ?? 'the downloaded archive'} has MD5 ${md5} but CIFAR-100 binary has ${expectedMd5}: the file is damaged or not ${basename(CIFAR100_URL)}; download it again`,
      );
    }
    out.write(`checksum ok (${md5})\n`);
    const { tmp, root } = unpack(archive, dir);
    try {
      let sets;
      try {
        sets = loadCifarDir(root, opts.layout ?? CIFAR100_LAYOUT);
      } catch (e) {
        if (e instanceof FedsliceError) throw new FedsliceError(e.code, `${archive} unpacks to an invalid set: ${e.message.split('; ')[0]}; download the archive again`);
        throw e;
      }
      // the folder now holds CIFAR-100: a synthetic manifest left there would misdescribe it
      rmSync(join(dir, MANIFEST_FILE), { force: true });
      for (const f of SET_FILES) renameSync(join(root, f), join(dir, f));
      out.write(`CIFAR-100 ready in ${dir}: ${sets.train.count} train, ${sets.test.count} test images, ${sets.classNames.length} classes\n`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } finally {
    if (downloaded) rmSync(downloaded, { force: true });
  }
}
