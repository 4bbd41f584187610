/** A throw-away self-signed certificate for test servers, made with openssl (Debian's `openssl`). */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertificateFiles {
  readonly key: string;
  readonly cert: string;
}

/** Writes key.pem and cert.pem (RSA 2048, valid 2 days) into `dir`; `altName` e.g. "IP:127.0.0.1". */
export async function makeCertificate(
  dir: string,
  commonName: string,
  altName?: string,
): Promise<CertificateFiles> {
  const files = { key: path.join(dir, 'key.pem'), cert: path.join(dir, 'cert.pem') };
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${commonName}`,
    ...(altName ? ['-addext', `subjectAltName=${altName}`] : []),
    '-keyout',
    files.key,
    '-out',
    files.cert,
  ]);
  return files;
}
