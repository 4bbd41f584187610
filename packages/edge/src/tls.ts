/**
 * The STARTTLS certificate: the configured key and certificate, or, without one, a fresh
 * self-signed certificate for the host name made at start (never smtp-server's built-in
 * one, whose private key is public).
 */
import { readFile } from 'node:fs/promises';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  readonly key: string;
  readonly cert: string;
  readonly selfSigned: boolean;
}

export async function loadTls(
  tls: { key: string; cert: string } | null,
  hostname: string,
): Promise<TlsMaterial> {
  if (tls) {
    const [key, cert] = await Promise.all([readFile(tls.key, 'utf8'), readFile(tls.cert, 'utf8')]);
    return { key, cert, selfSigned: false };
  }
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostname }] }],
  });
  return { key: pems.private, cert: pems.cert, selfSigned: true };
}
