/** Test helper (not built): nodemailer's SMTP client as a promise API, for TLS and AUTH tests. */
import SMTPConnection from 'nodemailer/lib/smtp-connection';

export interface SendResult {
  readonly accepted: string[];
  readonly rejected: string[];
  readonly response: string;
}

export class Client {
  readonly conn: SMTPConnection;

  constructor(port: number, options: { requireTLS?: boolean; ignoreTLS?: boolean } = {}) {
    this.conn = new SMTPConnection({
      host: '127.0.0.1',
      port,
      name: 'exchange.corp.example.com',
      tls: { rejectUnauthorized: false },
      ...options,
    });
    this.conn.on('error', () => {});
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.conn.once('error', reject);
      this.conn.connect(() => {
        this.conn.off('error', reject);
        resolve();
      });
    });
  }

  login(user: string, pass: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.conn.login({ user, pass }, (err) => (err ? reject(err) : resolve())),
    );
  }

  send(from: string, to: string[], message: string): Promise<SendResult> {
    return new Promise((resolve, reject) =>
      this.conn.send({ from, to }, message, (err, info) =>
        err
          ? reject(err)
          : resolve({
              accepted: info.accepted as string[],
              rejected: info.rejected as string[],
              response: info.response,
            }),
      ),
    );
  }

  get secure(): boolean {
    return this.conn.secure;
  }

  close(): void {
    this.conn.close();
  }
}
