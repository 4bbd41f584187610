import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Absolute path of an executable named `name` in a PATH-style list of directories,
 * or undefined when none of them holds one. The list is a parameter so tests can
 * check the "not installed" branch without changing the environment.
 */
export function findOnPath(name: string, pathList: string): string | undefined {
  for (const dir of pathList.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here (or not executable): try the next directory
    }
  }
  return undefined;
}
