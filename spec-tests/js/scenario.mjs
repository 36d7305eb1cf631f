// Shared by the real-client scenario scripts: failing with a reason, and waiting for a condition.

export function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

export function check(condition, message) {
  if (!condition) fail(message);
}

/** Polls until the predicate holds; fails with the description (a string, or a function for a current one) on timeout. */
export async function waitFor(description, predicate, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  fail(`timed out waiting for ${typeof description === "function" ? description() : description}`);
}
