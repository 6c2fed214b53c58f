/** Wait until a condition holds, polling every 50 ms, or fail naming it after the deadline. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`Cannot wait for ${what}: not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
