/**
 * How the browser tests start Debian's Chromium (package chromium, installed by
 * scripts/bootstrap.sh --test) with playwright-core: headless, as root, and with nothing that
 * reaches out on its own (this machine's network is closed; background requests fail by the
 * dozen and slow every start).
 */
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
