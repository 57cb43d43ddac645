/**
 * How every command-line entry point ends: the exit code `main` resolves to, or 1 with the error
 * printed when it rejects (an unexpected error: expected ones are printed by `main` itself).
 * `exit: true` exits at once instead of letting open handles keep the process alive, for a
 * worker whose stop may leave a stuck batch or socket behind.
 */
export function runMain(name: string, main: () => Promise<number>, options: { exit?: boolean } = {}): void {
  main().then(
    (code) => {
      if (options.exit) process.exit(code);
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${name}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      if (options.exit) process.exit(1);
      process.exitCode = 1;
    },
  );
}
