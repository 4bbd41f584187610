import { loadConfig } from '../config-load.js';
import type { Io } from '../io.js';
import { EXIT_CONFIG, reportConfigErrors } from '../report.js';

/**
 * `moat reload --pid PID[,PID] [--config FILE]`: check the config as `moat config check` does,
 * then ask the running processes to re-read it (SIGHUP; the systemd unit's ExecReload does the
 * same). A process refuses a change of a key that needs a restart, and says so in its log.
 */
export function reloadCommand(pids: string | undefined, file: string | undefined, io: Io): number {
  const targets = (pids ?? '').split(',').filter(Boolean).map(Number);
  if (targets.length === 0 || targets.some((p) => !Number.isSafeInteger(p) || p <= 1)) {
    io.err(
      'moat: reload needs --pid PID[,PID]: the moat processes to reload (systemd: systemctl reload moat@edge)\n',
    );
    return EXIT_CONFIG;
  }
  const loaded = loadConfig(file, io.env);
  if (!loaded.ok) return reportConfigErrors(loaded.errors, io);
  let failed = 0;
  for (const pid of targets) {
    try {
      process.kill(pid, 'SIGHUP');
      io.out(
        `moat: asked ${pid} to reload ${loaded.source}; its log says config.reloaded or config.reload_refused\n`,
      );
    } catch (err) {
      failed++;
      io.err(
        `moat: cannot signal ${pid}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`,
      );
    }
  }
  return failed > 0 ? 1 : 0;
}
