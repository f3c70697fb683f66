/** What a refused call throws, as the client receives it (the JSON body and the HTTP status). */
import { expect } from 'vitest';
import { Refusal, type RefusalBody } from '../../lib/rules/errors.js';

export function refusalOf(run: () => unknown): RefusalBody & { statusCode: number } {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(Refusal);
    const refusal = error as Refusal;
    return { ...refusal.toJSON(), statusCode: refusal.statusCode };
  }
  throw new Error('expected a refusal, but the call returned');
}

/** The same for a promise. */
export async function refusalOfAsync(run: () => Promise<unknown>): Promise<RefusalBody & { statusCode: number }> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(Refusal);
    const refusal = error as Refusal;
    return { ...refusal.toJSON(), statusCode: refusal.statusCode };
  }
  throw new Error('expected a refusal, but the call returned');
}
