/**
 * Waiting on a condition instead of on a fixed sleep, so a test holds however slow the machine
 * is: `until` polls a condition, `within` tells an answer still pending from one that came.
 */

/** Resolves once `condition` holds; throws after `timeoutMs` (default 5 s) without it. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The answer if it comes within `ms`, else 'waiting'. */
export async function within<T>(answer: PromiseLike<T>, ms: number): Promise<T | 'waiting'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'waiting'>((resolve) => (timer = setTimeout(() => resolve('waiting'), ms)));
  try {
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}
