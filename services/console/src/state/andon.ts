import { BoundedList, BoundedMap } from './bounded-list.js';

/** One POST the actions worker made to the console's andon route. */
export interface AndonDelivery {
  receivedAt: number;
  /** The `idempotency-key` header: the event id (a defect's frame id, an alert's `<alertId>:<state>`). */
  eventId: string;
  kind: 'defect' | 'alert' | 'unknown';
  /** One line for the board: `line-1/cam-2 scratch 0.97`, `pump-7 raised (vibration)`. */
  summary: string;
}

/** What the body of a delivery says, read leniently: the board shows what it can. */
export function describeDelivery(body: unknown): { kind: AndonDelivery['kind']; summary: string } {
  if (typeof body !== 'object' || body === null) return { kind: 'unknown', summary: 'not a JSON object' };
  const b = body as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : '?');
  if (typeof b.frameId === 'string') {
    const conf = typeof b.confidence === 'number' ? ` ${b.confidence.toFixed(2)}` : '';
    return { kind: 'defect', summary: `${str(b.cameraId)} ${str(b.label)}${conf}` };
  }
  if (typeof b.alertId === 'string') {
    const top = Array.isArray(b.topChannels) ? (b.topChannels as { channel?: unknown }[]).map((c) => str(c.channel)).join(', ') : '';
    return { kind: 'alert', summary: `${str(b.assetId)} ${str(b.state)}${top ? ` (${top})` : ''}` };
  }
  return { kind: 'unknown', summary: 'unrecognised event' };
}

/** Deliveries received, newest last, deduplicated by idempotency key (the worker may send twice). */
export class AndonBoard {
  private readonly list: BoundedList<AndonDelivery>;
  private readonly seen: BoundedMap<string, true>;
  received = 0;
  repeats = 0;

  constructor(capacity: number) {
    this.list = new BoundedList(capacity);
    this.seen = new BoundedMap(capacity * 4);
  }

  record(d: AndonDelivery): boolean {
    this.received += 1;
    if (this.seen.has(d.eventId)) {
      this.repeats += 1;
      return false;
    }
    this.seen.set(d.eventId, true);
    this.list.push(d);
    return true;
  }

  snapshot(): { deliveries: AndonDelivery[]; received: number; repeats: number } {
    return { deliveries: this.list.newestFirst(), received: this.received, repeats: this.repeats };
  }
}
