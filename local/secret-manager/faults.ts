// Injected failures: which calls fail, how, and how often. Faults are matched in the
// order they were injected and consumed as they fire.

export interface FaultSpec {
  /** RPC name as in the proto, e.g. 'AddSecretVersion', or '*' for any RPC. */
  method: string | '*';
  /** gRPC status code to answer with; 0 = no error (useful with delayMs). */
  code: number;
  /** How many matching calls this fault applies to; default 1, Infinity allowed. */
  times?: number;
  /** Filter on the call's resource name (see CallRecord.name). */
  match?: (resourceName: string) => boolean;
  /** Apply the call's effect, then answer the error: a lost response. */
  afterEffect?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
}

/** What one call has to suffer; `code` 0 means "answer normally". */
export interface FiredFault {
  code: number;
  afterEffect: boolean;
  delayMs: number;
}

interface ArmedFault {
  spec: FaultSpec;
  remaining: number;
}

export class FaultBook {
  private armed: ArmedFault[] = [];

  inject(spec: FaultSpec): void {
    const times = spec.times ?? 1;
    if (!(times > 0) || (!Number.isInteger(times) && times !== Infinity)) {
      throw new RangeError('FaultSpec.times must be a positive integer or Infinity');
    }
    if (!Number.isInteger(spec.code) || spec.code < 0 || spec.code > 16) {
      throw new RangeError('FaultSpec.code must be a gRPC status code (0-16)');
    }
    if (spec.delayMs !== undefined && !(spec.delayMs >= 0)) throw new RangeError('FaultSpec.delayMs must be >= 0');
    this.armed.push({ spec, remaining: times });
  }

  clear(): void {
    this.armed = [];
  }

  /** The first armed fault that matches the call, consumed by one; undefined if none. */
  take(method: string, resourceName: string): FiredFault | undefined {
    const index = this.armed.findIndex(
      (f) => (f.spec.method === '*' || f.spec.method === method) && (!f.spec.match || f.spec.match(resourceName)),
    );
    if (index < 0) return undefined;
    const fault = this.armed[index]!;
    fault.remaining--;
    if (fault.remaining <= 0) this.armed.splice(index, 1);
    return { code: fault.spec.code, afterEffect: fault.spec.afterEffect ?? false, delayMs: fault.spec.delayMs ?? 0 };
  }
}
