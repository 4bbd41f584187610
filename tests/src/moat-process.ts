/**
 * A real `moat` process (the built command, apps/moat/bin/moat) for end-to-end suites: spawned
 * with a config file, its JSON log lines collected, stopped or killed by its PID only.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

const BIN = path.resolve(import.meta.dirname, '../../apps/moat/bin/moat');

export interface MoatProcess {
  readonly pid: number;
  readonly logs: Record<string, unknown>[];
  /** Resolves when a log line with this event was written (bounded by `timeoutMs`). */
  waitForEvent(event: string, timeoutMs?: number): Promise<void>;
  /** SIGKILL: no cleanup at all, as when a machine dies. */
  kill(): Promise<void>;
  /** SIGTERM, then the exit code (or 'timeout' if it did not exit in time; it is then killed). */
  stop(timeoutMs?: number): Promise<number | 'timeout'>;
}

/**
 * Writes `config` (JSON is YAML) into `dir` and starts `moat <role> --config <file>`. The
 * environment is PATH and `env` only.
 */
export async function startMoat(
  role: string,
  config: unknown,
  dir: string,
  name: string,
  env: Record<string, string> = {},
): Promise<MoatProcess> {
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [BIN, role, '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  const logs: Record<string, unknown>[] = [];
  let pending = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))),
  );
  if (child.pid === undefined) throw new Error('moat did not start');
  const pid = child.pid;
  const kill = async () => {
    if (alive(child)) process.kill(pid, 'SIGKILL');
    await exited;
  };
  return {
    pid,
    logs,
    async waitForEvent(event, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!logs.some((l) => l.event === event)) {
        if (!alive(child))
          throw new Error(
            `moat ${name} exited before "${event}": ${stderr}${JSON.stringify(logs.slice(-5))}`,
          );
        if (Date.now() > deadline)
          throw new Error(`moat ${name}: no "${event}" within ${timeoutMs} ms: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    kill,
    async stop(timeoutMs = 20_000) {
      if (!alive(child)) return exited;
      process.kill(pid, 'SIGTERM');
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
      const result = await Promise.race([exited, timer]);
      if (result === 'timeout') await kill();
      return result;
    },
  };
}

export interface MoatRun {
  /** The exit code; 128 when a signal ended it (the timeout kills it). */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a one-shot command (`moat config check …`, `moat route list …`) to its end, bounded by
 * `timeoutMs`. The environment is PATH and `env` only.
 */
export function runMoat(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<MoatRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: timeoutMs, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 128;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}
