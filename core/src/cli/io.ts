/** What a CLI command gets instead of touching process.stdout/stderr directly (testable). */
export interface CliIo {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

/** A command's entry point: resolves with the exit code (0 ok, 1 failure, 2 usage). */
export type CommandRun = (args: readonly string[], io: CliIo) => Promise<number>;

/** Exit codes. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
