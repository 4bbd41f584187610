/**
 * How the browser tests start Debian's Chromium (package chromium, installed by
 * scripts/bootstrap.sh --test) with playwright-core: headless, as root, and with nothing that
 * reaches out on its own (this machine's network is closed; background requests fail by the
 * dozen and slow every start).
 */
import { existsSync } from 'node:fs';

export const chromiumLaunchOptions: { readonly executablePath: string; readonly args: string[] } = {
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

/**
 * Whether Debian's Chromium is installed; when it is not, says once which tests are skipped
 * and how to get it (the suites skip rather than fail on a machine without it).
 */
export function chromiumAvailable(skipped: string): boolean {
  if (existsSync(chromiumLaunchOptions.executablePath)) return true;
  console.warn(
    `${skipped} skipped: ${chromiumLaunchOptions.executablePath} is missing (apt-get install -y chromium, or scripts/bootstrap.sh --test)`,
  );
  return false;
}
