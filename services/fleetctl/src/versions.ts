import { SEMVER } from '../../../shared/src/models/versions.js';

/** `1.0.0` -> `1.0.1`; `1.2.3-rc1` -> `1.2.4`. Throws a RangeError for anything else. */
export function bumpPatch(version: string): string {
  const m = SEMVER.exec(version);
  if (!m) throw new RangeError(`cannot bump ${JSON.stringify(version)}: not <major>.<minor>.<patch>; give --version`);
  return `${m[1]}.${m[2]}.${Number(m[3]) + 1}`;
}

export { compareVersions } from '../../../shared/src/models/versions.js';
