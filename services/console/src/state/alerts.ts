import type { AlertEvent } from '../../../../shared/src/contracts/anomaly.js';
import { BoundedList, BoundedMap } from './bounded-list.js';

/** An alert as the page shows it. */
export interface AlertView {
  alertId: string;
  assetId: string;
  state: 'raised' | 'cleared';
  /** Event time of the window end that changed the state. */
  at: number;
  score: number;
  threshold: number;
  topChannels: { channel: string; contribution: number }[];
  model: string;
}

export interface AlertBookOptions {
  /** Open alerts kept (oldest dropped: a stuck raise without a clear must not grow memory). @defaultValue 500 */
  maxOpen: number;
  /** Events kept in the history. @defaultValue 200 */
  history: number;
}

/**
 * Open alerts and their history, from raised / cleared events. Events are deduplicated by
 * `<alertId>:<state>` (the topic's event id): a re-read after a rebalance shows once.
 */
export class AlertBook {
  private readonly open: BoundedMap<string, AlertView>;
  private readonly history: BoundedList<AlertView>;
  private readonly seen: BoundedMap<string, true>;
  raised = 0;
  cleared = 0;

  constructor(options: AlertBookOptions) {
    this.open = new BoundedMap(options.maxOpen);
    this.history = new BoundedList(options.history);
    this.seen = new BoundedMap(Math.max(options.maxOpen, options.history) * 2);
  }

  /** Applies one event; false when it was a repeat. */
  record(e: AlertEvent): boolean {
    const eventId = `${e.alertId}:${e.state}`;
    if (this.seen.has(eventId)) return false;
    this.seen.set(eventId, true);
    const view: AlertView = {
      alertId: e.alertId,
      assetId: e.assetId,
      state: e.state,
      at: e.at,
      score: e.score,
      threshold: e.threshold,
      topChannels: e.topChannels.map((c) => ({ channel: c.channel, contribution: c.contribution })),
      model: `${e.model.name}@${e.model.version}`,
    };
    if (e.state === 'raised') {
      this.raised += 1;
      // A clear read before its raise (two partitions' fetches interleave) leaves nothing open.
      if (!this.seen.has(`${e.alertId}:cleared`)) this.open.set(e.alertId, view);
    } else {
      this.cleared += 1;
      this.open.delete(e.alertId);
    }
    this.history.push(view);
    return true;
  }

  snapshot(): { open: AlertView[]; history: AlertView[]; raised: number; cleared: number } {
    return { open: this.open.values().sort((a, b) => b.at - a.at), history: this.history.newestFirst(), raised: this.raised, cleared: this.cleared };
  }
}
